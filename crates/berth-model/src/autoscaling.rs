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

use serde::{Deserialize, Serialize};

use crate::{ApiError, ErrorCode};

pub const ECS_NAMESPACE: &str = "ecs";
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SuspendedState {
    #[serde(default)]
    pub dynamic_scaling_in_suspended: bool,
    #[serde(default)]
    pub dynamic_scaling_out_suspended: bool,
    #[serde(default)]
    pub scheduled_scaling_suspended: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTarget {
    pub service_namespace: String,
    pub resource_id: String,
    pub scalable_dimension: String,
    pub min_capacity: u32,
    pub max_capacity: u32,
    #[serde(rename = "RoleARN")]
    pub role_arn: String,
    pub creation_time: f64,
    #[serde(default)]
    pub suspended_state: SuspendedState,
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
// Metrics: what berth can measure, and the normalised form the controller reads.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MetricKind {
    CpuUtilization,
    MemoryUtilization,
    RequestCountPerTarget,
}

/// A metric berth can measure: the kind, and the service or target group it is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MetricRef {
    pub kind: MetricKind,
    pub cluster: Option<String>,
    pub service: Option<String>,
    /// `targetgroup/NAME/ID`, as CloudWatch's `TargetGroup` dimension holds it.
    pub target_group_arn_suffix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDimension {
    pub name: String,
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
// Scaling policies.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmRef {
    pub alarm_name: String,
    #[serde(rename = "AlarmARN")]
    pub alarm_arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PredefinedMetric {
    pub predefined_metric_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomizedMetric {
    pub metric_name: String,
    pub namespace: String,
    #[serde(default)]
    pub dimensions: Vec<MetricDimension>,
    pub statistic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetTrackingConfig {
    pub target_value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predefined_metric_specification: Option<PredefinedMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customized_metric_specification: Option<CustomizedMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_cooldown: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in_cooldown: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_scale_in: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepAdjustment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_interval_lower_bound: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_interval_upper_bound: Option<f64>,
    pub scaling_adjustment: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepScalingConfig {
    pub adjustment_type: String,
    #[serde(default)]
    pub step_adjustments: Vec<StepAdjustment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_adjustment_magnitude: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_aggregation_type: Option<String>,
}

pub const TARGET_TRACKING: &str = "TargetTrackingScaling";
pub const STEP_SCALING: &str = "StepScaling";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingPolicy {
    #[serde(rename = "PolicyARN")]
    pub policy_arn: String,
    pub policy_name: String,
    pub service_namespace: String,
    pub resource_id: String,
    pub scalable_dimension: String,
    pub policy_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_tracking_scaling_policy_configuration: Option<TargetTrackingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_scaling_policy_configuration: Option<StepScalingConfig>,
    /// For target tracking, the two alarms AWS would create; for step scaling, empty in the
    /// store (DescribeScalingPolicies fills in the alarms whose actions name the policy).
    #[serde(default)]
    pub alarms: Vec<AlarmRef>,
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

// ---------------------------------------------------------------------------------------------
// Scheduled actions.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTargetAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_capacity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduledAction {
    pub scheduled_action_name: String,
    #[serde(rename = "ScheduledActionARN")]
    pub scheduled_action_arn: String,
    pub service_namespace: String,
    pub schedule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    pub resource_id: String,
    pub scalable_dimension: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalable_target_action: Option<ScalableTargetAction>,
    pub creation_time: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Minutes,
    Hours,
    Days,
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `at(yyyy-mm-ddThh:mm:ss)`: once, at this many seconds after the epoch, read as UTC
    /// (the action's `Timezone` shifts it).
    At(i64),
    /// `rate(N unit)`: every N units.
    Rate { value: u32, unit: RateUnit },
    /// `cron(min hour day-of-month month day-of-week year)`: the six fields as given.
    Cron(Vec<String>),
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = |why: &str| validation(format!("Invalid schedule expression {s:?}: {why}"));
        let inner = |p: &str| {
            s.strip_prefix(p)
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim)
        };
        if let Some(t) = inner("at(") {
            return parse_at(t)
                .map(Schedule::At)
                .ok_or_else(|| bad("expected at(yyyy-mm-ddThh:mm:ss)."));
        }
        if let Some(r) = inner("rate(") {
            let mut parts = r.split_whitespace();
            let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("expected rate(N minutes|hours|days)."));
            };
            let value: u32 = n
                .parse()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| bad("the rate must be a positive whole number."))?;
            let unit = match (unit, value) {
                ("minute", 1) | ("minutes", 2..) => RateUnit::Minutes,
                ("hour", 1) | ("hours", 2..) => RateUnit::Hours,
                ("day", 1) | ("days", 2..) => RateUnit::Days,
                _ => {
                    return Err(bad(
                        "the unit must be minute(s), hour(s) or day(s), singular only for 1.",
                    ))
                }
            };
            return Ok(Schedule::Rate { value, unit });
        }
        if let Some(c) = inner("cron(") {
            let fields: Vec<String> = c.split_whitespace().map(str::to_owned).collect();
            if fields.len() != 6 {
                return Err(bad(
                    "cron needs six fields: minutes hours day-of-month month day-of-week year.",
                ));
            }
            let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199)];
            for (i, (f, (lo, hi))) in fields.iter().zip(ranges).enumerate() {
                if !cron_field_ok(f, lo, hi, i) {
                    return Err(bad(&format!("cron field {} ({f:?}) is not valid.", i + 1)));
                }
            }
            if (fields[2] == "?") == (fields[4] == "?") {
                return Err(bad(
                    "exactly one of day-of-month and day-of-week must be '?'.",
                ));
            }
            return Ok(Schedule::Cron(fields));
        }
        Err(bad("expected at(...), rate(...) or cron(...)."))
    }

    /// The period of a `rate(...)` schedule in seconds.
    pub fn rate_secs(&self) -> Option<u64> {
        match self {
            Schedule::Rate { value, unit } => Some(
                u64::from(*value)
                    * match unit {
                        RateUnit::Minutes => 60,
                        RateUnit::Hours => 3600,
                        RateUnit::Days => 86_400,
                    },
            ),
            _ => None,
        }
    }
}

