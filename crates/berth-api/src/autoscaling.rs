//! Application Auto Scaling's dispatch (`AnyScaleFrontendService.<Action>`, signed for
//! `application-autoscaling`) and berth's metric alarms (`BerthV1.PutMetricAlarm` /
//! `DescribeAlarms` / `DeleteAlarms`): each body parsed into its typed request and handed to
//! its operation in [`berth_ops::autoscaling`].

use berth_model::{ApiError, ErrorCode};
use berth_ops::autoscaling::{activities, alarms, policies, scheduled, targets};
use berth_ops::Ctx;
use serde_json::Value;

use crate::edge::parse_body;

/// Runs one Application Auto Scaling action.
pub(crate) async fn dispatch(ctx: &Ctx, action: &str, body: &[u8]) -> Result<Value, ApiError> {
    match action {
        "RegisterScalableTarget" => targets::register(ctx, parse(body)?).await,
        "DescribeScalableTargets" => targets::describe(ctx, parse(body)?).await,
        "DeregisterScalableTarget" => targets::deregister(ctx, parse(body)?).await,
        "TagResource" => targets::tag(ctx, parse(body)?).await,
        "UntagResource" => targets::untag(ctx, parse(body)?).await,
        "ListTagsForResource" => targets::list_tags(ctx, parse(body)?).await,
        "PutScalingPolicy" => policies::put(ctx, parse(body)?).await,
        "DescribeScalingPolicies" => policies::describe(ctx, parse(body)?).await,
        "DeleteScalingPolicy" => policies::delete(ctx, parse(body)?).await,
        "PutScheduledAction" => scheduled::put(ctx, parse(body)?).await,
        "DescribeScheduledActions" => scheduled::describe(ctx, parse(body)?).await,
        "DeleteScheduledAction" => scheduled::delete(ctx, parse(body)?).await,
        "DescribeScalingActivities" => activities::describe(ctx, parse(body)?).await,
        _ => Err(ApiError::new(
            ErrorCode::UnknownOperationException,
            format!("berth does not implement the Application Auto Scaling action {action:?}."),
        )),
    }
}

/// berth's alarm actions, if `action` is one (dispatched from `BerthV1.`).
pub(crate) async fn alarm_action(
    ctx: &Ctx,
    action: &str,
    body: &[u8],
) -> Option<Result<Value, ApiError>> {
    Some(match action {
        "PutMetricAlarm" => match parse(body) {
            Ok(r) => alarms::put(ctx, r).await,
            Err(e) => Err(e),
        },
        "DescribeAlarms" => match parse(body) {
            Ok(r) => alarms::describe(ctx, r).await,
            Err(e) => Err(e),
        },
        "DeleteAlarms" => match parse(body) {
            Ok(r) => alarms::delete(ctx, r).await,
            Err(e) => Err(e),
        },
        _ => return None,
    })
}

/// Like [`parse_body`], but a body that does not fit the action is a ValidationException (a
/// missing required member or a wrong type), as Application Auto Scaling answers.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    parse_body(body).map_err(|e| validation(e.message))
}

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ValidationException, message)
}
