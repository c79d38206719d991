//! Tasks: running copies of a task definition, with ECS's lifecycle.
//!
//! `lastStatus` moves PROVISIONING → PENDING → RUNNING → DEPROVISIONING → STOPPED as the agent
//! reports; `desiredStatus` is what the control plane wants (RUNNING or STOPPED). A task holds
//! its cpu, memory and host ports on its instance until it is STOPPED.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::wire::{self, EmptyList};
use crate::{ApiError, KeyValuePair, Tag, TaskDefinition, TransportProtocol};

/// A task's (or container's) status; the variants are in lifecycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Placed on an instance; its resources are being set up.
    Provisioning,
    /// Its images are being pulled and containers created.
    Pending,
    /// Its resources (network, load-balancer targets) are being activated.
    Activating,
    /// Its essential containers run.
    Running,
    /// Being taken out of its load balancers before it stops.
    Deactivating,
    /// Its containers are being stopped.
    Stopping,
    /// Its resources are being released.
    Deprovisioning,
    /// Done; it holds nothing on its instance.
    Stopped,
}

impl TaskStatus {
    /// The wire string (`RUNNING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Pending => "PENDING",
            Self::Activating => "ACTIVATING",
            Self::Running => "RUNNING",
            Self::Deactivating => "DEACTIVATING",
            Self::Stopping => "STOPPING",
            Self::Deprovisioning => "DEPROVISIONING",
            Self::Stopped => "STOPPED",
        }
    }
}

/// What the control plane wants of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    /// Keep it running.
    Running,
    /// Stop it.
    Stopped,
}

impl DesiredStatus {
    /// The wire string (`RUNNING`, `STOPPED`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Stopped => "STOPPED",
        }
    }
    /// ListTasks' `desiredStatus` filter (ECS also accepts PENDING, which matches RUNNING).
    pub fn parse_filter(s: &str) -> Result<Self, ApiError> {
        match s {
            "RUNNING" | "PENDING" => Ok(Self::Running),
            "STOPPED" => Ok(Self::Stopped),
            _ => Err(ApiError::invalid(format!(
                "Invalid desiredStatus {s:?}; valid: RUNNING, PENDING, STOPPED"
            ))),
        }
    }
}

/// Why a task stopped (ECS's `stopCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum StopCode {
    /// A container failed to start (image pull, bad definition).
    TaskFailedToStart,
    /// An essential container exited.
    EssentialContainerExited,
    /// Stopped by StopTask.
    UserInitiated,
    /// The service scheduler stopped it (scale-in, replacement, failed health checks).
    ServiceSchedulerInitiated,
    /// The host was lost (its agent stopped answering) or removed.
    InfrastructureHealth,
    /// A FARGATE_SPOT task's capacity was reclaimed.
    SpotInterruption,
}

/// A task's or container's health, from container health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    /// Every health-checked essential container passes.
    Healthy,
    /// A health-checked essential container fails.
    Unhealthy,
    /// Not checked, or not yet known.
    #[default]
    Unknown,
}

/// A host port a container got, as ECS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    /// The host address the port is published on.
    #[serde(rename = "bindIP")]
    pub bind_ip: String,
    /// The port inside the container.
    pub container_port: u16,
    /// The port on the host.
    pub host_port: u16,
    /// `tcp` or `udp`.
    pub protocol: TransportProtocol,
}

/// One container of a task, as the agent last reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The container's name in the task definition.
    pub name: String,
    /// The image it runs.
    pub image: String,
    /// The container's status.
    pub last_status: TaskStatus,
    /// Its exit code, once it has exited.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Why it stopped or could not start.
    #[serde(default)]
    pub reason: Option<String>,
    /// Its published ports.
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
    /// Its health (UNKNOWN without a health check).
    #[serde(default)]
    pub health_status: HealthStatus,
    /// Its id in the agent's runtime (the Docker container id).
    #[serde(default)]
    pub runtime_id: Option<String>,
    /// Cpu units reserved by the container definition (0: none).
    #[serde(default)]
    pub cpu: i64,
    /// Hard memory limit, in MiB.
    #[serde(default)]
    pub memory: Option<i64>,
    /// Soft memory reservation, in MiB.
    #[serde(default)]
    pub memory_reservation: Option<i64>,
    /// Whether the task stops when this container exits.
    #[serde(default)]
    pub essential: bool,
    /// How many times its restart policy restarted it in place (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u32>,
}

