//! The Elastic Load Balancing (v2) API over the AWS Query protocol.
//!
//! [`serve`] takes a form-encoded `POST /` from the edge: it verifies the SigV4 signature for
//! service `elasticloadbalancing`, parses the form into a JSON tree ([`query`]), runs the
//! action's handler (one module per resource) and writes the answer, or the error, as XML.
//! Handlers return the fields of the action's `...Result` element as JSON.

mod listeners;
mod load_balancers;
pub(crate) mod query;
mod rules;
mod tags;
mod target_groups;
mod targets;

use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use berth_model::{ApiError, ErrorCode};
use berth_store::{Txn, TxnResult};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::state::{store_err, Ctx};
use crate::ApiState;

/// The service name ELB requests are signed for.
pub(crate) const SERVICE: &str = "elasticloadbalancing";

/// The ELBv2 API version berth speaks.
const API_VERSION: &str = "2015-12-01";

/// Serves one Query-protocol request (the edge has seen a form body and no `X-Amz-Target`).
pub(crate) async fn serve(state: ApiState, parts: Parts, body: Body, rid: String) -> Response {
    let result = async {
        let body = crate::edge::read_body(body, &parts.headers).await?;
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let sreq = berth_sigv4::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            body: &body,
        };
        let now = UNIX_EPOCH + Duration::from_secs_f64(state.clock.now().max(0.0));
        let id = state.keys.authenticate(&sreq, SERVICE, now)?;
        let q = query::parse_form(&body)?;
        if let Some(v) = q.version.as_deref().filter(|v| *v != API_VERSION) {
            return Err(invalid(format!(
                "Version '{v}' is not supported; use {API_VERSION}"
            )));
        }
        let ctx = Ctx {
            state: state.clone(),
            region: id.region,
        };
        tracing::debug!(action = %q.action, request_id = %rid, "elbv2 request");
        let out = dispatch(&ctx, &q.action, q.params).await?;
        Ok::<_, ApiError>((q.action, out))
    }
    .await;
    let (status, xml) = match result {
        Ok((action, v)) => (StatusCode::OK, query::response_xml(&action, &v, &rid)),
        Err(e) => {
            if e.code == ErrorCode::ServerException {
                tracing::error!(request_id = %rid, message = %e.message, "server error");
            }
            (
                StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST),
                query::error_xml(&e, &rid),
            )
        }
    };
    let mut resp = (status, xml).into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(&rid) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// Runs one ELBv2 action on its parsed parameters.
pub(crate) async fn dispatch(ctx: &Ctx, action: &str, p: Value) -> Result<Value, ApiError> {
    match action {
        "CreateLoadBalancer" => load_balancers::create(ctx, parse(p)?).await,
        "DescribeLoadBalancers" => load_balancers::describe(ctx, parse(p)?).await,
        "DeleteLoadBalancer" => load_balancers::delete(ctx, parse(p)?).await,
        "CreateTargetGroup" => target_groups::create(ctx, parse(p)?).await,
        "DescribeTargetGroups" => target_groups::describe(ctx, parse(p)?).await,
        "ModifyTargetGroup" => target_groups::modify(ctx, parse(p)?).await,
        "DescribeTargetGroupAttributes" => target_groups::describe_attributes(ctx, parse(p)?).await,
        "ModifyTargetGroupAttributes" => target_groups::modify_attributes(ctx, parse(p)?).await,
        "DeleteTargetGroup" => target_groups::delete(ctx, parse(p)?).await,
        "CreateListener" => listeners::create(ctx, parse(p)?).await,
        "DescribeListeners" => listeners::describe(ctx, parse(p)?).await,
        "ModifyListener" => listeners::modify(ctx, parse(p)?).await,
        "DeleteListener" => listeners::delete(ctx, parse(p)?).await,
        "CreateRule" => rules::create(ctx, parse(p)?).await,
        "DescribeRules" => rules::describe(ctx, parse(p)?).await,
        "ModifyRule" => rules::modify(ctx, parse(p)?).await,
        "SetRulePriorities" => rules::set_priorities(ctx, parse(p)?).await,
        "DeleteRule" => rules::delete(ctx, parse(p)?).await,
        "RegisterTargets" => targets::register(ctx, parse(p)?).await,
        "DeregisterTargets" => targets::deregister(ctx, parse(p)?).await,
        "DescribeTargetHealth" => targets::describe_health(ctx, parse(p)?).await,
        "AddTags" => tags::add(ctx, parse(p)?).await,
        "RemoveTags" => tags::remove(ctx, parse(p)?).await,
        "DescribeTags" => tags::describe(ctx, parse(p)?).await,
        _ => Err(ApiError::new(
            ErrorCode::ElbInvalidAction,
            format!("berth does not implement the ELBv2 action {action:?}."),
        )),
    }
}

/// A request's parameters as its typed request.
fn parse<T: DeserializeOwned>(p: Value) -> Result<T, ApiError> {
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
fn iso(t: f64) -> String {
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
    crate::state::to_bytes(v)
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
