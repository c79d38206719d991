//! The JSON bodies of the task metadata endpoint, in ECS's v4 shapes (pure: built from what
//! the agent knows of the task and what the driver reports of its containers).
//!
//! Field names are ECS's (`DockerId`, `KnownStatus`, `Limits.CPU` ...). Where berth has no
//! value for an optional field (an `ImageID` on the process driver, task-level `PullStartedAt`)
//! the field is left out, as ECS leaves out what it does not know.

use std::collections::BTreeMap;

use berth_model::agent::AgentTask;
use berth_model::ContainerDefinition;
use serde_json::{json, Map, Value};

use crate::spec::{ContainerStatus, Health, NetworkMode, RunState, Stats};

/// What the Docker engine adds about one container (absent on the process driver).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EngineFacts {
    /// The container's name in Docker, without the leading `/`.
    pub name: String,
    /// The image's id (`sha256:...`).
    pub image_id: String,
    /// When Docker created it (RFC 3339, as Docker says it).
    pub created: String,
    /// `(network name, IPv4 address)` for each network it is attached to.
    pub addresses: Vec<(String, String)>,
}

/// One container of the task as the driver sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Seen {
    /// The driver's id (the Docker container id).
    pub id: String,
    /// State, health, ports and times.
    pub status: Option<ContainerStatus>,
    /// Docker's extra facts.
    pub engine: Option<EngineFacts>,
}

/// The task and where it runs.
pub(crate) struct TaskView<'a> {
    /// The task as the server sent it.
    pub task: &'a AgentTask,
    /// Cluster name.
    pub cluster: &'a str,
    /// The availability zone reported for the task.
    pub availability_zone: &'a str,
    /// The network mode the containers run in.
    pub network_mode: NetworkMode,
}

fn rfc3339(epoch: f64) -> Option<String> {
    let nanos = (epoch * 1e9) as i128;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn known_status(seen: Option<&Seen>) -> &'static str {
    match seen.and_then(|s| s.status.as_ref()).map(|s| s.state) {
        None => "NONE",
        Some(RunState::Created) => "CREATED",
        Some(RunState::Running) => "RUNNING",
        Some(RunState::Exited { .. }) => "STOPPED",
    }
}

fn mode_name(mode: NetworkMode) -> &'static str {
    match mode {
        NetworkMode::Bridge => "bridge",
        NetworkMode::Host => "host",
        NetworkMode::None => "none",
        NetworkMode::Awsvpc => "awsvpc",
    }
}

/// ECS's `Labels`: the `com.amazonaws.ecs.*` labels plus the definition's `dockerLabels`.
fn labels(view: &TaskView<'_>, def: &ContainerDefinition) -> BTreeMap<String, String> {
    let mut out = def.docker_labels.clone().unwrap_or_default();
    let t = view.task;
    out.insert("com.amazonaws.ecs.cluster".into(), view.cluster.to_owned());
    out.insert("com.amazonaws.ecs.container-name".into(), def.name.clone());
    out.insert("com.amazonaws.ecs.task-arn".into(), t.task_arn.clone());
    out.insert(
        "com.amazonaws.ecs.task-definition-family".into(),
        t.family.clone(),
    );
    out.insert(
        "com.amazonaws.ecs.task-definition-version".into(),
        t.revision.to_string(),
    );
    out
}

