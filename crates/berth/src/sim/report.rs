//! The simulation's pure parts: how the task total is cut into services, latency
//! percentiles, and the report (a table for people, JSON for machines). Kept apart from the
//! I/O so the arithmetic is unit-tested.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Service sizes (tasks each) summing to `total`: uniform in `min..=max` from `seed`, the
/// last one cut to what is left (so it may be below `min` when the total asks for it).
pub fn service_sizes(total: u64, min: u64, max: u64, seed: u64) -> Vec<u64> {
    let (min, max) = (min.max(1), max.max(min.max(1)));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut left = total;
    let mut sizes = Vec::new();
    while left > 0 {
        let n = rng.gen_range(min..=max).min(left);
        sizes.push(n);
        left -= n;
    }
    sizes
}

/// Latency figures of one action, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentile `p` (0..=100) of `sorted` (ascending); 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Latency {
    /// The figures of these samples (milliseconds, any order).
    pub fn of(samples: &[f64]) -> Self {
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        Self {
            samples: s.len(),
            p50_ms: percentile(&s, 50.0),
            p99_ms: percentile(&s, 99.0),
            max_ms: s.last().copied().unwrap_or(0.0),
        }
    }
}

/// One action's latency on the idle server (the baseline) and during the load.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionLatency {
    pub baseline: Latency,
    pub during: Latency,
    /// `during.p99 / baseline.p99` (0 when the baseline has no sample).
    pub p99_ratio: f64,
}

