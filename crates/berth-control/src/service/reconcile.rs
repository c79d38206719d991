//! One service's reconcile: load what this service needs (and nothing of the others'),
//! decide, apply.
//!
//! The phases, in order: [`load`](ServiceController::load) (the record, its tasks through the
//! service-task index, the cluster's instances), then the inputs of the decision (health-checked
//! deployments, DAEMON hosts, load-balancer targets), [`decide`](super::decide), and the
//! writes: stops (after draining, behind a load balancer), target registrations, launches, and
//! last the service record with its events. Every write is compare-and-swap or idempotent,
//! so a reconcile cut short anywhere is finished by the next one.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use berth_model::{
    keys, ApiError, ContainerInstance, DesiredStatus, SchedulingStrategy, Service, ServiceStatus,
    StopCode, Task, TaskDefinition, TaskStatus,
};
use berth_sched::Constraint;
use berth_store::{StoreExt, Txn, TxnResult};

use super::decide::events::{self, Event};
use super::targets::Targets;
use super::{
    decide, deployment_id, new_id, placement, Input, Launch, LbHealth, Plan, ServiceController,
    DRAIN_CHECK_SECS, HEALTH_CHECK_SECS, PLACEMENT_RETRY_SECS,
};
use crate::launch::{instance_views, LaunchSpec};
use crate::runtime::Action;
use crate::snapshot::ClusterSnapshot;
use crate::{lifecycle, store_err};

/// The longest a service that is not settled waits before its next look, whatever else it
/// asked for: a deployment in progress or tasks on their way up move on timers and reports.
const UNSETTLED_LOOK_SECS: f64 = 1.0;

/// What one reconcile read of a service.
struct Loaded {
    svc: Service,
    rev: u64,
    /// The service's tasks (its group), from the service-task index.
    tasks: Vec<Task>,
    instances: Vec<ContainerInstance>,
}

