//! Container instances: the hosts (each with an agent) that run a cluster's tasks.
//!
//! Registered resources are stored; remaining resources and task counts are derived from the
//! tasks that hold resources on the instance whenever they are shown, so they are exact at all
//! times and can never drift from the tasks themselves.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{self, EmptyList};
use crate::{ApiError, Tag};

/// A container instance's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceStatus {
    /// Takes new tasks.
    Active,
    /// Takes no new tasks; its service tasks are replaced elsewhere
    /// (UpdateContainerInstancesState).
    Draining,
    /// Deregistered.
    Inactive,
}

impl InstanceStatus {
    /// The wire string (`ACTIVE`, `DRAINING`, `INACTIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Draining => "DRAINING",
            Self::Inactive => "INACTIVE",
        }
    }
    /// Parses UpdateContainerInstancesState's `status` (INACTIVE parses too, for filters).
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "ACTIVE" => Ok(Self::Active),
            "DRAINING" => Ok(Self::Draining),
            "INACTIVE" => Ok(Self::Inactive),
            _ => Err(ApiError::invalid(format!(
                "Invalid container instance status {s:?}; valid: ACTIVE, DRAINING"
            ))),
        }
    }
}

/// An ECS attribute on a container instance (value optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    /// The attribute's name (`ecs.os-type`, or a custom one).
    pub name: String,
    /// Its value, if it has one (an attribute may be a bare capability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The type of the resource it is on (`container-instance`), in requests and answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    /// The id or ARN of the resource it is on, in requests and answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
}

/// ECS's limit on custom attributes per instance.
pub const MAX_ATTRIBUTES: usize = 10;

impl Attribute {
    /// ECS attribute rules: names 1..=128 of letters, digits, `-_./@`, values 1..=128 of those
    /// plus `:` and spaces... (we accept the documented characters).
    pub fn validate(&self) -> Result<(), ApiError> {
        let ok_name = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@'))
        };
        if !ok_name(&self.name) {
            return Err(ApiError::invalid(format!(
                "Invalid attribute name {:?}: 1 to 128 letters, numbers, hyphens, underscores, periods, slashes or at signs.",
                self.name
            )));
        }
        if let Some(v) = &self.value {
            if v.is_empty()
                || v.len() > 128
                || !v.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, '-' | '_' | '.' | '/' | '@' | ':' | ' ')
                })
            {
                return Err(ApiError::invalid(format!(
                    "Invalid attribute value {v:?} for {}: 1 to 128 letters, numbers, spaces or -_./@:",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

/// What an instance offers: cpu units, memory MiB, and host ports taken by others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostResources {
    /// CPU units (1024 per vCPU).
    pub cpu: u64,
    /// Memory, in MiB.
    pub memory: u64,
    /// TCP host ports (reserved on registration, or taken by tasks).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// UDP host ports (reserved on registration, or taken by tasks).
    #[serde(default)]
    pub ports_udp: Vec<u16>,
}

impl HostResources {
    /// The ECS `Resources` wire list.
    pub fn to_wire(&self) -> Value {
        wire::to_value(self.wire())
    }

    fn wire(&self) -> [ResourceWire; 4] {
        let integer = |name, v| ResourceWire {
            name,
            kind: "INTEGER",
            integer_value: v,
            double_value: 0.0,
            long_value: 0,
            string_set_value: None,
        };
        let ports = |name, p: &[u16]| ResourceWire {
            name,
            kind: "STRINGSET",
            integer_value: 0,
            double_value: 0.0,
            long_value: 0,
            string_set_value: Some(p.iter().map(u16::to_string).collect()),
        };
        [
            integer("CPU", self.cpu),
            integer("MEMORY", self.memory),
            ports("PORTS", &self.ports),
            ports("PORTS_UDP", &self.ports_udp),
        ]
    }

    /// Reads an ECS `Resources` list (RegisterContainerInstance's totalResources).
    pub fn from_wire(list: &[Value]) -> Result<Self, ApiError> {
        let mut r = Self::default();
        for item in list {
            let name = item["name"].as_str().unwrap_or_default();
            let int = item["integerValue"]
                .as_u64()
                .or_else(|| item["longValue"].as_u64());
            let ports = || -> Result<Vec<u16>, ApiError> {
                item["stringSetValue"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        p.as_str()
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| ApiError::invalid(format!("Invalid port {p}")))
                    })
                    .collect()
            };
            match name {
                "CPU" => r.cpu = int.ok_or_else(|| ApiError::invalid("CPU needs integerValue"))?,
                "MEMORY" => {
                    r.memory = int.ok_or_else(|| ApiError::invalid("MEMORY needs integerValue"))?
                }
                "PORTS" => r.ports = ports()?,
                "PORTS_UDP" => r.ports_udp = ports()?,
                _ => {}
            }
        }
        Ok(r)
    }
}

/// A container instance as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstance {
    /// The container instance id (the last part of its ARN).
    pub id: String,
    /// The name of its cluster.
    pub cluster: String,
    /// The EC2 instance id the registration named, or one made up from `id` (`i-...`).
    pub ec2_instance_id: String,
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: InstanceStatus,
    /// Why it has its status, when ECS would say.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// The resources the host registered with.
    pub registered: HostResources,
    /// Its attributes, the agent's and custom ones (PutAttributes).
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// ECS's `versionInfo` as the agent (or RegisterContainerInstance) gave it. Kept as JSON:
    /// it describes the agent, not anything berth decides on; only `agentVersion` is read
    /// (for the query language), and DescribeContainerInstances answers it back as given.
    #[serde(default)]
    pub version_info: Value,
    /// When it registered, in epoch seconds.
    pub registered_at: f64,
    /// When the agent last polled; `agentConnected` is derived from it.
    #[serde(default)]
    pub last_seen: f64,
    /// Bumped on every change, as ECS's `version`.
    #[serde(default)]
    pub version: u64,
    /// Where this agent serves logs (`host:port`), if it does.
    #[serde(default)]
    pub agent_endpoint: Option<String>,
}

