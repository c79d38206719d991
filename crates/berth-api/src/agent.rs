//! The agent endpoints (`/agent/v1/...`): register, long-poll for the desired task set, report
//! status and ship logs, handed to [`berth_ops::agent`]. Registration is authenticated by the
//! cluster's join token (or the instance's own credential, for a restarted agent); every other
//! call names its instance (`x-berth-instance`) and presents that instance's credential
//! (`x-berth-instance-credential`), and may only act for that instance.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_model::agent::{
    AgentRegistration, StatusReport, CREDENTIAL_HEADER, INSTANCE_HEADER, JOIN_TOKEN_HEADER,
};
use berth_model::{ApiError, ErrorCode};
use berth_ops::agent::{self, PollQuery, Presented};
use serde_json::json;

use crate::ApiState;

fn fail(e: ApiError) -> Response {
    // An agent acting for another instance is refused as a forbidden call.
    let status = match e.code {
        ErrorCode::AccessDeniedException => StatusCode::FORBIDDEN,
        c => StatusCode::from_u16(c.status()).unwrap_or(StatusCode::BAD_REQUEST),
    };
    (
        status,
        Json(json!({"__type": e.code.as_str(), "message": e.message})),
    )
        .into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// Checks that the call is made by `instance` of `cluster` (the instance the body or query
/// names must be the one whose credential is presented). `Ok(false)`: no such active instance.
async fn caller(
    state: &ApiState,
    headers: &HeaderMap,
    cluster: &str,
    instance: Option<&str>,
) -> Result<bool, ApiError> {
    let Some(me) = header(headers, INSTANCE_HEADER) else {
        return Err(ApiError::new(
            ErrorCode::AccessDeniedException,
            "Agent calls must name their container instance (x-berth-instance) and present its credential.",
        ));
    };
    if let Some(named) = instance {
        if named != me {
            return Err(ApiError::new(
                ErrorCode::AccessDeniedException,
                format!("Container instance {me} cannot act for container instance {named}."),
            ));
        }
    }
    agent::authenticate(&state.ops, cluster, me, header(headers, CREDENTIAL_HEADER)).await
}

pub(crate) async fn register(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(reg): Json<AgentRegistration>,
) -> Response {
    let presented = Presented {
        join_token: header(&headers, JOIN_TOKEN_HEADER),
        credential: header(&headers, CREDENTIAL_HEADER),
    };
    match agent::join(&state.ops, &reg, presented).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => fail(e),
    }
}

pub(crate) async fn poll(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<PollQuery>,
) -> Response {
    let result = async {
        if !caller(&state, &headers, &q.cluster, Some(&q.instance)).await? {
            // Deregistered (or never known): the agent registers again.
            return Ok(berth_model::agent::DesiredSet {
                fingerprint: String::new(),
                tasks: Vec::new(),
                registered: false,
            });
        }
        let mut closing = state.closing.clone();
        let closing = async move {
            let _ = closing.wait_for(|c| *c).await;
        };
        agent::poll(&state.ops, &q, closing).await
    }
    .await;
    match result {
        Ok(set) => Json(set).into_response(),
        Err(e) => fail(e),
    }
}

fn gone(instance: &str) -> ApiError {
    ApiError::new(
        ErrorCode::AccessDeniedException,
        format!("Container instance {instance} is not registered."),
    )
}

pub(crate) async fn status(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(report): Json<StatusReport>,
) -> Response {
    let result = async {
        if !caller(&state, &headers, &report.cluster, Some(&report.instance_id)).await? {
            return Err(gone(&report.instance_id));
        }
        agent::status(&state.ops, &report).await
    }
    .await;
    match result {
        Ok(()) => Json(json!({})).into_response(),
        Err(e) => fail(e),
    }
}

/// `POST /agent/v1/logs`: a batch of an `awslogs` container's output.
pub(crate) async fn logs(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(batch): Json<berth_model::logs::ShipBatch>,
) -> Response {
    let result = async {
        if !caller(&state, &headers, &batch.cluster, None).await? {
            return Err(gone(header(&headers, INSTANCE_HEADER).unwrap_or_default()));
        }
        berth_ops::logs::ship::ship(&state.ops, batch).await
    }
    .await;
    match result {
        Ok(a) => Json(a).into_response(),
        Err(e) => fail(e),
    }
}
