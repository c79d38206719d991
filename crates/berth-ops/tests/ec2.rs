//! The EC2 subset (VPCs, subnets, security groups), the default VPC, networkConfiguration's
//! checks and the interfaces awsvpc tasks get at placement, against the in-memory store.

mod support;

use std::collections::BTreeSet;

use berth_ops::ec2::{self, security_groups as sg, vpcs};
use berth_ops::Ctx;
use serde_json::{json, Value};
use support::{cluster, env, host, ok, req, Env};

fn p<T: serde::de::DeserializeOwned>(v: Value) -> T {
    ec2::parse(v).expect("the request parses")
}

#[track_caller]
fn ec2_code<T: std::fmt::Debug>(r: Result<T, berth_model::ApiError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code.as_str(),
    }
}

async fn defaults(env: &Env) -> (String, Vec<String>, String) {
    let vpc = ok(ec2::ensure_defaults(&env.ops, "us-east-1", "10.247.0.0/16").await);
    let subnets = ok(vpcs::describe_subnets(&env.ctx, p(json!({}))).await)["subnetSet"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["subnetId"].as_str().expect("an id").to_owned())
        .collect();
    let groups = ok(sg::describe(
        &env.ctx,
        p(json!({"Filter": [{"Name": "group-name", "Value": ["default"]}]})),
    )
    .await);
    let g = groups["securityGroupInfo"][0]["groupId"]
        .as_str()
        .expect("an id")
        .to_owned();
    (vpc, subnets, g)
}

