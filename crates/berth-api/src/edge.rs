//! The HTTP edge: one route for every AWS API, body cap, SigV4, dispatch by protocol, and the
//! rendering of results and errors as AWS JSON 1.1.

use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_model::{ApiError, ErrorCode};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::authz::{Caller, Named};
use crate::ApiState;

/// Requests larger than this are refused before they are parsed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const ECS_TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
/// berth's own actions (not ECS's), on the same protocol and signing as ECS.
const BERTH_TARGET_PREFIX: &str = "BerthV1.";
/// Application Auto Scaling, signed for `application-autoscaling`.
const AUTOSCALING_TARGET_PREFIX: &str = "AnyScaleFrontendService.";
/// SSM Parameter Store, signed for `ssm`.
const SSM_TARGET_PREFIX: &str = "AmazonSSM.";
/// Secrets Manager, signed for `secretsmanager`.
const SECRETS_MANAGER_TARGET_PREFIX: &str = "secretsmanager.";
/// CloudWatch Logs, signed for `logs`.
const LOGS_TARGET_PREFIX: &str = "Logs_20140328.";
const JSON_11: &str = "application/x-amz-json-1.1";

/// The API server's routes: `POST /` for the AWS APIs, `GET /ping` for liveness probes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", post(aws_api))
        .route("/ping", get(ping))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/agent/v1/register", post(crate::agent::register))
        .route("/agent/v1/poll", get(crate::agent::poll))
        .route("/agent/v1/status", post(crate::agent::status))
        .route("/agent/v1/logs", post(crate::agent::logs))
        .with_state(state)
}

/// Liveness and readiness: 503 while the store refuses writes (an I/O fault or a full disk),
/// so a load balancer or supervisor in front of berth sees it.
async fn ping(State(state): State<ApiState>) -> Response {
    if state.ops.store_healthy() {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
    }
}

/// A fresh request id in UUID v4 form: a random base drawn once per process, XORed with a
/// counter. Unique within the process and unlikely to repeat across processes, without a
/// call into the OS's random source on every request (which is what `Uuid::new_v4` makes).
fn request_id() -> String {
    static BASE: std::sync::LazyLock<u128> =
        std::sync::LazyLock::new(|| uuid::Uuid::new_v4().as_u128());
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The counter goes in the low bits, clear of the version and variant bits.
    let bytes = (*BASE ^ u128::from(n)).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

async fn aws_api(State(state): State<ApiState>, req: Request) -> Response {
    let rid = request_id();
    let (parts, body) = req.into_parts();
    if is_query_protocol(&parts.headers) {
        // Query services share the form body; the signature's scope names the service.
        return match scope_service(&parts).as_deref() {
            Some(crate::ec2::SERVICE) => crate::ec2::serve(state, parts, body, rid).await,
            Some(crate::asg::SERVICE) => crate::asg::serve(state, parts, body, rid).await,
            Some(crate::iam::SERVICE) => crate::iam::serve(state, parts, body, rid).await,
            _ => crate::elb::serve(state, parts, body, rid).await,
        };
    }
    let result = async {
        let target = header(&parts.headers, "x-amz-target").unwrap_or_default();
        // A full PutLogEvents batch is 1 MiB of events, plus its JSON.
        let cap = if target.starts_with(LOGS_TARGET_PREFIX) {
            MAX_LOGS_BODY_BYTES
        } else {
            MAX_BODY_BYTES
        };
        let body = read_body_capped(body, &parts.headers, cap).await?;
        let auth = |service: &'static str| authenticate(&state, &parts, &body, service);
        // Authenticates for `service` and authorizes `prefix:action` on `*`.
        let admit = |service: &'static str, action: &str| {
            admit(&state, &parts, &body, service, action.to_owned())
        };
        if let Some(action) = target.strip_prefix(BERTH_TARGET_PREFIX) {
            let ctx = admit("ecs", action).await?;
            return crate::ecs::berth_action(&ctx, action, &body).await;
        }
        if let Some(action) = target.strip_prefix(AUTOSCALING_TARGET_PREFIX) {
            let ctx = admit("application-autoscaling", action).await?;
            tracing::debug!(%action, request_id = %rid, "application-autoscaling request");
            return crate::autoscaling::dispatch(&ctx, action, &body).await;
        }
        if let Some(action) = target.strip_prefix(SSM_TARGET_PREFIX) {
            let ctx = admit("ssm", action).await?;
            tracing::debug!(%action, request_id = %rid, "ssm request");
            return crate::secrets::ssm(&ctx, action, &body).await;
        }
        if let Some(action) = target.strip_prefix(SECRETS_MANAGER_TARGET_PREFIX) {
            let ctx = admit("secretsmanager", action).await?;
            tracing::debug!(%action, request_id = %rid, "secretsmanager request");
            return crate::secrets::secretsmanager(&ctx, action, &body).await;
        }
        if let Some(action) = target.strip_prefix(LOGS_TARGET_PREFIX) {
            let ctx = admit("logs", action).await?;
            return crate::logs::dispatch(&ctx, action, &body).await;
        }
        let Some(action) = target.strip_prefix(ECS_TARGET_PREFIX) else {
            // Authenticate first, as AWS does, so an unsigned probe learns nothing.
            let caller = auth("ecs").await?;
            state.throttle.check(&caller.access_key, "ecs", &target)?;
            return Err(ApiError::new(
                ErrorCode::UnknownOperationException,
                format!("Unknown operation: X-Amz-Target {target:?}"),
            ));
        };
        let caller = auth("ecs").await?;
        crate::authz::authorize(&state, &caller, "ecs", action, Named::Ecs(&body)).await?;
        let ctx = state.ops.ctx(caller.region);
        let action = action.to_owned();
        tracing::debug!(%action, request_id = %rid, "ecs request");
        crate::ecs::dispatch(&ctx, &action, &body).await
    }
    .await;
    render(result, &rid)
}

