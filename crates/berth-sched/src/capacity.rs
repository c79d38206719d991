//! Capacity-provider arithmetic: how a `capacityProviderStrategy` splits tasks over its
//! providers, the CapacityProviderReservation metric, the desired host count managed scaling
//! moves a host group to, and which hosts managed termination protection guards.
//!
//! Pure functions over plain numbers, so the rules ECS documents can be unit-tested here and
//! the managed-scaling controller (and the simulation bench) only gather state and apply the
//! answers. The rules, as ECS states them:
//! - **Strategy split**: the `base` of an item is satisfied first (only one item may have a
//!   base); the tasks beyond the bases are shared in proportion to `weight`s, assigning each
//!   task to the item furthest below its share (ties to the earlier item). Items of weight 0
//!   get tasks only through their base, unless every weight is 0.
//! - **CapacityProviderReservation** = M / N × 100, where M is the number of hosts needed to
//!   run the provider's tasks (those in PROVISIONING included) and N the hosts the group has
//!   running or starting. Special cases: M > 0, N = 0 → 200; M = 0, N = 0 → 100.
//! - **Target tracking**: the desired host count is the smallest N with M / N × 100 ≤
//!   `targetCapacity`, i.e. ⌈M × 100 / target⌉; a scale-out adds at least
//!   `minimumScalingStepSize` and at most `maximumScalingStepSize` hosts, a scale-in removes
//!   at most `maximumScalingStepSize` and never a host running tasks; the group's min/max
//!   bound the answer. While a new host is within its `instanceWarmupPeriod` berth does not
//!   scale in (the warming host is about to take PROVISIONING tasks) and counts it as
//!   capacity already on its way, so a scale-out is never repeated for the same demand.

/// ECS's defaults for `managedScaling` members left out.
pub mod defaults {
    /// `targetCapacity`: 100 percent.
    pub const TARGET_CAPACITY: u32 = 100;
    /// `minimumScalingStepSize`: 1 host.
    pub const MIN_STEP: u32 = 1;
    /// `maximumScalingStepSize`: 10,000 hosts.
    pub const MAX_STEP: u32 = 10_000;
    /// `instanceWarmupPeriod`: 300 seconds.
    pub const WARMUP_SECS: u32 = 300;
}

/// One strategy item, as the split sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitItem {
    /// Tasks placed on this item before weights apply.
    pub base: u32,
    /// Share of the tasks beyond the bases.
    pub weight: u32,
}

/// How many of `count` new tasks go to each item (same order as `items`), given `existing`
/// tasks already running per item (a service's current tasks: the split is of the whole,
/// so replacements keep the proportions). `existing` may be empty (RunTask).
pub fn split(items: &[SplitItem], existing: &[u32], count: u32) -> Vec<u32> {
    let n = items.len();
    let mut have: Vec<u64> = (0..n)
        .map(|i| u64::from(existing.get(i).copied().unwrap_or(0)))
        .collect();
    let mut out = vec![0u32; n];
    if n == 0 {
        return out;
    }
    let all_zero = items.iter().all(|i| i.weight == 0);
    for _ in 0..count {
        // Bases first, in item order.
        if let Some(i) = (0..n).find(|&i| have[i] < u64::from(items[i].base)) {
            have[i] += 1;
            out[i] += 1;
            continue;
        }
        // Then the item furthest below its weighted share of the tasks beyond the bases:
        // minimise (tasks beyond base + 1) / weight, compared as cross products.
        let weight = |i: usize| -> u64 {
            if all_zero {
                1
            } else {
                u64::from(items[i].weight)
            }
        };
        let beyond = |i: usize, have: &[u64]| have[i].saturating_sub(u64::from(items[i].base));
        let best = (0..n).filter(|&i| weight(i) > 0).min_by(|&a, &b| {
            let lhs = (beyond(a, &have) + 1) * weight(b);
            let rhs = (beyond(b, &have) + 1) * weight(a);
            lhs.cmp(&rhs).then(a.cmp(&b))
        });
        if let Some(i) = best {
            have[i] += 1;
            out[i] += 1;
        }
    }
    out
}

