//! Clusters: the named groups that hold instances, services and tasks.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{self, EmptyList};
use crate::{ApiError, Tag};

/// A cluster's status: ACTIVE until DeleteCluster makes it INACTIVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatus {
    /// In use.
    Active,
    /// Deleted; kept so that describing it still answers, as ECS does.
    Inactive,
}

impl ClusterStatus {
    /// The wire string (`ACTIVE`, `INACTIVE`).
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
    /// The setting's name (`containerInsights`).
    pub name: String,
    /// Its value.
    pub value: String,
}

impl ClusterSetting {
    /// Checks the settings of a CreateCluster, UpdateCluster or UpdateClusterSettings.
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
    /// `ATTACHMENTS`.
    Attachments,
    /// `CONFIGURATIONS`.
    Configurations,
    /// `SETTINGS`.
    Settings,
    /// `STATISTICS`.
    Statistics,
    /// `TAGS`.
    Tags,
}

impl ClusterField {
    /// Parses one `include` value.
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
    /// The cluster's name (unique in the region).
    pub cluster_name: String,
    /// ACTIVE, or INACTIVE once deleted.
    pub status: ClusterStatus,
    /// The cluster settings (`containerInsights`).
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
    /// The `configuration` given at creation or by UpdateCluster, kept as given and echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Value>,
    /// The cluster's tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The capacity providers associated with the cluster (CreateCluster,
    /// PutClusterCapacityProviders): the only ones a strategy in the cluster may name.
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    /// The default capacity provider strategy (`capacityProvider`, `weight`, `base` items,
    /// validated before they are stored): used by RunTask when neither a launch type nor a
    /// strategy is given.
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<Value>,
    /// The Service Connect defaults, echoed back (berth does not act on them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connect_defaults: Option<Value>,
    /// Epoch seconds.
    pub created_at: f64,
}

/// Live numbers shown with a cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterCounts {
    /// Container instances registered (ACTIVE or DRAINING).
    pub registered_container_instances: u64,
    /// Tasks whose last status is RUNNING.
    pub running_tasks: u64,
    /// Tasks not yet RUNNING (PROVISIONING, PENDING, ACTIVATING).
    pub pending_tasks: u64,
    /// Services that are ACTIVE.
    pub active_services: u64,
}

impl Cluster {
    /// A new ACTIVE cluster created at `now` (epoch seconds), with `containerInsights` disabled.
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
        let asked = |f: ClusterField| include.is_some_and(|inc| inc.contains(&f));
        let stat = |name, v: u64| Statistic {
            name,
            value: v.to_string(),
        };
        wire::to_value(ClusterWire {
            cluster_arn: arn,
            cluster_name: &self.cluster_name,
            status: self.status,
            registered_container_instances_count: counts.registered_container_instances,
            running_tasks_count: counts.running_tasks,
            pending_tasks_count: counts.pending_tasks,
            active_services_count: counts.active_services,
            capacity_providers: &self.capacity_providers,
            default_capacity_provider_strategy: &self.default_capacity_provider_strategy,
            service_connect_defaults: self.service_connect_defaults.as_ref(),
            settings: wants(ClusterField::Settings).then_some(self.settings.as_slice()),
            configuration: self
                .configuration
                .as_ref()
                .filter(|_| wants(ClusterField::Configurations)),
            // A write action shows tags only if there are some.
            tags: (wants(ClusterField::Tags) && (include.is_some() || !self.tags.is_empty()))
                .then_some(self.tags.as_slice()),
            statistics: asked(ClusterField::Statistics).then(|| {
                [
                    stat("runningEC2TasksCount", counts.running_tasks),
                    stat("runningFargateTasksCount", 0),
                    stat("pendingEC2TasksCount", counts.pending_tasks),
                    stat("pendingFargateTasksCount", 0),
                    stat("activeEC2ServiceCount", counts.active_services),
                    stat("activeFargateServiceCount", 0),
                    stat("drainingEC2ServiceCount", 0),
                    stat("drainingFargateServiceCount", 0),
                ]
            }),
            attachments: asked(ClusterField::Attachments).then_some(EmptyList),
        })
    }
}

/// ECS's `Cluster` shape, borrowed from a [`Cluster`] with its counts.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterWire<'a> {
    cluster_arn: &'a str,
    cluster_name: &'a str,
    status: ClusterStatus,
    registered_container_instances_count: u64,
    running_tasks_count: u64,
    pending_tasks_count: u64,
    active_services_count: u64,
    capacity_providers: &'a [String],
    default_capacity_provider_strategy: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    service_connect_defaults: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settings: Option<&'a [ClusterSetting]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    configuration: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [Tag]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statistics: Option<[Statistic; 8]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attachments: Option<EmptyList>,
}

