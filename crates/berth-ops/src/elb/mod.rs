//! The Elastic Load Balancing (v2) actions: one module per resource, each action a typed
//! request and a function returning the fields of the action's `...Result` element as JSON
//! (the edge writes them as Query-protocol XML).

pub mod listeners;
pub mod load_balancers;
pub mod rules;
pub mod tags;
pub mod target_groups;
pub mod targets;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use berth_model::{ApiError, ErrorCode};
use berth_store::{StoreExt, Txn, TxnResult};
use serde_json::Value;

use crate::{store_err, Ctx};

/// ELBv2's `Attributes` answer (`[{Key, Value}]`) from a load balancer's or target group's
/// attributes, defaults included.
pub(crate) fn attributes_wire(attrs: &std::collections::BTreeMap<String, String>) -> Value {
    let list: Vec<Value> = attrs
        .iter()
        .map(|(k, v)| serde_json::json!({"Key": k, "Value": v}))
        .collect();
    serde_json::json!({ "Attributes": list })
}

/// A Query request's parameters (as the edge's JSON tree) as the action's typed request.
pub fn parse<T: serde::de::DeserializeOwned>(p: Value) -> Result<T, ApiError> {
    serde_json::from_value(p).map_err(|e| invalid(format!("Invalid request parameters: {e}")))
}

pub(crate) fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ElbValidationError, m)
}

pub(crate) fn err(code: ErrorCode, m: impl Into<String>) -> ApiError {
    ApiError::new(code, m)
}

fn too_contended() -> ApiError {
    ApiError::server("The resource is being modified by too many requests at once; retry.")
}

/// The ARN a name index (`elb/name/...`) holds, or `missing()`.
async fn arn_by_name(
    ctx: &Ctx,
    index_key: &str,
    missing: impl FnOnce() -> ApiError,
) -> Result<String, ApiError> {
    ctx.store()
        .get_json::<String>(index_key)
        .await
        .map_err(store_err)?
        .map(|(arn, _)| arn)
        .ok_or_else(missing)
}

/// A fresh 16-hex-digit resource id.
fn new_id() -> String {
    let u = uuid::Uuid::new_v4().as_u128();
    format!("{:016x}", (u >> 64) as u64 ^ u as u64)
}

impl Ctx {
    /// An ELB ARN for `resource` (`loadbalancer/app/NAME/ID`, `targetgroup/NAME/ID`, ...).
    pub(crate) fn elb_arn(&self, resource: &str) -> String {
        format!(
            "arn:aws:elasticloadbalancing:{}:{}:{resource}",
            self.region, self.state.config.account_id
        )
    }
}

/// A time as ELB shows it: ISO 8601 with milliseconds, in UTC.
pub(crate) fn iso(t: f64) -> String {
    let nanos = (t * 1e9) as i128;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos - nanos % 1_000_000)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Commits `txn`; `false` when another writer got there first.
async fn commit(ctx: &Ctx, txn: Txn) -> Result<bool, ApiError> {
    Ok(matches!(
        ctx.store().txn(txn).await.map_err(store_err)?,
        TxnResult::Committed { .. }
    ))
}

fn to_bytes<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    crate::to_bytes(v)
}

/// ELB's page size when `PageSize` is not given, and its upper bound.
const MAX_PAGE: usize = 400;

/// One page of key-sorted `items` after `marker`: `(items, NextMarker)`.
fn page<T>(
    items: Vec<(String, T)>,
    marker: Option<&str>,
    page_size: Option<u32>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match page_size {
        None => MAX_PAGE,
        Some(n) if (1..=MAX_PAGE as u32).contains(&n) => n as usize,
        Some(n) => {
            return Err(invalid(format!(
                "PageSize must be between 1 and {MAX_PAGE}; got {n}"
            )))
        }
    };
    let after = match marker.filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => Some(
            URL_SAFE_NO_PAD
                .decode(m)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid("Invalid Marker"))?,
        ),
    };
    let mut rest: Vec<(String, T)> = match &after {
        Some(a) => items.into_iter().filter(|(k, _)| k > a).collect(),
        None => items,
    };
    let more = rest.len() > size;
    rest.truncate(size);
    let next = if more {
        rest.last().map(|(k, _)| URL_SAFE_NO_PAD.encode(k))
    } else {
        None
    };
    Ok((rest.into_iter().map(|(_, v)| v).collect(), next))
}

/// `{field: items, NextMarker: ...}`, with `NextMarker` left out on the last page.
fn page_result(field: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut out = serde_json::json!({ field: items });
    if let Some(n) = next {
        out["NextMarker"] = Value::String(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_hex() {
        let a = new_id();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_id());
    }

    #[test]
    fn times_are_iso8601() {
        assert_eq!(iso(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_700_000_000.5), "2023-11-14T22:13:20.5Z");
    }

    #[test]
    fn pages_walk_every_item() {
        let items: Vec<(String, u32)> = (0..10).map(|i| (format!("k{i:02}"), i)).collect();
        let (mut seen, mut marker) = (Vec::new(), None::<String>);
        loop {
            let (p, next) = page(items.clone(), marker.as_deref(), Some(3)).unwrap();
            seen.extend(p);
            match next {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert!(page(items.clone(), None, Some(0)).is_err());
        assert!(page(items, Some("!!"), None).is_err());
    }
}
