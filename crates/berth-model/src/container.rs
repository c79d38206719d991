//! The containers of a task definition: ECS's `ContainerDefinition` and the members of it
//! that berth reads or stores typed (ports, health check, dependencies, environment, log
//! configuration and its secrets). Apart from `taskdef.rs` because the container is the unit
//! the agent runs and the task definition's rules check one by one; the task definition
//! re-exports these types, so `taskdef::ContainerDefinition` and friends keep their paths.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::wire::wire_enum;
use crate::{MountPoint, VolumeFrom};

/// A `name`/`value` pair (a container's `environment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValuePair {
    /// The variable's name.
    #[serde(default)]
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

wire_enum! {
    /// ECS's `TransportProtocol` of a port: the one protocol type of berth (task definitions,
    /// network bindings, the scheduler's ports, the agents' drivers).
    #[derive(Default)]
    pub enum TransportProtocol ("protocol") {
        /// ECS's default.
        #[default]
        Tcp = "tcp",
        /// `udp`; a port is TCP unless it says so.
        Udp = "udp",
    }
}

/// A container's `portMappings` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// The port inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i64>,
    /// The host port (0 or absent: one picked when the task is placed; with `awsvpc` or `host`
    /// networking, the container port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i64>,
    /// Always set once registered (ECS's default is tcp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<TransportProtocol>,
    /// The mapping's name (Service Connect), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The members berth does not interpret (`appProtocol`, `containerPortRange`: a range only
    /// excuses a missing `containerPort`), verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A container's Docker health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// The command Docker runs (`["CMD-SHELL", "curl -f http://localhost/"]`).
    pub command: Vec<String>,
    /// Seconds between checks (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Seconds a check may take (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Consecutive failures before the container is unhealthy (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    /// Seconds after start during which failures do not count (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
}

impl PortMapping {
    /// The mapping's protocol (tcp unless it says otherwise).
    pub fn protocol(&self) -> TransportProtocol {
        self.protocol.unwrap_or_default()
    }
}

wire_enum! {
    /// ECS's `ContainerCondition`: what a `dependsOn` entry waits for.
    pub enum ContainerCondition ("dependsOn condition") {
        /// The dependency has started.
        Start = "START",
        /// The dependency has exited.
        Complete = "COMPLETE",
        /// The dependency has exited with code 0.
        Success = "SUCCESS",
        /// The dependency's health check passes.
        Healthy = "HEALTHY",
    }
}

/// One `dependsOn` entry: a container that must reach a condition before this one starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDependency {
    /// The container depended on.
    pub container_name: String,
    /// What it must reach.
    pub condition: ContainerCondition,
}

/// A container's `logConfiguration`. Fields in alphabetical order of their wire names (the
/// member was stored as a raw JSON object before it was typed; see `placement`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    /// Text, not an enum: ECS lists eight drivers, but berth never refused others (Docker's
    /// `local`, plugins), so stored definitions may name any, and berth does not act on it.
    pub log_driver: String,
    /// Options of the log driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
    /// Options taken from secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_options: Option<Vec<Secret>>,
}

/// ECS's `Secret`: an option's value taken from Secrets Manager or SSM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// The option's name.
    pub name: String,
    /// The ARN of the Secrets Manager secret or SSM parameter holding its value.
    pub value_from: String,
}

/// One container of a task definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    /// Its name, unique in the task definition.
    #[serde(default)]
    pub name: String,
    /// The image to run.
    #[serde(default)]
    pub image: String,
    /// Cpu units reserved (0: none).
    #[serde(default)]
    pub cpu: i64,
    /// Hard memory limit, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Soft memory reservation, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    /// Published ports.
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// Whether the task stops when this container exits (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    /// The entry point instead of the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<Vec<String>>,
    /// The command instead of the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Environment variables.
    #[serde(default)]
    pub environment: Vec<KeyValuePair>,
    /// Where volumes are mounted.
    #[serde(default)]
    pub mount_points: Vec<MountPoint>,
    /// Containers whose volumes it mounts.
    #[serde(default)]
    pub volumes_from: Vec<VolumeFrom>,
    /// Containers that must reach a condition before it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<ContainerDependency>>,
    /// Its Docker health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Seconds its dependencies may take to reach their conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timeout: Option<i64>,
    /// Seconds between the stop signal and a kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// Labels of its Docker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_labels: Option<BTreeMap<String, String>>,
    /// Where its logs go (kept as given; berth does not act on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    /// Every other ContainerDefinition field, kept as registered.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ContainerDefinition {
    /// Whether the task stops when this container exits (ECS: true unless said otherwise).
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }
}
