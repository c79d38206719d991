//! Capacity providers against the in-memory store: CreateCapacityProvider,
//! DescribeCapacityProviders, UpdateCapacityProvider, DeleteCapacityProvider,
//! PutClusterCapacityProviders, CreateCluster's providers, and RunTask's
//! capacityProviderStrategy (split, placement on the provider's hosts, PROVISIONING).

mod support;

use std::sync::Arc;

use berth_model::{keys, ErrorCode};
use berth_ops::ecs::{capacity, clusters, services, tasks};
use berth_store::Txn;
use serde_json::{json, Value};
use support::{cluster, code, env, host, ok, req, taskdef, Env, SECRET};

/// Stores a host group record directly (the host group API is another part's).
async fn group(env: &Env, name: &str, protected: bool) {
    let g = json!({
        "AutoScalingGroupName": name,
        "AutoScalingGroupARN": format!("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:0000:autoScalingGroupName/{name}"),
        "LaunchConfigurationName": "lc", "MinSize": 0, "MaxSize": 10, "DesiredCapacity": 0,
        "DefaultCooldown": 300, "HealthCheckGracePeriod": 0, "HealthCheckType": "EC2",
        "TerminationPolicies": ["Default"], "NewInstancesProtectedFromScaleIn": protected,
        "AvailabilityZones": ["us-east-1a"], "Cluster": "c", "Provider": "process",
        "CreatedTime": 0.0
    });
    let txn = Txn::new().put(
        keys::host_group(name),
        serde_json::to_vec(&g).expect("present"),
    );
    env.store.txn(txn).await.expect("present");
}

async fn provider(env: &Env, name: &str, group: &str) -> Value {
    ok(capacity::create(
        &env.ctx,
        req(
            json!({"name": name, "autoScalingGroupProvider": {"autoScalingGroupArn": group,
            "managedScaling": {"status": "ENABLED"}}}),
        ),
    )
    .await)
}

async fn host_in(env: &Env, cluster: &str, group: &str) -> String {
    let _ = SECRET;
    ok(berth_ops::agent::register(
        &env.ops,
        &host(
            cluster,
            &[("berth.host-group", group), ("berth.host-id", "i-0")],
        ),
    )
    .await)
    .instance_id
}

#[tokio::test]
async fn create_applies_ecs_defaults_and_describe_lists_fargate_first() {
    let env = env();
    group(&env, "hg", false).await;
    let p = provider(&env, "cp", "hg").await["capacityProvider"].clone();
    assert_eq!(p["name"], "cp");
    assert_eq!(p["type"], "EC2_AUTOSCALING");
    assert_eq!(
        p["capacityProviderArn"],
        "arn:aws:ecs:us-east-1:000000000000:capacity-provider/cp"
    );
    let m = &p["autoScalingGroupProvider"]["managedScaling"];
    assert_eq!(m["targetCapacity"], 100);
    assert_eq!(m["minimumScalingStepSize"], 1);
    assert_eq!(m["maximumScalingStepSize"], 10000);
    assert_eq!(m["instanceWarmupPeriod"], 300);
    assert_eq!(
        p["autoScalingGroupProvider"]["managedTerminationProtection"],
        "DISABLED"
    );
    let all = ok(capacity::describe(&env.ctx, req(json!({}))).await);
    let names: Vec<&str> = all["capacityProviders"]
        .as_array()
        .expect("present")
        .iter()
        .map(|p| p["name"].as_str().expect("present"))
        .collect();
    assert_eq!(names, ["FARGATE", "FARGATE_SPOT", "cp"]);
    assert!(all["capacityProviders"][0]
        .get("autoScalingGroupProvider")
        .is_none());
    // Paging and missing names.
    let page = ok(capacity::describe(&env.ctx, req(json!({"maxResults": 2}))).await);
    assert_eq!(
        page["capacityProviders"].as_array().expect("present").len(),
        2
    );
    let rest = ok(capacity::describe(
        &env.ctx,
        req(json!({"maxResults": 2, "nextToken": page["nextToken"]})),
    )
    .await);
    assert_eq!(rest["capacityProviders"][0]["name"], "cp");
    let some = ok(capacity::describe(
        &env.ctx,
        req(json!({"capacityProviders": ["cp", "nope"], "include": ["TAGS"]})),
    )
    .await);
    assert_eq!(some["capacityProviders"][0]["tags"], json!([]));
    assert_eq!(some["failures"][0]["reason"], "MISSING");
    assert_eq!(
        code(capacity::describe(&env.ctx, req(json!({"maxResults": 11}))).await),
        ErrorCode::InvalidParameterException
    );
}

