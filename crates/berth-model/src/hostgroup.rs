//! Host groups: berth's analogue of an EC2 Auto Scaling Group and its launch configuration.
//!
//! A host group keeps `desired_capacity` hosts, each running `berth agent` and joined to an
//! ECS cluster; a host provider (process, docker, or the operator's own commands) makes and
//! destroys them. The records here are what the Auto Scaling Query API shows (field names
//! follow its shapes), what the host group controller reconciles, and what capacity providers
//! point at (`autoScalingGroupArn`).
//!
//! The contract between the parts that meet here, written down once:
//! - a host a group starts runs `berth agent` with `--cpu`/`--memory` from its instance type
//!   and the attributes [`ATTR_HOST_GROUP`], [`ATTR_HOST_ID`], `ecs.instance-type` and
//!   `ecs.ami-id`, so its container instance is tied to its [`HostRecord`] by attribute;
//! - a group whose `managed_by` is set (FARGATE's capacity) belongs to berth: the Auto
//!   Scaling API never lists it and the ECS API never shows its container instances.

use serde::{Deserialize, Serialize};

use crate::Tag;

/// The container-instance attribute naming the host group a host belongs to.
pub const ATTR_HOST_GROUP: &str = "berth.host-group";
/// The container-instance attribute holding the host's instance id (`i-...`).
pub const ATTR_HOST_ID: &str = "berth.host-id";

/// A launch configuration: how a host group starts a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LaunchConfiguration {
    /// Its name, unique in the region.
    pub launch_configuration_name: String,
    /// `arn:aws:autoscaling:REGION:ACCOUNT:launchConfiguration:UUID:launchConfigurationName/NAME`.
    #[serde(rename = "LaunchConfigurationARN")]
    pub launch_configuration_arn: String,
    /// The host image: for the docker provider a Docker image holding `berth` (or
    /// `berth-host`, built by berth itself); for the command provider, passed to its script.
    pub image_id: String,
    /// A name from [`instance_type_size`]; it sets the host's CPU and memory.
    pub instance_type: String,
    /// Passed to the host as given (base64, as EC2 takes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// When it was made (epoch seconds).
    pub created_time: f64,
}

/// A host group (an Auto Scaling Group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostGroup {
    /// Its name, unique in the region.
    pub auto_scaling_group_name: String,
    /// `arn:aws:autoscaling:REGION:ACCOUNT:autoScalingGroup:UUID:autoScalingGroupName/NAME`.
    #[serde(rename = "AutoScalingGroupARN")]
    pub auto_scaling_group_arn: String,
    /// The launch configuration new hosts are started from.
    pub launch_configuration_name: String,
    /// Bounds and target of the number of hosts.
    pub min_size: u32,
    /// Bounds and target of the number of hosts.
    pub max_size: u32,
    /// How many hosts the group keeps.
    pub desired_capacity: u32,
    /// Seconds between scaling activities (kept and shown).
    pub default_cooldown: u32,
    /// Seconds a new host has to join before its health counts.
    pub health_check_grace_period: u32,
    /// `EC2` (the host process or container is alive) or `ELB`-less `ECS`-style agent health:
    /// berth treats both as "the host's agent answers".
    pub health_check_type: String,
    /// The order hosts are picked for scale-in: `Default`, `OldestInstance`, `NewestInstance`,
    /// `OldestLaunchConfiguration`, `ClosestToNextInstanceHour`, `AllocationStrategy`,
    /// `OldestLaunchTemplate`.
    pub termination_policies: Vec<String>,
    /// New hosts start protected from scale-in.
    pub new_instances_protected_from_scale_in: bool,
    /// Availability zones (names only; berth has one).
    pub availability_zones: Vec<String>,
    /// The ECS cluster its hosts join.
    pub cluster: String,
    /// The host provider: `process`, `docker` or `command`.
    pub provider: String,
    /// Set when berth owns the group (`FARGATE`, `FARGATE_SPOT`): hidden from the Auto Scaling API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
    /// `Delete in progress` while a delete drains it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Tags (shown; propagated to hosts when asked).
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// When it was made (epoch seconds).
    pub created_time: f64,
}

/// One host of a group (an Auto Scaling instance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostRecord {
    /// `i-` and 17 hex digits, chosen by the controller.
    pub instance_id: String,
    /// The group it belongs to.
    pub auto_scaling_group_name: String,
    /// `Pending`, `InService`, `Terminating`, `Terminated` (Auto Scaling's lifecycle states).
    pub lifecycle_state: String,
    /// `Healthy` or `Unhealthy`.
    pub health_status: String,
    /// Kept from scale-in (SetInstanceProtection, or managed termination protection).
    pub protected_from_scale_in: bool,
    /// The launch configuration it was started from.
    pub launch_configuration_name: String,
    /// Its instance type.
    pub instance_type: String,
    /// Its availability zone.
    pub availability_zone: String,
    /// When the provider started it (epoch seconds).
    pub launched_at: f64,
    /// What the provider needs to find it again (a pid, a container id, the script's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_handle: Option<String>,
    /// The ECS container instance id once its agent registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_id: Option<String>,
    /// The scaling activity in progress for this host (its launch, then its termination),
    /// finished by the controller when the provider is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_id: Option<String>,
    /// When it entered `Terminating` (epoch seconds): the drain of its service tasks is
    /// bounded from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating_since: Option<f64>,
}

/// One scaling activity of a group (what DescribeScalingActivities shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingActivity {
    /// Its id (a UUID).
    pub activity_id: String,
    /// The group it belongs to.
    pub auto_scaling_group_name: String,
    /// `Launching a new EC2 instance: i-...` or `Terminating EC2 instance: i-...`.
    pub description: String,
    /// Why, in Auto Scaling's words.
    pub cause: String,
    /// When it started (epoch seconds).
    pub start_time: f64,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    /// `InProgress`, `Successful`, `Failed`, `Cancelled`.
    pub status_code: String,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// 0 to 100.
    pub progress: u32,
}

/// The CPU units (1,024 per vCPU) and memory (MiB) of an instance type, from EC2's own
/// figures; `None` for a name berth does not know.
pub fn instance_type_size(name: &str) -> Option<(u64, u64)> {
    let (vcpu, gib): (u64, f64) = match name {
        "t3.nano" => (2, 0.5),
        "t3.micro" => (2, 1.0),
        "t3.small" => (2, 2.0),
        "t3.medium" => (2, 4.0),
        "t3.large" => (2, 8.0),
        "t3.xlarge" => (4, 16.0),
        "t3.2xlarge" => (8, 32.0),
        "t2.micro" => (1, 1.0),
        "t2.small" => (1, 2.0),
        "t2.medium" => (2, 4.0),
        "m5.large" => (2, 8.0),
        "m5.xlarge" => (4, 16.0),
        "m5.2xlarge" => (8, 32.0),
        "m5.4xlarge" => (16, 64.0),
        "m5.8xlarge" => (32, 128.0),
        "c5.large" => (2, 4.0),
        "c5.xlarge" => (4, 8.0),
        "c5.2xlarge" => (8, 16.0),
        "r5.large" => (2, 16.0),
        "r5.xlarge" => (4, 32.0),
        _ => return None,
    };
    Some((vcpu * 1024, (gib * 1024.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_types_have_ec2_sizes() {
        assert_eq!(instance_type_size("t3.small"), Some((2048, 2048)));
        assert_eq!(instance_type_size("m5.large"), Some((2048, 8192)));
        assert_eq!(instance_type_size("t3.nano"), Some((2048, 512)));
        assert_eq!(instance_type_size("z9.huge"), None);
    }
}
