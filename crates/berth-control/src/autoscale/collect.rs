//! The metrics pipeline: what agents report and what the load balancer counts, sampled once
//! per period into the in-memory time-series store ([`MetricsHub`]).
//!
//! Series, named as CloudWatch names them:
//! - `AWS/ECS CPUUtilization` and `MemoryUtilization` per service (`ClusterName`,
//!   `ServiceName`): the average over the service's RUNNING tasks of each task's use against
//!   its reservation (one vCPU when it reserves no cpu), in percent, as ECS's service
//!   metrics define them; and per task
//!   (`TaskId`) the same two.
//! - `AWS/ApplicationELB RequestCount` and `RequestCountPerTarget` per target group
//!   (`TargetGroup`, the ARN's `targetgroup/NAME/ID` suffix): requests in the period, and
//!   that divided by the group's healthy targets.
//!
//! With several replicas, each load balancer node counts only the requests it served, while
//! the leader's autoscaler must see them all: every replica's collector writes its own
//! cumulative counts under [`LB_COUNTS`]`{replica}` each period and sums every replica's
//! (its own in memory, the others' as stored) before taking the period's difference. A
//! replica that restarts counts from zero again: the sum drops and that period's difference
//! is taken as zero.
//!
//! Task use comes from the agents' reports, kept in the hub's memory ([`MetricsHub::note_task`]),
//! not from the task records; with several replicas each collector shares its per-service sums
//! through the store (see [`super::samples`]).
//!
//! The last hour of one-minute points is written to the store once a minute and read back at
//! start, so a restart keeps the history the autoscaler's scale-in windows look at.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_lb::{DataPlane, TargetState};
use berth_metrics::{MetricStore, Resolution, SeriesKey, Stat};
use berth_model::Clock;
use berth_store::{Store, StoreExt, Txn};

use super::samples::{
    merge_sums, service_sums, split_sums_key, ReplicaSums, ServiceSums, TaskSample, TASK_SUMS,
};
use tokio_util::sync::CancellationToken;

/// Where the one-minute history is kept across restarts.
pub const HISTORY_KEY: &str = "metrics/minutes";

/// Where each replica keeps its load balancer's cumulative request counts per target group.
pub const LB_COUNTS: &str = "metrics/lb/";

/// A task's stats older than this many periods are not counted.
const FRESH_PERIODS: f64 = 3.0;

/// Series that saw no point for this long are dropped (tasks that ended).
const IDLE_SECS: f64 = 3600.0;

/// The shared time-series store, read by the autoscaler, `/metrics` and the API.
#[derive(Default)]
pub struct MetricsHub {
    store: Mutex<MetricStore>,
    /// Each running task's latest sample, by (cluster, task id), as reported to this replica.
    tasks: Mutex<HashMap<(String, String), TaskSample>>,
}

/// The series key of a service metric (`AWS/ECS`).
pub fn service_key(metric: &str, cluster: &str, service: &str) -> SeriesKey {
    SeriesKey::new(
        "AWS/ECS",
        metric,
        &[("ClusterName", cluster), ("ServiceName", service)],
    )
}

/// The series key of a target group metric (`AWS/ApplicationELB`); `tg` is the ARN or its
/// `targetgroup/NAME/ID` suffix.
pub fn target_group_key(metric: &str, tg: &str) -> SeriesKey {
    let suffix = tg.find("targetgroup/").map_or(tg, |i| &tg[i..]);
    SeriesKey::new("AWS/ApplicationELB", metric, &[("TargetGroup", suffix)])
}

