//! Target tracking, and merging several policies' proposals.

use crate::alarm::{alarm_state, AlarmState, Comparison};
use crate::policy::{
    AlarmKind, Direction, PolicyState, Proposal, Settings, Target, TargetTracking,
};

/// The datapoints of `series` recent enough to count towards a window of `n` periods:
/// those at or after `now − (n + 1) × period` (one period of slack for the bucket still
/// filling or a late report).
fn fresh(series: &[(f64, f64)], n: usize, now: f64, period: f64) -> &[(f64, f64)] {
    let cutoff = now - (n as f64 + 1.0) * period;
    let first = series.partition_point(|&(t, _)| t.is_nan() || t < cutoff);
    &series[first..]
}

/// `ceil(current × metric / target)`, saturating, with a little slack so that floating
/// point noise (3 × 70 / 70 = 3.0000000000000004) does not add a task.
fn proportional(current: u32, metric: f64, target: f64) -> u32 {
    let x = (current as f64 * metric / target - 1e-9).ceil();
    // `as` saturates at both ends and maps NaN to 0.
    x as u32
}

/// What target tracking policy `p` proposes, if anything. `series` holds the policy's
/// metric, one datapoint per [`Settings::period`], ascending (CPU/memory: average per task;
/// requests: per-target request count per period); `current` is the service's desired count.
///
/// Scale out when the last `scale_out_datapoints` are all above the target; scale in when
/// the last `scale_in_datapoints` are all below `target × scale_in_ratio`, scale-in is
/// enabled, and neither cooldown runs. With no tasks at all, a positive latest datapoint
/// scales out to `max(1, min)` (within `max`). See the crate docs for the arithmetic.
pub fn target_tracking(
    p: &TargetTracking,
    series: &[(f64, f64)],
    current: u32,
    t: &Target,
    state: &PolicyState,
    now: f64,
    s: &Settings,
) -> Option<Proposal> {
    if p.validate().is_err() {
        return None;
    }
    let target = p.target_value;
    let proposal = |desired, direction, alarm, metric_value| Proposal {
        policy: p.name.clone(),
        desired,
        direction,
        alarm,
        metric_value,
    };
    let within = |last: Option<f64>, cooldown: f64| last.is_some_and(|l| now - l < cooldown);

    if !t.scale_out_suspended {
        let recent = fresh(series, s.scale_out_datapoints, now, s.period);
        if let Some(&(_, metric)) = recent.last() {
            let desired = if current == 0 {
                // Nothing runs, so nothing can be averaged: any load means "start one".
                (metric > 0.0).then(|| t.clamp(1))
            } else if alarm_state(
                recent,
                target,
                Comparison::GreaterThanThreshold,
                s.scale_out_datapoints,
            ) == AlarmState::Alarm
            {
                let desired = if within(state.last_scale_out, p.scale_out_cooldown) {
                    // The capacity the last scale-out added counts towards this one: measure
                    // the need from the count before it (the metric still mostly reflects
                    // those tasks), and scale only if that exceeds what is already asked.
                    let base = state.scale_out_base.unwrap_or(current);
                    proportional(base, metric, target)
                } else {
                    proportional(current, metric, target).max(current.saturating_add(1))
                };
                Some(t.clamp(desired))
            } else {
                None
            };
            if let Some(d) = desired.filter(|&d| d > current) {
                return Some(proposal(d, Direction::Out, AlarmKind::High, metric));
            }
        }
    }

    if !t.scale_in_suspended
        && !p.disable_scale_in
        && current > 0
        && !within(state.last_scale_in, p.scale_in_cooldown)
        && !within(state.last_scale_out, p.scale_out_cooldown)
    {
        let recent = fresh(series, s.scale_in_datapoints, now, s.period);
        let low = target * s.scale_in_ratio;
        if alarm_state(
            recent,
            low,
            Comparison::LessThanThreshold,
            s.scale_in_datapoints,
        ) == AlarmState::Alarm
        {
            let metric = recent.last().map_or(0.0, |&(_, v)| v);
            let mut desired = proportional(current, metric, target).min(current - 1);
            if metric > 0.0 {
                desired = desired.max(1);
            }
            let desired = t.clamp(desired);
            if desired < current {
                return Some(proposal(desired, Direction::In, AlarmKind::Low, metric));
            }
        }
    }
    None
}