/// Live numbers shown with an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceUsage {
    /// Registered resources minus those held by its tasks.
    pub remaining: HostResources,
    /// Its tasks whose last status is RUNNING.
    pub running_tasks: u64,
    /// Its tasks not yet RUNNING.
    pub pending_tasks: u64,
}

impl ContainerInstance {
    /// The attribute of this name, if the instance has it.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Sets or replaces an attribute by name.
    pub fn put_attribute(&mut self, a: Attribute) {
        let a = Attribute {
            target_type: None,
            target_id: None,
            ..a
        };
        match self.attributes.iter_mut().find(|e| e.name == a.name) {
            Some(e) => *e = a,
            None => self.attributes.push(a),
        }
    }

    /// The ECS `ContainerInstance` wire shape. `tags` appear only `with_tags`.
    pub fn to_wire(
        &self,
        arn: &str,
        connected: bool,
        usage: &InstanceUsage,
        with_tags: bool,
    ) -> Value {
        wire::to_value(ContainerInstanceWire {
            container_instance_arn: arn,
            ec2_instance_id: &self.ec2_instance_id,
            version: self.version,
            version_info: &self.version_info,
            remaining_resources: usage.remaining.wire(),
            registered_resources: self.registered.wire(),
            status: self.status,
            agent_connected: connected,
            running_tasks_count: usage.running_tasks,
            pending_tasks_count: usage.pending_tasks,
            attributes: &self.attributes,
            registered_at: self.registered_at,
            attachments: EmptyList,
            status_reason: self.status_reason.as_deref(),
            tags: with_tags.then_some(self.tags.as_slice()),
        })
    }
}

/// ECS's `ContainerInstance` shape, borrowed from a [`ContainerInstance`] with its usage.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerInstanceWire<'a> {
    container_instance_arn: &'a str,
    ec2_instance_id: &'a str,
    version: u64,
    /// As the agent gave it (`null` if it gave none).
    version_info: &'a Value,
    remaining_resources: [ResourceWire; 4],
    registered_resources: [ResourceWire; 4],
    status: InstanceStatus,
    agent_connected: bool,
    running_tasks_count: u64,
    pending_tasks_count: u64,
    attributes: &'a [Attribute],
    registered_at: f64,
    attachments: EmptyList,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [Tag]>,
}

