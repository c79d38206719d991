//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition, DeleteTaskDefinitions.
//!
//! Revisions: each family has a record holding the last revision ever issued. Registering
//! reads it and writes the new revisions and the record in one compare-and-swap transaction,
//! so two concurrent registrations never get the same number and a deleted revision is never
//! reused. Within one server, registrations of a family queue for their family's committer:
//! one task per family with registrations waiting takes every queued registration, numbers
//! them consecutively and writes them in one transaction (a batch commit), then the next
//! batch. A burst of writers to one family thus shares one durable commit instead of queueing
//! behind one fsync each, and does not exhaust its compare-and-swap retries racing itself; the
//! compare-and-swap still guards against other API replicas.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use berth_model::{
    keys, ApiError, Clock, ErrorCode, ResourceKind, TaskDefRef, TaskDefinition,
    TaskDefinitionStatus, MAX_TASKDEF_BYTES,
};
use berth_store::{Store, StoreExt, Txn, TxnResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::paging::{page_json, paginate};
use crate::parse_body;
use crate::{store_err, to_bytes, Ctx};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FamilyRecord {
    family: String,
    last_revision: u32,
}

/// The most registrations of one family written in one transaction (each is at most
/// [`MAX_TASKDEF_BYTES`]).
const MAX_REGISTER_BATCH: usize = 64;

/// A validated registration waiting for its family's committer.
struct Pending {
    td: TaskDefinition,
    reply: oneshot::Sender<Result<TaskDefinition, ApiError>>,
}

/// Identifies a family's queue: the store it is registered in (by address: a queue only
/// exists while its committer holds the store) and the family name.
type QueueKey = (usize, String);

/// The registrations queued per family; an entry exists exactly while its committer runs.
static QUEUES: LazyLock<Mutex<HashMap<QueueKey, Vec<Pending>>>> = LazyLock::new(Default::default);

fn queues() -> std::sync::MutexGuard<'static, HashMap<QueueKey, Vec<Pending>>> {
    QUEUES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Queues a registration; starts the family's committer if none runs. The answer is the
/// task definition as registered (revision and time filled in), once it is durable.
async fn enqueue(ctx: &Ctx, td: TaskDefinition) -> Result<TaskDefinition, ApiError> {
    let store = Arc::clone(&ctx.state.store);
    let key: QueueKey = (Arc::as_ptr(&store).cast::<()>() as usize, td.family.clone());
    let (reply, answer) = oneshot::channel();
    let start = {
        let mut queues = queues();
        let queue = queues.entry(key.clone());
        let start = matches!(queue, std::collections::hash_map::Entry::Vacant(_));
        queue.or_default().push(Pending { td, reply });
        start
    };
    if start {
        // A task of its own, so a client that hangs up does not strand the others' batch.
        tokio::spawn(commit_family(store, Arc::clone(&ctx.state.clock), key));
    }
    answer
        .await
        .map_err(|_| ApiError::server("The registration was abandoned; retry."))?
}

/// Removes a family's queue if its committer ends without emptying it (a panic, a runtime
/// shutting down): the waiting callers then get an error instead of waiting forever.
struct QueueGuard {
    key: Option<QueueKey>,
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            queues().remove(&key);
        }
    }
}

/// A family's committer: commits queued registrations batch by batch until none is left.
async fn commit_family(store: Arc<dyn Store>, clock: Arc<dyn Clock>, key: QueueKey) {
    let mut guard = QueueGuard {
        key: Some(key.clone()),
    };
    loop {
        let batch: Vec<Pending> = {
            let mut queues = queues();
            let Some(queue) = queues.get_mut(&key) else {
                break;
            };
            if queue.is_empty() {
                queues.remove(&key);
                break;
            }
            let n = queue.len().min(MAX_REGISTER_BATCH);
            queue.drain(..n).collect()
        };
        let (mut tds, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.td, p.reply)).unzip();
        let result = commit_batch(&*store, &*clock, &key.1, &mut tds).await;
        for (td, reply) in tds.into_iter().zip(replies) {
            // Err only means the caller stopped waiting.
            let _ = reply.send(result.clone().map(|()| td));
        }
    }
    guard.key = None;
}

