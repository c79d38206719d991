//! CreateService, UpdateService, DeleteService, DescribeServices, ListServices.
//!
//! These actions only write the service's desired state (desired count, a new PRIMARY
//! deployment, DRAINING); the service controller in `berth-control` does the rest.

use berth_control::deployment_id;
use berth_model::{
    keys, validate_cluster_name, validate_name, validate_tags, ApiError, Arn, Deployment,
    DeploymentConfiguration, DeploymentCounts, DeploymentStatus, ErrorCode, NetworkConfiguration,
    PlacementConstraint, PlacementStrategy, ResourceKind, RolloutState, SchedulingStrategy,
    Service, ServiceLoadBalancer, ServiceStatus, Tag, TaskDefinition,
};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::clusters::{cluster_name, load_active};
use super::service_checks::{
    check_load_balancers, check_placement, check_propagate_tags, configuration, desired_count,
    grace, service_capacity, WireDeploymentConfiguration,
};
use crate::paging::{page_json, paginate};
use crate::{store_err, to_bytes, Ctx};

/// A service name from a name or an ARN (`service/CLUSTER/NAME` or the old `service/NAME`).
pub(crate) fn service_name(ident: &str) -> Result<String, ApiError> {
    let name = if Arn::looks_like_arn(ident) {
        match Arn::parse(ident) {
            Some(a) if a.kind == ResourceKind::Service => {
                a.resource.rsplit('/').next().unwrap_or_default().to_owned()
            }
            _ => return Err(ApiError::invalid(format!("Invalid service ARN: {ident}"))),
        }
    } else {
        ident.to_owned()
    };
    validate_name("Service name", &name)?;
    Ok(name)
}

pub(crate) fn not_found() -> ApiError {
    ApiError::new(ErrorCode::ServiceNotFoundException, "Service not found.")
}

fn not_active() -> ApiError {
    ApiError::new(
        ErrorCode::ServiceNotActiveException,
        "Service was not ACTIVE.",
    )
}

fn new_deployment(td: &TaskDefinition, now: f64) -> Deployment {
    Deployment {
        id: deployment_id(),
        status: DeploymentStatus::Primary,
        family: td.family.clone(),
        revision: td.revision,
        created_at: now,
        updated_at: now,
        rollout_state: RolloutState::InProgress,
        rollout_state_reason: Some("ECS deployment is in progress.".into()),
        rollback_of: None,
    }
}

/// Live counts of each of the service's deployments, by deployment id: from the task index
/// (kept from a store watch, as fresh as a store read), not from reading the tasks.
pub(crate) async fn deployment_counts(
    ctx: &Ctx,
    svc: &Service,
) -> Result<std::collections::HashMap<String, DeploymentCounts>, ApiError> {
    let group = svc.group();
    ctx.state
        .task_index
        .read(&ctx.state.store, |t| {
            t.deployment_counts(&svc.cluster, &group)
        })
        .await
        .map_err(store_err)
}

/// The ECS wire shape of a service, with live counts from its tasks.
pub(crate) async fn service_wire(
    ctx: &Ctx,
    svc: &Service,
    with_tags: bool,
) -> Result<Value, ApiError> {
    let c = deployment_counts(ctx, svc).await?;
    let get = |id: &str| c.get(id).copied().unwrap_or_default();
    let primary_id = svc.primary().map(|d| d.id.clone());
    let daemon_desired = if svc.scheduling_strategy == SchedulingStrategy::Daemon {
        Some(svc.desired_count)
    } else {
        None
    };
    let desired = |d: &Deployment| -> u32 {
        if Some(&d.id) == primary_id.as_ref() {
            daemon_desired.unwrap_or(svc.desired_count)
        } else {
            let c: DeploymentCounts = get(&d.id);
            c.running + c.pending
        }
    };
    let mut v = svc.to_wire(
        &ctx.arn(
            ResourceKind::Service,
            format!("{}/{}", svc.cluster, svc.name),
        ),
        &ctx.arn(ResourceKind::Cluster, &svc.cluster),
        &|f, r| ctx.arn(ResourceKind::TaskDefinition, format!("{f}:{r}")),
        &get,
        &desired,
        with_tags,
    );
    super::fargate::decorate_service(&mut v, svc);
    Ok(v)
}

