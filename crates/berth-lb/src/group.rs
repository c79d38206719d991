//! Target groups at run time: registered targets, their health, draining, and the routable
//! snapshot the request path reads.
//!
//! The split follows pingora's `LoadBalancer`: the control side (`apply`, health loops,
//! drain timers) mutates [`GroupCtl`] under a short mutex and then publishes an immutable
//! [`Routable`] through `ArcSwap`; the request path only loads that snapshot and bumps
//! atomics, so a slow health check can never stall traffic.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::uri::Authority;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;

use crate::config::{
    Algorithm, DataPlaneOptions, HealthCheckConfig, TargetConfig, TargetGroupConfig, TargetHealth,
    TargetState,
};
use crate::health::{self, HealthState};
use crate::metrics::{label, GroupMetrics, TargetMetrics};
use crate::upstream::Pool;

pub(crate) type UpstreamClient = Client<HttpConnector, hyper::body::Incoming>;

/// Locks a mutex, ignoring poisoning: every critical section here leaves the data valid.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One registered target.
pub(crate) struct Target {
    pub id: String,
    pub addr: SocketAddr,
    pub authority: Authority,
    /// `target_group="..",target=".."`, pre-rendered for metrics.
    pub labels: String,
    pub in_flight: AtomicU64,
    pub metrics: TargetMetrics,
    /// Idle HTTP/1.1 connections to this target, per serving worker.
    pub pool: Pool,
    draining: AtomicBool,
    /// Signalled when the last in-flight request of a draining target ends.
    idle: Notify,
    health: Mutex<HealthState>,
    health_task: Mutex<Option<AbortHandle>>,
    drain_task: Mutex<Option<AbortHandle>>,
}

impl Target {
    fn new(group_labels: &str, cfg: &TargetConfig, health: HealthState, pools: usize) -> Self {
        let authority = Authority::try_from(cfg.addr.to_string())
            .unwrap_or_else(|_| Authority::from_static("127.0.0.1"));
        Self {
            labels: format!("{group_labels},target=\"{}\"", label(&cfg.id)),
            id: cfg.id.clone(),
            addr: cfg.addr,
            authority,
            in_flight: AtomicU64::new(0),
            metrics: TargetMetrics::default(),
            pool: Pool::new(pools),
            draining: AtomicBool::new(false),
            idle: Notify::new(),
            health: Mutex::new(health),
            health_task: Mutex::new(None),
            drain_task: Mutex::new(None),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn state(&self) -> TargetState {
        lock(&self.health).state
    }

    fn stop_tasks(&self) {
        for slot in [&self.health_task, &self.drain_task] {
            if let Some(h) = lock(slot).take() {
                h.abort();
            }
        }
    }

    pub fn describe(&self) -> TargetHealth {
        let h = lock(&self.health);
        TargetHealth {
            id: self.id.clone(),
            addr: self.addr,
            state: h.state,
            reason: h.reason,
            description: h.description.clone(),
        }
    }
}

/// Counts a request against a target for as long as it is alive (the response body holds
/// it), so least-outstanding-requests and draining see streaming responses too.
pub(crate) struct InFlight(Arc<Target>);

impl InFlight {
    pub fn new(t: Arc<Target>) -> Self {
        t.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(t)
    }

    pub fn target(&self) -> &Arc<Target> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // SeqCst pairs with `start_drain`: either the drainer sees zero or we see `draining`.
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 && self.0.is_draining() {
            self.0.idle.notify_one();
        }
    }
}

/// What the request path needs from a group, immutable once published.
pub(crate) struct Routable {
    pub targets: Vec<Arc<Target>>,
    pub algorithm: Algorithm,
    /// One pool per serving worker, so a request reuses connections of its own thread.
    pub clients: Arc<[UpstreamClient]>,
    pub http2: bool,
}

impl Routable {
    pub fn client(&self) -> &UpstreamClient {
        &self.clients[crate::workers::current() % self.clients.len()]
    }

