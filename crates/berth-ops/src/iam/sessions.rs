//! Task roles: the check of a `taskRoleArn` when it is given, and the temporary credentials a
//! task with a role gets (as ECS hands a task its role's STS session).
//!
//! - **Issued when the agent asks for the task** (`task_credentials`, from the desired set):
//!   a session (`ASIA` key id, secret, session token, expiration `--task-credentials-secs`
//!   ahead, ECS's 6 h by default) is made the first time, and a new one once the current one
//!   has less than half its lifetime left, so an agent polling at its heartbeat always holds
//!   keys well within their life. Older sessions stay valid until they expire, as STS
//!   credentials do.
//! - **Stored sealed**: `iam/sessions/<AKID>` holds the secret and the token sealed with the
//!   secrets key (the server needs them in clear to check signatures, as for IAM users' keys);
//!   `iam/task-sessions/<cluster>/<task id>` holds the task's credentials id and its live keys.
//! - **Revoked when the task stops**: a session's key is honoured only while its task exists
//!   and has not reached STOPPED (`Ops::session_signer` reads the task); the records of a
//!   stopped task are deleted the first time its key is presented after that, and keys
//!   expired for a lifetime are dropped whenever the task's keys are refreshed.
//! - **Who the caller is**: `arn:aws:sts::<account>:assumed-role/<role>/<task id>`, with the
//!   role's inline policies (read at each request, so a policy change applies at once).

use berth_model::agent::TaskCredentials;
use berth_model::secrets::StoredValue;
use berth_model::{keys, ApiError, ErrorCode, Task, TaskStatus};
use berth_store::{StoreExt, Txn};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{new_id, role_key, Principal, RoleRecord, Signer};
use crate::{store_err, to_bytes, Ctx, Ops};

const SESSIONS: &str = "iam/sessions/";
const TASK_SESSIONS: &str = "iam/task-sessions/";
/// ECS's task role credentials live six hours.
pub const DEFAULT_LIFETIME_SECS: f64 = 6.0 * 3600.0;

fn session_key(akid: &str) -> String {
    format!("{SESSIONS}{akid}")
}
fn task_session_key(cluster: &str, task_id: &str) -> String {
    format!("{TASK_SESSIONS}{cluster}/{task_id}")
}

/// One session (one set of temporary keys) as stored; secret and token sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionRecord {
    access_key_id: String,
    secret: StoredValue,
    token: StoredValue,
    expiration: f64,
    role_name: String,
    role_arn: String,
    cluster: String,
    task_id: String,
}

/// A task's credentials id and its keys not yet known to be expired, newest last.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TaskSessions {
    credentials_id: String,
    role_arn: String,
    /// `(AKID, expiration)`.
    keys: Vec<(String, f64)>,
}

/// The error ECS gives for a `taskRoleArn` that is malformed or names no role.
fn invalid_role() -> ApiError {
    ApiError::client("Role is not valid")
}

/// ECS's words for a role it cannot assume (one that does not trust `ecs-tasks.amazonaws.com`,
/// or is gone).
pub(crate) fn cannot_assume(arn: &str) -> String {
    format!(
        "ECS was unable to assume the role '{arn}' that was provided for this task. Please \
         verify that the role being passed has the proper trust relationship and permissions \
         and that your IAM user has permissions to pass this role."
    )
}

/// The role name an IAM role ARN of `account` names (`arn:aws:iam::<account>:role/<path><name>`).
fn role_name<'a>(arn: &'a str, account: &str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (acct, rest) = rest.split_once(':')?;
    let path_name = rest.strip_prefix("role/")?;
    let name = path_name.rsplit('/').next()?;
    (acct == account && !name.is_empty()).then_some(name)
}