/// One of a cluster's `statistics` (ECS's `KeyValuePair`, its number as a string).
#[derive(Serialize)]
struct Statistic {
    name: &'static str,
    value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    /// A cluster with every optional member set.
    fn full_cluster() -> Cluster {
        serde_json::from_value(json!({
            "clusterName": "prod", "status": "ACTIVE",
            "settings": [{"name": "containerInsights", "value": "enhanced"}],
            "configuration": {"executeCommandConfiguration": {"logging": "DEFAULT"}},
            "tags": [{"key": "env", "value": "prod"}],
            "capacityProviders": ["cp1"],
            "defaultCapacityProviderStrategy": [{"capacityProvider": "cp1", "weight": 1, "base": 0}],
            "serviceConnectDefaults": {"namespace": "arn:ns"},
            "createdAt": 1718000000.5}))
        .unwrap()
    }

    fn counts() -> ClusterCounts {
        ClusterCounts {
            registered_container_instances: 3,
            running_tasks: 5,
            pending_tasks: 1,
            active_services: 2,
        }
    }

    /// Golden: everything `include` can ask for; a write action's answer (`None`) is the same
    /// without statistics and attachments; a new cluster's answers.
    #[test]
    fn wire_shape_is_ecs_cluster() {
        use ClusterField::*;
        let all = [Attachments, Configurations, Settings, Statistics, Tags];
        let mut full = json!({
            "activeServicesCount": 2,
            "attachments": [],
            "capacityProviders": [
                "cp1"
            ],
            "clusterArn": "arn:c",
            "clusterName": "prod",
            "configuration": {
                "executeCommandConfiguration": {
                    "logging": "DEFAULT"
                }
            },
            "defaultCapacityProviderStrategy": [
                {
                    "base": 0,
                    "capacityProvider": "cp1",
                    "weight": 1
                }
            ],
            "pendingTasksCount": 1,
            "registeredContainerInstancesCount": 3,
            "runningTasksCount": 5,
            "serviceConnectDefaults": {
                "namespace": "arn:ns"
            },
            "settings": [
                {
                    "name": "containerInsights",
                    "value": "enhanced"
                }
            ],
            "statistics": [
                {
                    "name": "runningEC2TasksCount",
                    "value": "5"
                },
                {
                    "name": "runningFargateTasksCount",
                    "value": "0"
                },
                {
                    "name": "pendingEC2TasksCount",
                    "value": "1"
                },
                {
                    "name": "pendingFargateTasksCount",
                    "value": "0"
                },
                {
                    "name": "activeEC2ServiceCount",
                    "value": "2"
                },
                {
                    "name": "activeFargateServiceCount",
                    "value": "0"
                },
                {
                    "name": "drainingEC2ServiceCount",
                    "value": "0"
                },
                {
                    "name": "drainingFargateServiceCount",
                    "value": "0"
                }
            ],
            "status": "ACTIVE",
            "tags": [
                {
                    "key": "env",
                    "value": "prod"
                }
            ]
        });
        assert_eq!(full_cluster().to_wire("arn:c", Some(&all), counts()), full);
        let m = full.as_object_mut().unwrap();
        m.remove("attachments");
        m.remove("statistics");
        assert_eq!(full_cluster().to_wire("arn:c", None, counts()), full);

        let new = Cluster::new("web".into(), 2.0);
        assert_eq!(
            new.to_wire("arn:c", None, ClusterCounts::default()),
            json!({
                "activeServicesCount": 0,
                "capacityProviders": [],
                "clusterArn": "arn:c",
                "clusterName": "web",
                "defaultCapacityProviderStrategy": [],
                "pendingTasksCount": 0,
                "registeredContainerInstancesCount": 0,
                "runningTasksCount": 0,
                "settings": [
                    {
                        "name": "containerInsights",
                        "value": "disabled"
                    }
                ],
                "status": "ACTIVE"
            })
        );
        assert_eq!(
            new.to_wire(
                "arn:c",
                Some(&[Tags, Configurations]),
                ClusterCounts::default()
            ),
            json!({
                "activeServicesCount": 0,
                "capacityProviders": [],
                "clusterArn": "arn:c",
                "clusterName": "web",
                "defaultCapacityProviderStrategy": [],
                "pendingTasksCount": 0,
                "registeredContainerInstancesCount": 0,
                "runningTasksCount": 0,
                "status": "ACTIVE",
                "tags": []
            })
        );
    }
}
