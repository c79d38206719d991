//! FARGATE on RunTask and CreateService: which requests are Fargate ones (`launchType
//! FARGATE`, or a strategy naming only `FARGATE` / `FARGATE_SPOT`), the checks Fargate makes on
//! them (task size, platform version, network configuration, host-only members), how a
//! Fargate task is shown (provider, platform, storage, zone, and no container instance), and
//! berth's own `InterruptSpotTask`, which reclaims a FARGATE_SPOT task as AWS does.
//!
//! Why here and not in each action: RunTask and CreateService must agree on what Fargate
//! means, and the capacity-provider code calls [`fargate_provider`] for the same answer.

use berth_control::lifecycle;
use berth_model::capacity::{FARGATE, FARGATE_SPOT};
use berth_model::fargate::{self, FargateTask};
use berth_model::{ApiError, StopCode, Task, TaskDefinition, TaskOverride};
use berth_store::StoreExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::clusters::{cluster_name, load_active};
use crate::Ctx;

/// What a launch request resolved to.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The launch type its tasks record.
    pub launch_type: String,
    /// Set for a Fargate launch.
    pub fargate: Option<FargateTask>,
}

/// The Fargate provider a request asks for: `FARGATE` for `launchType FARGATE`, the provider
/// of a one-item strategy naming `FARGATE` or `FARGATE_SPOT`; `None` for anything else.
pub fn fargate_provider(
    launch_type: Option<&str>,
    strategy: Option<&Value>,
) -> Result<Option<String>, ApiError> {
    let items = strategy.and_then(Value::as_array).filter(|a| !a.is_empty());
    match (launch_type, items) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
        )),
        (Some("FARGATE"), None) => Ok(Some(FARGATE.to_owned())),
        (_, Some(items)) => {
            let names: Vec<&str> = items
                .iter()
                .filter_map(|i| i.get("capacityProvider").and_then(Value::as_str))
                .collect();
            if names.len() != items.len() || !names.iter().all(|n| fargate::is_fargate_provider(n)) {
                return Ok(None);
            }
            for i in items {
                let weight = i.get("weight").and_then(Value::as_i64).unwrap_or(0);
                let base = i.get("base").and_then(Value::as_i64).unwrap_or(0);
                if !(0..=1000).contains(&weight) || !(0..=100_000).contains(&base) {
                    return Err(ApiError::invalid(
                        "capacityProviderStrategy: weight must be between 0 and 1000 and base between 0 and 100000.",
                    ));
                }
            }
            match names.as_slice() {
                [one] => Ok(Some((*one).to_owned())),
                _ => Err(ApiError::invalid(
                    "capacityProviderStrategy: berth places a Fargate strategy on one provider; name FARGATE or FARGATE_SPOT alone.",
                )),
            }
        }
        _ => Ok(None),
    }
}

fn number(v: Option<&str>) -> Option<u32> {
    v.and_then(|s| s.parse().ok())
}

/// The Fargate members of a RunTask / CreateService request, taken out of `rest` before the
/// other members are refused (so the refusal of a member berth does not implement comes
/// first, as before any task definition is read).
#[derive(Debug, Clone)]
pub(crate) struct Taken {
    launch_type: String,
    provider: Option<String>,
    platform: Option<String>,
}

/// Tells a Fargate launch (`launchType FARGATE`, or a strategy naming only Fargate providers)
/// and checks its `platformVersion` (taken out of `rest`) as Fargate does. Its required
/// `networkConfiguration` is the network part's to check (a Fargate definition is awsvpc).
pub(crate) fn take(
    launch_type: Option<&str>,
    strategy: Option<Value>,
    rest: &mut Map<String, Value>,
) -> Result<Taken, ApiError> {
    let provider = fargate_provider(launch_type, strategy.as_ref())?;
    let pv = match rest.remove("platformVersion") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(ApiError::invalid("platformVersion must be a string.")),
    };
    let platform = fargate::platform_version(pv.as_deref(), provider.is_some())?;
    if provider.is_none() {
        let lt = launch_type.unwrap_or("EC2");
        if !matches!(lt, "EC2" | "EXTERNAL") {
            return Err(ApiError::invalid(format!(
                "Invalid launchType {lt:?}; valid: EC2, FARGATE, EXTERNAL"
            )));
        }
        return Ok(Taken {
            launch_type: lt.to_owned(),
            provider: None,
            platform: None,
        });
    }
    Ok(Taken {
        launch_type: "FARGATE".into(),
        provider,
        platform,
    })
}

/// A cluster's default strategy naming only a Fargate provider makes a Fargate launch too, as
/// in ECS: `plan` (the strategy resolved for a request that named none) goes to Fargate
/// instead of the capacity providers.
pub(crate) fn take_default(
    taken: Taken,
    plan: &Option<Vec<berth_model::capacity::StrategyItem>>,
) -> Result<Taken, ApiError> {
    match plan {
        Some(items)
            if !taken.is_fargate()
                && !items.is_empty()
                && items
                    .iter()
                    .all(|i| fargate::is_fargate_provider(&i.capacity_provider)) =>
        {
            let v: Vec<Value> = items
                .iter()
                .map(|i| json!({"capacityProvider": i.capacity_provider, "weight": i.weight, "base": i.base}))
                .collect();
            take(None, Some(Value::Array(v)), &mut Map::new())
        }
        _ => Ok(taken),
    }
}

impl Taken {
    /// Whether the request is a Fargate launch.
    pub(crate) fn is_fargate(&self) -> bool {
        self.provider.is_some()
    }
}