    /// Chooses a target by the group's algorithm. `rr` is the group's rotating counter.
    /// `skip` is passed over while another target is in the rotation: the second choice
    /// after `skip` refused a connection.
    pub fn pick(&self, rr: &AtomicUsize, skip: Option<&Arc<Target>>) -> Option<&Arc<Target>> {
        let n = self.targets.len();
        if n <= 1 {
            return self.targets.first();
        }
        let skipped = |t: &Arc<Target>| skip.is_some_and(|s| Arc::ptr_eq(s, t));
        let start = rr.fetch_add(1, Ordering::Relaxed) % n;
        let mut ring = (0..n)
            .map(|i| &self.targets[(start + i) % n])
            .filter(|t| !skipped(t));
        match self.algorithm {
            Algorithm::RoundRobin => ring.next(),
            Algorithm::LeastOutstandingRequests => {
                // Rotate the starting point so ties spread instead of piling on the first.
                let mut best: Option<&Arc<Target>> = None;
                let mut best_load = u64::MAX;
                for t in ring {
                    let load = t.in_flight.load(Ordering::Relaxed);
                    if load < best_load {
                        best = Some(t);
                        best_load = load;
                        if load == 0 {
                            break;
                        }
                    }
                }
                best
            }
        }
    }
}

struct GroupCtl {
    /// Registration order; includes draining targets.
    targets: Vec<Arc<Target>>,
    health: Arc<HealthCheckConfig>,
    algorithm: Algorithm,
    http2: bool,
    deregistration_delay: Duration,
    clients: Arc<[UpstreamClient]>,
    closed: bool,
}

/// A target group's run-time state.
pub(crate) struct Group {
    pub id: String,
    /// `target_group=".."`, pre-rendered for metrics.
    pub labels: String,
    pub metrics: Arc<GroupMetrics>,
    pub snapshot: ArcSwap<Routable>,
    pub rr: AtomicUsize,
    ctl: Mutex<GroupCtl>,
    changes: Arc<watch::Sender<u64>>,
    opts: Arc<DataPlaneOptions>,
}

fn clients(http2: bool, opts: &DataPlaneOptions, n: usize) -> Arc<[UpstreamClient]> {
    (0..n.max(1)).map(|_| client(http2, opts)).collect()
}

fn client(http2: bool, opts: &DataPlaneOptions) -> UpstreamClient {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.set_connect_timeout(Some(opts.connect_timeout));
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(opts.upstream_pool_idle)
        .http2_only(http2);
    b.build(conn)
}

pub(crate) fn bump(changes: &watch::Sender<u64>) {
    changes.send_modify(|v| *v = v.wrapping_add(1));
}

impl Group {
    pub fn new(
        cfg: &TargetGroupConfig,
        metrics: Arc<GroupMetrics>,
        changes: Arc<watch::Sender<u64>>,
        opts: Arc<DataPlaneOptions>,
        pools: usize,
    ) -> Arc<Self> {
        let c = clients(cfg.http2_to_targets, &opts, pools);
        let group = Arc::new(Self {
            id: cfg.id.clone(),
            labels: format!("target_group=\"{}\"", label(&cfg.id)),
            metrics,
            snapshot: ArcSwap::from_pointee(Routable {
                targets: Vec::new(),
                algorithm: cfg.algorithm,
                clients: c.clone(),
                http2: cfg.http2_to_targets,
            }),
            rr: AtomicUsize::new(0),
            ctl: Mutex::new(GroupCtl {
                targets: Vec::new(),
                health: Arc::new(cfg.health.clone()),
                algorithm: cfg.algorithm,
                http2: cfg.http2_to_targets,
                deregistration_delay: cfg.deregistration_delay,
                clients: c,
                closed: false,
            }),
            changes,
            opts,
        });
        group.update(cfg);
        group
    }

    /// Brings the group to `cfg`: new targets start checking, removed ones drain, a
    /// re-added draining target is revived.
    pub fn update(self: &Arc<Self>, cfg: &TargetGroupConfig) {
        let mut ctl = lock(&self.ctl);
        let mut changed = false;
        if ctl.http2 != cfg.http2_to_targets {
            ctl.clients = clients(cfg.http2_to_targets, &self.opts, ctl.clients.len());
            ctl.http2 = cfg.http2_to_targets;
        }
        ctl.algorithm = cfg.algorithm;
        ctl.deregistration_delay = cfg.deregistration_delay;
        let toggled = ctl.health.enabled != cfg.health.enabled;
        if *ctl.health != cfg.health {
            ctl.health = Arc::new(cfg.health.clone());
        }
        let enabled = ctl.health.enabled;
        let fresh = || {
            if enabled {
                HealthState::registering()
            } else {
                HealthState::disabled()
            }
        };

        let mut next: Vec<Arc<Target>> = Vec::with_capacity(cfg.targets.len());
        for tc in &cfg.targets {
            if next.iter().any(|t| t.id == tc.id) {
                continue; // duplicate registration
            }
            let existing = ctl
                .targets
                .iter()
                .find(|t| t.id == tc.id && t.addr == tc.addr);
            let target = match existing {
                Some(t) if t.is_draining() => {
                    // Re-registration cancels the drain.
                    if let Some(h) = lock(&t.drain_task).take() {
                        h.abort();
                    }
                    t.draining.store(false, Ordering::SeqCst);
                    *lock(&t.health) = fresh();
                    self.start_checks(t, enabled);
                    changed = true;
                    t.clone()
                }
                Some(t) => {
                    if toggled {
                        t.stop_tasks();
                        *lock(&t.health) = fresh();
                        self.start_checks(t, enabled);
                        changed = true;
                    }
                    t.clone()
                }
                None => {
                    let t = Arc::new(Target::new(&self.labels, tc, fresh(), ctl.clients.len()));
                    self.start_checks(&t, enabled);
                    changed = true;
                    t
                }
            };
            next.push(target);
        }
        // Everything registered before and not kept now drains (or, for a changed address
        // under the same id, is replaced at once: the id no longer names that endpoint).
        for old in std::mem::take(&mut ctl.targets) {
            if next.iter().any(|t| Arc::ptr_eq(t, &old)) {
                continue;
            }
            if old.is_draining() {
                if next.iter().any(|t| t.id == old.id) {
                    old.stop_tasks();
                } else {
                    next.push(old);
                }
                continue;
            }
            changed = true;
            old.stop_tasks();
            if next.iter().any(|t| t.id == old.id) {
                continue;
            }
            if let Some(t) = self.start_drain(old, ctl.deregistration_delay) {
                next.push(t);
            }
        }
        ctl.targets = next;
        self.publish(&ctl);
        drop(ctl);
        if changed {
            bump(&self.changes);
        }
    }