/// Numbers `tds` (all of `family`) after the family's last revision and writes them and the
/// family record in one compare-and-swap transaction.
async fn commit_batch(
    store: &dyn Store,
    clock: &dyn Clock,
    family: &str,
    tds: &mut [TaskDefinition],
) -> Result<(), ApiError> {
    let fkey = keys::family(family);
    let count = u32::try_from(tds.len()).unwrap_or(u32::MAX);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (fam, frev) = store
            .get_json::<FamilyRecord>(&fkey)
            .await
            .map_err(store_err)?
            .unwrap_or_default();
        let last = fam.last_revision.checked_add(count).ok_or_else(|| {
            ApiError::new(
                ErrorCode::LimitExceededException,
                "This family has used every revision number.",
            )
        })?;
        let fam = FamilyRecord {
            family: family.to_owned(),
            last_revision: last,
        };
        let mut txn = Txn::new()
            .when_mod_revision(fkey.clone(), frev)
            .put(fkey.clone(), to_bytes(&fam)?);
        let now = clock.now();
        for (revision, td) in (last - count + 1..).zip(tds.iter_mut()) {
            td.revision = revision;
            td.registered_at = Some(now);
            txn = txn.put(keys::taskdef(family, revision), to_bytes(&*td)?);
        }
        if let TxnResult::Committed { .. } = store.txn(txn).await.map_err(store_err)? {
            return Ok(());
        }
    }
    Err(ApiError::server(
        "Too many concurrent registrations for this family; retry.",
    ))
}

fn arn(ctx: &Ctx, td: &TaskDefinition) -> String {
    ctx.arn(
        ResourceKind::TaskDefinition,
        format!("{}:{}", td.family, td.revision),
    )
}