/// Checks the task definition (with the launch's overrides) as Fargate does, for what
/// [`take`] found.
pub(crate) fn resolve(
    taken: Taken,
    td: &TaskDefinition,
    overrides: &TaskOverride,
) -> Result<Resolved, ApiError> {
    let (Some(provider), Some(platform)) = (taken.provider, taken.platform) else {
        return Ok(Resolved {
            launch_type: taken.launch_type,
            fargate: None,
        });
    };
    if !td.compatibilities.iter().any(|c| c == "FARGATE") {
        return Err(ApiError::invalid(
            "Task definition does not support launch_type FARGATE.",
        ));
    }
    let effective = overrides.apply(td)?;
    fargate::check_size(
        number(effective.cpu.as_deref()),
        number(effective.memory.as_deref()),
    )?;
    fargate::check_fargate_members(td)?;
    Ok(Resolved {
        launch_type: taken.launch_type,
        fargate: Some(FargateTask {
            capacity_provider_name: provider,
            platform_version: platform,
            platform_family: fargate::PLATFORM_FAMILY.into(),
            ephemeral_storage_gib: fargate::DEFAULT_EPHEMERAL_GIB,
            availability_zone: String::new(),
        }),
    })
}

/// Adds a Fargate task's members to its DescribeTasks shape and drops its container instance
/// (ECS shows none for Fargate tasks; berth's managed hosts are never shown).
pub(crate) fn decorate(v: &mut Value, t: &Task) {
    let (Some(f), Some(o)) = (&t.fargate, v.as_object_mut()) else {
        return;
    };
    o.remove("containerInstanceArn");
    o.insert(
        "capacityProviderName".into(),
        json!(f.capacity_provider_name),
    );
    o.insert("platformVersion".into(), json!(f.platform_version));
    o.insert("platformFamily".into(), json!(f.platform_family));
    o.insert(
        "ephemeralStorage".into(),
        json!({"sizeInGiB": f.ephemeral_storage_gib}),
    );
    if !f.availability_zone.is_empty() {
        o.insert("availabilityZone".into(), json!(f.availability_zone));
    }
}

/// Adds a Fargate service's provider and platform to its DescribeServices shape. ECS shows
/// `launchType` for a service created with one and `capacityProviderStrategy` for one created
/// with a strategy; berth shows the platform either way.
pub(crate) fn decorate_service(v: &mut Value, svc: &berth_model::Service) {
    let (Some(f), Some(o)) = (&svc.fargate, v.as_object_mut()) else {
        return;
    };
    o.insert("platformVersion".into(), json!(f.platform_version));
    o.insert("platformFamily".into(), json!(f.platform_family));
    if f.capacity_provider_name != FARGATE {
        o.remove("launchType");
        o.insert(
            "capacityProviderStrategy".into(),
            json!([{"capacityProvider": f.capacity_provider_name, "weight": 1, "base": 0}]),
        );
    }
}

/// The request of berth's `InterruptSpotTask`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterruptSpotRequest {
    cluster: Option<String>,
    task: String,
}

/// berth's `InterruptSpotTask`: reclaims a FARGATE_SPOT task as AWS reclaims Spot capacity.
/// The task is told at once (desiredStatus STOPPED, `stoppingAt`, stopCode `SpotInterruption`,
/// ECS's reason), which is the warning; its agent then stops it with SIGTERM and the
/// container's `stopTimeout`, and its service replaces it.
pub async fn interrupt_spot(ctx: &Ctx, req: InterruptSpotRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    let id = super::tasks::task_id(&req.task)?;
    load_active(ctx, &cluster).await?;
    let is_spot = |t: &Task| {
        t.fargate
            .as_ref()
            .is_some_and(|f| f.capacity_provider_name == FARGATE_SPOT)
    };
    let (found, _) = ctx
        .store()
        .get_json::<Task>(&berth_model::keys::task(&cluster, &id))
        .await
        .map_err(crate::store_err)?
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    if !is_spot(&found) {
        return Err(ApiError::invalid(
            "Only tasks on the FARGATE_SPOT capacity provider can be interrupted.",
        ));
    }
    let now = ctx.now();
    let t = lifecycle::update_task(&ctx.state.store, &cluster, &id, |t| {
        is_spot(t)
            && lifecycle::request_stop(
                t,
                StopCode::SpotInterruption,
                fargate::SPOT_INTERRUPTION_REASON,
                now,
            )
    })
    .await?
    .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    Ok(json!({ "task": super::tasks::task_wire(ctx, &t, false) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_type_and_strategies_map_to_providers() {
        assert_eq!(
            fargate_provider(Some("FARGATE"), None).unwrap().as_deref(),
            Some("FARGATE")
        );
        assert_eq!(fargate_provider(Some("EC2"), None).unwrap(), None);
        let spot = json!([{"capacityProvider": "FARGATE_SPOT", "weight": 1}]);
        assert_eq!(
            fargate_provider(None, Some(&spot)).unwrap().as_deref(),
            Some("FARGATE_SPOT")
        );
        let mine = json!([{"capacityProvider": "mine"}]);
        assert_eq!(fargate_provider(None, Some(&mine)).unwrap(), None);
        assert!(fargate_provider(Some("FARGATE"), Some(&spot)).is_err());
        let both = json!([{"capacityProvider": "FARGATE"}, {"capacityProvider": "FARGATE_SPOT"}]);
        assert!(fargate_provider(None, Some(&both)).is_err());
    }
}
