//! The service controller: a level-triggered loop that keeps every service's tasks where
//! [`decide`] says they should be, and gives up on hosts whose agent is gone.
//!
//! Each pass reads every cluster that has services or instances, decides per service, and
//! applies: stops first, then launches, then the service record (compare-and-swap; a lost
//! race just means the next pass decides again). A pass runs on every store change (after a
//! few milliseconds of debounce, so a burst of agent reports costs one pass) and at least
//! once a second, which covers backoff timers, grace periods and host-loss timeouts.

mod decide;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use berth_model::{
    keys, Clock, ContainerInstance, Deployment, Service, StopCode, Task, TaskDefinition,
};
use berth_sched::{Constraint, SpreadField, Strategy};
use berth_store::{Store, StoreExt, Txn, TxnResult};
use futures::StreamExt;

mod targets;

pub use decide::{
    counts, decide, failed, failure_threshold, host_lost, is_repeat, placement_event, Input,
    Launch, LbHealth, Plan,
};

use crate::launch::{instance_views, LaunchSpec, Launcher};
use crate::lifecycle;
use crate::snapshot::ClusterSnapshot;

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The region named in ARNs the controller writes into events and failures.
    pub region: String,
    pub account_id: String,
    /// Seconds without a poll after which an agent counts as disconnected.
    pub agent_timeout_secs: f64,
    /// Seconds without a poll after which a host's tasks are given up and replaced.
    pub host_lost_secs: f64,
}

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

    /// Runs passes until the task is dropped.
    pub async fn run(self) {
        let mut changes = self
            .store
            .watch("", self.store.revision().await.unwrap_or(0));
        loop {
            let wait = match self.pass().await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "service controller pass failed");
                    1.0
                }
            };
            let tick = tokio::time::sleep(Duration::from_secs_f64(wait.clamp(0.05, 1.0)));
            tokio::select! {
                ev = changes.next() => {
                    if ev.is_none() || matches!(ev, Some(Err(_))) {
                        // Resubscribe from now; the pass below rereads everything anyway.
                        let rev = self.store.revision().await.unwrap_or(0);
                        changes = self.store.watch("", rev);
                    }
                    // Debounce: let a burst of writes land before the next pass.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    while let Some(Some(_)) = futures::FutureExt::now_or_never(changes.next()) {}
                }
                _ = tick => {}
            }
        }
    }

    /// One pass over every cluster. Returns how soon the next pass is needed at the latest.
    pub async fn pass(&self) -> Result<f64, berth_model::ApiError> {
        let services = self
            .store
            .list_json::<Service>(keys::SERVICES)
            .await
            .map_err(crate::store_err)?;
        let instances = self
            .store
            .list_json::<ContainerInstance>("instances/")
            .await
            .map_err(crate::store_err)?;
        let mut clusters: BTreeSet<String> = services
            .iter()
            .filter(|(_, s, _)| s.status != berth_model::ServiceStatus::Inactive)
            .map(|(_, s, _)| s.cluster.clone())
            .collect();
        clusters.extend(instances.iter().map(|(_, i, _)| i.cluster.clone()));
        let mut next: f64 = 1.0;
        for cluster in clusters {
            let snap = ClusterSnapshot::load(&*self.store, &cluster)
                .await
                .map_err(crate::store_err)?;
            self.give_up_lost_hosts(&snap).await?;
            let mut taskdefs: HashMap<(String, u32), Option<TaskDefinition>> = HashMap::new();
            for (_, svc, rev) in services.iter().filter(|(_, s, _)| s.cluster == cluster) {
                if let Some(w) = self.reconcile(svc, *rev, &snap, &mut taskdefs).await? {
                    next = next.min(w);
                }
            }
        }
        Ok(next)
    }

    /// Tasks on hosts whose agent has been silent too long are stopped, so services replace
    /// them. When the host returns, its agent no longer finds them assigned and stops them.
    async fn give_up_lost_hosts(
        &self,
        snap: &ClusterSnapshot,
    ) -> Result<(), berth_model::ApiError> {
        let now = self.clock.now();
        for (inst, _) in &snap.instances {
            let Some(silent) = host_lost(inst, now, self.started_at, self.cfg.host_lost_secs)
            else {
                continue;
            };
            for (t, _) in snap.tasks.iter().filter(|(t, _)| {
                t.container_instance_id.as_deref() == Some(inst.id.as_str()) && t.holds_resources()
            }) {
                let reason = format!(
                    "Host lost: the agent of container instance {} has not been heard from for {silent:.0} s",
                    inst.id
                );
                lifecycle::update_task(&self.store, &t.cluster, &t.id, |t| {
                    if t.holds_resources() {
                        lifecycle::force_stopped(t, StopCode::InfrastructureHealth, &reason, now);
                        true
                    } else {
                        false
                    }
                })
                .await?;
                tracing::warn!(task = %t.id, instance = %inst.id, "host lost; task stopped");
            }
        }
        Ok(())
    }

    async fn taskdef(
        &self,
        cache: &mut HashMap<(String, u32), Option<TaskDefinition>>,
        family: &str,
        revision: u32,
    ) -> Result<Option<TaskDefinition>, berth_model::ApiError> {
        let key = (family.to_owned(), revision);
        if !cache.contains_key(&key) {
            let td = self
                .store
                .get_json::<TaskDefinition>(&keys::taskdef(family, revision))
                .await
                .map_err(crate::store_err)?
                .map(|(td, _)| td);
            cache.insert(key.clone(), td);
        }
        Ok(cache.get(&key).cloned().flatten())
    }

    async fn reconcile(
        &self,
        svc: &Service,
        rev: u64,
        snap: &ClusterSnapshot,
        taskdefs: &mut HashMap<(String, u32), Option<TaskDefinition>>,
    ) -> Result<Option<f64>, berth_model::ApiError> {
        if svc.status == berth_model::ServiceStatus::Inactive {
            return Ok(None);
        }
        let now = self.clock.now();
        let group = svc.group();
        let tasks: Vec<&Task> = snap
            .tasks
            .iter()
            .map(|(t, _)| t)
            .filter(|t| t.group.as_deref() == Some(group.as_str()))
            .collect();
        // The decision takes `tasks`; the load-balancer bookkeeping after it reads them too.
        let group_tasks = tasks.clone();
        let instances: Vec<ContainerInstance> =
            snap.instances.iter().map(|(i, _)| i.clone()).collect();
        let (strategies, constraints) = placement(svc);
        let daemon_instances = if svc.scheduling_strategy == berth_model::SchedulingStrategy::Daemon
        {
            let arn_of = |id: &str| self.instance_arn(&svc.cluster, id);
            instance_views(snap, now, self.cfg.agent_timeout_secs, &arn_of)
                .into_iter()
                .filter(|v| v.active)
                .filter(|v| {
                    constraints.iter().all(|c| match c {
                        Constraint::MemberOf(e) => e.matches(v),
                        _ => true,
                    })
                })
                .map(|v| v.id)
                .collect()
        } else {
            Vec::new()
        };
        let mut checked: HashMap<String, bool> = HashMap::new();
        for d in &svc.deployments {
            let td = self.taskdef(taskdefs, &d.family, d.revision).await?;
            checked.insert(
                d.id.clone(),
                td.is_some_and(|td| {
                    td.container_definitions
                        .iter()
                        .any(|c| c.is_essential() && c.health_check.is_some())
                }),
            );
        }
        let health_checked = |d: &Deployment| checked.get(&d.id).copied().unwrap_or(false);
        let by_instance: HashMap<&str, &ContainerInstance> =
            instances.iter().map(|i| (i.id.as_str(), i)).collect();
        let lb = targets::Targets::load(&*self.store, svc, self.target_health.as_deref())
            .await
            .map_err(crate::store_err)?;
        let lb_health = |t: &Task| lb.health_of(t, &by_instance);
        let mut ids = new_id;
        let mut deployment_ids = deployment_id;
        let plan = decide(Input {
            new_deployment_id: &mut deployment_ids,
            service: svc,
            tasks,
            instances: &instances,
            daemon_instances,
            health_checked: &health_checked,
            lb_health: &lb_health,
            now,
            new_id: &mut ids,
        });
        let mut svc_after = plan.service.clone().unwrap_or_else(|| svc.clone());
        let mut changed = plan.service.is_some();
        let mut events: Vec<String> = Vec::new();

        let mut requeue_drain = None;
        for (id, reason) in &plan.stop {
            // Behind a load balancer a running task is first taken out of it (DEACTIVATING);
            // the stop itself waits until its targets have drained (below).
            let drain_first = !lb.entries.is_empty()
                && group_tasks
                    .iter()
                    .any(|t| t.id == *id && t.last_status == berth_model::TaskStatus::Running);
            lifecycle::update_task(&self.store, &svc.cluster, id, |t| {
                if drain_first {
                    if t.stop_after_drain.is_some() {
                        return false;
                    }
                    t.stop_after_drain = Some(reason.clone());
                    t.version += 1;
                    true
                } else {
                    lifecycle::request_stop(t, StopCode::ServiceSchedulerInitiated, reason, now)
                }
            })
            .await?;
            if drain_first {
                requeue_drain = Some(DRAIN_CHECK_SECS);
            }
        }
        if !lb.entries.is_empty() {
            // Registrations follow the tasks; tasks whose targets have drained now stop.
            let all_ids: std::collections::HashSet<&str> =
                snap.tasks.iter().map(|(t, _)| t.id.as_str()).collect();
            for txn in lb.sync(&svc.cluster, &group_tasks, &all_ids, &by_instance, now) {
                self.store.txn(txn).await.map_err(crate::store_err)?;
            }
            for t in &group_tasks {
                let Some(reason) = t.stop_after_drain.clone() else {
                    continue;
                };
                if t.desired_status != berth_model::DesiredStatus::Running
                    || t.last_status == berth_model::TaskStatus::Stopped
                {
                    continue;
                }
                if lb.still_serving(t, &by_instance) && self.target_health.is_some() {
                    requeue_drain = Some(DRAIN_CHECK_SECS);
                    continue;
                }
                lifecycle::update_task(&self.store, &svc.cluster, &t.id, |t| {
                    t.stop_after_drain = None;
                    lifecycle::request_stop(t, StopCode::ServiceSchedulerInitiated, &reason, now);
                    true
                })
                .await?;
            }
            // Target health lives in the data plane, which writes nothing: look again soon
            // while tasks wait for theirs.
            if group_tasks.iter().any(|t| {
                t.last_status == berth_model::TaskStatus::Running
                    && !matches!(lb.health_of(t, &by_instance), LbHealth::Healthy)
            }) {
                requeue_drain = Some(HEALTH_CHECK_SECS);
            }
        }
        let hold_key = keys::service(&svc.cluster, &svc.name);
        let held_until = self
            .placement_hold
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hold_key)
            .copied()
            .filter(|until| now < *until);
        let mut requeue = match (plan.requeue_after, requeue_drain) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let (Some(until), false) = (held_until, plan.launch.is_empty()) {
            requeue = Some(requeue.map_or(until - now, |r| r.min(until - now)));
        }
        let launches: &[Launch] = if held_until.is_some() {
            &[]
        } else {
            &plan.launch
        };
        for l in launches {
            let Some(d) = svc_after
                .deployments
                .iter()
                .find(|d| d.id == l.deployment_id)
                .cloned()
            else {
                continue;
            };
            let Some(td) = self.taskdef(taskdefs, &d.family, d.revision).await? else {
                events.push(format!(
                    "(service {}) was unable to start tasks: task definition {}:{} is missing.",
                    svc.name, d.family, d.revision
                ));
                continue;
            };
            let spec = LaunchSpec {
                cluster: svc.cluster.clone(),
                taskdef: td,
                overrides: Default::default(),
                count: l.count,
                group: Some(group.clone()),
                started_by: Some(d.id.clone()),
                tags: if svc.propagate_tags.as_deref() == Some("SERVICE") {
                    svc.tags.clone()
                } else {
                    Vec::new()
                },
                launch_type: svc.launch_type.clone(),
                strategies: strategies.clone(),
                constraints: constraints.clone(),
                on_instances: l.on_instances.clone(),
                client_token: None,
            };
            let arn_of = |id: &str| self.instance_arn(&svc.cluster, id);
            match self.launcher.launch(&spec, now, &arn_of).await {
                Ok(out) => {
                    if out.tasks.is_empty() {
                        self.hold_placement(&hold_key, now);
                    }
                    if !out.tasks.is_empty() {
                        let ids: Vec<String> = out
                            .tasks
                            .iter()
                            .map(|t| format!("(task {})", t.id))
                            .collect();
                        events.push(format!(
                            "(service {}) has started {} tasks: {}.",
                            svc.name,
                            out.tasks.len(),
                            ids.join(" ")
                        ));
                    }
                    if let Some(f) = out.failures.first() {
                        let closest = f.arn.as_deref().and_then(|a| a.rsplit('/').next());
                        events.push(placement_event(&svc.name, &f.reason, closest));
                    }
                }
                Err(e) => {
                    self.hold_placement(&hold_key, now);
                    events.push(placement_event(&svc.name, &e.message, None));
                }
            }
        }
        for m in events {
            // A placement problem is told once while it lasts.
            if !(m.contains("unable") && is_repeat(&svc_after.events, &m, now)) {
                svc_after.push_event(new_id(), now, m);
                changed = true;
            }
        }
        // Only real changes are written: every write wakes the controllers again.
        if changed {
            self.save(&svc_after, rev).await?;
        }
        Ok(requeue)
    }

    fn hold_placement(&self, key: &str, now: f64) {
        let mut holds = self
            .placement_hold
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        holds.retain(|_, until| *until > now);
        holds.insert(key.to_owned(), now + PLACEMENT_RETRY_SECS);
    }

    async fn save(&self, svc: &Service, rev: u64) -> Result<(), berth_model::ApiError> {
        let key = keys::service(&svc.cluster, &svc.name);
        let bytes = serde_json::to_vec(svc)
            .map_err(|e| berth_model::ApiError::server(format!("encoding service: {e}")))?;
        match self
            .store
            .txn(
                Txn::new()
                    .when_mod_revision(key.clone(), rev)
                    .put(key, bytes),
            )
            .await
            .map_err(crate::store_err)?
        {
            TxnResult::Committed { .. } => Ok(()),
            // Someone (UpdateService) changed it meanwhile: the next pass decides again.
            TxnResult::Conflict { .. } => Ok(()),
        }
    }
}
