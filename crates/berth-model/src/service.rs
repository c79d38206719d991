//! Services: keep N copies of a task definition running, roll out new revisions.
//!
//! A service holds its deployments, newest first: the PRIMARY one (what the service should
//! run) and ACTIVE ones that are being drained. Tasks belong to a deployment through
//! `startedBy` (the deployment id) and to the service through `group` (`service:NAME`).
//! Running and pending counts are derived from the tasks whenever the service is shown.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{self, wire_enum, EmptyList};
use crate::{ApiError, PlacementConstraint, PlacementStrategy, Tag};

/// Events kept per service (ECS shows the latest 100).
pub const MAX_EVENTS: usize = 100;

/// A service's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceStatus {
    /// Running and keeping its tasks.
    Active,
    /// Deleted; its tasks are being stopped.
    Draining,
    /// Deleted, and its tasks are gone.
    Inactive,
}

impl ServiceStatus {
    /// The wire string (`ACTIVE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Draining => "DRAINING",
            Self::Inactive => "INACTIVE",
        }
    }
}

/// How a service places its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SchedulingStrategy {
    /// Keep `desiredCount` tasks, placed by the strategies.
    #[default]
    Replica,
    /// One task on each container instance that satisfies the constraints.
    Daemon,
}

/// The deployment circuit breaker: fail a rollout whose tasks keep failing to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CircuitBreaker {
    /// Whether the circuit breaker is on.
    pub enable: bool,
    /// Whether a failed rollout rolls back to the last completed deployment.
    pub rollback: bool,
}

/// How a rollout replaces tasks (`deploymentConfiguration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    /// The circuit breaker.
    #[serde(default)]
    pub deployment_circuit_breaker: CircuitBreaker,
    /// The most tasks during a rollout, in percent of the desired count.
    pub maximum_percent: u32,
    /// The fewest healthy tasks during a rollout, in percent of the desired count.
    pub minimum_healthy_percent: u32,
}

impl DeploymentConfiguration {
    /// ECS's defaults: 200/100 for REPLICA, 100/0 for DAEMON.
    pub fn default_for(strategy: SchedulingStrategy) -> Self {
        match strategy {
            SchedulingStrategy::Replica => Self {
                deployment_circuit_breaker: CircuitBreaker::default(),
                maximum_percent: 200,
                minimum_healthy_percent: 100,
            },
            SchedulingStrategy::Daemon => Self {
                deployment_circuit_breaker: CircuitBreaker::default(),
                maximum_percent: 100,
                minimum_healthy_percent: 0,
            },
        }
    }

    /// ECS's rules: maximumPercent 100..=2000 (REPLICA), minimumHealthyPercent 0..=100, and
    /// they must leave room to move (not 100/100).
    pub fn validate(&self, strategy: SchedulingStrategy) -> Result<(), ApiError> {
        if self.minimum_healthy_percent > 100 {
            return Err(ApiError::invalid(
                "minimumHealthyPercent must be between 0 and 100.",
            ));
        }
        if strategy == SchedulingStrategy::Replica && !(100..=2000).contains(&self.maximum_percent)
        {
            return Err(ApiError::invalid(
                "maximumPercent must be between 100 and 2000.",
            ));
        }
        if self.maximum_percent == 100 && self.minimum_healthy_percent == 100 {
            return Err(ApiError::invalid(
                "maximumPercent must be greater than minimumHealthyPercent to allow a deployment to progress.",
            ));
        }
        Ok(())
    }

    /// The most tasks (RUNNING or PENDING) a deployment may have: floor(desired × max%).
    pub fn max_tasks(&self, desired: u32) -> u32 {
        (u64::from(desired) * u64::from(self.maximum_percent) / 100) as u32
    }

    /// The fewest healthy RUNNING tasks a deployment must keep: ceil(desired × min%).
    pub fn min_healthy(&self, desired: u32) -> u32 {
        (u64::from(desired) * u64::from(self.minimum_healthy_percent)).div_ceil(100) as u32
    }
}

/// A deployment's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    /// The deployment the service runs: the newest one.
    Primary,
    /// An older deployment whose tasks are being replaced.
    Active,
    /// Done: it has no tasks left.
    Inactive,
}

