//! Application Auto Scaling for ECS services: scalable targets, scaling policies, scheduled
//! actions, scaling activities, and berth's metric alarms (CloudWatch's, for step scaling).
//!
//! Records are stored in Application Auto Scaling's own wire form (PascalCase, `...ARN`
//! suffixes), so `Describe*` answers with them nearly verbatim; the autoscaler controller reads
//! the same records. Only ECS services are supported: namespace `ecs`, dimension
//! `ecs:service:DesiredCount`, resource id `service/CLUSTER/SERVICE`.
//!
//! The pure validation the API edge needs lives here too: resource ids, capacities, step
//! adjustments, schedule expressions ([`Schedule::parse`]) and metric specifications
//! ([`MetricRef`]).
//!
//! This file holds the scalable targets and activities, the records the autoscaler writes;
//! beside it are what a client configures: `policy` (scaling policies), `schedule` (scheduled
//! actions and their expressions) and `metric` (metrics and alarms). Everything is re-exported
//! here, so the paths stay `berth_model::autoscaling::X`.

mod metric;
mod policy;
mod schedule;

use serde::{Deserialize, Serialize};

use crate::{ApiError, ErrorCode};

pub use metric::{
    metric_from_cloudwatch, target_group_of_label, MetricAlarm, MetricDimension, MetricKind,
    MetricRef, ALARM_ALARM, ALARM_INSUFFICIENT_DATA, ALARM_OK,
};
pub use policy::{
    target_tracking_alarm_name, AlarmRef, CustomizedMetric, PredefinedMetric, ScalingPolicy,
    StepAdjustment, StepScalingConfig, TargetTrackingConfig, STEP_SCALING, TARGET_TRACKING,
};
pub use schedule::{parse_at, RateUnit, ScalableTargetAction, Schedule, ScheduledAction};

/// The one service namespace berth scales.
pub const ECS_NAMESPACE: &str = "ecs";
/// The one scalable dimension berth scales: an ECS service's desired count.
pub const ECS_DESIRED_COUNT: &str = "ecs:service:DesiredCount";
/// Capacities are 0..=MAX_CAPACITY.
pub const MAX_CAPACITY: u32 = 10_000;
/// Target tracking cooldowns when the policy does not give them.
pub const DEFAULT_COOLDOWN_SECS: u32 = 300;

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ValidationException, message)
}

/// `service/CLUSTER/SERVICE` into its two names, if it is one.
pub fn parse_service_resource_id(resource_id: &str) -> Option<(&str, &str)> {
    let rest = resource_id.strip_prefix("service/")?;
    let (cluster, service) = rest.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 255
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    (ok(cluster) && ok(service)).then_some((cluster, service))
}

/// Checks namespace, dimension (when given) and resource id (when given) name an ECS service.
pub fn validate_ecs_target(
    namespace: &str,
    resource_id: Option<&str>,
    dimension: Option<&str>,
) -> Result<(), ApiError> {
    if namespace != ECS_NAMESPACE {
        return Err(validation(format!(
            "Unsupported service namespace {namespace:?}: berth scales ECS services only (\"ecs\")."
        )));
    }
    if let Some(d) = dimension {
        if d != ECS_DESIRED_COUNT {
            return Err(validation(format!(
                "Unsupported scalable dimension {d:?} for namespace ecs: use {ECS_DESIRED_COUNT}."
            )));
        }
    }
    if let Some(r) = resource_id {
        if parse_service_resource_id(r).is_none() {
            return Err(validation(format!(
                "Unsupported resource id {r:?}: expected service/CLUSTER/SERVICE."
            )));
        }
    }
    Ok(())
}

