//! Scaling policies: target tracking and step scaling configurations, their checks, and the
//! metric a policy reads. Split from the records because a policy's rules (metric
//! specifications, step intervals, cooldowns) are most of what PutScalingPolicy validates.

use serde::{Deserialize, Serialize};

use super::metric::{
    metric_from_cloudwatch, target_group_of_label, MetricDimension, MetricKind, MetricRef,
};
use super::{parse_service_resource_id, validation};
use crate::ApiError;

/// An alarm a policy uses (`Alarms` of DescribeScalingPolicies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmRef {
    /// The alarm's name.
    pub alarm_name: String,
    /// The alarm's ARN.
    #[serde(rename = "AlarmARN")]
    pub alarm_arn: String,
}

/// A target tracking policy's predefined metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PredefinedMetric {
    /// `ECSServiceAverageCPUUtilization`, `ECSServiceAverageMemoryUtilization` or
    /// `ALBRequestCountPerTarget`.
    pub predefined_metric_type: String,
    /// For `ALBRequestCountPerTarget`: `app/LB/ID/targetgroup/TG/ID`, the target group to follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_label: Option<String>,
}

/// A target tracking policy's CloudWatch metric (one berth measures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomizedMetric {
    /// The metric's name.
    pub metric_name: String,
    /// The metric's CloudWatch namespace.
    pub namespace: String,
    /// The metric's dimensions.
    #[serde(default)]
    pub dimensions: Vec<MetricDimension>,
    /// `Average`, `Minimum`, `Maximum`, `SampleCount` or `Sum`.
    pub statistic: String,
    /// The metric's unit, echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A target tracking policy's configuration: keep the metric at `target_value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetTrackingConfig {
    /// The value to keep the metric at, in the metric's unit.
    pub target_value: f64,
    /// The metric, if it is a predefined one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predefined_metric_specification: Option<PredefinedMetric>,
    /// The metric, if it is a CloudWatch one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customized_metric_specification: Option<CustomizedMetric>,
    /// Seconds after a scale-out before another (default
    /// [`DEFAULT_COOLDOWN_SECS`](super::DEFAULT_COOLDOWN_SECS)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_cooldown: Option<u32>,
    /// Seconds after a scale-in before another (default
    /// [`DEFAULT_COOLDOWN_SECS`](super::DEFAULT_COOLDOWN_SECS)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in_cooldown: Option<u32>,
    /// Only ever scale out: scale-in is left to other policies or to the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_scale_in: Option<bool>,
}

/// One step of a step scaling policy: the adjustment for a range of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepAdjustment {
    /// The range's lower bound, relative to the alarm's threshold (none: minus infinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_interval_lower_bound: Option<f64>,
    /// The range's upper bound, relative to the alarm's threshold (none: infinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_interval_upper_bound: Option<f64>,
    /// The change of capacity, in the unit of the policy's `adjustment_type`.
    pub scaling_adjustment: i32,
}

/// A step scaling policy's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepScalingConfig {
    /// `ChangeInCapacity`, `PercentChangeInCapacity` or `ExactCapacity`.
    pub adjustment_type: String,
    /// The steps, covering the metric's range without gaps or overlaps.
    #[serde(default)]
    pub step_adjustments: Vec<StepAdjustment>,
    /// With `PercentChangeInCapacity`: the least number of tasks a step changes capacity by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_adjustment_magnitude: Option<i32>,
    /// Seconds after a scaling activity before the policy scales again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<u32>,
    /// `Average`, `Minimum` or `Maximum`, echoed back (the alarm's statistic is the one used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_aggregation_type: Option<String>,
}

/// The `PolicyType` of a target tracking policy.
pub const TARGET_TRACKING: &str = "TargetTrackingScaling";
/// The `PolicyType` of a step scaling policy.
pub const STEP_SCALING: &str = "StepScaling";

