//! Clusters: the named groups that hold instances, services and tasks.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::{ApiError, Tag};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatus {
    Active,
    Inactive,
}

impl ClusterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
        }
    }
}

/// A cluster setting; ECS knows one, `containerInsights` (`enabled`, `enhanced`, `disabled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSetting {
    pub name: String,
    pub value: String,
}

impl ClusterSetting {
    pub fn validate_all(settings: &[ClusterSetting]) -> Result<(), ApiError> {
        for s in settings {
            if s.name != "containerInsights" {
                return Err(ApiError::invalid(format!(
                    "Unknown cluster setting name {:?}; valid: containerInsights",
                    s.name
                )));
            }
            if !matches!(s.value.as_str(), "enabled" | "disabled" | "enhanced") {
                return Err(ApiError::invalid(format!(
                    "Invalid value {:?} for containerInsights; valid: enabled, enhanced, disabled",
                    s.value
                )));
            }
        }
        Ok(())
    }
}

/// The optional parts of DescribeClusters' answer, asked for with `include`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterField {
    Attachments,
    Configurations,
    Settings,
    Statistics,
    Tags,
}

impl ClusterField {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "ATTACHMENTS" => Self::Attachments,
            "CONFIGURATIONS" => Self::Configurations,
            "SETTINGS" => Self::Settings,
            "STATISTICS" => Self::Statistics,
            "TAGS" => Self::Tags,
            _ => {
                return Err(ApiError::invalid(format!(
                    "Invalid include value {s:?}; valid: ATTACHMENTS, CONFIGURATIONS, SETTINGS, STATISTICS, TAGS"
                )))
            }
        })
    }
}

/// A cluster as stored. Counts are not stored: they are derived from instances, tasks and
/// services when the cluster is described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub cluster_name: String,
    pub status: ClusterStatus,
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Value>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connect_defaults: Option<Value>,
    /// Epoch seconds.
    pub created_at: f64,
}

/// Live numbers shown with a cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterCounts {
    pub registered_container_instances: u64,
    pub running_tasks: u64,
    pub pending_tasks: u64,
    pub active_services: u64,
}

impl Cluster {
    pub fn new(name: String, now: f64) -> Self {
        Self {
            cluster_name: name,
            status: ClusterStatus::Active,
            settings: vec![ClusterSetting {
                name: "containerInsights".into(),
                value: "disabled".into(),
            }],
            configuration: None,
            tags: Vec::new(),
            capacity_providers: Vec::new(),
            default_capacity_provider_strategy: Vec::new(),
            service_connect_defaults: None,
            created_at: now,
        }
    }

    /// Replaces settings by name, keeping the others.
    pub fn apply_settings(&mut self, settings: &[ClusterSetting]) {
        for s in settings {
            match self.settings.iter_mut().find(|e| e.name == s.name) {
                Some(e) => e.value = s.value.clone(),
                None => self.settings.push(s.clone()),
            }
        }
    }

    /// The ECS `Cluster` wire shape. Settings, configuration, tags and statistics appear only
    /// when `include` asks for them (`None` = the answer of a write action, which shows all but
    /// statistics).
    pub fn to_wire(
        &self,
        arn: &str,
        include: Option<&[ClusterField]>,
        counts: ClusterCounts,
    ) -> Value {
        let wants = |f: ClusterField| include.is_none_or(|inc| inc.contains(&f));
        let mut m = Map::new();
        m.insert("clusterArn".into(), json!(arn));
        m.insert("clusterName".into(), json!(self.cluster_name));
        m.insert("status".into(), json!(self.status.as_str()));
        m.insert(
            "registeredContainerInstancesCount".into(),
            json!(counts.registered_container_instances),
        );
        m.insert("runningTasksCount".into(), json!(counts.running_tasks));
        m.insert("pendingTasksCount".into(), json!(counts.pending_tasks));
        m.insert("activeServicesCount".into(), json!(counts.active_services));
        m.insert("capacityProviders".into(), json!(self.capacity_providers));
        m.insert(
            "defaultCapacityProviderStrategy".into(),
            json!(self.default_capacity_provider_strategy),
        );
        if let Some(scd) = &self.service_connect_defaults {
            m.insert("serviceConnectDefaults".into(), scd.clone());
        }
        if wants(ClusterField::Settings) {
            m.insert("settings".into(), json!(self.settings));
        }
        if wants(ClusterField::Configurations) {
            if let Some(c) = &self.configuration {
                m.insert("configuration".into(), c.clone());
            }
        }
        if wants(ClusterField::Tags) && (include.is_some() || !self.tags.is_empty()) {
            m.insert("tags".into(), json!(self.tags));
        }
        if include.is_some_and(|inc| inc.contains(&ClusterField::Statistics)) {
            let stat = |name: &str, v: u64| json!({"name": name, "value": v.to_string()});
            m.insert(
                "statistics".into(),
                json!([
                    stat("runningEC2TasksCount", counts.running_tasks),
                    stat("runningFargateTasksCount", 0),
                    stat("pendingEC2TasksCount", counts.pending_tasks),
                    stat("pendingFargateTasksCount", 0),
                    stat("activeEC2ServiceCount", counts.active_services),
                    stat("activeFargateServiceCount", 0),
                    stat("drainingEC2ServiceCount", 0),
                    stat("drainingFargateServiceCount", 0),
                ]),
            );
        }
        if include.is_some_and(|inc| inc.contains(&ClusterField::Attachments)) {
            m.insert("attachments".into(), json!([]));
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_controls_optional_fields() {
        let mut c = Cluster::new("web".into(), 1.0);
        c.tags.push(Tag {
            key: "k".into(),
            value: "v".into(),
        });
        let plain = c.to_wire("arn", Some(&[]), ClusterCounts::default());
        assert!(plain.get("tags").is_none());
        assert!(plain.get("settings").is_none());
        assert!(plain.get("statistics").is_none());
        let all = c.to_wire(
            "arn",
            Some(&[
                ClusterField::Tags,
                ClusterField::Settings,
                ClusterField::Statistics,
            ]),
            ClusterCounts::default(),
        );
        assert_eq!(all["tags"][0]["key"], "k");
        assert_eq!(all["settings"][0]["name"], "containerInsights");
        assert_eq!(all["statistics"].as_array().map(Vec::len), Some(8));
        let created = c.to_wire("arn", None, ClusterCounts::default());
        assert!(created.get("tags").is_some() && created.get("statistics").is_none());
    }

    #[test]
    fn settings_validate_and_merge() {
        let s = |n: &str, v: &str| ClusterSetting {
            name: n.into(),
            value: v.into(),
        };
        assert!(ClusterSetting::validate_all(&[s("containerInsights", "enabled")]).is_ok());
        assert!(ClusterSetting::validate_all(&[s("bogus", "enabled")]).is_err());
        assert!(ClusterSetting::validate_all(&[s("containerInsights", "on")]).is_err());
        let mut c = Cluster::new("x".into(), 0.0);
        c.apply_settings(&[s("containerInsights", "enabled")]);
        assert_eq!(c.settings, vec![s("containerInsights", "enabled")]);
    }
}
