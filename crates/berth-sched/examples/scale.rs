//! The scheduler at scale: places 10,000 tasks on 1,000 instances and 100,000 tasks on
//! 10,000 instances in one `place` call each, with spread(instanceId) + binpack(memory),
//! on one thread, and prints placements per second.
//!
//! Baseline, measured in the same process: one naive full scan of the cluster (check every
//! instance, score it, keep the best), i.e. what one placement costs a scheduler without an
//! index or sampling. `ratio` = one placement / one full scan; the last table compares the
//! two cluster sizes (10x the instances).
//!
//! `cargo run --release -p berth-sched --example scale` (optionally `-- RUNS`, default 5).

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use berth_model::TransportProtocol;
use berth_sched::{
    place, sample_size, BinpackField, InstanceView, Resources, SpreadField, Strategy, TaskAsk,
};

const GROUP: &str = "service:web";
/// (tasks, instances)
const RUNS: [(usize, usize); 2] = [(10_000, 1_000), (100_000, 10_000)];

/// A reproducible cluster of realistic hosts: m5.xlarge to m5.4xlarge-like sizes (4 to 16
/// vCPU, 16 to 64 GiB, a little reserved), three zones, 2% draining and 2% disconnected,
/// some tasks of the group and of another service already running.
fn cluster(n: usize) -> Vec<InstanceView> {
    let mut state: u64 = 0x5EED ^ n as u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    (0..n)
        .map(|i| {
            let mut attributes = BTreeMap::new();
            attributes.insert(
                "ecs.availability-zone".to_string(),
                Some(format!("us-east-1{}", ["a", "b", "c"][i % 3])),
            );
            attributes.insert("ecs.os-type".to_string(), Some("linux".to_string()));
            attributes.insert(
                "ecs.instance-type".to_string(),
                Some(["m5.xlarge", "m5.2xlarge", "m5.4xlarge"][i % 3].to_string()),
            );
            let vcpus = 4u64 << (i % 3);
            let existing = (next() % 3) as u32;
            let other = (next() % 4) as u32;
            let mut task_groups = BTreeMap::new();
            if existing > 0 {
                task_groups.insert(GROUP.to_string(), existing);
            }
            if other > 0 {
                task_groups.insert("service:other".to_string(), other);
            }
            let used = u64::from(existing + other);
            let mut ports_in_use = BTreeSet::new();
            ports_in_use.insert((22, TransportProtocol::Tcp));
            InstanceView {
                id: format!("{:08x}-0000-4000-8000-{:012x}", next(), i),
                arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/bench/{i}"),
                active: next() % 50 != 0,
                connected: next() % 50 != 0,
                remaining: Resources::new(
                    vcpus * 1024 - used * 256,
                    vcpus * 4096 - 512 - used * 512,
                ),
                ports_in_use,
                attributes,
                task_groups,
                registered_at: 1.7e9,
                running_tasks: existing + other,
                pending_tasks: 0,
                agent_version: Some("1.80.0".to_string()),
            }
        })
        .collect()
}

fn ask() -> TaskAsk {
    TaskAsk {
        resources: Resources::new(256, 512),
        group: GROUP.to_string(),
        ..TaskAsk::default()
    }
}

fn strategies() -> Vec<Strategy> {
    vec![
        Strategy::Spread {
            field: SpreadField::Instance,
        },
        Strategy::Binpack {
            field: BinpackField::Memory,
        },
    ]
}

/// One placement as a scheduler without an index or sampling does it: look at every
/// instance, check it, score it, keep the best. (A lower bound: it does not count the tasks
/// placed earlier in the call.)
fn naive_scan(instances: &[InstanceView], ask: &TaskAsk) -> Option<usize> {
    let mut best: Option<((u32, u64, u64), usize)> = None;
    for (i, inst) in instances.iter().enumerate() {
        let fits = inst.active
            && inst.connected
            && inst.remaining.cpu >= ask.resources.cpu
            && inst.remaining.memory >= ask.resources.memory
            && !ask.host_ports.iter().any(|p| inst.ports_in_use.contains(p));
        if !fits {
            continue;
        }
        let spread = inst.task_groups.get(&ask.group).copied().unwrap_or(0);
        let key = (spread, inst.remaining.memory, inst.remaining.cpu);
        if best.as_ref().is_none_or(|(k, _)| key < *k) {
            best = Some((key, i));
        }
    }
    best.map(|(_, i)| i)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

struct Row {
    instances: usize,
    per_placement: Duration,
    per_scan: Duration,
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5)
        .max(1);
    let ask = ask();
    let strategies = strategies();
    println!(
        "berth-sched scale: spread(instanceId) + binpack(memory), ask 256 CPU / 512 MiB, \
         one thread, median of {runs} runs\nload average before: {}\n",
        loadavg()
    );
    println!(
        "{:>8} {:>9} {:>6} {:>10} {:>13} {:>13} {:>13} {:>7} {:>9}",
        "tasks",
        "instances",
        "sample",
        "call",
        "placements/s",
        "per placement",
        "full scan",
        "ratio",
        "placed"
    );
    let mut rows = Vec::new();
    for (tasks, n) in RUNS {
        let instances = cluster(n);
        let mut placed = 0;
        let mut spread_max = 0;
        let call = median(
            (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    let out = place(&instances, &ask, tasks, &strategies, &[], 7);
                    let elapsed = start.elapsed();
                    let out = out.unwrap_or_default();
                    placed = out.iter().filter(|r| r.is_ok()).count();
                    let mut per = vec![0u32; n];
                    for p in out.iter().flatten() {
                        per[p.index] += 1;
                    }
                    spread_max = per.iter().copied().max().unwrap_or(0);
                    black_box(out);
                    elapsed
                })
                .collect(),
        );
        // Enough scans for ~20 ms per sample.
        let scans = (2_000_000 / n).max(10) as u32;
        let scan = median(
            (0..runs.max(5))
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..scans {
                        black_box(naive_scan(black_box(&instances), &ask));
                    }
                    start.elapsed() / scans
                })
                .collect(),
        );
        let per = call / tasks as u32;
        println!(
            "{tasks:>8} {n:>9} {:>6} {:>7.1} ms {:>13.0} {:>10.2} µs {:>10.2} µs {:>7.4} {:>9}",
            sample_size(n),
            call.as_secs_f64() * 1e3,
            tasks as f64 / call.as_secs_f64(),
            per.as_secs_f64() * 1e6,
            scan.as_secs_f64() * 1e6,
            per.as_secs_f64() / scan.as_secs_f64(),
            format!("{placed}/{tasks}"),
        );
        println!(
            "{:>38}(most tasks this call put on one instance: {spread_max})",
            ""
        );
        rows.push(Row {
            instances: n,
            per_placement: per,
            per_scan: scan,
        });
    }
    if let [small, large] = &rows[..] {
        let grow = |f: fn(&Row) -> Duration| f(large).as_secs_f64() / f(small).as_secs_f64();
        println!(
            "\n{}x the instances: one placement costs {:.2}x (a full scan {:.2}x; linear = {}x)",
            large.instances / small.instances,
            grow(|r| r.per_placement),
            grow(|r| r.per_scan),
            large.instances / small.instances,
        );
    }
    println!(
        "ratio = one placement / one naive full scan of all instances, same process\n\
         target: >= 50,000 placements/s on one core, growing no worse than linearly\n\
         load average after: {}",
        loadavg()
    );
}
