//! berth's own agent protocol (JSON over HTTP on the API port, under `/agent/v1/`).
//!
//! An agent registers its host, then long-polls for the full desired set of tasks assigned to
//! it (level-triggered: it always gets everything and reconciles its containers to it), and
//! posts batches of task state changes. A poll is also the agent's heartbeat.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Attribute, ContainerDefinition, DesiredStatus, HealthStatus, HostResources, NetworkBinding,
    StopCode, TaskStats, TaskStatus,
};

/// The header that carries the cluster's join token.
pub const JOIN_TOKEN_HEADER: &str = "x-berth-join-token";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRegistration {
    pub cluster: String,
    /// Set when re-registering after a restart, so the host keeps its identity.
    #[serde(default)]
    pub instance_id: Option<String>,
    pub hostname: String,
    pub resources: HostResources,
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    /// The agent's ECS `versionInfo`, passed through to the instance record (see
    /// [`crate::ContainerInstance::version_info`]).
    #[serde(default)]
    pub version_info: Value,
    /// `host:port` where the agent serves logs.
    #[serde(default)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRegistered {
    pub instance_id: String,
    pub instance_arn: String,
}

/// One task as the agent must run it: the definition with overrides applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTask {
    pub task_id: String,
    pub task_arn: String,
    pub family: String,
    pub revision: u32,
    pub desired_status: DesiredStatus,
    pub last_status: TaskStatus,
    #[serde(default)]
    pub network_mode: Option<String>,
    pub containers: Vec<ContainerDefinition>,
}

/// The answer to a poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredSet {
    /// Changes whenever the set changes; the agent sends it back as `since`.
    pub fingerprint: String,
    pub tasks: Vec<AgentTask>,
    /// False when the server no longer knows the instance (deregistered): re-register.
    #[serde(default = "yes")]
    pub registered: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerReport {
    pub name: String,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskReport {
    pub task_id: String,
    pub last_status: TaskStatus,
    #[serde(default)]
    pub containers: Vec<ContainerReport>,
    #[serde(default)]
    pub health_status: HealthStatus,
    #[serde(default)]
    pub started_at: Option<f64>,
    #[serde(default)]
    pub stopped_at: Option<f64>,
    #[serde(default)]
    pub pull_started_at: Option<f64>,
    #[serde(default)]
    pub pull_stopped_at: Option<f64>,
    /// Set by the agent when it stops a task on its own (exit, failure to start).
    #[serde(default)]
    pub stop_code: Option<StopCode>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub stats: Option<TaskStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub cluster: String,
    pub instance_id: String,
    pub tasks: Vec<TaskReport>,
}