pub(crate) async fn load(
    ctx: &Ctx,
    cluster: &str,
    name: &str,
) -> Result<Option<(Service, u64)>, ApiError> {
    ctx.store()
        .get_json::<Service>(&keys::service(cluster, name))
        .await
        .map_err(store_err)
}

async fn save(ctx: &Ctx, svc: &Service, rev: u64) -> Result<bool, ApiError> {
    save_guarded(ctx, svc, rev, Txn::new()).await
}

/// [`save`] within `txn` (its compares and writes), all or nothing.
async fn save_guarded(ctx: &Ctx, svc: &Service, rev: u64, txn: Txn) -> Result<bool, ApiError> {
    let key = keys::service(&svc.cluster, &svc.name);
    Ok(matches!(
        ctx.store()
            .txn(
                txn.when_mod_revision(key.clone(), rev)
                    .put(key, to_bytes(svc)?)
            )
            .await
            .map_err(store_err)?,
        TxnResult::Committed { .. }
    ))
}

/// The request of `CreateService`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateServiceRequest {
    cluster: Option<String>,
    service_name: String,
    task_definition: Option<String>,
    desired_count: Option<i64>,
    launch_type: Option<String>,
    deployment_configuration: Option<WireDeploymentConfiguration>,
    #[serde(default)]
    placement_constraints: Vec<Value>,
    #[serde(default)]
    placement_strategy: Vec<Value>,
    #[serde(default)]
    load_balancers: Vec<Value>,
    health_check_grace_period_seconds: Option<i64>,
    scheduling_strategy: Option<SchedulingStrategy>,
    #[serde(default)]
    tags: Vec<Tag>,
    propagate_tags: Option<String>,
    #[serde(default, rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: bool,
    network_configuration: Option<Value>,
    capacity_provider_strategy: Option<Vec<super::capacity::strategy::WireItem>>,
    /// Members berth does not implement (`deploymentController` other than ECS,
    /// `networkConfiguration` ...): refused unless neutral.
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// ECS `CreateService`.
pub async fn create(ctx: &Ctx, mut req: CreateServiceRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    validate_name("Service name", &req.service_name)?;
    let taken = super::fargate::take(
        req.launch_type.as_deref(),
        super::tasks::strategy_json(req.capacity_provider_strategy.as_deref()),
        &mut req.rest,
    )?;
    super::unsupported::refuse("", &req.rest)?;
    validate_tags(&req.tags)?;
    let strategy = req.scheduling_strategy.unwrap_or_default();
    let desired = desired_count(strategy, req.desired_count)?;
    if strategy == SchedulingStrategy::Daemon && !req.placement_strategy.is_empty() {
        return Err(ApiError::invalid(
            "Placement strategies are not supported with the DAEMON scheduling strategy.",
        ));
    }
    let placement_strategy = PlacementStrategy::from_request(&req.placement_strategy)?;
    let placement_constraints = PlacementConstraint::from_request(&req.placement_constraints)?;
    check_placement(&placement_strategy, &placement_constraints)?;
    let load_balancers = ServiceLoadBalancer::from_request(&req.load_balancers)?;
    let config = configuration(
        DeploymentConfiguration::default_for(strategy),
        req.deployment_configuration,
        strategy,
    )?;
    let (launch_type, cp_strategy, taken) = service_capacity(
        ctx,
        &cluster,
        &req.launch_type,
        &req.capacity_provider_strategy,
        strategy,
        taken,
    )
    .await?;
    if !matches!(launch_type.as_str(), "EC2" | "FARGATE" | "EXTERNAL") {
        return Err(ApiError::invalid(format!(
            "Invalid launchType {launch_type:?}"
        )));
    }
    check_propagate_tags(req.propagate_tags.as_deref())?;
    let grace = grace(req.health_check_grace_period_seconds)?;
    let td_ident = req
        .task_definition
        .ok_or_else(|| ApiError::invalid("taskDefinition is required."))?;
    let td = super::taskdefs::runnable(ctx, &td_ident).await?;
    let network = match &req.network_configuration {
        Some(v) => Some(NetworkConfiguration::from_request(v)?),
        None => None,
    };
    let network =
        crate::ec2::network::resolve(ctx, td.network_mode.as_deref(), network.as_ref()).await?;
    let resolved = super::fargate::resolve(taken, &td, &Default::default())?;
    let now = ctx.now();
    let svc = Service {
        name: req.service_name.clone(),
        cluster: cluster.clone(),
        status: ServiceStatus::Active,
        desired_count: desired,
        scheduling_strategy: strategy,
        launch_type,
        capacity_provider_strategy: cp_strategy,
        deployment_configuration: config,
        deployments: vec![new_deployment(&td, now)],
        events: Vec::new(),
        placement_constraints,
        placement_strategy,
        load_balancers,
        network_configuration: network,
        health_check_grace_period_seconds: grace,
        tags: req.tags,
        propagate_tags: req.propagate_tags,
        enable_ecs_managed_tags: req.enable_ecs_managed_tags,
        created_at: now,
        created_by: ctx.principal_arn(),
        steady: false,
        version: 1,
        fargate: resolved.fargate,
    };
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let tg_guard = check_load_balancers(ctx, &svc.load_balancers, &td).await?;
        let existing = load(ctx, &cluster, &req.service_name).await?;
        let rev = match existing {
            Some((s, _)) if s.status == ServiceStatus::Draining => {
                return Err(ApiError::invalid(
                    "Unable to Start a service that is still Draining.",
                ))
            }
            Some((s, _)) if s.status != ServiceStatus::Inactive => {
                return Err(ApiError::invalid("Creation of service was not idempotent."))
            }
            Some((_, rev)) => rev,
            None => 0,
        };
        // The cluster is rewritten (unchanged) with the service, so a DeleteCluster racing
        // with this retries and sees the service, or this retries and finds the cluster gone.
        let (c, c_rev) = load_active(ctx, &cluster).await?;
        let c_key = keys::cluster(&cluster);
        let txn = tg_guard
            .when_mod_revision(c_key.clone(), c_rev)
            .put(c_key, to_bytes(&c)?);
        if save_guarded(ctx, &svc, rev, txn).await? {
            return Ok(json!({ "service": service_wire(ctx, &svc, true).await? }));
        }
    }
    Err(ApiError::server("The cluster changed concurrently; retry."))
}