/// RunTask's `overrides` for one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    /// The container to override (its name in the task definition).
    #[serde(default)]
    pub name: String,
    /// The command to run instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Environment variables to add or replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<KeyValuePair>>,
    /// Cpu units instead of the definition's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    /// Hard memory limit, in MiB, instead of the definition's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Memory reservation, in MiB, instead of the definition's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    /// The overrides berth does not apply (`environmentFiles`, `resourceRequirements`, ...),
    /// kept as given so DescribeTasks shows them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// RunTask's `overrides`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverride {
    /// Per-container overrides.
    #[serde(default)]
    pub container_overrides: Vec<ContainerOverride>,
    /// Task cpu instead of the definition's (`1024`, `1 vCPU`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Task memory instead of the definition's (`2048`, `2 GB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// The task's role instead of the definition's `taskRoleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// The overrides berth does not apply (`ephemeralStorage`, ...), kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TaskOverride {
    /// Applies the overrides to a task definition, giving the definition this task runs.
    /// Unknown container names are an error, as in ECS.
    pub fn apply(&self, td: &TaskDefinition) -> Result<TaskDefinition, ApiError> {
        let mut td = td.clone();
        if let Some(c) = &self.cpu {
            td.cpu = Some(crate::parse_task_cpu(c)?.to_string());
        }
        if let Some(m) = &self.memory {
            td.memory = Some(crate::parse_task_memory(m)?.to_string());
        }
        if let Some(r) = self.task_role_arn.as_deref().filter(|r| !r.is_empty()) {
            td.task_role_arn = Some(r.to_owned());
        }
        for o in &self.container_overrides {
            let c = td
                .container_definitions
                .iter_mut()
                .find(|c| c.name == o.name)
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "Override for container named {} is not a container in the TaskDefinition.",
                        o.name
                    ))
                })?;
            if let Some(cmd) = &o.command {
                c.command = Some(cmd.clone());
            }
            if let Some(env) = &o.environment {
                for kv in env {
                    match c.environment.iter_mut().find(|e| e.name == kv.name) {
                        Some(e) => e.value = kv.value.clone(),
                        None => c.environment.push(kv.clone()),
                    }
                }
            }
            if let Some(cpu) = o.cpu {
                c.cpu = cpu;
            }
            if o.memory.is_some() {
                c.memory = o.memory;
            }
            if o.memory_reservation.is_some() {
                c.memory_reservation = o.memory_reservation;
            }
        }
        Ok(td)
    }

    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.container_overrides.is_empty()
            && self.cpu.is_none()
            && self.memory.is_none()
            && self.extra.is_empty()
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// The task id (the last part of its ARN).
    pub id: String,
    /// The name of its cluster.
    pub cluster: String,
    /// Its task definition's family.
    pub family: String,
    /// Its task definition's revision.
    pub revision: u32,
    /// The container instance it is placed on (none until placed).
    #[serde(default)]
    pub container_instance_id: Option<String>,
    /// What the agent last reported (or the control plane set).
    pub last_status: TaskStatus,
    /// What the control plane wants: RUNNING, or STOPPED once asked to stop.
    pub desired_status: DesiredStatus,
    /// `EC2`, `EXTERNAL` or `FARGATE`.
    pub launch_type: String,
    /// The capacity provider it was launched through (none for a launch type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    /// Cpu units and memory MiB this task holds on its instance.
    pub cpu: u64,
    /// The memory, in MiB (see `cpu`).
    pub memory: u64,
    /// Fixed host ports this task holds (dynamic ones are not reserved).
    #[serde(default)]
    pub host_ports: Vec<(u16, TransportProtocol)>,
    /// Each container, as last reported.
    pub containers: Vec<Container>,
    /// The RunTask or service overrides it was launched with.
    #[serde(default)]
    pub overrides: TaskOverride,
    /// Its task group (`family:FAMILY`, `service:NAME`, or RunTask's `group`).
    #[serde(default)]
    pub group: Option<String>,
    /// Who started it: RunTask's `startedBy`, or the service deployment's id.
    #[serde(default)]
    pub started_by: Option<String>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// When it was created, in epoch seconds.
    pub created_at: f64,
    /// When it became RUNNING.
    #[serde(default)]
    pub started_at: Option<f64>,
    /// When it was asked to stop (desired STOPPED).
    #[serde(default)]
    pub stopping_at: Option<f64>,
    /// When it became STOPPED.
    #[serde(default)]
    pub stopped_at: Option<f64>,
    /// When its last container stopped.
    #[serde(default)]
    pub execution_stopped_at: Option<f64>,
    /// When its image pulls began.
    #[serde(default)]
    pub pull_started_at: Option<f64>,
    /// When its image pulls ended.
    #[serde(default)]
    pub pull_stopped_at: Option<f64>,
    /// Why it stopped (a code).
    #[serde(default)]
    pub stop_code: Option<StopCode>,
    /// Why it stopped (words).
    #[serde(default)]
    pub stopped_reason: Option<String>,
    /// Its health, from its essential containers'.
    #[serde(default)]
    pub health_status: HealthStatus,
    /// Bumped on every change, as ECS's `version`.
    #[serde(default)]
    pub version: u64,
    /// No longer written or read: a running task's samples live in the metrics hub of the
    /// replica its agent reports to (a store write per task per sample was the write load
    /// that slowed the API at scale). Records written before that may still carry one.
    #[serde(default)]
    pub stats: Option<TaskStats>,
    /// Set when the service controller has decided to stop this task but first takes it out
    /// of its load balancers (ECS's DEACTIVATING): the stop's reason. The agent keeps it
    /// running, and its in-flight requests finish, until the targets have drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_after_drain: Option<String>,
    /// Set when the service scheduler stops this task (or drains it to stop it) because it
    /// failed its container or load-balancer health checks. The stop code alone cannot say
    /// so (ECS writes `ServiceSchedulerInitiated` for a scale-in too), and such a stop counts
    /// as a failure of the task's deployment: the circuit breaker and the launch backoff
    /// read it. Absent from records that predate it and from every other task.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed_health_checks: bool,
    /// An awsvpc task's network interface (its own address in one of its subnets), given at
    /// placement; none for other network modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eni: Option<crate::vpc::TaskEni>,
    /// What a FARGATE task records beyond an EC2 one (provider, platform version, storage,
    /// zone); absent for every other task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fargate: Option<crate::fargate::FargateTask>,
}