impl MetricsHub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the store, for reads and writes of several series at once (a poisoned lock is taken
    /// anyway: the series stay usable).
    pub fn lock(&self) -> MutexGuard<'_, MetricStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn task_lock(&self) -> MutexGuard<'_, HashMap<(String, String), TaskSample>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `sample` as the task's latest (`None`: the task is ending; forget it).
    pub fn note_task(&self, cluster: &str, task_id: &str, sample: Option<TaskSample>) {
        let key = (cluster.to_owned(), task_id.to_owned());
        let mut tasks = self.task_lock();
        match sample {
            Some(s) => {
                tasks.insert(key, s);
            }
            None => {
                tasks.remove(&key);
            }
        }
    }

    /// Every task's latest sample taken within `fresh` seconds of `now`, with its task id
    /// (older ones, of tasks whose end was never heard of, are forgotten).
    pub fn task_samples(&self, now: f64, fresh: f64) -> Vec<(String, TaskSample)> {
        let mut tasks = self.task_lock();
        tasks.retain(|_, s| now - s.stats.at <= fresh);
        tasks
            .iter()
            .map(|((_, id), s)| (id.clone(), s.clone()))
            .collect()
    }

    /// Points of one series, at ten-second or one-minute resolution.
    pub fn points(
        &self,
        key: &SeriesKey,
        res: Resolution,
        from: f64,
        to: f64,
        stat: Stat,
    ) -> Vec<(f64, f64)> {
        self.lock().points(key, res, from, to, stat)
    }

    /// Appends the latest value of every series as Prometheus gauges.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let store = self.lock();
        let mut lines: Vec<String> = Vec::new();
        for key in store.keys() {
            if let Some((_, v)) = store.latest(key, Resolution::TenSeconds, Stat::Average) {
                lines.push(format!(
                    "berth_metric{{series=\"{}\"}} {v}",
                    key.0.replace('\\', "\\\\").replace('"', "\\\"")
                ));
            }
        }
        lines.sort();
        let _ = writeln!(
            out,
            "# HELP berth_metric Latest ten-second average of each series in berth's metrics store."
        );
        let _ = writeln!(out, "# TYPE berth_metric gauge");
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
    }
}

/// Samples task stats and load-balancer counts into the hub once per period.
pub struct Collector {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hub: Arc<MetricsHub>,
    plane: Option<DataPlane>,
    period: f64,
    /// Whether the persisted history was read back into the hub. Restoring merges, so a
    /// restarted run (after a panic) must not restore again and double the counts.
    restored: AtomicBool,
    /// This replica's id when it shares the store with others (see the module docs).
    replica: Option<String>,
}