/// The request of `UpdateService`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServiceRequest {
    cluster: Option<String>,
    service: String,
    desired_count: Option<i64>,
    task_definition: Option<String>,
    deployment_configuration: Option<WireDeploymentConfiguration>,
    placement_constraints: Option<Vec<Value>>,
    placement_strategy: Option<Vec<Value>>,
    #[serde(default)]
    force_new_deployment: bool,
    health_check_grace_period_seconds: Option<i64>,
    load_balancers: Option<Vec<Value>>,
    propagate_tags: Option<String>,
    #[serde(rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: Option<bool>,
    network_configuration: Option<Value>,
    capacity_provider_strategy: Option<Vec<super::capacity::strategy::WireItem>>,
    /// Members berth does not implement: refused unless neutral (see `unsupported`).
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// UpdateService's placement, load balancer and network members, typed (`None`: not given).
struct UpdateMembers {
    placement_strategy: Option<Vec<PlacementStrategy>>,
    placement_constraints: Option<Vec<PlacementConstraint>>,
    load_balancers: Option<Vec<ServiceLoadBalancer>>,
    /// The network configuration given, typed; then checked and completed against the
    /// definition the service will run (`Some(None)`: none, for a non-awsvpc definition).
    network_given: Option<NetworkConfiguration>,
    network: Option<Option<NetworkConfiguration>>,
    /// Resolved against the cluster by `update` (an empty list: the cluster's default).
    capacity_provider_strategy: Option<Vec<berth_model::capacity::StrategyItem>>,
}

impl UpdateMembers {
    fn parse(req: &UpdateServiceRequest) -> Result<Self, ApiError> {
        Ok(Self {
            placement_strategy: req
                .placement_strategy
                .as_deref()
                .map(PlacementStrategy::from_request)
                .transpose()?,
            placement_constraints: req
                .placement_constraints
                .as_deref()
                .map(PlacementConstraint::from_request)
                .transpose()?,
            load_balancers: req
                .load_balancers
                .as_deref()
                .map(ServiceLoadBalancer::from_request)
                .transpose()?,
            network_given: req
                .network_configuration
                .as_ref()
                .map(NetworkConfiguration::from_request)
                .transpose()?,
            network: None,
            capacity_provider_strategy: None,
        })
    }
}

