//! RegisterScalableTarget, DescribeScalableTargets, DeregisterScalableTarget, and the tags of
//! scalable targets (TagResource, UntagResource, ListTagsForResource).

use std::collections::BTreeMap;

use berth_model::autoscaling::validate_capacity;
use berth_model::{
    keys, ApiError, ErrorCode, ScalableTarget, Service, ServiceStatus, SuspendedState,
};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    check_target, concurrent, find_target, load_target, new_hex_id, page, page_json, validation,
};
use crate::{store_err, to_bytes, Ctx};

/// Tags per scalable target.
const MAX_TAGS: usize = 50;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct SuspendedStateIn {
    dynamic_scaling_in_suspended: Option<bool>,
    dynamic_scaling_out_suspended: Option<bool>,
    scheduled_scaling_suspended: Option<bool>,
}

/// The request of `RegisterScalableTarget`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterRequest {
    service_namespace: String,
    resource_id: String,
    scalable_dimension: String,
    min_capacity: Option<i64>,
    max_capacity: Option<i64>,
    #[serde(rename = "RoleARN")]
    role_arn: Option<String>,
    suspended_state: Option<SuspendedStateIn>,
    tags: Option<BTreeMap<String, String>>,
}

fn capacity(name: &str, v: Option<i64>) -> Result<Option<u32>, ApiError> {
    v.map(|n| {
        u32::try_from(n)
            .ok()
            .filter(|n| *n <= berth_model::autoscaling::MAX_CAPACITY)
            .ok_or_else(|| validation(format!("{name} must be between 0 and 10000; got {n}.")))
    })
    .transpose()
}

fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(validation(format!(
                "Invalid tag {k:?}: keys are 1 to 128 characters and values at most 256."
            )));
        }
        if k.starts_with("aws:") {
            return Err(validation("Tag keys beginning with 'aws:' are reserved."));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            ErrorCode::TooManyTagsException,
            format!("A scalable target can have at most {MAX_TAGS} tags."),
        ));
    }
    Ok(())
}

/// Application Auto Scaling `RegisterScalableTarget`: registers a target, or updates the one
/// registered.
pub async fn register(ctx: &Ctx, req: RegisterRequest) -> Result<Value, ApiError> {
    check_target(
        &req.service_namespace,
        &req.resource_id,
        &req.scalable_dimension,
    )?;
    let min = capacity("MinCapacity", req.min_capacity)?;
    let max = capacity("MaxCapacity", req.max_capacity)?;
    if let Some(tags) = &req.tags {
        validate_tags(tags)?;
    }
    let (cluster, service) = berth_model::autoscaling::parse_service_resource_id(&req.resource_id)
        .ok_or_else(|| validation("Invalid resource id."))?;
    let svc = ctx
        .store()
        .get_json::<Service>(&keys::service(cluster, service))
        .await
        .map_err(store_err)?;
    if !matches!(svc, Some((ref s, _)) if s.status == ServiceStatus::Active) {
        return Err(validation(format!(
            "ECS service doesn't exist: {}",
            req.resource_id
        )));
    }
    let key = keys::aas_target(&req.resource_id);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let existing = find_target(ctx, &req.resource_id).await?;
        let rev = existing.as_ref().map_or(0, |(_, r)| *r);
        let mut target = match existing {
            Some((t, _)) => t,
            None => {
                let (Some(min), Some(max)) = (min, max) else {
                    return Err(validation(
                        "MinCapacity and MaxCapacity are required to register a new scalable \
                         target.",
                    ));
                };
                ScalableTarget {
                    service_namespace: req.service_namespace.clone(),
                    resource_id: req.resource_id.clone(),
                    scalable_dimension: req.scalable_dimension.clone(),
                    min_capacity: min,
                    max_capacity: max,
                    role_arn: format!(
                        "arn:aws:iam::{}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
                        ctx.account()
                    ),
                    creation_time: ctx.now(),
                    suspended_state: SuspendedState::default(),
                    scalable_target_arn: format!(
                        "arn:aws:application-autoscaling:{}:{}:scalable-target/{}",
                        ctx.region,
                        ctx.account(),
                        new_hex_id()
                    ),
                }
            }
        };
        if let Some(m) = min {
            target.min_capacity = m;
        }
        if let Some(m) = max {
            target.max_capacity = m;
        }
        validate_capacity(target.min_capacity, target.max_capacity)?;
        if let Some(r) = &req.role_arn {
            if !r.starts_with("arn:") {
                return Err(validation(format!("Invalid RoleARN {r:?}.")));
            }
            target.role_arn = r.clone();
        }
        if let Some(s) = &req.suspended_state {
            let st = &mut target.suspended_state;
            if let Some(v) = s.dynamic_scaling_in_suspended {
                st.dynamic_scaling_in_suspended = v;
            }
            if let Some(v) = s.dynamic_scaling_out_suspended {
                st.dynamic_scaling_out_suspended = v;
            }
            if let Some(v) = s.scheduled_scaling_suspended {
                st.scheduled_scaling_suspended = v;
            }
        }
        let mut txn = Txn::new()
            .when_mod_revision(&key, rev)
            .put(&key, to_bytes(&target)?);
        if let Some(tags) = &req.tags {
            if !tags.is_empty() {
                // Tags given at registration merge into the target's tags.
                let tkey = keys::aas_tags(&req.resource_id);
                let (mut all, trev) = ctx
                    .store()
                    .get_json::<BTreeMap<String, String>>(&tkey)
                    .await
                    .map_err(store_err)?
                    .unwrap_or_default();
                all.extend(tags.clone());
                validate_tags(&all)?;
                txn = txn
                    .when_mod_revision(&tkey, trev)
                    .put(tkey, to_bytes(&all)?);
            }
        }
        match ctx.store().txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } => {
                return Ok(json!({"ScalableTargetARN": target.scalable_target_arn}))
            }
            TxnResult::Conflict { .. } => continue,
        }
    }
    Err(concurrent())
}

