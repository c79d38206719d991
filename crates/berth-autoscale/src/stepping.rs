//! Step scaling.

use crate::policy::{
    AdjustmentType, AlarmKind, Direction, PolicyState, Proposal, Step, StepPolicy, Target,
};

/// Whether `step` applies to `diff = alarm value − threshold`: `[lower, upper)` at or above
/// the threshold, `(lower, upper]` below it (AWS's rule; for scale-out alarms this is "lower
/// inclusive, upper exclusive").
fn contains(step: &Step, diff: f64) -> bool {
    let lo = step.lower.unwrap_or(f64::NEG_INFINITY);
    let hi = step.upper.unwrap_or(f64::INFINITY);
    if diff >= 0.0 {
        lo <= diff && diff < hi
    } else {
        lo < diff && diff <= hi
    }
}

/// `base` adjusted by `adjustment` under `p`'s adjustment type, before clamping.
fn adjust(p: &StepPolicy, adjustment: i32, base: u32) -> u32 {
    let base = i64::from(base);
    let desired = match p.adjustment_type {
        AdjustmentType::ChangeInCapacity => base + i64::from(adjustment),
        AdjustmentType::ExactCapacity => i64::from(adjustment),
        AdjustmentType::PercentChangeInCapacity => {
            let raw = base as f64 * f64::from(adjustment) / 100.0;
            let mut delta = if raw > 1.0 {
                raw.floor()
            } else if raw > 0.0 {
                1.0
            } else if (-1.0..0.0).contains(&raw) {
                -1.0
            } else {
                raw.ceil()
            } as i64;
            if let Some(m) = p.min_adjustment_magnitude {
                let m = i64::from(m.max(0));
                if delta != 0 && delta.abs() < m {
                    delta = delta.signum() * m;
                }
            }
            base + delta
        }
    };
    desired.clamp(0, i64::from(u32::MAX)) as u32
}

