//! Task definitions: the versioned recipe for a task (containers, cpu, memory, ports, health).
//!
//! A client's RegisterTaskDefinition body is decoded by [`TaskDefinition::from_request`];
//! [`TaskDefinition::validate_and_normalize`] applies ECS's rules and fills the defaults ECS
//! shows on describe (essential, protocol, health check timings, cpu in units). The members
//! berth reads (ports, dependencies, health checks) and those it stores and describes (volumes,
//! mount points, log configuration, placement constraints) are typed; the many others of ECS's
//! model that berth does not interpret (`linuxParameters`, `ulimits`, `runtimePlatform`, ...)
//! are kept verbatim in `extra`, so describe returns what was registered without berth
//! shadowing a model it does not act on.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::container::{
    ContainerCondition, ContainerDefinition, ContainerDependency, HealthCheck, KeyValuePair,
    LogConfiguration, PortMapping, Secret, TransportProtocol,
};
use crate::wire;
use crate::{
    validate_family, validate_name, validate_tags, ApiError, Arn, Attribute, ErrorCode,
    ResourceKind, Tag, TaskDefinitionPlacementConstraint, Volume,
};

/// ECS allows at most 10 containers in a task definition.
pub const MAX_CONTAINERS: usize = 10;
/// ECS caps a task definition's JSON at 64 KiB.
pub const MAX_TASKDEF_BYTES: usize = 64 * 1024;

/// A task definition revision's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskDefinitionStatus {
    /// Can be used to launch tasks.
    #[default]
    Active,
    /// Deregistered: running tasks keep it, new ones cannot use it.
    Inactive,
    /// DeleteTaskDefinitions was asked; it is deleted once no task uses it.
    DeleteInProgress,
}

impl TaskDefinitionStatus {
    /// Parses ListTaskDefinitions' `status` filter.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "ACTIVE" => Self::Active,
            "INACTIVE" => Self::Inactive,
            "DELETE_IN_PROGRESS" => Self::DeleteInProgress,
            _ => {
                return Err(ApiError::invalid(format!(
                    "Invalid status {s:?}; valid: ACTIVE, INACTIVE, DELETE_IN_PROGRESS"
                )))
            }
        })
    }
}

/// A task definition as stored and (minus `tags`) as described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    /// The family: the name of every revision of this definition.
    #[serde(default)]
    pub family: String,
    /// The revision number, from 1, never reused.
    #[serde(default)]
    pub revision: u32,
    /// ACTIVE, INACTIVE or DELETE_IN_PROGRESS.
    #[serde(default)]
    pub status: TaskDefinitionStatus,
    /// The containers (1 to [`MAX_CONTAINERS`]).
    #[serde(default)]
    pub container_definitions: Vec<ContainerDefinition>,
    /// The IAM role the containers would assume, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// The IAM role the agent would use to pull and log, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// `bridge` (the default), `host`, `awsvpc` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Volumes its containers can mount.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Constraints on where its tasks are placed.
    #[serde(default)]
    pub placement_constraints: Vec<TaskDefinitionPlacementConstraint>,
    /// The launch types it was registered for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_compatibilities: Option<Vec<String>>,
    /// The launch types it is compatible with: `EC2`, and `FARGATE` when its settings allow it.
    #[serde(default)]
    pub compatibilities: Vec<String>,
    /// Attributes an instance needs to run it, derived at registration from the members it
    /// uses (see `support::required_attributes`).
    #[serde(default)]
    pub requires_attributes: Vec<Attribute>,
    /// Task-level cpu in units, as a string (ECS's wire type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Task-level memory in MiB, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// The containers' PID namespace (`host` or `task`), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<String>,
    /// The containers' IPC namespace (`host`, `task` or `none`), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<String>,
    /// When the revision was registered, in epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<f64>,
    /// When it was deregistered, in epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistered_at: Option<f64>,
    /// When its deletion was asked, in epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_requested_at: Option<f64>,
    /// The ARN of the identity that registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_by: Option<String>,
    /// Tags travel beside the task definition on the wire, not inside it.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Every other TaskDefinition field (proxyConfiguration, runtimePlatform, ...), verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// How a client names a task definition: `family`, `family:revision`, or a full ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefRef {
    /// The family.
    pub family: String,
    /// `None` means "the latest ACTIVE revision".
    pub revision: Option<u32>,
}

