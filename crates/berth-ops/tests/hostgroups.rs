//! The EC2 Auto Scaling actions (launch configurations, groups, instances, activities)
//! against the in-memory store. Requests are the JSON trees the edge makes of Query forms.

mod support;

use base64::Engine;
use berth_model::hostgroup::{HostGroup, HostRecord};
use berth_model::{keys, ErrorCode};
use berth_ops::hostgroups::{groups, hosts, launch_configs, parse};
use berth_ops::Ctx;
use berth_store::{StoreExt, Txn};
use serde_json::{json, Value};
use support::{code, env, ok};

fn p<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a request")
}

async fn lc(ctx: &Ctx, name: &str, user_data: Option<&str>) {
    let mut body = json!({"LaunchConfigurationName": name, "ImageId": "berth-host", "InstanceType": "t3.small"});
    if let Some(u) = user_data {
        body["UserData"] = json!(base64::engine::general_purpose::STANDARD.encode(u));
    }
    ok(launch_configs::create(ctx, p(body)).await);
}

async fn group(ctx: &Ctx, name: &str, extra: Value) {
    let mut body = json!({
        "AutoScalingGroupName": name, "LaunchConfigurationName": "lc",
        "MinSize": "0", "MaxSize": "3", "AvailabilityZones": ["us-east-1a"],
    });
    for (k, v) in extra.as_object().expect("test setup") {
        body[k] = v.clone();
    }
    ok(groups::create(ctx, p(body)).await);
}

async fn stored(env: &support::Env, name: &str) -> HostGroup {
    env.store
        .get_json::<HostGroup>(&keys::host_group(name))
        .await
        .expect("test setup")
        .expect("test setup")
        .0
}

async fn add_host(env: &support::Env, group: &str, id: &str, launched_at: f64) {
    let h = HostRecord {
        instance_id: id.into(),
        auto_scaling_group_name: group.into(),
        lifecycle_state: "InService".into(),
        health_status: "Healthy".into(),
        protected_from_scale_in: false,
        launch_configuration_name: "lc".into(),
        instance_type: "t3.small".into(),
        availability_zone: "us-east-1a".into(),
        launched_at,
        provider_handle: None,
        container_instance_id: None,
        activity_id: None,
        terminating_since: None,
    };
    env.store
        .txn(Txn::new().put(
            keys::hg_host(group, id),
            serde_json::to_vec(&h).expect("test setup"),
        ))
        .await
        .expect("test setup");
}

#[tokio::test]
async fn launch_configurations_are_validated_and_guarded() {
    let env = env();
    let ctx = &env.ctx;
    lc(
        ctx,
        "lc",
        Some("#!/bin/bash\necho ECS_CLUSTER=prod >> /etc/ecs/ecs.config\n"),
    )
    .await;
    // A duplicate, an unknown type, bad user data, a missing image.
    let again =
        json!({"LaunchConfigurationName": "lc", "ImageId": "x", "InstanceType": "t3.small"});
    assert_eq!(
        code(launch_configs::create(ctx, p(again)).await),
        ErrorCode::AsgAlreadyExists
    );
    let bad_type =
        json!({"LaunchConfigurationName": "b", "ImageId": "x", "InstanceType": "z9.huge"});
    assert_eq!(
        code(launch_configs::create(ctx, p(bad_type)).await),
        ErrorCode::ElbValidationError
    );
    let bad_ud = json!({"LaunchConfigurationName": "b", "ImageId": "x", "InstanceType": "t3.small", "UserData": "!!"});
    assert_eq!(
        code(launch_configs::create(ctx, p(bad_ud)).await),
        ErrorCode::ElbValidationError
    );
    let no_image = json!({"LaunchConfigurationName": "b", "InstanceType": "t3.small"});
    assert_eq!(
        code(launch_configs::create(ctx, p(no_image)).await),
        ErrorCode::ElbValidationError
    );
    let slash =
        json!({"LaunchConfigurationName": "a/b", "ImageId": "x", "InstanceType": "t3.small"});
    assert_eq!(
        code(launch_configs::create(ctx, p(slash)).await),
        ErrorCode::ElbValidationError
    );
    let d = ok(launch_configs::describe(ctx, p(json!({}))).await);
    assert_eq!(d["LaunchConfigurations"][0]["InstanceType"], "t3.small");
    // In use: refused; the group reads its cluster from the user data.
    group(ctx, "g", json!({})).await;
    assert_eq!(stored(&env, "g").await.cluster, "prod");
    let del = json!({"LaunchConfigurationName": "lc"});
    assert_eq!(
        code(launch_configs::delete(ctx, p(del.clone())).await),
        ErrorCode::ElbResourceInUse
    );
    ok(groups::delete(ctx, p(json!({"AutoScalingGroupName": "g"}))).await);
    ok(launch_configs::delete(ctx, p(del.clone())).await);
    assert_eq!(
        code(launch_configs::delete(ctx, p(del)).await),
        ErrorCode::ElbValidationError
    );
}