/// Where a deployment's rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RolloutState {
    /// Its tasks are being started and the older ones stopped.
    InProgress,
    /// It reached its desired count of healthy tasks.
    Completed,
    /// The circuit breaker failed it.
    Failed,
}

/// A service deployment: one task definition revision being rolled out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Its id (`ecs-svc/...`), which its tasks carry as `startedBy`.
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: DeploymentStatus,
    /// The family of the task definition it runs.
    pub family: String,
    /// The revision of the task definition it runs.
    pub revision: u32,
    /// When it was created, in epoch seconds.
    pub created_at: f64,
    /// When it last changed, in epoch seconds.
    pub updated_at: f64,
    /// Where its rollout stands.
    pub rollout_state: RolloutState,
    /// Why the rollout is in its state (ECS's words).
    #[serde(default)]
    pub rollout_state_reason: Option<String>,
    /// Set when this deployment is a rollback: the failed deployment it replaces.
    #[serde(default)]
    pub rollback_of: Option<String>,
}

/// One entry of a service's `events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    /// The event's id (a UUID).
    pub id: String,
    /// When it happened, in epoch seconds.
    pub created_at: f64,
    /// What happened, in ECS's words (`(service web) has reached a steady state.`).
    pub message: String,
}

/// One `loadBalancers` entry of a service: ECS's `LoadBalancer` shape (named apart from the
/// ELB [`crate::LoadBalancer`] record). berth's load balancers are application load balancers,
/// so CreateService requires `targetGroupArn`, `containerName` and `containerPort`; the
/// others are kept as given.
///
/// Fields are declared in alphabetical order of their wire names, as in `placement`: records
/// written when this member was raw JSON re-encode byte-identically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLoadBalancer {
    /// The blue/green settings, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced_configuration: Option<AdvancedConfiguration>,
    /// The container to register as the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// The container port to register (the host port it is published on is the target's port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i32>,
    /// A Classic Load Balancer's name, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    /// The target group to register the tasks in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
}

/// ECS's blue/green `advancedConfiguration` of a `loadBalancers` entry (kept, not acted on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedConfiguration {
    /// The target group of the blue/green alternate environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_target_group_arn: Option<String>,
    /// The listener rule serving production traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_listener_rule: Option<String>,
    /// The IAM role ECS would use to manage the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The listener rule serving test traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_listener_rule: Option<String>,
}

impl ServiceLoadBalancer {
    /// A request's `loadBalancers` list, typed; an entry of the wrong shape is ECS's
    /// `InvalidParameterException`.
    pub fn from_request(list: &[Value]) -> Result<Vec<Self>, ApiError> {
        list.iter()
            .map(|v| wire::member("loadBalancers", v))
            .collect()
    }
}

wire_enum! {
    /// ECS's `AssignPublicIp`.
    pub enum AssignPublicIp ("assignPublicIp") {
        /// Give the task's network interface a public IP.
        Enabled = "ENABLED",
        /// No public IP (the default).
        Disabled = "DISABLED",
    }
}

/// A service's `networkConfiguration` (awsvpc tasks): kept and shown; berth's placement and
/// agents do not read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfiguration {
    /// The awsvpc settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awsvpc_configuration: Option<AwsVpcConfiguration>,
}

/// ECS's `AwsVpcConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AwsVpcConfiguration {
    /// Services stored before berth checked this member may hold another value: it reads as
    /// absent (see `wire::lenient`).
    #[serde(
        default,
        deserialize_with = "wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub assign_public_ip: Option<AssignPublicIp>,
    /// Security groups of the tasks' network interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    /// Required by ECS; a record stored without it (before berth checked the shape) reads as
    /// none.
    #[serde(default)]
    pub subnets: Vec<String>,
}

impl NetworkConfiguration {
    /// A request's `networkConfiguration`, typed. A bad `assignPublicIp` is ECS's
    /// `InvalidParameterException` naming it; a value of the wrong shape names the member.
    pub fn from_request(v: &Value) -> Result<Self, ApiError> {
        if let Some(vpc) = v.get("awsvpcConfiguration") {
            wire::check::<AssignPublicIp>(vpc.get("assignPublicIp"))?;
        }
        wire::member("networkConfiguration", v)
    }
}