/// The container's JSON (`GET ${ECS_CONTAINER_METADATA_URI_V4}`).
pub(crate) fn container(
    view: &TaskView<'_>,
    def: &ContainerDefinition,
    seen: Option<&Seen>,
) -> Value {
    let t = view.task;
    let mut m = Map::new();
    let id = seen.map(|s| s.id.clone()).unwrap_or_default();
    let engine = seen.and_then(|s| s.engine.as_ref());
    let status = seen.and_then(|s| s.status.as_ref());
    m.insert("DockerId".into(), json!(id));
    m.insert("Name".into(), json!(def.name));
    let docker_name = engine.map_or_else(|| id.clone(), |e| e.name.clone());
    m.insert("DockerName".into(), json!(docker_name));
    m.insert("Image".into(), json!(def.image));
    if let Some(e) = engine.filter(|e| !e.image_id.is_empty()) {
        m.insert("ImageID".into(), json!(e.image_id));
    }
    m.insert("Labels".into(), json!(labels(view, def)));
    m.insert("DesiredStatus".into(), json!(t.desired_status.as_str()));
    m.insert("KnownStatus".into(), json!(known_status(seen)));
    if let Some(RunState::Exited { code }) = status.map(|s| s.state) {
        m.insert("ExitCode".into(), json!(code));
    }
    let mut limits = Map::new();
    limits.insert("CPU".into(), json!(def.cpu));
    if let Some(mem) = def.memory.or(def.memory_reservation) {
        limits.insert("Memory".into(), json!(mem));
    }
    m.insert("Limits".into(), Value::Object(limits));
    if let Some(created) = engine.map(|e| e.created.clone()).filter(|c| !c.is_empty()) {
        m.insert("CreatedAt".into(), json!(created));
    }
    if let Some(at) = status.and_then(|s| s.started_at).and_then(rfc3339) {
        m.insert("StartedAt".into(), json!(at));
    }
    if let Some(at) = status.and_then(|s| s.finished_at).and_then(rfc3339) {
        m.insert("FinishedAt".into(), json!(at));
    }
    m.insert("Type".into(), json!("NORMAL"));
    let arn = t.task_arn.replacen(":task/", ":container/", 1);
    m.insert("ContainerARN".into(), json!(format!("{arn}/{}", def.name)));
    if let Some(lc) = &def.log_configuration {
        m.insert("LogDriver".into(), json!(lc.log_driver));
        m.insert(
            "LogOptions".into(),
            json!(lc.options.clone().unwrap_or_default()),
        );
    }
    if def.health_check.is_some() {
        let h = match status.map(|s| s.health) {
            Some(Health::Healthy) => "HEALTHY",
            Some(Health::Unhealthy) => "UNHEALTHY",
            _ => "UNKNOWN",
        };
        m.insert("Health".into(), json!({ "status": h }));
    }
    m.insert("Networks".into(), networks(view, engine));
    let ports: Vec<Value> = status
        .map(|s| s.bindings.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|b| {
            json!({
                "ContainerPort": b.container_port,
                "Protocol": b.protocol.as_str(),
                "HostPort": b.host_port,
                "HostIp": b.bind_ip,
            })
        })
        .collect();
    if !ports.is_empty() {
        m.insert("Ports".into(), Value::Array(ports));
    }
    Value::Object(m)
}