/// A scaling policy (PutScalingPolicy), in Application Auto Scaling's wire form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingPolicy {
    /// The policy's ARN.
    #[serde(rename = "PolicyARN")]
    pub policy_arn: String,
    /// The policy's name (unique per target).
    pub policy_name: String,
    /// Always [`ECS_NAMESPACE`](super::ECS_NAMESPACE).
    pub service_namespace: String,
    /// The target's resource id (`service/CLUSTER/SERVICE`).
    pub resource_id: String,
    /// Always [`ECS_DESIRED_COUNT`](super::ECS_DESIRED_COUNT).
    pub scalable_dimension: String,
    /// [`TARGET_TRACKING`] or [`STEP_SCALING`].
    pub policy_type: String,
    /// Set for a target tracking policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_tracking_scaling_policy_configuration: Option<TargetTrackingConfig>,
    /// Set for a step scaling policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_scaling_policy_configuration: Option<StepScalingConfig>,
    /// For target tracking, the two alarms AWS would create; for step scaling, empty in the
    /// store (DescribeScalingPolicies fills in the alarms whose actions name the policy).
    #[serde(default)]
    pub alarms: Vec<AlarmRef>,
    /// When the policy was created, in epoch seconds.
    pub creation_time: f64,
}

impl ScalingPolicy {
    /// The metric a target tracking policy follows, normalised; `None` for step scaling (its
    /// alarms name the metric) or for a metric berth does not measure.
    pub fn metric(&self) -> Option<MetricRef> {
        let tt = self.target_tracking_scaling_policy_configuration.as_ref()?;
        tt.metric(&self.resource_id).ok()
    }
}

impl TargetTrackingConfig {
    /// The metric this configuration follows for the target `resource_id`.
    pub fn metric(&self, resource_id: &str) -> Result<MetricRef, ApiError> {
        match (
            &self.predefined_metric_specification,
            &self.customized_metric_specification,
        ) {
            (Some(p), None) => {
                let service_metric = |kind| {
                    let (cluster, service) = parse_service_resource_id(resource_id)
                        .ok_or_else(|| validation("Invalid resource id."))?;
                    Ok(MetricRef {
                        kind,
                        cluster: Some(cluster.to_owned()),
                        service: Some(service.to_owned()),
                        target_group_arn_suffix: None,
                    })
                };
                match p.predefined_metric_type.as_str() {
                    "ECSServiceAverageCPUUtilization" => service_metric(MetricKind::CpuUtilization),
                    "ECSServiceAverageMemoryUtilization" => {
                        service_metric(MetricKind::MemoryUtilization)
                    }
                    "ALBRequestCountPerTarget" => {
                        let label = p.resource_label.as_deref().ok_or_else(|| {
                            validation("ALBRequestCountPerTarget needs a ResourceLabel.")
                        })?;
                        let tg = target_group_of_label(label).ok_or_else(|| {
                            validation(format!(
                                "Invalid ResourceLabel {label:?}: expected \
                                 app/LB/ID/targetgroup/TG/ID."
                            ))
                        })?;
                        Ok(MetricRef {
                            kind: MetricKind::RequestCountPerTarget,
                            cluster: None,
                            service: None,
                            target_group_arn_suffix: Some(tg.to_owned()),
                        })
                    }
                    other => Err(validation(format!(
                        "Unsupported PredefinedMetricType {other:?} for ECS services: use \
                         ECSServiceAverageCPUUtilization, ECSServiceAverageMemoryUtilization or \
                         ALBRequestCountPerTarget."
                    ))),
                }
            }
            (None, Some(c)) => {
                validate_statistic(&c.statistic)?;
                metric_from_cloudwatch(&c.namespace, &c.metric_name, &c.dimensions)
            }
            _ => Err(validation(
                "Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification \
                 is required.",
            )),
        }
    }

    /// Checks the target value, the cooldowns (0 to 86400 s) and that the metric is one berth
    /// measures.
    pub fn validate(&self, resource_id: &str) -> Result<(), ApiError> {
        if !self.target_value.is_finite() || self.target_value <= 0.0 {
            return Err(validation("TargetValue must be a positive number."));
        }
        for c in [self.scale_in_cooldown, self.scale_out_cooldown]
            .into_iter()
            .flatten()
        {
            if c > 86_400 {
                return Err(validation("Cooldowns must be between 0 and 86400 seconds."));
            }
        }
        self.metric(resource_id).map(drop)
    }
}

fn validate_statistic(s: &str) -> Result<(), ApiError> {
    match s {
        "Average" | "Minimum" | "Maximum" | "SampleCount" | "Sum" => Ok(()),
        _ => Err(validation(format!("Invalid Statistic {s:?}."))),
    }
}