/// A service as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// The service's name (unique in its cluster).
    pub name: String,
    /// The name of its cluster.
    pub cluster: String,
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: ServiceStatus,
    /// How many tasks it should run (REPLICA).
    pub desired_count: u32,
    /// REPLICA or DAEMON.
    #[serde(default)]
    pub scheduling_strategy: SchedulingStrategy,
    /// `EC2`, `EXTERNAL` or `FARGATE`, given to its tasks.
    pub launch_type: String,
    /// The capacity provider strategy its tasks are launched with (empty: `launch_type`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity_provider_strategy: Vec<crate::capacity::StrategyItem>,
    /// How rollouts replace tasks.
    pub deployment_configuration: DeploymentConfiguration,
    /// Newest first; the first is PRIMARY.
    pub deployments: Vec<Deployment>,
    /// Recent events, newest first (at most [`MAX_EVENTS`]).
    #[serde(default)]
    pub events: Vec<ServiceEvent>,
    /// Constraints every placement must satisfy.
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraint>,
    /// How tasks are spread over instances, in order.
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategy>,
    /// The target groups its tasks are registered in.
    #[serde(default)]
    pub load_balancers: Vec<ServiceLoadBalancer>,
    /// The awsvpc network settings, kept and shown.
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    /// Seconds after a task starts during which failed health checks do not stop it.
    #[serde(default)]
    pub health_check_grace_period_seconds: Option<u32>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// `TASK_DEFINITION`, `SERVICE` or `NONE`, kept and shown.
    #[serde(default)]
    pub propagate_tags: Option<String>,
    /// Kept and shown (berth adds no managed tags).
    #[serde(default)]
    pub enable_ecs_managed_tags: bool,
    /// When it was created, in epoch seconds.
    pub created_at: f64,
    /// The ARN of the identity that created it.
    pub created_by: String,
    /// Whether the last reconcile found the service converged (for the steady-state event).
    #[serde(default)]
    pub steady: bool,
    /// Bumped on every change.
    #[serde(default)]
    pub version: u64,
    /// For a FARGATE service: what its tasks record (provider, platform version); absent for
    /// every other service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fargate: Option<crate::fargate::FargateTask>,
}

/// Live counts of one deployment, derived from its tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeploymentCounts {
    /// Tasks RUNNING.
    pub running: u32,
    /// Tasks not yet RUNNING.
    pub pending: u32,
    /// Tasks that stopped having failed to start or failed their health checks.
    pub failed: u32,
}