/// Checks a MinCapacity/MaxCapacity pair.
pub fn validate_capacity(min: u32, max: u32) -> Result<(), ApiError> {
    if min > MAX_CAPACITY || max > MAX_CAPACITY {
        return Err(validation(format!(
            "Capacity must be between 0 and {MAX_CAPACITY}."
        )));
    }
    if min > max {
        return Err(validation(format!(
            "Minimum capacity ({min}) cannot be greater than maximum capacity ({max})."
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scalable targets.

/// Which kinds of scaling are paused on a target (`SuspendedState`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SuspendedState {
    /// Scale-in by scaling policies is paused.
    #[serde(default)]
    pub dynamic_scaling_in_suspended: bool,
    /// Scale-out by scaling policies is paused.
    #[serde(default)]
    pub dynamic_scaling_out_suspended: bool,
    /// Scheduled actions are paused.
    #[serde(default)]
    pub scheduled_scaling_suspended: bool,
}

/// A scalable target (RegisterScalableTarget): an ECS service and the bounds of its desired count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTarget {
    /// Always [`ECS_NAMESPACE`].
    pub service_namespace: String,
    /// `service/CLUSTER/SERVICE`.
    pub resource_id: String,
    /// Always [`ECS_DESIRED_COUNT`].
    pub scalable_dimension: String,
    /// The least desired count scaling may set.
    pub min_capacity: u32,
    /// The most desired count scaling may set.
    pub max_capacity: u32,
    /// The IAM role: the one RegisterScalableTarget names, else the ECS service-linked role's
    /// ARN (berth does not assume it).
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
    /// When the target was registered, in epoch seconds.
    pub creation_time: f64,
    /// Which kinds of scaling are paused.
    #[serde(default)]
    pub suspended_state: SuspendedState,
    /// The target's ARN (`arn:aws:application-autoscaling:REGION:ACCOUNT:scalable-target/ID`).
    #[serde(rename = "ScalableTargetARN")]
    pub scalable_target_arn: String,
}

impl ScalableTarget {
    /// The ECS cluster and service this target scales.
    pub fn cluster_and_service(&self) -> Option<(&str, &str)> {
        parse_service_resource_id(&self.resource_id)
    }

    /// `desired` clamped into `[min, max]`.
    pub fn clamp(&self, desired: u32) -> u32 {
        desired.clamp(self.min_capacity, self.max_capacity.max(self.min_capacity))
    }
}

// ---------------------------------------------------------------------------------------------
// Scaling activities (written by the autoscaler controller).

/// One scaling activity: a change of a target's capacity, by a policy or a scheduled action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingActivity {
    /// The activity's id (a UUID).
    pub activity_id: String,
    /// Always [`ECS_NAMESPACE`].
    pub service_namespace: String,
    /// The target's resource id.
    pub resource_id: String,
    /// Always [`ECS_DESIRED_COUNT`].
    pub scalable_dimension: String,
    /// What was done (`Setting desired count to 3.`).
    pub description: String,
    /// Why: the alarm or scheduled action that triggered it, as Application Auto Scaling words it.
    pub cause: String,
    /// When it began, in epoch seconds.
    pub start_time: f64,
    /// When it ended, in epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    /// Pending | InProgress | Successful | Overridden | Unfulfilled | Failed.
    pub status_code: String,
    /// More about the status (why it failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// Application Auto Scaling's `Details` (berth leaves it empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_and_targets() {
        assert_eq!(parse_service_resource_id("service/c/s"), Some(("c", "s")));
        assert_eq!(parse_service_resource_id("service/c/s/x"), None);
        assert_eq!(parse_service_resource_id("table/t"), None);
        assert!(validate_ecs_target("ecs", Some("service/a/b"), Some(ECS_DESIRED_COUNT)).is_ok());
        let e = validate_ecs_target("dynamodb", None, None).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
        assert!(validate_ecs_target("ecs", None, Some("ecs:service:Other")).is_err());
        assert!(validate_capacity(0, 10_000).is_ok());
        assert!(validate_capacity(3, 2).is_err());
        assert!(validate_capacity(0, 10_001).is_err());
    }

    #[test]
    fn records_are_pascal_case_with_arn_suffixes() {
        let t = ScalableTarget {
            service_namespace: "ecs".into(),
            resource_id: "service/c/s".into(),
            scalable_dimension: ECS_DESIRED_COUNT.into(),
            min_capacity: 1,
            max_capacity: 3,
            role_arn: "r".into(),
            creation_time: 1.0,
            suspended_state: SuspendedState::default(),
            scalable_target_arn: "a".into(),
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["RoleARN"], "r");
        assert_eq!(v["ScalableTargetARN"], "a");
        assert_eq!(v["SuspendedState"]["DynamicScalingInSuspended"], false);
        assert_eq!(t.cluster_and_service(), Some(("c", "s")));
        assert_eq!(t.clamp(9), 3);
        assert_eq!(
            target_tracking_alarm_name("service/c/s", true, "u"),
            "TargetTracking-service/c/s-AlarmHigh-u"
        );
    }
}
