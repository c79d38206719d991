//! The agent's log endpoint: `GET /v1/logs?task=ID&container=NAME&follow=true` streams a
//! container's output as text lines. Callers authenticate with this instance's logs token
//! (issued by the server at registration; the CLI gets it, and this agent's address, from the
//! server with its AWS credentials), so one agent cannot read another host's logs.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use berth_model::agent::JOIN_TOKEN_HEADER;
use futures::StreamExt;
use serde::Deserialize;

use crate::spec::Stream;
use crate::Driver;

#[derive(Clone)]
struct LogState {
    driver: Arc<dyn Driver>,
    /// The logs token the server issued this instance (empty until registered: all refused).
    token: Arc<std::sync::RwLock<String>>,
}

#[derive(Deserialize)]
struct LogQuery {
    task: String,
    container: Option<String>,
    #[serde(default)]
    follow: bool,
}

pub(crate) fn router(driver: Arc<dyn Driver>, token: Arc<std::sync::RwLock<String>>) -> Router {
    Router::new()
        .route("/v1/logs", get(logs))
        .with_state(LogState { driver, token })
}

async fn logs(
    State(st): State<LogState>,
    headers: HeaderMap,
    Query(q): Query<LogQuery>,
) -> Response {
    let given = headers
        .get(JOIN_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let want = st.token.read().map(|t| t.clone()).unwrap_or_default();
    let same = given.len() == want.len()
        && given
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if want.is_empty() || !same {
        return (StatusCode::FORBIDDEN, "bad logs token\n").into_response();
    }
    let owned = match st.driver.list_owned().await {
        Ok(l) => l,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    };
    let mut mine: Vec<_> = owned
        .into_iter()
        .filter(|c| c.task_id == q.task)
        .filter(|c| q.container.as_ref().is_none_or(|n| *n == c.container_name))
        .collect();
    mine.sort_by(|a, b| a.container_name.cmp(&b.container_name));
    let Some(first) = mine.first() else {
        return (
            StatusCode::NOT_FOUND,
            "no such task or container on this host\n",
        )
            .into_response();
    };
    // One container at a time; with several and no name, the first (by name) is shown and the
    // others are named so the caller can ask for them.
    let prefix = if mine.len() > 1 && q.container.is_none() {
        let names: Vec<&str> = mine.iter().map(|c| c.container_name.as_str()).collect();
        format!(
            "# containers: {}; showing {}\n",
            names.join(", "),
            first.container_name
        )
    } else {
        String::new()
    };
    let lines = st.driver.logs(&first.id, q.follow).map(|r| {
        r.map(|l| {
            let mark = if l.stream == Stream::Stderr { "E " } else { "" };
            format!("{mark}{}\n", l.line)
        })
        .map_err(std::io::Error::other)
    });
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(prefix) }).chain(lines);
    (
        [("content-type", "text/plain; charset=utf-8")],
        Body::from_stream(body),
    )
        .into_response()
}