impl TaskDefRef {
    /// Parses `family`, `family:revision` or a task definition ARN.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let body = if Arn::looks_like_arn(s) {
            match Arn::parse(s) {
                Some(arn) if arn.kind == ResourceKind::TaskDefinition => arn.resource,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "Invalid task definition ARN: {s}"
                    )))
                }
            }
        } else {
            s.to_owned()
        };
        let (family, revision) = match body.split_once(':') {
            Some((f, r)) => {
                let rev: u32 = r.parse().ok().filter(|r| *r > 0).ok_or_else(|| {
                    ApiError::invalid(format!("Invalid revision number. Number: {r}"))
                })?;
                (f.to_owned(), Some(rev))
            }
            None => (body, None),
        };
        validate_family(&family)?;
        Ok(Self { family, revision })
    }
}

/// Parses a task-level cpu value: units ("1024") or vCPUs ("1 vCPU", "0.25 vcpu").
pub fn parse_task_cpu(s: &str) -> Result<u32, ApiError> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let units = if let Some(v) = lower.strip_suffix("vcpu") {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| (v * 1024.0).round() as u64)
    } else {
        t.parse::<u64>().ok()
    };
    match units {
        Some(u) if (128..=196_608).contains(&u) => Ok(u as u32),
        _ => Err(ApiError::client(format!(
            "Invalid 'cpu' setting for task. Value {s:?} must be between 128 and 196608 CPU units (or 0.125 to 192 vCPU)."
        ))),
    }
}

/// Parses a task-level memory value: MiB ("2048") or GB ("2 GB", "0.5GB").
pub fn parse_task_memory(s: &str) -> Result<u32, ApiError> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let mib = if let Some(v) = lower.strip_suffix("gb") {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| (v * 1024.0).round() as u64)
    } else {
        t.parse::<u64>().ok()
    };
    match mib {
        Some(m) if (6..=1_048_576).contains(&m) => Ok(m as u32),
        _ => Err(ApiError::client(format!(
            "Invalid 'memory' setting for task. Value {s:?} must be a number of MiB (at least 6) or GB (e.g. '2 GB')."
        ))),
    }
}

/// The cpu/memory pairs Fargate accepts (see `fargate`).
fn fargate_memory_ok(cpu: u32, mem: u32) -> bool {
    crate::fargate::size_ok(cpu, mem)
}

/// RegisterTaskDefinition reports a bad family or container name as a ClientException
/// ("Family contains invalid characters."), where other actions say InvalidParameterException.
fn registration_name(what: &str, name: &str) -> Result<(), ApiError> {
    validate_name(what, name).map_err(|e| ApiError::client(e.message))
}

fn in_range(what: &str, v: Option<i64>, lo: i64, hi: i64) -> Result<(), ApiError> {
    match v {
        Some(v) if !(lo..=hi).contains(&v) => Err(ApiError::client(format!(
            "{what} must be between {lo} and {hi}; got {v}."
        ))),
        _ => Ok(()),
    }
}