#[tokio::test]
async fn create_refuses_as_ecs_does() {
    let env = env();
    group(&env, "hg", false).await;
    let bad = |body: Value| {
        let ctx = env.ctx();
        async move { capacity::create(&ctx, req(body)).await }
    };
    for name in ["aws-x", "ECSx", "fargate1", "bad name"] {
        let e =
            bad(json!({"name": name, "autoScalingGroupProvider": {"autoScalingGroupArn": "hg"}}))
                .await
                .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterException, "{name}");
    }
    let e = bad(json!({"name": "cp", "autoScalingGroupProvider": {"autoScalingGroupArn": "nope"}}))
        .await
        .unwrap_err();
    assert!(e.message.contains("Auto Scaling group"), "{}", e.message);
    let e = bad(
        json!({"name": "cp", "autoScalingGroupProvider": {"autoScalingGroupArn": "hg",
        "managedScaling": {"targetCapacity": 0}}}),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("targetCapacity"));
    let e = bad(
        json!({"name": "cp", "autoScalingGroupProvider": {"autoScalingGroupArn": "hg",
        "managedScaling": {"minimumScalingStepSize": 5, "maximumScalingStepSize": 2}}}),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("minimumScalingStepSize"));
    // Managed termination protection needs managed scaling, and a protected group.
    let e = bad(
        json!({"name": "cp", "autoScalingGroupProvider": {"autoScalingGroupArn": "hg",
        "managedTerminationProtection": "ENABLED"}}),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("managed scaling"), "{}", e.message);
    let e = bad(
        json!({"name": "cp", "autoScalingGroupProvider": {"autoScalingGroupArn": "hg",
        "managedScaling": {"status": "ENABLED"}, "managedTerminationProtection": "ENABLED"}}),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("instance protection"), "{}", e.message);
    let e = bad(
        json!({"name": "cp", "autoScalingGroupProvider": {"autoScalingGroupArn": "hg",
        "managedDraining": "DISABLED"}}),
    )
    .await
    .expect_err("refused");
    assert!(e.message.contains("managedDraining"), "{}", e.message);
    let e = bad(json!({"name": "cp", "managedInstancesProvider": {"infrastructureRoleArn": "x"}}))
        .await
        .unwrap_err();
    assert!(e.message.starts_with("managedInstancesProvider"));
    // One provider per group; one provider per name.
    provider(&env, "cp", "hg").await;
    let e = bad(json!({"name": "cp", "autoScalingGroupProvider": {"autoScalingGroupArn": "hg"}}))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ClientException);
    let e = bad(json!({"name": "cp2", "autoScalingGroupProvider": {"autoScalingGroupArn": "hg"}}))
        .await
        .unwrap_err();
    assert!(e.message.contains("already in use"), "{}", e.message);
}

#[tokio::test]
async fn update_changes_scaling_and_checks_protection() {
    let env = env();
    group(&env, "hg", true).await;
    provider(&env, "cp", "hg").await;
    let p = ok(capacity::update(
        &env.ctx,
        req(json!({"name": "cp", "autoScalingGroupProvider": {
            "managedScaling": {"status": "ENABLED", "targetCapacity": 80},
            "managedTerminationProtection": "ENABLED"}})),
    )
    .await);
    let a = &p["capacityProvider"]["autoScalingGroupProvider"];
    assert_eq!(a["managedScaling"]["targetCapacity"], 80);
    assert_eq!(a["managedTerminationProtection"], "ENABLED");
    assert_eq!(p["capacityProvider"]["updateStatus"], "UPDATE_COMPLETE");
    let e = capacity::update(
        &env.ctx,
        req(json!({"name": "cp", "autoScalingGroupProvider": {
            "managedScaling": {"status": "DISABLED"}}})),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("managed scaling"), "{}", e.message);
    assert_eq!(
        code(
            capacity::update(
                &env.ctx,
                req(json!({"name": "FARGATE",
            "autoScalingGroupProvider": {}}))
            )
            .await
        ),
        ErrorCode::InvalidParameterException
    );
}

