//! The service scheduler's decisions, as a pure function of one service, its tasks and the
//! cluster's instances. The runner (`super`) applies a [`Plan`] and calls again: everything
//! here is derived from stored state, so a restart at any moment loses nothing.
//!
//! Rules, as ECS defines them:
//! - The PRIMARY deployment wants `desiredCount` tasks on usable instances ("keep" tasks).
//!   Every other live task (older deployments, tasks on DRAINING instances) is "retired".
//! - At most `floor(desired × maximumPercent / 100)` tasks are live (RUNNING or PENDING), so
//!   new tasks start before old ones stop whenever that limit leaves room.
//! - At least `ceil(desired × minimumHealthyPercent / 100)` tasks stay RUNNING and healthy:
//!   retired tasks are stopped only as far as that allows (unhealthy ones any time).
//! - A task is healthy when RUNNING and, if its containers have health checks, HEALTHY.
//!   Unhealthy tasks past the grace period are replaced.
//! - The circuit breaker fails a deployment after `clamp(ceil(desired / 2), 3, 200)` failed
//!   tasks, and with `rollback` restores the last COMPLETED deployment.
//! - Repeated failures back off: after three in a row, new launches wait 1, 2, 4 ... 30 s.

use std::collections::{BTreeMap, HashMap, HashSet};

use berth_model::{
    ContainerInstance, Deployment, DeploymentCounts, DeploymentStatus, DesiredStatus, HealthStatus,
    InstanceStatus, RolloutState, SchedulingStrategy, Service, ServiceEvent, ServiceStatus,
    StopCode, Task, TaskStatus,
};

/// Failures in a row after which launches back off.
const BACKOFF_AFTER: usize = 3;
/// The longest pause between launches of a crashing service.
const MAX_BACKOFF_SECS: f64 = 30.0;
/// How long a task without health checks must have been RUNNING to count as healthy.
pub const SETTLE_SECS: f64 = 1.0;
/// How many ended deployments a service keeps (for rollback and ListServiceDeployments).
pub const DEPLOYMENT_HISTORY: usize = 20;
/// A problem told in an event is told again after this long if it lasts (ECS: six hours).
const EVENT_REPEAT_SECS: f64 = 6.0 * 3600.0;
/// The end of the steady-state event.
const STEADY_EVENT: &str = "has reached a steady state.";

/// What the runner must do for one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// New tasks: (deployment id, count, on these instances only — DAEMON).
    pub launch: Vec<Launch>,
    /// Tasks to stop, with the reason.
    pub stop: Vec<(String, String)>,
    /// The service record, if it changed (deployments, events, status).
    pub service: Option<Service>,
    /// Call again after this many seconds even if nothing changes (backoff, grace periods).
    pub requeue_after: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub deployment_id: String,
    pub count: usize,
    pub on_instances: Option<Vec<String>>,
}

/// Everything the decision looks at.
pub struct Input<'a> {
    pub service: &'a Service,
    /// Every task of the service's group (live and stopped).
    pub tasks: Vec<&'a Task>,
    pub instances: &'a [ContainerInstance],
    /// For DAEMON services: the instances the service should run on.
    pub daemon_instances: Vec<String>,
    /// Whether each deployment's task definition has container health checks.
    pub health_checked: &'a dyn Fn(&Deployment) -> bool,
    /// How a task's load-balancer targets are doing (services with `loadBalancers`).
    pub lb_health: &'a dyn Fn(&Task) -> LbHealth,
    pub now: f64,
    /// A new unique id (events).
    pub new_id: &'a mut dyn FnMut() -> String,
    /// A new deployment id (`ecs-svc/...`).
    pub new_deployment_id: &'a mut dyn FnMut() -> String,
}

/// A task's standing in its service's load balancers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbHealth {
    /// The service has no load balancers: container health alone decides.
    NotBalanced,
    /// Not registered yet, or registered and still `initial`.
    Pending,
    /// Healthy in every target group of the service.
    Healthy,
    /// Unhealthy in this target group.
    Unhealthy(String),
}

/// Whether a task is, or is meant to be, running: not asked to stop, not stopped, and not
/// being taken out of its load balancers before a stop.
fn live(t: &Task) -> bool {
    t.desired_status == DesiredStatus::Running
        && t.last_status != TaskStatus::Stopped
        && t.stop_after_drain.is_none()
}