fn one_of(what: &str, v: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match v {
        Some(v) if !allowed.contains(&v) => Err(ApiError::invalid(format!(
            "Invalid {what} {v:?}; valid: {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

impl TaskDefinition {
    /// Decodes a RegisterTaskDefinition body. Its enum members are checked first, so a value
    /// outside ECS's set is the `InvalidParameterException` ECS answers, naming the member
    /// (see the `wire` module); a body of the wrong shape is a `SerializationException`, as for
    /// every action.
    pub fn from_request(body: Value) -> Result<Self, ApiError> {
        for c in wire::each(&body, "containerDefinitions") {
            for p in wire::each(c, "portMappings") {
                wire::check::<TransportProtocol>(p.get("protocol"))?;
            }
            for d in wire::each(c, "dependsOn") {
                wire::check::<ContainerCondition>(d.get("condition"))?;
            }
        }
        for v in wire::each(&body, "volumes") {
            Volume::check_request(v)?;
        }
        for p in wire::each(&body, "placementConstraints") {
            TaskDefinitionPlacementConstraint::check_request(p)?;
        }
        serde_json::from_value(body).map_err(|e| {
            ApiError::new(
                ErrorCode::SerializationException,
                format!("Could not parse request body: {e}"),
            )
        })
    }

    /// Applies ECS's registration rules and fills the defaults ECS shows. Revision, status,
    /// timestamps and `registeredBy` are the caller's to set.
    pub fn validate_and_normalize(&mut self) -> Result<(), ApiError> {
        registration_name("Family", &self.family)?;
        validate_tags(&self.tags)?;
        let fargate = self.validate_modes()?;
        let (task_cpu, task_mem) = self.normalize_task_size(fargate)?;

        let mut rules = ContainerRules::new(
            &self.container_definitions,
            self.network_mode.as_deref(),
            task_mem,
        )?;
        let (mut cpu_sum, mut mem_sum) = (0i64, 0i64);
        for c in self.container_definitions.iter_mut() {
            rules.apply(c)?;
            crate::secrets::validate_container_secrets(c)?;
            if let Some(log) = &c.log_configuration {
                crate::logs::AwsLogsOptions::from_config(log)?;
            }
            cpu_sum += c.cpu;
            mem_sum += c.memory.or(c.memory_reservation).unwrap_or(0);
        }
        check_dependency_cycles(&self.container_definitions)?;
        if !self
            .container_definitions
            .iter()
            .any(ContainerDefinition::is_essential)
        {
            return Err(ApiError::client(
                "Invalid setting for container: at least one container must be marked essential.",
            ));
        }
        if let Some(tc) = task_cpu {
            if cpu_sum > i64::from(tc) {
                return Err(ApiError::client(format!(
                    "Invalid 'cpu' setting: the containers' cpu ({cpu_sum}) exceeds the task's ({tc})."
                )));
            }
        }
        if let Some(tm) = task_mem {
            if mem_sum > i64::from(tm) {
                return Err(ApiError::client(format!(
                    "Invalid 'memory' setting: the containers' memory ({mem_sum} MiB) exceeds the task's ({tm} MiB)."
                )));
            }
        }

        let mut compat = vec!["EC2".to_owned()];
        if fargate
            || (self.network_mode.as_deref() == Some("awsvpc")
                && task_cpu
                    .zip(task_mem)
                    .is_some_and(|(c, m)| fargate_memory_ok(c, m))
                && crate::fargate::check_fargate_members(self).is_ok())
        {
            compat.push("FARGATE".to_owned());
        }
        self.compatibilities = compat;
        crate::support::check(self)
    }

    /// Checks the network, pid and ipc modes and the required compatibilities; returns whether
    /// the task requires Fargate.
    fn validate_modes(&self) -> Result<bool, ApiError> {
        one_of(
            "networkMode",
            self.network_mode.as_deref(),
            &["bridge", "host", "awsvpc", "none"],
        )?;
        one_of("pidMode", self.pid_mode.as_deref(), &["host", "task"])?;
        one_of(
            "ipcMode",
            self.ipc_mode.as_deref(),
            &["host", "task", "none"],
        )?;
        let requires = self.requires_compatibilities.clone().unwrap_or_default();
        for c in &requires {
            one_of(
                "requiresCompatibilities value",
                Some(c),
                &["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"],
            )?;
        }
        Ok(requires.iter().any(|c| c == "FARGATE"))
    }

    /// Parses the task-level cpu and memory into units and MiB (and writes them back so), and
    /// checks them against Fargate's combinations when it is required.
    fn normalize_task_size(
        &mut self,
        fargate: bool,
    ) -> Result<(Option<u32>, Option<u32>), ApiError> {
        let task_cpu = self.cpu.as_deref().map(parse_task_cpu).transpose()?;
        let task_mem = self.memory.as_deref().map(parse_task_memory).transpose()?;
        self.cpu = task_cpu.map(|c| c.to_string());
        self.memory = task_mem.map(|m| m.to_string());
        if fargate {
            if self.network_mode.as_deref() != Some("awsvpc") {
                return Err(ApiError::client(
                    "Fargate only supports network mode 'awsvpc'.",
                ));
            }
            crate::fargate::check_size(task_cpu, task_mem)?;
            crate::fargate::check_fargate_members(self)?;
        }
        Ok((task_cpu, task_mem))
    }

    /// Task-level memory in MiB, or the containers' sum when the task sets none.
    pub fn memory_mib(&self) -> u64 {
        self.memory
            .as_deref()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| {
                self.container_definitions
                    .iter()
                    .map(|c| c.memory.or(c.memory_reservation).unwrap_or(0).max(0) as u64)
                    .sum()
            })
    }

    /// Task-level cpu units, or the containers' sum when the task sets none.
    pub fn cpu_units(&self) -> u64 {
        self.cpu
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| {
                self.container_definitions
                    .iter()
                    .map(|c| c.cpu.max(0) as u64)
                    .sum()
            })
    }

    /// The ECS `TaskDefinition` wire shape (tags are answered beside it).
    pub fn to_wire(&self, arn: &str) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.remove("tags");
            m.insert("taskDefinitionArn".into(), Value::String(arn.to_owned()));
        }
        v
    }
}

/// What each container of one task definition is checked against: its siblings, the task's
/// network mode and memory, and the host ports the containers before it took.
struct ContainerRules {
    names: Vec<String>,
    with_health: HashSet<String>,
    /// awsvpc and host networking: a host port is the container port.
    fixed_host_ports: bool,
    task_mem: Option<u32>,
    host_ports: HashSet<(i64, TransportProtocol)>,
}

impl ContainerRules {
    /// Checks the container list as a whole (not empty, not too long, unique valid names).
    fn new(
        containers: &[ContainerDefinition],
        network_mode: Option<&str>,
        task_mem: Option<u32>,
    ) -> Result<Self, ApiError> {
        if containers.is_empty() {
            return Err(ApiError::client("Container list cannot be empty."));
        }
        if containers.len() > MAX_CONTAINERS {
            return Err(ApiError::client(format!(
                "Too many containers: a task definition can have at most {MAX_CONTAINERS}."
            )));
        }
        let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        let mut seen = HashSet::new();
        for n in &names {
            registration_name("Container name", n)?;
            if !seen.insert(n.as_str()) {
                return Err(ApiError::client(format!("Duplicate container name: {n}")));
            }
        }
        let with_health = containers
            .iter()
            .filter(|c| c.health_check.is_some())
            .map(|c| c.name.clone())
            .collect();
        Ok(Self {
            names,
            with_health,
            fixed_host_ports: matches!(network_mode, Some("awsvpc" | "host")),
            task_mem,
            host_ports: HashSet::new(),
        })
    }

    /// Checks one container and fills its defaults.
    fn apply(&mut self, c: &mut ContainerDefinition) -> Result<(), ApiError> {
        let n = c.name.clone();
        self.check_image_and_size(c)?;
        for p in c.port_mappings.iter_mut() {
            self.normalize_port(&n, p)?;
        }
        if let Some(deps) = &c.depends_on {
            self.check_depends_on(&n, deps)?;
        }
        if let Some(h) = c.health_check.as_mut() {
            normalize_health_check(&n, h)?;
        }
        in_range(
            &format!("Container '{n}' stopTimeout"),
            c.stop_timeout,
            2,
            120,
        )?;
        in_range(
            &format!("Container '{n}' startTimeout"),
            c.start_timeout,
            2,
            600,
        )?;
        if c.environment.iter().any(|e| e.name.is_empty()) {
            return Err(ApiError::client(format!(
                "Container '{n}': environment variables need a name."
            )));
        }
        c.essential.get_or_insert(true);
        Ok(())
    }

    fn check_image_and_size(&self, c: &ContainerDefinition) -> Result<(), ApiError> {
        let n = &c.name;
        if c.image.trim().is_empty() {
            return Err(ApiError::client(format!(
                "Container.image should not be null or empty (container {n})."
            )));
        }
        if c.image.len() > 255 {
            return Err(ApiError::client(format!(
                "Container.image is longer than 255 characters (container {n})."
            )));
        }
        // ECS's Integer is 32-bit; bounding it also keeps the task's sum from overflowing.
        if !(0..=i64::from(i32::MAX)).contains(&c.cpu) {
            return Err(ApiError::client(format!(
                "Invalid 'cpu' setting for container '{n}'."
            )));
        }
        in_range(&format!("Container '{n}' memory"), c.memory, 6, 1_048_576)?;
        in_range(
            &format!("Container '{n}' memoryReservation"),
            c.memory_reservation,
            6,
            1_048_576,
        )?;
        if let (Some(m), Some(r)) = (c.memory, c.memory_reservation) {
            if r > m {
                return Err(ApiError::client(format!(
                    "Invalid setting for container '{n}'. 'memoryReservation' must be less than or equal to 'memory'."
                )));
            }
        }
        if self.task_mem.is_none() && c.memory.is_none() && c.memory_reservation.is_none() {
            return Err(ApiError::client(format!(
                "Invalid setting for container '{n}'. At least one of 'memory' or 'memoryReservation' must be specified."
            )));
        }
        Ok(())
    }

    /// Checks a port mapping, sets its protocol and host port as ECS shows them, and claims
    /// its host port.
    fn normalize_port(&mut self, n: &str, p: &mut PortMapping) -> Result<(), ApiError> {
        let has_range = p.extra.contains_key("containerPortRange");
        match p.container_port {
            None if has_range => {}
            None => {
                return Err(ApiError::client(format!(
                    "Container '{n}': portMappings need a containerPort."
                )))
            }
            Some(cp) => in_range(
                &format!("Container '{n}' containerPort"),
                Some(cp),
                1,
                65535,
            )?,
        }
        in_range(&format!("Container '{n}' hostPort"), p.host_port, 0, 65535)?;
        let proto = *p.protocol.get_or_insert_with(TransportProtocol::default);
        if self.fixed_host_ports {
            match (p.container_port, p.host_port) {
                (Some(cp), Some(hp)) if hp != cp => {
                    return Err(ApiError::client(format!(
                        "Container '{n}': when networkMode=awsvpc or host, host ports must either be undefined or equal to the container port (container port {cp}, host port {hp})."
                    )))
                }
                (Some(cp), None) => p.host_port = Some(cp),
                _ => {}
            }
        } else if p.container_port.is_some() && p.host_port.is_none() {
            p.host_port = Some(0);
        }
        if let Some(hp) = p.host_port.filter(|hp| *hp != 0) {
            if !self.host_ports.insert((hp, proto)) {
                return Err(ApiError::client(format!(
                    "Host port {hp}/{proto} is used by more than one port mapping."
                )));
            }
        }
        Ok(())
    }

    fn check_depends_on(&self, n: &str, deps: &[ContainerDependency]) -> Result<(), ApiError> {
        for d in deps {
            if d.container_name == n || !self.names.contains(&d.container_name) {
                return Err(ApiError::client(format!(
                    "Container '{n}' depends on unknown container '{}'.",
                    d.container_name
                )));
            }
            if d.condition == ContainerCondition::Healthy
                && !self.with_health.contains(&d.container_name)
            {
                return Err(ApiError::client(format!(
                    "Container '{n}' waits for '{}' to be HEALTHY, but it has no healthCheck.",
                    d.container_name
                )));
            }
        }
        Ok(())
    }
}

/// Refuses a `dependsOn` cycle: its containers would each wait for another and the task
/// would sit in PENDING forever (ECS refuses it at registration too).
fn check_dependency_cycles(containers: &[ContainerDefinition]) -> Result<(), ApiError> {
    let index: HashMap<&str, usize> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = containers
        .iter()
        .map(|c| {
            c.depends_on
                .iter()
                .flatten()
                .filter_map(|d| index.get(d.container_name.as_str()).copied())
                .collect()
        })
        .collect();
    // 0 = unvisited, 1 = on the current path, 2 = done. Iterative, so a long chain of
    // containers cannot overflow the stack (there are at most a handful anyway).
    let mut state = vec![0u8; containers.len()];
    for start in 0..containers.len() {
        if state[start] != 0 {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            if let Some(&dep) = edges[node].get(*next) {
                *next += 1;
                match state[dep] {
                    0 => {
                        state[dep] = 1;
                        path.push((dep, 0));
                    }
                    1 => {
                        let mut cycle: Vec<&str> = path
                            .iter()
                            .skip_while(|(n, _)| *n != dep)
                            .map(|(n, _)| containers[*n].name.as_str())
                            .collect();
                        cycle.push(containers[dep].name.as_str());
                        return Err(ApiError::client(format!(
                            "Container dependencies form a cycle: {}. A container cannot wait, \
                             directly or through others, for itself.",
                            cycle.join(" -> ")
                        )));
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                path.pop();
            }
        }
    }
    Ok(())
}

/// Checks a health check's timings and fills ECS's defaults.
fn normalize_health_check(n: &str, h: &mut HealthCheck) -> Result<(), ApiError> {
    if h.command.is_empty() {
        return Err(ApiError::client(format!(
            "Container '{n}': healthCheck.command must not be empty."
        )));
    }
    in_range("healthCheck.interval", h.interval, 5, 300)?;
    in_range("healthCheck.timeout", h.timeout, 2, 120)?;
    in_range("healthCheck.retries", h.retries, 1, 10)?;
    in_range("healthCheck.startPeriod", h.start_period, 0, 300)?;
    h.interval.get_or_insert(30);
    h.timeout.get_or_insert(5);
    h.retries.get_or_insert(3);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MountPoint;
    use serde_json::json;

    fn td(v: Value) -> Result<TaskDefinition, ApiError> {
        let mut t: TaskDefinition = serde_json::from_value(v).expect("shape");
        t.validate_and_normalize()?;
        Ok(t)
    }

    fn web() -> Value {
        json!({"family": "web", "containerDefinitions": [
            {"name": "app", "image": "busybox", "memory": 64,
             "portMappings": [{"containerPort": 80}],
             "healthCheck": {"command": ["CMD-SHELL", "true"]},
             "linuxParameters": {"initProcessEnabled": true}}]})
    }

    #[test]
    fn dependency_cycles_are_named_and_chains_are_fine() {
        let td = |deps: serde_json::Value| {
            let mut t: TaskDefinition =
                serde_json::from_value(json!({"family": "f", "containerDefinitions": deps}))
                    .unwrap();
            t.validate_and_normalize()
        };
        let e = td(json!([
            {"name": "web", "image": "i", "memory": 8, "dependsOn": [{"containerName": "db", "condition": "START"}]},
            {"name": "db", "image": "i", "memory": 8, "dependsOn": [{"containerName": "web", "condition": "START"}]}]))
        .unwrap_err();
        assert!(e.message.contains("web -> db -> web"), "{}", e.message);
        // A diamond is not a cycle.
        td(json!([
            {"name": "a", "image": "i", "memory": 8, "dependsOn": [{"containerName": "b", "condition": "START"}, {"containerName": "c", "condition": "START"}]},
            {"name": "b", "image": "i", "memory": 8, "essential": false, "dependsOn": [{"containerName": "d", "condition": "START"}]},
            {"name": "c", "image": "i", "memory": 8, "essential": false, "dependsOn": [{"containerName": "d", "condition": "START"}]},
            {"name": "d", "image": "i", "memory": 8, "essential": false}]))
        .unwrap();
    }

    #[test]
    fn fills_ecs_defaults_and_keeps_unknown_fields() {
        let t = td(web()).unwrap();
        let c = &t.container_definitions[0];
        assert_eq!(c.essential, Some(true));
        assert_eq!(c.port_mappings[0].protocol, Some(TransportProtocol::Tcp));
        assert_eq!(c.port_mappings[0].host_port, Some(0));
        let h = c.health_check.as_ref().unwrap();
        assert_eq!(
            (h.interval, h.timeout, h.retries),
            (Some(30), Some(5), Some(3))
        );
        let wire = t.to_wire("arn:x");
        assert_eq!(
            wire["containerDefinitions"][0]["linuxParameters"]["initProcessEnabled"],
            true
        );
        assert_eq!(wire["taskDefinitionArn"], "arn:x");
        assert_eq!(wire["compatibilities"], json!(["EC2"]));
        assert!(wire.get("tags").is_none());
    }

    #[test]
    fn cpu_and_memory_strings() {
        assert_eq!(parse_task_cpu("1 vCPU").unwrap(), 1024);
        assert_eq!(parse_task_cpu("0.25 vcpu").unwrap(), 256);
        assert_eq!(parse_task_cpu("512").unwrap(), 512);
        assert!(parse_task_cpu("64").is_err());
        assert!(parse_task_cpu("lots").is_err());
        assert_eq!(parse_task_memory("2 GB").unwrap(), 2048);
        assert_eq!(parse_task_memory("0.5GB").unwrap(), 512);
        assert!(parse_task_memory("-1").is_err());
    }

    #[test]
    fn fargate_rules() {
        let ok = json!({"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": "256", "memory": "512", "containerDefinitions": [{"name": "a", "image": "i",
            "portMappings": [{"containerPort": 8080}]}]});
        let t = td(ok.clone()).unwrap();
        assert_eq!(t.compatibilities, vec!["EC2", "FARGATE"]);
        assert_eq!(
            t.container_definitions[0].port_mappings[0].host_port,
            Some(8080)
        );
        let mut bad = ok.clone();
        bad["memory"] = json!("4096");
        assert!(td(bad).is_err());
        let mut bad = ok;
        bad["networkMode"] = json!("bridge");
        assert!(td(bad).is_err());
    }

    #[test]
    fn rejects_what_ecs_rejects() {
        let cases: Vec<(&str, Value)> = vec![
            (
                "no containers",
                json!({"family": "a", "containerDefinitions": []}),
            ),
            (
                "bad family",
                json!({"family": "a b", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8}]}),
            ),
            (
                "no image",
                json!({"family": "a", "containerDefinitions": [{"name": "c", "memory": 8}]}),
            ),
            (
                "no memory",
                json!({"family": "a", "containerDefinitions": [{"name": "c", "image": "i"}]}),
            ),
            (
                "dup name",
                json!({"family": "a", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8}, {"name": "c", "image": "i", "memory": 8}]}),
            ),
            (
                "reservation > memory",
                json!({"family": "a", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8, "memoryReservation": 16}]}),
            ),
            (
                "port range",
                json!({"family": "a", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8, "portMappings": [{"containerPort": 70000}]}]}),
            ),
            (
                "host port dup",
                json!({"family": "a", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8, "portMappings": [{"containerPort": 1, "hostPort": 80}, {"containerPort": 2, "hostPort": 80}]}]}),
            ),
            (
                "awsvpc host port",
                json!({"family": "a", "networkMode": "awsvpc", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8, "portMappings": [{"containerPort": 1, "hostPort": 80}]}]}),
            ),
            (
                "no essential",
                json!({"family": "a", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8, "essential": false}]}),
            ),
            (
                "bad dep",
                json!({"family": "a", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8, "dependsOn": [{"containerName": "x", "condition": "START"}]}]}),
            ),
            (
                "dependency cycle",
                json!({"family": "a", "containerDefinitions": [
                    {"name": "a", "image": "i", "memory": 8, "dependsOn": [{"containerName": "b", "condition": "START"}]},
                    {"name": "b", "image": "i", "memory": 8, "dependsOn": [{"containerName": "c", "condition": "START"}]},
                    {"name": "c", "image": "i", "memory": 8, "dependsOn": [{"containerName": "a", "condition": "START"}]}]}),
            ),
            (
                "healthy dep without check",
                json!({"family": "a", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8}, {"name": "d", "image": "i", "memory": 8, "dependsOn": [{"containerName": "c", "condition": "HEALTHY"}]}]}),
            ),
            (
                "health interval",
                json!({"family": "a", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8, "healthCheck": {"command": ["CMD", "x"], "interval": 1}}]}),
            ),
            (
                "bad network mode",
                json!({"family": "a", "networkMode": "nat", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8}]}),
            ),
            (
                "containers exceed task memory",
                json!({"family": "a", "memory": "64", "containerDefinitions": [{"name": "c", "image": "i", "memory": 128}]}),
            ),
            (
                "aws tag",
                json!({"family": "a", "tags": [{"key": "aws:x", "value": "y"}], "containerDefinitions": [{"name": "c", "image": "i", "memory": 8}]}),
            ),
        ];
        for (what, v) in cases {
            assert!(td(v).is_err(), "{what} should be rejected");
        }
        for bad in [
            json!({"family": "a b", "containerDefinitions": [{"name": "c", "image": "i", "memory": 8}]}),
            json!({"family": "a", "containerDefinitions": [{"name": "c d", "image": "i", "memory": 8}]}),
        ] {
            let e = td(bad).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::ClientException, "{}", e.message);
        }
        let huge = json!({"family": "a", "containerDefinitions": [
            {"name": "c", "image": "i", "memory": 8, "cpu": i64::MAX},
            {"name": "d", "image": "i", "memory": 8, "cpu": i64::MAX}]});
        assert!(
            td(huge).is_err(),
            "cpu beyond a 32-bit integer is refused, not summed"
        );
        let eleven: Vec<Value> = (0..11)
            .map(|i| json!({"name": format!("c{i}"), "image": "i", "memory": 8}))
            .collect();
        assert!(td(json!({"family": "a", "containerDefinitions": eleven})).is_err());
    }

    /// A task definition as berth stored it while volumes, mount points, log configuration and
    /// placement constraints were raw JSON (keys sorted by serde_json) and protocols and
    /// conditions were text, and what DescribeTaskDefinition answered for it.
    const STORED: &str = include_str!("../testdata/taskdef-stored.json");
    const WIRE: &str = include_str!("../testdata/taskdef-wire.json");

    #[test]
    fn records_stored_untyped_decode_and_re_encode_byte_identically() {
        let t: TaskDefinition = serde_json::from_str(STORED).unwrap();
        let app = &t.container_definitions[0];
        assert_eq!(app.port_mappings[1].protocol(), TransportProtocol::Udp);
        assert_eq!(
            app.depends_on.as_ref().unwrap()[0].condition,
            ContainerCondition::Healthy
        );
        assert_eq!(
            app.mount_points[0],
            MountPoint {
                container_path: Some("/var/lib/app".into()),
                read_only: Some(false),
                source_volume: Some("data".into()),
            }
        );
        assert_eq!(
            app.volumes_from[0].source_container.as_deref(),
            Some("sidecar")
        );
        let log = app.log_configuration.as_ref().unwrap();
        assert_eq!(log.log_driver, "json-file");
        assert_eq!(log.options.as_ref().unwrap()["max-size"], "10m");
        assert_eq!(
            t.volumes[1]
                .docker_volume_configuration
                .as_ref()
                .and_then(|d| d.scope),
            Some(crate::Scope::Task)
        );
        assert_eq!(
            t.volumes[0].host.as_ref().unwrap().source_path.as_deref(),
            Some("/srv/data")
        );
        assert_eq!(
            t.placement_constraints[0].kind,
            Some(crate::TaskDefinitionPlacementConstraintType::MemberOf)
        );

        assert_eq!(serde_json::to_string(&t).unwrap(), STORED.trim_end());
        let wire = t.to_wire("arn:aws:ecs:us-east-1:000000000000:task-definition/web:3");
        assert_eq!(serde_json::to_string(&wire).unwrap(), WIRE.trim_end());
    }

    #[test]
    fn requests_with_bad_enum_values_are_refused_naming_the_member() {
        let with = |at: &str, value: Value| {
            let mut v: Value = serde_json::from_str(STORED).unwrap();
            *v.pointer_mut(at).unwrap() = value;
            TaskDefinition::from_request(v)
        };
        assert!(TaskDefinition::from_request(serde_json::from_str(STORED).unwrap()).is_ok());
        let cases = [
            (
                "/containerDefinitions/0/portMappings/1/protocol",
                json!("sctp"),
                r#"Invalid protocol "sctp"; valid: tcp, udp"#,
            ),
            (
                "/containerDefinitions/0/portMappings/1/protocol",
                json!("UDP"),
                r#"Invalid protocol "UDP"; valid: tcp, udp"#,
            ),
            (
                "/containerDefinitions/0/dependsOn/0/condition",
                json!("READY"),
                r#"Invalid dependsOn condition "READY"; valid: START, COMPLETE, SUCCESS, HEALTHY"#,
            ),
            (
                "/volumes/1/dockerVolumeConfiguration/scope",
                json!("global"),
                r#"Invalid dockerVolumeConfiguration scope "global"; valid: task, shared"#,
            ),
            (
                "/volumes/3/efsVolumeConfiguration/authorizationConfig/iam",
                json!("ON"),
                r#"Invalid efsVolumeConfiguration authorizationConfig iam "ON"; valid: ENABLED, DISABLED"#,
            ),
            (
                "/placementConstraints/0/type",
                json!("distinctInstance"),
                r#"Invalid placementConstraints type "distinctInstance"; valid: memberOf"#,
            ),
        ];
        for (at, value, message) in cases {
            let e = with(at, value).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::InvalidParameterException);
            assert_eq!(e.message, message);
        }
        // A member of the wrong JSON type stays the client's serialization error.
        for (at, value) in [
            ("/containerDefinitions/0/portMappings/1/protocol", json!(17)),
            ("/containerDefinitions/0/mountPoints", json!({"a": 1})),
            ("/volumes/0/host", json!("/srv")),
        ] {
            let e = with(at, value).unwrap_err();
            assert_eq!(
                e.code,
                crate::ErrorCode::SerializationException,
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn references() {
        assert_eq!(
            TaskDefRef::parse("web:3").unwrap(),
            TaskDefRef {
                family: "web".into(),
                revision: Some(3)
            }
        );
        assert_eq!(TaskDefRef::parse("web").unwrap().revision, None);
        let arn = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:7";
        assert_eq!(TaskDefRef::parse(arn).unwrap().revision, Some(7));
        for bad in [
            "web:0",
            "web:x",
            "web:",
            "arn:aws:ecs:r:a:cluster/web",
            "a b",
        ] {
            assert!(TaskDefRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_resources() {
        let t = td(web()).unwrap();
        assert_eq!(t.memory_mib(), 64);
        assert_eq!(t.cpu_units(), 0);
    }
}