impl Collector {
    /// A collector that samples every `period` seconds (at least one) into `hub`; `plane` gives the
    /// load balancers' counts (`None`: no data plane in this process).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hub: Arc<MetricsHub>,
        plane: Option<DataPlane>,
        period: f64,
    ) -> Self {
        Self {
            store,
            clock,
            hub,
            plane,
            period: period.max(1.0),
            restored: AtomicBool::new(false),
            replica: None,
        }
    }

    /// Shares the request counts with the other replicas on the store, as `replica`.
    pub fn with_replica(mut self, replica: impl Into<String>) -> Self {
        self.replica = Some(replica.into());
        self
    }

    /// The request counts of every replica's load balancer: `own` (this one's), published
    /// for the others, plus theirs as they last published them. Without a replica id: `own`.
    pub async fn fleet_counts(&self, own: HashMap<String, u64>) -> HashMap<String, u64> {
        let Some(me) = &self.replica else {
            return own;
        };
        let mine = format!("{LB_COUNTS}{me}");
        match serde_json::to_vec(&own) {
            Ok(bytes) => {
                if let Err(e) = self.store.txn(Txn::new().put(mine.clone(), bytes)).await {
                    tracing::warn!(error = %e, "metrics: request counts not shared");
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: request counts not encoded"),
        }
        let others = match self
            .store
            .list_json::<HashMap<String, u64>>(LB_COUNTS)
            .await
        {
            Ok(all) => all
                .into_iter()
                .filter(|(k, _, _)| *k != mine)
                .map(|(_, v, _)| v),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: other replicas' request counts not read");
                return own;
            }
        };
        merge_counts(own, others)
    }

    /// Restores the persisted history (on the first run only), then samples every period
    /// until `stop` is cancelled (a sample under way completes).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        if !self.restored.swap(true, Ordering::SeqCst) {
            if let Ok(Some(kv)) = self.store.get(HISTORY_KEY).await {
                if let Err(e) = self.hub.lock().restore_minutes(&kv.value) {
                    tracing::warn!(error = %e, "metrics history not restored");
                }
            }
        }
        let mut last_counts: Option<HashMap<String, u64>> = None;
        let mut last_saved = self.clock.now();
        let mut tick = tokio::time::interval(Duration::from_secs_f64(self.period));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = self.clock.now();
            self.sample_tasks(now).await;
            if let Some(plane) = &self.plane {
                let counts = self.fleet_counts(plane.request_counts()).await;
                if let Some(prev) = &last_counts {
                    self.sample_requests(plane, prev, &counts, now);
                }
                last_counts = Some(counts);
            }
            if now - last_saved >= 60.0 {
                last_saved = now;
                let bytes = {
                    let mut m = self.hub.lock();
                    m.remove_idle(now, IDLE_SECS);
                    m.encode_minutes(now - 3600.0)
                };
                let txn = Txn::new().put(HISTORY_KEY, bytes);
                if let Err(e) = self.store.txn(txn).await {
                    tracing::warn!(error = %e, "metrics history not saved");
                }
            }
        }
    }

    /// Records each task's use (the samples this replica holds) and each service's average
    /// (over every replica's samples).
    async fn sample_tasks(&self, now: f64) {
        let fresh = FRESH_PERIODS * self.period.max(10.0);
        let samples = self.hub.task_samples(now, fresh);
        {
            let mut m = self.hub.lock();
            for (id, s) in &samples {
                let dims = [("ClusterName", s.cluster.as_str()), ("TaskId", id.as_str())];
                let (cpu, mem) = (s.cpu_percent(), s.memory_percent());
                m.record(
                    &SeriesKey::new("AWS/ECS", "CPUUtilization", &dims),
                    now,
                    cpu,
                );
                m.record(
                    &SeriesKey::new("AWS/ECS", "MemoryUtilization", &dims),
                    now,
                    mem,
                );
            }
        }
        let own = service_sums(samples.iter().map(|(_, s)| s), now, fresh);
        let all = self.fleet_sums(own, now, fresh).await;
        let mut m = self.hub.lock();
        for (key, sums) in all {
            let Some((cluster, service)) = split_sums_key(&key) else {
                continue;
            };
            let n = f64::from(sums.tasks.max(1));
            let (cpu, mem) = (sums.cpu / n, sums.memory / n);
            m.record(&service_key("CPUUtilization", cluster, service), now, cpu);
            m.record(
                &service_key("MemoryUtilization", cluster, service),
                now,
                mem,
            );
        }
    }

    /// The per-service sums of every replica: `own`, published for the others, plus theirs
    /// as they last published them (if fresh). Without a replica id: `own`.
    async fn fleet_sums(
        &self,
        own: HashMap<String, ServiceSums>,
        now: f64,
        fresh: f64,
    ) -> HashMap<String, ServiceSums> {
        let Some(me) = &self.replica else {
            return own;
        };
        let mine = format!("{TASK_SUMS}{me}");
        let published = ReplicaSums {
            at: now,
            services: own.clone(),
        };
        match serde_json::to_vec(&published) {
            Ok(bytes) => {
                if let Err(e) = self.store.txn(Txn::new().put(mine.clone(), bytes)).await {
                    tracing::warn!(error = %e, "metrics: task sums not shared");
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: task sums not encoded"),
        }
        match self.store.list_json::<ReplicaSums>(TASK_SUMS).await {
            Ok(all) => {
                let others = all
                    .into_iter()
                    .filter(|(k, _, _)| *k != mine)
                    .map(|(_, v, _)| v);
                merge_sums(own, others, now, fresh)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: other replicas' task sums not read");
                own
            }
        }
    }

    fn sample_requests(
        &self,
        plane: &DataPlane,
        prev: &HashMap<String, u64>,
        counts: &HashMap<String, u64>,
        now: f64,
    ) {
        let health = plane.health();
        let mut m = self.hub.lock();
        for (tg, total) in counts {
            let delta = total.saturating_sub(prev.get(tg).copied().unwrap_or(0)) as f64;
            let healthy = health
                .get(tg)
                .map(|ts| {
                    ts.iter()
                        .filter(|t| t.state == TargetState::Healthy)
                        .count()
                })
                .unwrap_or(0);
            m.record(&target_group_key("RequestCount", tg), now, delta);
            m.record(
                &target_group_key("RequestCountPerTarget", tg),
                now,
                delta / healthy.max(1) as f64,
            );
        }
    }
}

/// Every replica's counts summed per target group.
fn merge_counts(
    own: HashMap<String, u64>,
    others: impl IntoIterator<Item = HashMap<String, u64>>,
) -> HashMap<String, u64> {
    let mut sum = own;
    for counts in others {
        for (tg, n) in counts {
            *sum.entry(tg).or_default() += n;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::SystemClock;
    use berth_store::RedbStore;

    /// A supervised restart runs `run` again on the same collector: the persisted history
    /// must be merged into the hub once, not once per run.
    #[tokio::test]
    async fn a_restarted_run_does_not_restore_the_history_twice() {
        let now = SystemClock.now();
        let key = SeriesKey::new("AWS/ECS", "CPUUtilization", &[("ClusterName", "c")]);
        let saved = {
            let mut m = MetricStore::new();
            m.record(&key, now - 120.0, 40.0);
            m.encode_minutes(now - 3600.0)
        };
        let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().unwrap());
        store.txn(Txn::new().put(HISTORY_KEY, saved)).await.unwrap();
        let hub = Arc::new(MetricsHub::new());
        let collector = Arc::new(Collector::new(
            store,
            Arc::new(SystemClock),
            hub.clone(),
            None,
            10.0,
        ));
        let stopped = CancellationToken::new();
        stopped.cancel();
        for _ in 0..2 {
            tokio::time::timeout(
                Duration::from_secs(5),
                collector.clone().run(stopped.clone()),
            )
            .await
            .expect("a cancelled run returns");
        }
        let count = |stat| {
            hub.points(&key, Resolution::OneMinute, now - 3600.0, now, stat)
                .iter()
                .map(|(_, v)| v)
                .sum::<f64>()
        };
        assert_eq!(count(Stat::SampleCount), 1.0);
        assert_eq!(count(Stat::Sum), 40.0);
    }

    #[test]
    fn counts_sum_across_replicas() {
        let own = HashMap::from([("tg/a".to_owned(), 5), ("tg/b".to_owned(), 1)]);
        let other = HashMap::from([("tg/a".to_owned(), 7), ("tg/c".to_owned(), 2)]);
        let sum = merge_counts(own, [other]);
        assert_eq!(sum["tg/a"], 12);
        assert_eq!(sum["tg/b"], 1);
        assert_eq!(sum["tg/c"], 2);
    }

    /// Two replicas' collectors on one store: each sees the other's counts added to its own.
    #[tokio::test]
    async fn replicas_share_their_request_counts_through_the_store() {
        let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().unwrap());
        let collector = |id: &str| {
            Collector::new(
                store.clone(),
                Arc::new(SystemClock),
                Arc::new(MetricsHub::new()),
                None,
                10.0,
            )
            .with_replica(id)
        };
        let (a, b) = (collector("a"), collector("b"));
        let counts = |n| HashMap::from([("tg/x".to_owned(), n)]);
        assert_eq!(a.fleet_counts(counts(3)).await["tg/x"], 3);
        assert_eq!(b.fleet_counts(counts(4)).await["tg/x"], 7);
        assert_eq!(a.fleet_counts(counts(5)).await["tg/x"], 9);
        // A sole server shares nothing.
        let alone = Collector::new(
            store,
            Arc::new(SystemClock),
            Arc::new(MetricsHub::new()),
            None,
            10.0,
        );
        assert_eq!(alone.fleet_counts(counts(1)).await["tg/x"], 1);
    }
}
