//! CreateService, UpdateService, DescribeServices, ListServices, DeleteService,
//! ListServiceDeployments, DescribeServiceDeployments and berth's GetServiceMetrics against the
//! in-memory store. Only the desired state is checked: the service controller is not running.

mod support;

use std::sync::Arc;

use berth_model::ErrorCode;
use berth_ops::ecs::{deployments, metrics, services};
use berth_ops::Ctx;
use serde_json::{json, Value};
use support::{cluster, code, elb, env, env_with, ok, req, service, service_arn, strings, taskdef};

/// A cluster `c` with a task definition `web:1`; answers its ARN.
async fn setup(ctx: &Ctx) -> String {
    cluster(ctx, "c").await;
    taskdef(ctx, "web").await
}

async fn describe(ctx: &Ctx, name: &str) -> Value {
    let out = ok(services::describe(ctx, req(json!({"cluster": "c", "services": [name]}))).await);
    out["services"][0].clone()
}

async fn update(ctx: &Ctx, body: Value) -> Result<Value, berth_model::ApiError> {
    services::update(ctx, req(body))
        .await
        .map(|v| v["service"].clone())
}

fn deployment_ids(svc: &Value) -> Vec<String> {
    svc["deployments"]
        .as_array()
        .expect("deployments")
        .iter()
        .map(|d| d["id"].as_str().expect("an id").to_owned())
        .collect()
}

#[tokio::test]
async fn create_answers_an_active_service_with_one_primary_deployment() {
    let env = env();
    let td = setup(&env.ctx).await;
    let out = ok(services::create(
        &env.ctx,
        req(
            json!({"cluster": "c", "serviceName": "api", "taskDefinition": "web", "desiredCount": 2,
                   "tags": [{"key": "team", "value": "web"}]}),
        ),
    )
    .await);
    let s = &out["service"];
    assert_eq!(s["serviceArn"], service_arn("c", "api"));
    assert_eq!(s["status"], "ACTIVE");
    assert_eq!(s["desiredCount"], 2);
    assert_eq!(s["taskDefinition"], td);
    assert_eq!(s["launchType"], "EC2");
    assert_eq!(s["deploymentConfiguration"]["maximumPercent"], 200);
    assert_eq!(s["deploymentConfiguration"]["minimumHealthyPercent"], 100);
    assert_eq!(s["deployments"].as_array().expect("deployments").len(), 1);
    assert_eq!(s["deployments"][0]["status"], "PRIMARY");
    assert_eq!(s["tags"], json!([{"key": "team", "value": "web"}]));
    let listed = ok(services::list(&env.ctx, req(json!({"cluster": "c"}))).await);
    assert_eq!(strings(&listed["serviceArns"]), [service_arn("c", "api")]);
}

#[tokio::test]
async fn creating_a_service_twice_is_not_idempotent() {
    let env = env();
    let td = setup(&env.ctx).await;
    service(&env.ctx, "c", "api", &td, 1).await;
    let e = services::create(
        &env.ctx,
        req(json!({"cluster": "c", "serviceName": "api", "taskDefinition": td, "desiredCount": 1})),
    )
    .await
    .expect_err("a second create fails");
    assert_eq!(e.code, ErrorCode::InvalidParameterException);
    assert!(e.message.contains("not idempotent"), "{e}");
}