/// Resource use of a task as the agent last sampled it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStats {
    /// Cpu used, in cpu units (1024 = one core fully busy).
    pub cpu_units: f64,
    /// Memory used, in MiB.
    pub memory_mib: f64,
    /// When the sample was taken, in epoch seconds.
    pub at: f64,
}

impl Task {
    /// The service this task belongs to (its group is `service:NAME`), if any.
    pub fn service_name(&self) -> Option<&str> {
        self.group.as_deref()?.strip_prefix("service:")
    }

    /// Whether the task still holds resources on its instance.
    pub fn holds_resources(&self) -> bool {
        self.last_status != TaskStatus::Stopped
    }

    /// Whether it is not yet RUNNING (PROVISIONING, PENDING or ACTIVATING).
    pub fn is_pending(&self) -> bool {
        self.last_status < TaskStatus::Running
    }

    /// The ECS `Task` wire shape. `tags` appear only `with_tags` (DescribeTasks' `include`).
    pub fn to_wire(
        &self,
        task_arn: &str,
        cluster_arn: &str,
        taskdef_arn: &str,
        instance_arn: Option<&str>,
        with_tags: bool,
    ) -> Value {
        let container_arn = task_arn.replacen(":task/", ":container/", 1);
        let containers = self
            .containers
            .iter()
            .map(|c| ContainerWire {
                container_arn: format!("{container_arn}/{}", c.name),
                task_arn,
                name: &c.name,
                image: &c.image,
                last_status: c.last_status,
                network_bindings: &c.network_bindings,
                network_interfaces: self
                    .eni
                    .iter()
                    .map(|e| NetworkInterfaceWire {
                        attachment_id: &e.attachment_id,
                        private_ipv4_address: &e.ip,
                    })
                    .collect(),
                health_status: c.health_status,
                cpu: c.cpu.to_string(),
                exit_code: c.exit_code,
                reason: c.reason.as_deref(),
                runtime_id: c.runtime_id.as_deref(),
                memory: c.memory.map(|m| m.to_string()),
                memory_reservation: c.memory_reservation.map(|m| m.to_string()),
                restart_count: c.restart_count.filter(|n| *n > 0),
            })
            .collect();
        // A task drained before it stops is DEACTIVATING, and already on its way to STOPPED.
        let (last_status, desired_status) = match (&self.stop_after_drain, self.last_status) {
            (Some(_), TaskStatus::Running) => (TaskStatus::Deactivating, DesiredStatus::Stopped),
            (Some(_), s) => (s, DesiredStatus::Stopped),
            (None, s) => (s, self.desired_status),
        };
        wire::to_value(TaskWire {
            task_arn,
            cluster_arn,
            task_definition_arn: taskdef_arn,
            container_instance_arn: instance_arn,
            last_status,
            desired_status,
            launch_type: &self.launch_type,
            capacity_provider_name: self.capacity_provider_name.as_deref(),
            cpu: self.cpu.to_string(),
            memory: self.memory.to_string(),
            containers,
            overrides: TaskOverrideWire {
                container_overrides: &self.overrides.container_overrides,
                inference_accelerator_overrides: EmptyList,
                cpu: self.overrides.cpu.as_deref(),
                memory: self.overrides.memory.as_deref(),
            },
            created_at: self.created_at,
            version: self.version,
            health_status: self.health_status,
            connectivity: "CONNECTED",
            connectivity_at: self.created_at,
            attachments: self
                .eni
                .iter()
                .map(|e| eni_attachment(e, last_status))
                .collect(),
            attributes: EmptyList,
            enable_execute_command: false,
            group: self.group.as_deref(),
            started_by: self.started_by.as_deref(),
            started_at: self.started_at,
            stopping_at: self.stopping_at,
            stopped_at: self.stopped_at,
            execution_stopped_at: self.execution_stopped_at,
            pull_started_at: self.pull_started_at,
            pull_stopped_at: self.pull_stopped_at,
            stop_code: self.stop_code,
            stopped_reason: self.stopped_reason.as_deref(),
            tags: with_tags.then_some(self.tags.as_slice()),
        })
    }
}