/// Whether a container of `td` takes a secret (`secrets`, `secretOptions`,
/// `repositoryCredentials`): read with the execution role, which it then needs.
fn has_secrets(td: &TaskDefinition) -> Result<bool, ApiError> {
    for c in &td.container_definitions {
        if !berth_model::secrets::container_secret_refs(c)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// ECS `RegisterTaskDefinition`; it takes the raw body, which is size-checked before it is parsed.
pub async fn register(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > MAX_TASKDEF_BYTES {
        return Err(ApiError::client(format!(
            "Task definition size exceeds the limit of {MAX_TASKDEF_BYTES} bytes."
        )));
    }
    let mut td = TaskDefinition::from_request(parse_body(body)?)?;
    // The role must exist and trust ECS tasks now: its tasks get its credentials.
    if let Some(role) = td.task_role_arn.as_deref().filter(|r| !r.is_empty()) {
        crate::iam::sessions::check_task_role(ctx, role).await?;
    }
    // So must the execution role, which berth assumes to read the task's secrets.
    let execution_role = td.execution_role_arn.clone().filter(|r| !r.is_empty());
    if let Some(role) = execution_role.as_deref() {
        crate::iam::sessions::check_task_role(ctx, role).await?;
    }
    td.validate_and_normalize()?;
    if execution_role.is_none() && has_secrets(&td)? {
        return Err(ApiError::client(
            "When you are specifying container secrets, you must also specify a value for \
             'executionRoleArn'.",
        ));
    }
    td.status = TaskDefinitionStatus::Active;
    td.registered_by = Some(ctx.principal_arn());
    td.deregistered_at = None;
    td.delete_requested_at = None;
    td.requires_attributes = berth_model::required_attributes(&td);
    let td = enqueue(ctx, td).await?;
    Ok(json!({ "taskDefinition": td.to_wire(&arn(ctx, &td)), "tags": td.tags }))
}

/// Finds the task definition a reference names: a given revision in any status, or the latest
/// ACTIVE revision of the family.
/// The ACTIVE task definition a RunTask, StartTask, CreateService or UpdateService names
/// (`family`, `family:rev` or an ARN), or the client error ECS gives.
pub async fn runnable(ctx: &Ctx, ident: &str) -> Result<TaskDefinition, ApiError> {
    let r = TaskDefRef::parse(ident)?;
    match resolve(ctx, &r).await? {
        Some((td, _)) if td.status == TaskDefinitionStatus::Active => Ok(td),
        Some(_) => Err(ApiError::client("TaskDefinition is inactive")),
        None => Err(ApiError::client("Unable to find task definition.")),
    }
}

async fn resolve(ctx: &Ctx, r: &TaskDefRef) -> Result<Option<(TaskDefinition, u64)>, ApiError> {
    match r.revision {
        Some(rev) => ctx
            .store()
            .get_json::<TaskDefinition>(&keys::taskdef(&r.family, rev))
            .await
            .map_err(store_err),
        None => {
            // The family record names the last revision issued, which is nearly always the
            // latest ACTIVE one: two point reads instead of decoding every revision.
            let fam = ctx
                .store()
                .get_json::<FamilyRecord>(&keys::family(&r.family))
                .await
                .map_err(store_err)?;
            if let Some((fam, _)) = fam {
                let last = ctx
                    .store()
                    .get_json::<TaskDefinition>(&keys::taskdef(&r.family, fam.last_revision))
                    .await
                    .map_err(store_err)?;
                if let Some(found) =
                    last.filter(|(td, _)| td.status == TaskDefinitionStatus::Active)
                {
                    return Ok(Some(found));
                }
            }
            // The last revision was deregistered or deleted: scan the family, newest first.
            let all = ctx
                .store()
                .list_json::<TaskDefinition>(&keys::taskdefs_of(&r.family))
                .await
                .map_err(store_err)?;
            Ok(all
                .into_iter()
                .rev()
                .find(|(_, td, _)| td.status == TaskDefinitionStatus::Active)
                .map(|(_, td, rev)| (td, rev)))
        }
    }
}

/// The request of `DescribeTaskDefinition`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskDefinitionRequest {
    task_definition: String,
    #[serde(default)]
    include: Vec<String>,
}

/// ECS `DescribeTaskDefinition`.
pub async fn describe(ctx: &Ctx, req: DescribeTaskDefinitionRequest) -> Result<Value, ApiError> {
    let with_tags = match req.include.as_slice() {
        [] => false,
        [t] if t == "TAGS" => true,
        _ => return Err(ApiError::invalid("include accepts only TAGS.")),
    };
    let r = TaskDefRef::parse(&req.task_definition)?;
    let (td, _) = resolve(ctx, &r)
        .await?
        .ok_or_else(|| ApiError::client("Unable to describe task definition."))?;
    let mut out = json!({ "taskDefinition": td.to_wire(&arn(ctx, &td)) });
    if with_tags {
        out["tags"] = json!(td.tags);
    }
    Ok(out)
}

/// The request of `ListTaskDefinitions`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsRequest {
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ECS `ListTaskDefinitions`.
pub async fn list(ctx: &Ctx, req: ListTaskDefinitionsRequest) -> Result<Value, ApiError> {
    let status = TaskDefinitionStatus::parse(req.status.as_deref().unwrap_or("ACTIVE"))?;
    let desc = match req.sort.as_deref() {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(s) => {
            return Err(ApiError::invalid(format!(
                "Invalid sort {s:?}; valid: ASC, DESC"
            )))
        }
    };
    // ECS's familyPrefix on this action is the full family name.
    let prefix = match &req.family_prefix {
        Some(f) => {
            berth_model::validate_family(f)?;
            keys::taskdefs_of(f)
        }
        None => keys::TASKDEFS.to_owned(),
    };
    let all = ctx
        .store()
        .list_json::<TaskDefinition>(&prefix)
        .await
        .map_err(store_err)?;
    let mut items: Vec<(String, String)> = all
        .into_iter()
        .filter(|(_, td, _)| td.status == status)
        .map(|(_, td, _)| (list_sort_key(&td), arn(ctx, &td)))
        .collect();
    items.sort();
    if desc {
        items.reverse();
    }
    let (arns, next) = paginate(items, req.max_results, req.next_token.as_deref(), desc)?;
    Ok(page_json("taskDefinitionArns", arns, next))
}

/// The order ECS lists task definitions in: by family name, then by revision number. Store
/// keys (`taskdefs/FAMILY/REV`) do not sort that way: `web/` sorts after `web-2/`. A space
/// cannot occur in a family name and sorts before every character that can.
fn list_sort_key(td: &TaskDefinition) -> String {
    format!("{} {:010}", td.family, td.revision)
}

/// The request of `ListTaskDefinitionFamilies`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListFamiliesRequest {
    family_prefix: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ECS `ListTaskDefinitionFamilies`.
pub async fn list_families(ctx: &Ctx, req: ListFamiliesRequest) -> Result<Value, ApiError> {
    let want = req.status.as_deref().unwrap_or("ALL");
    if !matches!(want, "ACTIVE" | "INACTIVE" | "ALL") {
        return Err(ApiError::invalid(format!(
            "Invalid status {want:?}; valid: ACTIVE, INACTIVE, ALL"
        )));
    }
    let all = ctx
        .store()
        .list_json::<TaskDefinition>(keys::TASKDEFS)
        .await
        .map_err(store_err)?;
    // family -> has an ACTIVE revision
    let mut families: BTreeMap<String, bool> = BTreeMap::new();
    for (_, td, _) in all {
        if req
            .family_prefix
            .as_deref()
            .is_some_and(|p| !td.family.starts_with(p))
        {
            continue;
        }
        *families.entry(td.family).or_default() |= td.status == TaskDefinitionStatus::Active;
    }
    let items = families
        .into_iter()
        .filter(|(_, active)| match want {
            "ACTIVE" => *active,
            "INACTIVE" => !*active,
            _ => true,
        })
        .map(|(f, _)| (f.clone(), f))
        .collect();
    let (families, next) = paginate(items, req.max_results, req.next_token.as_deref(), false)?;
    Ok(page_json("families", families, next))
}

/// A reference that names one revision exactly, as deregistration and deletion require.
fn exact(ident: &str) -> Result<(String, u32), ApiError> {
    let r = TaskDefRef::parse(ident)?;
    match r.revision {
        Some(rev) => Ok((r.family, rev)),
        None => Err(ApiError::client(format!(
            "A revision is required: use family:revision or the full ARN ({ident})."
        ))),
    }
}

async fn save(ctx: &Ctx, td: &TaskDefinition, rev: u64) -> Result<bool, ApiError> {
    let key = keys::taskdef(&td.family, td.revision);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key, to_bytes(td)?);
    Ok(matches!(
        ctx.store().txn(txn).await.map_err(store_err)?,
        TxnResult::Committed { .. }
    ))
}