/// Task definitions read during one reconcile.
type TaskDefs = HashMap<(String, u32), Option<TaskDefinition>>;

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl ServiceController {
    pub(super) async fn reconcile_service(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Action, ApiError> {
        let Some(l) = self.load(cluster, name).await? else {
            return Ok(Action::Done);
        };
        let now = self.clock.now();
        let mut taskdefs = TaskDefs::new();
        let checked = self.health_checked(&l.svc, &mut taskdefs).await?;
        let daemon_instances = self.daemon_instances(&l.svc, now).await?;
        let by_instance: HashMap<&str, &ContainerInstance> =
            l.instances.iter().map(|i| (i.id.as_str(), i)).collect();
        let lb = Targets::load(&*self.store, &l.svc, self.target_health.as_deref())
            .await
            .map_err(store_err)?;
        let health_checked = |d: &berth_model::Deployment| checked.contains(&d.id);
        let lb_health = |t: &Task| lb.health_of(t, &by_instance);
        let (mut ids, mut deployment_ids) = (new_id, deployment_id);
        let plan = decide(Input {
            new_deployment_id: &mut deployment_ids,
            service: &l.svc,
            tasks: l.tasks.iter().collect(),
            instances: &l.instances,
            daemon_instances,
            health_checked: &health_checked,
            lb_health: &lb_health,
            now,
            new_id: &mut ids,
        });
        let mut requeue = plan.requeue_after;
        requeue = min_opt(requeue, self.apply_stops(&l, &lb, &plan, now).await?);
        requeue = min_opt(
            requeue,
            self.sync_targets(&l, &lb, &by_instance, now).await?,
        );
        let mut svc_after = plan.service.clone().unwrap_or_else(|| l.svc.clone());
        let (told, held) = self
            .launch_all(&l.svc, &svc_after, &plan.launch, &mut taskdefs, now)
            .await?;
        requeue = min_opt(requeue, held);
        let mut changed = plan.service.is_some();
        for event in told {
            // A problem (placement) is told once while it lasts; changes always.
            if events::tell(&mut svc_after, event, now, new_id) {
                changed = true;
            }
        }
        // Only real changes are written: every write wakes the controller again.
        if changed {
            self.save(&svc_after, l.rev).await?;
        }
        if !settled(&l, &plan) {
            requeue = min_opt(requeue, Some(UNSETTLED_LOOK_SECS));
        }
        Ok(match requeue {
            Some(s) => Action::RequeueAfter(Duration::from_secs_f64(s.clamp(0.01, 3600.0))),
            None => Action::Done,
        })
    }

    /// The service, its tasks and its cluster's instances; `None` when there is nothing to
    /// reconcile (deleted, or INACTIVE).
    async fn load(&self, cluster: &str, name: &str) -> Result<Option<Loaded>, ApiError> {
        let Some((svc, rev)) = self
            .store
            .get_json::<Service>(&keys::service(cluster, name))
            .await
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        if svc.status == ServiceStatus::Inactive {
            return Ok(None);
        }
        let (index, _) = self
            .store
            .list(&keys::service_tasks_of(cluster, name))
            .await
            .map_err(store_err)?;
        let group = svc.group();
        let mut tasks = Vec::with_capacity(index.len());
        for kv in &index {
            let Some(id) = kv.key.rsplit('/').next() else {
                continue;
            };
            if let Some((t, _)) = self
                .store
                .get_json::<Task>(&keys::task(cluster, id))
                .await
                .map_err(store_err)?
            {
                if t.group.as_deref() == Some(group.as_str()) {
                    tasks.push(t);
                }
            }
        }
        let instances = self
            .store
            .list_json::<ContainerInstance>(&keys::instances_of(cluster))
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|(_, i, _)| i)
            .collect();
        Ok(Some(Loaded {
            svc,
            rev,
            tasks,
            instances,
        }))
    }

    async fn taskdef(
        &self,
        cache: &mut TaskDefs,
        family: &str,
        revision: u32,
    ) -> Result<Option<TaskDefinition>, ApiError> {
        let key = (family.to_owned(), revision);
        if !cache.contains_key(&key) {
            let td = self
                .store
                .get_json::<TaskDefinition>(&keys::taskdef(family, revision))
                .await
                .map_err(store_err)?
                .map(|(td, _)| td);
            cache.insert(key.clone(), td);
        }
        Ok(cache.get(&key).cloned().flatten())
    }

    /// The deployments whose tasks have an essential container with a health check.
    async fn health_checked(
        &self,
        svc: &Service,
        taskdefs: &mut TaskDefs,
    ) -> Result<HashSet<String>, ApiError> {
        let mut checked = HashSet::new();
        for d in &svc.deployments {
            let td = self.taskdef(taskdefs, &d.family, d.revision).await?;
            if td.is_some_and(|td| {
                td.container_definitions
                    .iter()
                    .any(|c| c.is_essential() && c.health_check.is_some())
            }) {
                checked.insert(d.id.clone());
            }
        }
        Ok(checked)
    }

    /// The hosts a DAEMON service runs one task on (active, matching its memberOf
    /// constraints). Only DAEMON services read the whole cluster for it.
    async fn daemon_instances(&self, svc: &Service, now: f64) -> Result<Vec<String>, ApiError> {
        if svc.scheduling_strategy != SchedulingStrategy::Daemon {
            return Ok(Vec::new());
        }
        let snap = ClusterSnapshot::load(&*self.store, &svc.cluster)
            .await
            .map_err(store_err)?;
        let (_, constraints) = placement(svc);
        let arn_of = |id: &str| self.instance_arn(&svc.cluster, id);
        Ok(
            instance_views(&snap, now, self.cfg.agent_timeout_secs, &arn_of)
                .into_iter()
                .filter(|v| v.active)
                .filter(|v| {
                    constraints.iter().all(|c| match c {
                        Constraint::MemberOf(e) => e.matches(v),
                        _ => true,
                    })
                })
                .map(|v| v.id)
                .collect(),
        )
    }

    /// Stops the tasks the plan retires. Behind a load balancer a running task is first
    /// taken out of it (DEACTIVATING); its stop waits until its targets have drained.
    async fn apply_stops(
        &self,
        l: &Loaded,
        lb: &Targets,
        plan: &Plan,
        now: f64,
    ) -> Result<Option<f64>, ApiError> {
        let mut requeue = None;
        for (id, reason) in &plan.stop {
            let drain_first = !lb.entries.is_empty()
                && l.tasks
                    .iter()
                    .any(|t| t.id == *id && t.last_status == TaskStatus::Running);
            let message = reason.message();
            let failed_health_checks = reason.failed_health_checks();
            lifecycle::update_task(&self.store, &l.svc.cluster, id, |t| {
                if drain_first {
                    if t.stop_after_drain.is_some() {
                        return false;
                    }
                    t.stop_after_drain = Some(message.clone());
                    t.failed_health_checks = failed_health_checks;
                    t.version += 1;
                    true
                } else {
                    let code = StopCode::ServiceSchedulerInitiated;
                    let stopped = lifecycle::request_stop(t, code, &message, now);
                    if stopped {
                        t.failed_health_checks = failed_health_checks;
                    }
                    stopped
                }
            })
            .await?;
            if drain_first {
                requeue = Some(DRAIN_CHECK_SECS);
            }
        }
        Ok(requeue)
    }

    /// Registrations follow the tasks; tasks whose targets have drained now stop.
    async fn sync_targets(
        &self,
        l: &Loaded,
        lb: &Targets,
        by_instance: &HashMap<&str, &ContainerInstance>,
        now: f64,
    ) -> Result<Option<f64>, ApiError> {
        if lb.entries.is_empty() {
            return Ok(None);
        }
        let group_tasks: Vec<&Task> = l.tasks.iter().collect();
        let existing = self.registered_owners_alive(l, lb).await?;
        let existing: HashSet<&str> = existing.iter().map(String::as_str).collect();
        for txn in lb.sync(&l.svc.cluster, &group_tasks, &existing, by_instance, now) {
            self.store.txn(txn).await.map_err(store_err)?;
        }
        let mut requeue = None;
        for t in &l.tasks {
            let Some(reason) = t.stop_after_drain.clone() else {
                continue;
            };
            if t.desired_status != DesiredStatus::Running || t.last_status == TaskStatus::Stopped {
                continue;
            }
            if lb.still_serving(t, by_instance) && self.target_health.is_some() {
                requeue = Some(DRAIN_CHECK_SECS);
                continue;
            }
            lifecycle::update_task(&self.store, &l.svc.cluster, &t.id, |t| {
                t.stop_after_drain = None;
                lifecycle::request_stop(t, StopCode::ServiceSchedulerInitiated, &reason, now);
                true
            })
            .await?;
        }
        // Target health lives in the data plane, which writes nothing: look again soon while
        // tasks wait for theirs.
        if l.tasks.iter().any(|t| {
            t.last_status == TaskStatus::Running
                && !matches!(lb.health_of(t, by_instance), LbHealth::Healthy)
        }) {
            requeue = min_opt(requeue, Some(HEALTH_CHECK_SECS));
        }
        Ok(requeue)
    }

    /// The ids of tasks outside this service that own registrations in its target groups
    /// and still exist (their registrations are theirs to keep): one read per such owner,
    /// not a read of the cluster.
    async fn registered_owners_alive(
        &self,
        l: &Loaded,
        lb: &Targets,
    ) -> Result<Vec<String>, ApiError> {
        let prefix = format!("ecs:{}/", l.svc.cluster);
        let ours: HashSet<&str> = l.tasks.iter().map(|t| t.id.as_str()).collect();
        let mut foreign: Vec<String> = lb
            .registered
            .values()
            .flat_map(|r| r.values())
            .filter_map(|r| r.owner.as_deref()?.strip_prefix(&prefix))
            .filter(|id| !ours.contains(id))
            .map(str::to_owned)
            .collect();
        foreign.sort_unstable();
        foreign.dedup();
        let mut alive = Vec::new();
        for id in foreign {
            if self
                .store
                .get(&keys::task(&l.svc.cluster, &id))
                .await
                .map_err(store_err)?
                .is_some()
            {
                alive.push(id);
            }
        }
        Ok(alive)
    }

    /// Launches what the plan asks for, unless the service's placement is on hold after a
    /// launch that placed nothing. Returns the events to tell and when to look again.
    async fn launch_all(
        &self,
        svc: &Service,
        svc_after: &Service,
        launches: &[Launch],
        taskdefs: &mut TaskDefs,
        now: f64,
    ) -> Result<(Vec<Event>, Option<f64>), ApiError> {
        let hold_key = keys::service(&svc.cluster, &svc.name);
        let held_until = self
            .placement_hold
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hold_key)
            .copied()
            .filter(|until| now < *until);
        let mut told = Vec::new();
        if let Some(until) = held_until {
            let requeue = (!launches.is_empty()).then_some(until - now);
            return Ok((told, requeue));
        }
        let mut requeue = None;
        for l in launches {
            let Some(d) = svc_after
                .deployments
                .iter()
                .find(|d| d.id == l.deployment_id)
            else {
                continue;
            };
            let Some(td) = self.taskdef(taskdefs, &d.family, d.revision).await? else {
                told.push(events::task_definition_missing(
                    &svc.name, &d.family, d.revision,
                ));
                continue;
            };
            let placed = self.launch_one(svc, d, td, l, now, &mut told).await;
            if !placed {
                self.hold_placement(&hold_key, now);
                requeue = Some(PLACEMENT_RETRY_SECS);
            }
        }
        Ok((told, requeue))
    }

    /// One launch of `l.count` tasks of deployment `d`; false when it placed none.
    async fn launch_one(
        &self,
        svc: &Service,
        d: &berth_model::Deployment,
        td: TaskDefinition,
        l: &Launch,
        now: f64,
        told: &mut Vec<Event>,
    ) -> bool {
        let (strategies, constraints) = placement(svc);
        let tags = service_task_tags(svc, &td);
        // An awsvpc deployment's tasks each get an interface in the service's subnets.
        let network = (td.network_mode.as_deref() == Some("awsvpc"))
            .then(|| svc.network_configuration.clone())
            .flatten();
        let spec = LaunchSpec {
            cluster: svc.cluster.clone(),
            taskdef: td,
            overrides: Default::default(),
            count: l.count,
            group: Some(svc.group()),
            started_by: Some(d.id.clone()),
            tags,
            launch_type: svc.launch_type.clone(),
            strategies,
            constraints,
            on_instances: l.on_instances.clone(),
            client_token: None,
            network,
            capacity_provider: None,
            fargate: svc.fargate.clone(),
        };
        let arn_of = |id: &str| self.instance_arn(&svc.cluster, id);
        let launched = if svc.capacity_provider_strategy.is_empty() || spec.on_instances.is_some() {
            self.launcher.launch(&spec, now, &arn_of).await
        } else {
            let items = &svc.capacity_provider_strategy;
            self.launcher
                .launch_through(&spec, items, now, &arn_of)
                .await
        };
        match launched {
            Ok(out) => {
                if !out.tasks.is_empty() {
                    let ids: Vec<&str> = out.tasks.iter().map(|t| t.id.as_str()).collect();
                    told.push(events::started(&svc.name, &ids));
                }
                if let Some(f) = out.failures.first() {
                    let closest = f.arn.as_deref().and_then(|a| a.rsplit('/').next());
                    let why = events::Unplaced::Failure {
                        reason: f.reason,
                        closest,
                    };
                    told.push(events::unplaceable(&svc.name, why));
                }
                !out.tasks.is_empty()
            }
            Err(e) => {
                let why = events::Unplaced::Refused(&e.message);
                told.push(events::unplaceable(&svc.name, why));
                false
            }
        }
    }

    fn hold_placement(&self, key: &str, now: f64) {
        let mut holds = self
            .placement_hold
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        holds.retain(|_, until| *until > now);
        holds.insert(key.to_owned(), now + PLACEMENT_RETRY_SECS);
    }

    async fn save(&self, svc: &Service, rev: u64) -> Result<(), ApiError> {
        let key = keys::service(&svc.cluster, &svc.name);
        let bytes = serde_json::to_vec(svc)
            .map_err(|e| ApiError::server(format!("encoding service: {e}")))?;
        let txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .put(key, bytes);
        match self.store.txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } => Ok(()),
            // Someone (UpdateService) changed it meanwhile: that write queues this service
            // again, and the next reconcile decides on it.
            TxnResult::Conflict { .. } => Ok(()),
        }
    }
}

