//! berth's service auto scaling decisions, as pure functions with Application Auto Scaling
//! semantics.
//!
//! The autoscaling controller reads a service's scalable target, its policies and recent
//! metric datapoints, and must decide "set the desired count to N, because ...". That
//! decision is arithmetic on plain data, so it lives here, free of the store, the clock and
//! async: the controller converts berth-model types into these structs, calls
//! [`target_tracking`] / [`step`] per policy, merges the answers with [`combine`], applies
//! the result, and records it with [`PolicyState::applied`]. Tests replay recorded metric
//! series against the same functions.
//!
//! **Start with [`target_tracking`]**, then [`combine`].
//!
//! # Rules, as AWS documents them
//! - **Target tracking** keeps a metric near a target. It scales out when the last
//!   [`Settings::scale_out_datapoints`] (3) datapoints are all above the target, to
//!   `ceil(current × metric / target)` (at least one more task); it scales in when the last
//!   [`Settings::scale_in_datapoints`] (15) are all below `target × scale_in_ratio` (90%),
//!   to `ceil(current × metric / target)` (at most one fewer, at least one while the metric
//!   is positive), so it never removes tasks the metric still needs. A short spike cannot
//!   scale out and a brief lull cannot scale in.
//! - **Cooldowns.** Scale-in waits for both cooldowns. During the scale-out cooldown the
//!   capacity just added counts towards the next scale-out: the need is measured from the
//!   count before the previous scale-out ([`PolicyState::scale_out_base`]) — a target
//!   tracking policy's `ceil(base × metric / target)`, a step policy's adjustment applied
//!   to `base` — and scales out again only if it exceeds the current count.
//! - **Step scaling** applies the step whose interval holds `alarm value − threshold`.
//! - **Several policies**: scale out if any policy says out (the largest wins); scale in only
//!   if every policy that votes on scale-in says in (the largest, i.e. most careful, wins).
//! - Everything is clamped to the target's `[min, max]`; suspended directions propose
//!   nothing; a result equal to the current count is no proposal.
//!
//! Datapoints are `(time, value)` pairs, ascending, one per [`Settings::period`]; a
//! datapoint older than `(n + 1) × period` before `now` does not count towards a window of
//! `n`, so a stale series means insufficient data, never a decision.

#![warn(missing_docs)]

mod alarm;
mod policy;
mod scheduled;
mod stepping;
mod text;
mod tracking;

pub use alarm::{alarm_state, AlarmState, Comparison};
pub use policy::{
    AdjustmentType, AlarmKind, Direction, PolicyError, PolicyState, Proposal, Settings, Step,
    StepPolicy, Target, TargetTracking,
};
pub use scheduled::{scheduled, ScheduleError, ScheduledAction, ScheduledChange};
pub use stepping::step;
pub use text::{cause_text, scheduled_cause_text, tracking_alarm_name};
pub use tracking::{combine, target_tracking};