/// The request of `DeregisterTaskDefinition`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterRequest {
    task_definition: String,
}

/// ECS `DeregisterTaskDefinition`.
pub async fn deregister(ctx: &Ctx, req: DeregisterRequest) -> Result<Value, ApiError> {
    let (family, revision) = exact(&req.task_definition)?;
    let r = TaskDefRef {
        family,
        revision: Some(revision),
    };
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut td, rev) = resolve(ctx, &r)
            .await?
            .ok_or_else(|| ApiError::client("The specified task definition does not exist."))?;
        if td.status != TaskDefinitionStatus::Active {
            return Ok(json!({ "taskDefinition": td.to_wire(&arn(ctx, &td)) }));
        }
        td.status = TaskDefinitionStatus::Inactive;
        td.deregistered_at = Some(ctx.now());
        if save(ctx, &td, rev).await? {
            return Ok(json!({ "taskDefinition": td.to_wire(&arn(ctx, &td)) }));
        }
    }
    Err(ApiError::server(
        "Task definition changed concurrently; retry.",
    ))
}

/// The request of `DeleteTaskDefinitions`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRequest {
    task_definitions: Vec<String>,
}

/// ECS `DeleteTaskDefinitions` (1 to 10 at once; each one that cannot be deleted is a failure).
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    if req.task_definitions.is_empty() || req.task_definitions.len() > 10 {
        return Err(ApiError::invalid(
            "taskDefinitions must name between 1 and 10 task definitions.",
        ));
    }
    let (mut done, mut failures) = (Vec::new(), Vec::new());
    for ident in &req.task_definitions {
        let fail = |reason: &str| json!({ "arn": ident, "reason": reason });
        let Ok((family, revision)) = exact(ident) else {
            failures.push(fail("The specified task definition identifier is invalid. Specify a valid name or ARN and try again."));
            continue;
        };
        let r = TaskDefRef {
            family,
            revision: Some(revision),
        };
        let Some((mut td, rev)) = resolve(ctx, &r).await? else {
            failures.push(fail("The specified task definition does not exist. Specify a valid task definition and try again."));
            continue;
        };
        match td.status {
            TaskDefinitionStatus::Active => {
                failures.push(fail("The specified task definition is still in ACTIVE status. Please deregister the target and try again."));
                continue;
            }
            TaskDefinitionStatus::Inactive => {
                td.status = TaskDefinitionStatus::DeleteInProgress;
                td.delete_requested_at = Some(ctx.now());
                if !save(ctx, &td, rev).await? {
                    failures.push(fail("The task definition changed concurrently; retry."));
                    continue;
                }
            }
            TaskDefinitionStatus::DeleteInProgress => {}
        }
        done.push(td.to_wire(&arn(ctx, &td)));
    }
    Ok(json!({ "taskDefinitions": done, "failures": failures }))
}

