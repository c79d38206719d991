//! The decision's tests: scenarios over plain data, one pass of [`decide`] each, and a
//! property test of the deployment limits. They call only the module's public surface, so
//! they hold whatever the phases' boundaries.

use std::collections::HashMap;

use berth_model::{
    CircuitBreaker, ContainerInstance, Deployment, DeploymentConfiguration, DeploymentStatus,
    DesiredStatus, HealthStatus, HostResources, InstanceStatus, RolloutState, SchedulingStrategy,
    Service, ServiceEvent, ServiceStatus, StopCode, Task, TaskStats, TaskStatus,
};
use berth_sched::Reason;
use proptest::prelude::*;

use super::events::Unplaced;

use super::classify::SETTLE_SECS;
use super::{
    decide, failed, failure_threshold, host_lost, is_repeat, placement_event, Input, LbHealth, Plan,
};

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
        capacity_provider_strategy: Vec::new(),
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
        fargate: None,
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
        capacity_provider_name: None,
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
        stop_code: (status == TaskStatus::Stopped).then_some(StopCode::EssentialContainerExited),
        stopped_reason: None,
        health_status: HealthStatus::Unknown,
        version: 1,
        stats: None::<TaskStats>,
        stop_after_drain: None,
        failed_health_checks: false,
        eni: None,
        fargate: None,
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
    let place = |i: &str| placement_event("web", failure(Reason::Memory, Some(i)));
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
    sick.failed_health_checks = true;
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

fn failure(reason: Reason, closest: Option<&str>) -> Unplaced<'_> {
    Unplaced::Failure {
        reason: crate::PlacementReason::Scheduler(reason),
        closest,
    }
}

#[test]
fn placement_events_read_as_ecs_writes_them() {
    assert_eq!(
        placement_event("web", failure(Reason::Memory, Some("abc"))),
        "(service web) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance abc) has insufficient memory available. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
    );
    assert!(placement_event("web", failure(Reason::Cpu, Some("abc")))
        .contains("(container-instance abc) has insufficient CPU units available."));
    assert!(placement_event("web", failure(Reason::Ports, Some("abc")))
        .contains("is already using a port required by your task."));
    assert_eq!(
        placement_event(
            "web",
            Unplaced::Refused("No Container Instances were found in your cluster.")
        ),
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
