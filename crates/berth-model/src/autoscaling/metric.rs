//! Metrics berth can measure for a service (CPU, memory, requests per target), normalised from
//! CloudWatch's namespace, name and dimensions into the [`MetricRef`] the autoscaler reads, and
//! berth's metric alarms over them (CloudWatch's PutMetricAlarm, for step scaling). Split from
//! the records because both policies and alarms resolve metrics through it.

use serde::{Deserialize, Serialize};

use super::validation;
use crate::ApiError;

/// What a metric measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MetricKind {
    /// `AWS/ECS` `CPUUtilization`: the service's tasks' CPU use, in percent of what they reserve.
    CpuUtilization,
    /// `AWS/ECS` `MemoryUtilization`: the service's tasks' memory use, in percent of what they
    /// reserve.
    MemoryUtilization,
    /// `AWS/ApplicationELB` `RequestCountPerTarget`: a target group's requests per healthy target.
    RequestCountPerTarget,
}

/// A metric berth can measure: the kind, and the service or target group it is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MetricRef {
    /// What is measured.
    pub kind: MetricKind,
    /// The ECS cluster (CPU and memory).
    pub cluster: Option<String>,
    /// The ECS service (CPU and memory).
    pub service: Option<String>,
    /// `targetgroup/NAME/ID`, as CloudWatch's `TargetGroup` dimension holds it.
    pub target_group_arn_suffix: Option<String>,
}

/// A CloudWatch dimension (`ClusterName`, `ServiceName`, `TargetGroup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDimension {
    /// The dimension's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// The `targetgroup/NAME/ID` part of an ALB resource label `app/LB/ID/targetgroup/TG/ID`.
pub fn target_group_of_label(label: &str) -> Option<&str> {
    let idx = label.find("/targetgroup/")?;
    let (lb, tg) = (&label[..idx], &label[idx + 1..]);
    let lb_ok = lb.starts_with("app/") && lb.split('/').count() == 3;
    let tg_ok = tg.split('/').count() == 3 && tg.split('/').all(|p| !p.is_empty());
    (lb_ok && tg_ok).then_some(tg)
}