#[tokio::test]
async fn create_validates_its_request() {
    let env = env();
    let td = setup(&env.ctx).await;
    let base = json!({"cluster": "c", "serviceName": "x", "taskDefinition": td, "desiredCount": 1});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().expect("an object") {
            b[k] = v.clone();
        }
        b
    };
    let invalid = [
        with(json!({"desiredCount": -1})),
        with(json!({"desiredCount": 10_001})),
        with(json!({"desiredCount": null})),
        with(json!({"schedulingStrategy": "DAEMON"})),
        with(
            json!({"deploymentConfiguration": {"maximumPercent": 100, "minimumHealthyPercent": 100}}),
        ),
        with(json!({"deploymentConfiguration": {"maximumPercent": 50}})),
        with(json!({"deploymentConfiguration": {"minimumHealthyPercent": 101}})),
        with(json!({"deploymentConfiguration": {"maximumPercent": -1}})),
        with(json!({"placementStrategy": [{"type": "sideways"}]})),
        with(json!({"serviceName": "bad name!"})),
        with(json!({"launchType": "LAMBDA"})),
        with(json!({"propagateTags": "EVERYWHERE"})),
        with(json!({"healthCheckGracePeriodSeconds": -5})),
        with(json!({"taskDefinition": null})),
        with(json!({"tags": [{"key": "aws:x", "value": "y"}]})),
        with(json!({"loadBalancers": [{"containerName": "app", "containerPort": 80}]})),
    ];
    for body in invalid {
        let e = code(services::create(&env.ctx, req(body.clone())).await);
        assert_eq!(e, ErrorCode::InvalidParameterException, "{body}");
    }
    let e = code(services::create(&env.ctx, req(with(json!({"cluster": "ghost"})))).await);
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
    let e = code(services::create(&env.ctx, req(with(json!({"taskDefinition": "nope:1"})))).await);
    assert_eq!(e, ErrorCode::ClientException);
    let listed = ok(services::list(&env.ctx, req(json!({"cluster": "c"}))).await);
    assert_eq!(listed["serviceArns"], json!([]));
}

