//! The ECS actions: one module per resource, each action a typed request and a handler.

mod clusters;
mod tags;
mod taskdefs;

use berth_model::{ApiError, ErrorCode};
use serde_json::Value;

use crate::edge::parse_body;
use crate::state::Ctx;

/// Runs one ECS action. `body` is the raw JSON the client sent.
pub(crate) async fn dispatch(ctx: &Ctx, action: &str, body: &[u8]) -> Result<Value, ApiError> {
    match action {
        "CreateCluster" => clusters::create(ctx, parse_body(body)?).await,
        "DescribeClusters" => clusters::describe(ctx, parse_body(body)?).await,
        "ListClusters" => clusters::list(ctx, parse_body(body)?).await,
        "UpdateCluster" => clusters::update(ctx, parse_body(body)?).await,
        "UpdateClusterSettings" => clusters::update_settings(ctx, parse_body(body)?).await,
        "DeleteCluster" => clusters::delete(ctx, parse_body(body)?).await,
        "RegisterTaskDefinition" => taskdefs::register(ctx, body).await,
        "DescribeTaskDefinition" => taskdefs::describe(ctx, parse_body(body)?).await,
        "ListTaskDefinitions" => taskdefs::list(ctx, parse_body(body)?).await,
        "ListTaskDefinitionFamilies" => taskdefs::list_families(ctx, parse_body(body)?).await,
        "DeregisterTaskDefinition" => taskdefs::deregister(ctx, parse_body(body)?).await,
        "DeleteTaskDefinitions" => taskdefs::delete(ctx, parse_body(body)?).await,
        "TagResource" => tags::tag(ctx, parse_body(body)?).await,
        "UntagResource" => tags::untag(ctx, parse_body(body)?).await,
        "ListTagsForResource" => tags::list(ctx, parse_body(body)?).await,
        _ => Err(ApiError::new(
            ErrorCode::UnknownOperationException,
            format!("berth does not implement the ECS action {action:?}."),
        )),
    }
}