/// Whether a trust policy lets ECS tasks assume the role: an Allow statement whose principal
/// names the service `ecs-tasks.amazonaws.com` (or `*`) and whose action covers
/// `sts:AssumeRole`, with no Deny statement naming the same.
pub(crate) fn trusts_ecs_tasks(doc: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(doc) else {
        return false;
    };
    let statements = match v.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return false,
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    };
    let names_ecs_tasks = |s: &Value| -> bool {
        let principal = match s.get("Principal") {
            Some(Value::String(p)) => return p == "*",
            Some(p) => p,
            None => return false,
        };
        strings(principal.get("Service"))
            .iter()
            .chain(strings(principal.get("AWS")).iter().filter(|a| *a == "*"))
            .any(|p| p == "ecs-tasks.amazonaws.com" || p == "*")
    };
    let covers_assume = |s: &Value| {
        strings(s.get("Action"))
            .iter()
            .any(|a| matches!(a.as_str(), "sts:AssumeRole" | "sts:*" | "*"))
    };
    let mut allowed = false;
    for s in &statements {
        if !names_ecs_tasks(s) || !covers_assume(s) {
            continue;
        }
        match s.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return false,
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    allowed
}

/// Checks a `taskRoleArn` (a task definition's or RunTask's override): it must name an
/// existing role of this account that trusts ECS tasks.
pub(crate) async fn check_task_role(ctx: &Ctx, arn: &str) -> Result<RoleRecord, ApiError> {
    let name = role_name(arn, &ctx.state.config.account_id).ok_or_else(invalid_role)?;
    let role = ctx
        .store()
        .get_json::<RoleRecord>(&role_key(name))
        .await
        .map_err(store_err)?
        .map(|(r, _)| r)
        .filter(|r| r.arn == arn)
        .ok_or_else(invalid_role)?;
    if !trusts_ecs_tasks(&role.assume_role_policy_document) {
        return Err(ApiError::client(cannot_assume(arn)));
    }
    Ok(role)
}

fn random_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 30];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn random_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 96];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether a task's newest key must be replaced at `now`: none yet, or less than half of
/// `lifetime` left.
pub(crate) fn needs_refresh(newest_expiration: Option<f64>, now: f64, lifetime: f64) -> bool {
    newest_expiration.is_none_or(|exp| exp - now < lifetime / 2.0)
}

/// The current credentials of task `t` for the role `role_arn`, issuing new keys when due.
/// `Ok(Err(reason))`: the role can no longer be assumed (deleted, or no longer trusting ECS
/// tasks); the caller fails the task with the reason.
pub(crate) async fn task_credentials(
    ctx: &Ctx,
    t: &Task,
    role_arn: &str,
) -> Result<Result<TaskCredentials, String>, ApiError> {
    let tkey = task_session_key(&t.cluster, &t.id);
    let existing = ctx
        .store()
        .get_json::<TaskSessions>(&tkey)
        .await
        .map_err(store_err)?;
    let now = ctx.now();
    let lifetime = ctx.state.config.task_credentials_secs;
    let (mut sessions, rev, same_role) = match existing {
        Some((s, rev)) => {
            let same = s.role_arn == role_arn;
            let s = TaskSessions {
                role_arn: role_arn.to_owned(),
                ..s
            };
            (s, Some(rev), same)
        }
        None => (
            TaskSessions {
                credentials_id: uuid::Uuid::new_v4().to_string(),
                role_arn: role_arn.to_owned(),
                keys: Vec::new(),
            },
            None,
            true,
        ),
    };
    if let Some((akid, exp)) = sessions.keys.last().cloned() {
        if same_role && !needs_refresh(Some(exp), now, lifetime) {
            return open(ctx, &sessions, &akid, exp).await.map(Ok);
        }
    }
    let role = match check_task_role(ctx, role_arn).await {
        Ok(r) => r,
        Err(_) => return Ok(Err(cannot_assume(role_arn))),
    };
    let akid = new_id("ASIA");
    let (secret, token) = (random_secret(), random_token());
    let skey = session_key(&akid);
    let sealer = &ctx.state.secrets_key;
    let record = SessionRecord {
        access_key_id: akid.clone(),
        secret: sealer.seal(&format!("{skey}/secret"), secret.as_bytes())?,
        token: sealer.seal(&format!("{skey}/token"), token.as_bytes())?,
        expiration: now + lifetime,
        role_name: role.name.clone(),
        role_arn: role_arn.to_owned(),
        cluster: t.cluster.clone(),
        task_id: t.id.clone(),
    };
    let mut txn = Txn::new().put(skey, to_bytes(&record)?);
    // Keys expired a lifetime ago are of no use to anyone: dropped with this write. A key
    // expired more recently is kept, so its holder is told ExpiredTokenException (as AWS
    // tells it), not that the key is unknown.
    sessions.keys.retain(|(old, exp)| {
        let keep = *exp + lifetime > now;
        if !keep {
            txn = std::mem::take(&mut txn).delete(session_key(old));
        }
        keep
    });
    sessions.keys.push((akid.clone(), record.expiration));
    txn = match rev {
        Some(rev) => txn.when_mod_revision(tkey.clone(), rev),
        None => txn.when_absent(tkey.clone()),
    }
    .put(tkey, to_bytes(&sessions)?);
    match ctx.store().txn(txn).await.map_err(store_err)? {
        berth_store::TxnResult::Committed { .. } => Ok(Ok(TaskCredentials {
            credentials_id: sessions.credentials_id,
            access_key_id: akid,
            secret_access_key: secret,
            token,
            expiration: iso_seconds(record.expiration),
            role_arn: role_arn.to_owned(),
        })),
        // Another poll refreshed the task's keys meanwhile: its keys are as good.
        berth_store::TxnResult::Conflict { .. } => {
            Box::pin(task_credentials(ctx, t, role_arn)).await
        }
    }
}

