//! TagResource, UntagResource, ListTagsForResource on clusters, task definitions, services,
//! tasks and container instances.

use berth_model::{
    keys, merge_tags, remove_tags, validate_tag_keys, validate_tags, ApiError, Arn, Cluster,
    ClusterStatus, ContainerInstance, ErrorCode, ResourceKind, Tag, Task, TaskDefRef,
};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::taskdefs::{load_exact, store_if_unchanged};
use crate::{store_err, to_bytes, Ctx};

enum Target {
    Cluster(String),
    TaskDef(String, u32),
    /// The ARN's resource part, `cluster/name`.
    Service(String),
    /// A record under a store key whose tags are changed in place (tasks, instances).
    Record(RecordKind, String),
}

#[derive(Clone, Copy)]
enum RecordKind {
    Task,
    Instance,
}

fn target(arn: &str) -> Result<Target, ApiError> {
    let parsed =
        Arn::parse(arn).ok_or_else(|| ApiError::invalid(format!("Invalid resource ARN: {arn}")))?;
    match parsed.kind {
        ResourceKind::Cluster => {
            berth_model::validate_cluster_name(&parsed.resource)?;
            Ok(Target::Cluster(parsed.resource))
        }
        ResourceKind::TaskDefinition => {
            let r = TaskDefRef::parse(arn)?;
            let rev = r.revision.ok_or_else(|| {
                ApiError::invalid("A task definition ARN must include its revision.")
            })?;
            Ok(Target::TaskDef(r.family, rev))
        }
        ResourceKind::Service => Ok(Target::Service(parsed.resource)),
        ResourceKind::Task | ResourceKind::ContainerInstance => {
            let (cluster, id) = parsed
                .resource
                .split_once('/')
                .ok_or_else(|| ApiError::invalid(format!("Invalid resource ARN: {arn}")))?;
            berth_model::validate_cluster_name(cluster)?;
            let what = if parsed.kind == ResourceKind::Task {
                "task"
            } else {
                "container instance"
            };
            berth_model::validate_id(what, id)?;
            Ok(if parsed.kind == ResourceKind::Task {
                Target::Record(RecordKind::Task, keys::task(cluster, id))
            } else {
                Target::Record(RecordKind::Instance, keys::instance(cluster, id))
            })
        }
        _ => Err(ApiError::new(
            ErrorCode::ResourceNotFoundException,
            format!("The specified resource could not be found: {arn}"),
        )),
    }
}

fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFoundException,
        "The specified resource could not be found.",
    )
}

/// The tagging API names a missing resource with one code, whatever its kind.
fn resource_not_found(e: ApiError) -> ApiError {
    if e.code == ErrorCode::ServiceNotFoundException {
        not_found()
    } else {
        e
    }
}

/// Applies `change` to the resource's tags with compare-and-swap, retrying on races.
async fn modify(
    ctx: &Ctx,
    arn: &str,
    change: impl Fn(&mut Vec<Tag>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        match target(arn)? {
            Target::Cluster(name) => {
                let key = keys::cluster(&name);
                let (mut c, rev) = match ctx
                    .store()
                    .get_json::<Cluster>(&key)
                    .await
                    .map_err(store_err)?
                {
                    Some((c, rev)) if c.status == ClusterStatus::Active => (c, rev),
                    _ => return Err(ApiError::cluster_not_found()),
                };
                change(&mut c.tags)?;
                let txn = Txn::new()
                    .when_mod_revision(key.clone(), rev)
                    .put(key, to_bytes(&c)?);
                if let TxnResult::Committed { .. } =
                    ctx.store().txn(txn).await.map_err(store_err)?
                {
                    return Ok(());
                }
            }
            Target::TaskDef(family, revision) => {
                let (mut td, rev) = load_exact(ctx, &family, revision)
                    .await?
                    .ok_or_else(not_found)?;
                change(&mut td.tags)?;
                if store_if_unchanged(ctx, &td, rev).await? {
                    return Ok(());
                }
            }
            Target::Service(resource) => {
                return super::services::modify_tags(ctx, &resource, &change)
                    .await
                    .map_err(resource_not_found);
            }
            Target::Record(kind, key) => {
                let Some((bytes, rev)) = record(ctx, kind, &key).await? else {
                    return Err(not_found());
                };
                let mut v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::server(format!("decoding {key}: {e}")))?;
                let mut tags: Vec<Tag> =
                    serde_json::from_value(v["tags"].take()).unwrap_or_default();
                change(&mut tags)?;
                v["tags"] = serde_json::to_value(&tags)
                    .map_err(|e| ApiError::server(format!("encoding tags: {e}")))?;
                let txn = Txn::new()
                    .when_mod_revision(key.clone(), rev)
                    .put(key, to_bytes(&v)?);
                if let TxnResult::Committed { .. } =
                    ctx.store().txn(txn).await.map_err(store_err)?
                {
                    return Ok(());
                }
            }
        }
    }
    Err(ApiError::server("Resource changed concurrently; retry."))
}