/// Whether a stopped task counts as a failure of its deployment (`failedTasks`, the circuit
/// breaker, the launch backoff). As ECS counts them: a task that failed to start (never
/// RUNNING, or exited within [`SETTLE_SECS`] of its start) or that failed its health checks
/// and was stopped. A task that ran and then died or was killed is replaced, not counted.
pub fn failed(t: &Task) -> bool {
    if t.last_status != TaskStatus::Stopped {
        return false;
    }
    let health = t
        .stopped_reason
        .as_deref()
        .is_some_and(|r| r.starts_with("Task failed"));
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

/// The circuit breaker's threshold for a desired count.
pub fn failure_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
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

/// The event ECS writes when a service's task cannot be placed: `reason` is the placement
/// failure's reason (`RESOURCE:MEMORY`, `AGENT` ...) and `closest` the id of the closest
/// matching instance.
pub fn placement_event(service: &str, reason: &str, closest: Option<&str>) -> String {
    let head = format!(
        "(service {service}) was unable to place a task because no container instance met all of its requirements."
    );
    let Some(id) = closest else {
        return format!("{head} Reason: {reason}");
    };
    let why = match reason {
        "RESOURCE:MEMORY" => "has insufficient memory available.".to_owned(),
        "RESOURCE:CPU" => "has insufficient CPU units available.".to_owned(),
        "RESOURCE:PORTS" => "is already using a port required by your task.".to_owned(),
        "ATTRIBUTE" | "MemberOf placement constraint unsatisfied." => {
            "is missing an attribute required by your task.".to_owned()
        }
        "DistinctInstance placement constraint unsatisfied." => {
            "is already running a task of this group.".to_owned()
        }
        other => format!("encountered error \"{other}\"."),
    };
    format!(
        "{head} The closest matching (container-instance {id}) {why} For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
    )
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

struct Ctx<'a, 'b> {
    input: &'b mut Input<'a>,
    svc: Service,
    changed: bool,
}

impl Ctx<'_, '_> {
    /// Records an event (each is written once: they tell of changes).
    fn event(&mut self, message: String) {
        let id = (self.input.new_id)();
        self.svc.push_event(id, self.input.now, message);
        self.changed = true;
    }

    /// Records an event about a problem, unless it was already told and still lasts.
    fn problem(&mut self, message: String) {
        if !is_repeat(&self.svc.events, &message, self.input.now) {
            self.event(message);
        }
    }
}

/// What identifies a problem event: a placement failure is the same problem whichever
/// instance came closest.
fn problem_key(message: &str) -> &str {
    message
        .split(" The closest matching")
        .next()
        .unwrap_or(message)
}

/// Whether `message`, an event about a problem, was already told since the service was last
/// steady and within ECS's repeat period: duplicates are left out until the cause is resolved
/// or six hours pass.
pub fn is_repeat(events: &[ServiceEvent], message: &str, now: f64) -> bool {
    let key = problem_key(message);
    for e in events {
        if now - e.created_at >= EVENT_REPEAT_SECS || e.message.ends_with(STEADY_EVENT) {
            return false;
        }
        if problem_key(&e.message) == key {
            return true;
        }
    }
    false
}

pub fn decide(mut input: Input<'_>) -> Plan {
    let svc = input.service.clone();
    let name = svc.name.clone();
    let now = input.now;
    let mut plan = Plan::default();
    let mut cx = Ctx {
        input: &mut input,
        svc,
        changed: false,
    };
    if cx.svc.status == ServiceStatus::Inactive || cx.svc.deployments.is_empty() {
        return plan;
    }
    let grace = f64::from(cx.svc.health_check_grace_period_seconds.unwrap_or(0));
    let draining_instances: HashSet<&str> = cx
        .input
        .instances
        .iter()
        .filter(|i| i.status != InstanceStatus::Active)
        .map(|i| i.id.as_str())
        .collect();
    let primary = cx.svc.deployments[0].clone();
    let checked: HashMap<String, bool> = cx
        .svc
        .deployments
        .iter()
        .map(|d| (d.id.clone(), (cx.input.health_checked)(d)))
        .collect();
    let is_checked = |t: &Task| -> bool {
        t.started_by
            .as_ref()
            .and_then(|d| checked.get(d))
            .copied()
            .unwrap_or(false)
    };
    // Without a health check, a task counts as healthy once it has kept running for
    // SETTLE_SECS: a container that exits at once never completes a deployment nor lets
    // other tasks go. Until then it is "young": neither counted as healthy nor stopped as an
    // unhealthy one would be.
    let settled = |t: &Task| t.started_at.is_some_and(|s| now - s >= SETTLE_SECS);
    let young = |t: &Task| {
        t.last_status == TaskStatus::Running
            && t.health_status == HealthStatus::Unknown
            && !is_checked(t)
            && !settled(t)
    };
    let lb_health = cx.input.lb_health;
    // Behind a load balancer, a task counts as healthy only once its targets are (ECS: "the
    // deployment counts a task healthy when it passes the ELB health checks").
    let healthy = |t: &Task| -> bool {
        t.last_status == TaskStatus::Running
            && match t.health_status {
                HealthStatus::Unhealthy => false,
                HealthStatus::Healthy => true,
                HealthStatus::Unknown => !is_checked(t) && settled(t),
            }
            && matches!(lb_health(t), LbHealth::NotBalanced | LbHealth::Healthy)
    };
    let tasks: Vec<&Task> = cx.input.tasks.clone();
    let live_tasks: Vec<&Task> = tasks.iter().copied().filter(|t| live(t)).collect();
    // Look again when the next running task settles.
    plan.requeue_after = live_tasks
        .iter()
        .filter(|t| t.last_status == TaskStatus::Running && !is_checked(t) && !settled(t))
        .filter_map(|t| t.started_at)
        .map(|s| (s + SETTLE_SECS - now).max(0.05))
        .reduce(f64::min);

    // Unhealthy tasks past their grace period are replaced.
    let mut stopping: HashSet<String> = HashSet::new();
    for t in &live_tasks {
        let past_grace = t.started_at.is_some_and(|s| now - s >= grace);
        if t.last_status == TaskStatus::Running
            && t.health_status == HealthStatus::Unhealthy
            && past_grace
        {
            plan.stop
                .push((t.id.clone(), "Task failed container health checks".into()));
            stopping.insert(t.id.clone());
            cx.event(format!(
                "(service {name}) (task {}) failed container health checks.",
                t.id
            ));
        } else if let (LbHealth::Unhealthy(tg), true, true) = (
            lb_health(t),
            past_grace,
            t.last_status == TaskStatus::Running,
        ) {
            plan.stop.push((
                t.id.clone(),
                format!("Task failed ELB health checks in (target-group {tg})"),
            ));
            stopping.insert(t.id.clone());
            cx.event(format!(
                "(service {name}) (task {}) is unhealthy in (target-group {tg}) due to (reason Health checks failed).",
                t.id
            ));
        } else if t.health_status == HealthStatus::Unhealthy && !past_grace {
            let left = t.started_at.map_or(grace, |s| s + grace - now).max(0.05);
            plan.requeue_after = Some(plan.requeue_after.map_or(left, |r| r.min(left)));
        }
    }
    let remaining: Vec<&Task> = live_tasks
        .iter()
        .copied()
        .filter(|t| !stopping.contains(&t.id))
        .collect();

    let daemon = cx.svc.scheduling_strategy == SchedulingStrategy::Daemon;
    let desired: u32 = if cx.svc.status == ServiceStatus::Draining {
        0
    } else if daemon {
        cx.input.daemon_instances.len() as u32
    } else {
        cx.svc.desired_count
    };
    if daemon && cx.svc.status == ServiceStatus::Active && cx.svc.desired_count != desired {
        cx.svc.desired_count = desired;
        cx.changed = true;
    }
    let daemon_set: HashSet<&str> = cx
        .input
        .daemon_instances
        .iter()
        .map(String::as_str)
        .collect();
    let usable = |t: &Task| -> bool {
        let inst = t.container_instance_id.as_deref().unwrap_or("");
        !draining_instances.contains(inst) && (!daemon || daemon_set.contains(inst))
    };
    let (mut keep, mut retire): (Vec<&Task>, Vec<&Task>) = remaining
        .iter()
        .copied()
        .partition(|t| t.started_by.as_deref() == Some(primary.id.as_str()) && usable(t));
    // DAEMON: one task per instance; extras retire.
    if daemon {
        let mut seen = HashSet::new();
        let (k, extra): (Vec<&Task>, Vec<&Task>) = keep
            .into_iter()
            .partition(|t| seen.insert(t.container_instance_id.clone()));
        keep = k;
        retire.extend(extra);
    }

    let cfg = cx.svc.deployment_configuration;
    let max_total = cfg.max_tasks(desired).max(if daemon { 0 } else { desired });
    let min_healthy = cfg.min_healthy(desired);

    // Scale in: too many primary tasks. As ECS does, keep them balanced: each goes from the
    // instance running the most of them; there, pending ones first, then the newest. (A DAEMON
    // service has more only when it is deleted: at most one per instance is kept above.)
    while keep.len() > desired as usize {
        let mut per_instance: HashMap<&str, usize> = HashMap::new();
        for t in &keep {
            *per_instance
                .entry(t.container_instance_id.as_deref().unwrap_or(""))
                .or_default() += 1;
        }
        let load = |t: &Task| per_instance[t.container_instance_id.as_deref().unwrap_or("")];
        let Some((i, _)) = keep.iter().enumerate().max_by(|(_, a), (_, b)| {
            load(a)
                .cmp(&load(b))
                .then(
                    (a.last_status != TaskStatus::Running)
                        .cmp(&(b.last_status != TaskStatus::Running)),
                )
                .then(a.created_at.total_cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        }) else {
            break;
        };
        let t = keep.remove(i);
        plan.stop.push((
            t.id.clone(),
            format!("Scaling activity initiated by (deployment {})", primary.id),
        ));
        stopping.insert(t.id.clone());
    }

    let mut healthy_total =
        keep.iter().filter(|t| healthy(t)).count() + retire.iter().filter(|t| healthy(t)).count();
    let mut live_total = keep.len() + retire.len();

    // Retire: unhealthy/pending retired tasks go at once; healthy ones as min healthy allows;
    // young ones wait until they are one or the other.
    retire.sort_by_key(|t| healthy(t));
    for t in &retire {
        let h = healthy(t);
        if young(t) || (h && healthy_total <= min_healthy as usize) {
            continue;
        }
        let why = if t
            .container_instance_id
            .as_deref()
            .is_some_and(|i| draining_instances.contains(i))
        {
            "Container instance is draining".to_owned()
        } else {
            format!("Scaling activity initiated by (deployment {})", primary.id)
        };
        plan.stop.push((t.id.clone(), why));
        stopping.insert(t.id.clone());
        if h {
            healthy_total -= 1;
        }
        live_total -= 1;
    }
    if !plan.stop.is_empty() {
        let ids: Vec<String> = plan
            .stop
            .iter()
            .map(|(id, _)| format!("(task {id})"))
            .collect();
        cx.event(format!(
            "(service {name}) has stopped {} running tasks: {}.",
            ids.len(),
            ids.join(" ")
        ));
    }

    // Failures and backoff of the primary deployment.
    let primary_failures: Vec<&Task> = tasks
        .iter()
        .copied()
        .filter(|t| t.started_by.as_deref() == Some(primary.id.as_str()) && failed(t))
        .collect();
    let last_good = keep
        .iter()
        .filter(|t| healthy(t))
        .filter_map(|t| t.started_at)
        .fold(f64::MIN, f64::max);
    let recent: Vec<f64> = primary_failures
        .iter()
        .filter_map(|t| t.stopped_at)
        .filter(|s| *s > last_good)
        .collect();
    let mut launch_ok = true;
    // Failures since a task of the deployment last ran healthy count, for the backoff and the
    // circuit breaker alike (ECS resets the failure count when a task turns healthy).
    if recent.len() >= BACKOFF_AFTER {
        let delay = 2f64
            .powi((recent.len() - BACKOFF_AFTER) as i32)
            .min(MAX_BACKOFF_SECS);
        let last = recent.iter().copied().fold(f64::MIN, f64::max);
        if now < last + delay {
            launch_ok = false;
            let left = (last + delay - now).max(0.05);
            plan.requeue_after = Some(plan.requeue_after.map_or(left, |r| r.min(left)));
        }
        cx.problem(format!(
            "(service {name}) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
        ));
    }

    // Start what the primary lacks, within maximumPercent. A deployment the circuit breaker
    // failed launches nothing more (ECS: it "stops launching new tasks").
    if launch_ok
        && cx.svc.status == ServiceStatus::Active
        && primary.rollout_state != RolloutState::Failed
    {
        if daemon {
            let have: HashSet<&str> = keep
                .iter()
                .filter_map(|t| t.container_instance_id.as_deref())
                .collect();
            let busy: HashSet<&str> = retire
                .iter()
                .filter(|t| !stopping.contains(&t.id))
                .filter_map(|t| t.container_instance_id.as_deref())
                .collect();
            let targets: Vec<String> = cx
                .input
                .daemon_instances
                .iter()
                .filter(|i| !have.contains(i.as_str()) && !busy.contains(i.as_str()))
                .cloned()
                .collect();
            if !targets.is_empty() {
                plan.launch.push(Launch {
                    deployment_id: primary.id.clone(),
                    count: targets.len(),
                    on_instances: Some(targets),
                });
            }
        } else {
            let need = (desired as usize).saturating_sub(keep.len());
            let room = (max_total as usize).saturating_sub(live_total);
            let n = need.min(room);
            if n > 0 {
                plan.launch.push(Launch {
                    deployment_id: primary.id.clone(),
                    count: n,
                    on_instances: None,
                });
            }
        }
    }

    // Deployments: drained ones end, the primary completes or fails.
    let live_by_deployment: BTreeMap<&str, usize> =
        remaining.iter().fold(BTreeMap::new(), |mut m, t| {
            if !stopping.contains(&t.id) {
                if let Some(d) = t.started_by.as_deref() {
                    *m.entry(d).or_default() += 1;
                }
            }
            m
        });
    let mut deployments = cx.svc.deployments.clone();
    for d in deployments.iter_mut().skip(1) {
        if d.status == DeploymentStatus::Active && !live_by_deployment.contains_key(d.id.as_str()) {
            d.status = DeploymentStatus::Inactive;
            d.updated_at = now;
            cx.changed = true;
        }
    }
    let others_live = deployments
        .iter()
        .skip(1)
        .any(|d| d.status == DeploymentStatus::Active);
    let keep_healthy = keep
        .iter()
        .filter(|t| healthy(t) && !stopping.contains(&t.id))
        .count();
    let p = &mut deployments[0];
    if p.rollout_state == RolloutState::InProgress {
        let threshold = failure_threshold(desired.max(1));
        if keep_healthy == desired as usize && !others_live && retire.is_empty() {
            p.rollout_state = RolloutState::Completed;
            p.rollout_state_reason = Some(format!("ECS deployment {} completed.", p.id));
            p.updated_at = now;
            let id = p.id.clone();
            cx.changed = true;
            cx.event(format!(
                "(service {name}) (deployment {id}) deployment completed."
            ));
        } else if cfg.deployment_circuit_breaker.enable && recent.len() as u32 >= threshold {
            p.rollout_state = RolloutState::Failed;
            p.rollout_state_reason =
                Some("ECS deployment circuit breaker: tasks failed to start.".into());
            p.updated_at = now;
            let failed_id = p.id.clone();
            cx.changed = true;
            cx.event(format!(
                "(service {name}) (deployment {failed_id}) deployment failed: tasks failed to start."
            ));
            // No more launches for it; with rollback, the last COMPLETED deployment comes
            // back (a failed rollback is not rolled back again).
            plan.launch.clear();
            if cfg.deployment_circuit_breaker.rollback && deployments[0].rollback_of.is_none() {
                let target = deployments
                    .iter()
                    .skip(1)
                    .find(|d| d.rollout_state == RolloutState::Completed)
                    .cloned();
                if let Some(target) = target {
                    let new_id = (cx.input.new_deployment_id)();
                    deployments[0].status = DeploymentStatus::Active;
                    deployments.insert(
                        0,
                        Deployment {
                            id: new_id.clone(),
                            status: DeploymentStatus::Primary,
                            family: target.family.clone(),
                            revision: target.revision,
                            created_at: now,
                            updated_at: now,
                            rollout_state: RolloutState::InProgress,
                            rollout_state_reason: Some(format!(
                                "ECS deployment circuit breaker: rolling back to deploymentId {}.",
                                target.id
                            )),
                            rollback_of: Some(failed_id.clone()),
                        },
                    );
                    cx.event(format!(
                        "(service {name}) (deployment {new_id}) rolling back to deployment {}.",
                        target.id
                    ));
                }
            }
        }
    }
    // Keep a history of ended deployments (rollback targets, ListServiceDeployments), not
    // shown in DescribeServices.
    let mut inactive = 0;
    deployments.retain(|d| {
        if d.status == DeploymentStatus::Inactive {
            inactive += 1;
            inactive <= DEPLOYMENT_HISTORY
        } else {
            true
        }
    });
    if deployments != cx.svc.deployments {
        cx.svc.deployments = deployments;
        cx.changed = true;
    }

    // Steady state and the end of a deleted service.
    let steady = cx.svc.status == ServiceStatus::Active
        && plan.stop.is_empty()
        && plan.launch.is_empty()
        && keep_healthy == desired as usize
        && keep.len() == desired as usize
        && retire.is_empty()
        && cx
            .svc
            .deployments
            .iter()
            .filter(|d| d.status != DeploymentStatus::Inactive)
            .count()
            == 1;
    if steady && !cx.svc.steady {
        cx.svc.steady = true;
        cx.changed = true;
        cx.event(format!("(service {name}) {STEADY_EVENT}"));
    } else if !steady && cx.svc.steady {
        cx.svc.steady = false;
        cx.changed = true;
    }
    // A deleted service is INACTIVE once its last task has stopped (not merely been asked to).
    if cx.svc.status == ServiceStatus::Draining
        && live_total == 0
        && plan.stop.is_empty()
        && tasks.iter().all(|t| t.last_status == TaskStatus::Stopped)
    {
        cx.svc.status = ServiceStatus::Inactive;
        cx.changed = true;
    }
    if cx.changed {
        cx.svc.version += 1;
        plan.service = Some(cx.svc);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::{
        CircuitBreaker, DeploymentConfiguration, HostResources, ServiceEvent, TaskStats,
    };
    use proptest::prelude::*;

    fn dep(id: &str, status: DeploymentStatus, rollout: RolloutState, rev: u32) -> Deployment {
        Deployment {
            id: id.into(),
            status,
            family: "web".into(),
            revision: rev,
            created_at: 0.0,
            updated_at: 0.0,
            rollout_state: rollout,
            rollout_state_reason: None,
            rollback_of: None,
        }
    }

    fn service(desired: u32, max: u32, min: u32, deployments: Vec<Deployment>) -> Service {
        Service {
            name: "web".into(),
            cluster: "c".into(),
            status: ServiceStatus::Active,
            desired_count: desired,
            scheduling_strategy: SchedulingStrategy::Replica,
            launch_type: "EC2".into(),
            deployment_configuration: DeploymentConfiguration {
                deployment_circuit_breaker: CircuitBreaker {
                    enable: true,
                    rollback: true,
                },
                maximum_percent: max,
                minimum_healthy_percent: min,
            },
            deployments,
            events: Vec::<ServiceEvent>::new(),
            placement_constraints: vec![],
            placement_strategy: vec![],
            load_balancers: vec![],
            network_configuration: None,
            health_check_grace_period_seconds: None,
            tags: vec![],
            propagate_tags: None,
            enable_ecs_managed_tags: false,
            created_at: 0.0,
            created_by: "me".into(),
            steady: false,
            version: 1,
        }
    }

    fn task(id: &str, dep: &str, status: TaskStatus, instance: &str) -> Task {
        Task {
            id: id.into(),
            cluster: "c".into(),
            family: "web".into(),
            revision: 1,
            container_instance_id: Some(instance.into()),
            last_status: status,
            desired_status: if status == TaskStatus::Stopped {
                DesiredStatus::Stopped
            } else {
                DesiredStatus::Running
            },
            launch_type: "EC2".into(),
            cpu: 0,
            memory: 8,
            host_ports: vec![],
            containers: vec![],
            overrides: Default::default(),
            group: Some("service:web".into()),
            started_by: Some(dep.into()),
            tags: vec![],
            created_at: 1.0,
            started_at: (status == TaskStatus::Running).then_some(1.0),
            stopping_at: None,
            stopped_at: (status == TaskStatus::Stopped).then_some(5.0),
            execution_stopped_at: None,
            pull_started_at: None,
            pull_stopped_at: None,
            stop_code: (status == TaskStatus::Stopped)
                .then_some(StopCode::EssentialContainerExited),
            stopped_reason: None,
            health_status: HealthStatus::Unknown,
            version: 1,
            stats: None::<TaskStats>,
            stop_after_drain: None,
        }
    }

    fn instance(id: &str, status: InstanceStatus) -> ContainerInstance {
        ContainerInstance {
            id: id.into(),
            cluster: "c".into(),
            ec2_instance_id: id.into(),
            status,
            status_reason: None,
            registered: HostResources::default(),
            attributes: vec![],
            tags: vec![],
            version_info: serde_json::Value::Null,
            registered_at: 0.0,
            last_seen: 10.0,
            version: 1,
            agent_endpoint: None,
        }
    }

    fn run(svc: &Service, tasks: &[Task], instances: &[ContainerInstance], now: f64) -> Plan {
        let mut n = 0;
        let mut ids = move || {
            n += 1;
            format!("id{n}")
        };
        let mut dids = || "ecs-svc/9".to_owned();
        decide(Input {
            service: svc,
            tasks: tasks.iter().collect(),
            instances,
            daemon_instances: vec![],
            health_checked: &|_| false,
            lb_health: &|_| LbHealth::NotBalanced,
            now,
            new_id: &mut ids,
            new_deployment_id: &mut dids,
        })
    }

    fn launched(p: &Plan) -> usize {
        p.launch.iter().map(|l| l.count).sum()
    }

    #[test]
    fn a_new_service_starts_its_tasks() {
        let svc = service(
            3,
            200,
            100,
            vec![dep(
                "d1",
                DeploymentStatus::Primary,
                RolloutState::InProgress,
                1,
            )],
        );
        let p = run(&svc, &[], &[instance("i1", InstanceStatus::Active)], 10.0);
        assert_eq!(launched(&p), 3);
        assert!(p.stop.is_empty());
    }

    #[test]
    fn rolling_update_starts_before_stopping_within_max_percent() {
        let svc = service(
            3,
            200,
            100,
            vec![
                dep(
                    "new",
                    DeploymentStatus::Primary,
                    RolloutState::InProgress,
                    2,
                ),
                dep("old", DeploymentStatus::Active, RolloutState::Completed, 1),
            ],
        );
        let inst = [instance("i1", InstanceStatus::Active)];
        let old: Vec<Task> = (0..3)
            .map(|i| task(&format!("o{i}"), "old", TaskStatus::Running, "i1"))
            .collect();
        let p = run(&svc, &old, &inst, 10.0);
        assert_eq!(launched(&p), 3, "max 200% leaves room for all new tasks");
        assert!(
            p.stop.is_empty(),
            "min 100%: no old task stops before new ones are healthy"
        );
        // New ones running and healthy: all old ones may go.
        let mut all = old.clone();
        all.extend((0..3).map(|i| task(&format!("n{i}"), "new", TaskStatus::Running, "i1")));
        let p = run(&svc, &all, &inst, 10.0);
        assert_eq!(p.stop.len(), 3);
        assert!(p.stop.iter().all(|(id, _)| id.starts_with('o')));
        assert_eq!(launched(&p), 0);
    }

    #[test]
    fn min_healthy_50_max_100_stops_half_first() {
        let svc = service(
            4,
            100,
            50,
            vec![
                dep(
                    "new",
                    DeploymentStatus::Primary,
                    RolloutState::InProgress,
                    2,
                ),
                dep("old", DeploymentStatus::Active, RolloutState::Completed, 1),
            ],
        );
        let old: Vec<Task> = (0..4)
            .map(|i| task(&format!("o{i}"), "old", TaskStatus::Running, "i1"))
            .collect();
        let p = run(&svc, &old, &[instance("i1", InstanceStatus::Active)], 10.0);
        assert_eq!(p.stop.len(), 2, "keeps ceil(4 x 50%) = 2 healthy");
        assert_eq!(
            launched(&p),
            2,
            "then fills the room the stops made, up to 100%"
        );
    }

    #[test]
    fn completes_and_ends_old_deployments() {
        let svc = service(
            2,
            200,
            100,
            vec![
                dep(
                    "new",
                    DeploymentStatus::Primary,
                    RolloutState::InProgress,
                    2,
                ),
                dep("old", DeploymentStatus::Active, RolloutState::Completed, 1),
            ],
        );
        let tasks: Vec<Task> = (0..2)
            .map(|i| task(&format!("n{i}"), "new", TaskStatus::Running, "i1"))
            .collect();
        let p = run(
            &svc,
            &tasks,
            &[instance("i1", InstanceStatus::Active)],
            10.0,
        );
        let s = p.service.expect("service changes");
        assert_eq!(s.deployments[0].rollout_state, RolloutState::Completed);
        assert_eq!(s.deployments[1].status, DeploymentStatus::Inactive);
        assert!(s.steady);
        assert!(s
            .events
            .iter()
            .any(|e| e.message.contains("has reached a steady state")));
    }

    #[test]
    fn circuit_breaker_rolls_back_to_the_last_completed_deployment() {
        let svc = service(
            2,
            200,
            100,
            vec![
                dep(
                    "bad",
                    DeploymentStatus::Primary,
                    RolloutState::InProgress,
                    2,
                ),
                dep("good", DeploymentStatus::Active, RolloutState::Completed, 1),
            ],
        );
        let mut tasks: Vec<Task> = (0..2)
            .map(|i| task(&format!("g{i}"), "good", TaskStatus::Running, "i1"))
            .collect();
        tasks.extend((0..3).map(|i| task(&format!("b{i}"), "bad", TaskStatus::Stopped, "i1")));
        let p = run(
            &svc,
            &tasks,
            &[instance("i1", InstanceStatus::Active)],
            10.0,
        );
        let s = p.service.expect("service changes");
        assert_eq!(s.deployments[0].status, DeploymentStatus::Primary);
        assert_eq!(
            s.deployments[0].revision, 1,
            "rolled back to the good revision"
        );
        assert_eq!(s.deployments[1].id, "bad");
        assert_eq!(s.deployments[1].rollout_state, RolloutState::Failed);
        assert!(p.launch.is_empty());
    }

    #[test]
    fn crashing_tasks_back_off() {
        let svc = service(
            1,
            200,
            100,
            vec![dep(
                "d",
                DeploymentStatus::Primary,
                RolloutState::Completed,
                1,
            )],
        );
        let tasks: Vec<Task> = (0..4)
            .map(|i| task(&format!("x{i}"), "d", TaskStatus::Stopped, "i1"))
            .collect();
        let p = run(&svc, &tasks, &[instance("i1", InstanceStatus::Active)], 5.5);
        assert_eq!(
            launched(&p),
            0,
            "4 failures in a row: wait 2 s after the last"
        );
        assert!(p.requeue_after.is_some());
        let p = run(&svc, &tasks, &[instance("i1", InstanceStatus::Active)], 7.5);
        assert_eq!(launched(&p), 1);
        // Under three failures a replacement goes at once.
        let p = run(
            &svc,
            &tasks[..2],
            &[instance("i1", InstanceStatus::Active)],
            5.0,
        );
        assert_eq!(launched(&p), 1);
    }

    #[test]
    fn draining_instances_are_emptied_within_the_healthy_limit() {
        let svc = service(
            2,
            200,
            100,
            vec![dep(
                "d",
                DeploymentStatus::Primary,
                RolloutState::Completed,
                1,
            )],
        );
        let tasks = vec![
            task("a", "d", TaskStatus::Running, "i1"),
            task("b", "d", TaskStatus::Running, "i2"),
        ];
        let inst = [
            instance("i1", InstanceStatus::Draining),
            instance("i2", InstanceStatus::Active),
        ];
        let p = run(&svc, &tasks, &inst, 10.0);
        assert_eq!(launched(&p), 1, "a replacement first");
        assert!(
            p.stop.is_empty(),
            "the draining task stays until the replacement is healthy"
        );
        let mut more = tasks.clone();
        more.push(task("c", "d", TaskStatus::Running, "i2"));
        let p = run(&svc, &more, &inst, 10.0);
        assert_eq!(
            p.stop.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
    }

    #[test]
    fn scale_in_stops_pending_tasks_first() {
        let svc = service(
            1,
            200,
            100,
            vec![dep(
                "d",
                DeploymentStatus::Primary,
                RolloutState::Completed,
                1,
            )],
        );
        let tasks = vec![
            task("run", "d", TaskStatus::Running, "i1"),
            task("pend", "d", TaskStatus::Pending, "i1"),
        ];
        let p = run(
            &svc,
            &tasks,
            &[instance("i1", InstanceStatus::Active)],
            10.0,
        );
        assert_eq!(
            p.stop.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["pend"]
        );
    }

    #[test]
    fn unhealthy_tasks_are_replaced_after_the_grace_period() {
        let mut svc = service(
            1,
            200,
            100,
            vec![dep(
                "d",
                DeploymentStatus::Primary,
                RolloutState::Completed,
                1,
            )],
        );
        svc.health_check_grace_period_seconds = Some(30);
        let mut t = task("sick", "d", TaskStatus::Running, "i1");
        t.health_status = HealthStatus::Unhealthy;
        let inst = [instance("i1", InstanceStatus::Active)];
        assert!(
            run(&svc, &[t.clone()], &inst, 10.0).stop.is_empty(),
            "within grace"
        );
        let p = run(&svc, &[t], &inst, 40.0);
        assert_eq!(p.stop.len(), 1);
        assert_eq!(launched(&p), 1);
    }

    #[test]
    fn a_task_that_exits_at_once_neither_completes_a_deployment_nor_retires_old_tasks() {
        let svc = service(
            2,
            200,
            100,
            vec![
                dep(
                    "new",
                    DeploymentStatus::Primary,
                    RolloutState::InProgress,
                    2,
                ),
                dep("old", DeploymentStatus::Active, RolloutState::Completed, 1),
            ],
        );
        let inst = [instance("i1", InstanceStatus::Active)];
        let mut tasks: Vec<Task> = (0..2)
            .map(|i| task(&format!("o{i}"), "old", TaskStatus::Running, "i1"))
            .collect();
        // The new tasks were seen RUNNING, a moment after they started (they are about to
        // crash): nothing old may go yet, and the deployment is not complete.
        for i in 0..2 {
            let mut t = task(&format!("n{i}"), "new", TaskStatus::Running, "i1");
            t.started_at = Some(9.9);
            tasks.push(t);
        }
        let p = run(&svc, &tasks, &inst, 10.0);
        assert!(p.stop.is_empty(), "{:?}", p.stop);
        assert!(p
            .service
            .as_ref()
            .is_none_or(|s| s.deployments[0].rollout_state == RolloutState::InProgress));
        let r = p.requeue_after.expect("a look once they settle");
        assert!((r - (SETTLE_SECS - 0.1)).abs() < 1e-9, "{r}");
        // Still running a second later: healthy; the old ones go.
        let p = run(&svc, &tasks, &inst, 11.0);
        assert_eq!(p.stop.len(), 2);
    }

    #[test]
    fn every_deployment_ends_with_a_steady_state_event() {
        let mut svc = service(
            1,
            200,
            100,
            vec![
                dep(
                    "new",
                    DeploymentStatus::Primary,
                    RolloutState::InProgress,
                    2,
                ),
                dep(
                    "old",
                    DeploymentStatus::Inactive,
                    RolloutState::Completed,
                    1,
                ),
            ],
        );
        // The first deployment reached its steady state a minute ago.
        svc.push_event(
            "e1".into(),
            9.0,
            "(service web) has reached a steady state.".into(),
        );
        let tasks = [task("n", "new", TaskStatus::Running, "i1")];
        let p = run(
            &svc,
            &tasks,
            &[instance("i1", InstanceStatus::Active)],
            70.0,
        );
        let s = p.service.expect("changes");
        assert_eq!(
            s.events[0].message,
            "(service web) has reached a steady state."
        );
        assert_eq!(s.events.len(), 3, "{:?}", s.events);
    }

    #[test]
    fn problems_are_told_once_until_resolved() {
        let ev = |at: f64, m: &str| ServiceEvent {
            id: "x".into(),
            created_at: at,
            message: m.into(),
        };
        let place = |i: &str| placement_event("web", "RESOURCE:MEMORY", Some(i));
        let events = vec![
            ev(5.0, "(service web) has started 1 tasks: (task a)."),
            ev(4.0, &place("i1")),
        ];
        assert!(
            is_repeat(&events, &place("i2"), 10.0),
            "another closest instance, same problem"
        );
        assert!(
            !is_repeat(&events, &place("i1"), 4.0 + 6.0 * 3600.0),
            "six hours later"
        );
        let resolved = vec![
            ev(6.0, "(service web) has reached a steady state."),
            ev(4.0, &place("i1")),
        ];
        assert!(
            !is_repeat(&resolved, &place("i1"), 10.0),
            "resolved meanwhile"
        );
    }

    #[test]
    fn a_deleted_daemon_service_stops_its_tasks() {
        let mut svc = service(
            2,
            100,
            0,
            vec![dep(
                "d",
                DeploymentStatus::Primary,
                RolloutState::Completed,
                1,
            )],
        );
        svc.scheduling_strategy = SchedulingStrategy::Daemon;
        svc.status = ServiceStatus::Draining;
        let tasks = [
            task("a", "d", TaskStatus::Running, "i1"),
            task("b", "d", TaskStatus::Running, "i2"),
        ];
        let inst = [
            instance("i1", InstanceStatus::Active),
            instance("i2", InstanceStatus::Active),
        ];
        let mut n = 0;
        let mut ids = move || {
            n += 1;
            format!("id{n}")
        };
        let mut dids = || "ecs-svc/9".to_owned();
        let p = decide(Input {
            service: &svc,
            tasks: tasks.iter().collect(),
            instances: &inst,
            daemon_instances: vec!["i1".into(), "i2".into()],
            health_checked: &|_| false,
            lb_health: &|_| LbHealth::NotBalanced,
            now: 10.0,
            new_id: &mut ids,
            new_deployment_id: &mut dids,
        });
        assert_eq!(p.stop.len(), 2);
        assert!(p.launch.is_empty());
    }

    #[test]
    fn tasks_that_ran_and_died_are_replaced_at_once_and_not_counted_as_failures() {
        let svc = service(
            3,
            200,
            100,
            vec![dep(
                "d",
                DeploymentStatus::Primary,
                RolloutState::Completed,
                1,
            )],
        );
        // Three tasks that ran for minutes were killed one after another.
        let mut tasks: Vec<Task> = (0..3)
            .map(|i| {
                let mut t = task(&format!("k{i}"), "d", TaskStatus::Stopped, "i1");
                t.started_at = Some(1.0);
                t.stopped_at = Some(300.0 + f64::from(i));
                t
            })
            .collect();
        tasks.push(task("ok", "d", TaskStatus::Running, "i1"));
        let p = run(
            &svc,
            &tasks,
            &[instance("i1", InstanceStatus::Active)],
            302.1,
        );
        assert_eq!(
            launched(&p),
            2,
            "no backoff for tasks that had been running"
        );
        assert!(tasks.iter().all(|t| !failed(t)));
        // One that exits at once is a failure; one stopped for its health checks too.
        let mut quick = task("q", "d", TaskStatus::Stopped, "i1");
        quick.started_at = Some(5.0);
        quick.stopped_at = Some(5.2);
        assert!(failed(&quick));
        let mut sick = task("s", "d", TaskStatus::Stopped, "i1");
        sick.started_at = Some(1.0);
        sick.stopped_at = Some(100.0);
        sick.stop_code = Some(StopCode::ServiceSchedulerInitiated);
        sick.stopped_reason = Some("Task failed container health checks".into());
        assert!(failed(&sick));
    }

    #[test]
    fn the_circuit_breaker_count_resets_when_a_task_runs_healthy() {
        let svc = service(
            2,
            200,
            100,
            vec![
                dep(
                    "new",
                    DeploymentStatus::Primary,
                    RolloutState::InProgress,
                    2,
                ),
                dep("old", DeploymentStatus::Active, RolloutState::Completed, 1),
            ],
        );
        // Three early failures, then a new task started and runs healthy.
        let mut tasks: Vec<Task> = (0..3)
            .map(|i| task(&format!("b{i}"), "new", TaskStatus::Stopped, "i1"))
            .collect();
        let mut good = task("n0", "new", TaskStatus::Running, "i1");
        good.started_at = Some(6.0);
        tasks.push(good);
        tasks.push(task("o0", "old", TaskStatus::Running, "i1"));
        tasks.push(task("o1", "old", TaskStatus::Running, "i1"));
        let p = run(
            &svc,
            &tasks,
            &[instance("i1", InstanceStatus::Active)],
            10.0,
        );
        assert!(p
            .service
            .as_ref()
            .is_none_or(|s| s.deployments[0].rollout_state == RolloutState::InProgress));
        assert_eq!(launched(&p), 1);
    }

    #[test]
    fn a_failed_deployment_launches_no_more_and_a_failed_rollback_is_not_rolled_back() {
        let mut svc = service(
            2,
            200,
            100,
            vec![
                dep("rb", DeploymentStatus::Primary, RolloutState::InProgress, 1),
                dep("bad", DeploymentStatus::Active, RolloutState::Failed, 2),
                dep(
                    "good",
                    DeploymentStatus::Inactive,
                    RolloutState::Completed,
                    1,
                ),
            ],
        );
        svc.deployments[0].rollback_of = Some("bad".into());
        let tasks: Vec<Task> = (0..3)
            .map(|i| task(&format!("x{i}"), "rb", TaskStatus::Stopped, "i1"))
            .collect();
        let inst = [instance("i1", InstanceStatus::Active)];
        let p = run(&svc, &tasks, &inst, 30.0);
        let s = p.service.expect("the rollback fails");
        assert_eq!(s.deployments[0].id, "rb");
        assert_eq!(s.deployments[0].rollout_state, RolloutState::Failed);
        assert_eq!(s.deployments[0].status, DeploymentStatus::Primary);
        assert!(p.launch.is_empty());
        // And later passes launch nothing for it either.
        let p = run(&s, &tasks, &inst, 300.0);
        assert!(p.launch.is_empty(), "{:?}", p.launch);
    }

    #[test]
    fn scale_in_keeps_the_tasks_balanced_over_instances() {
        let svc = service(
            3,
            200,
            100,
            vec![dep(
                "d",
                DeploymentStatus::Primary,
                RolloutState::Completed,
                1,
            )],
        );
        // 2/2/2, all started together; the newest ones happen to be on i1.
        let mut tasks = Vec::new();
        for (n, inst) in ["i1", "i1", "i2", "i2", "i3", "i3"].iter().enumerate() {
            let mut t = task(&format!("t{n}"), "d", TaskStatus::Running, inst);
            t.created_at = if *inst == "i1" { 2.0 } else { 1.0 };
            tasks.push(t);
        }
        let inst = [
            instance("i1", InstanceStatus::Active),
            instance("i2", InstanceStatus::Active),
            instance("i3", InstanceStatus::Active),
        ];
        let p = run(&svc, &tasks, &inst, 10.0);
        assert_eq!(p.stop.len(), 3);
        let mut left: HashMap<&str, usize> = HashMap::new();
        for t in &tasks {
            if !p.stop.iter().any(|(id, _)| *id == t.id) {
                *left
                    .entry(t.container_instance_id.as_deref().unwrap())
                    .or_default() += 1;
            }
        }
        assert_eq!(left, HashMap::from([("i1", 1), ("i2", 1), ("i3", 1)]));
    }

    #[test]
    fn young_tasks_being_replaced_are_neither_stopped_at_once_nor_counted() {
        // Deployed right after the first one came up: its tasks run, just started.
        let svc = service(
            4,
            100,
            50,
            vec![
                dep(
                    "new",
                    DeploymentStatus::Primary,
                    RolloutState::InProgress,
                    2,
                ),
                dep("old", DeploymentStatus::Active, RolloutState::Completed, 1),
            ],
        );
        let tasks: Vec<Task> = (0..4)
            .map(|i| {
                let mut t = task(&format!("o{i}"), "old", TaskStatus::Running, "i1");
                t.started_at = Some(9.8);
                t
            })
            .collect();
        let inst = [instance("i1", InstanceStatus::Active)];
        let p = run(&svc, &tasks, &inst, 10.0);
        assert!(
            p.stop.is_empty(),
            "not healthy yet, but not unhealthy either"
        );
        assert_eq!(launched(&p), 0, "max 100%: no room");
        let p = run(&svc, &tasks, &inst, 11.0);
        assert_eq!(p.stop.len(), 2, "min 50%: two of the four keep serving");
        assert_eq!(launched(&p), 2);
    }

    #[test]
    fn tasks_of_a_failing_deployment_that_run_a_moment_do_not_let_healthy_ones_go() {
        // The circuit breaker rolled back: the rollback has no task yet; the first deployment's
        // three run; three tasks of the failed one were just seen RUNNING (they will crash).
        let svc = service(
            3,
            200,
            100,
            vec![
                dep("rb", DeploymentStatus::Primary, RolloutState::InProgress, 1),
                dep("bad", DeploymentStatus::Active, RolloutState::Failed, 2),
                dep("good", DeploymentStatus::Active, RolloutState::Completed, 1),
            ],
        );
        let mut tasks: Vec<Task> = (0..3)
            .map(|i| task(&format!("g{i}"), "good", TaskStatus::Running, "i1"))
            .collect();
        for i in 0..3 {
            let mut t = task(&format!("b{i}"), "bad", TaskStatus::Running, "i1");
            t.started_at = Some(9.95);
            tasks.push(t);
        }
        let p = run(
            &svc,
            &tasks,
            &[instance("i1", InstanceStatus::Active)],
            10.0,
        );
        assert!(
            p.stop.iter().all(|(id, _)| !id.starts_with('g')),
            "{:?}",
            p.stop
        );
    }

    #[test]
    fn a_deleted_service_is_inactive_once_its_tasks_have_stopped() {
        let mut svc = service(
            0,
            200,
            100,
            vec![dep(
                "d",
                DeploymentStatus::Primary,
                RolloutState::Completed,
                1,
            )],
        );
        svc.status = ServiceStatus::Draining;
        let inst = [instance("i1", InstanceStatus::Active)];
        // Asked to stop, still shutting down: DRAINING.
        let mut t = task("a", "d", TaskStatus::Deprovisioning, "i1");
        t.desired_status = DesiredStatus::Stopped;
        let p = run(&svc, &[t], &inst, 10.0);
        assert!(p
            .service
            .as_ref()
            .is_none_or(|s| s.status == ServiceStatus::Draining));
        let p = run(
            &svc,
            &[task("a", "d", TaskStatus::Stopped, "i1")],
            &inst,
            10.0,
        );
        assert_eq!(p.service.expect("changes").status, ServiceStatus::Inactive);
    }

    #[test]
    fn placement_events_read_as_ecs_writes_them() {
        assert_eq!(
            placement_event("web", "RESOURCE:MEMORY", Some("abc")),
            "(service web) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance abc) has insufficient memory available. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
        );
        assert!(placement_event("web", "RESOURCE:CPU", Some("abc"))
            .contains("(container-instance abc) has insufficient CPU units available."));
        assert!(placement_event("web", "RESOURCE:PORTS", Some("abc"))
            .contains("is already using a port required by your task."));
        assert_eq!(
            placement_event("web", "No Container Instances were found in your cluster.", None),
            "(service web) was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster."
        );
    }

    #[test]
    fn hosts_are_not_lost_while_the_controller_itself_was_away() {
        let mut i = instance("i1", InstanceStatus::Active);
        i.last_seen = 100.0;
        // Silent for 20 s, with a 6 s timeout: lost.
        assert_eq!(host_lost(&i, 120.0, 0.0, 6.0), Some(20.0));
        // But the controller started at 118: it has waited only 2 s for the agent.
        assert_eq!(host_lost(&i, 120.0, 118.0, 6.0), None);
        assert_eq!(host_lost(&i, 125.0, 118.0, 6.0), Some(7.0));
        i.status = InstanceStatus::Inactive;
        assert_eq!(host_lost(&i, 200.0, 0.0, 6.0), None);
    }

    #[test]
    fn stop_events_name_the_tasks() {
        let svc = service(
            1,
            200,
            100,
            vec![dep(
                "d",
                DeploymentStatus::Primary,
                RolloutState::Completed,
                1,
            )],
        );
        let tasks = vec![
            task("a", "d", TaskStatus::Running, "i1"),
            task("b", "d", TaskStatus::Running, "i1"),
            task("c", "d", TaskStatus::Running, "i1"),
        ];
        let p = run(
            &svc,
            &tasks,
            &[instance("i1", InstanceStatus::Active)],
            10.0,
        );
        assert_eq!(p.stop.len(), 2);
        let s = p.service.expect("an event");
        assert!(
            s.events[0]
                .message
                .starts_with("(service web) has stopped 2 running tasks: (task "),
            "{:?}",
            s.events
        );
        assert!(p
            .stop
            .iter()
            .all(|(id, _)| s.events[0].message.contains(&format!("(task {id})"))));
    }

    #[test]
    fn failure_threshold_is_half_the_desired_count_within_3_and_200() {
        assert_eq!(failure_threshold(1), 3);
        assert_eq!(failure_threshold(10), 5);
        assert_eq!(failure_threshold(11), 6);
        assert_eq!(failure_threshold(1000), 200);
    }

    proptest! {
        /// Whatever the mix of old and new, running and pending tasks, a plan never takes the
        /// healthy count below the minimum (unless it already was) and never launches past the
        /// maximum.
        #[test]
        fn plans_respect_the_deployment_limits(
            desired in 0u32..12,
            max in prop::sample::select(vec![100u32, 125, 150, 200]),
            min in prop::sample::select(vec![0u32, 25, 50, 75, 100]),
            old_running in 0usize..12,
            old_pending in 0usize..4,
            new_running in 0usize..12,
            new_pending in 0usize..4,
        ) {
            prop_assume!(!(max == 100 && min == 100));
            let svc = service(desired, max, min, vec![
                dep("new", DeploymentStatus::Primary, RolloutState::InProgress, 2),
                dep("old", DeploymentStatus::Active, RolloutState::Completed, 1),
            ]);
            let mut tasks = Vec::new();
            for i in 0..old_running { tasks.push(task(&format!("or{i}"), "old", TaskStatus::Running, "i1")); }
            for i in 0..old_pending { tasks.push(task(&format!("op{i}"), "old", TaskStatus::Pending, "i1")); }
            for i in 0..new_running { tasks.push(task(&format!("nr{i}"), "new", TaskStatus::Running, "i1")); }
            for i in 0..new_pending { tasks.push(task(&format!("np{i}"), "new", TaskStatus::Pending, "i1")); }
            let p = run(&svc, &tasks, &[instance("i1", InstanceStatus::Active)], 10.0);
            let cfg = svc.deployment_configuration;
            let healthy_before = old_running + new_running;
            let stopped_healthy = p.stop.iter().filter(|(id, _)| id.starts_with("or") || id.starts_with("nr")).count();
            let floor = (cfg.min_healthy(desired) as usize).min(healthy_before);
            // Scale-in of surplus primary tasks is exempt, as in ECS.
            let surplus = (new_running + new_pending).saturating_sub(desired as usize);
            prop_assert!(healthy_before - stopped_healthy + surplus >= floor,
                "healthy {healthy_before} - {stopped_healthy} < {floor}");
            let live_after = tasks.len() - p.stop.len() + launched(&p);
            let cap = (cfg.max_tasks(desired) as usize).max(desired as usize);
            prop_assert!(launched(&p) == 0 || live_after <= cap, "{live_after} > {cap}");
        }
    }
}
