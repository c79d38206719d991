//! RunTask through a capacity provider strategy: what berth refuses in that combination,
//! then `Launcher::launch_through` (the split and the per-provider launches).

use berth_control::capacity::is_builtin;
use berth_control::{LaunchOutcome, LaunchSpec};
use berth_model::capacity::StrategyItem;
use berth_model::ApiError;

use crate::Ctx;

/// Launches `spec.count` tasks through `items`; `spec.capacity_provider` is set per share.
pub(crate) async fn through(
    ctx: &Ctx,
    spec: LaunchSpec,
    items: &[StrategyItem],
    arn_of: &(dyn Fn(&str) -> String + Sync),
) -> Result<LaunchOutcome, ApiError> {
    if !spec.constraints.is_empty() {
        return Err(ApiError::invalid(
            "placementConstraints cannot be combined with a capacityProviderStrategy in berth: \
             a task waiting in PROVISIONING is placed later without them.",
        ));
    }
    if spec.client_token.is_some() && items.len() > 1 {
        return Err(ApiError::invalid(
            "clientToken is not supported with a capacityProviderStrategy of more than one \
             capacity provider.",
        ));
    }
    if items.iter().any(|i| is_builtin(&i.capacity_provider))
        && !spec.taskdef.compatibilities.iter().any(|c| c == "FARGATE")
    {
        return Err(ApiError::invalid(
            "Task definition does not support launch_type FARGATE.",
        ));
    }
    ctx.state
        .launcher
        .launch_through(&spec, items, ctx.now(), arn_of)
        .await
}