/// The raw record of a task or instance, when it exists (a stopped task counts until reaped;
/// a deregistered instance does not).
async fn record(
    ctx: &Ctx,
    kind: RecordKind,
    key: &str,
) -> Result<Option<(Vec<u8>, u64)>, ApiError> {
    let Some(kv) = ctx.store().get(key).await.map_err(store_err)? else {
        return Ok(None);
    };
    if let RecordKind::Instance = kind {
        let inst: ContainerInstance = serde_json::from_slice(&kv.value)
            .map_err(|e| ApiError::server(format!("decoding {key}: {e}")))?;
        if inst.status == berth_model::InstanceStatus::Inactive {
            return Ok(None);
        }
    }
    Ok(Some((kv.value, kv.mod_revision)))
}

/// The request of `TagResource`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    resource_arn: String,
    tags: Vec<Tag>,
}

/// ECS `TagResource`.
pub async fn tag(ctx: &Ctx, req: TagResourceRequest) -> Result<Value, ApiError> {
    validate_tags(&req.tags)?;
    modify(ctx, &req.resource_arn, |tags| merge_tags(tags, &req.tags)).await?;
    Ok(json!({}))
}

/// The request of `UntagResource`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceRequest {
    resource_arn: String,
    tag_keys: Vec<String>,
}

/// ECS `UntagResource`.
pub async fn untag(ctx: &Ctx, req: UntagResourceRequest) -> Result<Value, ApiError> {
    validate_tag_keys(&req.tag_keys)?;
    modify(ctx, &req.resource_arn, |tags| {
        remove_tags(tags, &req.tag_keys);
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

/// The request of `ListTagsForResource`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsRequest {
    resource_arn: String,
}

/// ECS `ListTagsForResource`.
pub async fn list(ctx: &Ctx, req: ListTagsRequest) -> Result<Value, ApiError> {
    // ListTagsForResource has no ResourceNotFoundException in ECS's model: a missing
    // resource is an invalid parameter there.
    list_tags(ctx, &req.resource_arn).await.map_err(|e| {
        if e.code == ErrorCode::ResourceNotFoundException {
            ApiError::invalid(e.message)
        } else {
            e
        }
    })
}

async fn list_tags(ctx: &Ctx, resource_arn: &str) -> Result<Value, ApiError> {
    let tags = match target(resource_arn)? {
        Target::Cluster(name) => {
            match ctx
                .store()
                .get_json::<Cluster>(&keys::cluster(&name))
                .await
                .map_err(store_err)?
            {
                Some((c, _)) if c.status == ClusterStatus::Active => c.tags,
                _ => return Err(ApiError::cluster_not_found()),
            }
        }
        Target::TaskDef(family, revision) => {
            load_exact(ctx, &family, revision)
                .await?
                .ok_or_else(not_found)?
                .0
                .tags
        }
        Target::Service(resource) => super::services::tags_of(ctx, &resource)
            .await
            .map_err(resource_not_found)?,
        Target::Record(kind, key) => {
            let (bytes, _) = record(ctx, kind, &key).await?.ok_or_else(not_found)?;
            let tags = match kind {
                RecordKind::Task => serde_json::from_slice::<Task>(&bytes).map(|t| t.tags),
                RecordKind::Instance => {
                    serde_json::from_slice::<ContainerInstance>(&bytes).map(|i| i.tags)
                }
            };
            tags.map_err(|e| ApiError::server(format!("decoding {key}: {e}")))?
        }
    };
    Ok(json!({ "tags": tags }))
}
