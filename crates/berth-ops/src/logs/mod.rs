//! The CloudWatch Logs actions (`Logs_20140328.<Action>`, signed for `logs`), over the
//! [`berth_logs::LogStore`] the control layer was given ([`crate::Ops::with_logs`]), and the
//! agent's shipping of `awslogs` containers' output ([`ship`]), which goes through the same
//! append as PutLogEvents.
//!
//! Log storage is separate from the cluster store (see `berth-logs`): these actions never
//! touch the cluster's records, and the store's calls are blocking, so each runs on the
//! blocking pool.

pub mod events;
pub mod groups;
pub mod ship;
pub mod streams;

use std::sync::Arc;

use berth_logs::{LogStore, LogsError};
use berth_model::{ApiError, ErrorCode};

use crate::Ctx;

/// Runs `f` against the log store on the blocking pool.
pub(crate) async fn with_store<T: Send + 'static>(
    store: &Option<Arc<dyn LogStore>>,
    f: impl FnOnce(&dyn LogStore) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let Some(store) = store.clone() else {
        return Err(ApiError::new(
            ErrorCode::UnknownOperationException,
            "This berth server has no log store; CloudWatch Logs is not served.",
        ));
    };
    tokio::task::spawn_blocking(move || f(&*store))
        .await
        .map_err(|e| ApiError::server(format!("log store task: {e}")))?
}

impl Ctx {
    pub(crate) async fn logs<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn LogStore) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        with_store(&self.state.logs, f).await
    }

    /// `arn:aws:logs:REGION:ACCOUNT:log-group:NAME`.
    pub(crate) fn log_group_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{name}",
            self.region, self.state.config.account_id
        )
    }
}

/// The CloudWatch Logs error for a store failure.
pub(crate) fn logs_err(e: LogsError) -> ApiError {
    match e {
        LogsError::GroupNotFound | LogsError::StreamNotFound => {
            ApiError::new(ErrorCode::ResourceNotFoundException, e.to_string())
        }
        LogsError::AlreadyExists => {
            ApiError::new(ErrorCode::ResourceAlreadyExistsException, e.to_string())
        }
        other => ApiError::server(other.to_string()),
    }
}

/// The group a request names: `logGroupName`, or `logGroupIdentifier` (a name or an ARN).
pub(crate) fn group_of(
    name: Option<String>,
    identifier: Option<String>,
) -> Result<String, ApiError> {
    match (name, identifier) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "LogGroupName and LogGroupIdentifier are mutually exclusive parameters.",
        )),
        (Some(n), None) => Ok(n),
        (None, Some(id)) => Ok(group_from_identifier(&id)),
        (None, None) => Err(ApiError::invalid(
            "Either LogGroupName or LogGroupIdentifier must be specified.",
        )),
    }
}

/// A group name from a name or an ARN (`arn:aws:logs:R:A:log-group:NAME[:*]`).
pub(crate) fn group_from_identifier(id: &str) -> String {
    match id.split_once(":log-group:") {
        Some((_, rest)) if id.starts_with("arn:") => {
            rest.strip_suffix(":*").unwrap_or(rest).to_owned()
        }
        _ => id.to_owned(),
    }
}

/// A `limit` within `1..=max`, `default` when absent.
pub(crate) fn limit(v: Option<i64>, default: usize, max: usize) -> Result<usize, ApiError> {
    match v {
        None => Ok(default),
        Some(n) if n >= 1 && n as u64 <= max as u64 => Ok(n as usize),
        Some(n) => Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: \
             Member must have value between 1 and {max}"
        ))),
    }
}

/// Refuses a member berth does not implement, naming it.
pub(crate) fn refuse(member: &str, why: &str) -> ApiError {
    ApiError::invalid(format!("berth does not support '{member}': {why}."))
}

/// A CloudWatch Logs time: epoch milliseconds.
pub(crate) fn now_ms(ctx: &Ctx) -> i64 {
    (ctx.now() * 1000.0) as i64
}
