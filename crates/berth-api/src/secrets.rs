//! SSM Parameter Store (`AmazonSSM.<Action>`, signed for `ssm`) and Secrets Manager
//! (`secretsmanager.<Action>`, signed for `secretsmanager`) dispatch: each body parsed into
//! its typed request and handed to its operation in [`berth_ops::secrets`].

use berth_model::{ApiError, ErrorCode};
use berth_ops::secrets::{secretsmanager as sm, ssm};
use berth_ops::Ctx;
use serde_json::Value;

use crate::edge::parse_body;

/// Runs one SSM action.
pub(crate) async fn ssm(ctx: &Ctx, action: &str, body: &[u8]) -> Result<Value, ApiError> {
    match action {
        "PutParameter" => ssm::put(ctx, parse(body, ErrorCode::ValidationException)?).await,
        "GetParameter" => ssm::get(ctx, parse(body, ErrorCode::ValidationException)?).await,
        "GetParameters" => ssm::get_many(ctx, parse(body, ErrorCode::ValidationException)?).await,
        "GetParametersByPath" => {
            ssm::get_by_path(ctx, parse(body, ErrorCode::ValidationException)?).await
        }
        "DescribeParameters" => {
            ssm::describe(ctx, parse(body, ErrorCode::ValidationException)?).await
        }
        "DeleteParameter" => ssm::delete(ctx, parse(body, ErrorCode::ValidationException)?).await,
        "DeleteParameters" => {
            ssm::delete_many(ctx, parse(body, ErrorCode::ValidationException)?).await
        }
        "LabelParameterVersion" => {
            ssm::label(ctx, parse(body, ErrorCode::ValidationException)?).await
        }
        "GetParameterHistory" => {
            ssm::history(ctx, parse(body, ErrorCode::ValidationException)?).await
        }
        "ListTagsForResource" => {
            ssm::list_tags(ctx, parse(body, ErrorCode::ValidationException)?).await
        }
        _ => Err(unknown("SSM", action)),
    }
}

/// Runs one Secrets Manager action.
pub(crate) async fn secretsmanager(
    ctx: &Ctx,
    action: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    match action {
        "CreateSecret" => sm::create(ctx, parse(body, ErrorCode::InvalidParameterException)?).await,
        "GetSecretValue" => {
            sm::get_value(ctx, parse(body, ErrorCode::InvalidParameterException)?).await
        }
        "PutSecretValue" => {
            sm::put_value(ctx, parse(body, ErrorCode::InvalidParameterException)?).await
        }
        "UpdateSecret" => sm::update(ctx, parse(body, ErrorCode::InvalidParameterException)?).await,
        "DescribeSecret" => {
            sm::describe(ctx, parse(body, ErrorCode::InvalidParameterException)?).await
        }
        "ListSecrets" => sm::list(ctx, parse(body, ErrorCode::InvalidParameterException)?).await,
        "DeleteSecret" => sm::delete(ctx, parse(body, ErrorCode::InvalidParameterException)?).await,
        "RestoreSecret" => {
            sm::restore(ctx, parse(body, ErrorCode::InvalidParameterException)?).await
        }
        _ => Err(unknown("Secrets Manager", action)),
    }
}

fn unknown(api: &str, action: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnknownOperationException,
        format!("berth does not implement the {api} action {action:?}."),
    )
}

/// Like [`parse_body`], but a body that does not fit the action is the service's own
/// validation error (a missing required member or a wrong type).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8], code: ErrorCode) -> Result<T, ApiError> {
    parse_body(body).map_err(|e| ApiError::new(code, e.message))
}