/// Authenticates a request signed for `service` and authorizes `<service>:<action>` on the
/// resources its body names; the caller's view.
async fn admit(
    state: &ApiState,
    parts: &Parts,
    body: &[u8],
    service: &'static str,
    action: String,
) -> Result<berth_ops::Ctx, ApiError> {
    let caller = authenticate(state, parts, body, service).await?;
    crate::authz::authorize(state, &caller, service, &action, Named::Json(body)).await?;
    Ok(state.ops.ctx(caller.region))
}

/// Verifies the request's SigV4 signature, and that it was signed for `service`, at the
/// control layer's clock: with berth's root key, or with an Active access key IAM issued.
/// (The access key's rate limit is taken in [`crate::authz::authorize`], which knows the
/// action.)
pub(crate) async fn authenticate(
    state: &ApiState,
    parts: &Parts,
    body: &[u8],
    service: &str,
) -> Result<Caller, ApiError> {
    let akid = credential(parts).and_then(|c| c.split('/').next().map(str::to_owned));
    let signer = match akid {
        Some(a) if !state.keys.contains(&a) => state.ops.iam_signer(&a).await?.map(|s| (a, s)),
        _ => None,
    };
    if signer.as_ref().is_some_and(|(_, s)| !s.active) {
        return Err(ApiError::new(
            ErrorCode::UnrecognizedClientException,
            "The security token included in the request is invalid.",
        ));
    }
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let req = berth_sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let now = UNIX_EPOCH + Duration::from_secs_f64(state.ops.now().max(0.0));
    let issued = signer
        .as_ref()
        .map(|(a, s)| (a.as_str(), s.secret.as_str()));
    let id = state.keys.authenticate(&req, service, now, issued)?;
    if let Some(session) = signer.as_ref().and_then(|(_, s)| s.session.as_ref()) {
        crate::auth::check_session(session, session_token(parts).as_deref(), now)?;
    }
    Ok(Caller {
        region: id.region,
        access_key: id.access_key_id,
        principal: signer.map(|(_, s)| (s.principal, s.policies)),
    })
}

/// The session token a request carries (`x-amz-security-token`, signed as every `x-amz-*`
/// header must be; or a presigned URL's `X-Amz-Security-Token`, inside the signed query).
fn session_token(parts: &Parts) -> Option<String> {
    header(&parts.headers, "x-amz-security-token").or_else(|| {
        parts.uri.query()?.split('&').find_map(|kv| {
            let v = kv.strip_prefix("X-Amz-Security-Token=")?;
            percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        })
    })
}

