//! A service's load-balancer targets: which (target id, port) each task serves a
//! `loadBalancers` entry on, and the registrations the controller keeps in step with its
//! tasks.
//!
//! ECS registers a task's host port in each of its service's target groups once the task is
//! RUNNING, counts the task healthy for deployments only when its targets are, and before it
//! stops a task deregisters it and waits for the target to drain, so no request is dropped.
//! The controller does the same: registrations are records in the store (owned by the task,
//! `owner = ecs:CLUSTER/TASK`), the data plane drains a target when its record goes, and
//! [`TargetHealthSource`] tells when the target is gone.

use std::collections::HashMap;

use berth_lb::TargetState;
use berth_model::lb::{TargetHealthSource, TargetRegistration};
use berth_model::{
    keys, ContainerInstance, DesiredStatus, Service, Task, TaskStatus, TransportProtocol,
};
use berth_store::{Store, StoreExt, Txn};

use super::decide::LbHealth;

/// One `loadBalancers` entry of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbEntry {
    pub target_group_arn: String,
    pub container_name: String,
    pub container_port: u16,
}

/// The service's `loadBalancers` entries that name a target group.
pub fn entries(svc: &Service) -> Vec<LbEntry> {
    svc.load_balancers
        .iter()
        .filter_map(|lb| {
            Some(LbEntry {
                target_group_arn: lb.target_group_arn.clone()?,
                container_name: lb.container_name.clone()?,
                container_port: u16::try_from(lb.container_port?).ok()?,
            })
        })
        .collect()
}

/// Who owns a registration the controller made for a task.
pub fn owner(task: &Task) -> String {
    format!("ecs:{}/{}", task.cluster, task.id)
}

/// The target a task serves `entry` on: its instance's id and the host port bound to the
/// container port, once the agent has reported the binding; for an awsvpc task (an `ip`
/// target group) its own address and the container port, as ECS registers it.
pub fn target_of(
    task: &Task,
    entry: &LbEntry,
    instances: &HashMap<&str, &ContainerInstance>,
) -> Option<(String, u16)> {
    if let Some(eni) = &task.eni {
        task.containers
            .iter()
            .find(|c| c.name == entry.container_name)?;
        return Some((eni.ip.clone(), entry.container_port));
    }
    let inst = instances.get(task.container_instance_id.as_deref()?)?;
    let port = task
        .containers
        .iter()
        .find(|c| c.name == entry.container_name)?
        .network_bindings
        .iter()
        .find(|b| b.container_port == entry.container_port && b.protocol == TransportProtocol::Tcp)?
        .host_port;
    Some((inst.ec2_instance_id.clone(), port))
}

/// A target's state as the data plane has it. [`TargetHealthSource`] hands it over in ELB's
/// wire spelling; it is read back into the data plane's own type once, here, so decisions
/// match on the type. A spelling the data plane does not use reads as no state.
fn target_state(wire: &str) -> Option<TargetState> {
    [
        TargetState::Initial,
        TargetState::Healthy,
        TargetState::Unhealthy,
        TargetState::Draining,
        TargetState::Unused,
    ]
    .into_iter()
    .find(|s| s.as_str() == wire)
}

/// What the controller knows of a service's targets in one pass.
pub struct Targets {
    pub entries: Vec<LbEntry>,
    /// Registrations in each target group, by (id, port).
    pub registered: HashMap<String, HashMap<(String, u16), TargetRegistration>>,
    /// Data-plane state of each target group's targets, by (id, port).
    pub health: HashMap<String, HashMap<(String, u16), TargetState>>,
}

