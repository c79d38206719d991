//! Places 500 tasks with spread(instanceId) + binpack(memory) on 20, 200 and 2,000
//! instances, and compares the cost of one placement with the cost of one naive full scan
//! of the cluster (check every instance, score it, keep the best) measured in the same run:
//! the ratio shows how placement cost grows with the cluster relative to scanning it.
//!
//! `cargo bench -p berth-sched` prints the table first, then criterion's own figures. The
//! large runs (10,000 tasks on 1,000 instances, 100,000 on 10,000) are an example, since
//! criterion's repetitions of them would take minutes:
//! `cargo run --release -p berth-sched --example scale`.

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use berth_model::TransportProtocol;
use berth_sched::{
    place, sample_size, BinpackField, InstanceView, Resources, SpreadField, Strategy, TaskAsk,
};
use criterion::{BenchmarkId, Criterion};

const TASKS: usize = 500;
const SIZES: [usize; 3] = [20, 200, 2_000];
const GROUP: &str = "service:web";

/// A reproducible cluster: three zones, a few draining or disconnected instances, some
/// tasks of the group already running, varied free resources.
fn cluster(n: usize) -> Vec<InstanceView> {
    let mut state: u64 = 0x5EED;
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
            let mut task_groups = BTreeMap::new();
            let existing = (next() % 3) as u32;
            if existing > 0 {
                task_groups.insert(GROUP.to_string(), existing);
            }
            task_groups.insert("service:other".to_string(), (next() % 4) as u32);
            let mut ports_in_use = BTreeSet::new();
            ports_in_use.insert((22, TransportProtocol::Tcp));
            InstanceView {
                id: format!("{:08x}-0000-4000-8000-{:012x}", next(), i),
                arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/bench/{i}"),
                active: next() % 50 != 0,
                connected: next() % 50 != 0,
                remaining: Resources::new(4096 + (next() % 4) * 1024, 8192 + (next() % 8) * 1024),
                ports_in_use,
                attributes,
                task_groups,
                registered_at: 1.7e9,
                running_tasks: existing,
                pending_tasks: 0,
                agent_version: Some("1.80.0".to_string()),
            }
        })
        .collect()
}

fn ask() -> TaskAsk {
    TaskAsk {
        resources: Resources::new(128, 256),
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

/// What a scheduler without an index or sampling does for each placement: look at every
/// instance, check it, score it, keep the best. (A lower bound: it does not even count the
/// tasks placed earlier in the call.)
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

/// Median time of `f` over `runs` runs.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn summary() {
    let ask = ask();
    let strategies = strategies();
    println!(
        "berth-sched: {TASKS} tasks, spread(instanceId) + binpack(memory); median of runs \
         (load average {})\n\
         {:>9} {:>7} {:>15} {:>13} {:>16} {:>7}",
        loadavg(),
        "instances",
        "sample",
        "per placement",
        "placements/s",
        "naive full scan",
        "ratio"
    );
    for n in SIZES {
        let instances = cluster(n);
        let mut placed = 0;
        let call = median(15, || {
            let out = place(&instances, &ask, TASKS, &strategies, &[], 7);
            placed = out
                .map(|v| v.iter().filter(|r| r.is_ok()).count())
                .unwrap_or(0);
            black_box(placed);
        });
        let scans = 200;
        let scan = median(15, || {
            for _ in 0..scans {
                black_box(naive_scan(black_box(&instances), &ask));
            }
        }) / scans;
        let per = call / TASKS as u32;
        println!(
            "{n:>9} {:>7} {:>12.2} µs {:>13.0} {:>13.2} µs {:>7.3}   ({placed} placed)",
            sample_size(n),
            per.as_secs_f64() * 1e6,
            1.0 / per.as_secs_f64(),
            scan.as_secs_f64() * 1e6,
            per.as_secs_f64() / scan.as_secs_f64(),
        );
    }
    println!(
        "ratio = one placement / one naive full scan of all instances\n\
         10,000 tasks on 1,000 and 100,000 on 10,000 instances: \
         cargo run --release -p berth-sched --example scale\n"
    );
}

fn benches(c: &mut Criterion) {
    let ask = ask();
    let strategies = strategies();
    let mut group = c.benchmark_group("place_500");
    for n in SIZES {
        let instances = cluster(n);
        group.bench_with_input(BenchmarkId::new("place", n), &instances, |b, inst| {
            b.iter(|| place(inst, &ask, TASKS, &strategies, &[], 7))
        });
        group.bench_with_input(
            BenchmarkId::new("naive_full_scan", n),
            &instances,
            |b, inst| b.iter(|| naive_scan(inst, &ask)),
        );
    }
    group.finish();
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    if benching {
        summary();
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
}