impl Service {
    /// The PRIMARY deployment, if the service has one.
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|d| d.status == DeploymentStatus::Primary)
    }

    /// The task group of this service's tasks.
    pub fn group(&self) -> String {
        format!("service:{}", self.name)
    }

    /// Adds an event, newest first, keeping the latest [`MAX_EVENTS`].
    pub fn push_event(&mut self, id: String, now: f64, message: String) {
        self.events.insert(
            0,
            ServiceEvent {
                id,
                created_at: now,
                message,
            },
        );
        self.events.truncate(MAX_EVENTS);
    }

    /// The ECS `Service` wire shape. `counts` gives each deployment's live counts by id, and
    /// `desired` the desired count of each deployment (derived by the controller's rules).
    #[allow(clippy::too_many_arguments)]
    pub fn to_wire(
        &self,
        service_arn: &str,
        cluster_arn: &str,
        taskdef_arn: &dyn Fn(&str, u32) -> String,
        counts: &dyn Fn(&str) -> DeploymentCounts,
        desired: &dyn Fn(&Deployment) -> u32,
        with_tags: bool,
    ) -> Value {
        let deployments = self
            .deployments
            .iter()
            .filter(|d| d.status != DeploymentStatus::Inactive)
            .map(|d| {
                let c = counts(&d.id);
                DeploymentWire {
                    id: &d.id,
                    status: d.status,
                    task_definition: taskdef_arn(&d.family, d.revision),
                    desired_count: desired(d),
                    pending_count: c.pending,
                    running_count: c.running,
                    failed_tasks: c.failed,
                    created_at: d.created_at,
                    updated_at: d.updated_at,
                    launch_type: &self.launch_type,
                    rollout_state: d.rollout_state,
                    rollout_state_reason: d.rollout_state_reason.as_deref(),
                    network_configuration: self.network_configuration.as_ref(),
                }
            })
            .collect();
        let (running, pending) = self
            .deployments
            .iter()
            .map(|d| counts(&d.id))
            .fold((0, 0), |(r, p), c| (r + c.running, p + c.pending));
        let primary = self.primary();
        wire::to_value(ServiceWire {
            service_arn,
            service_name: &self.name,
            cluster_arn,
            load_balancers: &self.load_balancers,
            service_registries: EmptyList,
            status: self.status,
            desired_count: self.desired_count,
            running_count: running,
            pending_count: pending,
            launch_type: &self.launch_type,
            capacity_provider_strategy: &self.capacity_provider_strategy,
            task_definition: primary
                .map(|d| taskdef_arn(&d.family, d.revision))
                .unwrap_or_default(),
            deployment_configuration: &self.deployment_configuration,
            deployments,
            events: &self.events,
            created_at: self.created_at,
            placement_constraints: &self.placement_constraints,
            placement_strategy: &self.placement_strategy,
            scheduling_strategy: self.scheduling_strategy,
            deployment_controller: DeploymentController { kind: "ECS" },
            created_by: &self.created_by,
            enable_ecs_managed_tags: self.enable_ecs_managed_tags,
            propagate_tags: self.propagate_tags.as_deref().unwrap_or("NONE"),
            enable_execute_command: false,
            health_check_grace_period_seconds: self.health_check_grace_period_seconds,
            network_configuration: self.network_configuration.as_ref(),
            current_service_deployment: primary.map(|d| d.id.as_str()),
            tags: with_tags.then_some(self.tags.as_slice()),
        })
    }
}

/// ECS's `Service` shape, borrowed from a [`Service`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceWire<'a> {
    service_arn: &'a str,
    service_name: &'a str,
    cluster_arn: &'a str,
    load_balancers: &'a [ServiceLoadBalancer],
    service_registries: EmptyList,
    status: ServiceStatus,
    desired_count: u32,
    running_count: u32,
    pending_count: u32,
    launch_type: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    capacity_provider_strategy: &'a [crate::capacity::StrategyItem],
    /// The PRIMARY deployment's; empty when there is none.
    task_definition: String,
    deployment_configuration: &'a DeploymentConfiguration,
    deployments: Vec<DeploymentWire<'a>>,
    events: &'a [ServiceEvent],
    created_at: f64,
    placement_constraints: &'a [PlacementConstraint],
    placement_strategy: &'a [PlacementStrategy],
    scheduling_strategy: SchedulingStrategy,
    deployment_controller: DeploymentController,
    created_by: &'a str,
    #[serde(rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: bool,
    propagate_tags: &'a str,
    enable_execute_command: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    health_check_grace_period_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_configuration: Option<&'a NetworkConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_service_deployment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [Tag]>,
}

/// ECS's `Deployment` shape, borrowed from a [`Deployment`] with its live counts.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentWire<'a> {
    id: &'a str,
    status: DeploymentStatus,
    task_definition: String,
    desired_count: u32,
    pending_count: u32,
    running_count: u32,
    failed_tasks: u32,
    created_at: f64,
    updated_at: f64,
    launch_type: &'a str,
    rollout_state: RolloutState,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollout_state_reason: Option<&'a str>,
    /// The service's: berth's deployments share it.
    #[serde(skip_serializing_if = "Option::is_none")]
    network_configuration: Option<&'a NetworkConfiguration>,
}