#[tokio::test]
async fn unknown_members_are_refused_by_name() {
    let e = parse::<Value>(
        "CreateAutoScalingGroup",
        json!({"AutoScalingGroupName": "g", "LaunchTemplate": {"LaunchTemplateId": "x"}}),
        groups::CREATE_MEMBERS,
    )
    .unwrap_err();
    assert!(e.message.contains("LaunchTemplate"), "{}", e.message);
}

#[tokio::test]
async fn groups_keep_sizes_within_bounds() {
    let env = env();
    let ctx = &env.ctx;
    lc(ctx, "lc", None).await;
    group(
        ctx,
        "g",
        json!({"DesiredCapacity": "1", "Tags": [{"Key": "berth:provider", "Value": "process"}]}),
    )
    .await;
    let g = stored(&env, "g").await;
    assert_eq!((g.min_size, g.desired_capacity, g.max_size), (0, 1, 3));
    assert_eq!(
        (g.cluster.as_str(), g.provider.as_str()),
        ("default", "process")
    );
    let dup = json!({"AutoScalingGroupName": "g", "LaunchConfigurationName": "lc", "MinSize": "0", "MaxSize": "1", "AvailabilityZones": ["us-east-1a"]});
    assert_eq!(
        code(groups::create(ctx, p(dup)).await),
        ErrorCode::AsgAlreadyExists
    );
    let outside = json!({"AutoScalingGroupName": "h", "LaunchConfigurationName": "lc", "MinSize": "0", "MaxSize": "1", "DesiredCapacity": "2", "AvailabilityZones": ["us-east-1a"]});
    let e = groups::create(ctx, p(outside)).await.unwrap_err();
    assert!(
        e.message.contains("Desired capacity:2 must be between"),
        "{}",
        e.message
    );
    let bad_provider = json!({"AutoScalingGroupName": "h", "LaunchConfigurationName": "lc", "MinSize": "0", "MaxSize": "1", "AvailabilityZones": ["us-east-1a"], "Tags": [{"Key": "berth:provider", "Value": "ec2"}]});
    assert_eq!(
        code(groups::create(ctx, p(bad_provider)).await),
        ErrorCode::ElbValidationError
    );
    // SetDesiredCapacity outside min/max, as Auto Scaling words it.
    let e = groups::set_desired(
        ctx,
        p(json!({"AutoScalingGroupName": "g", "DesiredCapacity": "4"})),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.message,
        "New SetDesiredCapacity value 4 is above max value 3 for the AutoScalingGroup."
    );
    ok(groups::set_desired(
        ctx,
        p(json!({"AutoScalingGroupName": "g", "DesiredCapacity": "3"})),
    )
    .await);
    assert_eq!(stored(&env, "g").await.desired_capacity, 3);
    // A new MaxSize below the desired capacity lowers it.
    ok(groups::update(ctx, p(json!({"AutoScalingGroupName": "g", "MaxSize": "2", "TerminationPolicies": ["OldestInstance"]}))).await);
    let g = stored(&env, "g").await;
    assert_eq!((g.desired_capacity, g.max_size), (2, 2));
    assert_eq!(g.termination_policies, ["OldestInstance"]);
    let d = ok(groups::describe(ctx, p(json!({"AutoScalingGroupNames": ["g"]}))).await);
    assert_eq!(d["AutoScalingGroups"][0]["DesiredCapacity"], 2);
    let missing = json!({"AutoScalingGroupName": "nope", "DesiredCapacity": "1"});
    assert_eq!(
        code(groups::set_desired(ctx, p(missing)).await),
        ErrorCode::ElbValidationError
    );
}