fn cron_field_ok(f: &str, lo: u32, hi: u32, index: usize) -> bool {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    if f == "?" {
        return index == 2 || index == 4;
    }
    if f == "L" && (index == 2 || index == 4) {
        return true;
    }
    let value_ok = |v: &str| -> bool {
        let v = v.to_ascii_uppercase();
        if index == 3 && MONTHS.contains(&v.as_str()) {
            return true;
        }
        if index == 4 && DAYS.contains(&v.as_str()) {
            return true;
        }
        // `5L` (last friday), `3#2` (second tuesday), `15W` (nearest weekday).
        let v = match index {
            4 => v
                .split('#')
                .next()
                .unwrap_or("")
                .trim_end_matches('L')
                .to_owned(),
            2 => v.trim_end_matches('W').to_owned(),
            _ => v,
        };
        v.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n))
    };
    f.split(',').all(|part| {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        if step.is_some_and(|s| s.parse::<u32>().map_or(true, |n| n == 0)) {
            return false;
        }
        if range == "*" {
            return true;
        }
        match range.split_once('-') {
            Some((a, b)) => value_ok(a) && value_ok(b),
            None => value_ok(range),
        }
    })
}

/// `yyyy-mm-ddThh:mm:ss` as seconds after the epoch (UTC).
pub fn parse_at(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let p = s.get(r)?;
        p.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| p.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > days_in[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

// ---------------------------------------------------------------------------------------------
// Scaling activities (written by the autoscaler controller).

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingActivity {
    pub activity_id: String,
    pub service_namespace: String,
    pub resource_id: String,
    pub scalable_dimension: String,
    pub description: String,
    pub cause: String,
    pub start_time: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    /// Pending | InProgress | Successful | Overridden | Unfulfilled | Failed.
    pub status_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Metric alarms (berth's extension; CloudWatch's PutMetricAlarm in its own JSON).

pub const ALARM_OK: &str = "OK";
pub const ALARM_ALARM: &str = "ALARM";
pub const ALARM_INSUFFICIENT_DATA: &str = "INSUFFICIENT_DATA";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricAlarm {
    pub alarm_name: String,
    pub alarm_arn: String,
    pub namespace: String,
    pub metric_name: String,
    #[serde(default)]
    pub dimensions: Vec<MetricDimension>,
    pub statistic: String,
    pub period: u32,
    pub evaluation_periods: u32,
    pub threshold: f64,
    pub comparison_operator: String,
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    pub state_value: String,
    #[serde(default)]
    pub state_reason: String,
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
    fn schedules_parse() {
        assert_eq!(
            Schedule::parse("at(1970-01-02T00:00:01)"),
            Ok(Schedule::At(86_401))
        );
        assert_eq!(
            Schedule::parse("at(2024-02-29T12:30:00)"),
            Ok(Schedule::At(1_709_209_800))
        );
        assert!(Schedule::parse("at(2023-02-29T12:30:00)").is_err());
        assert!(Schedule::parse("at(2023-02-28 12:30:00)").is_err());
        assert_eq!(
            Schedule::parse("rate(5 minutes)").unwrap().rate_secs(),
            Some(300)
        );
        assert_eq!(
            Schedule::parse("rate(1 day)").unwrap().rate_secs(),
            Some(86_400)
        );
        assert!(Schedule::parse("rate(1 days)").is_err());
        assert!(Schedule::parse("rate(0 minutes)").is_err());
        assert!(Schedule::parse("rate(5 weeks)").is_err());
        assert!(Schedule::parse("cron(0 18 ? * MON-FRI *)").is_ok());
        assert!(Schedule::parse("cron(0/15 * * * ? *)").is_ok());
        assert!(Schedule::parse("cron(0 10 ? * 6L 2030)").is_ok());
        assert!(Schedule::parse("cron(0 18 * * MON-FRI *)").is_err());
        assert!(Schedule::parse("cron(0 18 ? * MON-FRI)").is_err());
        assert!(Schedule::parse("cron(61 18 ? * MON *)").is_err());
        assert!(Schedule::parse("cron(0 18 ? 13 MON *)").is_err());
        assert!(Schedule::parse("every day").is_err());
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