/// The credentials of the stored session `akid`, opened.
async fn open(
    ctx: &Ctx,
    sessions: &TaskSessions,
    akid: &str,
    expiration: f64,
) -> Result<TaskCredentials, ApiError> {
    let skey = session_key(akid);
    let (r, _) = ctx
        .store()
        .get_json::<SessionRecord>(&skey)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::server(format!("task session {akid} is missing")))?;
    let sealer = &ctx.state.secrets_key;
    Ok(TaskCredentials {
        credentials_id: sessions.credentials_id.clone(),
        access_key_id: akid.to_owned(),
        secret_access_key: sealer.open_text(&format!("{skey}/secret"), &r.secret)?,
        token: sealer.open_text(&format!("{skey}/token"), &r.token)?,
        expiration: iso_seconds(expiration),
        role_arn: r.role_arn,
    })
}

/// A time as STS shows an expiration: ISO 8601 UTC, whole seconds.
fn iso_seconds(t: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.floor() as i64)
        .map(|d| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                d.year(),
                u8::from(d.month()),
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            )
        })
        .unwrap_or_default()
}

/// Temporary keys as the edge checks them.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session token the request must carry (`x-amz-security-token`).
    pub token: String,
    /// When the keys expire (epoch seconds).
    pub expiration: f64,
}

impl Ops {
    /// The temporary key `akid` (a task role's) while its task runs: its secret, token,
    /// expiration and the role's policies. `None` for an unknown key, or one whose task has
    /// stopped (its records are then deleted).
    pub(crate) async fn session_signer(&self, akid: &str) -> Result<Option<Signer>, ApiError> {
        let skey = session_key(akid);
        let Some((r, _)) = self
            .store
            .get_json::<SessionRecord>(&skey)
            .await
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        let task = self
            .store
            .get_json::<Task>(&keys::task(&r.cluster, &r.task_id))
            .await
            .map_err(store_err)?;
        if task.is_none_or(|(t, _)| t.last_status == TaskStatus::Stopped) {
            self.revoke_task(&r.cluster, &r.task_id).await?;
            return Ok(None);
        }
        let policies = match self
            .store
            .get_json::<RoleRecord>(&role_key(&r.role_name))
            .await
            .map_err(store_err)?
        {
            Some((role, _)) if role.arn == r.role_arn => super::role_policies(&role),
            _ => Vec::new(),
        };
        let secret = self
            .secrets_key
            .open_text(&format!("{skey}/secret"), &r.secret)?;
        let token = self
            .secrets_key
            .open_text(&format!("{skey}/token"), &r.token)?;
        Ok(Some(Signer {
            secret,
            active: true,
            principal: Principal::AssumedRole {
                role: r.role_name.clone(),
                session: r.task_id.clone(),
                arn: format!(
                    "arn:aws:sts::{}:assumed-role/{}/{}",
                    self.config.account_id, r.role_name, r.task_id
                ),
            },
            policies,
            session: Some(Session {
                token,
                expiration: r.expiration,
            }),
        }))
    }

