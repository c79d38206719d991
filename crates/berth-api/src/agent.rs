//! The agent endpoints (`/agent/v1/...`): register, long-poll for the desired task set, and
//! report status, each checked against the cluster's join token and handed to
//! [`berth_ops::agent`].

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_model::agent::{AgentRegistration, StatusReport, JOIN_TOKEN_HEADER};
use berth_model::ApiError;
use berth_ops::agent::{self, PollQuery};
use serde_json::json;

use crate::ApiState;

fn fail(e: ApiError) -> Response {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        Json(json!({"__type": e.code.as_str(), "message": e.message})),
    )
        .into_response()
}

fn check_token(state: &ApiState, headers: &HeaderMap, cluster: &str) -> Result<(), ApiError> {
    let given = headers
        .get(JOIN_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    agent::check_token(&state.ops, given, cluster)
}

pub(crate) async fn register(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(reg): Json<AgentRegistration>,
) -> Response {
    let result = async {
        check_token(&state, &headers, &reg.cluster)?;
        agent::register(&state.ops, &reg).await
    }
    .await;
    match result {
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
        check_token(&state, &headers, &q.cluster)?;
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

pub(crate) async fn status(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(report): Json<StatusReport>,
) -> Response {
    let result = async {
        check_token(&state, &headers, &report.cluster)?;
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
        check_token(&state, &headers, &batch.cluster)?;
        berth_ops::logs::ship::ship(&state.ops, batch).await
    }
    .await;
    match result {
        Ok(a) => Json(a).into_response(),
        Err(e) => fail(e),
    }
}