#[tokio::test]
async fn clusters_take_providers_and_delete_is_refused_while_used() {
    let env = env();
    group(&env, "hg", false).await;
    provider(&env, "cp", "hg").await;
    let c = ok(clusters::create(
        &env.ctx,
        req(
            json!({"clusterName": "c", "capacityProviders": ["cp", "FARGATE"],
            "defaultCapacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}]}),
        ),
    )
    .await);
    assert_eq!(c["cluster"]["capacityProviders"], json!(["cp", "FARGATE"]));
    let of_c = ok(capacity::describe(&env.ctx, req(json!({"cluster": "c"}))).await);
    let names: Vec<&str> = of_c["capacityProviders"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["FARGATE", "cp"]);
    assert_eq!(
        c["cluster"]["defaultCapacityProviderStrategy"],
        json!([{"capacityProvider": "cp", "weight": 1, "base": 0}])
    );
    // Unknown providers, and a default naming a provider the cluster lacks, are refused.
    assert_eq!(
        code(
            clusters::create(
                &env.ctx,
                req(json!({"clusterName": "d", "capacityProviders": ["nope"]}))
            )
            .await
        ),
        ErrorCode::InvalidParameterException
    );
    let e = capacity::put_cluster(
        &env.ctx,
        req(json!({"cluster": "c", "capacityProviders": ["FARGATE"],
            "defaultCapacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}]})),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("not associated"), "{}", e.message);
    let e = capacity::delete(&env.ctx, req(json!({"capacityProvider": "cp"})))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ClientException);
    assert!(e.message.contains("clusters: c"), "{}", e.message);
    ok(capacity::put_cluster(
        &env.ctx,
        req(
            json!({"cluster": "c", "capacityProviders": [], "defaultCapacityProviderStrategy": []}),
        ),
    )
    .await);
    let gone = ok(capacity::delete(&env.ctx, req(json!({"capacityProvider": "cp"}))).await);
    assert_eq!(gone["capacityProvider"]["status"], "INACTIVE");
    let all = ok(capacity::describe(&env.ctx, req(json!({"capacityProviders": ["cp"]}))).await);
    assert_eq!(all["failures"][0]["reason"], "MISSING");
}

#[tokio::test]
async fn run_task_splits_places_on_the_group_and_waits_in_provisioning() {
    let env = env();
    group(&env, "hg", false).await;
    provider(&env, "cp", "hg").await;
    cluster(&env.ctx, "c").await;
    ok(capacity::put_cluster(
        &env.ctx,
        req(json!({"cluster": "c", "capacityProviders": ["cp"],
            "defaultCapacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}]})),
    )
    .await);
    // A host outside the group must never get the provider's tasks.
    let outside = ok(berth_ops::agent::register(&env.ops, &host("c", &[])).await).instance_id;
    let td = taskdef(&env.ctx, "web").await;
    // Launch type and strategy together are refused; the default strategy applies otherwise.
    let e = tasks::run(
        &env.ctx,
        req(
            json!({"cluster": "c", "taskDefinition": td, "launchType": "EC2",
            "capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}]}),
        ),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("both a launch type"), "{}", e.message);
    let out = ok(tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": td, "count": 2})),
    )
    .await);
    assert_eq!(out["failures"], json!([]));
    for t in out["tasks"].as_array().expect("present") {
        assert_eq!(t["lastStatus"], "PROVISIONING");
        assert_eq!(t["capacityProviderName"], "cp");
        assert!(t.get("containerInstanceArn").is_none(), "{t}");
    }
    // With launchType EC2 the outside host is used as before.
    let ec2 = ok(tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": td, "launchType": "EC2"})),
    )
    .await);
    assert!(ec2["tasks"][0]["containerInstanceArn"]
        .as_str()
        .expect("present")
        .ends_with(&outside));
    // A host of the group appears: the waiting tasks are placed on it.
    let inside = host_in(&env, "c", "hg").await;
    let launcher: Arc<berth_control::Launcher> = env.ops.launcher();
    let arn_of = |id: &str| id.to_owned();
    let placed = ok(launcher
        .place_waiting("c", support::T0, 1800.0, &arn_of)
        .await);
    assert_eq!(placed, 2);
    let ids: Vec<&str> = out["tasks"]
        .as_array()
        .expect("present")
        .iter()
        .map(|t| t["taskArn"].as_str().expect("present"))
        .collect();
    let d = ok(tasks::describe(&env.ctx, req(json!({"cluster": "c", "tasks": ids}))).await);
    for t in d["tasks"].as_array().expect("present") {
        assert!(
            t["containerInstanceArn"]
                .as_str()
                .expect("present")
                .ends_with(&inside),
            "{t}"
        );
        assert_eq!(t["capacityProviderName"], "cp");
    }
}

#[tokio::test]
async fn waiting_tasks_time_out_with_task_failed_to_start() {
    let env = env();
    group(&env, "hg", false).await;
    provider(&env, "cp", "hg").await;
    cluster(&env.ctx, "c").await;
    ok(capacity::put_cluster(
        &env.ctx,
        req(json!({"cluster": "c", "capacityProviders": ["cp"], "defaultCapacityProviderStrategy": []})),
    )
    .await);
    let td = taskdef(&env.ctx, "web").await;
    let out = ok(tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": td,
            "capacityProviderStrategy": [{"capacityProvider": "cp", "base": 1}]})),
    )
    .await);
    let arn = out["tasks"][0]["taskArn"]
        .as_str()
        .expect("present")
        .to_owned();
    let launcher = env.ops.launcher();
    let arn_of = |id: &str| id.to_owned();
    // A waiting task stopped by StopTask stops at the next pass, with the user's reason.
    let stopped = ok(tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": td,
            "capacityProviderStrategy": [{"capacityProvider": "cp", "base": 1}]})),
    )
    .await);
    let other = stopped["tasks"][0]["taskArn"]
        .as_str()
        .expect("present")
        .to_owned();
    ok(tasks::stop(
        &env.ctx,
        req(json!({"cluster": "c", "task": other, "reason": "not needed"})),
    )
    .await);
    assert_eq!(
        ok(launcher
            .place_waiting("c", support::T0 + 1.0, 60.0, &arn_of)
            .await),
        1
    );
    let d = ok(tasks::describe(&env.ctx, req(json!({"cluster": "c", "tasks": [other]}))).await);
    assert_eq!(d["tasks"][0]["lastStatus"], "STOPPED");
    assert_eq!(d["tasks"][0]["stopCode"], "UserInitiated");
    assert_eq!(d["tasks"][0]["stoppedReason"], "not needed");
    assert_eq!(
        ok(launcher
            .place_waiting("c", support::T0 + 10.0, 60.0, &arn_of)
            .await),
        0
    );
    assert_eq!(
        ok(launcher
            .place_waiting("c", support::T0 + 61.0, 60.0, &arn_of)
            .await),
        1
    );
    let d = ok(tasks::describe(&env.ctx, req(json!({"cluster": "c", "tasks": [arn]}))).await);
    let t = &d["tasks"][0];
    assert_eq!(t["lastStatus"], "STOPPED");
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert!(t["stoppedReason"]
        .as_str()
        .expect("present")
        .contains("PROVISIONING"));
}

