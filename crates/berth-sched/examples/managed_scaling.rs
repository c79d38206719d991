//! Managed scaling against a recorded demand curve: host-minutes used vs the ideal.
//!
//! A pure simulation over `berth_sched::capacity` (the functions the capacity loop calls):
//! every 10 s the demand (tasks wanted) is read from the curve, tasks are packed onto ready
//! hosts, the rest wait in PROVISIONING, and managed scaling sets the desired host count;
//! a new host is ready `START_DELAY` seconds after it is asked for; a scale-in removes only
//! empty hosts. The ideal is ⌈demand / tasks per host⌉ hosts at every instant (no start
//! delay, perfect foresight). The baseline run in the same process is a static group sized
//! for the peak, what an operator without managed scaling provisions.
//!
//! Run: `cargo run --release -p berth-sched --example managed_scaling`.

use berth_sched::capacity::{desired_capacity, hosts_needed, GroupState, ScalingSettings};

/// Host size (cpu units, MiB) and task size: four tasks per host.
const HOST: (u64, u64) = (4096, 8192);
const TASK: (u64, u64) = (1024, 2048);
const PER_HOST: u32 = 4;
/// Seconds from a host being asked for to its agent taking tasks.
const START_DELAY: f64 = 60.0;
/// The simulation step, and the capacity loop's period.
const STEP: f64 = 10.0;

/// Tasks wanted, one value per minute (a recorded two-hour curve: a morning ramp, a lunch
/// spike, a slow decline, a batch burst, and the night).
const DEMAND: &[u32] = &[
    2, 2, 3, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25, 26, 26, 27, 28, 28, 29, 30, 30, 30,
    31, 30, 30, 29, 30, 31, 32, 34, 38, 44, 52, 60, 64, 62, 58, 50, 44, 40, 36, 34, 33, 32, 31, 30,
    30, 29, 28, 27, 26, 26, 25, 24, 24, 23, 22, 22, 21, 20, 20, 19, 18, 40, 40, 40, 40, 40, 18, 17,
    16, 16, 15, 14, 14, 13, 12, 12, 11, 10, 10, 9, 8, 8, 7, 6, 6, 5, 5, 4, 4, 3, 3, 3, 2, 2, 2, 2,
    1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

struct Outcome {
    host_secs: f64,
    waiting_task_secs: f64,
}

fn demand_at(t: f64) -> u32 {
    DEMAND[((t / 60.0) as usize).min(DEMAND.len() - 1)]
}

/// Managed scaling with `settings` and warmup `warmup` seconds.
fn managed(settings: ScalingSettings, warmup: f64) -> Outcome {
    // Each host: the time it was asked for.
    let mut hosts: Vec<f64> = Vec::new();
    let (mut host_secs, mut waiting_task_secs) = (0.0, 0.0);
    let mut desired = 0u32;
    let end = DEMAND.len() as f64 * 60.0;
    let mut t = 0.0;
    while t < end {
        let want = demand_at(t);
        let ready = hosts.iter().filter(|&&a| t - a >= START_DELAY).count() as u32;
        let placed = want.min(ready * PER_HOST);
        let busy = placed.div_ceil(PER_HOST);
        let waiting = vec![TASK; (want - placed) as usize];
        let warming = hosts
            .iter()
            .filter(|&&a| t - a < warmup.max(START_DELAY))
            .count() as u32;
        let state = GroupState {
            desired,
            min: 0,
            max: 100,
            hosts: hosts.len() as u32,
            busy_hosts: busy,
            warming,
        };
        desired = desired_capacity(hosts_needed(busy, &waiting, HOST), state, settings);
        while (hosts.len() as u32) < desired {
            hosts.push(t);
        }
        // Scale-in takes empty hosts only: the newest (not yet ready) first, then ready ones.
        while (hosts.len() as u32) > desired.max(busy) {
            hosts.pop();
        }
        host_secs += hosts.len() as f64 * STEP;
        waiting_task_secs += f64::from(want - placed) * STEP;
        t += STEP;
    }
    Outcome {
        host_secs,
        waiting_task_secs,
    }
}

/// The ideal: exactly the hosts the demand needs, at every instant.
fn ideal() -> f64 {
    DEMAND
        .iter()
        .map(|d| f64::from(d.div_ceil(PER_HOST)) * 60.0)
        .sum()
}

/// The baseline: a static group sized for the peak.
fn static_peak() -> f64 {
    let peak = DEMAND.iter().copied().max().unwrap_or(0);
    f64::from(peak.div_ceil(PER_HOST)) * DEMAND.len() as f64 * 60.0
}

fn main() {
    let ideal = ideal();
    let base = static_peak();
    println!(
        "demand curve: {} minutes, peak {} tasks, {} tasks per host, host start {START_DELAY} s",
        DEMAND.len(),
        DEMAND.iter().max().unwrap_or(&0),
        PER_HOST
    );
    println!("ideal:                {:8.1} host-minutes", ideal / 60.0);
    println!(
        "static peak (baseline): {:6.1} host-minutes  ratio {:.2}",
        base / 60.0,
        base / ideal
    );
    for (name, settings, warmup) in [
        (
            "target 100, step 1..10000",
            ScalingSettings::default(),
            60.0,
        ),
        (
            "target 100, step 1..2",
            ScalingSettings {
                max_step: 2,
                ..ScalingSettings::default()
            },
            60.0,
        ),
        (
            "target 80",
            ScalingSettings {
                target_capacity: 80,
                ..ScalingSettings::default()
            },
            60.0,
        ),
        (
            "target 100, warmup 300 s",
            ScalingSettings::default(),
            300.0,
        ),
    ] {
        let o = managed(settings, warmup);
        println!(
            "managed ({name}): {:6.1} host-minutes  ratio {:.2}  (vs static {:.2}); \
             task-minutes in PROVISIONING {:.1}",
            o.host_secs / 60.0,
            o.host_secs / ideal,
            o.host_secs / base,
            o.waiting_task_secs / 60.0
        );
    }
}