/// ECS's `Task` shape, borrowed from a [`Task`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskWire<'a> {
    task_arn: &'a str,
    cluster_arn: &'a str,
    task_definition_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_instance_arn: Option<&'a str>,
    last_status: TaskStatus,
    desired_status: DesiredStatus,
    launch_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity_provider_name: Option<&'a str>,
    cpu: String,
    memory: String,
    containers: Vec<ContainerWire<'a>>,
    overrides: TaskOverrideWire<'a>,
    created_at: f64,
    version: u64,
    health_status: HealthStatus,
    connectivity: &'static str,
    connectivity_at: f64,
    attachments: Vec<Value>,
    attributes: EmptyList,
    enable_execute_command: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopping_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pull_started_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pull_stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_code: Option<StopCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [Tag]>,
}

/// ECS's `Container` shape (of a task), borrowed from a [`Container`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerWire<'a> {
    container_arn: String,
    task_arn: &'a str,
    name: &'a str,
    image: &'a str,
    last_status: TaskStatus,
    network_bindings: &'a [NetworkBinding],
    network_interfaces: Vec<NetworkInterfaceWire<'a>>,
    health_status: HealthStatus,
    /// ECS answers a container's cpu and memory as strings.
    cpu: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_reservation: Option<String>,
    /// Not in botocore's `Container` shape (ECS shows it only in the task metadata
    /// endpoint); berth adds it once a restart policy restarted the container, and SDKs
    /// ignore it.
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_count: Option<u32>,
}