/// The CapacityProviderReservation metric, in percent: `needed` hosts (M) over `hosts` (N).
pub fn reservation(needed: u32, hosts: u32) -> f64 {
    match (needed, hosts) {
        (0, 0) => 100.0,
        (_, 0) => 200.0,
        (m, n) => f64::from(m) * 100.0 / f64::from(n),
    }
}

/// The hosts needed (M) for a provider's tasks: the hosts running at least one task, plus
/// the fewest hosts of `host_size` that could hold the PROVISIONING tasks' `waiting`
/// (cpu, memory) demands (a lower bound by total cpu and total memory, at least one host when
/// anything waits, as ECS estimates it).
pub fn hosts_needed(busy_hosts: u32, waiting: &[(u64, u64)], host_size: (u64, u64)) -> u32 {
    if waiting.is_empty() {
        return busy_hosts;
    }
    let (cpu, mem) = waiting
        .iter()
        .fold((0u64, 0u64), |(c, m), (tc, tm)| (c + tc, m + tm));
    let by = |need: u64, size: u64| -> u64 {
        if size == 0 {
            0
        } else {
            need.div_ceil(size)
        }
    };
    let extra = by(cpu, host_size.0).max(by(mem, host_size.1)).max(1);
    busy_hosts.saturating_add(u32::try_from(extra).unwrap_or(u32::MAX))
}

/// What managed scaling sees of one host group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupState {
    /// The group's current `desired_capacity`.
    pub desired: u32,
    /// Its `min_size`.
    pub min: u32,
    /// Its `max_size`.
    pub max: u32,
    /// Hosts running or starting (N).
    pub hosts: u32,
    /// Hosts running at least one task (a scale-in never goes below this).
    pub busy_hosts: u32,
    /// Hosts still inside the warmup period.
    pub warming: u32,
}

/// A provider's `managedScaling` settings, defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingSettings {
    /// 1..=100 percent.
    pub target_capacity: u32,
    /// Hosts a scale-out adds at least.
    pub min_step: u32,
    /// Hosts one step adds or removes at most.
    pub max_step: u32,
}

impl Default for ScalingSettings {
    fn default() -> Self {
        ScalingSettings {
            target_capacity: defaults::TARGET_CAPACITY,
            min_step: defaults::MIN_STEP,
            max_step: defaults::MAX_STEP,
        }
    }
}

/// The desired host count that moves the reservation of a group needing `needed` hosts (M)
/// toward the target, under the rules in this module's docs.
pub fn desired_capacity(needed: u32, g: GroupState, s: ScalingSettings) -> u32 {
    let target = s.target_capacity.clamp(1, 100);
    let ideal =
        u32::try_from((u64::from(needed) * 100).div_ceil(u64::from(target))).unwrap_or(u32::MAX);
    let current = g.desired.max(g.hosts);
    let max_step = s.max_step.max(1);
    let want = if ideal > current {
        let step = (ideal - current).clamp(s.min_step.max(1), max_step);
        current.saturating_add(step)
    } else if ideal < g.desired {
        if g.warming > 0 {
            g.desired
        } else {
            let floor = ideal.max(g.busy_hosts);
            g.desired - (g.desired - floor.min(g.desired)).min(max_step)
        }
    } else {
        g.desired
    };
    want.clamp(g.min, g.max.max(g.min))
}