/// ECS's `DeploymentController`; berth has only the rolling `ECS` one.
#[derive(Serialize)]
struct DeploymentController {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percent_limits_round_as_ecs_does() {
        let c = DeploymentConfiguration {
            deployment_circuit_breaker: CircuitBreaker::default(),
            maximum_percent: 150,
            minimum_healthy_percent: 50,
        };
        // desired 3: max floor(4.5) = 4, min ceil(1.5) = 2
        assert_eq!(c.max_tasks(3), 4);
        assert_eq!(c.min_healthy(3), 2);
        assert_eq!(c.min_healthy(0), 0);
        let d = DeploymentConfiguration::default_for(SchedulingStrategy::Replica);
        assert_eq!((d.max_tasks(5), d.min_healthy(5)), (10, 5));
    }

    #[test]
    fn configuration_rules() {
        let mk = |max, min| DeploymentConfiguration {
            deployment_circuit_breaker: CircuitBreaker::default(),
            maximum_percent: max,
            minimum_healthy_percent: min,
        };
        assert!(mk(200, 100).validate(SchedulingStrategy::Replica).is_ok());
        assert!(mk(100, 0).validate(SchedulingStrategy::Replica).is_ok());
        assert!(mk(100, 100).validate(SchedulingStrategy::Replica).is_err());
        assert!(mk(50, 0).validate(SchedulingStrategy::Replica).is_err());
        assert!(mk(200, 101).validate(SchedulingStrategy::Replica).is_err());
    }

    /// A service as berth stored it while placement, load balancers and network configuration
    /// were raw JSON (keys sorted by serde_json), and what DescribeServices answered for it.
    const STORED: &str = include_str!("../testdata/service-stored.json");
    const WIRE: &str = include_str!("../testdata/service-wire.json");

    #[test]
    fn records_stored_untyped_decode_and_re_encode_byte_identically() {
        let svc: Service = serde_json::from_str(STORED).unwrap();
        assert_eq!(
            svc.placement_strategy[0],
            PlacementStrategy {
                field: Some("attribute:ecs.availability-zone".into()),
                kind: crate::PlacementStrategyType::Spread,
            }
        );
        assert_eq!(
            svc.placement_constraints[0].kind,
            crate::PlacementConstraintType::DistinctInstance
        );
        assert_eq!(svc.load_balancers[0].container_port, Some(80));
        assert_eq!(svc.load_balancers[0].container_name.as_deref(), Some("app"));
        let vpc = svc
            .network_configuration
            .as_ref()
            .and_then(|n| n.awsvpc_configuration.as_ref())
            .unwrap();
        assert_eq!(vpc.assign_public_ip, Some(AssignPublicIp::Disabled));
        assert_eq!(vpc.subnets, ["subnet-1", "subnet-2"]);

        assert_eq!(serde_json::to_string(&svc).unwrap(), STORED.trim_end());
        let wire = svc.to_wire(
            "arn:svc",
            "arn:cluster",
            &|f, r| format!("arn:td/{f}:{r}"),
            &|_| DeploymentCounts {
                running: 2,
                pending: 1,
                failed: 0,
            },
            &|_| 3,
            true,
        );
        assert_eq!(serde_json::to_string(&wire).unwrap(), WIRE.trim_end());
    }

