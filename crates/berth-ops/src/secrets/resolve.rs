//! The values a task's containers take from secrets, resolved when the server hands the task
//! to its agent. A reference that cannot be resolved gives the task's `stoppedReason`, worded
//! as the ECS agent words it (`ResourceInitializationError: unable to pull secrets or registry
//! auth: ...`). Values are never logged: errors name references, not contents.
//!
//! Each read is made with the task's execution role ([`ExecutionRole`]): a reference its
//! policies do not allow (`ssm:GetParameters`, `secretsmanager:GetSecretValue`) fails the task
//! with the AccessDeniedException SSM or Secrets Manager would answer the role, and a task
//! definition with secrets but no `executionRoleArn` (registered before RegisterTaskDefinition
//! refused it) fails too: berth reads no secret with its own authority.

use berth_model::secrets::{
    container_secret_refs, RegistryAuth, ResolvedContainer, ResolvedSecrets, SecretRef, SecretUse,
};
use berth_model::{ApiError, KeyValuePair, TaskDefinition};

use super::{secretsmanager as sm, ssm};
use crate::iam::execution::ExecutionRole;
use crate::Ctx;

const PREFIX: &str =
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource \
     retrieval failed";

/// Why a reference could not be resolved.
enum Failure {
    /// SSM parameters that do not exist.
    Ssm(String),
    /// An SSM parameter the execution role may not read (the AccessDeniedException).
    SsmDenied(String),
    /// Secrets and no execution role to read them with.
    NoRole,
    /// A Secrets Manager secret that cannot be read (id, error).
    Asm(String, String),
    /// The registry credentials' secret (id, error).
    RegistryAuth(String, String),
}

fn reason(f: Failure) -> String {
    match f {
        Failure::Ssm(names) => format!(
            "{PREFIX}: unable to retrieve secrets from ssm: service call has been retried 1 \
             time(s): invalid parameters: {names}"
        ),
        Failure::SsmDenied(e) => format!(
            "{PREFIX}: unable to retrieve secrets from ssm: service call has been retried 1 \
             time(s): {e}"
        ),
        Failure::NoRole => format!(
            "{PREFIX}: the task definition has secrets but no executionRoleArn to read them with"
        ),
        Failure::Asm(id, e) => format!(
            "{PREFIX}: unable to retrieve secret from asm: service call has been retried 1 \
             time(s): failed to fetch secret {id} from secrets manager: {e}"
        ),
        Failure::RegistryAuth(id, e) => format!(
            "{PREFIX}: unable to get registry auth from asm: service call has been retried 1 \
             time(s): asm fetching secret from the service for {id}: {e}"
        ),
    }
}

fn aws_error(e: &ApiError) -> String {
    format!("{}: {}", e.code.as_str(), e.message)
}

/// The current value of an SSM parameter read as `role` (`Ok(Ok(None))`: it does not exist;
/// `Ok(Err(text))`: the role may not read it). A name taken from an ARN without `/` may stand
/// for `/name`.
async fn ssm_value(
    ctx: &Ctx,
    role: &ExecutionRole,
    name: &str,
) -> Result<Result<Option<String>, String>, ApiError> {
    let params = serde_json::json!({ "Names": [name] });
    if let Err(denied) = role.allows(ctx, "ssm", "GetParameters", &params).await? {
        return Ok(Err(denied));
    }
    ssm_plain(ctx, name).await.map(Ok)
}

async fn ssm_plain(ctx: &Ctx, name: &str) -> Result<Option<String>, ApiError> {
    let mut found = ssm::load(ctx, name).await?;
    if found.is_none() && !name.starts_with('/') {
        found = ssm::load(ctx, &format!("/{name}")).await?;
    }
    let Some((p, _)) = found else {
        return Ok(None);
    };
    let Some(v) = p.latest() else {
        return Ok(None);
    };
    ssm::shown_value(ctx, &p.name, v, true).map(Some)
}

/// The text of a secret version, or the Secrets Manager error a read would answer.
async fn asm_text(
    ctx: &Ctx,
    id: &str,
    version_stage: Option<&str>,
    version_id: Option<&str>,
) -> Result<Result<String, String>, ApiError> {
    let Some((s, _, _)) = sm::find(ctx, id).await? else {
        return Ok(Err(aws_error(&sm::not_found())));
    };
    if s.is_scheduled_for_deletion() {
        return Ok(Err(aws_error(&sm::marked_for_deletion())));
    }
    let v = match sm::pick(&s, version_id, version_stage) {
        Ok(v) => v,
        Err(e) => return Ok(Err(aws_error(&e))),
    };
    match &v.string {
        Some(x) => Ok(Ok(ctx.open_text(&sm::aad(&s), x)?)),
        None => Ok(Err(
            "the secret holds a SecretBinary; ECS reads SecretString only".to_owned(),
        )),
    }
}

