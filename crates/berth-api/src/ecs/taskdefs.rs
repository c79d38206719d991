//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition, DeleteTaskDefinitions.
//!
//! Revisions: each family has a record holding the last revision ever issued. Registering
//! reads it and writes revision+1 and the record in one compare-and-swap transaction, so two
//! concurrent registrations never get the same number and a deleted revision is never reused.
//! Within one server, registrations of a family also queue on an in-process lock, so a burst
//! of concurrent writers does not exhaust its compare-and-swap retries racing itself; the
//! compare-and-swap still guards against other API replicas.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use berth_model::{
    keys, ApiError, ErrorCode, ResourceKind, TaskDefRef, TaskDefinition, TaskDefinitionStatus,
    MAX_TASKDEF_BYTES,
};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::edge::parse_body;
use crate::paging::{page_json, paginate};
use crate::state::{store_err, to_bytes, Ctx};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FamilyRecord {
    family: String,
    last_revision: u32,
}

/// How often a registration retries when another writer took the same family revision.
const REGISTER_RETRIES: usize = 32;

type FamilyLocks = Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>;

/// One lock per family with a registration in flight (entries die with their last holder).
static FAMILY_LOCKS: LazyLock<FamilyLocks> = LazyLock::new(Default::default);

/// The in-process lock that orders registrations of `family`.
fn family_lock(family: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut locks = FAMILY_LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(lock) = locks.get(family).and_then(Weak::upgrade) {
        return lock;
    }
    locks.retain(|_, l| l.strong_count() > 0);
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    locks.insert(family.to_owned(), Arc::downgrade(&lock));
    lock
}

fn arn(ctx: &Ctx, td: &TaskDefinition) -> String {
    ctx.arn(
        ResourceKind::TaskDefinition,
        format!("{}:{}", td.family, td.revision),
    )
}

pub(crate) async fn register(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > MAX_TASKDEF_BYTES {
        return Err(ApiError::client(format!(
            "Task definition size exceeds the limit of {MAX_TASKDEF_BYTES} bytes."
        )));
    }
    let mut td: TaskDefinition = parse_body(body)?;
    td.validate_and_normalize()?;
    td.status = TaskDefinitionStatus::Active;
    td.registered_by = Some(ctx.principal_arn());
    td.deregistered_at = None;
    td.delete_requested_at = None;
    td.requires_attributes = Vec::new();
    let fkey = keys::family(&td.family);
    let lock = family_lock(&td.family);
    let _queued = lock.lock().await;
    for _ in 0..REGISTER_RETRIES {
        let (fam, frev) = ctx
            .store()
            .get_json::<FamilyRecord>(&fkey)
            .await
            .map_err(store_err)?
            .unwrap_or_default();
        let revision = fam.last_revision.checked_add(1).ok_or_else(|| {
            ApiError::new(
                ErrorCode::LimitExceededException,
                "This family has used every revision number.",
            )
        })?;
        td.revision = revision;
        td.registered_at = Some(ctx.now());
        let fam = FamilyRecord {
            family: td.family.clone(),
            last_revision: revision,
        };
        let txn = Txn::new()
            .when_mod_revision(fkey.clone(), frev)
            .put(fkey.clone(), to_bytes(&fam)?)
            .put(keys::taskdef(&td.family, revision), to_bytes(&td)?);
        if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            return Ok(json!({ "taskDefinition": td.to_wire(&arn(ctx, &td)), "tags": td.tags }));
        }
    }
    Err(ApiError::server(
        "Too many concurrent registrations for this family; retry.",
    ))
}

/// Finds the task definition a reference names: a given revision in any status, or the latest
/// ACTIVE revision of the family.
async fn resolve(ctx: &Ctx, r: &TaskDefRef) -> Result<Option<(TaskDefinition, u64)>, ApiError> {
    match r.revision {
        Some(rev) => ctx
            .store()
            .get_json::<TaskDefinition>(&keys::taskdef(&r.family, rev))
            .await
            .map_err(store_err),
        None => {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeTaskDefinitionRequest {
    task_definition: String,
    #[serde(default)]
    include: Vec<String>,
}

pub(crate) async fn describe(
    ctx: &Ctx,
    req: DescribeTaskDefinitionRequest,
) -> Result<Value, ApiError> {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListTaskDefinitionsRequest {
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(crate) async fn list(ctx: &Ctx, req: ListTaskDefinitionsRequest) -> Result<Value, ApiError> {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListFamiliesRequest {
    family_prefix: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(crate) async fn list_families(ctx: &Ctx, req: ListFamiliesRequest) -> Result<Value, ApiError> {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeregisterRequest {
    task_definition: String,
}

pub(crate) async fn deregister(ctx: &Ctx, req: DeregisterRequest) -> Result<Value, ApiError> {
    let (family, revision) = exact(&req.task_definition)?;
    let r = TaskDefRef {
        family,
        revision: Some(revision),
    };
    for _ in 0..REGISTER_RETRIES {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteRequest {
    task_definitions: Vec<String>,
}

pub(crate) async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
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

    #[test]
    fn one_lock_per_live_family() {
        let a = family_lock("lock-test-a");
        assert!(Arc::ptr_eq(&a, &family_lock("lock-test-a")));
        assert!(!Arc::ptr_eq(&a, &family_lock("lock-test-b")));
        drop(a);
        let again = family_lock("lock-test-a");
        assert_eq!(
            Arc::strong_count(&again),
            1,
            "a dropped lock is not kept alive"
        );
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
