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
    InstanceStatus, RolloutState, SchedulingStrategy, Service, ServiceStatus, StopCode, Task,
    TaskStatus,
};

/// Failures in a row after which launches back off.
const BACKOFF_AFTER: usize = 3;
/// The longest pause between launches of a crashing service.
const MAX_BACKOFF_SECS: f64 = 30.0;
/// A repeated event is written again only after this long.
const EVENT_REPEAT_SECS: f64 = 300.0;

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
    pub now: f64,
    /// A new unique id (events).
    pub new_id: &'a mut dyn FnMut() -> String,
    /// A new deployment id (`ecs-svc/...`).
    pub new_deployment_id: &'a mut dyn FnMut() -> String,
}

fn live(t: &Task) -> bool {
    t.desired_status == DesiredStatus::Running && t.last_status != TaskStatus::Stopped
}

/// Whether a stopped task counts as a failure of its deployment (circuit breaker, backoff).
pub fn failed(t: &Task) -> bool {
    t.last_status == TaskStatus::Stopped
        && (matches!(
            t.stop_code,
            Some(StopCode::TaskFailedToStart) | Some(StopCode::EssentialContainerExited)
        ) || t
            .stopped_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("Task failed")))
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

struct Ctx<'a, 'b> {
    input: &'b mut Input<'a>,
    svc: Service,
    changed: bool,
}

impl Ctx<'_, '_> {
    fn event(&mut self, message: String) {
        let now = self.input.now;
        if self
            .svc
            .events
            .iter()
            .take(10)
            .any(|e| e.message == message && now - e.created_at < EVENT_REPEAT_SECS)
        {
            return;
        }
        let id = (self.input.new_id)();
        self.svc.push_event(id, now, message);
        self.changed = true;
    }
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
    let healthy = |t: &Task| -> bool {
        t.last_status == TaskStatus::Running
            && match t.health_status {
                HealthStatus::Unhealthy => false,
                HealthStatus::Healthy => true,
                HealthStatus::Unknown => !t
                    .started_by
                    .as_ref()
                    .and_then(|d| checked.get(d))
                    .copied()
                    .unwrap_or(false),
            }
    };
    let tasks: Vec<&Task> = cx.input.tasks.clone();
    let live_tasks: Vec<&Task> = tasks.iter().copied().filter(|t| live(t)).collect();

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
        } else if t.health_status == HealthStatus::Unhealthy && !past_grace {
            plan.requeue_after = Some(grace.max(1.0));
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

    // Scale in: too many primary tasks; pending ones go first, then the newest.
    if !daemon && keep.len() > desired as usize {
        keep.sort_by(|a, b| {
            (a.last_status == TaskStatus::Running)
                .cmp(&(b.last_status == TaskStatus::Running))
                .then(b.created_at.total_cmp(&a.created_at))
        });
        let extra = keep.len() - desired as usize;
        for t in keep.drain(..extra) {
            plan.stop.push((
                t.id.clone(),
                format!("Scaling activity initiated by (deployment {})", primary.id),
            ));
            stopping.insert(t.id.clone());
        }
    }

    let mut healthy_total =
        keep.iter().filter(|t| healthy(t)).count() + retire.iter().filter(|t| healthy(t)).count();
    let mut live_total = keep.len() + retire.len();

    // Retire: unhealthy/pending retired tasks go at once; healthy ones as min healthy allows.
    // With DAEMON, a retired task on an instance that should run the new one goes first.
    retire.sort_by_key(|t| healthy(t));
    let mut stopped_retired = 0;
    for t in &retire {
        let h = healthy(t);
        if h && healthy_total <= min_healthy as usize {
            continue;
        }
        let why = if t
            .container_instance_id
            .as_deref()
            .is_some_and(|i| draining_instances.contains(i))
        {
            "Container instance is draining".to_owned()
        } else {
            format!("Deployment {} replaces this task", primary.id)
        };
        plan.stop.push((t.id.clone(), why));
        stopping.insert(t.id.clone());
        if h {
            healthy_total -= 1;
        }
        live_total -= 1;
        stopped_retired += 1;
    }
    if stopped_retired > 0 {
        cx.event(format!(
            "(service {name}) has stopped {stopped_retired} running tasks."
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
    if recent.len() >= BACKOFF_AFTER {
        let delay = 2f64
            .powi((recent.len() - BACKOFF_AFTER) as i32)
            .min(MAX_BACKOFF_SECS);
        let last = recent.iter().copied().fold(f64::MIN, f64::max);
        if now < last + delay {
            launch_ok = false;
            plan.requeue_after = Some((last + delay - now).max(0.05));
        }
        cx.event(format!(
            "(service {name}) is unable to consistently start tasks successfully."
        ));
    }

    // Start what the primary lacks, within maximumPercent.
    if launch_ok && cx.svc.status == ServiceStatus::Active {
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
        } else if cfg.deployment_circuit_breaker.enable
            && primary_failures.len() as u32 >= threshold
        {
            p.rollout_state = RolloutState::Failed;
            p.rollout_state_reason =
                Some("ECS deployment circuit breaker: tasks failed to start.".into());
            p.updated_at = now;
            let failed_id = p.id.clone();
            cx.changed = true;
            cx.event(format!(
                "(service {name}) (deployment {failed_id}) deployment failed: tasks failed to start."
            ));
            if cfg.deployment_circuit_breaker.rollback {
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
                    // Launch nothing for the failed deployment this round.
                    plan.launch.clear();
                }
            }
        }
    }
    // Keep a short history of ended deployments (rollback targets), not shown on the wire.
    let mut inactive = 0;
    deployments.retain(|d| {
        if d.status == DeploymentStatus::Inactive {
            inactive += 1;
            inactive <= 5
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
        cx.event(format!("(service {name}) has reached a steady state."));
    } else if !steady && cx.svc.steady {
        cx.svc.steady = false;
        cx.changed = true;
    }
    if cx.svc.status == ServiceStatus::Draining && live_total == 0 && plan.stop.is_empty() {
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
