//! What does the metric store cost? One sample every 10 s for 1,000 series (tasks) over one
//! simulated hour: memory held, and time per `record` against a baseline of pushing the same
//! samples into a `Vec<(f64, f64)>` in the same run.
//!
//! `cargo run --release -p berth-metrics --example metrics_cost`

use std::hint::black_box;
use std::time::Instant;

use berth_metrics::{MetricStore, Resolution, SeriesKey, Stat};

const SERIES: usize = 1_000;
const STEPS: usize = 360; // one hour at 10 s
const ROUNDS: usize = 5;

fn main() {
    let keys: Vec<SeriesKey> = (0..SERIES)
        .map(|i| {
            SeriesKey::new(
                "ECS",
                "CPUUtilization",
                &[("cluster", "default"), ("task", &format!("{i:032x}"))],
            )
        })
        .collect();
    let t0 = 1_700_000_000.0;
    let sample = |step: usize, i: usize| {
        let at = t0 + 10.0 * step as f64 + (i % 10) as f64 * 0.7;
        (at, ((step * 31 + i * 17) % 100) as f64)
    };
    let n = SERIES * STEPS;

    let mut best_store = f64::INFINITY;
    let mut best_vec = f64::INFINITY;
    let mut bytes = 0;
    let mut vec_bytes = 0;
    for _ in 0..ROUNDS {
        let mut store = MetricStore::new();
        let start = Instant::now();
        for step in 0..STEPS {
            for (i, key) in keys.iter().enumerate() {
                let (at, v) = sample(step, i);
                store.record(key, at, v);
            }
        }
        best_store = best_store.min(start.elapsed().as_secs_f64());
        bytes = store.approx_bytes();
        black_box(store.latest(&keys[0], Resolution::TenSeconds, Stat::Average));

        // Baseline: the same samples pushed into one Vec per series (grown as it goes).
        let mut vecs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); SERIES];
        let start = Instant::now();
        for step in 0..STEPS {
            for (i, v) in vecs.iter_mut().enumerate() {
                v.push(black_box(sample(step, i)));
            }
        }
        best_vec = best_vec.min(start.elapsed().as_secs_f64());
        vec_bytes = vecs
            .iter()
            .map(|v| v.capacity() * std::mem::size_of::<(f64, f64)>())
            .sum::<usize>();
        black_box(&vecs);
    }

    let per_store = best_store / n as f64 * 1e9;
    let per_vec = best_vec / n as f64 * 1e9;
    println!("{SERIES} series x {STEPS} samples = {n} records (best of {ROUNDS} runs)");
    println!(
        "MetricStore: {:.1} ns/record, approx_bytes = {} ({:.2} MiB, {:.0} B/series)",
        per_store,
        bytes,
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / SERIES as f64
    );
    println!(
        "Vec baseline: {:.1} ns/push, {} bytes of samples ({:.2} MiB, unbounded: grows with time)",
        per_vec,
        vec_bytes,
        vec_bytes as f64 / (1 << 20) as f64
    );
    println!("ratio record/push: {:.1}x", per_store / per_vec);
}