#[tokio::test]
async fn a_daemon_service_has_no_desired_count_or_placement_strategy() {
    let env = env();
    let td = setup(&env.ctx).await;
    let d = ok(services::create(
        &env.ctx,
        req(json!({"cluster": "c", "serviceName": "d", "taskDefinition": td, "schedulingStrategy": "DAEMON"})),
    )
    .await);
    assert_eq!(d["service"]["schedulingStrategy"], "DAEMON");
    let e = code(services::create(
        &env.ctx,
        req(json!({"cluster": "c", "serviceName": "d2", "taskDefinition": td, "schedulingStrategy": "DAEMON",
                   "placementStrategy": [{"type": "spread", "field": "instanceId"}]})),
    )
    .await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let e = code(
        update(
            &env.ctx,
            json!({"cluster": "c", "service": "d", "desiredCount": 3}),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn a_service_needs_an_active_task_definition() {
    let env = env();
    let td = setup(&env.ctx).await;
    ok(berth_ops::ecs::taskdefs::deregister(&env.ctx, req(json!({"taskDefinition": td}))).await);
    let e = code(services::create(
        &env.ctx,
        req(json!({"cluster": "c", "serviceName": "x", "taskDefinition": td, "desiredCount": 0})),
    )
    .await);
    assert_eq!(e, ErrorCode::ClientException);
}

#[tokio::test]
async fn load_balancers_must_name_a_target_group_and_a_container_port() {
    let env = env();
    let td = setup(&env.ctx).await;
    let tg = ok(berth_ops::elb::target_groups::create(
        &env.ctx,
        elb(json!({"Name": "tg", "Protocol": "HTTP", "Port": "80"})),
    )
    .await)["TargetGroups"][0]["TargetGroupArn"]
        .clone();
    let create = |name: &str, port: i64, tg: &Value| {
        services::create(
            &env.ctx,
            req(
                json!({"cluster": "c", "serviceName": name, "taskDefinition": td, "desiredCount": 0,
                       "loadBalancers": [{"targetGroupArn": tg, "containerName": "app", "containerPort": port}]}),
            ),
        )
    };
    let s = ok(create("good", 80, &tg).await);
    assert_eq!(s["service"]["loadBalancers"][0]["targetGroupArn"], tg);
    assert_eq!(
        code(create("bad-port", 81, &tg).await),
        ErrorCode::InvalidParameterException
    );
    let ghost = json!(format!("{}0", tg.as_str().expect("an ARN")));
    assert_eq!(
        code(create("bad-tg", 80, &ghost).await),
        ErrorCode::InvalidParameterException
    );
    // The same target group's name and id in another region's ARN is not that target group.
    let elsewhere = json!(tg
        .as_str()
        .expect("an ARN")
        .replace(":us-east-1:", ":eu-west-1:"));
    assert_eq!(
        code(create("other-region", 80, &elsewhere).await),
        ErrorCode::InvalidParameterException
    );
}

#[tokio::test]
async fn update_scales_without_a_new_deployment() {
    let env = env();
    let td = setup(&env.ctx).await;
    let first = deployment_ids(&service(&env.ctx, "c", "api", &td, 2).await["service"]);
    let s = ok(update(
        &env.ctx,
        json!({"cluster": "c", "service": "api", "desiredCount": 4}),
    )
    .await);
    assert_eq!(s["desiredCount"], 4);
    assert_eq!(deployment_ids(&s), first);
    // Deployment configuration: the members given change, the others stay.
    let s = ok(update(
        &env.ctx,
        json!({"cluster": "c", "service": "api", "deploymentConfiguration": {"minimumHealthyPercent": 50},
               "healthCheckGracePeriodSeconds": 12}),
    )
    .await);
    assert_eq!(s["deploymentConfiguration"]["minimumHealthyPercent"], 50);
    assert_eq!(s["deploymentConfiguration"]["maximumPercent"], 200);
    assert_eq!(s["healthCheckGracePeriodSeconds"], 12);
    assert_eq!(deployment_ids(&s), first);
    assert_eq!(describe(&env.ctx, "api").await["desiredCount"], 4);
}

#[tokio::test]
async fn update_starts_a_deployment_for_a_new_revision_or_when_forced() {
    let env = env();
    let td1 = setup(&env.ctx).await;
    let first = deployment_ids(&service(&env.ctx, "c", "api", &td1, 1).await["service"])[0].clone();
    let s = ok(update(
        &env.ctx,
        json!({"cluster": "c", "service": "api", "forceNewDeployment": true}),
    )
    .await);
    let ids = deployment_ids(&s);
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], first);
    assert_eq!(s["deployments"][0]["status"], "PRIMARY");
    assert_eq!(s["deployments"][1]["status"], "ACTIVE");
    let td2 = taskdef(&env.ctx, "web").await;
    let s = ok(update(
        &env.ctx,
        json!({"cluster": "c", "service": "api", "taskDefinition": td2}),
    )
    .await);
    assert_eq!(s["taskDefinition"], td2);
    assert_eq!(s["deployments"][0]["taskDefinition"], td2);
    // The same revision again, by family: nothing new to deploy.
    let s = ok(update(
        &env.ctx,
        json!({"cluster": "c", "service": "api", "taskDefinition": "web"}),
    )
    .await);
    assert_eq!(deployment_ids(&s).len(), 3);
}

#[tokio::test]
async fn update_rejects_bad_counts_and_deployment_limits() {
    let env = env();
    let td = setup(&env.ctx).await;
    service(&env.ctx, "c", "api", &td, 1).await;
    for body in [
        json!({"cluster": "c", "service": "api", "desiredCount": -1}),
        json!({"cluster": "c", "service": "api", "desiredCount": 10_001}),
        json!({"cluster": "c", "service": "api",
               "deploymentConfiguration": {"maximumPercent": 100, "minimumHealthyPercent": 100}}),
        json!({"cluster": "c", "service": "api", "deploymentConfiguration": {"maximumPercent": 2001}}),
        json!({"cluster": "c", "service": "api", "placementConstraints": [{"type": "memberOf"}]}),
    ] {
        assert_eq!(
            code(update(&env.ctx, body.clone()).await),
            ErrorCode::InvalidParameterException,
            "{body}"
        );
    }
    assert_eq!(describe(&env.ctx, "api").await["desiredCount"], 1);
    let e = code(
        update(
            &env.ctx,
            json!({"cluster": "c", "service": "nope", "desiredCount": 1}),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ServiceNotFoundException);
    let e = code(
        update(
            &env.ctx,
            json!({"cluster": "ghost", "service": "api", "desiredCount": 1}),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
}

#[tokio::test]
async fn delete_needs_a_service_scaled_to_zero_unless_forced() {
    let env = env();
    let td = setup(&env.ctx).await;
    service(&env.ctx, "c", "api", &td, 2).await;
    let del = |force: bool| {
        services::delete(
            &env.ctx,
            req(json!({"cluster": "c", "service": "api", "force": force})),
        )
    };
    let e = del(false).await.expect_err("scaled above 0");
    assert_eq!(e.code, ErrorCode::InvalidParameterException);
    assert!(e.message.contains("scaled above 0"), "{e}");
    assert_eq!(describe(&env.ctx, "api").await["status"], "ACTIVE");
    let gone = ok(del(true).await);
    assert_eq!(gone["service"]["status"], "DRAINING");
    assert_eq!(gone["service"]["desiredCount"], 0);
    // Deleting again answers the service as it is.
    assert_eq!(ok(del(false).await)["service"]["status"], "DRAINING");
    let listed = ok(services::list(&env.ctx, req(json!({"cluster": "c"}))).await);
    assert_eq!(listed["serviceArns"], json!([]));
    let e = code(
        update(
            &env.ctx,
            json!({"cluster": "c", "service": "api", "desiredCount": 1}),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ServiceNotActiveException);
    let e = services::create(
        &env.ctx,
        req(json!({"cluster": "c", "serviceName": "api", "taskDefinition": td, "desiredCount": 1})),
    )
    .await
    .expect_err("still draining");
    assert!(e.message.contains("still Draining"), "{e}");
    let e = code(services::delete(&env.ctx, req(json!({"cluster": "c", "service": "nope"}))).await);
    assert_eq!(e, ErrorCode::ServiceNotFoundException);
}

#[tokio::test]
async fn describe_services_reports_missing_ones_and_checks_its_input() {
    let env = env();
    let td = setup(&env.ctx).await;
    service(&env.ctx, "c", "api", &td, 0).await;
    let out = ok(services::describe(
        &env.ctx,
        req(json!({"cluster": "c", "services": [service_arn("c", "api"), "nope"], "include": ["TAGS"]})),
    )
    .await);
    assert_eq!(out["services"][0]["serviceName"], "api");
    assert_eq!(
        out["failures"],
        json!([{"arn": service_arn("c", "nope"), "reason": "MISSING"}])
    );
    let eleven: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    let e =
        code(services::describe(&env.ctx, req(json!({"cluster": "c", "services": eleven}))).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let e = code(
        services::describe(
            &env.ctx,
            req(json!({"cluster": "ghost", "services": ["api"]})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
    let e = code(services::list(&env.ctx, req(json!({"cluster": "ghost"}))).await);
    assert_eq!(e, ErrorCode::ClusterNotFoundException);
}

#[tokio::test]
async fn list_services_filters_and_pages() {
    let env = env();
    let td = setup(&env.ctx).await;
    for name in ["a", "b", "c"] {
        service(&env.ctx, "c", name, &td, 0).await;
    }
    ok(services::create(
        &env.ctx,
        req(json!({"cluster": "c", "serviceName": "d", "taskDefinition": td, "schedulingStrategy": "DAEMON"})),
    )
    .await);
    let ls = |v: Value| services::list(&env.ctx, req(v));
    let daemons = ok(ls(json!({"cluster": "c", "schedulingStrategy": "DAEMON"})).await);
    assert_eq!(strings(&daemons["serviceArns"]), [service_arn("c", "d")]);
    let fargate = ok(ls(json!({"cluster": "c", "launchType": "FARGATE"})).await);
    assert_eq!(fargate["serviceArns"], json!([]));
    let first = ok(ls(json!({"cluster": "c", "maxResults": 3})).await);
    let token = first["nextToken"].as_str().expect("a token");
    let rest = ok(ls(json!({"cluster": "c", "maxResults": 3, "nextToken": token})).await);
    let mut all = strings(&first["serviceArns"]);
    all.extend(strings(&rest["serviceArns"]));
    let want: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| service_arn("c", n))
        .collect();
    assert_eq!(all, want);
}

#[tokio::test]
async fn service_deployments_are_listed_newest_first_and_described() {
    let env = env();
    let td = setup(&env.ctx).await;
    service(&env.ctx, "c", "api", &td, 1).await;
    env.clock.advance(10.0);
    ok(update(
        &env.ctx,
        json!({"cluster": "c", "service": "api", "forceNewDeployment": true}),
    )
    .await);
    let out = ok(deployments::list(&env.ctx, req(json!({"cluster": "c", "service": "api"}))).await);
    let listed = out["serviceDeployments"].as_array().expect("deployments");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["status"], "IN_PROGRESS");
    assert_eq!(
        listed[1]["status"], "STOPPED",
        "superseded by the newer one"
    );
    let only = ok(deployments::list(
        &env.ctx,
        req(json!({"cluster": "c", "service": "api", "status": ["IN_PROGRESS"]})),
    )
    .await);
    assert_eq!(
        only["serviceDeployments"]
            .as_array()
            .expect("deployments")
            .len(),
        1
    );
    let arn = listed[0]["serviceDeploymentArn"].clone();
    let d = ok(deployments::describe(&env.ctx, req(json!({"serviceDeploymentArns": [arn]}))).await);
    let one = &d["serviceDeployments"][0];
    assert_eq!(one["status"], "IN_PROGRESS");
    assert_eq!(one["targetServiceRevision"]["requestedTaskCount"], 1);
    assert_eq!(
        one["sourceServiceRevisions"]
            .as_array()
            .expect("sources")
            .len(),
        1
    );
    let missing = "arn:aws:ecs:us-east-1:000000000000:service-deployment/c/api/000";
    let d =
        ok(deployments::describe(&env.ctx, req(json!({"serviceDeploymentArns": [missing]}))).await);
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    for bad in [
        json!({"serviceDeploymentArns": []}),
        json!({"serviceDeploymentArns": ["not-an-arn"]}),
    ] {
        let e = code(deployments::describe(&env.ctx, req(bad)).await);
        assert_eq!(e, ErrorCode::InvalidParameterException);
    }
    let e = code(
        deployments::list(
            &env.ctx,
            req(json!({"cluster": "c", "service": "api", "status": ["DONE"]})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let e =
        code(deployments::list(&env.ctx, req(json!({"cluster": "c", "service": "nope"}))).await);
    assert_eq!(e, ErrorCode::ServiceNotFoundException);
}

#[tokio::test]
async fn service_metrics_need_a_service_and_a_metrics_hub() {
    let without = env();
    let td = setup(&without.ctx).await;
    service(&without.ctx, "c", "api", &td, 0).await;
    let e = code(metrics::get(&without.ctx, req(json!({"cluster": "c", "service": "api"}))).await);
    assert_eq!(
        e,
        ErrorCode::ClientException,
        "this server keeps no metrics"
    );

    let env =
        env_with(|ops| ops.with_metrics_hub(Arc::new(berth_control::autoscale::MetricsHub::new())));
    let td = setup(&env.ctx).await;
    service(&env.ctx, "c", "api", &td, 0).await;
    let out = ok(metrics::get(
        &env.ctx,
        req(json!({"cluster": "c", "service": "api", "minutes": 30})),
    )
    .await);
    assert_eq!(out["resolutionSeconds"].as_f64(), Some(60.0));
    assert_eq!(out["CPUUtilization"], json!([]));
    let e = code(metrics::get(&env.ctx, req(json!({"cluster": "c", "service": "nope"}))).await);
    assert_eq!(e, ErrorCode::ServiceNotFoundException);
    let e = code(metrics::get(&env.ctx, req(json!({"cluster": "c", "service": "a/b"}))).await);
    assert_eq!(e, ErrorCode::InvalidParameterException);
    let e = code(
        metrics::get(
            &env.ctx,
            req(json!({"cluster": "c", "service": "api", "minutes": 61})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidParameterException);
}

/// CreateService once checked that the cluster is ACTIVE outside its transaction, and
/// DeleteCluster counts services outside its own: racing, both succeeded and left an ACTIVE
/// service in an INACTIVE cluster. CreateService now rewrites the cluster record with the
/// service, so one of the two conflicts and retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_is_never_created_in_a_deleted_cluster() {
    let env = env();
    let td = taskdef(&env.ctx, "web").await;
    for i in 0..30 {
        let name = format!("c{i}");
        cluster(&env.ctx, &name).await;
        let (c1, c2) = (env.ctx(), env.ctx());
        let body =
            json!({"cluster": name, "serviceName": "s", "taskDefinition": td, "desiredCount": 0});
        let create = tokio::spawn(async move { services::create(&c1, req(body)).await });
        let del = json!({"cluster": name});
        let delete =
            tokio::spawn(async move { berth_ops::ecs::clusters::delete(&c2, req(del)).await });
        let (created, deleted) = (create.await.expect("ends"), delete.await.expect("ends"));
        assert!(
            !(created.is_ok() && deleted.is_ok()),
            "round {i}: both succeeded"
        );
    }
}
