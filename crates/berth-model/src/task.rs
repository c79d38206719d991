//! Tasks: running copies of a task definition, with ECS's lifecycle.
//!
//! `lastStatus` moves PROVISIONING → PENDING → RUNNING → DEPROVISIONING → STOPPED as the agent
//! reports; `desiredStatus` is what the control plane wants (RUNNING or STOPPED). A task holds
//! its cpu, memory and host ports on its instance until it is STOPPED.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::{ApiError, KeyValuePair, Tag, TaskDefinition, TransportProtocol};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    Running,
    Stopped,
}

impl DesiredStatus {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
    /// The host was lost (its agent stopped answering) or removed.
    InfrastructureHealth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
    #[default]
    Unknown,
}

/// A host port a container got, as ECS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    #[serde(rename = "bindIP")]
    pub bind_ip: String,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: TransportProtocol,
}

/// One container of a task, as the agent last reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub image: String,
    pub last_status: TaskStatus,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
    #[serde(default)]
    pub health_status: HealthStatus,
    #[serde(default)]
    pub runtime_id: Option<String>,
    #[serde(default)]
    pub cpu: i64,
    #[serde(default)]
    pub memory: Option<i64>,
    #[serde(default)]
    pub memory_reservation: Option<i64>,
    #[serde(default)]
    pub essential: bool,
}

/// RunTask's `overrides` for one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<KeyValuePair>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
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
    #[serde(default)]
    pub container_overrides: Vec<ContainerOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// The overrides berth does not apply (`taskRoleArn`, `ephemeralStorage`, ...), kept as
    /// given.
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
    pub id: String,
    pub cluster: String,
    pub family: String,
    pub revision: u32,
    #[serde(default)]
    pub container_instance_id: Option<String>,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub launch_type: String,
    /// Cpu units and memory MiB this task holds on its instance.
    pub cpu: u64,
    pub memory: u64,
    /// Fixed host ports this task holds (dynamic ones are not reserved).
    #[serde(default)]
    pub host_ports: Vec<(u16, TransportProtocol)>,
    pub containers: Vec<Container>,
    #[serde(default)]
    pub overrides: TaskOverride,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub created_at: f64,
    #[serde(default)]
    pub started_at: Option<f64>,
    #[serde(default)]
    pub stopping_at: Option<f64>,
    #[serde(default)]
    pub stopped_at: Option<f64>,
    #[serde(default)]
    pub execution_stopped_at: Option<f64>,
    #[serde(default)]
    pub pull_started_at: Option<f64>,
    #[serde(default)]
    pub pull_stopped_at: Option<f64>,
    #[serde(default)]
    pub stop_code: Option<StopCode>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub health_status: HealthStatus,
    #[serde(default)]
    pub version: u64,
    /// The latest cpu (percent of the task's reservation) and memory (MiB) samples.
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
}

/// Resource use of a task as the agent last sampled it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStats {
    /// Cpu used, in cpu units (1024 = one core fully busy).
    pub cpu_units: f64,
    pub memory_mib: f64,
    pub at: f64,
}

impl Container {
    /// The container as DescribeTasks shows it, inside the task `task_arn`.
    fn to_wire(&self, task_arn: &str) -> Value {
        let mut v = json!({
            "containerArn": format!("{}/{}", task_arn.replacen(":task/", ":container/", 1), self.name),
            "taskArn": task_arn,
            "name": self.name,
            "image": self.image,
            "lastStatus": self.last_status.as_str(),
            "networkBindings": self.network_bindings,
            "networkInterfaces": [],
            "healthStatus": self.health_status,
            "cpu": self.cpu.to_string(),
        });
        if let Some(code) = self.exit_code {
            v["exitCode"] = json!(code);
        }
        if let Some(r) = &self.reason {
            v["reason"] = json!(r);
        }
        if let Some(id) = &self.runtime_id {
            v["runtimeId"] = json!(id);
        }
        if let Some(m) = self.memory {
            v["memory"] = json!(m.to_string());
        }
        if let Some(m) = self.memory_reservation {
            v["memoryReservation"] = json!(m.to_string());
        }
        v
    }
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

    pub fn is_pending(&self) -> bool {
        self.last_status < TaskStatus::Running
    }

    pub fn to_wire(
        &self,
        task_arn: &str,
        cluster_arn: &str,
        taskdef_arn: &str,
        instance_arn: Option<&str>,
        with_tags: bool,
    ) -> Value {
        let containers: Vec<Value> = self
            .containers
            .iter()
            .map(|c| c.to_wire(task_arn))
            .collect();
        let mut v = json!({
            "taskArn": task_arn,
            "clusterArn": cluster_arn,
            "taskDefinitionArn": taskdef_arn,
            "lastStatus": match (&self.stop_after_drain, self.last_status) {
                (Some(_), TaskStatus::Running) => "DEACTIVATING",
                _ => self.last_status.as_str(),
            },
            "desiredStatus": if self.stop_after_drain.is_some() {
                DesiredStatus::Stopped.as_str()
            } else {
                self.desired_status.as_str()
            },
            "launchType": self.launch_type,
            "cpu": self.cpu.to_string(),
            "memory": self.memory.to_string(),
            "containers": containers,
            "overrides": {
                "containerOverrides": self.overrides.container_overrides,
                "inferenceAcceleratorOverrides": [],
            },
            "createdAt": self.created_at,
            "version": self.version,
            "healthStatus": self.health_status,
            "connectivity": "CONNECTED",
            "connectivityAt": self.created_at,
            "attachments": [],
            "attributes": [],
            "enableExecuteCommand": false,
        });
        let opt = |v: &mut Value, k: &str, x: Option<Value>| {
            if let Some(x) = x {
                v[k] = x;
            }
        };
        opt(
            &mut v,
            "containerInstanceArn",
            instance_arn.map(|a| json!(a)),
        );
        opt(&mut v, "group", self.group.as_ref().map(|g| json!(g)));
        opt(
            &mut v,
            "startedBy",
            self.started_by.as_ref().map(|g| json!(g)),
        );
        opt(&mut v, "startedAt", self.started_at.map(|t| json!(t)));
        opt(&mut v, "stoppingAt", self.stopping_at.map(|t| json!(t)));
        opt(&mut v, "stoppedAt", self.stopped_at.map(|t| json!(t)));
        opt(
            &mut v,
            "executionStoppedAt",
            self.execution_stopped_at.map(|t| json!(t)),
        );
        opt(
            &mut v,
            "pullStartedAt",
            self.pull_started_at.map(|t| json!(t)),
        );
        opt(
            &mut v,
            "pullStoppedAt",
            self.pull_stopped_at.map(|t| json!(t)),
        );
        opt(&mut v, "stopCode", self.stop_code.map(|c| json!(c)));
        opt(
            &mut v,
            "stoppedReason",
            self.stopped_reason.as_ref().map(|r| json!(r)),
        );
        if let Some(cpu) = &self.overrides.cpu {
            v["overrides"]["cpu"] = json!(cpu);
        }
        if let Some(m) = &self.overrides.memory {
            v["overrides"]["memory"] = json!(m);
        }
        if with_tags {
            v["tags"] = json!(self.tags);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn status_order_matches_the_lifecycle() {
        assert!(TaskStatus::Provisioning < TaskStatus::Pending);
        assert!(TaskStatus::Pending < TaskStatus::Running);
        assert!(TaskStatus::Running < TaskStatus::Deprovisioning);
        assert!(TaskStatus::Deprovisioning < TaskStatus::Stopped);
    }
}