/// Applies an UpdateService request to a service (pure: the caller loads and saves).
fn apply_update(
    svc: &mut Service,
    req: &UpdateServiceRequest,
    m: &UpdateMembers,
    td: Option<&TaskDefinition>,
    grace: Option<u32>,
    now: f64,
) -> Result<(), ApiError> {
    if svc.status != ServiceStatus::Active {
        return Err(not_active());
    }
    if let Some(n) = req.desired_count {
        if svc.scheduling_strategy == SchedulingStrategy::Daemon {
            return Err(ApiError::invalid(
                "The daemon scheduling strategy does not support a desired count for services.",
            ));
        }
        if !(0..=10_000).contains(&n) {
            return Err(ApiError::invalid(
                "desiredCount must be between 0 and 10000.",
            ));
        }
        svc.desired_count = n as u32;
    }
    svc.deployment_configuration = configuration(
        svc.deployment_configuration,
        req.deployment_configuration.clone(),
        svc.scheduling_strategy,
    )?;
    let mut redeploy = req.force_new_deployment;
    if let Some(s) = &m.placement_strategy {
        redeploy |= *s != svc.placement_strategy;
        svc.placement_strategy = s.clone();
    }
    if let Some(c) = &m.placement_constraints {
        redeploy |= *c != svc.placement_constraints;
        svc.placement_constraints = c.clone();
    }
    if let Some(s) = &m.capacity_provider_strategy {
        redeploy |= *s != svc.capacity_provider_strategy;
        svc.capacity_provider_strategy = s.clone();
    }
    if let Some(lb) = &m.load_balancers {
        redeploy |= *lb != svc.load_balancers;
        svc.load_balancers = lb.clone();
    }
    if let Some(n) = &m.network {
        redeploy |= *n != svc.network_configuration;
        svc.network_configuration = n.clone();
    }
    if let Some(p) = &req.propagate_tags {
        svc.propagate_tags = Some(p.clone());
    }
    if let Some(e) = req.enable_ecs_managed_tags {
        svc.enable_ecs_managed_tags = e;
    }
    if grace.is_some() {
        svc.health_check_grace_period_seconds = grace;
    }
    let current = svc.primary().map(|d| (d.family.clone(), d.revision));
    let target = td
        .map(|t| (t.family.clone(), t.revision))
        .or(current.clone());
    if target != current {
        redeploy = true;
    }
    if redeploy {
        if let Some((family, revision)) = target {
            for d in &mut svc.deployments {
                if d.status == DeploymentStatus::Primary {
                    d.status = DeploymentStatus::Active;
                    d.updated_at = now;
                }
            }
            let d = new_deployment(
                &TaskDefinition {
                    family,
                    revision,
                    ..Default::default()
                },
                now,
            );
            svc.deployments.insert(0, d);
            svc.steady = false;
        }
    }
    svc.version += 1;
    Ok(())
}

/// ECS `UpdateService`.
pub async fn update(ctx: &Ctx, req: UpdateServiceRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    let name = service_name(&req.service)?;
    super::unsupported::refuse("", &req.rest)?;
    check_propagate_tags(req.propagate_tags.as_deref())?;
    let mut m = UpdateMembers::parse(&req)?;
    check_placement(
        m.placement_strategy.as_deref().unwrap_or(&[]),
        m.placement_constraints.as_deref().unwrap_or(&[]),
    )?;
    let grace = grace(req.health_check_grace_period_seconds)?;
    let (c, _) = load_active(ctx, &cluster).await?;
    if let Some(items) = &req.capacity_provider_strategy {
        let s = super::capacity::strategy::resolve(&c, None, Some(items))?;
        m.capacity_provider_strategy =
            Some(s.unwrap_or_else(|| super::capacity::strategy::cluster_default(&c)));
    }
    let td = match &req.task_definition {
        Some(t) => Some(super::taskdefs::runnable(ctx, t).await?),
        None => None,
    };
    // Each try applies the whole request afresh to the service as it then is: a try that lost
    // a race (with the controller, which writes the service all the time) starts over.
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut svc, rev) = load(ctx, &cluster, &name).await?.ok_or_else(not_found)?;
        let mut guard = Txn::new();
        if m.load_balancers.is_some() || td.is_some() || m.network_given.is_some() {
            let lbs = m.load_balancers.as_ref().unwrap_or(&svc.load_balancers);
            let current = match (&td, svc.primary()) {
                (Some(td), _) => Some(td.clone()),
                (None, Some(d)) => ctx
                    .store()
                    .get_json::<TaskDefinition>(&keys::taskdef(&d.family, d.revision))
                    .await
                    .map_err(store_err)?
                    .map(|(td, _)| td),
                (None, None) => None,
            };
            if let Some(current) = current {
                guard = check_load_balancers(ctx, lbs, &current).await?;
                if td.is_some() || m.network_given.is_some() {
                    let given = m
                        .network_given
                        .as_ref()
                        .or(svc.network_configuration.as_ref());
                    let mode = current.network_mode.as_deref();
                    m.network = Some(crate::ec2::network::resolve(ctx, mode, given).await?);
                }
            }
        }
        apply_update(&mut svc, &req, &m, td.as_ref(), grace, ctx.now())?;
        if save_guarded(ctx, &svc, rev, guard).await? {
            return Ok(json!({ "service": service_wire(ctx, &svc, false).await? }));
        }
    }
    Err(ApiError::server("Service changed concurrently; retry."))
}

