//! Honour or refuse: the members of CreateService, UpdateService, RunTask and StartTask that
//! berth does not implement are refused with InvalidParameterException naming them, neutral
//! values of them pass, and the tag members berth implements reach the tasks.

mod support;

use berth_model::{ApiError, ErrorCode};
use berth_ops::ecs::{services, tasks};
use berth_ops::Ctx;
use serde_json::{json, Value};
use support::{agent, cluster, env, ok, req, service, taskdef};

fn refused(r: Result<Value, ApiError>, member: &str) {
    let e = r.expect_err("refused");
    assert_eq!(
        e.code,
        ErrorCode::InvalidParameterException,
        "{}",
        e.message
    );
    assert!(e.message.contains(member), "{member}: {}", e.message);
}

async fn setup(ctx: &Ctx) -> String {
    cluster(ctx, "c").await;
    taskdef(ctx, "web").await
}

#[tokio::test]
async fn create_service_refuses_other_deployment_controllers_and_capacity_providers() {
    let env = env();
    let td = setup(&env.ctx).await;
    let base = json!({"cluster": "c", "serviceName": "s", "taskDefinition": td, "desiredCount": 1});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for ty in ["CODE_DEPLOY", "EXTERNAL"] {
        let body = with("deploymentController", json!({"type": ty}));
        refused(
            services::create(&env.ctx, req(body)).await,
            "deploymentController",
        );
    }
    let body = with(
        "capacityProviderStrategy",
        json!([{"capacityProvider": "mine", "weight": 1}]),
    );
    refused(
        services::create(&env.ctx, req(body)).await,
        "capacityProviderStrategy",
    );
    // FARGATE_SPOT is berth's own, and must be the cluster's to be named in a strategy.
    let mut body = with(
        "capacityProviderStrategy",
        json!([{"capacityProvider": "FARGATE_SPOT", "weight": 1}]),
    );
    body["networkConfiguration"] = json!({"awsvpcConfiguration": {"subnets": ["subnet-1"]}});
    refused(
        services::create(&env.ctx, req(body)).await,
        "not associated with the cluster",
    );
    // ECS's own text for a platform version with the EC2 launch type.
    let body = with("platformVersion", json!("LATEST"));
    refused(
        services::create(&env.ctx, req(body)).await,
        "The platform version must be null",
    );
    // Nothing refused was stored.
    let out =
        ok(services::describe(&env.ctx, req(json!({"cluster": "c", "services": ["s"]}))).await);
    assert_eq!(out["failures"][0]["reason"], "MISSING");
    // Neutral values ask for what berth does anyway.
    let mut body = with("deploymentController", json!({"type": "ECS"}));
    body["capacityProviderStrategy"] = json!([]);
    body["enableExecuteCommand"] = json!(false);
    let out = ok(services::create(&env.ctx, req(body)).await);
    assert_eq!(
        out["service"]["deploymentController"],
        json!({"type": "ECS"})
    );
}

#[tokio::test]
async fn update_service_applies_tag_members_and_refuses_the_rest() {
    let env = env();
    let td = setup(&env.ctx).await;
    service(&env.ctx, "c", "s", &td, 1).await;
    let out = ok(services::update(
        &env.ctx,
        req(
            json!({"cluster": "c", "service": "s", "propagateTags": "SERVICE",
                   "enableECSManagedTags": true}),
        ),
    )
    .await);
    assert_eq!(out["service"]["propagateTags"], "SERVICE");
    assert_eq!(out["service"]["enableECSManagedTags"], true);
    refused(
        services::update(
            &env.ctx,
            req(json!({"cluster": "c", "service": "s",
                       "deploymentController": {"type": "EXTERNAL"}})),
        )
        .await,
        "deploymentController",
    );
    refused(
        services::update(
            &env.ctx,
            req(json!({"cluster": "c", "service": "s",
                       "deploymentConfiguration": {"strategy": "BLUE_GREEN"}})),
        )
        .await,
        "deploymentConfiguration.strategy",
    );
}

#[tokio::test]
async fn run_task_tags_and_refused_overrides() {
    let env = env();
    cluster(&env.ctx, "c").await;
    agent(&env, "c").await;
    let body = json!({
        "family": "tagged", "tags": [{"key": "owner", "value": "td"}],
        "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 32}],
    });
    ok(berth_ops::ecs::taskdefs::register(&env.ctx, body.to_string().as_bytes()).await);
    let out = ok(tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": "tagged",
                   "propagateTags": "TASK_DEFINITION", "enableECSManagedTags": true,
                   "tags": [{"key": "k", "value": "v"}]})),
    )
    .await);
    let tags = &out["tasks"][0]["tags"];
    assert_eq!(
        tags,
        &json!([{"key": "k", "value": "v"}, {"key": "owner", "value": "td"},
                {"key": "aws:ecs:clusterName", "value": "c"}])
    );
    // A role override must name a role ECS tasks may assume.
    let e = tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": "tagged",
                   "overrides": {"taskRoleArn": "arn:aws:iam::1:role/r"}})),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (ErrorCode::ClientException, "Role is not valid")
    );
    refused(
        tasks::run(
            &env.ctx,
            req(json!({"cluster": "c", "taskDefinition": "tagged", "referenceId": "r"})),
        )
        .await,
        "referenceId",
    );
}
