//! AddTags, RemoveTags, DescribeTags on load balancers, target groups, listeners and rules.
//!
//! Every ELB record keeps its tags in a `tags` field, so these work on the stored JSON of
//! whichever record an ARN names.

use berth_model::lb::lenient::list;
use berth_model::lb::{merge_elb_tags, validate_elb_tags, ElbTag, MAX_ELB_TAGS};
use berth_model::{keys, ApiError, ErrorCode};
use berth_store::{StoreExt, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{commit, err, invalid, to_bytes, too_contended};
use crate::{store_err, Ctx};

/// At most this many resources in one tagging request.
const MAX_RESOURCES: usize = 20;

/// The store key of the record an ARN names, or the not-found error for its kind.
fn key_of(arn: &str) -> Result<String, ApiError> {
    let res = arn.rsplit_once(':').map(|(_, r)| r).unwrap_or("");
    let kind = res.split('/').next().unwrap_or("");
    match kind {
        "loadbalancer" => Ok(keys::elb_load_balancer(arn)),
        "targetgroup" => Ok(keys::elb_target_group(arn)),
        "listener" => Ok(keys::elb_listener(arn)),
        "listener-rule" => Ok(keys::elb_rule(arn)),
        _ => Err(invalid(format!("'{arn}' is not a valid resource ARN"))),
    }
}

fn not_found(arn: &str) -> ApiError {
    let code = if arn.contains(":targetgroup/") {
        ErrorCode::ElbTargetGroupNotFound
    } else if arn.contains(":listener-rule/") {
        ErrorCode::ElbRuleNotFound
    } else if arn.contains(":listener/") {
        ErrorCode::ElbListenerNotFound
    } else {
        ErrorCode::ElbLoadBalancerNotFound
    };
    err(code, format!("Resource '{arn}' not found"))
}

pub(crate) async fn load(ctx: &Ctx, arn: &str) -> Result<(String, Value, u64), ApiError> {
    let key = key_of(arn)?;
    match ctx
        .store()
        .get_json::<Value>(&key)
        .await
        .map_err(store_err)?
    {
        Some((v, rev)) if v["arn"] == arn => Ok((key, v, rev)),
        _ => Err(not_found(arn)),
    }
}

pub(crate) fn tags_of(v: &Value) -> Vec<ElbTag> {
    serde_json::from_value(v["tags"].clone()).unwrap_or_default()
}

async fn update(
    ctx: &Ctx,
    arns: &[String],
    f: impl Fn(&mut Vec<ElbTag>) -> Result<(), ApiError>,
) -> Result<Value, ApiError> {
    if arns.is_empty() {
        return Err(invalid("ResourceArns is required"));
    }
    if arns.len() > MAX_RESOURCES {
        return Err(invalid(format!(
            "At most {MAX_RESOURCES} resources can be tagged at once"
        )));
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let mut txn = Txn::new();
        for arn in arns {
            let (key, mut v, rev) = load(ctx, arn).await?;
            let mut tags = tags_of(&v);
            f(&mut tags)?;
            v["tags"] = serde_json::to_value(&tags).map_err(|e| ApiError::server(e.to_string()))?;
            txn = txn
                .when_mod_revision(key.clone(), rev)
                .put(key, to_bytes(&v)?);
        }
        if commit(ctx, txn).await? {
            return Ok(json!({}));
        }
    }
    Err(too_contended())
}

/// The request of `AddTags`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddRequest {
    #[serde(default, deserialize_with = "list")]
    resource_arns: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    tags: Vec<ElbTag>,
}

/// ELBv2 `AddTags`.
pub async fn add(ctx: &Ctx, req: AddRequest) -> Result<Value, ApiError> {
    if req.tags.is_empty() {
        return Err(invalid("Tags is required"));
    }
    validate_elb_tags(&req.tags)?;
    update(ctx, &req.resource_arns, |tags| {
        merge_elb_tags(tags, &req.tags);
        if tags.len() > MAX_ELB_TAGS {
            return Err(err(
                ErrorCode::ElbTooManyTags,
                format!("A resource has at most {MAX_ELB_TAGS} tags"),
            ));
        }
        Ok(())
    })
    .await
}

/// The request of `RemoveTags`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveRequest {
    #[serde(default, deserialize_with = "list")]
    resource_arns: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    tag_keys: Vec<String>,
}

/// ELBv2 `RemoveTags`.
pub async fn remove(ctx: &Ctx, req: RemoveRequest) -> Result<Value, ApiError> {
    update(ctx, &req.resource_arns, |tags| {
        tags.retain(|t| !req.tag_keys.contains(&t.key));
        Ok(())
    })
    .await
}

/// The request of `DescribeTags`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    #[serde(default, deserialize_with = "list")]
    resource_arns: Vec<String>,
}

/// ELBv2 `DescribeTags`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    if req.resource_arns.is_empty() {
        return Err(invalid("ResourceArns is required"));
    }
    if req.resource_arns.len() > MAX_RESOURCES {
        return Err(invalid(format!(
            "At most {MAX_RESOURCES} resources can be described at once"
        )));
    }
    let mut out = Vec::new();
    for arn in &req.resource_arns {
        let (_, v, _) = load(ctx, arn).await?;
        out.push(json!({"ResourceArn": arn, "Tags": tags_of(&v)}));
    }
    Ok(json!({ "TagDescriptions": out }))
}
