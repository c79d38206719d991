//! TagResource, UntagResource, ListTagsForResource on clusters and task definitions.

use berth_model::{
    keys, merge_tags, remove_tags, validate_tag_keys, validate_tags, ApiError, Arn, Cluster,
    ClusterStatus, ErrorCode, ResourceKind, Tag, TaskDefRef,
};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::taskdefs::{load_exact, store_if_unchanged};
use crate::state::{store_err, to_bytes, Ctx};

const RETRIES: usize = 32;

enum Target {
    Cluster(String),
    TaskDef(String, u32),
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

/// Applies `change` to the resource's tags with compare-and-swap, retrying on races.
async fn modify(
    ctx: &Ctx,
    arn: &str,
    change: impl Fn(&mut Vec<Tag>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    for _ in 0..RETRIES {
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
        }
    }
    Err(ApiError::server("Resource changed concurrently; retry."))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TagResourceRequest {
    resource_arn: String,
    tags: Vec<Tag>,
}

pub(crate) async fn tag(ctx: &Ctx, req: TagResourceRequest) -> Result<Value, ApiError> {
    validate_tags(&req.tags)?;
    modify(ctx, &req.resource_arn, |tags| merge_tags(tags, &req.tags)).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UntagResourceRequest {
    resource_arn: String,
    tag_keys: Vec<String>,
}

pub(crate) async fn untag(ctx: &Ctx, req: UntagResourceRequest) -> Result<Value, ApiError> {
    validate_tag_keys(&req.tag_keys)?;
    modify(ctx, &req.resource_arn, |tags| {
        remove_tags(tags, &req.tag_keys);
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListTagsRequest {
    resource_arn: String,
}

pub(crate) async fn list(ctx: &Ctx, req: ListTagsRequest) -> Result<Value, ApiError> {
    let tags = match target(&req.resource_arn)? {
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
    };
    Ok(json!({ "tags": tags }))
}
