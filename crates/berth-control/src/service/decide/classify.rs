//! Classify: what each task of the service is, before anything is decided.
//!
//! Why a phase of its own: every later phase asks the same questions of a task (is it live?
//! healthy? still settling? did it fail?) and must get one answer within a pass; the
//! predicates here are also the ones the API uses for a deployment's counts, so
//! DescribeServices and the controller never disagree.

use std::collections::{HashMap, HashSet};

use berth_model::{
    ContainerInstance, DeploymentCounts, DesiredStatus, HealthStatus, InstanceStatus,
    ServiceStatus, StopCode, Task, TaskStatus,
};

use super::state::Work;
use super::{Input, LbHealth, Plan};

/// How long a task without health checks must have been RUNNING to count as healthy.
pub(super) const SETTLE_SECS: f64 = 1.0;

/// Whether a task is, or is meant to be, running: not asked to stop, not stopped, and not
/// being taken out of its load balancers before a stop.
fn live(t: &Task) -> bool {
    t.desired_status == DesiredStatus::Running
        && t.last_status != TaskStatus::Stopped
        && t.stop_after_drain.is_none()
}

/// Whether a stopped task counts as a failure of its deployment (`failedTasks`, the circuit
/// breaker, the launch backoff). As ECS counts them: a task that failed to start (never
/// RUNNING, or exited within `SETTLE_SECS` of its start) or that failed its health checks
/// and was stopped. A task that ran and then died or was killed is replaced, not counted.
pub fn failed(t: &Task) -> bool {
    if t.last_status != TaskStatus::Stopped {
        return false;
    }
    let health = t.failed_health_checks && t.stop_code == Some(StopCode::ServiceSchedulerInitiated);
    let exited = matches!(
        t.stop_code,
        Some(StopCode::TaskFailedToStart) | Some(StopCode::EssentialContainerExited)
    );
    let short_lived = match (t.started_at, t.stopped_at) {
        (Some(start), Some(stop)) => stop - start < SETTLE_SECS,
        _ => true,
    };
    health || (exited && short_lived)
}

/// Live counts per deployment id, and failed tasks of each.
pub fn counts(tasks: &[&Task]) -> HashMap<String, DeploymentCounts> {
    let mut out: HashMap<String, DeploymentCounts> = HashMap::new();
    for t in tasks {
        let Some(d) = &t.started_by else { continue };
        let c = out.entry(d.clone()).or_default();
        if live(t) {
            if t.last_status == TaskStatus::Running {
                c.running += 1;
            } else {
                c.pending += 1;
            }
        } else if failed(t) {
            c.failed += 1;
        }
    }
    out
}

/// How long the agent of `inst` has been silent, counting from `since` at the earliest (when
/// the controller started: a control plane that was itself away has not heard from anyone,
/// and that is no reason to give up on hosts), if that is longer than `timeout`.
pub fn host_lost(inst: &ContainerInstance, now: f64, since: f64, timeout: f64) -> Option<f64> {
    if inst.status == InstanceStatus::Inactive {
        return None;
    }
    let silent = now - inst.last_seen.max(since);
    (silent > timeout).then_some(silent)
}

/// How the tasks of one pass are doing.
pub(super) struct Health<'a> {
    /// Whether each deployment's task definition has container health checks.
    checked: HashMap<String, bool>,
    lb_health: &'a dyn Fn(&Task) -> LbHealth,
    now: f64,
}

impl Health<'_> {
    fn is_checked(&self, t: &Task) -> bool {
        t.started_by
            .as_ref()
            .and_then(|d| self.checked.get(d))
            .copied()
            .unwrap_or(false)
    }

    /// Without a health check, a task counts as healthy once it has kept running for
    /// SETTLE_SECS: a container that exits at once never completes a deployment nor lets
    /// other tasks go.
    fn settled(&self, t: &Task) -> bool {
        t.started_at.is_some_and(|s| self.now - s >= SETTLE_SECS)
    }

    /// A RUNNING task without health checks that has not settled yet: neither counted as
    /// healthy nor stopped as an unhealthy one would be.
    pub fn young(&self, t: &Task) -> bool {
        t.last_status == TaskStatus::Running
            && t.health_status == HealthStatus::Unknown
            && !self.is_checked(t)
            && !self.settled(t)
    }

    /// RUNNING, passing its container health checks (or settled, without any), and behind a
    /// load balancer healthy there too (ECS: "the deployment counts a task healthy when it
    /// passes the ELB health checks").
    pub fn healthy(&self, t: &Task) -> bool {
        t.last_status == TaskStatus::Running
            && match t.health_status {
                HealthStatus::Unhealthy => false,
                HealthStatus::Healthy => true,
                HealthStatus::Unknown => !self.is_checked(t) && self.settled(t),
            }
            && matches!(self.lb(t), LbHealth::NotBalanced | LbHealth::Healthy)
    }

    pub fn lb(&self, t: &Task) -> LbHealth {
        (self.lb_health)(t)
    }

    /// When the next RUNNING task without health checks settles, if one is settling.
    fn next_settle(&self, live: &[&Task]) -> Option<f64> {
        live.iter()
            .filter(|t| {
                t.last_status == TaskStatus::Running && !self.is_checked(t) && !self.settled(t)
            })
            .filter_map(|t| t.started_at)
            .map(|s| (s + SETTLE_SECS - self.now).max(0.05))
            .reduce(f64::min)
    }
}

/// Starts a pass: the working state with every task classified, or None when there is
/// nothing to decide (an INACTIVE service, or one without deployments).
pub(super) fn tasks(input: Input<'_>) -> Option<Work<'_>> {
    let svc = input.service.clone();
    if svc.status == ServiceStatus::Inactive || svc.deployments.is_empty() {
        return None;
    }
    let now = input.now;
    let draining_instances: HashSet<&str> = input
        .instances
        .iter()
        .filter(|i| i.status != InstanceStatus::Active)
        .map(|i| i.id.as_str())
        .collect();
    let health = Health {
        checked: svc
            .deployments
            .iter()
            .map(|d| (d.id.clone(), (input.health_checked)(d)))
            .collect(),
        lb_health: input.lb_health,
        now,
    };
    let tasks: Vec<&Task> = input.tasks.clone();
    let live: Vec<&Task> = tasks.iter().copied().filter(|t| live(t)).collect();
    // Look again when the next running task settles.
    let plan = Plan {
        requeue_after: health.next_settle(&live),
        ..Plan::default()
    };
    Some(Work {
        primary: svc.deployments[0].clone(),
        input,
        now,
        svc,
        changed: false,
        plan,
        health,
        draining_instances,
        tasks,
        live,
        stopping: HashSet::new(),
        daemon: false,
        desired: 0,
        keep: Vec::new(),
        retire: Vec::new(),
        live_total: 0,
        recent_failures: Vec::new(),
        launch_ok: true,
    })
}