impl Targets {
    pub async fn load(
        store: &dyn Store,
        svc: &Service,
        source: Option<&dyn TargetHealthSource>,
    ) -> Result<Self, berth_store::StoreError> {
        let entries = entries(svc);
        let mut registered = HashMap::new();
        let mut health = HashMap::new();
        for e in &entries {
            if registered.contains_key(&e.target_group_arn) {
                continue;
            }
            let regs = store
                .list_json::<TargetRegistration>(&keys::elb_targets_of(&e.target_group_arn))
                .await?
                .into_iter()
                .map(|(_, r, _)| ((r.id.clone(), r.port), r))
                .collect();
            registered.insert(e.target_group_arn.clone(), regs);
            let states = source
                .map(|s| s.target_health(&e.target_group_arn))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|h| Some(((h.id, h.port), target_state(&h.state)?)))
                .collect();
            health.insert(e.target_group_arn.clone(), states);
        }
        Ok(Self {
            entries,
            registered,
            health,
        })
    }

    /// How `task`'s targets are doing, for the decision.
    pub fn health_of(
        &self,
        task: &Task,
        instances: &HashMap<&str, &ContainerInstance>,
    ) -> LbHealth {
        if self.entries.is_empty() {
            return LbHealth::NotBalanced;
        }
        let mut out = LbHealth::Healthy;
        for e in &self.entries {
            let Some(target) = target_of(task, e, instances) else {
                return LbHealth::Pending;
            };
            let tg = &e.target_group_arn;
            if !self
                .registered
                .get(tg)
                .is_some_and(|r| r.contains_key(&target))
            {
                return LbHealth::Pending;
            }
            match self.health.get(tg).and_then(|h| h.get(&target)) {
                Some(TargetState::Healthy) => {}
                Some(TargetState::Unhealthy) => return LbHealth::Unhealthy(tg.clone()),
                _ => out = LbHealth::Pending,
            }
        }
        out
    }

    /// Whether any target of `task` is still registered or still draining in the data plane.
    pub fn still_serving(
        &self,
        task: &Task,
        instances: &HashMap<&str, &ContainerInstance>,
    ) -> bool {
        let me = owner(task);
        let owned = self
            .registered
            .values()
            .flat_map(|r| r.values())
            .any(|r| r.owner.as_deref() == Some(me.as_str()));
        owned
            || self.entries.iter().any(|e| {
                let Some(target) = target_of(task, e, instances) else {
                    return false;
                };
                let tg = &e.target_group_arn;
                self.registered
                    .get(tg)
                    .is_some_and(|r| r.contains_key(&target))
                    || self
                        .health
                        .get(tg)
                        .and_then(|h| h.get(&target))
                        .is_some_and(|s| *s == TargetState::Draining)
            })
    }

    /// The writes that bring registrations in step with the tasks: register live RUNNING
    /// tasks, deregister the ones owned by tasks that are no longer live (or gone).
    pub fn sync(
        &self,
        cluster: &str,
        tasks: &[&Task],
        all_task_ids: &std::collections::HashSet<&str>,
        instances: &HashMap<&str, &ContainerInstance>,
        now: f64,
    ) -> Vec<Txn> {
        let mut out = Vec::new();
        let by_owner: HashMap<String, &Task> = tasks.iter().map(|t| (owner(t), *t)).collect();
        for e in &self.entries {
            let regs = self.registered.get(&e.target_group_arn);
            for t in tasks {
                let serving = t.last_status == TaskStatus::Running
                    && t.desired_status == DesiredStatus::Running
                    && t.stop_after_drain.is_none();
                if !serving {
                    continue;
                }
                let Some((id, port)) = target_of(t, e, instances) else {
                    continue;
                };
                if regs.is_some_and(|r| r.contains_key(&(id.clone(), port))) {
                    continue;
                }
                let reg = TargetRegistration {
                    target_group_arn: e.target_group_arn.clone(),
                    id: id.clone(),
                    port,
                    availability_zone: None,
                    registered_at: now,
                    owner: Some(owner(t)),
                };
                let key = keys::elb_target(&e.target_group_arn, &id, port);
                if let Ok(bytes) = serde_json::to_vec(&reg) {
                    out.push(Txn::new().when_mod_revision(key.clone(), 0).put(key, bytes));
                }
            }
            for r in regs.into_iter().flat_map(|r| r.values()) {
                let Some(o) = r.owner.as_deref() else {
                    continue;
                };
                let Some(task_part) = o.strip_prefix(&format!("ecs:{cluster}/")) else {
                    continue;
                };
                let stale = match by_owner.get(o) {
                    Some(t) => {
                        t.last_status == TaskStatus::Stopped
                            || t.desired_status != DesiredStatus::Running
                            || t.stop_after_drain.is_some()
                    }
                    None => !all_task_ids.contains(task_part),
                };
                if stale {
                    out.push(Txn::new().delete(keys::elb_target(
                        &r.target_group_arn,
                        &r.id,
                        r.port,
                    )));
                }
            }
        }
        out
    }
}
