//! berth's load balancer data plane: an HTTP reverse proxy that behaves like an AWS
//! Application Load Balancer, so services registered through the ELBv2 API get the routing,
//! health checking and draining their owners expect.
//!
//! Start with [`DataPlane`]: the control plane calls [`DataPlane::apply`] with the whole
//! desired [`Config`] whenever targets or rules change, and reads [`DataPlane::health`] to
//! answer `DescribeTargetHealth` (watching [`DataPlane::changes`] to know when to).
//!
//! The control plane stays off the data path: `apply`, the health checkers and drain timers
//! mutate state under short locks and publish immutable snapshots through `ArcSwap`; a
//! request only loads snapshots and bumps atomics (pingora's `LoadBalancer` shape).
//!
//! - `matcher`: rule conditions (pure, unit-tested); `routing`: a listener's compiled rules.
//! - `group`: targets, routable snapshots, least-outstanding / round-robin, draining.
//! - `health`: ELB's health-check state machine and probe.
//! - `proxy`: the request path; `listener`: sockets and graceful close.
//! - `upstream`: the HTTP/1.1 client to targets, task-less connections driven by the request
//!   that holds them (HTTP/2 targets go through hyper's client).
//! - `admission`: connection caps in total and per client address, shared with the API's
//!   accept loop ([`Admission`], sized by [`fd_share`]).
//! - `workers`: optional thread-per-core serving ([`DataPlaneOptions::workers`]), which
//!   keeps each request and its pooled upstream connection on one thread.

#![warn(missing_docs)]

mod admission;
mod config;
mod group;
mod health;
mod listener;
mod matcher;
mod metrics;
mod proxy;
mod redirect;
mod routing;
mod upstream;
mod workers;

pub use admission::{fd_share, open_file_limit, Admission, ConnectionCaps, Refused, Ticket};
pub use config::{
    Action, Algorithm, Condition, Config, DataPlaneOptions, HealthCheckConfig, ListenerConfig,
    RuleConfig, TargetConfig, TargetGroupConfig, TargetHealth, TargetState, DEFAULT_IDLE_TIMEOUT,
};
pub use matcher::RuleError;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::HeaderValue;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::group::{lock, Group};
use crate::listener::ListenerHandle;
use crate::metrics::{GroupMetrics, ListenerMetrics};
use crate::proxy::ListenerShared;
use crate::routing::Routing;

/// Why a listener could not be (re)configured; `apply` reports it per listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The listener's socket could not be bound (port taken by another process, no
    /// permission, ...).
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address from [`ListenerConfig::bind`].
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Another of this data plane's listeners (its id given) is bound to the same address;
    /// checked before binding, so the error names the listener rather than the OS's EADDRINUSE.
    #[error("address already in use by listener {0}")]
    InUse(String),
    /// One of the listener's rules could not be compiled.
    #[error(transparent)]
    Rule(#[from] RuleError),
}

/// The load balancer's data plane. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct DataPlane {
    inner: Arc<Inner>,
}

struct Inner {
    opts: Arc<DataPlaneOptions>,
    /// Empty: serve on the runtime that calls `apply`.
    workers: workers::Workers,
    /// Client connections of every listener.
    admission: Arc<Admission>,
    /// Serialises `apply` and `shutdown` (they await binds and closes).
    apply_lock: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    changes: Arc<watch::Sender<u64>>,
    /// Outlive `apply` so counters stay monotonic.
    group_metrics: Mutex<HashMap<String, Arc<GroupMetrics>>>,
    listener_metrics: Mutex<HashMap<String, Arc<ListenerMetrics>>>,
}

#[derive(Default)]
struct State {
    listeners: HashMap<String, ListenerHandle>,
    groups: HashMap<String, Arc<Group>>,
}