#[tokio::test]
async fn berths_own_groups_are_invisible() {
    let env = env();
    let ctx = &env.ctx;
    lc(ctx, "lc", None).await;
    group(ctx, "fargate", json!({})).await;
    let mut g = stored(&env, "fargate").await;
    g.managed_by = Some("FARGATE".into());
    env.store
        .txn(Txn::new().put(
            keys::host_group("fargate"),
            serde_json::to_vec(&g).expect("test setup"),
        ))
        .await
        .expect("test setup");
    let d = ok(groups::describe(ctx, p(json!({}))).await);
    assert_eq!(d["AutoScalingGroups"], json!([]));
    let set = json!({"AutoScalingGroupName": "fargate", "DesiredCapacity": "1"});
    assert_eq!(
        code(groups::set_desired(ctx, p(set)).await),
        ErrorCode::ElbValidationError
    );
}

#[tokio::test]
async fn delete_needs_force_while_hosts_remain() {
    let env = env();
    let ctx = &env.ctx;
    lc(ctx, "lc", None).await;
    group(ctx, "g", json!({"DesiredCapacity": "1"})).await;
    add_host(&env, "g", "i-00000000000000001", 1.0).await;
    let del = json!({"AutoScalingGroupName": "g"});
    assert_eq!(
        code(groups::delete(ctx, p(del)).await),
        ErrorCode::ElbResourceInUse
    );
    ok(groups::delete(
        ctx,
        p(json!({"AutoScalingGroupName": "g", "ForceDelete": "true"})),
    )
    .await);
    let g = stored(&env, "g").await;
    assert_eq!(
        (g.status.as_deref(), g.desired_capacity),
        (Some("Delete in progress"), 0)
    );
}

#[tokio::test]
async fn protection_and_terminate_take_effect() {
    let env = env();
    let ctx = &env.ctx;
    lc(ctx, "lc", None).await;
    group(ctx, "g", json!({"MinSize": "1", "DesiredCapacity": "2"})).await;
    add_host(&env, "g", "i-00000000000000001", 1.0).await;
    add_host(&env, "g", "i-00000000000000002", 2.0).await;
    ok(hosts::set_protection(ctx, p(json!({"AutoScalingGroupName": "g", "InstanceIds": ["i-00000000000000001"], "ProtectedFromScaleIn": "true"}))).await);
    let other = json!({"AutoScalingGroupName": "g", "InstanceIds": ["i-0000000000000000f"], "ProtectedFromScaleIn": "true"});
    assert_eq!(
        code(hosts::set_protection(ctx, p(other)).await),
        ErrorCode::ElbValidationError
    );
    let d = ok(
        hosts::describe_instances(ctx, p(json!({"InstanceIds": ["i-00000000000000001"]}))).await,
    );
    assert_eq!(d["AutoScalingInstances"][0]["ProtectedFromScaleIn"], true);
    let t = ok(hosts::terminate(
        ctx,
        p(json!({"InstanceId": "i-00000000000000002", "ShouldDecrementDesiredCapacity": "true"})),
    )
    .await);
    assert_eq!(
        t["Activity"]["Description"],
        "Terminating EC2 instance: i-00000000000000002"
    );
    assert_eq!(stored(&env, "g").await.desired_capacity, 1);
    // At min size, a decrementing terminate is refused.
    let again =
        json!({"InstanceId": "i-00000000000000001", "ShouldDecrementDesiredCapacity": "true"});
    let e = hosts::terminate(ctx, p(again)).await.unwrap_err();
    assert!(
        e.message.contains("desiredSize equals minSize"),
        "{}",
        e.message
    );
    let a = ok(hosts::describe_activities(ctx, p(json!({"AutoScalingGroupName": "g"}))).await);
    assert_eq!(a["Activities"][0]["StatusCode"], "InProgress");
    let h = env
        .store
        .get_json::<HostRecord>(&keys::hg_host("g", "i-00000000000000002"))
        .await
        .expect("test setup")
        .expect("test setup")
        .0;
    assert_eq!(h.lifecycle_state, "Terminating");
}

#[test]
fn the_cluster_comes_from_user_data() {
    let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let ud = enc("#!/bin/bash\necho ECS_CLUSTER=web-1 >> /etc/ecs/ecs.config\n");
    assert_eq!(groups::cluster_from_user_data(Some(&ud)), "web-1");
    assert_eq!(
        groups::cluster_from_user_data(Some(&enc("ECS_CLUSTER=x"))),
        "x"
    );
    assert_eq!(groups::cluster_from_user_data(None), "default");
    assert_eq!(groups::cluster_from_user_data(Some("!!")), "default");
}
