//! The plain inputs and outputs.

use thiserror::Error;

/// The scalable target: a service's desired count and its bounds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// `MinCapacity`: the fewest tasks any scaling may leave.
    pub min: u32,
    /// `MaxCapacity`: the most tasks any scaling may ask for.
    pub max: u32,
    /// `SuspendedState.DynamicScalingInSuspended`.
    pub scale_in_suspended: bool,
    /// `SuspendedState.DynamicScalingOutSuspended`.
    pub scale_out_suspended: bool,
    /// `SuspendedState.ScheduledScalingSuspended`.
    pub scheduled_suspended: bool,
}

impl Target {
    /// `n` within `[min, max]`. Never panics: with `min > max`, `max` wins.
    pub fn clamp(&self, n: u32) -> u32 {
        n.max(self.min).min(self.max)
    }
}

/// A target tracking policy (`TargetTrackingScalingPolicyConfiguration`). Cooldowns in
/// seconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetTracking {
    /// `PolicyName`; copied into each [`Proposal`] and the activity's cause text.
    pub name: String,
    /// `TargetValue`: where to keep the metric, in the metric's unit (e.g. percent CPU).
    /// Must be positive.
    pub target_value: f64,
    /// `ScaleOutCooldown`: after a scale-out, no scale-in, and further scale-outs count the
    /// capacity it added.
    pub scale_out_cooldown: f64,
    /// `ScaleInCooldown`: no scale-in within this long of the policy's last scale-in.
    pub scale_in_cooldown: f64,
    /// `DisableScaleIn`: the policy only scales out, and has no say in others' scale-in.
    pub disable_scale_in: bool,
}

impl TargetTracking {
    /// Whether this policy's "hold" blocks other policies from scaling in (see [`combine`]):
    /// a policy with scale-in disabled has no say.
    ///
    /// [`combine`]: crate::combine
    pub fn votes_on_scale_in(&self) -> bool {
        !self.disable_scale_in
    }

    /// Validation as PutScalingPolicy does it.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !(self.target_value.is_finite() && self.target_value > 0.0) {
            return Err(PolicyError::TargetValue(self.target_value));
        }
        if !(self.scale_out_cooldown >= 0.0 && self.scale_in_cooldown >= 0.0) {
            return Err(PolicyError::Cooldown);
        }
        Ok(())
    }
}

/// How a step's adjustment changes the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AdjustmentType {
    /// Add the adjustment (negative removes).
    #[default]
    ChangeInCapacity,
    /// Add the adjustment percent of the current capacity, rounded as AWS does: above 1
    /// down, in (0, 1] to 1, in [-1, 0) to -1, below -1 up (towards zero); then at least
    /// `min_adjustment_magnitude` in size.
    PercentChangeInCapacity,
    /// Set the capacity to the adjustment.
    ExactCapacity,
}

/// One step: applies when `alarm value − threshold` lies in `[lower, upper)` (above the
/// threshold) or `(lower, upper]` (below it), as AWS defines. `None` is unbounded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Step {
    /// `MetricIntervalLowerBound`, relative to the alarm threshold.
    pub lower: Option<f64>,
    /// `MetricIntervalUpperBound`, relative to the alarm threshold.
    pub upper: Option<f64>,
    /// `ScalingAdjustment`: tasks, percent or exact count, per the policy's
    /// [`AdjustmentType`].
    pub adjustment: i32,
}

/// A step scaling policy (`StepScalingPolicyConfiguration`). Cooldown in seconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepPolicy {
    /// `PolicyName`; copied into each [`Proposal`] and the activity's cause text.
    pub name: String,
    /// `AdjustmentType`: how every step's adjustment is read.
    pub adjustment_type: AdjustmentType,
    /// `StepAdjustments`, in any order; their intervals must not overlap.
    pub steps: Vec<Step>,
    /// `MinAdjustmentMagnitude`: the fewest tasks a `PercentChangeInCapacity` step changes
    /// by. Only valid with that adjustment type.
    pub min_adjustment_magnitude: Option<i32>,
    /// `Cooldown`: within it of the policy's last activity, no scale-in, and scale-out
    /// counts the capacity already added.
    pub cooldown: f64,
}

impl StepPolicy {
    /// Validation as PutScalingPolicy does it: at least one step, each with `lower < upper`,
    /// intervals that do not overlap, at most one unbounded below and one unbounded above,
    /// and `min_adjustment_magnitude` only with `PercentChangeInCapacity`.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.steps.is_empty() {
            return Err(PolicyError::NoSteps);
        }
        if self.min_adjustment_magnitude.is_some()
            && self.adjustment_type != AdjustmentType::PercentChangeInCapacity
        {
            return Err(PolicyError::MinAdjustmentMagnitude);
        }
        if self.cooldown.is_nan() || self.cooldown < 0.0 {
            return Err(PolicyError::Cooldown);
        }
        let lo = |s: &Step| s.lower.unwrap_or(f64::NEG_INFINITY);
        let hi = |s: &Step| s.upper.unwrap_or(f64::INFINITY);
        let mut steps: Vec<&Step> = self.steps.iter().collect();
        if steps
            .iter()
            .any(|s| lo(s).is_nan() || hi(s).is_nan() || lo(s) >= hi(s))
        {
            return Err(PolicyError::StepBounds);
        }
        steps.sort_by(|a, b| lo(a).total_cmp(&lo(b)));
        if steps.windows(2).any(|w| hi(w[0]) > lo(w[1])) {
            return Err(PolicyError::StepOverlap);
        }
        Ok(())
    }
}

