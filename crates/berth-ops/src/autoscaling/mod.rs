//! Application Auto Scaling (`AnyScaleFrontendService.<Action>`, signed for
//! `application-autoscaling`), for ECS services only, and berth's metric alarms (`BerthV1.`
//! `PutMetricAlarm` / `DescribeAlarms` / `DeleteAlarms`), which trigger step scaling policies.
//!
//! These actions only write records (`berth_model::autoscaling`); the autoscaler controller
//! reads them, measures, changes services' desired counts and writes scaling activities.

pub mod activities;
pub mod alarms;
pub mod policies;
pub mod scheduled;
pub mod targets;

use berth_model::autoscaling::validate_ecs_target;
use berth_model::{keys, ApiError, ErrorCode, ScalableTarget};
use berth_store::{Revision, StoreExt, Txn, TxnResult};
use serde_json::Value;

use crate::{store_err, Ctx};

/// Application Auto Scaling's page size when `MaxResults` is not given, and its upper bound.
const MAX_PAGE: i64 = 50;

pub(crate) fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ValidationException, message)
}

fn object_not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ObjectNotFoundException, message)
}

fn concurrent() -> ApiError {
    ApiError::new(
        ErrorCode::ConcurrentUpdateException,
        "Concurrent updates to the same resource; try again.",
    )
}

/// Checks an ECS target's namespace, resource id and dimension (all given).
fn check_target(ns: &str, rid: &str, dim: &str) -> Result<(), ApiError> {
    validate_ecs_target(ns, Some(rid), Some(dim))
}

/// A new random id: 32 hex digits.
fn new_hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

impl Ctx {
    fn account(&self) -> &str {
        &self.state.config.account_id
    }
}

/// The scalable target of `resource_id`, if registered, with its revision.
pub(crate) async fn find_target(
    ctx: &Ctx,
    resource_id: &str,
) -> Result<Option<(ScalableTarget, Revision)>, ApiError> {
    ctx.store()
        .get_json::<ScalableTarget>(&keys::aas_target(resource_id))
        .await
        .map_err(store_err)
}

/// The scalable target of `resource_id`, or ObjectNotFoundException.
async fn load_target(
    ctx: &Ctx,
    ns: &str,
    resource_id: &str,
    dim: &str,
) -> Result<(ScalableTarget, Revision), ApiError> {
    find_target(ctx, resource_id).await?.ok_or_else(|| {
        object_not_found(format!(
            "No scalable target registered for service namespace: {ns}, resource ID: \
             {resource_id}, scalable dimension: {dim}"
        ))
    })
}

/// What a Describe action asks for: a namespace, and optionally one resource and one scalable
/// dimension.
struct Selection<'a> {
    namespace: &'a str,
    resource_id: Option<&'a str>,
    dimension: Option<&'a str>,
}

/// The Describe actions' common start: checks the selection, then lists the records of one
/// kind under its resource (`of(resource_id)`), or under every target (`all`) when it names
/// none, and keeps those of its dimension (`dimension_of`), as `(key, record)`.
async fn records<T: serde::de::DeserializeOwned>(
    ctx: &Ctx,
    sel: Selection<'_>,
    of: fn(&str) -> String,
    all: &str,
    dimension_of: fn(&T) -> &str,
) -> Result<Vec<(String, T)>, ApiError> {
    validate_ecs_target(sel.namespace, sel.resource_id, sel.dimension)?;
    let prefix = sel.resource_id.map_or_else(|| all.to_owned(), of);
    let listed = ctx
        .store()
        .list_json::<T>(&prefix)
        .await
        .map_err(store_err)?;
    Ok(listed
        .into_iter()
        .filter(|(_, r, _)| sel.dimension.is_none_or(|d| d == dimension_of(r)))
        .map(|(k, r, _)| (k, r))
        .collect())
}

/// Deletes the record at `key`, or answers ObjectNotFoundException with `missing()`: the
/// delete actions' common body, retried on a concurrent change.
async fn delete_record(
    ctx: &Ctx,
    key: &str,
    missing: impl FnOnce() -> String,
) -> Result<Value, ApiError> {
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let Some(kv) = ctx.store().get(key).await.map_err(store_err)? else {
            return Err(object_not_found(missing()));
        };
        let txn = Txn::new()
            .when_mod_revision(key, kv.mod_revision)
            .delete(key);
        match ctx.store().txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } => return Ok(serde_json::json!({})),
            TxnResult::Conflict { .. } => continue,
        }
    }
    Err(concurrent())
}

/// One page of `items` (sorted by their keys, ascending or descending) after `token`, with
/// Application Auto Scaling's limits and error codes.
fn page<T>(
    items: Vec<(String, T)>,
    max_results: Option<i64>,
    token: Option<&str>,
    descending: bool,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match max_results {
        None => MAX_PAGE,
        Some(n) if (1..=MAX_PAGE).contains(&n) => n,
        Some(n) => {
            return Err(validation(format!(
                "MaxResults must be between 1 and {MAX_PAGE}; got {n}."
            )))
        }
    };
    crate::paging::paginate(items, Some(size), token, descending).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidNextTokenException,
            "The NextToken is not valid.",
        )
    })
}

/// `{field: items, "NextToken": ...}`, without `NextToken` on the last page.
fn page_json<T: serde::Serialize>(field: &str, items: Vec<T>, next: Option<String>) -> Value {
    let mut out = serde_json::json!({ field: items });
    if let Some(t) = next {
        out["NextToken"] = Value::String(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_errors_have_autoscaling_codes() {
        let items = |n: usize| (0..n).map(|i| (format!("k{i:03}"), i)).collect::<Vec<_>>();
        let e = page(items(3), Some(51), None, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
        let e = page(items(3), None, Some("garbage!"), false).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidNextTokenException);
        let (p, next) = page(items(60), None, None, false).unwrap();
        assert_eq!(p.len(), 50);
        assert!(next.is_some());
        assert_eq!(page_json("X", vec![1], None), serde_json::json!({"X": [1]}));
    }
}