#[tokio::test]
async fn strategies_are_checked_against_the_cluster() {
    let env = env();
    group(&env, "hg", false).await;
    provider(&env, "cp", "hg").await;
    cluster(&env.ctx, "c").await;
    let td = taskdef(&env.ctx, "web").await;
    let e = tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": td,
            "capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}]})),
    )
    .await
    .unwrap_err();
    assert!(
        e.message.contains("not associated with the cluster"),
        "{}",
        e.message
    );
    let e = tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": td,
            "capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1001}]})),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("weight"), "{}", e.message);
}

#[tokio::test]
async fn services_keep_their_strategy_and_hold_on_to_their_providers() {
    let env = env();
    group(&env, "hg", false).await;
    provider(&env, "cp", "hg").await;
    group(&env, "hg2", false).await;
    provider(&env, "cp2", "hg2").await;
    cluster(&env.ctx, "c").await;
    ok(capacity::put_cluster(
        &env.ctx,
        req(json!({"cluster": "c", "capacityProviders": ["cp", "cp2"],
            "defaultCapacityProviderStrategy": []})),
    )
    .await);
    let td = taskdef(&env.ctx, "web").await;
    let strategy = json!([{"capacityProvider": "cp", "weight": 1, "base": 1}]);
    let s = ok(services::create(
        &env.ctx,
        req(
            json!({"cluster": "c", "serviceName": "s", "taskDefinition": td, "desiredCount": 2,
            "capacityProviderStrategy": strategy}),
        ),
    )
    .await);
    assert_eq!(s["service"]["capacityProviderStrategy"], strategy);
    // DAEMON services take no strategy.
    let e = services::create(
        &env.ctx,
        req(
            json!({"cluster": "c", "serviceName": "d", "taskDefinition": td,
            "schedulingStrategy": "DAEMON", "capacityProviderStrategy": strategy}),
        ),
    )
    .await
    .expect_err("refused");
    assert!(e.message.contains("DAEMON"), "{}", e.message);
    // A provider a service uses stays on the cluster and cannot be deleted.
    let e = capacity::put_cluster(
        &env.ctx,
        req(json!({"cluster": "c", "capacityProviders": ["cp2"], "defaultCapacityProviderStrategy": []})),
    )
    .await
    .expect_err("refused");
    assert_eq!(e.code, ErrorCode::ResourceInUseException);
    let e = capacity::delete(&env.ctx, req(json!({"capacityProvider": "cp"})))
        .await
        .expect_err("refused");
    assert!(e.message.contains("services: s"), "{}", e.message);
    // UpdateService changes it with a new deployment.
    let other = json!([{"capacityProvider": "cp2", "weight": 1, "base": 0}]);
    let u = ok(services::update(
        &env.ctx,
        req(json!({"cluster": "c", "service": "s", "capacityProviderStrategy": other})),
    )
    .await);
    assert_eq!(u["service"]["capacityProviderStrategy"], other);
    assert_eq!(
        u["service"]["deployments"].as_array().expect("list").len(),
        2
    );
    ok(capacity::put_cluster(
        &env.ctx,
        req(json!({"cluster": "c", "capacityProviders": ["cp2"], "defaultCapacityProviderStrategy": []})),
    )
    .await);
}

#[tokio::test]
async fn run_task_splits_count_by_base_then_weight() {
    let env = env();
    group(&env, "hg", false).await;
    provider(&env, "cp", "hg").await;
    group(&env, "hg2", false).await;
    provider(&env, "cp2", "hg2").await;
    cluster(&env.ctx, "c").await;
    ok(capacity::put_cluster(
        &env.ctx,
        req(json!({"cluster": "c", "capacityProviders": ["cp", "cp2"],
            "defaultCapacityProviderStrategy": []})),
    )
    .await);
    let td = taskdef(&env.ctx, "web").await;
    let out = ok(tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": td, "count": 5,
            "capacityProviderStrategy": [{"capacityProvider": "cp", "base": 1, "weight": 1},
                                         {"capacityProvider": "cp2", "weight": 3}]})),
    )
    .await);
    let on = |p: &str| {
        out["tasks"]
            .as_array()
            .expect("list")
            .iter()
            .filter(|t| t["capacityProviderName"] == p)
            .count()
    };
    assert_eq!((on("cp"), on("cp2")), (2, 3));
}