    /// Deletes every session of a stopped task.
    async fn revoke_task(&self, cluster: &str, task_id: &str) -> Result<(), ApiError> {
        let tkey = task_session_key(cluster, task_id);
        let Some((s, rev)) = self
            .store
            .get_json::<TaskSessions>(&tkey)
            .await
            .map_err(store_err)?
        else {
            return Ok(());
        };
        let mut txn = Txn::new().when_mod_revision(tkey.clone(), rev).delete(tkey);
        for (akid, _) in &s.keys {
            txn = txn.delete(session_key(akid));
        }
        // A lost race means another request revoked them, or a poll refreshed them: either
        // way the next presentation tries again.
        self.store.txn(txn).await.map_err(store_err)?;
        Ok(())
    }
}

/// The error for expired temporary keys, as AWS words it.
pub fn expired() -> ApiError {
    ApiError::new(
        ErrorCode::ExpiredTokenException,
        "The security token included in the request is expired",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_name_a_role_of_this_account() {
        assert_eq!(role_name("arn:aws:iam::1:role/app", "1"), Some("app"));
        assert_eq!(
            role_name("arn:aws:iam::1:role/svc/team/app", "1"),
            Some("app")
        );
        assert_eq!(role_name("arn:aws:iam::2:role/app", "1"), None);
        assert_eq!(role_name("arn:aws:iam::1:user/app", "1"), None);
        assert_eq!(role_name("arn:aws:iam::1:role/", "1"), None);
        assert_eq!(role_name("app", "1"), None);
    }

    #[test]
    fn only_trust_policies_naming_ecs_tasks_let_tasks_assume_a_role() {
        let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(trusts_ecs_tasks(allow));
        let list = r#"{"Statement":{"Effect":"Allow",
            "Principal":{"Service":["ec2.amazonaws.com","ecs-tasks.amazonaws.com"]},
            "Action":["sts:AssumeRole"]}}"#;
        assert!(trusts_ecs_tasks(list));
        let other = r#"{"Statement":[{"Effect":"Allow",
            "Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(!trusts_ecs_tasks(other));
        let wrong_action = r#"{"Statement":[{"Effect":"Allow",
            "Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:TagSession"}]}"#;
        assert!(!trusts_ecs_tasks(wrong_action));
        let denied = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"},
            {"Effect":"Deny","Principal":{"Service":"ecs-tasks.amazonaws.com"},
             "Action":"sts:AssumeRole"}]}"#;
        assert!(!trusts_ecs_tasks(denied));
        assert!(!trusts_ecs_tasks("not json"));
    }

    #[test]
    fn keys_are_refreshed_at_half_their_life() {
        assert!(needs_refresh(None, 100.0, 60.0));
        assert!(!needs_refresh(Some(160.0), 100.0, 60.0));
        assert!(!needs_refresh(Some(131.0), 100.0, 60.0));
        assert!(needs_refresh(Some(129.0), 100.0, 60.0));
        assert!(needs_refresh(Some(90.0), 100.0, 60.0));
    }

    #[test]
    fn expirations_read_as_sts_writes_them() {
        assert_eq!(iso_seconds(1_700_000_000.7), "2023-11-14T22:13:20Z");
    }
}
