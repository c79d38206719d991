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

/// berth's own `GetJoinToken`: a join token for the agents of a cluster, good for the
/// configured lifetime (see [`crate::identity`]).
pub async fn join_token(ctx: &Ctx, req: JoinTokenRequest) -> Result<Value, ApiError> {
    let cluster = clusters::cluster_name(req.cluster.as_deref())?;
    clusters::load_active(ctx, &cluster).await?;
    let (token, expires) = crate::identity::current_token(&ctx.state, &cluster);
    Ok(serde_json::json!({
        "cluster": cluster,
        "token": token,
        "expiresAt": expires,
    }))
}

/// The request of berth's `RotateJoinToken`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateJoinTokenRequest {
    cluster: Option<String>,
    /// Seconds the tokens issued so far keep working (the server's default when absent).
    grace_period_seconds: Option<f64>,
}

/// berth's own `RotateJoinToken`: tokens issued so far keep working for the grace period,
/// then are refused; the answer carries a new token. Registered agents are not affected.
pub async fn rotate_join_token(ctx: &Ctx, req: RotateJoinTokenRequest) -> Result<Value, ApiError> {
    let cluster = clusters::cluster_name(req.cluster.as_deref())?;
    clusters::load_active(ctx, &cluster).await?;
    let grace = match req.grace_period_seconds {
        None => ctx.state.config.join_token_grace_secs,
        Some(g) if g.is_finite() && (0.0..=7.0 * 86_400.0).contains(&g) => g,
        Some(_) => {
            return Err(ApiError::invalid(
                "gracePeriodSeconds must be between 0 and 604800.",
            ))
        }
    };
    let previous_until = crate::identity::rotate(&ctx.state, &cluster, grace).await?;
    let (token, expires) = crate::identity::current_token(&ctx.state, &cluster);
    Ok(serde_json::json!({
        "cluster": cluster,
        "token": token,
        "expiresAt": expires,
        "previousTokensValidUntil": previous_until,
    }))
}