/// The AWS Query protocol (ELBv2): a form-encoded body and no `X-Amz-Target`.
fn is_query_protocol(h: &HeaderMap) -> bool {
    h.get("x-amz-target").is_none()
        && header(h, "content-type").is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// The service a request is signed for: the fourth part of the SigV4 credential scope
/// (`AKID/DATE/REGION/SERVICE/aws4_request`), from the `Authorization` header or a presigned
/// URL's `X-Amz-Credential`. Only routing reads it; the signature is verified by the service.
fn scope_service(parts: &Parts) -> Option<String> {
    credential(parts)?.split('/').nth(3).map(str::to_owned)
}

/// The request's SigV4 credential (`AKID/DATE/REGION/SERVICE/aws4_request`), unverified.
fn credential(parts: &Parts) -> Option<String> {
    let from_header = header(&parts.headers, "authorization").and_then(|a| {
        let cred = a.split("Credential=").nth(1)?;
        Some(cred.split([',', ' ']).next()?.to_owned())
    });
    from_header.or_else(|| {
        parts.uri.query()?.split('&').find_map(|kv| {
            let v = kv.strip_prefix("X-Amz-Credential=")?;
            Some(v.replace("%2F", "/").replace("%2f", "/"))
        })
    })
}

pub(crate) fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)?.to_str().ok().map(str::to_owned)
}

/// How much of a refused (too large) body is still read and dropped before answering 413, so
/// a client that is still sending sees the answer instead of a reset connection.
const DRAIN_BYTES: usize = 4 * MAX_BODY_BYTES;

pub(crate) async fn read_body(body: Body, headers: &HeaderMap) -> Result<Vec<u8>, ApiError> {
    read_body_capped(body, headers, MAX_BODY_BYTES).await
}

/// CloudWatch Logs requests may be this large (a full PutLogEvents batch and its JSON).
const MAX_LOGS_BODY_BYTES: usize = 3 * MAX_BODY_BYTES;

async fn read_body_capped(
    body: Body,
    headers: &HeaderMap,
    max: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = header(headers, "content-length").and_then(|l| l.parse::<usize>().ok());
    let mut refused = declared.is_some_and(|l| l > max);
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(max));
    let mut seen = 0usize;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::SerializationException,
                format!("Could not read the request body: {e}"),
            )
        })?;
        seen = seen.saturating_add(chunk.len());
        refused |= seen > max;
        if !refused {
            buf.extend_from_slice(&chunk);
        } else if seen > max + DRAIN_BYTES {
            break;
        }
    }
    if refused {
        return Err(ApiError::new(
            ErrorCode::RequestEntityTooLarge,
            format!("Request body is larger than {max} bytes."),
        ));
    }
    Ok(buf)
}

/// AWS JSON services omit absent members rather than sending `null`; handlers may build
/// answers with optional fields, and this is the one place that drops them.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn render(result: Result<Value, ApiError>, rid: &str) -> Response {
    let (status, body) = match result {
        Ok(mut v) => {
            strip_nulls(&mut v);
            (StatusCode::OK, v)
        }
        Err(e) => {
            if e.code == ErrorCode::ServerException {
                tracing::error!(request_id = %rid, message = %e.message, "server error");
            }
            (
                StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST),
                json!({"__type": e.code.as_str(), "message": e.message}),
            )
        }
    };
    // Straight into bytes: `Value`'s `Display` goes through `fmt` and is markedly slower.
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(JSON_11));
    if let Ok(v) = HeaderValue::from_str(rid) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

pub(crate) use berth_ops::parse_body;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_requests_are_routed_by_their_credential_scope() {
        let req = |auth: &str, uri: &str| {
            let mut b = axum::http::Request::builder().uri(uri);
            if !auth.is_empty() {
                b = b.header("authorization", auth);
            }
            b.body(()).expect("a request").into_parts().0
        };
        let signed =
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/autoscaling/aws4_request, \
                      SignedHeaders=host, Signature=00";
        assert_eq!(
            scope_service(&req(signed, "/")).as_deref(),
            Some("autoscaling")
        );
        let presigned =
            "/?X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Felasticloadbalancing%2Faws4_request";
        assert_eq!(
            scope_service(&req("", presigned)).as_deref(),
            Some("elasticloadbalancing")
        );
        assert_eq!(scope_service(&req("", "/")), None);
        assert_eq!(scope_service(&req("Bearer x", "/")), None);
    }

    #[test]
    fn request_ids_are_distinct_uuid_v4() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| request_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let u = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(u.get_version_num(), 4);
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        }
    }
}