/// What step policy `p` proposes when its alarm (threshold `alarm_threshold`) is in ALARM
/// with value `alarm_value`. The step whose interval holds `alarm_value − alarm_threshold`
/// gives the adjustment; no step, no proposal.
///
/// Within `p.cooldown` of the policy's last activity, scale-in is blocked, and scale-out
/// counts the capacity the previous scale-out added: the adjustment is applied to
/// [`PolicyState::scale_out_base`] (blocked when unknown) and must still exceed `current`.
pub fn step(
    p: &StepPolicy,
    alarm_threshold: f64,
    alarm_value: f64,
    current: u32,
    t: &Target,
    state: &PolicyState,
    now: f64,
) -> Option<Proposal> {
    let diff = alarm_value - alarm_threshold;
    if !diff.is_finite() {
        return None;
    }
    let adjustment = p.steps.iter().find(|s| contains(s, diff))?.adjustment;
    let mut desired = t.clamp(adjust(p, adjustment, current));
    let direction = match desired.cmp(&current) {
        std::cmp::Ordering::Greater => Direction::Out,
        std::cmp::Ordering::Less => Direction::In,
        std::cmp::Ordering::Equal => return None,
    };
    match direction {
        Direction::Out if t.scale_out_suspended => return None,
        Direction::In if t.scale_in_suspended => return None,
        _ => {}
    }
    if state.last_step.is_some_and(|l| now - l < p.cooldown) {
        match direction {
            Direction::In => return None,
            Direction::Out => {
                let base = state.scale_out_base?;
                desired = t.clamp(adjust(p, adjustment, base));
                if desired <= current {
                    return None;
                }
            }
        }
    }
    Some(Proposal {
        policy: p.name.clone(),
        desired,
        direction,
        alarm: AlarmKind::Step,
        metric_value: alarm_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out_policy(kind: AdjustmentType) -> StepPolicy {
        // CPU alarm at 70: +1 for [70, 80), +2 for [80, 90), +4 from 90.
        StepPolicy {
            name: "cpu-steps".into(),
            adjustment_type: kind,
            steps: vec![
                Step {
                    lower: Some(0.0),
                    upper: Some(10.0),
                    adjustment: 1,
                },
                Step {
                    lower: Some(10.0),
                    upper: Some(20.0),
                    adjustment: 2,
                },
                Step {
                    lower: Some(20.0),
                    upper: None,
                    adjustment: 4,
                },
            ],
            min_adjustment_magnitude: None,
            cooldown: 120.0,
        }
    }

    fn in_policy() -> StepPolicy {
        // CPU alarm below 30: −1 for (20, 30], −2 below 20.
        StepPolicy {
            name: "cpu-in".into(),
            adjustment_type: AdjustmentType::ChangeInCapacity,
            steps: vec![
                Step {
                    lower: Some(-10.0),
                    upper: Some(0.0),
                    adjustment: -1,
                },
                Step {
                    lower: None,
                    upper: Some(-10.0),
                    adjustment: -2,
                },
            ],
            min_adjustment_magnitude: None,
            cooldown: 120.0,
        }
    }

    fn t(min: u32, max: u32) -> Target {
        Target {
            min,
            max,
            ..Default::default()
        }
    }

    fn run(
        p: &StepPolicy,
        value: f64,
        threshold: f64,
        current: u32,
        tg: &Target,
        st: &PolicyState,
    ) -> Option<u32> {
        step(p, threshold, value, current, tg, st, 1000.0).map(|p| p.desired)
    }

    #[test]
    fn picks_the_step_holding_the_difference() {
        let p = out_policy(AdjustmentType::ChangeInCapacity);
        let st = PolicyState::default();
        let tg = t(1, 20);
        #[rustfmt::skip]
        let table = [
            (70.0, Some(5)), (79.9, Some(5)), (80.0, Some(6)), (89.0, Some(6)),
            (90.0, Some(8)), (150.0, Some(8)), (69.0, None),
        ];
        for (value, want) in table {
            assert_eq!(run(&p, value, 70.0, 4, &tg, &st), want, "value {value}");
        }
        let p = in_policy();
        // At the threshold (diff 0) the above-threshold rule applies: [−10, 0) misses 0.
        assert_eq!(run(&p, 30.0, 30.0, 4, &tg, &st), None);
        assert_eq!(run(&p, 25.0, 30.0, 4, &tg, &st), Some(3));
        // Below the threshold bounds are (lower, upper]: −10 belongs to (−∞, −10].
        assert_eq!(run(&p, 20.0, 30.0, 4, &tg, &st), Some(2));
        assert_eq!(run(&p, 19.0, 30.0, 4, &tg, &st), Some(2));
        assert_eq!(run(&p, 5.0, 30.0, 1, &tg, &st), None); // min 1
    }

    #[test]
    fn adjustment_types() {
        let st = PolicyState::default();
        let tg = t(0, 1000);
        let exact = out_policy(AdjustmentType::ExactCapacity);
        assert_eq!(run(&exact, 85.0, 70.0, 1, &tg, &st), Some(2));
        assert_eq!(run(&exact, 85.0, 70.0, 2, &tg, &st), None);
        assert_eq!(run(&exact, 85.0, 70.0, 9, &tg, &st), Some(2)); // exact can go down
        let mut pct = out_policy(AdjustmentType::PercentChangeInCapacity);
        pct.steps[0].adjustment = 50;
        // 50% of 10 = 5; of 3 = 1.5 → 1; of 1 = 0.5 → 1.
        assert_eq!(run(&pct, 75.0, 70.0, 10, &tg, &st), Some(15));
        assert_eq!(run(&pct, 75.0, 70.0, 3, &tg, &st), Some(4));
        assert_eq!(run(&pct, 75.0, 70.0, 1, &tg, &st), Some(2));
        pct.min_adjustment_magnitude = Some(3);
        assert_eq!(run(&pct, 75.0, 70.0, 3, &tg, &st), Some(6));
        assert_eq!(run(&pct, 75.0, 70.0, 10, &tg, &st), Some(15));
        // Negative percentages round towards zero below −1 and to −1 above it.
        let mut down = in_policy();
        down.adjustment_type = AdjustmentType::PercentChangeInCapacity;
        down.steps[0].adjustment = -25;
        assert_eq!(run(&down, 25.0, 30.0, 10, &tg, &st), Some(8)); // −2.5 → −2
        assert_eq!(run(&down, 25.0, 30.0, 2, &tg, &st), Some(1)); // −0.5 → −1
    }

    #[test]
    fn cooldown_counts_the_previous_scale_out() {
        let p = out_policy(AdjustmentType::ChangeInCapacity);
        let tg = t(1, 20);
        // Scaled 2 → 3 (+1) sixty seconds ago; cooldown 120 s.
        let st = PolicyState {
            last_step: Some(940.0),
            scale_out_base: Some(2),
            ..Default::default()
        };
        assert_eq!(run(&p, 75.0, 70.0, 3, &tg, &st), None); // +1 again: already done
        assert_eq!(run(&p, 85.0, 70.0, 3, &tg, &st), Some(4)); // +2 from 2
        assert_eq!(run(&p, 95.0, 70.0, 3, &tg, &st), Some(6)); // +4 from 2
                                                               // Scale-in is blocked during the cooldown.
        let st_in = PolicyState {
            last_step: Some(940.0),
            ..Default::default()
        };
        assert_eq!(run(&in_policy(), 25.0, 30.0, 4, &tg, &st_in), None);
        // After it, both work.
        let later = PolicyState {
            last_step: Some(800.0),
            scale_out_base: Some(2),
            ..Default::default()
        };
        assert_eq!(run(&p, 75.0, 70.0, 3, &tg, &later), Some(4));
        assert_eq!(run(&in_policy(), 25.0, 30.0, 4, &tg, &later), Some(3));
        // And `applied` records what the next evaluation needs.
        let mut st = PolicyState::default();
        let prop = step(&p, 70.0, 75.0, 3, &tg, &st, 1000.0).expect("scale out");
        st.applied(&prop, 3, 1000.0);
        assert_eq!(
            st,
            PolicyState {
                last_step: Some(1000.0),
                scale_out_base: Some(3),
                ..Default::default()
            }
        );
    }

    #[test]
    fn suspension_and_clamps() {
        let p = out_policy(AdjustmentType::ChangeInCapacity);
        let st = PolicyState::default();
        let mut tg = t(1, 5);
        assert_eq!(run(&p, 95.0, 70.0, 4, &tg, &st), Some(5));
        assert_eq!(run(&p, 95.0, 70.0, 5, &tg, &st), None);
        tg.scale_out_suspended = true;
        assert_eq!(run(&p, 95.0, 70.0, 2, &tg, &st), None);
        tg.scale_in_suspended = true;
        assert_eq!(run(&in_policy(), 5.0, 30.0, 4, &tg, &st), None);
        assert_eq!(run(&p, f64::NAN, 70.0, 2, &t(1, 5), &st), None);
    }
}