impl Default for DataPlane {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = lock(&self.inner.state);
        f.debug_struct("DataPlane")
            .field("listeners", &st.listeners.keys().collect::<Vec<_>>())
            .field("target_groups", &st.groups.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl DataPlane {
    /// A data plane with ALB's default timeouts and nothing configured.
    pub fn new() -> Self {
        Self::with_options(DataPlaneOptions::default())
    }

    /// A data plane with explicit timeouts (tests shrink them).
    pub fn with_options(opts: DataPlaneOptions) -> Self {
        let (changes, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                workers: workers::Workers::start(opts.workers),
                admission: Admission::new(
                    opts.connection_caps
                        .unwrap_or_else(|| admission::fd_share(1, 4)),
                ),
                opts: Arc::new(opts),
                apply_lock: tokio::sync::Mutex::new(()),
                state: Mutex::new(State::default()),
                changes: Arc::new(changes),
                group_metrics: Mutex::new(HashMap::new()),
                listener_metrics: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Replaces the whole configuration. Binds new listeners, closes removed ones, swaps
    /// rules and target sets atomically. Targets absent from the new config that were
    /// present before go to `draining`. Returns per-listener errors (bind failures, invalid
    /// rules) instead of failing the whole apply; such a listener keeps its previous state.
    pub async fn apply(&self, cfg: Config) -> Vec<(String, String)> {
        let _serial = self.inner.apply_lock.lock().await;
        let inner = &self.inner;

        // Target groups first, so rules can resolve them.
        let groups: HashMap<String, Arc<Group>> = {
            let mut st = lock(&inner.state);
            let mut next = HashMap::with_capacity(cfg.target_groups.len());
            for tg in &cfg.target_groups {
                let g = match st.groups.remove(&tg.id) {
                    Some(g) => {
                        g.update(tg);
                        g
                    }
                    None => {
                        let m = lock(&inner.group_metrics)
                            .entry(tg.id.clone())
                            .or_default()
                            .clone();
                        Group::new(
                            tg,
                            m,
                            inner.changes.clone(),
                            inner.opts.clone(),
                            inner.workers.len(),
                        )
                    }
                };
                next.insert(tg.id.clone(), g);
            }
            for (_, old) in std::mem::replace(&mut st.groups, next.clone()) {
                old.close();
            }
            next
        };

        let mut errors = Vec::new();
        // Listeners that go away, or move to another address, close first so their ports
        // are free for this apply's binds.
        let closing: Vec<ListenerHandle> = {
            let mut st = lock(&inner.state);
            let ids: Vec<String> = st
                .listeners
                .iter()
                .filter(|(id, h)| {
                    !cfg.listeners
                        .iter()
                        .any(|l| &l.id == *id && l.bind == h.bind)
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| st.listeners.remove(id))
                .collect()
        };
        for h in closing {
            drop(h.close().await); // in-flight requests finish in the background
        }

        for lc in &cfg.listeners {
            let routing = match Routing::compile(lc, &groups) {
                Ok(r) => r,
                Err(e) => {
                    errors.push((lc.id.clone(), ListenerError::from(e).to_string()));
                    continue;
                }
            };
            let existing = lock(&inner.state)
                .listeners
                .get(&lc.id)
                .map(|h| h.shared.clone());
            let idle_ms = lc
                .idle_timeout
                .unwrap_or(inner.opts.idle_timeout)
                .as_millis() as u64;
            if let Some(shared) = existing {
                shared.routing.store(Arc::new(routing));
                shared.idle_ms.store(idle_ms, Relaxed);
                continue;
            }
            let sockets = match self.bind(lc).await {
                Ok(s) => s,
                Err(e) => {
                    errors.push((lc.id.clone(), e.to_string()));
                    continue;
                }
            };
            let port = sockets
                .first()
                .and_then(|(l, _)| l.local_addr().ok())
                .map_or(lc.bind.port(), |a| a.port());
            let metrics = lock(&inner.listener_metrics)
                .entry(lc.id.clone())
                .or_default()
                .clone();
            let shared = Arc::new(ListenerShared {
                routing: ArcSwap::from_pointee(routing),
                metrics,
                port,
                port_header: HeaderValue::from(port),
                opts: inner.opts.clone(),
                idle_ms: idle_ms.into(),
                admission: inner.admission.clone(),
            });
            let h = ListenerHandle::start(sockets, lc.bind, shared);
            lock(&inner.state).listeners.insert(lc.id.clone(), h);
        }
        errors
    }

    /// Binds a listener's socket, exclusively: served on the caller's runtime, or by every
    /// worker through its own descriptor of the one socket.
    async fn bind(
        &self,
        lc: &ListenerConfig,
    ) -> Result<Vec<(std::net::TcpListener, tokio::runtime::Handle)>, ListenerError> {
        let err = |source| ListenerError::Bind {
            addr: lc.bind,
            source,
        };
        let workers = self.inner.workers.handles();
        if workers.is_empty() {
            let l = TcpListener::bind(lc.bind).await.map_err(err)?;
            return Ok(vec![(
                l.into_std().map_err(err)?,
                tokio::runtime::Handle::current(),
            )]);
        }
        // Name the listener already on this address (the OS would only say EADDRINUSE).
        if lc.bind.port() != 0 {
            let st = lock(&self.inner.state);
            if let Some((other, _)) = st.listeners.iter().find(|(_, h)| h.bind == lc.bind) {
                return Err(ListenerError::InUse(other.clone()));
            }
        }
        let sockets = workers::bind_shared(lc.bind, workers.len()).map_err(err)?;
        Ok(sockets.into_iter().zip(workers.iter().cloned()).collect())
    }

    /// Whether a listener could be bound on `addr` now: yes if one of this plane's listeners
    /// holds it (the caller knows whether that listener is going away), else a trial bind.
    pub fn check_bindable(&self, addr: SocketAddr) -> Result<(), ListenerError> {
        if lock(&self.inner.state)
            .listeners
            .values()
            .any(|h| h.bind == addr)
        {
            return Ok(());
        }
        std::net::TcpListener::bind(addr)
            .map(drop)
            .map_err(|source| ListenerError::Bind { addr, source })
    }

    /// The address a listener is bound to (resolves port 0 to the ephemeral port).
    pub fn local_addr(&self, listener_id: &str) -> Option<SocketAddr> {
        lock(&self.inner.state)
            .listeners
            .get(listener_id)
            .map(|h| SocketAddr::new(h.bind.ip(), h.shared.port))
    }

    /// Snapshot of every target's health, per target group id, including draining targets.
    pub fn health(&self) -> HashMap<String, Vec<TargetHealth>> {
        let groups: Vec<Arc<Group>> = lock(&self.inner.state).groups.values().cloned().collect();
        groups.iter().map(|g| (g.id.clone(), g.health())).collect()
    }

    /// Bumped whenever any target's state changes (health transition, drain finished).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Total requests forwarded per target group id since start (monotonic).
    pub fn request_counts(&self) -> HashMap<String, u64> {
        lock(&self.inner.group_metrics)
            .iter()
            .map(|(id, m)| (id.clone(), m.requests.load(Relaxed)))
            .collect()
    }

    /// Appends Prometheus text-format metrics.
    pub fn render_metrics(&self, out: &mut String) {
        let mut listeners: Vec<(String, Arc<ListenerMetrics>)> = lock(&self.inner.listener_metrics)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        listeners.sort_by(|a, b| a.0.cmp(&b.0));
        let mut all_groups: Vec<(String, Arc<GroupMetrics>)> = lock(&self.inner.group_metrics)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all_groups.sort_by(|a, b| a.0.cmp(&b.0));
        let mut live: Vec<Arc<Group>> = lock(&self.inner.state).groups.values().cloned().collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));

        metrics::render_listeners(out, &listeners);
        metrics::render_open(out, self.inner.admission.open());
        metrics::render_groups(out, &all_groups);
        metrics::render_live(out, &live);
    }

    /// Stops all listeners; in-flight requests finish, bounded by
    /// [`DataPlaneOptions::shutdown_timeout`]. Health checks and drain timers stop too.
    pub async fn shutdown(&self) {
        let _serial = self.inner.apply_lock.lock().await;
        let (listeners, groups) = {
            let mut st = lock(&self.inner.state);
            (
                st.listeners.drain().map(|(_, h)| h).collect::<Vec<_>>(),
                st.groups.drain().map(|(_, g)| g).collect::<Vec<_>>(),
            )
        };
        let mut tasks = Vec::new();
        for h in listeners {
            tasks.extend(h.close().await);
        }
        let bound = self.inner.opts.shutdown_timeout + Duration::from_secs(1);
        for t in tasks {
            let _ = tokio::time::timeout(bound, t).await;
        }
        for g in groups {
            g.close();
        }
    }
}