/// A service with nothing moving: one deployment, every task of it running as desired, and
/// a plan that changes nothing. Anything else is looked at again within
/// [`UNSETTLED_LOOK_SECS`].
/// The tags of a service's new task: the service's with `propagateTags` SERVICE, the task
/// definition's with TASK_DEFINITION, plus ECS's managed `aws:ecs:clusterName` and
/// `aws:ecs:serviceName` with `enableECSManagedTags`.
fn service_task_tags(svc: &Service, td: &TaskDefinition) -> Vec<berth_model::Tag> {
    let mut tags = match svc.propagate_tags.as_deref() {
        Some("SERVICE") => svc.tags.clone(),
        Some("TASK_DEFINITION") => td.tags.clone(),
        _ => Vec::new(),
    };
    if svc.enable_ecs_managed_tags {
        for (key, value) in [
            ("aws:ecs:clusterName", &svc.cluster),
            ("aws:ecs:serviceName", &svc.name),
        ] {
            tags.push(berth_model::Tag {
                key: key.into(),
                value: value.clone(),
            });
        }
    }
    tags
}

fn settled(l: &Loaded, plan: &Plan) -> bool {
    plan.launch.is_empty()
        && plan.stop.is_empty()
        && plan.service.is_none()
        && l.svc.deployments.len() <= 1
        && l.tasks.iter().all(|t| {
            t.last_status == TaskStatus::Stopped
                || (t.last_status == TaskStatus::Running
                    && t.desired_status == DesiredStatus::Running
                    && t.stop_after_drain.is_none())
        })
        && l.tasks
            .iter()
            .filter(|t| t.last_status == TaskStatus::Running)
            .count()
            == l.svc.desired_count as usize
}