/// The request of `DeleteService`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteServiceRequest {
    cluster: Option<String>,
    service: String,
    force: Option<bool>,
}

/// ECS `DeleteService`: a REPLICA service still asking for tasks is only deleted with `force`.
pub async fn delete(ctx: &Ctx, req: DeleteServiceRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    let name = service_name(&req.service)?;
    load_active(ctx, &cluster).await?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut svc, rev) = load(ctx, &cluster, &name).await?.ok_or_else(not_found)?;
        // A service already deleted (DRAINING, or INACTIVE and not yet forgotten) is answered
        // as it is, as ECS does.
        if svc.status == ServiceStatus::Active {
            if svc.desired_count > 0
                && svc.scheduling_strategy == SchedulingStrategy::Replica
                && !req.force.unwrap_or(false)
            {
                return Err(ApiError::invalid(
                    "The service cannot be stopped while it is scaled above 0.",
                ));
            }
            svc.desired_count = 0;
            svc.status = ServiceStatus::Draining;
            svc.steady = false;
            svc.version += 1;
            if !save(ctx, &svc, rev).await? {
                continue;
            }
        }
        return Ok(json!({ "service": service_wire(ctx, &svc, false).await? }));
    }
    Err(ApiError::server("Service changed concurrently; retry."))
}

/// The request of `DescribeServices`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesRequest {
    cluster: Option<String>,
    services: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
}

/// ECS `DescribeServices`.
pub async fn describe(ctx: &Ctx, req: DescribeServicesRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    if req.services.is_empty() || req.services.len() > 10 {
        return Err(ApiError::invalid(
            "services must name between 1 and 10 services.",
        ));
    }
    load_active(ctx, &cluster).await?;
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    let (mut out, mut failures) = (Vec::new(), Vec::new());
    for ident in &req.services {
        let name = service_name(ident)?;
        match load(ctx, &cluster, &name).await? {
            Some((svc, _)) => out.push(service_wire(ctx, &svc, with_tags).await?),
            None => failures.push(json!({
                "arn": ctx.arn(ResourceKind::Service, format!("{cluster}/{name}")),
                "reason": "MISSING",
            })),
        }
    }
    Ok(json!({ "services": out, "failures": failures }))
}

/// The request of `ListServices`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesRequest {
    cluster: Option<String>,
    launch_type: Option<String>,
    scheduling_strategy: Option<SchedulingStrategy>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ECS `ListServices`.
pub async fn list(ctx: &Ctx, req: ListServicesRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    load_active(ctx, &cluster).await?;
    let all = ctx
        .store()
        .list_json::<Service>(&keys::services_of(&cluster))
        .await
        .map_err(store_err)?;
    let items = all
        .into_iter()
        // A deleted service leaves the list at once, while it still drains.
        .filter(|(_, s, _)| s.status == ServiceStatus::Active)
        .filter(|(_, s, _)| req.launch_type.as_ref().is_none_or(|l| *l == s.launch_type))
        .filter(|(_, s, _)| {
            req.scheduling_strategy
                .is_none_or(|st| st == s.scheduling_strategy)
        })
        .map(|(k, s, _)| {
            (
                k,
                ctx.arn(ResourceKind::Service, format!("{}/{}", s.cluster, s.name)),
            )
        })
        .collect();
    let (arns, next) = paginate(items, req.max_results, req.next_token.as_deref(), false)?;
    Ok(page_json("serviceArns", arns, next))
}