impl StepScalingConfig {
    /// AWS's rules: a known adjustment type, at least one step, steps that neither overlap nor
    /// leave gaps, and at most one unbounded step on each side. Bounds are relative to the
    /// alarm's threshold.
    pub fn validate(&self) -> Result<(), ApiError> {
        match self.adjustment_type.as_str() {
            "ChangeInCapacity" | "ExactCapacity" => {
                if self.min_adjustment_magnitude.is_some() {
                    return Err(validation(
                        "MinAdjustmentMagnitude is only valid with PercentChangeInCapacity.",
                    ));
                }
            }
            "PercentChangeInCapacity" => {}
            other => {
                return Err(validation(format!(
                    "Invalid AdjustmentType {other:?}: use ChangeInCapacity, \
                     PercentChangeInCapacity or ExactCapacity."
                )))
            }
        }
        if let Some(m) = &self.metric_aggregation_type {
            if !matches!(m.as_str(), "Average" | "Minimum" | "Maximum") {
                return Err(validation(format!("Invalid MetricAggregationType {m:?}.")));
            }
        }
        if self.min_adjustment_magnitude.is_some_and(|m| m < 1) {
            return Err(validation("MinAdjustmentMagnitude must be at least 1."));
        }
        if self.step_adjustments.is_empty() {
            return Err(validation("At least one step adjustment is required."));
        }
        let mut steps = self.step_adjustments.clone();
        for s in &steps {
            if let (Some(lo), Some(hi)) =
                (s.metric_interval_lower_bound, s.metric_interval_upper_bound)
            {
                if lo >= hi {
                    return Err(validation(format!(
                        "Step adjustment lower bound {lo} must be less than its upper bound {hi}."
                    )));
                }
            }
            if s.metric_interval_lower_bound.is_none() && s.metric_interval_upper_bound.is_none() {
                if self.step_adjustments.len() > 1 {
                    return Err(validation(
                        "Only a single step adjustment may be unbounded on both sides.",
                    ));
                }
                return Ok(());
            }
        }
        let no_lower = steps
            .iter()
            .filter(|s| s.metric_interval_lower_bound.is_none())
            .count();
        let no_upper = steps
            .iter()
            .filter(|s| s.metric_interval_upper_bound.is_none())
            .count();
        if no_lower > 1 || no_upper > 1 {
            return Err(validation(
                "At most one step adjustment may have a null lower bound, and at most one a null \
                 upper bound.",
            ));
        }
        steps.sort_by(|a, b| {
            let key =
                |s: &StepAdjustment| s.metric_interval_lower_bound.unwrap_or(f64::NEG_INFINITY);
            key(a).total_cmp(&key(b))
        });
        for pair in steps.windows(2) {
            let hi = pair[0].metric_interval_upper_bound.unwrap_or(f64::INFINITY);
            let lo = pair[1]
                .metric_interval_lower_bound
                .unwrap_or(f64::NEG_INFINITY);
            if hi > lo {
                return Err(validation("Step adjustments must not overlap."));
            }
            if hi < lo {
                return Err(validation(
                    "Step adjustments must not have gaps between them.",
                ));
            }
        }
        Ok(())
    }

    /// The adjustment for a metric `value` against an alarm `threshold`, if a step covers it.
    pub fn step_for(&self, value: f64, threshold: f64) -> Option<&StepAdjustment> {
        let d = value - threshold;
        self.step_adjustments.iter().find(|s| {
            s.metric_interval_lower_bound.is_none_or(|lo| d >= lo)
                && s.metric_interval_upper_bound.is_none_or(|hi| d < hi)
        })
    }
}