/// Normalises a CloudWatch metric (namespace, name, dimensions) into what berth measures.
pub fn metric_from_cloudwatch(
    namespace: &str,
    metric_name: &str,
    dimensions: &[MetricDimension],
) -> Result<MetricRef, ApiError> {
    let dim = |n: &str| {
        dimensions
            .iter()
            .find(|d| d.name == n)
            .map(|d| d.value.clone())
    };
    match (namespace, metric_name) {
        ("AWS/ECS", "CPUUtilization" | "MemoryUtilization") => {
            let (Some(cluster), Some(service)) = (dim("ClusterName"), dim("ServiceName")) else {
                return Err(validation(format!(
                    "Metric AWS/ECS {metric_name} needs the dimensions ClusterName and ServiceName."
                )));
            };
            Ok(MetricRef {
                kind: if metric_name == "CPUUtilization" {
                    MetricKind::CpuUtilization
                } else {
                    MetricKind::MemoryUtilization
                },
                cluster: Some(cluster),
                service: Some(service),
                target_group_arn_suffix: None,
            })
        }
        ("AWS/ApplicationELB", "RequestCountPerTarget") => {
            let Some(tg) = dim("TargetGroup") else {
                return Err(validation(
                    "Metric AWS/ApplicationELB RequestCountPerTarget needs the dimension TargetGroup.",
                ));
            };
            if !tg.starts_with("targetgroup/") {
                return Err(validation(format!(
                    "TargetGroup dimension {tg:?} must be targetgroup/NAME/ID."
                )));
            }
            Ok(MetricRef {
                kind: MetricKind::RequestCountPerTarget,
                cluster: None,
                service: None,
                target_group_arn_suffix: Some(tg),
            })
        }
        _ => Err(validation(format!(
            "berth does not measure the metric {namespace} {metric_name}: use AWS/ECS \
             CPUUtilization or MemoryUtilization, or AWS/ApplicationELB RequestCountPerTarget."
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Metric alarms (berth's extension; CloudWatch's PutMetricAlarm in its own JSON).

/// An alarm's state: the metric is within its threshold.
pub const ALARM_OK: &str = "OK";
/// An alarm's state: the metric breaches its threshold; its actions run.
pub const ALARM_ALARM: &str = "ALARM";
/// An alarm's state: not enough data points yet (every new alarm starts here).
pub const ALARM_INSUFFICIENT_DATA: &str = "INSUFFICIENT_DATA";

/// A metric alarm (berth's PutMetricAlarm), stored in CloudWatch's JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricAlarm {
    /// The alarm's name (unique in the region).
    pub alarm_name: String,
    /// The alarm's ARN.
    pub alarm_arn: String,
    /// The CloudWatch namespace of its metric (`AWS/ECS`, `AWS/ApplicationELB`).
    pub namespace: String,
    /// The metric's name.
    pub metric_name: String,
    /// The metric's dimensions.
    #[serde(default)]
    pub dimensions: Vec<MetricDimension>,
    /// The statistic evaluated: `Average`, `Sum`, `Minimum` or `Maximum` (others read as
    /// `Average`).
    pub statistic: String,
    /// The length of one evaluation period, in seconds.
    pub period: u32,
    /// How many consecutive periods must breach before the alarm fires.
    pub evaluation_periods: u32,
    /// The value the statistic is compared with.
    pub threshold: f64,
    /// How the statistic is compared with the threshold (`GreaterThanOrEqualToThreshold`, ...).
    pub comparison_operator: String,
    /// The ARNs of the step scaling policies run while the alarm is in ALARM.
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    /// OK, ALARM or INSUFFICIENT_DATA, as the autoscaler last evaluated it.
    pub state_value: String,
    /// Why the alarm is in its state.
    #[serde(default)]
    pub state_reason: String,
    /// When the state last changed, in epoch seconds.
    pub state_updated_timestamp: f64,
}

impl MetricAlarm {
    /// The metric this alarm watches, normalised.
    pub fn metric(&self) -> Option<MetricRef> {
        metric_from_cloudwatch(&self.namespace, &self.metric_name, &self.dimensions).ok()
    }

    /// Whether `value` breaches the threshold under the comparison operator.
    pub fn breached(&self, value: f64) -> bool {
        let t = self.threshold;
        match self.comparison_operator.as_str() {
            "GreaterThanOrEqualToThreshold" => value >= t,
            "GreaterThanThreshold" => value > t,
            "LessThanThreshold" => value < t,
            "LessThanOrEqualToThreshold" => value <= t,
            _ => false,
        }
    }

    /// Checks a new alarm's fields (the ARN, state and timestamp are berth's).
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.alarm_name.is_empty() || self.alarm_name.len() > 255 {
            return Err(validation("AlarmName must be 1 to 255 characters."));
        }
        if !matches!(
            self.comparison_operator.as_str(),
            "GreaterThanOrEqualToThreshold"
                | "GreaterThanThreshold"
                | "LessThanThreshold"
                | "LessThanOrEqualToThreshold"
        ) {
            return Err(validation(format!(
                "Invalid ComparisonOperator {:?}.",
                self.comparison_operator
            )));
        }
        if !matches!(
            self.statistic.as_str(),
            "Average" | "Sum" | "Maximum" | "Minimum"
        ) {
            return Err(validation(format!(
                "Invalid Statistic {:?}: use Average, Sum, Maximum or Minimum.",
                self.statistic
            )));
        }
        if self.period < 10 {
            return Err(validation("Period must be at least 10 seconds."));
        }
        if self.evaluation_periods < 1 {
            return Err(validation("EvaluationPeriods must be at least 1."));
        }
        if !self.threshold.is_finite() {
            return Err(validation("Threshold must be a number."));
        }
        metric_from_cloudwatch(&self.namespace, &self.metric_name, &self.dimensions).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_compare() {
        let mut a = MetricAlarm {
            alarm_name: "hi".into(),
            alarm_arn: "arn".into(),
            namespace: "AWS/ECS".into(),
            metric_name: "CPUUtilization".into(),
            dimensions: vec![
                MetricDimension {
                    name: "ClusterName".into(),
                    value: "c".into(),
                },
                MetricDimension {
                    name: "ServiceName".into(),
                    value: "s".into(),
                },
            ],
            statistic: "Average".into(),
            period: 60,
            evaluation_periods: 1,
            threshold: 70.0,
            comparison_operator: "GreaterThanOrEqualToThreshold".into(),
            alarm_actions: vec![],
            state_value: ALARM_INSUFFICIENT_DATA.into(),
            state_reason: String::new(),
            state_updated_timestamp: 0.0,
        };
        assert!(a.validate().is_ok());
        assert!(a.breached(70.0) && !a.breached(69.9));
        a.comparison_operator = "GreaterThanThreshold".into();
        assert!(!a.breached(70.0) && a.breached(70.1));
        a.comparison_operator = "LessThanThreshold".into();
        assert!(a.breached(69.0) && !a.breached(70.0));
        a.comparison_operator = "LessThanOrEqualToThreshold".into();
        assert!(a.breached(70.0) && !a.breached(71.0));
        assert_eq!(a.metric().map(|m| m.kind), Some(MetricKind::CpuUtilization));
        a.period = 5;
        assert!(a.validate().is_err());
    }
}
