//! Hostile ids swept over the ECS actions that turn a request's id, ARN or name into a store
//! key: each is refused with a client error (never a panic, never a server error), and nothing
//! in the cluster changes. `x/../../y` would nest a key under another record's prefix; a
//! multibyte id once panicked where an id was sliced.

mod support;

use berth_model::ApiError;
use berth_ops::ecs::{clusters, instances, services, taskdefs, tasks};
use serde_json::{json, Value};
use support::{agent, cluster, env, req, run_task, taskdef};

const HOSTILE: [&str; 5] = [
    "x/../../y",
    "éééééééé",
    "a\u{0}b",
    "tasks/c",
    "arn:aws:ecs:us-east-1:000000000000:task/c/x/../../y",
];

/// A refusal the client caused (4xx), or an answer that found nothing (`failures`).
fn clean(what: &str, id: &str, r: Result<Value, ApiError>) {
    match r {
        Err(e) => assert!(e.code.status() < 500, "{what}({id:?}): a server error: {e}"),
        Ok(v) => assert!(
            v["failures"].as_array().is_some_and(|f| !f.is_empty()),
            "{what}({id:?}) succeeded: {v}"
        ),
    }
}

#[tokio::test]
async fn hostile_ids_get_client_errors_and_change_nothing() {
    let env = env();
    cluster(&env.ctx, "c").await;
    agent(&env, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let task = run_task(&env.ctx, "c", &td).await;
    let before = env.store.list("").await.expect("a listing").0.len();
    let ctx = &env.ctx;
    for id in HOSTILE {
        clean(
            "DescribeClusters",
            id,
            clusters::describe(ctx, req(json!({"clusters": [id]}))).await,
        );
        clean(
            "DeleteCluster",
            id,
            clusters::delete(ctx, req(json!({"cluster": id}))).await,
        );
        clean(
            "CreateCluster",
            id,
            clusters::create(ctx, req(json!({"clusterName": id}))).await,
        );
        clean(
            "StopTask",
            id,
            tasks::stop(ctx, req(json!({"cluster": "c", "task": id}))).await,
        );
        clean(
            "StopTask(cluster)",
            id,
            tasks::stop(ctx, req(json!({"cluster": id, "task": task["taskArn"]}))).await,
        );
        clean(
            "DescribeTasks",
            id,
            tasks::describe(ctx, req(json!({"cluster": "c", "tasks": [id]}))).await,
        );
        clean(
            "ListTasks",
            id,
            tasks::list(ctx, req(json!({"cluster": "c", "containerInstance": id}))).await,
        );
        clean(
            "RunTask",
            id,
            tasks::run(
                ctx,
                req(json!({"cluster": "c", "taskDefinition": format!("{id}:1")})),
            )
            .await,
        );
        clean(
            "DescribeServices",
            id,
            services::describe(ctx, req(json!({"cluster": "c", "services": [id]}))).await,
        );
        clean(
            "CreateService",
            id,
            services::create(
                ctx,
                req(json!({
            "cluster": "c", "serviceName": id, "taskDefinition": td, "desiredCount": 0})),
            )
            .await,
        );
        clean(
            "DeleteService",
            id,
            services::delete(ctx, req(json!({"cluster": "c", "service": id}))).await,
        );
        clean(
            "DescribeContainerInstances",
            id,
            instances::describe(
                ctx,
                req(json!({
            "cluster": "c", "containerInstances": [id]})),
            )
            .await,
        );
        clean(
            "DeregisterContainerInstance",
            id,
            instances::deregister(
                ctx,
                req(json!({
            "cluster": "c", "containerInstance": id, "force": true})),
            )
            .await,
        );
        clean(
            "UpdateContainerInstancesState",
            id,
            instances::update_state(
                ctx,
                req(json!({
            "cluster": "c", "containerInstances": [id], "status": "DRAINING"})),
            )
            .await,
        );
        clean(
            "DescribeTaskDefinition",
            id,
            taskdefs::describe(ctx, req(json!({"taskDefinition": id}))).await,
        );
        clean(
            "DeregisterTaskDefinition",
            id,
            taskdefs::deregister(ctx, req(json!({"taskDefinition": format!("{id}:1")}))).await,
        );
    }
    let after = env.store.list("").await.expect("a listing").0.len();
    assert_eq!(before, after, "a hostile id added or removed a record");
}
