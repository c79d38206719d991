//! CloudWatch Logs' dispatch (`Logs_20140328.<Action>`, signed for `logs`): each body parsed
//! into its typed request and handed to its operation in [`berth_ops::logs`].

use berth_model::{ApiError, ErrorCode};
use berth_ops::logs::{events, groups, streams};
use berth_ops::Ctx;
use serde_json::Value;

use crate::edge::parse_body;

/// Runs one CloudWatch Logs action.
pub(crate) async fn dispatch(ctx: &Ctx, action: &str, body: &[u8]) -> Result<Value, ApiError> {
    match action {
        "CreateLogGroup" => groups::create(ctx, parse(body)?).await,
        "DeleteLogGroup" => groups::delete(ctx, parse(body)?).await,
        "DescribeLogGroups" => groups::describe(ctx, parse(body)?).await,
        "PutRetentionPolicy" => groups::put_retention(ctx, parse(body)?).await,
        "DeleteRetentionPolicy" => groups::delete_retention(ctx, parse(body)?).await,
        "CreateLogStream" => streams::create(ctx, parse(body)?).await,
        "DeleteLogStream" => streams::delete(ctx, parse(body)?).await,
        "DescribeLogStreams" => streams::describe(ctx, parse(body)?).await,
        "PutLogEvents" => events::put(ctx, parse(body)?).await,
        "GetLogEvents" => events::get(ctx, parse(body)?).await,
        "FilterLogEvents" => events::filter(ctx, parse(body)?).await,
        "StartLiveTail" => Err(ApiError::new(
            ErrorCode::UnknownOperationException,
            "berth does not implement StartLiveTail (an event-stream API); follow a log group \
             with FilterLogEvents polling (`aws logs tail --follow` does) or GetLogEvents' \
             nextForwardToken.",
        )),
        _ => Err(ApiError::new(
            ErrorCode::UnknownOperationException,
            format!("berth does not implement the CloudWatch Logs action {action:?}."),
        )),
    }
}

/// Like [`parse_body`], but a body that does not fit the action (a missing required member, a
/// wrong type) is an InvalidParameterException, as CloudWatch Logs answers.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    parse_body(body).map_err(|e| ApiError::invalid(e.message))
}