/// Merges the proposals of a service's policies, all computed against the same `current`,
/// as Application Auto Scaling does: scale out if any proposal says out (the largest desired
/// count wins); otherwise scale in only if every policy with a say agrees (the largest
/// desired count, the most careful, wins).
///
/// `holding` counts the policies that have a say on scale-in but proposed nothing: target
/// tracking policies that returned `None` and [`TargetTracking::votes_on_scale_in`]. Any
/// holding policy blocks scale-in (its metric sits near its target; removing tasks would
/// push it over and flap).
pub fn combine(current: u32, proposals: &[Proposal], holding: usize) -> Option<Proposal> {
    let largest = |direction: Direction| {
        proposals
            .iter()
            .filter(|p| p.direction == direction)
            .filter(|p| match direction {
                Direction::Out => p.desired > current,
                Direction::In => p.desired < current,
            })
            .max_by_key(|p| p.desired)
            .cloned()
    };
    if let Some(out) = largest(Direction::Out) {
        return Some(out);
    }
    if holding > 0 {
        return None;
    }
    largest(Direction::In)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: f64 = 10_000.0;

    fn cpu60() -> TargetTracking {
        TargetTracking {
            name: "cpu60".into(),
            target_value: 60.0,
            scale_out_cooldown: 60.0,
            scale_in_cooldown: 300.0,
            disable_scale_in: false,
        }
    }

    fn target(min: u32, max: u32) -> Target {
        Target {
            min,
            max,
            ..Default::default()
        }
    }

    /// A recorded series: one value per 10 s, the last one at `NOW - 10`.
    fn rec(values: &[f64]) -> Vec<(f64, f64)> {
        let n = values.len();
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (NOW - 10.0 * (n - i) as f64, *v))
            .collect()
    }

    fn tt(values: &[f64], current: u32, t: &Target, st: &PolicyState) -> Option<(u32, Direction)> {
        target_tracking(
            &cpu60(),
            &rec(values),
            current,
            t,
            st,
            NOW,
            &Settings::default(),
        )
        .map(|p| (p.desired, p.direction))
    }

    /// (name, recorded series, current count, expected proposal)
    type Case = (&'static str, Vec<f64>, u32, Option<(u32, Direction)>);

    #[test]
    fn recorded_series() {
        let none = PolicyState::default();
        let t = target(1, 10);
        let decline: Vec<f64> = (0..20).map(|i| 58.0 - 2.0 * i as f64).collect();
        #[rustfmt::skip]
        let table: &[Case] = &[
            // CPU ramp: 3 datapoints above 60, latest 90 → ceil(2 × 90 / 60) = 3.
            ("cpu ramp", vec![40.0, 50.0, 61.0, 75.0, 90.0], 2, Some((3, Direction::Out))),
            // Barely over: the proportional answer is current; +1 at least.
            ("barely over", vec![61.0, 61.0, 61.0], 4, Some((5, Direction::Out))),
            // A big jump: ceil(4 × 150 / 60) = 10.
            ("surge", vec![70.0, 120.0, 150.0], 4, Some((10, Direction::Out))),
            // A spike two datapoints long never fills the 3-datapoint window.
            ("short spike", vec![40.0, 40.0, 95.0, 99.0, 40.0], 2, None),
            ("spike at end", vec![40.0, 40.0, 40.0, 95.0, 99.0], 2, None),
            // Exactly at target is not above it.
            ("at target", vec![60.0, 60.0, 60.0], 2, None),
            // Dead zone: below target but above 90% of it → hold.
            ("dead zone", vec![55.0; 20], 4, None),
            // Slow decline: only 14 datapoints below 54 so far → hold.
            ("decline, window not full", decline[..17].to_vec(), 6, None),
            // ... 15 of them → scale in: ceil(6 × 24 / 60) = 3.
            ("decline, window full", decline[..18].to_vec(), 6, Some((3, Direction::In))),
            // Scale-in keeps what the metric needs: ceil(6 × 50 / 60) = 5.
            ("gentle scale in", vec![50.0; 15], 6, Some((5, Direction::In))),
            // Never below 1 while there is load; at most current − 1.
            ("idle but alive", vec![0.5; 15], 3, Some((1, Direction::In))),
            ("one task, some load", vec![0.5; 15], 1, None),
            // One datapoint above target in the scale-in window blocks it.
            ("blip blocks scale in", [vec![10.0; 7], vec![70.0], vec![10.0; 7]].concat(), 6, None),
            // Too little data either way.
            ("too few", vec![99.0, 99.0], 2, None),
            ("empty", vec![], 2, None),
        ];
        for (name, values, current, want) in table {
            assert_eq!(tt(values, *current, &t, &none), *want, "{name}");
        }
    }

    #[test]
    fn stale_datapoints_do_not_count() {
        let st = PolicyState::default();
        // Three high datapoints, but the newest is 60 s old: the window is 40 s.
        let old: Vec<(f64, f64)> = (0..3)
            .map(|i| (NOW - 80.0 + 10.0 * i as f64, 99.0))
            .collect();
        let p = target_tracking(
            &cpu60(),
            &old,
            2,
            &target(1, 10),
            &st,
            NOW,
            &Settings::default(),
        );
        assert_eq!(p, None);
        // The same three ending at NOW − 10: fresh.
        let fresh: Vec<(f64, f64)> = (0..3)
            .map(|i| (NOW - 30.0 + 10.0 * i as f64, 99.0))
            .collect();
        let p = target_tracking(
            &cpu60(),
            &fresh,
            2,
            &target(1, 10),
            &st,
            NOW,
            &Settings::default(),
        );
        assert_eq!(p.map(|p| p.desired), Some(4));
    }

    #[test]
    fn clamps_to_min_and_max() {
        let st = PolicyState::default();
        assert_eq!(
            tt(&[200.0; 3], 4, &target(1, 6), &st),
            Some((6, Direction::Out))
        );
        assert_eq!(tt(&[200.0; 3], 6, &target(1, 6), &st), None);
        assert_eq!(
            tt(&[1.0; 15], 6, &target(4, 10), &st),
            Some((4, Direction::In))
        );
        assert_eq!(tt(&[1.0; 15], 4, &target(4, 10), &st), None);
        // Above max already: a scale-out proposal would be a scale-in; none.
        assert_eq!(tt(&[200.0; 3], 12, &target(1, 10), &st), None);
    }

    #[test]
    fn cooldowns() {
        let t = target(1, 20);
        // Scaled 2 → 4 thirty seconds ago (scale-out cooldown 60 s).
        let just_out = PolicyState {
            last_scale_out: Some(NOW - 30.0),
            scale_out_base: Some(2),
            ..Default::default()
        };
        // The need measured from 2 tasks: ceil(2 × 90 / 60) = 3, already covered by 4.
        assert_eq!(tt(&[90.0; 3], 4, &t, &just_out), None);
        assert_eq!(tt(&[120.0; 3], 4, &t, &just_out), None);
        // A bigger need scales further: ceil(2 × 150 / 60) = 5.
        assert_eq!(tt(&[150.0; 3], 4, &t, &just_out), Some((5, Direction::Out)));
        // After the cooldown, +1 again.
        let later = PolicyState {
            last_scale_out: Some(NOW - 61.0),
            ..Default::default()
        };
        assert_eq!(tt(&[61.0; 3], 4, &t, &later), Some((5, Direction::Out)));
        // Scale-in waits for the scale-out cooldown ...
        assert_eq!(tt(&[10.0; 15], 4, &t, &just_out), None);
        assert_eq!(tt(&[10.0; 15], 4, &t, &later), Some((1, Direction::In)));
        // ... and for its own.
        let just_in = PolicyState {
            last_scale_in: Some(NOW - 299.0),
            ..Default::default()
        };
        assert_eq!(tt(&[10.0; 15], 4, &t, &just_in), None);
        // Scale-in cooldown does not hold back a scale-out.
        assert_eq!(tt(&[90.0; 3], 4, &t, &just_in), Some((6, Direction::Out)));
    }

    #[test]
    fn suspension_and_disabled_scale_in() {
        let st = PolicyState::default();
        let mut t = target(1, 10);
        t.scale_out_suspended = true;
        assert_eq!(tt(&[90.0; 3], 2, &t, &st), None);
        assert_eq!(tt(&[10.0; 15], 4, &t, &st), Some((1, Direction::In)));
        t.scale_out_suspended = false;
        t.scale_in_suspended = true;
        assert_eq!(tt(&[10.0; 15], 4, &t, &st), None);
        assert_eq!(tt(&[90.0; 3], 2, &t, &st), Some((3, Direction::Out)));
        let mut p = cpu60();
        p.disable_scale_in = true;
        let s = Settings::default();
        assert_eq!(
            target_tracking(&p, &rec(&[10.0; 15]), 4, &target(1, 10), &st, NOW, &s),
            None
        );
        assert!(!p.votes_on_scale_in());
    }

    #[test]
    fn zero_tasks_start_one() {
        let st = PolicyState::default();
        assert_eq!(
            tt(&[5.0], 0, &target(0, 10), &st),
            Some((1, Direction::Out))
        );
        assert_eq!(
            tt(&[5.0], 0, &target(3, 10), &st),
            Some((3, Direction::Out))
        );
        assert_eq!(tt(&[5.0], 0, &target(0, 0), &st), None);
        assert_eq!(tt(&[0.0], 0, &target(0, 10), &st), None);
        let mut t = target(0, 10);
        t.scale_out_suspended = true;
        assert_eq!(tt(&[5.0], 0, &t, &st), None);
    }

    fn prop(policy: &str, desired: u32, direction: Direction) -> Proposal {
        Proposal {
            policy: policy.into(),
            desired,
            direction,
            alarm: if direction == Direction::Out {
                AlarmKind::High
            } else {
                AlarmKind::Low
            },
            metric_value: 0.0,
        }
    }

    #[test]
    fn combine_two_policies() {
        use Direction::*;
        // CPU says out to 6, memory says in to 3: out wins.
        let got = combine(4, &[prop("cpu", 6, Out), prop("mem", 3, In)], 0);
        assert_eq!(got.map(|p| p.policy), Some("cpu".into()));
        // Both out: the largest.
        let got = combine(4, &[prop("cpu", 6, Out), prop("mem", 8, Out)], 0);
        assert_eq!(got.map(|p| p.desired), Some(8));
        // Both in: the largest (removes the fewest).
        let got = combine(6, &[prop("cpu", 2, In), prop("mem", 4, In)], 0);
        assert_eq!(got.map(|p| (p.policy, p.desired)), Some(("mem".into(), 4)));
        // One in, the other holding: no scale-in.
        assert_eq!(combine(6, &[prop("cpu", 2, In)], 1), None);
        // Holding does not block scale-out.
        assert_eq!(
            combine(6, &[prop("cpu", 8, Out)], 1).map(|p| p.desired),
            Some(8)
        );
        assert_eq!(combine(6, &[], 0), None);
        // Stale proposals that would not move anything are ignored.
        assert_eq!(
            combine(6, &[prop("cpu", 6, Out), prop("mem", 7, In)], 0),
            None
        );
    }

    #[test]
    fn two_policies_from_recorded_series() {
        // CPU low for 15 datapoints, memory in its dead zone: memory holds, no scale-in.
        let t = target(1, 10);
        let st = PolicyState::default();
        let s = Settings::default();
        let mem = TargetTracking {
            name: "mem70".into(),
            target_value: 70.0,
            ..cpu60()
        };
        let cpu = target_tracking(&cpu60(), &rec(&[20.0; 15]), 6, &t, &st, NOW, &s);
        let m = target_tracking(&mem, &rec(&[66.0; 15]), 6, &t, &st, NOW, &s);
        assert!(cpu.is_some() && m.is_none());
        let proposals: Vec<Proposal> = cpu.into_iter().chain(m).collect();
        assert_eq!(
            combine(6, &proposals, usize::from(mem.votes_on_scale_in())),
            None
        );
        // Memory low too: both in; memory needs ceil(6 × 30 / 70) = 3, CPU 2 → 3.
        let m = target_tracking(&mem, &rec(&[30.0; 15]), 6, &t, &st, NOW, &s);
        let cpu = target_tracking(&cpu60(), &rec(&[20.0; 15]), 6, &t, &st, NOW, &s);
        let proposals: Vec<Proposal> = cpu.into_iter().chain(m).collect();
        assert_eq!(combine(6, &proposals, 0).map(|p| p.desired), Some(3));
    }

    proptest! {
        #[test]
        fn within_bounds_and_never_scales_in_above_target(
            values in prop::collection::vec(0.0f64..200.0, 0..40),
            current in 0u32..50,
            min in 0u32..20,
            span in 0u32..30,
            out_ago in prop::option::of(0.0f64..600.0),
            in_ago in prop::option::of(0.0f64..600.0),
            scale_out_suspended in any::<bool>(),
            scale_in_suspended in any::<bool>(),
        ) {
            let t = Target { min, max: min + span, scale_out_suspended, scale_in_suspended, scheduled_suspended: false };
            let st = PolicyState {
                last_scale_out: out_ago.map(|a| NOW - a),
                last_scale_in: in_ago.map(|a| NOW - a),
                ..Default::default()
            };
            let s = Settings::default();
            let series = rec(&values);
            if let Some(p) = target_tracking(&cpu60(), &series, current, &t, &st, NOW, &s) {
                prop_assert!(p.desired >= t.min && p.desired <= t.max);
                prop_assert!(p.desired != current);
                match p.direction {
                    Direction::Out => {
                        prop_assert!(p.desired > current);
                        prop_assert!(!scale_out_suspended);
                    }
                    Direction::In => {
                        prop_assert!(p.desired < current);
                        prop_assert!(!scale_in_suspended);
                        let window = &values[values.len().saturating_sub(s.scale_in_datapoints)..];
                        prop_assert!(window.len() == s.scale_in_datapoints);
                        prop_assert!(window.iter().all(|v| *v <= 60.0));
                        // The metric stays at or under the target after the scale-in.
                        let metric = p.metric_value;
                        prop_assert!(current as f64 * metric / p.desired as f64 <= 60.0 + 1e-6 || p.desired == t.min);
                    }
                }
            }
        }
    }
}
