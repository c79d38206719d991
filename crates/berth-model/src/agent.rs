//! berth's own agent protocol (JSON over HTTP on the API port, under `/agent/v1/`).
//!
//! An agent registers its host, then long-polls for the full desired set of tasks assigned to
//! it (level-triggered: it always gets everything and reconciles its containers to it), and
//! posts batches of task state changes. A poll is also the agent's heartbeat.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Attribute, ContainerDefinition, DesiredStatus, HealthStatus, HostResources, NetworkBinding,
    StopCode, TaskStats, TaskStatus, Volume,
};

/// The header that carries the cluster's join token.
pub const JOIN_TOKEN_HEADER: &str = "x-berth-join-token";
/// The header that names the container instance an agent call is made for.
pub const INSTANCE_HEADER: &str = "x-berth-instance";
/// The header that carries the instance's credential (issued at registration).
pub const CREDENTIAL_HEADER: &str = "x-berth-instance-credential";

/// What an agent sends to register its host (`POST /agent/v1/register`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRegistration {
    /// The cluster to join.
    pub cluster: String,
    /// Set when re-registering after a restart, so the host keeps its identity.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The host's name, for logs.
    pub hostname: String,
    /// What the host offers to tasks.
    pub resources: HostResources,
    /// The agent's attributes (`ecs.os-type`, capabilities, `--attribute`s).
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

/// The answer to a registration: the container instance the host now is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRegistered {
    /// The container instance id; the agent keeps it to re-register as the same instance.
    pub instance_id: String,
    /// The container instance's ARN.
    pub instance_arn: String,
    /// The instance's credential: every later call presents it (with the instance id), and a
    /// restarted agent re-registers with it. Kept in the agent's state dir, readable by it only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// What callers of this agent's logs endpoint present (the server hands it to clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_token: Option<String>,
}

/// One task as the agent must run it: the definition with overrides applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTask {
    /// The task id.
    pub task_id: String,
    /// The task's ARN.
    pub task_arn: String,
    /// The task definition's family.
    pub family: String,
    /// The task definition's revision.
    pub revision: u32,
    /// RUNNING, or STOPPED when the agent must stop the task.
    pub desired_status: DesiredStatus,
    /// The status the server last recorded for the task.
    pub last_status: TaskStatus,
    /// The task definition's `networkMode` (`bridge` when absent).
    #[serde(default)]
    pub network_mode: Option<String>,
    /// The containers to run, overrides applied.
    pub containers: Vec<ContainerDefinition>,
    /// The task definition's volumes (what the containers' `mountPoints` name).
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// The task definition's `pidMode` (`host` or `task`).
    #[serde(default)]
    pub pid_mode: Option<String>,
    /// The task definition's `ipcMode` (`host`, `task` or `none`).
    #[serde(default)]
    pub ipc_mode: Option<String>,
    /// The values of the containers' secrets, resolved by the server for this agent only
    /// (absent when the task takes none, or no longer needs them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<crate::secrets::ResolvedSecrets>,
    /// An awsvpc task's interface and the ingress its security groups allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::vpc::AgentNetwork>,
    /// The current temporary credentials of the task's `taskRoleArn`, for this agent only
    /// (absent when the task has no role, or has stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<TaskCredentials>,
}

/// A task role's temporary credentials as the agent serves them at
/// `/v2/credentials/<credentials_id>` (ECS's container credentials shape).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskCredentials {
    /// The task's credentials id: random, the same for the task's whole life (its containers
    /// are given the URI once), while the keys behind it are refreshed.
    pub credentials_id: String,
    /// `ASIA...`.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token (`x-amz-security-token`).
    pub token: String,
    /// When the keys expire, ISO 8601 UTC.
    pub expiration: String,
    /// The role's ARN.
    pub role_arn: String,
}

impl std::fmt::Debug for TaskCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskCredentials")
            .field("credentials_id", &"<redacted>")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

/// The answer to a poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredSet {
    /// Changes whenever the set changes; the agent sends it back as `since`.
    pub fingerprint: String,
    /// Every task assigned to the instance.
    pub tasks: Vec<AgentTask>,
    /// False when the server no longer knows the instance (deregistered): re-register.
    #[serde(default = "yes")]
    pub registered: bool,
}

fn yes() -> bool {
    true
}

/// One container's state, as the agent saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerReport {
    /// The container's name in the task definition.
    pub name: String,
    /// The container's status.
    pub last_status: TaskStatus,
    /// The exit code, once the container has exited.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Why the container stopped or could not start (e.g. `CannotPullContainerError: ...`).
    #[serde(default)]
    pub reason: Option<String>,
    /// The host ports its container ports are published on.
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
    /// The result of its health check (UNKNOWN without one).
    #[serde(default)]
    pub health_status: HealthStatus,
    /// The container's id in the agent's runtime (the Docker container id).
    #[serde(default)]
    pub runtime_id: Option<String>,
    /// How many times its restart policy restarted it in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u32>,
}

/// One task's state, as the agent saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskReport {
    /// The task id.
    pub task_id: String,
    /// The task's status, derived from its containers'.
    pub last_status: TaskStatus,
    /// Each container's state.
    #[serde(default)]
    pub containers: Vec<ContainerReport>,
    /// The task's health, from its essential containers' health checks.
    #[serde(default)]
    pub health_status: HealthStatus,
    /// When the task became RUNNING, in epoch seconds.
    #[serde(default)]
    pub started_at: Option<f64>,
    /// When the task stopped, in epoch seconds.
    #[serde(default)]
    pub stopped_at: Option<f64>,
    /// When the image pulls began, in epoch seconds.
    #[serde(default)]
    pub pull_started_at: Option<f64>,
    /// When the image pulls ended, in epoch seconds.
    #[serde(default)]
    pub pull_stopped_at: Option<f64>,
    /// Set by the agent when it stops a task on its own (exit, failure to start).
    #[serde(default)]
    pub stop_code: Option<StopCode>,
    /// Why the task stopped (ECS's `stoppedReason`).
    #[serde(default)]
    pub stopped_reason: Option<String>,
    /// The task's latest resource use, for the metrics store (in the memory of the replica
    /// that receives it, never in the task's record).
    #[serde(default)]
    pub stats: Option<TaskStats>,
    /// Nothing but `stats` changed since the previous report of this task: the server has
    /// nothing to write, and need not even read the task. An agent that is not sure (its first
    /// report of a task, a report it may not have delivered) leaves it false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stats_only: bool,
}

/// A batch of task reports from one instance (`POST /agent/v1/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// The instance's cluster.
    pub cluster: String,
    /// The container instance id.
    pub instance_id: String,
    /// The latest report of each task whose state changed.
    pub tasks: Vec<TaskReport>,
}