/// Managed termination protection: whether a host should be protected from scale-in, given
/// how many of the provider's tasks run (or are placed) on it.
pub fn protect(tasks_on_host: u32) -> bool {
    tasks_on_host > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(v: &[(u32, u32)]) -> Vec<SplitItem> {
        v.iter()
            .map(|&(base, weight)| SplitItem { base, weight })
            .collect()
    }

    #[test]
    fn base_then_weights() {
        // base 2 on A, weight 1:3 on A:B.
        let it = items(&[(2, 1), (0, 3)]);
        assert_eq!(split(&it, &[], 2), vec![2, 0]);
        assert_eq!(split(&it, &[], 6), vec![3, 3]);
        assert_eq!(split(&it, &[], 10), vec![4, 6]);
        // ECS's own example: base 1 on FARGATE, weight 1:4 with FARGATE_SPOT... of 11 tasks.
        let it = items(&[(1, 1), (0, 4)]);
        assert_eq!(split(&it, &[], 11), vec![3, 8]);
    }

    #[test]
    fn split_keeps_proportions_with_existing_tasks() {
        let it = items(&[(0, 1), (0, 1)]);
        assert_eq!(split(&it, &[3, 1], 2), vec![0, 2]);
        assert_eq!(split(&it, &[], 3), vec![2, 1]);
    }

    #[test]
    fn zero_weights() {
        assert_eq!(split(&items(&[(0, 0), (0, 0)]), &[], 3), vec![2, 1]);
        assert_eq!(split(&items(&[(2, 0), (0, 1)]), &[], 5), vec![2, 3]);
        assert_eq!(split(&[], &[], 3), Vec::<u32>::new());
    }

    #[test]
    fn split_sums_to_count() {
        for count in 0..40 {
            let it = items(&[(3, 2), (0, 5), (0, 0), (0, 1)]);
            assert_eq!(split(&it, &[], count).iter().sum::<u32>(), count);
        }
    }

    #[test]
    fn reservation_special_cases() {
        assert_eq!(reservation(0, 0), 100.0);
        assert_eq!(reservation(3, 0), 200.0);
        assert_eq!(reservation(0, 4), 0.0);
        assert_eq!(reservation(3, 4), 75.0);
        assert_eq!(reservation(5, 4), 125.0);
    }

    #[test]
    fn needed_hosts_bound_by_cpu_and_memory() {
        assert_eq!(hosts_needed(2, &[], (2048, 4096)), 2);
        // Five 512-cpu / 1024-MiB tasks on 2048/2048 hosts: memory needs 3 hosts.
        assert_eq!(hosts_needed(1, &[(512, 1024); 5], (2048, 2048)), 4);
        assert_eq!(hosts_needed(0, &[(0, 0)], (2048, 2048)), 1);
    }

    fn g(desired: u32, hosts: u32, busy: u32) -> GroupState {
        GroupState {
            desired,
            min: 0,
            max: 20,
            hosts,
            busy_hosts: busy,
            warming: 0,
        }
    }

    #[test]
    fn desired_tracks_target() {
        let s = ScalingSettings::default();
        assert_eq!(desired_capacity(3, g(1, 1, 1), s), 3);
        assert_eq!(desired_capacity(0, g(0, 0, 0), s), 0);
        assert_eq!(desired_capacity(2, g(4, 4, 2), s), 2);
        let s80 = ScalingSettings {
            target_capacity: 80,
            ..s
        };
        // 4 needed at 80% → 5 hosts.
        assert_eq!(desired_capacity(4, g(4, 4, 4), s80), 5);
    }

    #[test]
    fn step_sizes_bound_each_move() {
        let s = ScalingSettings {
            target_capacity: 100,
            min_step: 3,
            max_step: 5,
        };
        assert_eq!(desired_capacity(2, g(1, 1, 1), s), 4, "at least min step");
        assert_eq!(desired_capacity(20, g(1, 1, 1), s), 6, "at most max step");
        assert_eq!(
            desired_capacity(0, g(12, 12, 0), s),
            7,
            "scale-in by max step"
        );
    }

    #[test]
    fn group_bounds_and_busy_hosts_hold() {
        let s = ScalingSettings::default();
        let mut st = g(2, 2, 0);
        st.min = 1;
        st.max = 3;
        assert_eq!(desired_capacity(0, st, s), 1);
        assert_eq!(desired_capacity(9, st, s), 3);
        // Never below the hosts running tasks.
        assert_eq!(desired_capacity(0, g(5, 5, 3), s), 3);
    }

    #[test]
    fn warming_hosts_hold_scale_in_and_count_as_capacity() {
        let s = ScalingSettings::default();
        let mut st = g(4, 4, 1);
        st.warming = 2;
        assert_eq!(desired_capacity(1, st, s), 4);
        // Demand already covered by starting hosts: no further scale-out.
        assert_eq!(desired_capacity(4, st, s), 4);
    }

    #[test]
    fn protection_follows_tasks() {
        assert!(protect(1));
        assert!(!protect(0));
    }
}
