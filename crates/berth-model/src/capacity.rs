//! Capacity providers: what a task or service asks for instead of a launch type, and what
//! a cluster's capacity is made of (ECS's `CapacityProvider` and strategy items).
//!
//! A provider is either one of berth's own (`FARGATE`, `FARGATE_SPOT`: capacity berth owns,
//! backed by a managed host group the user never sees) or made by CreateCapacityProvider over
//! a host group (`autoScalingGroupProvider`). A task placed through a provider may land only
//! on that provider's hosts: a host belongs to the provider whose host group it was started
//! by (the container instance's `berth.host-group` attribute, see `hostgroup`).
//!
//! Records are stored in ECS's wire shape (camelCase), so DescribeCapacityProviders renders
//! them as they are.

use serde::{Deserialize, Serialize};

use crate::Tag;

/// The names of berth's own providers, present in every region.
pub const FARGATE: &str = "FARGATE";
/// Spot capacity: tasks may be reclaimed (stopCode `SpotInterruption`).
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";

/// A capacity provider, as DescribeCapacityProviders shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProvider {
    /// `arn:aws:ecs:REGION:ACCOUNT:capacity-provider/NAME`.
    pub capacity_provider_arn: String,
    /// Its name (`FARGATE` and `FARGATE_SPOT` are berth's own).
    pub name: String,
    /// `ACTIVE` or `INACTIVE` (deleted, still described for a while as ECS does).
    pub status: String,
    /// The host group behind it; absent for berth's own providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group_provider: Option<AutoScalingGroupProvider>,
    /// `EC2_AUTOSCALING` for a provider made over a host group, `FARGATE` or `FARGATE_SPOT`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `DELETE_IN_PROGRESS`, `DELETE_COMPLETE`, `UPDATE_COMPLETE` ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status: Option<String>,
    /// Why the last update or delete ended as it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status_reason: Option<String>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// `autoScalingGroupProvider`: the host group and how ECS manages it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoScalingGroupProvider {
    /// The host group's ARN (or name, as ECS accepts either).
    pub auto_scaling_group_arn: String,
    /// Managed scaling settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_scaling: Option<ManagedScaling>,
    /// `ENABLED` or `DISABLED`: hosts running tasks are protected from scale-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_termination_protection: Option<String>,
    /// `ENABLED` or `DISABLED`: hosts are drained before the group terminates them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_draining: Option<String>,
}

/// `managedScaling`: ECS moves the group toward `targetCapacity` percent utilisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedScaling {
    /// `ENABLED` or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// 1..=100: the CapacityProviderReservation the group is scaled toward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_capacity: Option<u32>,
    /// 1..=10,000 hosts per scale-out step at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_scaling_step_size: Option<u32>,
    /// 1..=10,000 hosts per step at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_scaling_step_size: Option<u32>,
    /// Seconds a new host is counted as warming up (0..=10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_warmup_period: Option<u32>,
}

/// One item of a `capacityProviderStrategy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyItem {
    /// The provider's name.
    pub capacity_provider: String,
    /// 0..=1,000: the share of tasks beyond the bases.
    #[serde(default)]
    pub weight: u32,
    /// 0..=100,000: tasks placed on this provider before weights apply.
    #[serde(default)]
    pub base: u32,
}