/// `Networks`: the engine's addresses when it has them, else the host's loopback (the
/// process driver and host mode share the host's network).
fn networks(view: &TaskView<'_>, engine: Option<&EngineFacts>) -> Value {
    let mode = mode_name(view.network_mode);
    let addrs: Vec<&str> = engine
        .map(|e| {
            e.addresses
                .iter()
                .map(|(_, ip)| ip.as_str())
                .filter(|ip| !ip.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let addrs = if addrs.is_empty() && view.network_mode == NetworkMode::Host {
        vec!["127.0.0.1"]
    } else {
        addrs
    };
    if addrs.is_empty() {
        return json!([{ "NetworkMode": mode }]);
    }
    json!([{ "NetworkMode": mode, "IPv4Addresses": addrs }])
}

/// The task's JSON (`GET ${ECS_CONTAINER_METADATA_URI_V4}/task`). `Limits` are the sums of the
/// containers' cpu (in vCPU) and memory (MiB), since the agent is not sent task-level sizes.
pub(crate) fn task(view: &TaskView<'_>, seen: &BTreeMap<String, Seen>) -> Value {
    let t = view.task;
    let containers: Vec<Value> = t
        .containers
        .iter()
        .map(|def| container(view, def, seen.get(&def.name)))
        .collect();
    let cpu: i64 = t.containers.iter().map(|c| c.cpu).sum();
    let memory: i64 = t
        .containers
        .iter()
        .filter_map(|c| c.memory.or(c.memory_reservation))
        .sum();
    let mut m = Map::new();
    m.insert("Cluster".into(), json!(view.cluster));
    m.insert("TaskARN".into(), json!(t.task_arn));
    m.insert("Family".into(), json!(t.family));
    m.insert("Revision".into(), json!(t.revision.to_string()));
    m.insert("DesiredStatus".into(), json!(t.desired_status.as_str()));
    m.insert("KnownStatus".into(), json!(t.last_status.as_str()));
    let mut limits = Map::new();
    limits.insert("CPU".into(), json!(cpu as f64 / 1024.0));
    if memory > 0 {
        limits.insert("Memory".into(), json!(memory));
    }
    m.insert("Limits".into(), Value::Object(limits));
    m.insert("AvailabilityZone".into(), json!(view.availability_zone));
    m.insert("LaunchType".into(), json!("EC2"));
    m.insert("Containers".into(), Value::Array(containers));
    Value::Object(m)
}

/// Docker's stats shape for a driver that only samples cpu time and memory use (the process
/// driver): the fields Docker's own clients read first.
pub(crate) fn stats_from_sample(id: &str, name: &str, s: &Stats) -> Value {
    json!({
        "read": rfc3339(s.at).unwrap_or_default(),
        "name": name,
        "id": id,
        "cpu_stats": { "cpu_usage": { "total_usage": s.cpu_total_ns } },
        "memory_stats": { "usage": s.memory_bytes },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::NetworkBinding;
    use berth_model::{DesiredStatus, TaskStatus, TransportProtocol};

    fn task_of() -> AgentTask {
        AgentTask {
            credentials: None,
            task_id: "t1".into(),
            task_arn: "arn:aws:ecs:eu-west-1:000000000000:task/prod/t1".into(),
            family: "web".into(),
            revision: 3,
            desired_status: DesiredStatus::Running,
            last_status: TaskStatus::Running,
            network_mode: Some("bridge".into()),
            containers: serde_json::from_value(json!([
                {"name": "app", "image": "img", "cpu": 512, "memory": 128,
                 "dockerLabels": {"team": "a"},
                 "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}}},
                {"name": "side", "image": "img2", "memoryReservation": 32}
            ]))
            .unwrap(),
            volumes: Vec::new(),
            pid_mode: None,
            ipc_mode: None,
            secrets: None,
            network: None,
        }
    }

    fn seen() -> Seen {
        Seen {
            id: "abc".into(),
            status: Some(ContainerStatus {
                state: RunState::Running,
                health: Health::Unknown,
                bindings: vec![NetworkBinding {
                    container_port: 80,
                    host_port: 32768,
                    protocol: TransportProtocol::Tcp,
                    bind_ip: "0.0.0.0".into(),
                }],
                started_at: Some(1_700_000_000.5),
                finished_at: None,
                reason: None,
            }),
            engine: Some(EngineFacts {
                name: "berth-app-t1".into(),
                image_id: "sha256:1".into(),
                created: "2023-11-14T22:13:20Z".into(),
                addresses: vec![("bridge".into(), "172.17.0.5".into())],
            }),
        }
    }

    #[test]
    fn a_container_has_ecs_v4_fields() {
        let t = task_of();
        let view = TaskView {
            task: &t,
            cluster: "prod",
            availability_zone: "eu-west-1a",
            network_mode: NetworkMode::Bridge,
        };
        let s = seen();
        let c = container(&view, &t.containers[0], Some(&s));
        assert_eq!(c["DockerId"], "abc");
        assert_eq!(c["DockerName"], "berth-app-t1");
        assert_eq!(c["ImageID"], "sha256:1");
        assert_eq!(c["KnownStatus"], "RUNNING");
        assert_eq!(c["Limits"], json!({"CPU": 512, "Memory": 128}));
        assert_eq!(
            c["Labels"]["com.amazonaws.ecs.task-definition-version"],
            "3"
        );
        assert_eq!(c["Labels"]["team"], "a");
        assert_eq!(c["StartedAt"], "2023-11-14T22:13:20.5Z");
        assert_eq!(
            c["ContainerARN"],
            "arn:aws:ecs:eu-west-1:000000000000:container/prod/t1/app"
        );
        assert_eq!(c["LogDriver"], "json-file");
        assert_eq!(
            c["Networks"],
            json!([{"NetworkMode": "bridge", "IPv4Addresses": ["172.17.0.5"]}])
        );
        assert_eq!(c["Ports"][0]["HostPort"], 32768);
    }

    #[test]
    fn a_task_lists_every_container_even_before_it_starts() {
        let t = task_of();
        let view = TaskView {
            task: &t,
            cluster: "prod",
            availability_zone: "eu-west-1a",
            network_mode: NetworkMode::Bridge,
        };
        let seen = BTreeMap::from([("app".to_string(), seen())]);
        let v = task(&view, &seen);
        assert_eq!(v["Revision"], "3");
        assert_eq!(v["Family"], "web");
        assert_eq!(v["AvailabilityZone"], "eu-west-1a");
        assert_eq!(v["Limits"], json!({"CPU": 0.5, "Memory": 160}));
        assert_eq!(v["Containers"].as_array().unwrap().len(), 2);
        assert_eq!(v["Containers"][1]["KnownStatus"], "NONE");
        assert_eq!(v["Containers"][1]["DockerId"], "");
    }
}
