//! The service controller: keeps every service's tasks where [`decide`] says they should
//! be, and gives up on hosts whose agent is gone.
//!
//! It is a keyed controller ([`crate::runtime`]): the keys are services and clusters' host
//! sets ([`Key`]); watches on `services/`, `tasks/` and `instances/` queue the keys a change
//! concerns (`sources`), and a reconcile reads only its own object: the service record, its
//! tasks through the service-task index, its cluster's instances, its task definitions and
//! target registrations. It decides (pure, in [`decide`]) and applies: stops first, then
//! launches, then the service record (compare-and-swap; a lost race queues the key again).
//! A reconcile asks to look again for timers no write announces (grace periods, backoff,
//! draining, a deployment in progress); a resync of every key every
//! [`RESYNC_SECS`] covers anything else.

mod decide;
mod hosts;
mod reconcile;
mod sources;
mod targets;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_model::{Clock, Service};
use berth_sched::{Constraint, SpreadField, Strategy};
use berth_store::Store;
use tokio_util::sync::CancellationToken;

pub use decide::{
    counts, decide, failed, failure_threshold, host_lost, is_repeat, placement_event, Input,
    Launch, LbHealth, Plan, StopReason,
};

use crate::launch::Launcher;
use crate::runtime::{Controller, ReconcileError, ReconcileFuture, Reconciler, Stats};

/// What the service controller reconciles.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// The hosts of a cluster: tasks on hosts whose agent is gone are given up.
    Hosts(String),
    /// One service.
    Service {
        /// Its cluster.
        cluster: String,
        /// Its name.
        name: String,
    },
}

impl Key {
    /// The key of service `name` in `cluster`.
    pub fn service(cluster: &str, name: &str) -> Self {
        Key::Service {
            cluster: cluster.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// How often every key is queued whatever the watches said.
pub const RESYNC_SECS: u64 = 30;

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The region named in ARNs the controller writes into events and failures.
    pub region: String,
    /// The account id named in those ARNs.
    pub account_id: String,
    /// Seconds without a poll after which an agent counts as disconnected.
    pub agent_timeout_secs: f64,
    /// Seconds without a poll after which a host's tasks are given up and replaced.
    pub host_lost_secs: f64,
}

/// Keeps every service at its desired count and rolls out its deployments.
pub struct ServiceController {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    launcher: Arc<Launcher>,
    cfg: ControllerConfig,
    /// When this controller started: agents get the host-lost timeout from here at least.
    started_at: f64,
    /// Services whose last launch placed nothing, and when to try again. A failed placement
    /// still writes the cluster's placement key, which wakes this loop: without the pause a
    /// service that cannot be placed would spin it. (In memory: a restart just tries again.)
    placement_hold: std::sync::Mutex<HashMap<String, f64>>,
    /// The load balancer's view of target health (None: no data plane in this process, so
    /// targets are never waited for).
    target_health: Option<Arc<dyn berth_model::lb::TargetHealthSource>>,
}

/// How often a task waiting for its load-balancer targets to drain is looked at again.
const DRAIN_CHECK_SECS: f64 = 0.1;
/// How often tasks whose targets are not healthy yet are looked at again.
const HEALTH_CHECK_SECS: f64 = 0.25;

/// How long a service whose tasks could not be placed waits before trying again (any pass).
const PLACEMENT_RETRY_SECS: f64 = 1.0;

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A deployment id as ECS writes them: `ecs-svc/` and 19 digits.
pub fn deployment_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 10u128.pow(19);
    format!("ecs-svc/{n:019}")
}

/// The placement a service asks for: its strategies, or spread over instances. (CreateService
/// and UpdateService refuse entries the scheduler would not take, so none is dropped here.)
fn placement(svc: &Service) -> (Vec<Strategy>, Vec<Constraint>) {
    let mut strategies: Vec<Strategy> = svc
        .placement_strategy
        .iter()
        .filter_map(|s| Strategy::try_from(s).ok())
        .collect();
    if strategies.is_empty() {
        strategies = vec![Strategy::Spread {
            field: SpreadField::Instance,
        }];
    }
    let constraints = svc
        .placement_constraints
        .iter()
        .filter_map(|c| Constraint::try_from(c).ok())
        .collect();
    (strategies, constraints)
}

impl ServiceController {
    /// A controller over `store`, launching through `launcher`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        launcher: Arc<Launcher>,
        cfg: ControllerConfig,
    ) -> Self {
        let started_at = clock.now();
        Self {
            store,
            clock,
            launcher,
            cfg,
            started_at,
            placement_hold: std::sync::Mutex::new(HashMap::new()),
            target_health: None,
        }
    }

