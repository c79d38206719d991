//! berth's agent protocol (join tokens, register, long-poll for the desired task set, status
//! reports) and GetJoinToken against the in-memory store.

mod support;

use std::time::Duration;

use berth_model::agent::{DesiredSet, StatusReport};
use berth_model::ErrorCode;
use berth_ops::agent::{self, PollQuery};
use berth_ops::ecs::{instances, tasks};
use berth_ops::identity;
use berth_ops::{Ctx, Ops};
use serde_json::{json, Value};
use support::{agent, cluster, code, env, host, ok, req, run_task, taskdef, T0};

fn query(cluster: &str, instance: &str, since: &str, wait: f64) -> PollQuery {
    PollQuery {
        cluster: cluster.to_owned(),
        instance: instance.to_owned(),
        since: since.to_owned(),
        wait,
    }
}

async fn poll(ops: &Ops, q: PollQuery) -> DesiredSet {
    ok(agent::poll(ops, &q, std::future::pending()).await)
}

fn report(cluster: &str, instance: &str, task_id: &str, status: &str) -> StatusReport {
    serde_json::from_value(json!({
        "cluster": cluster, "instanceId": instance,
        "tasks": [{"taskId": task_id, "lastStatus": status,
                   "containers": [{"name": "app", "lastStatus": status}]}],
    }))
    .expect("a status report")
}

async fn task(ctx: &Ctx, arn: &str) -> Value {
    let out = ok(tasks::describe(ctx, req(json!({"cluster": "c", "tasks": [arn]}))).await);
    out["tasks"][0].clone()
}

fn id_of(arn: &str) -> String {
    arn.rsplit('/').next().expect("an id").to_owned()
}

#[tokio::test]
async fn join_tokens_are_per_cluster_and_checked() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let out = ok(berth_ops::ecs::join_token(&env.ctx, req(json!({"cluster": "c"}))).await);
    let token = out["token"].as_str().expect("a token");
    assert!(token.starts_with("bjt2."), "{token}");
    assert_eq!(out["expiresAt"].as_f64(), Some(T0 + 86_400.0));
    ok(identity::check_token(&env.ops, token, "c").await);
    assert_eq!(
        code(identity::check_token(&env.ops, token, "other").await),
        ErrorCode::UnrecognizedClientException
    );
    assert_eq!(
        code(identity::check_token(&env.ops, "bjt1.00", "c").await),
        ErrorCode::UnrecognizedClientException
    );
    let e = code(berth_ops::ecs::join_token(&env.ctx, req(json!({"cluster": "ghost"}))).await);
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
}

#[tokio::test]
async fn a_server_without_a_join_secret_accepts_no_agent() {
    let store = berth_store::RedbStore::in_memory().expect("a store");
    let ops = Ops::new(
        std::sync::Arc::new(store),
        std::sync::Arc::new(berth_model::SystemClock),
        berth_ops::OpsConfig::default(),
    );
    let token = identity::join_token("", "c", T0, 60.0);
    assert_eq!(
        code(identity::check_token(&ops, &token, "c").await),
        ErrorCode::UnrecognizedClientException
    );
}

#[tokio::test]
async fn a_first_poll_answers_at_once_and_an_unknown_instance_is_told_to_register() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    let set = poll(&env.ops, query("c", &reg.instance_id, "", 5.0)).await;
    assert!(set.registered);
    assert!(set.tasks.is_empty());
    assert!(!set.fingerprint.is_empty());
    let gone = poll(&env.ops, query("c", &"0".repeat(32), "", 5.0)).await;
    assert!(!gone.registered);
}

#[tokio::test]
async fn a_poll_waits_for_a_change_and_answers_the_new_set() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let first = poll(&env.ops, query("c", &reg.instance_id, "", 0.0)).await;
    let waiting = tokio::spawn({
        let ops = env.ops.clone();
        let q = query("c", &reg.instance_id, &first.fingerprint, 10.0);
        async move { poll(&ops, q).await }
    });
    let t = run_task(&env.ctx, "c", &td).await;
    let set = tokio::time::timeout(Duration::from_secs(9), waiting)
        .await
        .expect("the poll answers before its wait is over")
        .expect("the poll's task ends");
    assert_ne!(set.fingerprint, first.fingerprint);
    assert_eq!(set.tasks.len(), 1);
    assert_eq!(
        set.tasks[0].task_arn,
        t["taskArn"].as_str().expect("an ARN")
    );
    assert_eq!(set.tasks[0].containers[0].name, "app");
    // Nothing changed since: a poll with no wait answers the same set.
    let same = poll(
        &env.ops,
        query("c", &reg.instance_id, &set.fingerprint, 0.0),
    )
    .await;
    assert_eq!(same.fingerprint, set.fingerprint);
}