/// A policy that PutScalingPolicy would refuse (`ValidationException`).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PolicyError {
    /// `TargetValue` (the value given) is not a finite positive number.
    #[error("target value {0} must be a positive number")]
    TargetValue(f64),
    /// A cooldown is negative or NaN.
    #[error("cooldowns must not be negative")]
    Cooldown,
    /// A step scaling policy without `StepAdjustments`.
    #[error("a step scaling policy needs at least one step adjustment")]
    NoSteps,
    /// A step whose lower bound is not below its upper bound (or is NaN).
    #[error("each step adjustment's lower bound must be below its upper bound")]
    StepBounds,
    /// Two steps' intervals overlap.
    #[error("step adjustment intervals must not overlap")]
    StepOverlap,
    /// `MinAdjustmentMagnitude` set with an adjustment type other than
    /// `PercentChangeInCapacity`.
    #[error("MinAdjustmentMagnitude is only valid with PercentChangeInCapacity")]
    MinAdjustmentMagnitude,
}

/// How target tracking turns a metric series into alarms.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Seconds per datapoint (AWS: 60; berth: 10 by default).
    pub period: f64,
    /// Datapoints above the target that trigger a scale-out (AWS: 3).
    pub scale_out_datapoints: usize,
    /// Datapoints below `target × scale_in_ratio` that trigger a scale-in (AWS: 15).
    pub scale_in_datapoints: usize,
    /// Where the low alarm sits relative to the target (AWS: 0.9).
    pub scale_in_ratio: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            period: 10.0,
            scale_out_datapoints: 3,
            scale_in_datapoints: 15,
            scale_in_ratio: 0.9,
        }
    }
}

/// What a policy remembers between evaluations; the caller keeps one per policy and
/// updates it with [`PolicyState::applied`]. Times in unix seconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyState {
    /// Last scale-out by this target tracking policy.
    pub last_scale_out: Option<f64>,
    /// Last scale-in by this target tracking policy.
    pub last_scale_in: Option<f64>,
    /// Last activity by this step policy.
    pub last_step: Option<f64>,
    /// Desired count before this policy's last scale-out: during the scale-out cooldown the
    /// next scale-out is measured from it (when unknown, from the current count).
    pub scale_out_base: Option<u32>,
}

impl PolicyState {
    /// Records that `p` was applied at `now`, moving the desired count from `from`.
    pub fn applied(&mut self, p: &Proposal, from: u32, now: f64) {
        match (p.alarm, p.direction) {
            (AlarmKind::Step, d) => {
                self.last_step = Some(now);
                if d == Direction::Out {
                    self.scale_out_base = Some(from);
                }
            }
            (_, Direction::Out) => {
                self.last_scale_out = Some(now);
                self.scale_out_base = Some(from);
            }
            (_, Direction::In) => self.last_scale_in = Some(now),
        }
    }
}

/// Which way a proposal moves the desired count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Scale out: more tasks.
    Out,
    /// Scale in: fewer tasks.
    In,
}

/// Which alarm triggered a proposal: a target tracking policy's high or low alarm, or a step
/// policy's alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmKind {
    /// A target tracking policy's `AlarmHigh`: the metric is above the target (scale-out).
    High,
    /// A target tracking policy's `AlarmLow`: the metric is below `target × scale_in_ratio`
    /// (scale-in).
    Low,
    /// A step policy's alarm, either direction.
    Step,
}

/// "Set the desired count to `desired`", from policy `policy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// Name of the policy that proposes it.
    pub policy: String,
    /// The new desired count, already clamped to the target's `[min, max]`.
    pub desired: u32,
    /// Whether `desired` is above or below the current count (never equal).
    pub direction: Direction,
    /// Which alarm triggered it; decides the cooldown [`PolicyState::applied`] records and
    /// the alarm the cause text names.
    pub alarm: AlarmKind,
    /// The metric value that triggered it (for step policies, the alarm's value).
    pub metric_value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(steps: &[(Option<f64>, Option<f64>)]) -> StepPolicy {
        StepPolicy {
            name: "s".into(),
            steps: steps
                .iter()
                .map(|&(lower, upper)| Step {
                    lower,
                    upper,
                    adjustment: 1,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn step_policies_validate_like_put_scaling_policy() {
        assert_eq!(
            sp(&[(Some(0.0), Some(10.0)), (Some(10.0), None)]).validate(),
            Ok(())
        );
        assert_eq!(sp(&[]).validate(), Err(PolicyError::NoSteps));
        assert_eq!(
            sp(&[(Some(0.0), Some(10.0)), (Some(5.0), None)]).validate(),
            Err(PolicyError::StepOverlap)
        );
        assert_eq!(
            sp(&[(None, None), (Some(1.0), None)]).validate(),
            Err(PolicyError::StepOverlap)
        );
        assert_eq!(
            sp(&[(Some(3.0), Some(3.0))]).validate(),
            Err(PolicyError::StepBounds)
        );
        let mut p = sp(&[(Some(0.0), None)]);
        p.min_adjustment_magnitude = Some(2);
        assert_eq!(p.validate(), Err(PolicyError::MinAdjustmentMagnitude));
        let tt = TargetTracking {
            target_value: 0.0,
            ..Default::default()
        };
        assert_eq!(tt.validate(), Err(PolicyError::TargetValue(0.0)));
    }

    #[test]
    fn clamp_never_panics() {
        let t = Target {
            min: 5,
            max: 2,
            ..Default::default()
        };
        assert_eq!(t.clamp(0), 2);
    }
}
