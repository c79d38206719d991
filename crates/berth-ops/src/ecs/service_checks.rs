//! The checks CreateService and UpdateService make before they write a service: load
//! balancers against target groups and the task definition, placement, the deployment
//! configuration, tags propagation, the grace period, and which capacity a new service runs
//! on. Apart from the actions so each reads as load, check, write.

use berth_model::{
    keys, ApiError, CircuitBreaker, DeploymentConfiguration, ErrorCode, PlacementConstraint,
    PlacementStrategy, SchedulingStrategy, ServiceLoadBalancer, TaskDefinition,
};
use berth_sched::{Constraint, Strategy};
use berth_store::Txn;
use serde::Deserialize;
use serde_json::Value;

use super::clusters::load_active;
use crate::Ctx;

/// ECS allows this many `loadBalancers` entries per service.
const MAX_LOAD_BALANCERS: usize = 5;

/// Checks a service's `loadBalancers` as ECS does: each names an existing target group and a
/// container of the task definition with that container port. Answers a transaction that
/// holds only if those target groups are still there when the service is written.
pub(super) async fn check_load_balancers(
    ctx: &Ctx,
    lbs: &[ServiceLoadBalancer],
    td: &TaskDefinition,
) -> Result<Txn, ApiError> {
    let mut guard = Txn::new();
    if lbs.len() > MAX_LOAD_BALANCERS {
        return Err(ApiError::invalid(format!(
            "A service can have at most {MAX_LOAD_BALANCERS} load balancers."
        )));
    }
    for lb in lbs {
        let Some(tg) = lb.target_group_arn.as_deref() else {
            return Err(ApiError::invalid(
                "targetGroupArn is required: berth's load balancers are application load balancers.",
            ));
        };
        let (Some(name), Some(port)) = (lb.container_name.as_deref(), lb.container_port) else {
            return Err(ApiError::invalid(
                "containerName and containerPort are required for a load balancer.",
            ));
        };
        let missing = || {
            ApiError::invalid(format!(
                "The target group with targetGroupArn {tg} does not exist."
            ))
        };
        if !tg.starts_with("arn:") {
            return Err(missing());
        }
        let rev = match crate::elb::target_groups::load(ctx, tg).await {
            Ok((group, rev)) => {
                let awsvpc = td.network_mode.as_deref() == Some("awsvpc");
                if awsvpc != (group.target_type == "ip") {
                    return Err(ApiError::invalid(format!(
                        "The provided target group {tg} has target type {}, which is incompatible with the {} network mode specified in the task definition.",
                        group.target_type,
                        td.network_mode.as_deref().unwrap_or("bridge")
                    )));
                }
                rev
            }
            Err(e) if e.code == ErrorCode::ElbTargetGroupNotFound => return Err(missing()),
            Err(e) => return Err(e),
        };
        guard = guard.when_mod_revision(keys::elb_target_group(tg), rev);
        let Some(c) = td.container_definitions.iter().find(|c| c.name == name) else {
            return Err(ApiError::invalid(format!(
                "The container {name} does not exist in the task definition."
            )));
        };
        if !c
            .port_mappings
            .iter()
            .any(|p| p.container_port == Some(i64::from(port)))
        {
            return Err(ApiError::invalid(format!(
                "The container {name} does not have a container port {port} defined."
            )));
        }
    }
    Ok(guard)
}

pub(super) fn check_placement(
    strategy: &[PlacementStrategy],
    constraints: &[PlacementConstraint],
) -> Result<(), ApiError> {
    if strategy.len() > 5 || constraints.len() > 10 {
        return Err(ApiError::invalid(
            "At most 5 placement strategies and 10 placement constraints are allowed.",
        ));
    }
    for s in strategy {
        Strategy::try_from(s).map_err(|e| ApiError::invalid(e.to_string()))?;
    }
    for c in constraints {
        Constraint::try_from(c).map_err(|e| ApiError::invalid(e.to_string()))?;
    }
    Ok(())
}

/// A request's `deploymentConfiguration` as the wire gives it.
#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireDeploymentConfiguration {
    deployment_circuit_breaker: Option<CircuitBreaker>,
    maximum_percent: Option<i64>,
    minimum_healthy_percent: Option<i64>,
    /// Members berth does not implement (refused unless neutral).
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