#[tokio::test]
async fn status_reports_move_a_task_through_its_life() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let arn = run_task(&env.ctx, "c", &td).await["taskArn"]
        .as_str()
        .expect("an ARN")
        .to_owned();
    let id = id_of(&arn);
    ok(agent::status(&env.ops, &report("c", &reg.instance_id, &id, "RUNNING")).await);
    let t = task(&env.ctx, &arn).await;
    assert_eq!(t["lastStatus"], "RUNNING");
    assert!(t["startedAt"].is_number(), "{t}");
    let d = ok(berth_ops::ecs::clusters::describe(&env.ctx, req(json!({"clusters": ["c"]}))).await);
    assert_eq!(d["clusters"][0]["runningTasksCount"], 1);
    // StopTask: the agent is told, then reports the task stopped.
    ok(tasks::stop(&env.ctx, req(json!({"cluster": "c", "task": arn}))).await);
    let set = poll(&env.ops, query("c", &reg.instance_id, "", 0.0)).await;
    assert_eq!(
        serde_json::to_value(set.tasks[0].desired_status).expect("encodes"),
        "STOPPED"
    );
    ok(agent::status(&env.ops, &report("c", &reg.instance_id, &id, "STOPPED")).await);
    let t = task(&env.ctx, &arn).await;
    assert_eq!(
        (t["lastStatus"].as_str(), t["stopCode"].as_str()),
        (Some("STOPPED"), Some("UserInitiated"))
    );
    // A stopped task leaves the agent's set.
    let set = poll(&env.ops, query("c", &reg.instance_id, "", 0.0)).await;
    assert!(set.tasks.is_empty());
}

#[tokio::test]
async fn reports_about_another_hosts_tasks_are_ignored() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let owner = agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let arn = run_task(&env.ctx, "c", &td).await["taskArn"]
        .as_str()
        .expect("an ARN")
        .to_owned();
    let other = agent(&env, "c").await;
    assert_ne!(other.instance_id, owner.instance_id);
    ok(agent::status(
        &env.ops,
        &report("c", &other.instance_id, &id_of(&arn), "RUNNING"),
    )
    .await);
    assert_eq!(task(&env.ctx, &arn).await["lastStatus"], "PROVISIONING");
    // And reports about tasks that do not exist change nothing.
    ok(agent::status(
        &env.ops,
        &report("c", &owner.instance_id, &"0".repeat(32), "RUNNING"),
    )
    .await);
}

#[tokio::test]
async fn polling_keeps_an_agent_connected() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    let connected = || async {
        let out = ok(instances::describe(
            &env.ctx,
            req(json!({"cluster": "c", "containerInstances": [reg.instance_id]})),
        )
        .await);
        out["containerInstances"][0]["agentConnected"].as_bool()
    };
    env.clock.advance(20.0);
    poll(&env.ops, query("c", &reg.instance_id, "", 0.0)).await;
    env.clock.advance(20.0);
    assert_eq!(connected().await, Some(true), "polled 20 s ago");
    env.clock.advance(20.0);
    assert_eq!(connected().await, Some(false), "silent for 40 s");
}

#[tokio::test]
async fn a_deregistered_host_comes_back_as_a_new_instance() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let first = agent(&env, "c").await;
    ok(instances::deregister(
        &env.ctx,
        req(json!({"cluster": "c", "containerInstance": first.instance_id})),
    )
    .await);
    let set = poll(&env.ops, query("c", &first.instance_id, "", 0.0)).await;
    assert!(!set.registered, "the agent is told to register again");
    let mut again = host("c", &[]);
    again.instance_id = Some(first.instance_id.clone());
    let second = ok(agent::register(&env.ops, &again).await);
    assert_ne!(second.instance_id, first.instance_id);
}

#[tokio::test]
async fn the_fleet_lists_every_task_and_instance() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    run_task(&env.ctx, "c", &td).await;
    let fleet = ok(env.ops.fleet().await);
    assert_eq!(fleet.tasks.len(), 1);
    assert_eq!(fleet.instances.len(), 1);
    assert_eq!(fleet.instances[0].0.id, reg.instance_id);
    assert!(fleet.instances[0].1, "connected");
}