/// Loads one revision for tagging; `None` when it does not exist.
pub(crate) async fn load_exact(
    ctx: &Ctx,
    family: &str,
    revision: u32,
) -> Result<Option<(TaskDefinition, u64)>, ApiError> {
    ctx.store()
        .get_json::<TaskDefinition>(&keys::taskdef(family, revision))
        .await
        .map_err(store_err)
}

/// Writes a task definition back if unchanged since `rev`.
pub(crate) async fn store_if_unchanged(
    ctx: &Ctx,
    td: &TaskDefinition,
    rev: u64,
) -> Result<bool, ApiError> {
    save(ctx, td, rev).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        let store = berth_store::RedbStore::in_memory().expect("in-memory store");
        crate::Ops::new(
            Arc::new(store),
            Arc::new(berth_model::SystemClock),
            crate::OpsConfig::default(),
        )
        .ctx("us-east-1")
    }

    fn body(family: &str) -> Vec<u8> {
        json!({
            "family": family,
            "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}],
        })
        .to_string()
        .into_bytes()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_registrations_get_consecutive_revisions() {
        let ctx = Arc::new(ctx());
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let ctx = Arc::clone(&ctx);
                tokio::spawn(async move {
                    let family = ["batch-a", "batch-b"][i % 2];
                    let out = register(&ctx, &body(family)).await.expect("registers");
                    (family, out["taskDefinition"]["revision"].as_u64())
                })
            })
            .collect();
        let mut revisions: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for t in tasks {
            let (family, rev) = t.await.expect("task");
            revisions
                .entry(family)
                .or_default()
                .push(rev.expect("revision"));
        }
        for (family, mut revs) in revisions {
            revs.sort_unstable();
            assert_eq!(revs, (1..=50).collect::<Vec<u64>>(), "{family}");
            let stored = ctx
                .store()
                .list(&keys::taskdefs_of(family))
                .await
                .expect("list")
                .0;
            assert_eq!(stored.len(), 50, "{family}");
            let (fam, _) = ctx
                .store()
                .get_json::<FamilyRecord>(&keys::family(family))
                .await
                .expect("get")
                .expect("family record");
            assert_eq!(fam.last_revision, 50);
        }
        // Registering after a burst still continues the numbering (a fresh committer).
        let out = register(&ctx, &body("batch-a")).await.expect("registers");
        assert_eq!(out["taskDefinition"]["revision"], 51);
    }

    async fn latest(ctx: &Ctx, family: &str) -> Option<u32> {
        let r = TaskDefRef::parse(family).expect("parses");
        resolve(ctx, &r)
            .await
            .expect("resolves")
            .map(|(td, _)| td.revision)
    }

    #[tokio::test]
    async fn describe_of_a_family_skips_an_inactive_last_revision() {
        let ctx = ctx();
        for _ in 0..3 {
            register(&ctx, &body("web")).await.expect("registers");
        }
        assert_eq!(latest(&ctx, "web").await, Some(3));
        deregister(
            &ctx,
            DeregisterRequest {
                task_definition: "web:3".into(),
            },
        )
        .await
        .expect("deregisters");
        assert_eq!(latest(&ctx, "web").await, Some(2));
        assert_eq!(latest(&ctx, "nothing").await, None);
    }

    #[test]
    fn list_order_is_family_then_revision() {
        let td = |family: &str, revision| TaskDefinition {
            family: family.into(),
            revision,
            ..TaskDefinition::default()
        };
        let mut keys: Vec<String> = [td("web-2", 1), td("web", 10), td("web", 9), td("web_3", 1)]
            .iter()
            .map(list_sort_key)
            .collect();
        keys.sort();
        let want: Vec<String> = [td("web", 9), td("web", 10), td("web-2", 1), td("web_3", 1)]
            .iter()
            .map(list_sort_key)
            .collect();
        assert_eq!(keys, want);
    }
}