pub(super) fn configuration(
    base: DeploymentConfiguration,
    w: Option<WireDeploymentConfiguration>,
    strategy: SchedulingStrategy,
) -> Result<DeploymentConfiguration, ApiError> {
    let Some(w) = w else { return Ok(base) };
    super::unsupported::refuse("deploymentConfiguration.", &w.rest)?;
    let pct = |v: Option<i64>, d: u32| -> Result<u32, ApiError> {
        match v {
            None => Ok(d),
            Some(v) => u32::try_from(v)
                .map_err(|_| ApiError::invalid("deployment percentages must be non-negative.")),
        }
    };
    let c = DeploymentConfiguration {
        deployment_circuit_breaker: w
            .deployment_circuit_breaker
            .unwrap_or(base.deployment_circuit_breaker),
        maximum_percent: pct(w.maximum_percent, base.maximum_percent)?,
        minimum_healthy_percent: pct(w.minimum_healthy_percent, base.minimum_healthy_percent)?,
    };
    c.validate(strategy)?;
    Ok(c)
}

pub(super) fn check_propagate_tags(p: Option<&str>) -> Result<(), ApiError> {
    match p {
        None | Some("TASK_DEFINITION" | "SERVICE" | "NONE") => Ok(()),
        Some(_) => Err(ApiError::invalid(
            "propagateTags must be TASK_DEFINITION, SERVICE or NONE.",
        )),
    }
}

pub(super) fn grace(v: Option<i64>) -> Result<Option<u32>, ApiError> {
    match v {
        None => Ok(None),
        Some(g) if (0..=2_147_483_647).contains(&g) => Ok(Some(g as u32)),
        Some(_) => Err(ApiError::invalid(
            "healthCheckGracePeriodSeconds must be between 0 and 2147483647.",
        )),
    }
}

/// A new service's launch type and capacity provider strategy: a Fargate service runs on
/// berth's managed capacity (its tasks carry `fargate`); any other goes through the capacity
/// providers (or the cluster's default strategy).
pub(super) async fn service_capacity(
    ctx: &Ctx,
    cluster: &str,
    launch_type: &Option<String>,
    items: &Option<Vec<super::capacity::strategy::WireItem>>,
    scheduling: SchedulingStrategy,
    taken: super::fargate::Taken,
) -> Result<
    (
        String,
        Vec<berth_model::capacity::StrategyItem>,
        super::fargate::Taken,
    ),
    ApiError,
> {
    let (c, _) = load_active(ctx, cluster).await?;
    // Checked for a Fargate strategy too: its providers must be the cluster's, as in ECS.
    let plan = super::capacity::strategy::resolve(&c, launch_type.as_deref(), items.as_deref())?;
    let taken = super::fargate::take_default(taken, &plan)?;
    if taken.is_fargate() {
        return Ok(("FARGATE".to_owned(), Vec::new(), taken));
    }
    let explicit = items.as_ref().is_some_and(|v| !v.is_empty());
    let (lt, cp_strategy) = super::capacity::strategy::for_service(plan, scheduling, explicit)?;
    Ok((launch_type.clone().unwrap_or(lt), cp_strategy, taken))
}

/// A new service's desired count: none for DAEMON (it runs one task per host), 0..=10,000 and
/// required for REPLICA, as ECS says.
pub(super) fn desired_count(
    strategy: SchedulingStrategy,
    given: Option<i64>,
) -> Result<u32, ApiError> {
    let desired = match (strategy, given) {
        (SchedulingStrategy::Daemon, Some(_)) => {
            return Err(ApiError::invalid(
                "The daemon scheduling strategy does not support a desired count for services.",
            ))
        }
        (SchedulingStrategy::Daemon, None) => 0,
        (_, Some(n)) if (0..=10_000).contains(&n) => n as u32,
        (_, Some(_)) => {
            return Err(ApiError::invalid(
                "desiredCount must be between 0 and 10000.",
            ))
        }
        (_, None) => {
            return Err(ApiError::invalid(
                "desiredCount is required for the REPLICA scheduling strategy.",
            ))
        }
    };
    Ok(desired)
}