/// `agent::register` once took the agent's `instanceId` as is, while RegisterContainerInstance
/// accepts only letters, digits and `-`. An id with a `/` put the instance's assignments under
/// another instance's key prefix (`assign/ID/`), so that instance's polls also handed it the
/// other one's tasks; an empty id registered too. Polls and status reports check their ids
/// the same way.
#[tokio::test]
async fn an_agent_cannot_choose_an_instance_id_inside_another() {
    let env = env();
    cluster(&env.ctx, "c").await;
    let mut victim = host("c", &[]);
    victim.instance_id = Some("victim".into());
    ok(agent::register(&env.ops, &victim).await);
    for bad in ["victim/evil", ""] {
        let mut h = host("c", &[]);
        h.instance_id = Some(bad.into());
        let e = code(agent::register(&env.ops, &h).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{bad:?}");
        let e =
            code(agent::poll(&env.ops, &query("c", bad, "", 0.0), std::future::pending()).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "poll {bad:?}");
        let e = code(agent::status(&env.ops, &report("c", bad, "t1", "RUNNING")).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "status {bad:?}");
    }
    let e = code(
        agent::poll(
            &env.ops,
            &query("c/x", "victim", "", 0.0),
            std::future::pending(),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let e = code(agent::status(&env.ops, &report("c", "victim", "t/1", "RUNNING")).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let mut h = host("c/x", &[]);
    h.instance_id = Some("victim".into());
    let e = code(agent::register(&env.ops, &h).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

/// Agents do not sign for a region: the ARNs they are shown use the server's.
#[tokio::test]
async fn agents_see_arns_in_the_servers_region() {
    let store: std::sync::Arc<dyn berth_store::Store> =
        std::sync::Arc::new(berth_store::RedbStore::in_memory().expect("a store"));
    let ops = Ops::new(
        store,
        std::sync::Arc::new(berth_model::SystemClock),
        berth_ops::OpsConfig {
            region: "eu-west-3".to_owned(),
            ..berth_ops::OpsConfig::default()
        },
    );
    cluster(&ops.ctx("eu-west-3"), "c").await;
    let reg = ok(agent::register(&ops, &host("c", &[])).await);
    assert!(
        reg.instance_arn.starts_with("arn:aws:ecs:eu-west-3:"),
        "{}",
        reg.instance_arn
    );
    assert_eq!(berth_ops::OpsConfig::default().region, "us-east-1");
}

/// A running task's stats go to the metrics hub, never into its record: neither a full report
/// carrying stats nor a stats-only one moves the record's revision. A task that ends is
/// forgotten by the hub.
#[tokio::test]
async fn stats_reach_the_metrics_hub_without_writing_the_task() {
    let hub = std::sync::Arc::new(berth_control::autoscale::MetricsHub::new());
    let env = support::env_with(|ops| ops.with_metrics_hub(hub.clone()));
    cluster(&env.ctx, "c").await;
    let reg = agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let arn = run_task(&env.ctx, "c", &td).await["taskArn"]
        .as_str()
        .expect("an ARN")
        .to_owned();
    let id = id_of(&arn);
    ok(agent::status(&env.ops, &report("c", &reg.instance_id, &id, "RUNNING")).await);
    let key = berth_model::keys::task("c", &id);
    let revision = || async {
        env.store
            .get(&key)
            .await
            .expect("a read")
            .expect("the task")
            .mod_revision
    };
    let before = revision().await;
    let stats = |cpu_units| berth_model::TaskStats {
        cpu_units,
        memory_mib: 64.0,
        at: T0,
    };
    let mut r = report("c", &reg.instance_id, &id, "RUNNING");
    r.tasks[0].stats = Some(stats(256.0));
    ok(agent::status(&env.ops, &r).await);
    r.tasks[0].stats = Some(stats(512.0));
    r.tasks[0].stats_only = true;
    ok(agent::status(&env.ops, &r).await);
    assert_eq!(revision().await, before, "a stats report wrote the task");
    let samples = env.ops.task_samples();
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert_eq!(samples[0].0, id);
    assert_eq!(samples[0].1.stats, stats(512.0));
    // Another host's report about the task is not taken.
    let mut other = r.clone();
    other.instance_id = "another".into();
    other.tasks[0].stats = Some(stats(1.0));
    let _ = agent::status(&env.ops, &other).await;
    assert_eq!(env.ops.task_samples()[0].1.stats, stats(512.0));
    ok(agent::status(&env.ops, &report("c", &reg.instance_id, &id, "STOPPED")).await);
    assert!(env.ops.task_samples().is_empty());
}