/// The name of a target tracking policy's alarm (`high`: the scale-out one).
pub fn target_tracking_alarm_name(resource_id: &str, high: bool, uuid: &str) -> String {
    let side = if high { "AlarmHigh" } else { "AlarmLow" };
    format!("TargetTracking-{resource_id}-{side}-{uuid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(lo: Option<f64>, hi: Option<f64>, adj: i32) -> StepAdjustment {
        StepAdjustment {
            metric_interval_lower_bound: lo,
            metric_interval_upper_bound: hi,
            scaling_adjustment: adj,
        }
    }

    fn steps(s: Vec<StepAdjustment>) -> StepScalingConfig {
        StepScalingConfig {
            adjustment_type: "ChangeInCapacity".into(),
            step_adjustments: s,
            min_adjustment_magnitude: None,
            cooldown: Some(60),
            metric_aggregation_type: None,
        }
    }

    #[test]
    fn step_adjustments_validate() {
        assert!(steps(vec![
            step(Some(0.0), Some(10.0), 1),
            step(Some(10.0), None, 3)
        ])
        .validate()
        .is_ok());
        assert!(
            steps(vec![step(None, Some(0.0), -1), step(Some(0.0), None, 1)])
                .validate()
                .is_ok()
        );
        assert!(steps(vec![step(None, None, 1)]).validate().is_ok());
        // Overlap, gap, two unbounded on one side, empty.
        assert!(steps(vec![
            step(Some(0.0), Some(10.0), 1),
            step(Some(5.0), None, 2)
        ])
        .validate()
        .is_err());
        assert!(steps(vec![
            step(Some(0.0), Some(10.0), 1),
            step(Some(20.0), None, 2)
        ])
        .validate()
        .is_err());
        assert!(
            steps(vec![step(Some(0.0), None, 1), step(Some(10.0), None, 2)])
                .validate()
                .is_err()
        );
        assert!(steps(vec![]).validate().is_err());
        let mut c = steps(vec![step(Some(0.0), None, 1)]);
        c.adjustment_type = "Bogus".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn step_for_picks_the_interval() {
        let c = steps(vec![
            step(Some(0.0), Some(10.0), 1),
            step(Some(10.0), None, 3),
        ]);
        assert_eq!(
            c.step_for(75.0, 70.0).map(|s| s.scaling_adjustment),
            Some(1)
        );
        assert_eq!(
            c.step_for(95.0, 70.0).map(|s| s.scaling_adjustment),
            Some(3)
        );
        assert_eq!(c.step_for(60.0, 70.0), None);
    }

    #[test]
    fn metrics_normalise() {
        let tt = |p: &str, label: Option<&str>| TargetTrackingConfig {
            target_value: 50.0,
            predefined_metric_specification: Some(PredefinedMetric {
                predefined_metric_type: p.into(),
                resource_label: label.map(str::to_owned),
            }),
            customized_metric_specification: None,
            scale_out_cooldown: None,
            scale_in_cooldown: None,
            disable_scale_in: None,
        };
        let m = tt("ECSServiceAverageCPUUtilization", None)
            .metric("service/c/web")
            .unwrap();
        assert_eq!(m.kind, MetricKind::CpuUtilization);
        assert_eq!(
            (m.cluster.as_deref(), m.service.as_deref()),
            (Some("c"), Some("web"))
        );
        let m = tt(
            "ALBRequestCountPerTarget",
            Some("app/lb/0123/targetgroup/tg/4567"),
        )
        .metric("service/c/web")
        .unwrap();
        assert_eq!(m.kind, MetricKind::RequestCountPerTarget);
        assert_eq!(
            m.target_group_arn_suffix.as_deref(),
            Some("targetgroup/tg/4567")
        );
        assert!(tt("ALBRequestCountPerTarget", None)
            .metric("service/c/web")
            .is_err());
        assert!(tt("DynamoDBReadCapacityUtilization", None)
            .validate("service/c/web")
            .is_err());
        let custom = TargetTrackingConfig {
            predefined_metric_specification: None,
            customized_metric_specification: Some(CustomizedMetric {
                metric_name: "MemoryUtilization".into(),
                namespace: "AWS/ECS".into(),
                dimensions: vec![
                    MetricDimension {
                        name: "ClusterName".into(),
                        value: "c".into(),
                    },
                    MetricDimension {
                        name: "ServiceName".into(),
                        value: "web".into(),
                    },
                ],
                statistic: "Average".into(),
                unit: None,
            }),
            ..tt("x", None)
        };
        let m = custom.metric("service/c/web").unwrap();
        assert_eq!(m.kind, MetricKind::MemoryUtilization);
        assert!(metric_from_cloudwatch("AWS/EC2", "CPUUtilization", &[]).is_err());
    }
}