/// ECS's `NetworkInterface` shape (a container of an awsvpc task).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NetworkInterfaceWire<'a> {
    attachment_id: &'a str,
    private_ipv4_address: &'a str,
}

/// ECS's `Attachment` for an awsvpc task's interface: PRECREATED until the task is placed and
/// starting, ATTACHED while it runs, DETACHED once it stopped (ECS's own sequence, without
/// the transient ATTACHING / DETACHING berth has no use for).
fn eni_attachment(e: &crate::vpc::TaskEni, status: TaskStatus) -> Value {
    let state = match status {
        TaskStatus::Provisioning => "PRECREATED",
        TaskStatus::Stopped => "DETACHED",
        _ => "ATTACHED",
    };
    let detail = |name: &str, value: &str| serde_json::json!({"name": name, "value": value});
    serde_json::json!({
        "id": e.attachment_id,
        "type": "ElasticNetworkInterface",
        "status": state,
        "details": [
            detail("subnetId", &e.subnet_id),
            detail("networkInterfaceId", &e.eni_id),
            detail("macAddress", &e.mac),
            detail("privateDnsName", &e.private_dns_name()),
            detail("privateIPv4Address", &e.ip),
        ],
    })
}

/// ECS's `TaskOverride` shape: the container overrides and the task's cpu and memory (the
/// other overrides berth keeps are not shown).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskOverrideWire<'a> {
    container_overrides: &'a [ContainerOverride],
    inference_accelerator_overrides: EmptyList,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A task with every optional member set, still draining its load balancers before it
    /// stops (so RUNNING shows as DEACTIVATING).
    fn full_task() -> Task {
        serde_json::from_value(json!({
            "id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "cluster": "prod", "family": "dns",
            "revision": 2, "containerInstanceId": "8c3f1a9e-1111-4222-8333-944455556666",
            "lastStatus": "RUNNING", "desiredStatus": "RUNNING", "launchType": "EC2",
            "cpu": 256, "memory": 128, "hostPorts": [[5353, "udp"]],
            "containers": [{"name": "dns", "image": "coredns", "lastStatus": "STOPPED",
                "exitCode": 137, "reason": "OOM", "healthStatus": "UNHEALTHY",
                "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 53,
                    "hostPort": 5353, "protocol": "udp"}],
                "runtimeId": "abc123", "cpu": 256, "memory": 128, "memoryReservation": 64,
                "essential": true},
                {"name": "side", "image": "busybox", "lastStatus": "PENDING"}],
            "overrides": {"containerOverrides": [{"name": "dns", "command": ["-conf", "x"],
                "environment": [{"name": "K", "value": "V"}], "cpu": 128, "memory": 64,
                "memoryReservation": 32, "environmentFiles": []}],
                "cpu": "512", "memory": "1024", "taskRoleArn": "arn:role"},
            "group": "service:dns", "startedBy": "ecs-svc/1234567890123456789",
            "tags": [{"key": "env", "value": "prod"}],
            "createdAt": 1718000000.5, "startedAt": 1718000003.25, "stoppingAt": 1718000010.0,
            "stoppedAt": 1718000020.125, "executionStoppedAt": 1718000019.0,
            "pullStartedAt": 1718000001.0, "pullStoppedAt": 1718000002.75,
            "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container exited",
            "healthStatus": "UNHEALTHY", "version": 9,
            "stats": {"cpuUnits": 12.5, "memoryMib": 30.0, "at": 1718000009.0},
            "stopAfterDrain": "Scaling in", "failedHealthChecks": true
        }))
        .unwrap()
    }

    /// A task just placed: no optional member set.
    fn bare_task() -> Task {
        serde_json::from_value(json!({
            "id": "t1", "cluster": "c", "family": "f", "revision": 1,
            "lastStatus": "PROVISIONING", "desiredStatus": "RUNNING", "launchType": "EC2",
            "cpu": 0, "memory": 0, "containers": [{"name": "a", "image": "i",
                "lastStatus": "PENDING"}],
            "createdAt": 1.0
        }))
        .unwrap()
    }

    /// Golden: DescribeTasks' shape of a task with every optional member, and of a bare one.
    #[test]
    fn wire_shape_is_ecs_task() {
        let arn = "arn:aws:ecs:us-east-1:000000000000:task/prod/0f1e";
        let full = full_task().to_wire(arn, "arn:cluster", "arn:td/dns:2", Some("arn:ci"), true);
        assert_eq!(
            full,
            json!({
                "attachments": [],
                "attributes": [],
                "clusterArn": "arn:cluster",
                "connectivity": "CONNECTED",
                "connectivityAt": 1718000000.5,
                "containerInstanceArn": "arn:ci",
                "containers": [
                    {
                        "containerArn": "arn:aws:ecs:us-east-1:000000000000:container/prod/0f1e/dns",
                        "cpu": "256",
                        "exitCode": 137,
                        "healthStatus": "UNHEALTHY",
                        "image": "coredns",
                        "lastStatus": "STOPPED",
                        "memory": "128",
                        "memoryReservation": "64",
                        "name": "dns",
                        "networkBindings": [
                            {
                                "bindIP": "0.0.0.0",
                                "containerPort": 53,
                                "hostPort": 5353,
                                "protocol": "udp"
                            }
                        ],
                        "networkInterfaces": [],
                        "reason": "OOM",
                        "runtimeId": "abc123",
                        "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/prod/0f1e"
                    },
                    {
                        "containerArn": "arn:aws:ecs:us-east-1:000000000000:container/prod/0f1e/side",
                        "cpu": "0",
                        "healthStatus": "UNKNOWN",
                        "image": "busybox",
                        "lastStatus": "PENDING",
                        "name": "side",
                        "networkBindings": [],
                        "networkInterfaces": [],
                        "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/prod/0f1e"
                    }
                ],
                "cpu": "256",
                "createdAt": 1718000000.5,
                "desiredStatus": "STOPPED",
                "enableExecuteCommand": false,
                "executionStoppedAt": 1718000019.0,
                "group": "service:dns",
                "healthStatus": "UNHEALTHY",
                "lastStatus": "DEACTIVATING",
                "launchType": "EC2",
                "memory": "128",
                "overrides": {
                    "containerOverrides": [
                        {
                            "command": [
                                "-conf",
                                "x"
                            ],
                            "cpu": 128,
                            "environment": [
                                {
                                    "name": "K",
                                    "value": "V"
                                }
                            ],
                            "environmentFiles": [],
                            "memory": 64,
                            "memoryReservation": 32,
                            "name": "dns"
                        }
                    ],
                    "cpu": "512",
                    "inferenceAcceleratorOverrides": [],
                    "memory": "1024"
                },
                "pullStartedAt": 1718000001.0,
                "pullStoppedAt": 1718000002.75,
                "startedAt": 1718000003.25,
                "startedBy": "ecs-svc/1234567890123456789",
                "stopCode": "EssentialContainerExited",
                "stoppedAt": 1718000020.125,
                "stoppedReason": "Essential container exited",
                "stoppingAt": 1718000010.0,
                "tags": [
                    {
                        "key": "env",
                        "value": "prod"
                    }
                ],
                "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/prod/0f1e",
                "taskDefinitionArn": "arn:td/dns:2",
                "version": 9
            })
        );
        let arn = "arn:aws:ecs:us-east-1:000000000000:task/c/t1";
        let bare = bare_task().to_wire(arn, "arn:cluster", "arn:td/f:1", None, false);
        assert_eq!(
            bare,
            json!({
                "attachments": [],
                "attributes": [],
                "clusterArn": "arn:cluster",
                "connectivity": "CONNECTED",
                "connectivityAt": 1.0,
                "containers": [
                    {
                        "containerArn": "arn:aws:ecs:us-east-1:000000000000:container/c/t1/a",
                        "cpu": "0",
                        "healthStatus": "UNKNOWN",
                        "image": "i",
                        "lastStatus": "PENDING",
                        "name": "a",
                        "networkBindings": [],
                        "networkInterfaces": [],
                        "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/c/t1"
                    }
                ],
                "cpu": "0",
                "createdAt": 1.0,
                "desiredStatus": "RUNNING",
                "enableExecuteCommand": false,
                "healthStatus": "UNKNOWN",
                "lastStatus": "PROVISIONING",
                "launchType": "EC2",
                "memory": "0",
                "overrides": {
                    "containerOverrides": [],
                    "inferenceAcceleratorOverrides": []
                },
                "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/c/t1",
                "taskDefinitionArn": "arn:td/f:1",
                "version": 0
            })
        );
    }

    #[test]
    fn a_draining_task_shows_deactivating_only_while_running() {
        let mut t = full_task();
        let w = t.to_wire("arn:task/a", "c", "td", None, false);
        assert_eq!(
            (w["lastStatus"].as_str(), w["desiredStatus"].as_str()),
            (Some("DEACTIVATING"), Some("STOPPED"))
        );
        t.last_status = TaskStatus::Deprovisioning;
        let w = t.to_wire("arn:task/a", "c", "td", None, false);
        assert_eq!(
            (w["lastStatus"].as_str(), w["desiredStatus"].as_str()),
            (Some("DEPROVISIONING"), Some("STOPPED"))
        );
        assert!(w.get("tags").is_none() && w.get("containerInstanceArn").is_none());
        t.stop_after_drain = None;
        let w = t.to_wire("arn:task/a", "c", "td", None, false);
        assert_eq!(
            (w["lastStatus"].as_str(), w["desiredStatus"].as_str()),
            (Some("DEPROVISIONING"), Some("RUNNING"))
        );
    }

    #[test]
    fn overrides_apply_to_named_containers_only() {
        let mut td: TaskDefinition = serde_json::from_value(json!({"family": "f",
            "containerDefinitions": [{"name": "a", "image": "i", "memory": 8, "command": ["x"],
              "environment": [{"name": "K", "value": "1"}]}]}))
        .unwrap();
        td.validate_and_normalize().unwrap();
        let o: TaskOverride = serde_json::from_value(json!({"containerOverrides": [
            {"name": "a", "command": ["y"], "environment": [{"name": "K", "value": "2"}, {"name": "N", "value": "3"}], "memory": 16}],
            "cpu": "512"}))
        .unwrap();
        let out = o.apply(&td).unwrap();
        let c = &out.container_definitions[0];
        assert_eq!(c.command, Some(vec!["y".to_owned()]));
        assert_eq!(c.environment.len(), 2);
        assert_eq!(c.environment[0].value, "2");
        assert_eq!(c.memory, Some(16));
        assert_eq!(out.cpu.as_deref(), Some("512"));
        let bad: TaskOverride =
            serde_json::from_value(json!({"containerOverrides": [{"name": "zz"}]})).unwrap();
        assert!(bad.apply(&td).is_err());
    }

    #[test]
    fn tasks_stored_with_text_protocols_decode_and_re_encode_byte_identically() {
        let stored = include_str!("../testdata/task-stored.json").trim_end();
        let t: Task = serde_json::from_str(stored).unwrap();
        assert_eq!(
            t.host_ports,
            [
                (5353, TransportProtocol::Udp),
                (8080, TransportProtocol::Tcp)
            ]
        );
        assert_eq!(
            t.containers[0].network_bindings[0].protocol,
            TransportProtocol::Udp
        );
        assert_eq!(serde_json::to_string(&t).unwrap(), stored);
    }

    /// The wire structs serialize statuses with serde; ECS's spelling is `as_str`.
    #[test]
    fn statuses_serialize_as_their_wire_spelling() {
        use TaskStatus::*;
        for s in [
            Provisioning,
            Pending,
            Activating,
            Running,
            Deactivating,
            Stopping,
            Deprovisioning,
            Stopped,
        ] {
            assert_eq!(json!(s), json!(s.as_str()));
        }
        for s in [DesiredStatus::Running, DesiredStatus::Stopped] {
            assert_eq!(json!(s), json!(s.as_str()));
        }
    }

    #[test]
    fn status_order_matches_the_lifecycle() {
        assert!(TaskStatus::Provisioning < TaskStatus::Pending);
        assert!(TaskStatus::Pending < TaskStatus::Running);
        assert!(TaskStatus::Running < TaskStatus::Deprovisioning);
        assert!(TaskStatus::Deprovisioning < TaskStatus::Stopped);
    }
}