/// Resolves one Secrets Manager reference (with its json key), read as `role`.
async fn asm_value(
    ctx: &Ctx,
    role: &ExecutionRole,
    r: &SecretRef,
) -> Result<Result<String, Failure>, ApiError> {
    let SecretRef::SecretsManager {
        secret_id,
        json_key,
        version_stage,
        version_id,
    } = r
    else {
        return Ok(Err(Failure::Ssm(String::new())));
    };
    let params = serde_json::json!({ "SecretId": secret_id });
    if let Err(denied) = role
        .allows(ctx, "secretsmanager", "GetSecretValue", &params)
        .await?
    {
        return Ok(Err(Failure::Asm(secret_id.clone(), denied)));
    }
    let text = match asm_text(
        ctx,
        secret_id,
        version_stage.as_deref(),
        version_id.as_deref(),
    )
    .await?
    {
        Ok(t) => t,
        Err(e) => return Ok(Err(Failure::Asm(secret_id.clone(), e))),
    };
    let Some(key) = json_key else {
        return Ok(Ok(text));
    };
    let missing = || {
        Failure::Asm(
            secret_id.clone(),
            format!("retrieved secret from Secrets Manager did not contain json key {key}"),
        )
    };
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(Err(missing()));
    };
    Ok(match m.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(missing()),
    })
}

/// Resolves the secrets of every container of `td` (overrides applied) as the task's
/// execution `role`. `Ok(Ok(None))`: the task takes none; `Ok(Err(reason))`: one cannot be
/// resolved, and the task must stop with `reason`.
pub(crate) async fn resolve_task(
    ctx: &Ctx,
    td: &TaskDefinition,
    role: Option<&ExecutionRole>,
) -> Result<Result<Option<ResolvedSecrets>, String>, ApiError> {
    let mut out = ResolvedSecrets::default();
    let mut missing_ssm = Vec::new();
    for c in &td.container_definitions {
        let refs = container_secret_refs(c)?;
        if refs.is_empty() {
            continue;
        }
        let Some(role) = role else {
            return Ok(Err(reason(Failure::NoRole)));
        };
        let mut rc = ResolvedContainer::default();
        for (u, r) in refs {
            let value = match &r {
                SecretRef::Ssm { name } => match ssm_value(ctx, role, name).await? {
                    Err(denied) => return Ok(Err(reason(Failure::SsmDenied(denied)))),
                    Ok(Some(v)) => v,
                    Ok(None) => {
                        missing_ssm.push(name.clone());
                        continue;
                    }
                },
                SecretRef::SecretsManager { .. } => match asm_value(ctx, role, &r).await? {
                    Ok(v) => v,
                    Err(Failure::Asm(id, e)) if u == SecretUse::RegistryAuth => {
                        return Ok(Err(reason(Failure::RegistryAuth(id, e))))
                    }
                    Err(f) => return Ok(Err(reason(f))),
                },
            };
            match u {
                SecretUse::Env(name) => rc.environment.push(KeyValuePair { name, value }),
                SecretUse::LogOption(name) => {
                    rc.log_options.insert(name, value);
                }
                SecretUse::RegistryAuth => {
                    let id = match &r {
                        SecretRef::SecretsManager { secret_id, .. } => secret_id.clone(),
                        SecretRef::Ssm { name } => name.clone(),
                    };
                    match serde_json::from_str::<RegistryAuth>(&value) {
                        Ok(a) => rc.registry_auth = Some(a),
                        Err(_) => {
                            return Ok(Err(reason(Failure::RegistryAuth(
                                id,
                                "the secret is not JSON with \"username\" and \"password\""
                                    .to_owned(),
                            ))))
                        }
                    }
                }
            }
        }
        out.containers.insert(c.name.clone(), rc);
    }
    if !missing_ssm.is_empty() {
        return Ok(Err(reason(Failure::Ssm(missing_ssm.join(", ")))));
    }
    Ok(Ok((!out.containers.is_empty()).then_some(out)))
}