impl ActionLatency {
    pub fn new(baseline: &[f64], during: &[f64]) -> Self {
        let (baseline, during) = (Latency::of(baseline), Latency::of(during));
        let p99_ratio = if baseline.p99_ms > 0.0 {
            during.p99_ms / baseline.p99_ms
        } else {
            0.0
        };
        Self {
            baseline,
            during,
            p99_ratio,
        }
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`, in MiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// `VmRSS` at the end of the run.
    pub rss_mib: f64,
    /// `VmHWM`: the peak.
    pub peak_mib: f64,
}

/// Reads `VmRSS` and `VmHWM` out of a `/proc/<pid>/status` text.
pub fn parse_status(text: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    };
    Some(Memory {
        rss_mib: field("VmRSS:")?,
        peak_mib: field("VmHWM:")?,
    })
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub hosts: u64,
    pub tasks: u64,
    pub services: usize,
    /// Seconds until every simulated agent was registered.
    pub register_secs: f64,
    /// Seconds from the first CreateService until every task was placed (pending or running).
    pub placed_secs: Option<f64>,
    /// Seconds from the first CreateService until every task was RUNNING.
    pub running_secs: Option<f64>,
    /// Tasks RUNNING when the run ended (all of them unless it timed out).
    pub running_tasks: u64,
    /// Whether every task reached RUNNING before the deadline.
    pub complete: bool,
    /// Describe/List latency by action: idle baseline vs during the load.
    pub latency: BTreeMap<String, ActionLatency>,
    /// The server's memory (when the sim started it, or was given its pid).
    pub server_memory: Option<Memory>,
    /// The sim process's own memory (the agents and their fake containers).
    pub sim_memory: Option<Memory>,
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "not reached".to_owned(), |s| format!("{s:.1} s"))
}

fn mem(m: Option<Memory>) -> String {
    m.map_or_else(
        || "unknown".to_owned(),
        |m| format!("{:.0} MiB (peak {:.0} MiB)", m.rss_mib, m.peak_mib),
    )
}

impl Report {
    /// The report as two tables: the run's figures, then latency per action.
    pub fn table(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::NOTHING);
        t.set_header(["FIGURE", "VALUE"]);
        t.add_row(["hosts".to_owned(), self.hosts.to_string()]);
        t.add_row(["tasks".to_owned(), self.tasks.to_string()]);
        t.add_row(["services".to_owned(), self.services.to_string()]);
        t.add_row([
            "hosts registered in".to_owned(),
            format!("{:.1} s", self.register_secs),
        ]);
        t.add_row(["all placed in".to_owned(), secs(self.placed_secs)]);
        t.add_row(["all RUNNING in".to_owned(), secs(self.running_secs)]);
        t.add_row([
            "RUNNING at the end".to_owned(),
            format!("{}/{}", self.running_tasks, self.tasks),
        ]);
        t.add_row(["server memory".to_owned(), mem(self.server_memory)]);
        t.add_row(["sim memory".to_owned(), mem(self.sim_memory)]);
        let mut l = comfy_table::Table::new();
        l.load_preset(comfy_table::presets::NOTHING);
        l.set_header([
            "ACTION",
            "IDLE P50 MS",
            "IDLE P99 MS",
            "LOAD P50 MS",
            "LOAD P99 MS",
            "LOAD MAX MS",
            "P99 RATIO",
            "SAMPLES",
        ]);
        for (action, a) in &self.latency {
            l.add_row([
                action.clone(),
                format!("{:.1}", a.baseline.p50_ms),
                format!("{:.1}", a.baseline.p99_ms),
                format!("{:.1}", a.during.p50_ms),
                format!("{:.1}", a.during.p99_ms),
                format!("{:.1}", a.during.max_ms),
                format!("{:.2}x", a.p99_ratio),
                format!("{}/{}", a.baseline.samples, a.during.samples),
            ]);
        }
        format!("{t}\n\n{l}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_sizes_sum_to_the_total_within_bounds() {
        for (total, min, max) in [
            (1000, 10, 1000),
            (100_000, 10, 1000),
            (7, 10, 20),
            (0, 1, 2),
        ] {
            let sizes = service_sizes(total, min, max, 42);
            assert_eq!(sizes.iter().sum::<u64>(), total);
            let (last, rest) = sizes.split_last().unwrap_or((&0, &[]));
            assert!(rest.iter().all(|&n| (min..=max).contains(&n)), "{sizes:?}");
            assert!(*last <= max);
        }
        assert_eq!(
            service_sizes(500, 10, 100, 1),
            service_sizes(500, 10, 100, 1)
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&s, 50.0), 50.0);
        assert_eq!(percentile(&s, 99.0), 99.0);
        assert_eq!(percentile(&s, 100.0), 100.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        let l = Latency::of(&[5.0, 1.0, 3.0]);
        assert_eq!((l.samples, l.p50_ms, l.max_ms), (3, 3.0, 5.0));
    }

    #[test]
    fn ratio_against_the_baseline() {
        let a = ActionLatency::new(&[2.0, 2.0], &[6.0]);
        assert_eq!(a.p99_ratio, 3.0);
        assert_eq!(ActionLatency::new(&[], &[6.0]).p99_ratio, 0.0);
    }

    #[test]
    fn reads_proc_status_memory() {
        let text = "Name:\tberth\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t4\n";
        assert_eq!(
            parse_status(text),
            Some(Memory {
                rss_mib: 100.0,
                peak_mib: 200.0
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn the_table_names_every_figure() {
        let mut latency = BTreeMap::new();
        latency.insert("ListTasks".to_owned(), ActionLatency::new(&[1.0], &[2.0]));
        let r = Report {
            hosts: 10,
            tasks: 100,
            services: 2,
            register_secs: 0.5,
            placed_secs: Some(1.0),
            running_secs: None,
            running_tasks: 90,
            complete: false,
            latency,
            server_memory: None,
            sim_memory: Some(Memory::default()),
        };
        let t = r.table();
        for s in [
            "all RUNNING in",
            "not reached",
            "90/100",
            "ListTasks",
            "2.00x",
        ] {
            assert!(t.contains(s), "{s} missing from\n{t}");
        }
        let j = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(j["runningSecs"], serde_json::Value::Null);
        assert_eq!(j["latency"]["ListTasks"]["p99Ratio"], 2.0);
    }
}