    /// Reads target health from the load balancer's data plane: tasks of services with
    /// `loadBalancers` count as healthy only when their targets are, and are drained before
    /// they stop.
    pub fn with_target_health(
        mut self,
        source: Arc<dyn berth_model::lb::TargetHealthSource>,
    ) -> Self {
        self.target_health = Some(source);
        self
    }

    fn instance_arn(&self, cluster: &str, id: &str) -> String {
        format!(
            "arn:aws:ecs:{}:{}:container-instance/{cluster}/{id}",
            self.cfg.region, self.cfg.account_id
        )
    }

    /// Runs the controller until `stop` is cancelled. A restarted run keeps the controller's
    /// memory (start time, placement holds), so it takes the `Arc`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        self.run_with_stats(stop, |_| {}).await
    }

    /// [`run`](Self::run), handing the controller's counters to `stats` first (tests and
    /// benchmarks count reconciles with them).
    pub async fn run_with_stats(
        self: Arc<Self>,
        stop: CancellationToken,
        stats: impl FnOnce(Arc<Stats>),
    ) {
        let store = self.store.clone();
        let controller = Controller::new("services", self).concurrency(4);
        stats(controller.stats());
        let src = Arc::new(sources::Sources::new(controller.trigger()));
        let from = loop {
            let listed = async {
                let rev = store.revision().await?;
                src.resync(&*store).await?;
                Ok::<_, berth_store::StoreError>(rev)
            };
            match listed.await {
                Ok(rev) => break rev,
                Err(e) => {
                    tracing::warn!(error = %e, "service controller cannot list; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        let follow = |prefix: &'static str, on: fn(&sources::Sources, &berth_store::WatchEvent)| {
            let (store, src, stop) = (store.clone(), src.clone(), stop.clone());
            async move {
                let resync = || {
                    let (store, src) = (store.clone(), src.clone());
                    tokio::spawn(async move {
                        if let Err(e) = src.resync(&*store).await {
                            tracing::warn!(error = %e, "service controller resync failed");
                        }
                    });
                };
                crate::runtime::follow(
                    store.clone(),
                    prefix,
                    from,
                    |ev| on(&src, ev),
                    resync,
                    stop.cancelled(),
                )
                .await
            }
        };
        let resync = {
            let (store, src, stop) = (store.clone(), src.clone(), stop.clone());
            async move {
                let mut every = tokio::time::interval(Duration::from_secs(RESYNC_SECS));
                every.tick().await;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = every.tick() => {
                            if let Err(e) = src.resync(&*store).await {
                                tracing::warn!(error = %e, "service controller resync failed");
                            }
                        }
                    }
                }
            }
        };
        tokio::join!(
            controller.run(stop.cancelled()),
            follow(berth_model::keys::SERVICES, sources::Sources::on_service),
            follow(berth_model::keys::TASKS, sources::Sources::on_task),
            follow("instances/", sources::Sources::on_instance),
            resync,
        );
    }
}

impl Reconciler for ServiceController {
    type Key = Key;

    fn reconcile<'a>(&'a self, key: &'a Key) -> ReconcileFuture<'a> {
        Box::pin(async move {
            let next = match key {
                Key::Hosts(cluster) => self.reconcile_hosts(cluster).await,
                Key::Service { cluster, name } => self.reconcile_service(cluster, name).await,
            };
            next.map_err(|e| Box::new(e) as ReconcileError)
        })
    }
}

#[cfg(test)]
mod controller_tests;