/// The cluster and name of a service ARN's resource (`CLUSTER/NAME`; the old `NAME` form
/// means the default cluster).
fn split_resource(resource: &str) -> Result<(String, String), ApiError> {
    let (cluster, name) = resource.split_once('/').unwrap_or(("default", resource));
    validate_cluster_name(cluster)?;
    validate_name("Service name", name)?;
    Ok((cluster.to_owned(), name.to_owned()))
}

/// The tags of the service named by an ARN's resource part, for ListTagsForResource
/// (`crate::ecs::tags` dispatches `ResourceKind::Service` here).
#[allow(dead_code)]
pub async fn tags_of(ctx: &Ctx, resource: &str) -> Result<Vec<Tag>, ApiError> {
    let (cluster, name) = split_resource(resource)?;
    match load(ctx, &cluster, &name).await? {
        Some((svc, _)) if svc.status != ServiceStatus::Inactive => Ok(svc.tags),
        _ => Err(not_found()),
    }
}

/// Changes the tags of the service named by an ARN's resource part, for TagResource and
/// UntagResource, with compare-and-swap.
pub(crate) async fn modify_tags(
    ctx: &Ctx,
    resource: &str,
    change: impl Fn(&mut Vec<Tag>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let (cluster, name) = split_resource(resource)?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut svc, rev) = match load(ctx, &cluster, &name).await? {
            Some((svc, rev)) if svc.status != ServiceStatus::Inactive => (svc, rev),
            _ => return Err(not_found()),
        };
        change(&mut svc.tags)?;
        svc.version += 1;
        if save(ctx, &svc, rev).await? {
            return Ok(());
        }
    }
    Err(ApiError::server("Service changed concurrently; retry."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> Service {
        serde_json::from_value(json!({
            "name": "web", "cluster": "default", "status": "ACTIVE", "desiredCount": 2,
            "launchType": "EC2",
            "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100},
            "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "family": "web", "revision": 1,
                "createdAt": 0.0, "updatedAt": 0.0, "rolloutState": "COMPLETED"}],
            "createdAt": 0.0, "createdBy": "me"}))
        .unwrap()
    }

    #[test]
    fn an_update_retried_after_a_lost_race_applies_the_whole_request_again() {
        let req: UpdateServiceRequest = serde_json::from_value(json!({
            "service": "web", "desiredCount": 3,
            "deploymentConfiguration": {"minimumHealthyPercent": 50},
        }))
        .unwrap();
        // The first try's write lost a race; the second try starts from the stored service.
        let mut first = svc();
        let m = UpdateMembers::parse(&req).unwrap();
        apply_update(&mut first, &req, &m, None, Some(12), 1.0).unwrap();
        let mut second = svc();
        apply_update(&mut second, &req, &m, None, Some(12), 2.0).unwrap();
        for s in [&first, &second] {
            assert_eq!(s.desired_count, 3);
            assert_eq!(s.deployment_configuration.minimum_healthy_percent, 50);
            assert_eq!(s.deployment_configuration.maximum_percent, 200);
            assert_eq!(s.health_check_grace_period_seconds, Some(12));
            assert_eq!(s.deployments.len(), 1, "no new deployment for these fields");
        }
    }

    #[test]
    fn a_new_revision_or_force_starts_a_primary_deployment() {
        let td = TaskDefinition {
            family: "web".into(),
            revision: 2,
            ..Default::default()
        };
        let req: UpdateServiceRequest =
            serde_json::from_value(json!({"service": "web", "taskDefinition": "web:2"})).unwrap();
        let mut s = svc();
        let m = UpdateMembers::parse(&req).unwrap();
        apply_update(&mut s, &req, &m, Some(&td), None, 1.0).unwrap();
        assert_eq!(s.deployments.len(), 2);
        assert_eq!(s.deployments[0].status, DeploymentStatus::Primary);
        assert_eq!(s.deployments[0].revision, 2);
        assert_eq!(s.deployments[1].status, DeploymentStatus::Active);
        let force: UpdateServiceRequest =
            serde_json::from_value(json!({"service": "web", "forceNewDeployment": true})).unwrap();
        let m = UpdateMembers::parse(&force).unwrap();
        apply_update(&mut s, &force, &m, None, None, 2.0).unwrap();
        assert_eq!(s.deployments.len(), 3);
        assert_eq!(s.deployments[0].revision, 2);
        let mut gone = svc();
        gone.status = ServiceStatus::Draining;
        assert!(apply_update(&mut gone, &force, &m, None, None, 3.0).is_err());
    }
}