    #[test]
    fn request_members_are_refused_as_ecs_does() {
        let e = NetworkConfiguration::from_request(
            &json!({"awsvpcConfiguration": {"subnets": ["s"], "assignPublicIp": "YES"}}),
        )
        .unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidParameterException);
        assert_eq!(
            e.message,
            r#"Invalid assignPublicIp "YES"; valid: ENABLED, DISABLED"#
        );
        let e =
            NetworkConfiguration::from_request(&json!({"awsvpcConfiguration": {"subnets": "s"}}))
                .unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidParameterException);
        assert!(e.message.starts_with("Invalid networkConfiguration: "));
        let n = NetworkConfiguration::from_request(
            &json!({"awsvpcConfiguration": {"subnets": ["s"], "assignPublicIp": "ENABLED"}}),
        )
        .unwrap();
        assert_eq!(
            n.awsvpc_configuration.and_then(|v| v.assign_public_ip),
            Some(AssignPublicIp::Enabled)
        );

        let e = ServiceLoadBalancer::from_request(&[json!({"containerPort": "80"})]).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidParameterException);
        assert!(e.message.starts_with("Invalid loadBalancers: "));
    }

    #[test]
    fn an_old_records_bad_assign_public_ip_reads_as_absent() {
        let mut v: Value = serde_json::from_str(STORED).unwrap();
        v["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] = json!("yes");
        let svc: Service = serde_json::from_value(v).unwrap();
        let vpc = svc
            .network_configuration
            .and_then(|n| n.awsvpc_configuration);
        assert_eq!(vpc.map(|v| v.assign_public_ip), Some(None));
    }

    #[test]
    fn events_are_newest_first_and_capped() {
        let mut s: Service = serde_json::from_value(json!({
            "name": "web", "cluster": "c", "status": "ACTIVE", "desiredCount": 1,
            "launchType": "EC2", "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100},
            "deployments": [], "createdAt": 0.0, "createdBy": "me"}))
        .unwrap();
        for i in 0..150 {
            s.push_event(i.to_string(), f64::from(i), format!("m{i}"));
        }
        assert_eq!(s.events.len(), MAX_EVENTS);
        assert_eq!(s.events[0].message, "m149");
    }

    /// A DAEMON service with no optional member set, whose deployments are all draining or
    /// done (so it has no PRIMARY).
    fn bare_service() -> Service {
        serde_json::from_value(json!({
            "name": "agentd", "cluster": "c", "status": "DRAINING", "desiredCount": 0,
            "schedulingStrategy": "DAEMON", "launchType": "EC2",
            "deploymentConfiguration": {"maximumPercent": 100, "minimumHealthyPercent": 0},
            "deployments": [
                {"id": "ecs-svc/2", "status": "ACTIVE", "family": "agentd", "revision": 2,
                 "createdAt": 5.0, "updatedAt": 6.5, "rolloutState": "FAILED"},
                {"id": "ecs-svc/1", "status": "INACTIVE", "family": "agentd", "revision": 1,
                 "createdAt": 1.0, "updatedAt": 2.0, "rolloutState": "COMPLETED"}],
            "createdAt": 1.0, "createdBy": "me", "tags": [{"key": "k", "value": "v"}]}))
        .unwrap()
    }

    /// Golden: the optional members are absent, counts sum over every deployment, and the
    /// service's task definition is empty without a PRIMARY. (`service-wire.json` is the full
    /// shape.)
    #[test]
    fn a_bare_services_wire_shape() {
        let w = bare_service().to_wire(
            "arn:svc",
            "arn:cluster",
            &|f, r| format!("arn:td/{f}:{r}"),
            &|id| DeploymentCounts {
                running: id.len() as u32,
                pending: 1,
                failed: 2,
            },
            &|_| 4,
            false,
        );
        assert_eq!(
            w,
            json!({
                "clusterArn": "arn:cluster",
                "createdAt": 1.0,
                "createdBy": "me",
                "deploymentConfiguration": {
                    "deploymentCircuitBreaker": {
                        "enable": false,
                        "rollback": false
                    },
                    "maximumPercent": 100,
                    "minimumHealthyPercent": 0
                },
                "deploymentController": {
                    "type": "ECS"
                },
                "deployments": [
                    {
                        "createdAt": 5.0,
                        "desiredCount": 4,
                        "failedTasks": 2,
                        "id": "ecs-svc/2",
                        "launchType": "EC2",
                        "pendingCount": 1,
                        "rolloutState": "FAILED",
                        "runningCount": 9,
                        "status": "ACTIVE",
                        "taskDefinition": "arn:td/agentd:2",
                        "updatedAt": 6.5
                    }
                ],
                "desiredCount": 0,
                "enableECSManagedTags": false,
                "enableExecuteCommand": false,
                "events": [],
                "launchType": "EC2",
                "loadBalancers": [],
                "pendingCount": 2,
                "placementConstraints": [],
                "placementStrategy": [],
                "propagateTags": "NONE",
                "runningCount": 18,
                "schedulingStrategy": "DAEMON",
                "serviceArn": "arn:svc",
                "serviceName": "agentd",
                "serviceRegistries": [],
                "status": "DRAINING",
                "taskDefinition": ""
            })
        );
    }
}