    fn start_checks(self: &Arc<Self>, t: &Arc<Target>, enabled: bool) {
        if !enabled {
            return;
        }
        let task = tokio::spawn(health_loop(Arc::downgrade(self), t.clone()));
        *lock(&t.health_task) = Some(task.abort_handle());
    }

    /// Marks `t` draining; returns it if it must stay registered while requests finish.
    fn start_drain(self: &Arc<Self>, t: Arc<Target>, delay: Duration) -> Option<Arc<Target>> {
        t.draining.store(true, Ordering::SeqCst);
        *lock(&t.health) = HealthState::draining();
        if t.in_flight.load(Ordering::SeqCst) == 0 {
            return None; // ELB completes deregistration at once when nothing is in flight
        }
        let group = Arc::downgrade(self);
        let target = t.clone();
        let task = tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + delay;
            while target.in_flight.load(Ordering::SeqCst) > 0 {
                tokio::select! {
                    _ = target.idle.notified() => {}
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            if let Some(g) = group.upgrade() {
                g.finish_drain(&target);
            }
        });
        *lock(&t.drain_task) = Some(task.abort_handle());
        Some(t)
    }

    fn finish_drain(&self, t: &Arc<Target>) {
        let mut ctl = lock(&self.ctl);
        let before = ctl.targets.len();
        ctl.targets
            .retain(|x| !(Arc::ptr_eq(x, t) && x.is_draining()));
        let removed = ctl.targets.len() != before;
        drop(ctl);
        if removed {
            bump(&self.changes);
        }
    }

    /// Recomputes and swaps the routable snapshot. Called with the control lock held.
    fn publish(&self, ctl: &GroupCtl) {
        let live = ctl.targets.iter().filter(|t| !t.is_draining());
        let targets: Vec<Arc<Target>> = if ctl.health.enabled {
            let healthy: Vec<_> = live
                .clone()
                .filter(|t| t.state() == TargetState::Healthy)
                .cloned()
                .collect();
            if healthy.is_empty() {
                live.cloned().collect() // fail open: no healthy target, use them all
            } else {
                healthy
            }
        } else {
            live.cloned().collect()
        };
        self.snapshot.store(Arc::new(Routable {
            targets,
            algorithm: ctl.algorithm,
            clients: ctl.clients.clone(),
            http2: ctl.http2,
        }));
    }

    /// Stops every background task; the group is being removed.
    pub fn close(&self) {
        let mut ctl = lock(&self.ctl);
        ctl.closed = true;
        for t in &ctl.targets {
            t.stop_tasks();
        }
    }

    pub fn health(&self) -> Vec<TargetHealth> {
        lock(&self.ctl)
            .targets
            .iter()
            .map(|t| t.describe())
            .collect()
    }

    pub fn targets(&self) -> Vec<Arc<Target>> {
        lock(&self.ctl).targets.clone()
    }

    /// Applies one check result; republishes and bumps `changes` if visible state moved.
    fn record(&self, t: &Arc<Target>, probe: health::Probe, cfg: &HealthCheckConfig) {
        let ctl = lock(&self.ctl);
        if ctl.closed || t.is_draining() || !ctl.targets.iter().any(|x| Arc::ptr_eq(x, t)) {
            return;
        }
        let changed = lock(&t.health).step(probe, cfg);
        if changed {
            self.publish(&ctl);
            drop(ctl);
            bump(&self.changes);
        }
    }

    fn check_settings(&self) -> (Arc<HealthCheckConfig>, bool) {
        let ctl = lock(&self.ctl);
        (ctl.health.clone(), ctl.http2)
    }
}

/// One target's check loop: first check at once, then every `interval`.
async fn health_loop(group: std::sync::Weak<Group>, target: Arc<Target>) {
    loop {
        let Some((cfg, http2)) = group.upgrade().map(|g| g.check_settings()) else {
            return;
        };
        let probe = health::probe(target.addr, &cfg, http2).await;
        match group.upgrade() {
            Some(g) => {
                g.record(&target, probe, &cfg);
                target.pool.sweep(g.opts.upstream_pool_idle);
            }
            None => return,
        }
        tokio::time::sleep(cfg.interval).await;
    }
}