/// ECS's `Resource` shape: an INTEGER (cpu, memory) or a STRINGSET (ports) with the other
/// value members zero, as the ECS agent sends them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceWire {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    integer_value: u64,
    double_value: f64,
    long_value: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    string_set_value: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_round_trip_through_the_wire() {
        let r = HostResources {
            cpu: 2048,
            memory: 3900,
            ports: vec![22, 2375],
            ports_udp: vec![],
        };
        let wire = r.to_wire();
        let back = HostResources::from_wire(wire.as_array().unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn attribute_rules() {
        let a = |n: &str, v: Option<&str>| Attribute {
            name: n.into(),
            value: v.map(str::to_owned),
            target_type: None,
            target_id: None,
        };
        assert!(a("stack", Some("prod")).validate().is_ok());
        assert!(a("ecs.capability.x", None).validate().is_ok());
        assert!(a("", None).validate().is_err());
        assert!(a("bad name", None).validate().is_err());
        assert!(a("k", Some(&"v".repeat(129))).validate().is_err());
    }

    /// A draining instance with every optional member set.
    fn full_instance() -> ContainerInstance {
        serde_json::from_value(json!({
            "id": "8c3f1a9e", "cluster": "prod", "ec2InstanceId": "i-0123",
            "status": "DRAINING", "statusReason": "Instance is being drained",
            "registered": {"cpu": 2048, "memory": 3900, "ports": [22, 2375], "portsUdp": [53]},
            "attributes": [{"name": "ecs.os-type", "value": "linux"}, {"name": "gpu"}],
            "tags": [{"key": "env", "value": "prod"}],
            "versionInfo": {"agentVersion": "1.2.3", "dockerVersion": "24.0.7"},
            "registeredAt": 1718000000.5, "lastSeen": 1718000100.0, "version": 12,
            "agentEndpoint": "10.0.0.1:51678"}))
        .unwrap()
    }

    /// An instance registered without versionInfo, and nothing optional.
    fn bare_instance() -> ContainerInstance {
        serde_json::from_value(json!({
            "id": "i1", "cluster": "c", "ec2InstanceId": "i-1", "status": "ACTIVE",
            "registered": {"cpu": 1024, "memory": 512}, "registeredAt": 3.0}))
        .unwrap()
    }

    /// Golden: DescribeContainerInstances' shape with every optional member, and a bare one
    /// (whose `versionInfo` is today's `null`).
    #[test]
    fn wire_shape_is_ecs_container_instance() {
        let usage = InstanceUsage {
            remaining: HostResources {
                cpu: 1024,
                memory: 2000,
                ports: vec![22, 2375, 8080],
                ports_udp: vec![],
            },
            running_tasks: 2,
            pending_tasks: 1,
        };
        assert_eq!(
            full_instance().to_wire("arn:ci", true, &usage, true),
            json!({
                "agentConnected": true,
                "attachments": [],
                "attributes": [
                    {
                        "name": "ecs.os-type",
                        "value": "linux"
                    },
                    {
                        "name": "gpu"
                    }
                ],
                "containerInstanceArn": "arn:ci",
                "ec2InstanceId": "i-0123",
                "pendingTasksCount": 1,
                "registeredAt": 1718000000.5,
                "registeredResources": [
                    {
                        "doubleValue": 0.0,
                        "integerValue": 2048,
                        "longValue": 0,
                        "name": "CPU",
                        "type": "INTEGER"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 3900,
                        "longValue": 0,
                        "name": "MEMORY",
                        "type": "INTEGER"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 0,
                        "longValue": 0,
                        "name": "PORTS",
                        "stringSetValue": [
                            "22",
                            "2375"
                        ],
                        "type": "STRINGSET"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 0,
                        "longValue": 0,
                        "name": "PORTS_UDP",
                        "stringSetValue": [
                            "53"
                        ],
                        "type": "STRINGSET"
                    }
                ],
                "remainingResources": [
                    {
                        "doubleValue": 0.0,
                        "integerValue": 1024,
                        "longValue": 0,
                        "name": "CPU",
                        "type": "INTEGER"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 2000,
                        "longValue": 0,
                        "name": "MEMORY",
                        "type": "INTEGER"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 0,
                        "longValue": 0,
                        "name": "PORTS",
                        "stringSetValue": [
                            "22",
                            "2375",
                            "8080"
                        ],
                        "type": "STRINGSET"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 0,
                        "longValue": 0,
                        "name": "PORTS_UDP",
                        "stringSetValue": [],
                        "type": "STRINGSET"
                    }
                ],
                "runningTasksCount": 2,
                "status": "DRAINING",
                "statusReason": "Instance is being drained",
                "tags": [
                    {
                        "key": "env",
                        "value": "prod"
                    }
                ],
                "version": 12,
                "versionInfo": {
                    "agentVersion": "1.2.3",
                    "dockerVersion": "24.0.7"
                }
            })
        );
        assert_eq!(
            bare_instance().to_wire("arn:ci", false, &InstanceUsage::default(), false),
            json!({
                "agentConnected": false,
                "attachments": [],
                "attributes": [],
                "containerInstanceArn": "arn:ci",
                "ec2InstanceId": "i-1",
                "pendingTasksCount": 0,
                "registeredAt": 3.0,
                "registeredResources": [
                    {
                        "doubleValue": 0.0,
                        "integerValue": 1024,
                        "longValue": 0,
                        "name": "CPU",
                        "type": "INTEGER"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 512,
                        "longValue": 0,
                        "name": "MEMORY",
                        "type": "INTEGER"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 0,
                        "longValue": 0,
                        "name": "PORTS",
                        "stringSetValue": [],
                        "type": "STRINGSET"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 0,
                        "longValue": 0,
                        "name": "PORTS_UDP",
                        "stringSetValue": [],
                        "type": "STRINGSET"
                    }
                ],
                "remainingResources": [
                    {
                        "doubleValue": 0.0,
                        "integerValue": 0,
                        "longValue": 0,
                        "name": "CPU",
                        "type": "INTEGER"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 0,
                        "longValue": 0,
                        "name": "MEMORY",
                        "type": "INTEGER"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 0,
                        "longValue": 0,
                        "name": "PORTS",
                        "stringSetValue": [],
                        "type": "STRINGSET"
                    },
                    {
                        "doubleValue": 0.0,
                        "integerValue": 0,
                        "longValue": 0,
                        "name": "PORTS_UDP",
                        "stringSetValue": [],
                        "type": "STRINGSET"
                    }
                ],
                "runningTasksCount": 0,
                "status": "ACTIVE",
                "version": 0,
                "versionInfo": null
            })
        );
    }
}
