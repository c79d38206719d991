//! Container instances: the hosts (each with an agent) that run a cluster's tasks.
//!
//! Registered resources are stored; remaining resources and task counts are derived from the
//! tasks that hold resources on the instance whenever they are shown, so they are exact at all
//! times and can never drift from the tasks themselves.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{ApiError, Tag};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceStatus {
    Active,
    Draining,
    Inactive,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Draining => "DRAINING",
            Self::Inactive => "INACTIVE",
        }
    }
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
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
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
    pub cpu: u64,
    pub memory: u64,
    #[serde(default)]
    pub ports: Vec<u16>,
    #[serde(default)]
    pub ports_udp: Vec<u16>,
}

impl HostResources {
    /// The ECS `Resources` wire list.
    pub fn to_wire(&self) -> Value {
        let ports = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>();
        json!([
            {"name": "CPU", "type": "INTEGER", "integerValue": self.cpu, "doubleValue": 0.0, "longValue": 0},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": self.memory, "doubleValue": 0.0, "longValue": 0},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ports(&self.ports), "doubleValue": 0.0, "longValue": 0, "integerValue": 0},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": ports(&self.ports_udp), "doubleValue": 0.0, "longValue": 0, "integerValue": 0},
        ])
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
    pub id: String,
    pub cluster: String,
    pub ec2_instance_id: String,
    pub status: InstanceStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    pub registered: HostResources,
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// ECS's `versionInfo` as the agent (or RegisterContainerInstance) gave it. Kept as JSON:
    /// it describes the agent, not anything berth decides on; only `agentVersion` is read
    /// (for the query language), and DescribeContainerInstances answers it back as given.
    #[serde(default)]
    pub version_info: Value,
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
    pub remaining: HostResources,
    pub running_tasks: u64,
    pub pending_tasks: u64,
}

impl ContainerInstance {
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

    pub fn to_wire(
        &self,
        arn: &str,
        connected: bool,
        usage: &InstanceUsage,
        with_tags: bool,
    ) -> Value {
        let mut v = json!({
            "containerInstanceArn": arn,
            "ec2InstanceId": self.ec2_instance_id,
            "version": self.version,
            "versionInfo": self.version_info,
            "remainingResources": usage.remaining.to_wire(),
            "registeredResources": self.registered.to_wire(),
            "status": self.status.as_str(),
            "agentConnected": connected,
            "runningTasksCount": usage.running_tasks,
            "pendingTasksCount": usage.pending_tasks,
            "attributes": self.attributes,
            "registeredAt": self.registered_at,
            "attachments": [],
        });
        if let Some(r) = &self.status_reason {
            v["statusReason"] = json!(r);
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
}