#[tokio::test]
async fn the_default_vpc_is_made_once() {
    let env = env();
    let (vpc, subnets, _) = defaults(&env).await;
    assert_eq!(
        ok(ec2::ensure_defaults(&env.ops, "us-east-1", "10.247.0.0/16").await),
        vpc
    );
    assert_eq!(subnets.len(), 2);
    let v = ok(vpcs::describe_vpcs(&env.ctx, p(json!({}))).await);
    assert_eq!(v["vpcSet"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["vpcSet"][0]["isDefault"], true);
    assert_eq!(v["vpcSet"][0]["cidrBlock"], "10.247.0.0/16");
    assert!(ec2::ensure_defaults(&env.ops, "us-east-1", "10.0.0.0/8")
        .await
        .is_ok());
    // A block outside /16../20 is refused (on a store without a default VPC yet).
    assert!(
        ec2::ensure_defaults(&support::env().ops, "us-east-1", "10.0.0.0/8")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn subnets_stay_inside_their_vpc_and_apart() {
    let env = env();
    let vpc = ok(vpcs::create_vpc(&env.ctx, p(json!({"CidrBlock": "10.1.0.0/16"}))).await);
    let id = vpc["vpc"]["vpcId"].as_str().expect("an id").to_owned();
    let mk = |cidr: &str| json!({"VpcId": id, "CidrBlock": cidr});
    ok(vpcs::create_subnet(&env.ctx, p(mk("10.1.0.0/24"))).await);
    let c = &env.ctx;
    assert_eq!(
        ec2_code(vpcs::create_subnet(c, p(mk("10.1.0.128/25"))).await),
        "InvalidSubnet.Conflict"
    );
    assert_eq!(
        ec2_code(vpcs::create_subnet(c, p(mk("10.2.0.0/24"))).await),
        "InvalidSubnet.Range"
    );
    assert_eq!(
        ec2_code(vpcs::create_subnet(c, p(mk("10.1.1.0/29"))).await),
        "InvalidSubnet.Range"
    );
    assert_eq!(
        ec2_code(vpcs::create_subnet(c, p(mk("nonsense"))).await),
        "InvalidParameterValue"
    );
    assert_eq!(
        ec2_code(vpcs::delete_vpc(c, p(json!({"VpcId": id}))).await),
        "DependencyViolation"
    );
    assert_eq!(
        ec2_code(
            vpcs::describe_subnets(c, p(json!({"SubnetId": ["subnet-0123456789abcdef0"]}))).await
        ),
        "InvalidSubnetID.NotFound"
    );
    assert_eq!(
        ec2_code(vpcs::describe_vpcs(c, p(json!({"VpcId": ["vpc-x"]}))).await),
        "InvalidVpcID.Malformed"
    );
    assert_eq!(
        ec2_code(vpcs::describe_vpcs(c, p(json!({"DryRun": "true"}))).await),
        "DryRunOperation"
    );
    assert_eq!(
        ec2_code(
            vpcs::create_vpc(c, p(json!({"CidrBlock": "10.1.0.0/16", "Ipv6Pool": "x"}))).await
        ),
        "UnsupportedOperation"
    );
}

#[tokio::test]
async fn ingress_rules_are_authorized_once_and_revoked() {
    let env = env();
    let (vpc, _, default) = defaults(&env).await;
    let c = &env.ctx;
    let g = ok(sg::create(
        c,
        p(json!({"GroupName": "web", "GroupDescription": "d", "VpcId": vpc})),
    )
    .await)["groupId"]
        .as_str()
        .expect("an id")
        .to_owned();
    let rule = json!({"GroupId": g, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": "80",
        "ToPort": "80", "IpRanges": [{"CidrIp": "10.0.0.1/8"}], "Groups": [{"GroupId": default}]}]});
    let out = ok(sg::authorize(c, p(rule.clone())).await);
    assert_eq!(
        out["securityGroupRuleSet"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(out["securityGroupRuleSet"][0]["cidrIpv4"], "10.0.0.0/8");
    assert_eq!(
        ec2_code(sg::authorize(c, p(rule.clone())).await),
        "InvalidPermission.Duplicate"
    );
    let d = ok(sg::describe(c, p(json!({"GroupId": [g]}))).await);
    let perm = &d["securityGroupInfo"][0]["ipPermissions"][0];
    assert_eq!(perm["fromPort"], 80);
    assert_eq!(perm["ipRanges"][0]["cidrIp"], "10.0.0.0/8");
    assert_eq!(perm["groups"][0]["groupId"], default);
    // The default group is named by another's rule: it cannot go (nor ever, being default).
    assert_eq!(
        ec2_code(sg::delete(c, p(json!({"GroupId": default}))).await),
        "CannotDelete"
    );
    ok(sg::revoke(c, p(rule.clone())).await);
    assert_eq!(
        ec2_code(sg::revoke(c, p(rule)).await),
        "InvalidPermission.NotFound"
    );
    assert_eq!(
        ec2_code(
            sg::authorize(
                c,
                p(json!({"GroupId": g, "IpProtocol": "gre", "CidrIp": "1.2.3.4/32"}))
            )
            .await
        ),
        "InvalidParameterValue"
    );
    assert_eq!(
        ec2_code(sg::create(c, p(json!({"GroupName": "web", "GroupDescription": "d"}))).await),
        "InvalidGroup.Duplicate"
    );
    ok(sg::delete(c, p(json!({"GroupId": g}))).await);
    assert_eq!(
        ec2_code(sg::describe(c, p(json!({"GroupId": [g]}))).await),
        "InvalidGroup.NotFound"
    );
}

async fn awsvpc_taskdef(ctx: &Ctx) -> String {
    let body = json!({"family": "v", "networkMode": "awsvpc", "containerDefinitions": [{
        "name": "app", "image": "busybox", "memory": 16, "portMappings": [{"containerPort": 80}]}]});
    let out = ok(berth_ops::ecs::taskdefs::register(ctx, body.to_string().as_bytes()).await);
    out["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .expect("an ARN")
        .to_owned()
}

fn eni(task: &Value) -> (String, String) {
    let d = &task["attachments"][0]["details"];
    let get = |n: &str| {
        d.as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == n))
            .and_then(|x| x["value"].as_str())
            .expect("a detail")
            .to_owned()
    };
    (get("subnetId"), get("privateIPv4Address"))
}

#[tokio::test]
async fn awsvpc_tasks_get_distinct_addresses_freed_when_stopped() {
    let env = env();
    let (_, subnets, default) = defaults(&env).await;
    cluster(&env.ctx, "c").await;
    let c = &env.ctx;
    // A host without the task-eni capability gets no awsvpc task.
    ok(berth_ops::agent::register(&env.ops, &host("c", &[])).await);
    let td = awsvpc_taskdef(c).await;
    let app = ok(sg::create(c, p(json!({"GroupName": "app", "GroupDescription": "d"}))).await)
        ["groupId"]
        .clone();
    let net = json!({"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [app]}});
    let run = |count: u32| {
        req::<berth_ops::ecs::tasks::RunTaskRequest>(
            json!({"cluster": "c", "taskDefinition": td, "count": count, "networkConfiguration": net}),
        )
    };
    let out = ok(berth_ops::ecs::tasks::run(c, run(1)).await);
    assert_eq!(out["failures"][0]["reason"], "ATTRIBUTE", "{out}");
    ok(
        berth_ops::agent::register(&env.ops, &host("c", &[("ecs.capability.task-eni", "true")]))
            .await,
    );
    let out = ok(berth_ops::ecs::tasks::run(c, run(10)).await);
    let tasks = out["tasks"].as_array().expect("tasks").clone();
    assert_eq!(tasks.len(), 10, "{out}");
    let addrs: BTreeSet<(String, String)> = tasks.iter().map(eni).collect();
    assert_eq!(addrs.len(), 10);
    // Round-robin over both subnets.
    assert_eq!(
        addrs.iter().map(|(s, _)| s).collect::<BTreeSet<_>>().len(),
        2
    );
    assert_eq!(tasks[0]["attachments"][0]["status"], "PRECREATED");
    // A group a task's interface is in cannot be deleted.
    assert_eq!(
        ec2_code(sg::delete(c, p(json!({"GroupId": app}))).await),
        "DependencyViolation"
    );
    assert_eq!(
        tasks[0]["attachments"][0]["type"],
        "ElasticNetworkInterface"
    );
    // The default group applied; the agent is told the interface.
    let d = ok(vpcs::describe_subnets(c, p(json!({"SubnetId": [subnets[0]]}))).await);
    assert_eq!(d["subnetSet"][0]["availableIpAddressCount"], 4091 - 5);
    let first = eni(&tasks[0]);
    // Its agent reports it STOPPED: its address is given again.
    let instance = tasks[0]["containerInstanceArn"]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .expect("placed")
        .to_owned();
    let id = tasks[0]["taskArn"]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .expect("an id")
        .to_owned();
    let report: berth_model::agent::StatusReport = serde_json::from_value(json!({
        "cluster": "c", "instanceId": instance,
        "tasks": [{"taskId": id, "lastStatus": "STOPPED", "stoppedAt": 1.0}],
    }))
    .expect("a report");
    ok(berth_ops::agent::status(&env.ops, &report).await);
    let out = ok(berth_ops::ecs::tasks::run(c, run(1)).await);
    let again = eni(&out["tasks"][0]);
    assert_eq!(again, first, "{out}");
    let groups = &out["tasks"][0];
    assert!(groups["attachments"][0]["id"].is_string());
    let _ = default;
}

#[tokio::test]
async fn network_configuration_is_checked_as_ecs_checks_it() {
    let env = env();
    let (_, subnets, _) = defaults(&env).await;
    cluster(&env.ctx, "c").await;
    let c = &env.ctx;
    let td = awsvpc_taskdef(c).await;
    let run = |net: Value| {
        let mut body = json!({"cluster": "c", "taskDefinition": td});
        if !net.is_null() {
            body["networkConfiguration"] = net;
        }
        req::<berth_ops::ecs::tasks::RunTaskRequest>(body)
    };
    let msg = |r: Result<Value, berth_model::ApiError>| r.expect_err("refused").message;
    assert_eq!(
        msg(berth_ops::ecs::tasks::run(c, run(Value::Null)).await),
        "Network Configuration must be provided when networkMode 'awsvpc' is specified."
    );
    assert!(msg(berth_ops::ecs::tasks::run(
        c,
        run(json!({"awsvpcConfiguration": {"subnets": ["subnet-0123456789abcdef0"]}}))
    )
    .await)
    .contains("The subnet ID 'subnet-0123456789abcdef0' does not exist"));
    assert!(msg(
        berth_ops::ecs::tasks::run(
            c,
            run(json!({"awsvpcConfiguration": {"subnets": [subnets[0]], "securityGroups": ["sg-0123456789abcdef0"]}}))
        )
        .await
    )
    .contains("sg-0123456789abcdef0"));
}
