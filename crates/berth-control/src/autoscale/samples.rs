//! Running tasks' resource use, as agents report it: kept in memory (by the replica the agent
//! reports to), never in the task records.
//!
//! Why: the agent samples each running task every few seconds; written into the task's record
//! that was a store write per task per sample, the write load that slowed every Describe call
//! to seconds at 20,000 tasks (measured with `berth sim`). A sample is worth nothing once the
//! next one arrives, and a restarted replica gets fresh ones within a sample period.
//!
//! With several replicas, each holds the samples of the agents that report to it; the leader's
//! autoscaler needs every service's average. Each collector publishes its replica's per-service
//! sums under [`TASK_SUMS`]`{replica}` once per period, and adds the other replicas' fresh
//! sums to its own before it records the service series.

use std::collections::HashMap;

use berth_model::TaskStats;
use serde::{Deserialize, Serialize};

/// Where each replica keeps its per-service sums of task use (see the module docs).
pub const TASK_SUMS: &str = "metrics/tasks/";

/// One running task's latest resource use, with what its utilisation is measured against.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSample {
    /// The task's cluster.
    pub cluster: String,
    /// Its task definition family.
    pub family: String,
    /// Its group (`service:NAME` for a service's task).
    pub group: Option<String>,
    /// The cpu units it reserves (0: none).
    pub cpu: u64,
    /// The memory it reserves, MiB.
    pub memory: u64,
    /// What the agent measured.
    pub stats: TaskStats,
}

impl TaskSample {
    /// The service the task belongs to, if any.
    pub fn service(&self) -> Option<&str> {
        self.group.as_deref()?.strip_prefix("service:")
    }

    /// CPU used, in percent of the reservation (one vCPU, 1024 units, when it reserves none).
    pub fn cpu_percent(&self) -> f64 {
        let basis = if self.cpu == 0 { 1024 } else { self.cpu };
        100.0 * self.stats.cpu_units / basis as f64
    }

    /// Memory used, in percent of the reservation.
    pub fn memory_percent(&self) -> f64 {
        100.0 * self.stats.memory_mib / (self.memory.max(1) as f64)
    }
}

/// The sums of one service's task utilisations (percent) and how many tasks they cover.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceSums {
    /// The sum of the tasks' cpu percentages.
    pub cpu: f64,
    /// The sum of the tasks' memory percentages.
    pub memory: f64,
    /// How many tasks.
    pub tasks: u32,
}

/// What one replica publishes: its sums per `cluster/service`, as of `at`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSums {
    /// When they were taken, epoch seconds.
    pub at: f64,
    /// Per `cluster/service`.
    pub services: HashMap<String, ServiceSums>,
}

/// The `cluster/service` key of a service's sums.
pub fn sums_key(cluster: &str, service: &str) -> String {
    format!("{cluster}/{service}")
}

/// The cluster and service of a `cluster/service` key (cluster names hold no `/`).
pub fn split_sums_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('/')
}

/// Per-service sums of the samples fresh at `now` (taken within `fresh` seconds).
pub fn service_sums<'a>(
    samples: impl IntoIterator<Item = &'a TaskSample>,
    now: f64,
    fresh: f64,
) -> HashMap<String, ServiceSums> {
    let mut out: HashMap<String, ServiceSums> = HashMap::new();
    for s in samples {
        if now - s.stats.at > fresh {
            continue;
        }
        let Some(service) = s.service() else { continue };
        let e = out.entry(sums_key(&s.cluster, service)).or_default();
        e.cpu += s.cpu_percent();
        e.memory += s.memory_percent();
        e.tasks += 1;
    }
    out
}

/// `own` plus every other replica's sums taken within `fresh` seconds of `now` (a replica that
/// went away stops counting once its last sums are stale).
pub fn merge_sums(
    own: HashMap<String, ServiceSums>,
    others: impl IntoIterator<Item = ReplicaSums>,
    now: f64,
    fresh: f64,
) -> HashMap<String, ServiceSums> {
    let mut sum = own;
    for r in others {
        if now - r.at > fresh {
            continue;
        }
        for (k, s) in r.services {
            let e = sum.entry(k).or_default();
            e.cpu += s.cpu;
            e.memory += s.memory;
            e.tasks += s.tasks;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(service: &str, cpu_units: f64, memory_mib: f64, at: f64) -> TaskSample {
        TaskSample {
            cluster: "c".into(),
            family: "f".into(),
            group: Some(format!("service:{service}")),
            cpu: 512,
            memory: 1024,
            stats: TaskStats {
                cpu_units,
                memory_mib,
                at,
            },
        }
    }

    #[test]
    fn sums_count_fresh_samples_of_services_only() {
        let mut lone = sample("x", 512.0, 512.0, 100.0);
        lone.group = None;
        let all = [
            sample("a", 256.0, 512.0, 100.0),
            sample("a", 512.0, 256.0, 95.0),
            sample("b", 512.0, 256.0, 50.0), // stale
            lone,
        ];
        let sums = service_sums(&all, 100.0, 30.0);
        assert_eq!(sums.len(), 1);
        let a = sums["c/a"];
        assert_eq!((a.cpu, a.memory, a.tasks), (150.0, 75.0, 2));
    }

    #[test]
    fn replicas_add_up_until_one_goes_stale() {
        let own = HashMap::from([(
            "c/a".to_owned(),
            ServiceSums {
                cpu: 50.0,
                memory: 10.0,
                tasks: 1,
            },
        )]);
        let other = |at| ReplicaSums {
            at,
            services: own.clone(),
        };
        let both = merge_sums(own.clone(), [other(95.0)], 100.0, 30.0);
        assert_eq!(both["c/a"].tasks, 2);
        assert_eq!(both["c/a"].cpu, 100.0);
        let alone = merge_sums(own.clone(), [other(10.0)], 100.0, 30.0);
        assert_eq!(alone["c/a"], own["c/a"]);
    }
}