/// The request of `DescribeScalableTargets`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    service_namespace: String,
    #[serde(default)]
    resource_ids: Vec<String>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// Application Auto Scaling `DescribeScalableTargets`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let sel = super::Selection {
        namespace: &req.service_namespace,
        resource_id: None,
        dimension: req.scalable_dimension.as_deref(),
    };
    let mut items =
        super::records::<ScalableTarget>(ctx, sel, keys::aas_target, keys::AAS_TARGETS, |t| {
            &t.scalable_dimension
        })
        .await?;
    items.retain(|(_, t)| req.resource_ids.is_empty() || req.resource_ids.contains(&t.resource_id));
    let (items, next) = page(items, req.max_results, req.next_token.as_deref(), false)?;
    Ok(page_json("ScalableTargets", items, next))
}

/// The request of `DeregisterScalableTarget`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeregisterRequest {
    service_namespace: String,
    resource_id: String,
    scalable_dimension: String,
}

/// Deletes the target with its scaling policies, scheduled actions and tags.
pub async fn deregister(ctx: &Ctx, req: DeregisterRequest) -> Result<Value, ApiError> {
    check_target(
        &req.service_namespace,
        &req.resource_id,
        &req.scalable_dimension,
    )?;
    let rid = &req.resource_id;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (_, rev) =
            load_target(ctx, &req.service_namespace, rid, &req.scalable_dimension).await?;
        let key = keys::aas_target(rid);
        let mut txn = Txn::new().when_mod_revision(&key, rev).delete(&key);
        for prefix in [keys::aas_policies_of(rid), keys::aas_scheduled_of(rid)] {
            let (kvs, _) = ctx.store().list(&prefix).await.map_err(store_err)?;
            for kv in kvs {
                txn = txn.delete(kv.key);
            }
        }
        txn = txn.delete(keys::aas_tags(rid));
        match ctx.store().txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } => return Ok(json!({})),
            TxnResult::Conflict { .. } => continue,
        }
    }
    Err(concurrent())
}

/// The target a scalable-target ARN names, or ResourceNotFoundException.
pub(crate) async fn target_by_arn(ctx: &Ctx, arn: &str) -> Result<ScalableTarget, ApiError> {
    let all = ctx
        .store()
        .list_json::<ScalableTarget>(keys::AAS_TARGETS)
        .await
        .map_err(store_err)?;
    all.into_iter()
        .map(|(_, t, _)| t)
        .find(|t| t.scalable_target_arn == arn)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFoundException,
                format!("Scalable target not found: {arn}"),
            )
        })
}

/// The request of `TagResource`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagRequest {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    tags: BTreeMap<String, String>,
}

/// The request of `UntagResource`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagRequest {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    tag_keys: Vec<String>,
}

/// The request of `ListTagsForResource`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsRequest {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
}

/// Read-modify-write of a target's tags with compare-and-swap.
async fn edit_tags(
    ctx: &Ctx,
    arn: &str,
    edit: impl Fn(&mut BTreeMap<String, String>) -> Result<(), ApiError>,
) -> Result<Value, ApiError> {
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let target = target_by_arn(ctx, arn).await?;
        let key = keys::aas_tags(&target.resource_id);
        let (mut tags, rev) = ctx
            .store()
            .get_json::<BTreeMap<String, String>>(&key)
            .await
            .map_err(store_err)?
            .unwrap_or_default();
        edit(&mut tags)?;
        let txn = Txn::new()
            .when_mod_revision(&key, rev)
            .put(&key, to_bytes(&tags)?);
        match ctx.store().txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } => return Ok(json!({})),
            TxnResult::Conflict { .. } => continue,
        }
    }
    Err(concurrent())
}

/// Application Auto Scaling `TagResource` (on a scalable target).
pub async fn tag(ctx: &Ctx, req: TagRequest) -> Result<Value, ApiError> {
    if req.tags.is_empty() {
        return Err(validation("Tags must not be empty."));
    }
    validate_tags(&req.tags)?;
    edit_tags(ctx, &req.resource_arn, |t| {
        t.extend(req.tags.clone());
        validate_tags(t)
    })
    .await
}

/// Application Auto Scaling `UntagResource` (on a scalable target).
pub async fn untag(ctx: &Ctx, req: UntagRequest) -> Result<Value, ApiError> {
    edit_tags(ctx, &req.resource_arn, |t| {
        for k in &req.tag_keys {
            t.remove(k);
        }
        Ok(())
    })
    .await
}

/// Application Auto Scaling `ListTagsForResource` (of a scalable target).
pub async fn list_tags(ctx: &Ctx, req: ListTagsRequest) -> Result<Value, ApiError> {
    let target = target_by_arn(ctx, &req.resource_arn).await?;
    let tags = ctx
        .store()
        .get_json::<BTreeMap<String, String>>(&keys::aas_tags(&target.resource_id))
        .await
        .map_err(store_err)?
        .map(|(t, _)| t)
        .unwrap_or_default();
    Ok(json!({ "Tags": tags }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_and_tags_validate() {
        assert_eq!(capacity("MinCapacity", Some(3)).unwrap(), Some(3));
        assert!(capacity("MinCapacity", Some(-1)).is_err());
        assert!(capacity("MaxCapacity", Some(10_001)).is_err());
        let many: BTreeMap<String, String> =
            (0..51).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(
            validate_tags(&many).unwrap_err().code,
            ErrorCode::TooManyTagsException
        );
        let reserved = BTreeMap::from([("aws:x".to_owned(), String::new())]);
        assert!(validate_tags(&reserved).is_err());
    }
}
