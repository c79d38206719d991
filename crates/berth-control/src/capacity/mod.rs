//! Capacity providers at run time: which host group backs a provider, which container
//! instances a task placed through a provider may use, and the managed-scaling loop.
//!
//! The lookup "which host group backs provider P" lives here once, because three parts meet
//! at it: the ECS API (validating strategies), the launcher (restricting placement to the
//! provider's hosts), and managed scaling (sizing the group). A stored provider names its
//! group by `autoScalingGroupArn` (an ARN or a bare name); berth's own `FARGATE` and
//! `FARGATE_SPOT` are backed by the host group whose `managed_by` is the provider's name.

mod provision;
mod scaling;
mod through;

pub use provision::{is_waiting, timeout_reason};
pub use scaling::{
    decide, reservation_key, ManagedScaling, Observed, ScalingConfig, ScalingDecision,
};

use berth_model::capacity::{CapacityProvider, FARGATE, FARGATE_SPOT};
use berth_model::hostgroup::{HostGroup, ATTR_HOST_GROUP};
use berth_model::{keys, ApiError, ContainerInstance};
use berth_store::{Store, StoreExt};

use crate::store_err;

/// Whether `name` is one of berth's built-in providers.
pub fn is_builtin(name: &str) -> bool {
    name == FARGATE || name == FARGATE_SPOT
}

/// The host group name an `autoScalingGroupArn` designates (it may be a bare name, as ECS
/// accepts either).
pub fn group_name_of(arn_or_name: &str) -> &str {
    match arn_or_name.split_once(":autoScalingGroupName/") {
        Some((_, name)) => name,
        None => arn_or_name,
    }
}

/// Loads a stored (ACTIVE) provider by name.
pub async fn load_provider(
    store: &dyn Store,
    name: &str,
) -> Result<Option<(CapacityProvider, u64)>, ApiError> {
    Ok(store
        .get_json::<CapacityProvider>(&keys::capacity_provider(name))
        .await
        .map_err(store_err)?
        .filter(|(p, _)| p.status == "ACTIVE"))
}

/// The host group that backs provider `name` in `cluster`, with its mod revision: for a
/// stored provider the group its `autoScalingGroupArn` names, for `FARGATE` / `FARGATE_SPOT`
/// the group berth manages for it in that cluster (`managed_by`). `None` when there is no
/// such group (yet).
pub async fn backing_group(
    store: &dyn Store,
    name: &str,
    cluster: &str,
) -> Result<Option<(HostGroup, u64)>, ApiError> {
    if is_builtin(name) {
        let groups = store
            .list_json::<HostGroup>(keys::HOST_GROUPS)
            .await
            .map_err(store_err)?;
        return Ok(groups
            .into_iter()
            .find(|(_, g, _)| g.managed_by.as_deref() == Some(name) && g.cluster == cluster)
            .map(|(_, g, rev)| (g, rev)));
    }
    let Some((p, _)) = load_provider(store, name).await? else {
        return Ok(None);
    };
    let Some(asg) = p.auto_scaling_group_provider else {
        return Ok(None);
    };
    store
        .get_json::<HostGroup>(&keys::host_group(group_name_of(
            &asg.auto_scaling_group_arn,
        )))
        .await
        .map_err(store_err)
}

/// The host group a container instance was started by (its `berth.host-group` attribute).
pub fn instance_group(inst: &ContainerInstance) -> Option<&str> {
    inst.attributes
        .iter()
        .find(|a| a.name == ATTR_HOST_GROUP)
        .and_then(|a| a.value.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_from_arns_or_names() {
        assert_eq!(
            group_name_of("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1234-ab:autoScalingGroupName/web"),
            "web"
        );
        assert_eq!(group_name_of("web"), "web");
        assert!(is_builtin("FARGATE") && is_builtin("FARGATE_SPOT") && !is_builtin("cp"));
    }
}
