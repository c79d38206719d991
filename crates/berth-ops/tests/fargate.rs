//! FARGATE against the in-memory store: validation with ECS's texts, tasks held in
//! PROVISIONING until managed capacity has room, placement isolation (FARGATE only on managed
//! hosts, EC2 never there), managed hosts hidden from every ECS answer, the managed group
//! sized by the FARGATE controller, and Spot interruption.

mod support;

use berth_control::{FargateCapacity, FargateConfig};
use berth_model::hostgroup::{HostGroup, HostRecord, ATTR_HOST_GROUP, ATTR_HOST_ID};
use berth_model::{keys, ErrorCode, Task};
use berth_ops::ecs::{clusters, fargate, instances, services, taskdefs, tasks};
use berth_ops::Ctx;
use berth_store::StoreExt;
use serde_json::{json, Value};
use support::{cluster, code, env, host, ok, req, strings, Env};

thread_local! {
    /// This test's default subnet (each `#[tokio::test]` runs on its own thread).
    static SUBNET: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Makes the default VPC in the test's store (as the server does at start-up) and keeps its
/// first subnet for [`net`]: FARGATE tasks are awsvpc tasks, placed in a real subnet.
async fn init_net(env: &Env) {
    ok(berth_ops::ec2::ensure_defaults(&env.ops, "us-east-1", "10.247.0.0/16").await);
    let all = berth_ops::ec2::parse(json!({})).expect("the request parses");
    let subnets = ok(berth_ops::ec2::vpcs::describe_subnets(&env.ctx, all).await);
    let id = subnets["subnetSet"][0]["subnetId"]
        .as_str()
        .expect("a default subnet")
        .to_owned();
    SUBNET.with(|s| *s.borrow_mut() = id);
}

fn net() -> Value {
    let subnet = SUBNET.with(|s| s.borrow().clone());
    assert!(!subnet.is_empty(), "init_net first");
    json!({"awsvpcConfiguration": {"subnets": [subnet]}})
}

async fn fargate_td(ctx: &Ctx, family: &str, cpu: &str, memory: &str) -> String {
    let body = json!({
        "family": family, "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
        "cpu": cpu, "memory": memory,
        "containerDefinitions": [{"name": "app", "image": "busybox"}],
    });
    let out = ok(taskdefs::register(ctx, body.to_string().as_bytes()).await);
    out["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .expect("arn")
        .to_owned()
}

async fn run(ctx: &Ctx, body: Value) -> Value {
    ok(tasks::run(ctx, req(body)).await)
}

fn controller(env: &Env) -> FargateCapacity {
    FargateCapacity::new(
        env.store.clone(),
        env.clock.clone(),
        env.ops.launcher(),
        FargateConfig {
            idle_secs: 30.0,
            ..FargateConfig::default()
        },
    )
}

/// A managed host of `group` registering (as the host group controller's agent would).
async fn managed_host(env: &Env, cluster: &str, group: &str, host_id: &str) -> String {
    let h = host(
        cluster,
        &[
            (ATTR_HOST_GROUP, group),
            (ATTR_HOST_ID, host_id),
            (berth_model::CAP_TASK_ENI, "true"),
        ],
    );
    ok(berth_ops::agent::register(&env.ops, &h).await).instance_id
}

async fn stored_task(env: &Env, cluster: &str, arn: &str) -> Task {
    let id = arn.rsplit('/').next().expect("id");
    env.store
        .get_json::<Task>(&keys::task(cluster, id))
        .await
        .expect("store")
        .expect("task")
        .0
}

async fn group(env: &Env, name: &str) -> Option<HostGroup> {
    env.store
        .get_json::<HostGroup>(&keys::host_group(name))
        .await
        .expect("store")
        .map(|(g, _)| g)
}

#[tokio::test]
async fn registration_checks_fargate_sizes_with_ecs_texts() {
    let env = env();
    init_net(&env).await;
    let body = |cpu: &str, mem: &str| {
        json!({"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": cpu, "memory": mem, "containerDefinitions": [{"name": "a", "image": "i"}]})
        .to_string()
    };
    let e = taskdefs::register(&env.ctx, body("512", "256").as_bytes())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ClientException);
    assert_eq!(
        e.message,
        "No Fargate configuration exists for given values: 512 CPU, 256 memory. See the Amazon ECS documentation for the valid values."
    );
    // vCPU and GB units are converted first, then checked.
    ok(taskdefs::register(&env.ctx, body("1 vCPU", "3 GB").as_bytes()).await);
    let e = taskdefs::register(
        &env.ctx,
        json!({"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "memory": "512", "containerDefinitions": [{"name": "a", "image": "i"}]})
        .to_string()
        .as_bytes(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.message,
        "Fargate requires that 'cpu' be defined at the task level."
    );
    let e = taskdefs::register(
        &env.ctx,
        json!({"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "a", "image": "i", "privileged": true}]})
        .to_string()
        .as_bytes(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.message,
        "Tasks using the Fargate launch type do not support privileged containers."
    );
}

#[tokio::test]
async fn run_task_checks_fargate_members_as_ecs() {
    let env = env();
    init_net(&env).await;
    cluster(&env.ctx, "c").await;
    let td = fargate_td(&env.ctx, "web", "256", "512").await;
    let base = json!({"cluster": "c", "taskDefinition": td, "launchType": "FARGATE"});
    // No network configuration.
    let e = tasks::run(&env.ctx, req(base.clone())).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParameterException);
    assert_eq!(
        e.message,
        "Network Configuration must be provided when networkMode 'awsvpc' is specified."
    );
    // An override that leaves Fargate's table.
    let mut b = base.clone();
    b["networkConfiguration"] = net();
    b["overrides"] = json!({"cpu": "512", "memory": "256"});
    let e = tasks::run(&env.ctx, req(b)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ClientException);
    assert!(e
        .message
        .starts_with("No Fargate configuration exists for given values: 512 CPU, 256 memory."));
    // An unknown platform version; a platform version with EC2.
    let mut b = base.clone();
    b["networkConfiguration"] = net();
    b["platformVersion"] = json!("9.9.9");
    assert_eq!(
        code(tasks::run(&env.ctx, req(b)).await),
        ErrorCode::PlatformUnknownException
    );
    let b = json!({"cluster": "c", "taskDefinition": td, "platformVersion": "LATEST"});
    let e = tasks::run(&env.ctx, req(b)).await.unwrap_err();
    assert_eq!(
        e.message,
        "The platform version must be null when specifying an EC2 launch type."
    );
    // A launch type and a strategy together.
    let mut b = base;
    b["networkConfiguration"] = net();
    b["capacityProviderStrategy"] = json!([{"capacityProvider": "FARGATE"}]);
    assert_eq!(
        code(tasks::run(&env.ctx, req(b)).await),
        ErrorCode::InvalidParameterException
    );
    // A definition that is not Fargate-compatible.
    let ec2 = support::taskdef(&env.ctx, "plain").await;
    let b = json!({"cluster": "c", "taskDefinition": ec2, "launchType": "FARGATE",
        "networkConfiguration": net()});
    let e = tasks::run(&env.ctx, req(b)).await.unwrap_err();
    assert_eq!(
        e.message,
        "Task definition does not support launch_type FARGATE."
    );
}

#[tokio::test]
async fn a_fargate_task_waits_for_managed_capacity_and_lands_only_there() {
    let env = env();
    init_net(&env).await;
    cluster(&env.ctx, "c").await;
    let ec2_host = ok(berth_ops::agent::register(&env.ops, &host("c", &[])).await);
    let td = fargate_td(&env.ctx, "web", "1024", "2048").await;
    let out = run(
        &env.ctx,
        json!({"cluster": "c", "taskDefinition": td, "launchType": "FARGATE",
            "networkConfiguration": net()}),
    )
    .await;
    assert_eq!(out["failures"], json!([]));
    let t = &out["tasks"][0];
    assert_eq!(t["lastStatus"], "PROVISIONING");
    assert_eq!(t["launchType"], "FARGATE");
    assert_eq!(t["capacityProviderName"], "FARGATE");
    assert_eq!(t["platformVersion"], "1.4.0");
    assert_eq!(t["platformFamily"], "Linux");
    assert_eq!(t["cpu"], "1024");
    assert_eq!(t["memory"], "2048");
    assert_eq!(t["ephemeralStorage"], json!({"sizeInGiB": 20}));
    assert!(t.get("containerInstanceArn").is_none(), "{t}");
    let arn = t["taskArn"].as_str().expect("arn").to_owned();
    // Not placed on the EC2 host, although it has room.
    assert_eq!(
        stored_task(&env, "c", &arn).await.container_instance_id,
        None
    );

    // The controller makes the managed group and asks for one host.
    let ctl = controller(&env);
    ok(ctl.reconcile("c").await);
    let g = group(&env, "berth-fargate-c").await.expect("managed group");
    assert_eq!(g.desired_capacity, 1);
    assert_eq!(g.managed_by.as_deref(), Some("FARGATE"));
    assert_eq!(g.cluster, "c");

    // The host comes up (as the host group controller starts it): the task goes there.
    let managed = managed_host(&env, "c", "berth-fargate-c", "i-0000000000000001").await;
    ok(ctl.reconcile("c").await);
    let placed = stored_task(&env, "c", &arn).await;
    assert_eq!(
        placed.container_instance_id.as_deref(),
        Some(managed.as_str())
    );
    let shown = ok(tasks::describe(&env.ctx, req(json!({"cluster": "c", "tasks": [arn]}))).await);
    assert!(shown["tasks"][0].get("containerInstanceArn").is_none());

    // EC2 tasks never land on the managed host, and the EC2 host is untouched by FARGATE.
    let plain = support::taskdef(&env.ctx, "plain").await;
    for _ in 0..5 {
        let t = support::run_task(&env.ctx, "c", &plain).await;
        let st = stored_task(&env, "c", t["taskArn"].as_str().expect("arn")).await;
        assert_eq!(
            st.container_instance_id.as_deref(),
            Some(ec2_host.instance_id.as_str())
        );
    }
}

#[tokio::test]
async fn an_ec2_task_in_a_cluster_of_managed_hosts_only_finds_no_instance() {
    let env = env();
    init_net(&env).await;
    cluster(&env.ctx, "c").await;
    managed_host(&env, "c", "berth-fargate-c", "i-0000000000000001").await;
    let plain = support::taskdef(&env.ctx, "plain").await;
    let e = tasks::run(
        &env.ctx,
        req(json!({"cluster": "c", "taskDefinition": plain})),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.message,
        "No Container Instances were found in your cluster."
    );
}

#[tokio::test]
async fn managed_hosts_appear_in_no_ecs_answer() {
    let env = env();
    init_net(&env).await;
    cluster(&env.ctx, "c").await;
    let mine = ok(berth_ops::agent::register(&env.ops, &host("c", &[])).await);
    let managed = managed_host(&env, "c", "berth-fargate-c", "i-0000000000000001").await;
    let listed = strings(
        &ok(instances::list(&env.ctx, req(json!({"cluster": "c"}))).await)["containerInstanceArns"],
    );
    assert_eq!(listed, std::slice::from_ref(&mine.instance_arn));
    let d = ok(instances::describe(
        &env.ctx,
        req(json!({"cluster": "c", "containerInstances": [managed, mine.instance_id]})),
    )
    .await);
    assert_eq!(d["containerInstances"].as_array().map(Vec::len), Some(1));
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    let c = ok(clusters::describe(&env.ctx, req(json!({"clusters": ["c"]}))).await);
    assert_eq!(c["clusters"][0]["registeredContainerInstancesCount"], 1);
    let attrs = ok(instances::list_attributes(
        &env.ctx,
        req(json!({"cluster": "c", "targetType": "container-instance",
            "attributeName": ATTR_HOST_GROUP})),
    )
    .await);
    assert_eq!(attrs["attributes"], json!([]));
    let e = instances::deregister(
        &env.ctx,
        req(json!({"cluster": "c", "containerInstance": managed})),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn the_managed_group_grows_for_waiting_tasks_and_lets_idle_hosts_go() {
    let env = env();
    init_net(&env).await;
    cluster(&env.ctx, "c").await;
    let td = fargate_td(&env.ctx, "big", "16384", "122880").await;
    for _ in 0..3 {
        run(
            &env.ctx,
            json!({"cluster": "c", "taskDefinition": td, "launchType": "FARGATE",
                "networkConfiguration": net()}),
        )
        .await;
    }
    let ctl = controller(&env);
    ok(ctl.reconcile("c").await);
    // An m5.8xlarge host (32 vCPU, 128 GiB) holds one 16 vCPU / 120 GB task (memory).
    assert_eq!(
        group(&env, "berth-fargate-c")
            .await
            .expect("group")
            .desired_capacity,
        3
    );

    // One host record, idle since launch: kept within the idle time, released past it.
    let rec = HostRecord {
        instance_id: "i-0000000000000009".into(),
        auto_scaling_group_name: "berth-fargate-c".into(),
        lifecycle_state: "InService".into(),
        health_status: "Healthy".into(),
        protected_from_scale_in: true,
        launch_configuration_name: "berth-fargate-c".into(),
        instance_type: "m5.8xlarge".into(),
        availability_zone: "us-east-1a".into(),
        launched_at: support::T0,
        provider_handle: None,
        container_instance_id: None,
        activity_id: None,
        terminating_since: None,
    };
    let key = keys::hg_host("berth-fargate-c", &rec.instance_id);
    let txn = berth_store::Txn::new().put(key.clone(), serde_json::to_vec(&rec).expect("json"));
    env.store.txn(txn).await.expect("store");
    // Stop the waiting tasks: nothing waits any more.
    let listed =
        strings(&ok(tasks::list(&env.ctx, req(json!({"cluster": "c"}))).await)["taskArns"]);
    for arn in listed {
        ok(tasks::stop(&env.ctx, req(json!({"cluster": "c", "task": arn}))).await);
    }
    ok(ctl.reconcile("c").await);
    let g = group(&env, "berth-fargate-c").await.expect("group");
    assert_eq!(
        g.desired_capacity, 1,
        "the idle host is kept within the idle time"
    );
    env.clock.advance(31.0);
    ok(ctl.reconcile("c").await);
    let g = group(&env, "berth-fargate-c").await.expect("group");
    assert_eq!(g.desired_capacity, 0);
    let (h, _) = env
        .store
        .get_json::<HostRecord>(&key)
        .await
        .expect("store")
        .expect("host");
    assert!(!h.protected_from_scale_in, "released for scale-in");
    // Waiting tasks that were stopped are STOPPED (no agent would report them).
    let stopped = strings(
        &ok(tasks::list(
            &env.ctx,
            req(json!({"cluster": "c", "desiredStatus": "STOPPED"})),
        )
        .await)["taskArns"],
    );
    assert_eq!(stopped.len(), 3);
    for arn in stopped {
        assert_eq!(
            stored_task(&env, "c", &arn).await.last_status.as_str(),
            "STOPPED"
        );
    }
}

#[tokio::test]
async fn a_spot_task_is_interrupted_with_ecs_stop_code_and_reason() {
    let env = env();
    init_net(&env).await;
    cluster(&env.ctx, "c").await;
    // A strategy names providers of the cluster's (ECS's rule).
    ok(berth_ops::ecs::capacity::put_cluster(
        &env.ctx,
        req(
            json!({"cluster": "c", "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
            "defaultCapacityProviderStrategy": []}),
        ),
    )
    .await);
    let td = fargate_td(&env.ctx, "web", "256", "512").await;
    managed_host(&env, "c", "berth-fargate-spot-c", "i-0000000000000002").await;
    managed_host(&env, "c", "berth-fargate-c", "i-0000000000000003").await;
    let out = run(
        &env.ctx,
        json!({"cluster": "c", "taskDefinition": td, "networkConfiguration": net(),
            "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]}),
    )
    .await;
    let t = &out["tasks"][0];
    assert_eq!(t["capacityProviderName"], "FARGATE_SPOT");
    assert_eq!(t["launchType"], "FARGATE");
    let arn = t["taskArn"].as_str().expect("arn").to_owned();
    let r = ok(fargate::interrupt_spot(&env.ctx, req(json!({"cluster": "c", "task": arn}))).await);
    assert_eq!(r["task"]["desiredStatus"], "STOPPED");
    assert_eq!(r["task"]["stopCode"], "SpotInterruption");
    assert_eq!(
        r["task"]["stoppedReason"],
        "Your Spot Task was interrupted."
    );
    assert!(r["task"]["stoppingAt"].is_number());

    let od = run(
        &env.ctx,
        json!({"cluster": "c", "taskDefinition": td, "networkConfiguration": net(),
            "launchType": "FARGATE"}),
    )
    .await;
    let od_arn = od["tasks"][0]["taskArn"].as_str().expect("arn").to_owned();
    assert_eq!(
        code(fargate::interrupt_spot(&env.ctx, req(json!({"cluster": "c", "task": od_arn}))).await),
        ErrorCode::InvalidParameterException
    );
}

#[tokio::test]
async fn a_fargate_service_keeps_its_provider_for_its_tasks() {
    let env = env();
    init_net(&env).await;
    cluster(&env.ctx, "c").await;
    let td = fargate_td(&env.ctx, "web", "256", "512").await;
    let e = services::create(
        &env.ctx,
        req(
            json!({"cluster": "c", "serviceName": "s", "taskDefinition": td,
            "desiredCount": 2, "launchType": "FARGATE"}),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParameterException);
    let out = ok(services::create(
        &env.ctx,
        req(
            json!({"cluster": "c", "serviceName": "s", "taskDefinition": td,
            "desiredCount": 2, "launchType": "FARGATE", "networkConfiguration": net(),
            "platformVersion": "LATEST"}),
        ),
    )
    .await);
    let s = &out["service"];
    assert_eq!(s["launchType"], "FARGATE");
    assert_eq!(s["platformVersion"], "1.4.0");
    assert_eq!(
        s["networkConfiguration"]["awsvpcConfiguration"]["subnets"],
        net()["awsvpcConfiguration"]["subnets"]
    );
    let stored = env
        .store
        .get_json::<berth_model::Service>(&keys::service("c", "s"))
        .await
        .expect("store")
        .expect("service")
        .0;
    assert_eq!(
        stored.fargate.map(|f| f.capacity_provider_name).as_deref(),
        Some("FARGATE")
    );
}

#[tokio::test]
async fn the_auto_scaling_api_neither_shows_nor_takes_managed_names() {
    fn p<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("request")
    }
    use berth_ops::hostgroups::{groups, launch_configs};
    let env = env();
    init_net(&env).await;
    cluster(&env.ctx, "c").await;
    let td = fargate_td(&env.ctx, "web", "256", "512").await;
    run(
        &env.ctx,
        json!({"cluster": "c", "taskDefinition": td, "launchType": "FARGATE",
            "networkConfiguration": net()}),
    )
    .await;
    ok(controller(&env).reconcile("c").await);
    assert!(group(&env, "berth-fargate-c").await.is_some());
    let lcs = ok(launch_configs::describe(&env.ctx, p(json!({}))).await);
    assert_eq!(lcs["LaunchConfigurations"], json!([]));
    let gs = ok(groups::describe(&env.ctx, p(json!({}))).await);
    assert_eq!(gs["AutoScalingGroups"], json!([]));
    let e = launch_configs::create(
        &env.ctx,
        p(
            json!({"LaunchConfigurationName": "berth-fargate-x", "ImageId": "i",
            "InstanceType": "t3.small"}),
        ),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("reserved"), "{}", e.message);
}

#[tokio::test]
async fn a_cluster_default_strategy_of_fargate_makes_a_fargate_launch() {
    let env = env();
    init_net(&env).await;
    cluster(&env.ctx, "c").await;
    ok(berth_ops::ecs::capacity::put_cluster(
        &env.ctx,
        req(json!({"cluster": "c", "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
            "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]})),
    )
    .await);
    let td = fargate_td(&env.ctx, "web", "256", "512").await;
    // Neither a launch type nor a strategy: the cluster's default applies, and it is Fargate's.
    let out = run(
        &env.ctx,
        json!({"cluster": "c", "taskDefinition": td, "networkConfiguration": net()}),
    )
    .await;
    let t = &out["tasks"][0];
    assert_eq!(t["launchType"], "FARGATE");
    assert_eq!(t["capacityProviderName"], "FARGATE_SPOT");
    assert_eq!(t["platformVersion"], "1.4.0");
    // Sized and placed by the FARGATE controller like any Fargate task.
    let ctl = controller(&env);
    ok(ctl.reconcile("c").await);
    let g = group(&env, "berth-fargate-spot-c")
        .await
        .expect("managed group");
    assert_eq!(g.desired_capacity, 1);
}
