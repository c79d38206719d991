//! The ECS actions: one module per resource, each action a typed request and a function.

pub mod capacity;
pub mod clusters;
pub mod deployments;
pub mod fargate;
pub mod instances;
pub mod metrics;
mod service_checks;
pub mod services;
pub mod tags;
pub mod taskdefs;
pub mod tasks;
mod unsupported;

pub(crate) use instances::{instance_arn as instance_arn_of, register_instance, Registration};
pub(crate) use tasks::task_arn as task_arn_of;

use berth_model::ApiError;
use serde_json::Value;

use crate::Ctx;

/// The request of berth's `GetJoinToken`.
#[derive(serde::Deserialize)]
pub struct JoinTokenRequest {
    cluster: Option<String>,
}

/// berth's own `GetJoinToken`: the token agents of a cluster use.
pub async fn join_token(ctx: &Ctx, req: JoinTokenRequest) -> Result<Value, ApiError> {
    let cluster = clusters::cluster_name(req.cluster.as_deref())?;
    clusters::load_active(ctx, &cluster).await?;
    Ok(serde_json::json!({
        "cluster": cluster,
        "token": crate::agent::join_token(&ctx.state.config.join_secret, &cluster),
    }))
}
