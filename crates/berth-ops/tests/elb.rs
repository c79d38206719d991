//! The ELBv2 actions (load balancers, target groups, listeners, rules, targets and their
//! health, tags) against the in-memory store. Requests are the JSON trees the edge makes of
//! Query forms: `A.member.N` lists become arrays and every scalar is a string.

mod support;

use std::sync::Arc;

use berth_model::{ErrorCode, TargetHealthEntry, TargetHealthSource};
use berth_ops::elb::{listeners, load_balancers, rules, tags, target_groups, targets};
use berth_ops::Ctx;
use serde_json::{json, Value};
use support::{code, elb, env, env_with, ok};

const ELB_ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:";

fn s(v: &Value, field: &str) -> String {
    v[field].as_str().expect("a string").to_owned()
}

async fn make_lb(ctx: &Ctx, name: &str) -> Value {
    ok(load_balancers::create(ctx, elb(json!({"Name": name}))).await)["LoadBalancers"][0].clone()
}

async fn make_tg(ctx: &Ctx, name: &str, extra: Value) -> Value {
    let mut p = json!({"Name": name, "Protocol": "HTTP", "Port": "8080"});
    for (k, v) in extra.as_object().expect("an object") {
        p[k] = v.clone();
    }
    ok(target_groups::create(ctx, elb(p)).await)["TargetGroups"][0].clone()
}

fn forward(tg: &Value) -> Value {
    json!([{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
}

async fn make_listener(ctx: &Ctx, lb: &Value, tg: &Value, port: u16) -> Value {
    ok(listeners::create(
        ctx,
        elb(
            json!({"LoadBalancerArn": lb["LoadBalancerArn"], "Protocol": "HTTP",
                   "Port": port.to_string(), "DefaultActions": forward(tg)}),
        ),
    )
    .await)["Listeners"][0]
        .clone()
}

async fn make_rule(
    ctx: &Ctx,
    listener: &Value,
    priority: u32,
    tg: &Value,
    path: &str,
) -> Result<Value, berth_model::ApiError> {
    rules::create(
        ctx,
        elb(json!({"ListenerArn": listener["ListenerArn"], "Priority": priority.to_string(),
                   "Conditions": [{"Field": "path-pattern", "Values": [path]}], "Actions": forward(tg)})),
    )
    .await
    .map(|v| v["Rules"][0].clone())
}

/// A load balancer `lb` with a listener on port 8000 forwarding to target group `tg`.
async fn stack(ctx: &Ctx) -> (Value, Value, Value) {
    let lb = make_lb(ctx, "lb").await;
    let tg = make_tg(ctx, "tg", json!({})).await;
    let l = make_listener(ctx, &lb, &tg, 8000).await;
    (lb, tg, l)
}

async fn describe_rules(ctx: &Ctx, listener: &Value) -> Vec<Value> {
    ok(rules::describe(ctx, elb(json!({"ListenerArn": listener["ListenerArn"]}))).await)["Rules"]
        .as_array()
        .expect("rules")
        .clone()
}

async fn health(ctx: &Ctx, tg: &Value, filter: Value) -> Vec<Value> {
    ok(targets::describe_health(
        ctx,
        elb(json!({"TargetGroupArn": tg["TargetGroupArn"], "Targets": filter})),
    )
    .await)["TargetHealthDescriptions"]
        .as_array()
        .expect("rows")
        .clone()
}

/// `arn` with its last four characters replaced: the ARN of nothing.
fn ghost(arn: &Value) -> String {
    let a = arn.as_str().expect("an ARN");
    format!("{}0000", &a[..a.len() - 4])
}

// ---------------------------------------------------------------------------------------------
// Load balancers

#[tokio::test]
async fn create_describe_and_delete_a_load_balancer() {
    let env = env();
    let lb = ok(load_balancers::create(
        &env.ctx,
        elb(json!({"Name": "web", "Subnets": ["subnet-1", "subnet-2"], "Tags": [{"Key": "team", "Value": "web"}]})),
    )
    .await)["LoadBalancers"][0]
        .clone();
    let arn = s(&lb, "LoadBalancerArn");
    assert!(
        arn.starts_with(&format!("{ELB_ARN}loadbalancer/app/web/")),
        "{arn}"
    );
    assert_eq!(arn.rsplit('/').next().map(str::len), Some(16));
    assert_eq!(lb["DNSName"], "127.0.0.1");
    assert_eq!(lb["State"], json!({"Code": "active"}));
    assert_eq!(
        (lb["Type"].as_str(), lb["Scheme"].as_str()),
        (Some("application"), Some("internet-facing"))
    );
    assert_eq!(lb["AvailabilityZones"][1]["SubnetId"], "subnet-2");
    let by_name = ok(load_balancers::describe(&env.ctx, elb(json!({"Names": ["web"]}))).await);
    assert_eq!(by_name["LoadBalancers"][0]["LoadBalancerArn"], arn.as_str());
    let by_arn =
        ok(load_balancers::describe(&env.ctx, elb(json!({"LoadBalancerArns": [arn]}))).await);
    assert_eq!(by_arn["LoadBalancers"][0]["LoadBalancerName"], "web");
    ok(load_balancers::delete(&env.ctx, elb(json!({"LoadBalancerArn": arn}))).await);
    for e in [
        code(load_balancers::describe(&env.ctx, elb(json!({"Names": ["web"]}))).await),
        code(load_balancers::describe(&env.ctx, elb(json!({"LoadBalancerArns": [arn]}))).await),
        code(load_balancers::delete(&env.ctx, elb(json!({"LoadBalancerArn": arn}))).await),
    ] {
        assert_eq!(e, ErrorCode::ElbLoadBalancerNotFound);
    }
}

#[tokio::test]
async fn the_dns_name_is_the_listener_host() {
    let env = env_with(|ops| ops.with_lb_host("10.1.2.3"));
    assert_eq!(make_lb(&env.ctx, "web").await["DNSName"], "10.1.2.3");
}

#[tokio::test]
async fn the_same_name_again_is_idempotent_only_with_the_same_settings() {
    let env = env();
    let lb = make_lb(&env.ctx, "web").await;
    assert_eq!(
        make_lb(&env.ctx, "web").await["LoadBalancerArn"],
        lb["LoadBalancerArn"]
    );
    let e = code(
        load_balancers::create(&env.ctx, elb(json!({"Name": "web", "Scheme": "internal"}))).await,
    );
    assert_eq!(e, ErrorCode::ElbDuplicateLoadBalancerName);
}

#[tokio::test]
async fn load_balancer_requests_are_validated() {
    let env = env();
    let x33 = "x".repeat(33);
    for name in ["-lead", "trail-", "under_score", x33.as_str(), "internal-x"] {
        let e = code(load_balancers::create(&env.ctx, elb(json!({"Name": name}))).await);
        assert_eq!(e, ErrorCode::ElbValidationError, "{name}");
    }
    for bad in [
        json!({}),
        json!({"Name": "n", "Scheme": "private"}),
        json!({"Name": "n", "Type": "network"}),
        json!({"Name": "n", "IpAddressType": "ipv6"}),
    ] {
        let e = code(load_balancers::create(&env.ctx, elb(bad.clone())).await);
        assert_eq!(e, ErrorCode::ElbValidationError, "{bad}");
    }
    let e = code(
        load_balancers::describe(
            &env.ctx,
            elb(json!({"Names": ["a"], "LoadBalancerArns": ["b"]})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbValidationError);
    // The edge's own shape for a scalar that is not a number.
    let e = berth_ops::elb::parse::<load_balancers::DescribeRequest>(json!({"PageSize": "lots"}));
    assert_eq!(e.err().map(|e| e.code), Some(ErrorCode::ElbValidationError));
}

#[tokio::test]
async fn describe_load_balancers_pages() {
    let env = env();
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(s(
            &make_lb(&env.ctx, &format!("lb{i}")).await,
            "LoadBalancerArn",
        ));
    }
    let (mut seen, mut marker) = (Vec::new(), None::<String>);
    loop {
        let out = ok(load_balancers::describe(
            &env.ctx,
            elb(json!({"PageSize": "2", "Marker": marker})),
        )
        .await);
        let page = out["LoadBalancers"].as_array().expect("a page");
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|lb| s(lb, "LoadBalancerArn")));
        match out["NextMarker"].as_str() {
            Some(m) => marker = Some(m.to_owned()),
            None => break,
        }
    }
    seen.sort();
    made.sort();
    assert_eq!(seen, made);
    let e = code(load_balancers::describe(&env.ctx, elb(json!({"PageSize": "0"}))).await);
    assert_eq!(e, ErrorCode::ElbValidationError);
}

#[tokio::test]
async fn deleting_a_load_balancer_deletes_its_listeners_and_rules() {
    let env = env();
    let (lb, tg, l) = stack(&env.ctx).await;
    let rule = ok(make_rule(&env.ctx, &l, 1, &tg, "/a").await);
    ok(load_balancers::delete(
        &env.ctx,
        elb(json!({"LoadBalancerArn": lb["LoadBalancerArn"]})),
    )
    .await);
    let e =
        code(listeners::describe(&env.ctx, elb(json!({"ListenerArns": [l["ListenerArn"]]}))).await);
    assert_eq!(e, ErrorCode::ElbListenerNotFound);
    let e = code(rules::describe(&env.ctx, elb(json!({"RuleArns": [rule["RuleArn"]]}))).await);
    assert_eq!(e, ErrorCode::ElbRuleNotFound);
    // The target group is free again, and so is the port.
    let d = ok(target_groups::describe(
        &env.ctx,
        elb(json!({"TargetGroupArns": [tg["TargetGroupArn"]]})),
    )
    .await);
    assert_eq!(d["TargetGroups"][0]["LoadBalancerArns"], json!([]));
    let lb2 = make_lb(&env.ctx, "lb2").await;
    make_listener(&env.ctx, &lb2, &tg, 8000).await;
}

// ---------------------------------------------------------------------------------------------
// Target groups

#[tokio::test]
async fn a_target_group_has_elbs_defaults() {
    let env = env();
    let tg = make_tg(&env.ctx, "tg", json!({"VpcId": "vpc-1"})).await;
    assert!(s(&tg, "TargetGroupArn").starts_with(&format!("{ELB_ARN}targetgroup/tg/")));
    assert_eq!(
        (tg["Port"].as_u64(), tg["Protocol"].as_str()),
        (Some(8080), Some("HTTP"))
    );
    assert_eq!(tg["TargetType"], "instance");
    assert_eq!(tg["HealthCheckPath"], "/");
    assert_eq!(tg["HealthCheckIntervalSeconds"], 30);
    assert_eq!(tg["HealthCheckTimeoutSeconds"], 5);
    assert_eq!(tg["HealthyThresholdCount"], 5);
    assert_eq!(tg["UnhealthyThresholdCount"], 2);
    assert_eq!(tg["Matcher"], json!({"HttpCode": "200"}));
    assert_eq!(tg["HealthCheckPort"], "traffic-port");
    assert_eq!(tg["VpcId"], "vpc-1");
    assert_eq!(tg["LoadBalancerArns"], json!([]));
    let by_name = ok(target_groups::describe(&env.ctx, elb(json!({"Names": ["tg"]}))).await);
    assert_eq!(
        by_name["TargetGroups"][0]["TargetGroupArn"],
        tg["TargetGroupArn"]
    );
    let e = code(target_groups::describe(&env.ctx, elb(json!({"Names": ["nope"]}))).await);
    assert_eq!(e, ErrorCode::ElbTargetGroupNotFound);
    let e = code(
        target_groups::describe(
            &env.ctx,
            elb(json!({"Names": ["tg"], "TargetGroupArns": ["x"]})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbValidationError);
}

#[tokio::test]
async fn a_target_group_name_is_taken_unless_the_settings_match() {
    let env = env();
    let tg = make_tg(&env.ctx, "tg", json!({})).await;
    assert_eq!(
        make_tg(&env.ctx, "tg", json!({})).await["TargetGroupArn"],
        tg["TargetGroupArn"]
    );
    let e = code(
        target_groups::create(
            &env.ctx,
            elb(json!({"Name": "tg", "Protocol": "HTTP", "Port": "9090"})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbDuplicateTargetGroupName);
}

#[tokio::test]
async fn target_group_requests_are_validated() {
    let env = env();
    let base = |extra: Value| {
        let mut p = json!({"Name": "tgv", "Protocol": "HTTP", "Port": "80"});
        for (k, v) in extra.as_object().expect("an object") {
            p[k] = v.clone();
        }
        p
    };
    for (extra, want) in [
        (json!({"Name": "bad_name"}), ErrorCode::ElbValidationError),
        (
            json!({"TargetType": "lambda"}),
            ErrorCode::ElbValidationError,
        ),
        (
            json!({"Matcher": {"HttpCode": "600"}}),
            ErrorCode::ElbValidationError,
        ),
        (json!({"Port": null}), ErrorCode::ElbValidationError),
        (json!({"Port": "70000"}), ErrorCode::ElbValidationError),
        (
            json!({"HealthCheckPath": "no-slash"}),
            ErrorCode::ElbValidationError,
        ),
        (
            json!({"HealthCheckIntervalSeconds": "5", "HealthCheckTimeoutSeconds": "10"}),
            ErrorCode::ElbInvalidConfigurationRequest,
        ),
        (
            json!({"Protocol": "TCP"}),
            ErrorCode::ElbUnsupportedProtocol,
        ),
    ] {
        let e = code(target_groups::create(&env.ctx, elb(base(extra.clone()))).await);
        assert_eq!(e, want, "{extra}");
    }
}

#[tokio::test]
async fn modify_target_group_changes_its_health_check() {
    let env = env();
    let tg = make_tg(&env.ctx, "tg", json!({})).await;
    let arn = &tg["TargetGroupArn"];
    let out = ok(target_groups::modify(
        &env.ctx,
        elb(
            json!({"TargetGroupArn": arn, "HealthCheckPath": "/up", "HealthyThresholdCount": "3",
                   "Matcher": {"HttpCode": "200,204"}}),
        ),
    )
    .await)["TargetGroups"][0]
        .clone();
    assert_eq!(
        (
            out["HealthCheckPath"].as_str(),
            out["HealthyThresholdCount"].as_u64()
        ),
        (Some("/up"), Some(3))
    );
    assert_eq!(out["Matcher"]["HttpCode"], "200,204");
    let e = code(
        target_groups::modify(
            &env.ctx,
            elb(json!({"TargetGroupArn": arn, "HealthCheckPath": "up"})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbValidationError);
    let e = code(
        target_groups::modify(
            &env.ctx,
            elb(json!({"TargetGroupArn": ghost(arn), "HealthCheckPath": "/"})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbTargetGroupNotFound);
}

#[tokio::test]
async fn target_group_attributes() {
    let env = env();
    let tg = make_tg(&env.ctx, "tg", json!({})).await;
    let arn = &tg["TargetGroupArn"];
    let attrs = |v: &Value| -> std::collections::BTreeMap<String, String> {
        v["Attributes"]
            .as_array()
            .expect("attributes")
            .iter()
            .map(|a| (s(a, "Key"), s(a, "Value")))
            .collect()
    };
    let before = attrs(&ok(target_groups::describe_attributes(
        &env.ctx,
        elb(json!({"TargetGroupArn": arn})),
    )
    .await));
    assert_eq!(before["deregistration_delay.timeout_seconds"], "300");
    assert_eq!(before["load_balancing.algorithm.type"], "round_robin");
    let out = ok(target_groups::modify_attributes(
        &env.ctx,
        elb(json!({"TargetGroupArn": arn, "Attributes": [
            {"Key": "deregistration_delay.timeout_seconds", "Value": "5"},
            {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"}]})),
    )
    .await);
    assert_eq!(attrs(&out)["deregistration_delay.timeout_seconds"], "5");
    let after = attrs(&ok(target_groups::describe_attributes(
        &env.ctx,
        elb(json!({"TargetGroupArn": arn})),
    )
    .await));
    assert_eq!(
        after["load_balancing.algorithm.type"],
        "least_outstanding_requests"
    );
    for bad in [
        json!([{"Key": "deregistration_delay.timeout_seconds", "Value": "-1"}]),
        json!([{"Key": "stickiness.enabled", "Value": "maybe"}]),
        json!([{"Key": "no.such.key", "Value": "1"}]),
        json!([]),
    ] {
        let e = code(
            target_groups::modify_attributes(
                &env.ctx,
                elb(json!({"TargetGroupArn": arn, "Attributes": bad})),
            )
            .await,
        );
        assert_eq!(e, ErrorCode::ElbValidationError);
    }
    let e = code(
        target_groups::describe_attributes(&env.ctx, elb(json!({"TargetGroupArn": ghost(arn)})))
            .await,
    );
    assert_eq!(e, ErrorCode::ElbTargetGroupNotFound);
}

#[tokio::test]
async fn a_target_group_in_use_cannot_be_deleted() {
    let env = env();
    let (lb, tg, l) = stack(&env.ctx).await;
    let arn = &tg["TargetGroupArn"];
    let d = ok(target_groups::describe(&env.ctx, elb(json!({"TargetGroupArns": [arn]}))).await);
    assert_eq!(
        d["TargetGroups"][0]["LoadBalancerArns"],
        json!([lb["LoadBalancerArn"]])
    );
    let by_lb = ok(target_groups::describe(
        &env.ctx,
        elb(json!({"LoadBalancerArn": lb["LoadBalancerArn"]})),
    )
    .await);
    assert_eq!(by_lb["TargetGroups"][0]["TargetGroupArn"], *arn);
    let e = code(target_groups::delete(&env.ctx, elb(json!({"TargetGroupArn": arn}))).await);
    assert_eq!(e, ErrorCode::ElbResourceInUse);
    ok(listeners::delete(&env.ctx, elb(json!({"ListenerArn": l["ListenerArn"]}))).await);
    ok(target_groups::delete(&env.ctx, elb(json!({"TargetGroupArn": arn}))).await);
    let e = code(target_groups::describe(&env.ctx, elb(json!({"TargetGroupArns": [arn]}))).await);
    assert_eq!(e, ErrorCode::ElbTargetGroupNotFound);
    // Deleting again is not an error, as in ELB; the name is free again.
    ok(target_groups::delete(&env.ctx, elb(json!({"TargetGroupArn": arn}))).await);
    make_tg(&env.ctx, "tg", json!({"Port": "9090"})).await;
}

// ---------------------------------------------------------------------------------------------
// Listeners

#[tokio::test]
async fn listener_lifecycle() {
    let env = env();
    let (lb, tg, l) = stack(&env.ctx).await;
    assert!(s(&l, "ListenerArn").starts_with(&format!("{ELB_ARN}listener/app/lb/")));
    assert_eq!(
        (l["Port"].as_u64(), l["Protocol"].as_str()),
        (Some(8000), Some("HTTP"))
    );
    assert_eq!(l["DefaultActions"], forward(&tg));
    let by_lb = ok(listeners::describe(
        &env.ctx,
        elb(json!({"LoadBalancerArn": lb["LoadBalancerArn"]})),
    )
    .await);
    assert_eq!(by_lb["Listeners"][0]["ListenerArn"], l["ListenerArn"]);
    // The same listener again is idempotent; every load balancer shares the listener host.
    assert_eq!(
        make_listener(&env.ctx, &lb, &tg, 8000).await["ListenerArn"],
        l["ListenerArn"]
    );
    let other = make_lb(&env.ctx, "other").await;
    let create_on = |lb: &Value, port: &str| {
        listeners::create(
            &env.ctx,
            elb(
                json!({"LoadBalancerArn": lb["LoadBalancerArn"], "Protocol": "HTTP", "Port": port,
                       "DefaultActions": forward(&tg)}),
            ),
        )
    };
    assert_eq!(
        code(create_on(&other, "8000").await),
        ErrorCode::ElbDuplicateListener
    );
    // Moving the listener frees its old port.
    let tg2 = make_tg(&env.ctx, "tg2", json!({})).await;
    let moved = ok(listeners::modify(
        &env.ctx,
        elb(json!({"ListenerArn": l["ListenerArn"], "Port": "8001", "DefaultActions": [{"Type": "forward",
            "ForwardConfig": {"TargetGroups": [
                {"TargetGroupArn": tg["TargetGroupArn"], "Weight": "3"},
                {"TargetGroupArn": tg2["TargetGroupArn"], "Weight": "1"}]}}]})),
    )
    .await)["Listeners"][0]
        .clone();
    assert_eq!(moved["Port"], 8001);
    assert_eq!(
        moved["DefaultActions"][0]["ForwardConfig"]["TargetGroups"][0]["Weight"],
        3
    );
    ok(create_on(&other, "8000").await);
    let e = code(
        listeners::modify(
            &env.ctx,
            elb(json!({"ListenerArn": l["ListenerArn"], "Port": "8000"})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbDuplicateListener);
    ok(listeners::delete(&env.ctx, elb(json!({"ListenerArn": l["ListenerArn"]}))).await);
    let e =
        code(listeners::describe(&env.ctx, elb(json!({"ListenerArns": [l["ListenerArn"]]}))).await);
    assert_eq!(e, ErrorCode::ElbListenerNotFound);
    let e = code(listeners::delete(&env.ctx, elb(json!({"ListenerArn": l["ListenerArn"]}))).await);
    assert_eq!(e, ErrorCode::ElbListenerNotFound);
}

#[tokio::test]
async fn listener_requests_are_validated() {
    let env = env();
    let lb = make_lb(&env.ctx, "lb").await;
    let tg = make_tg(&env.ctx, "tg", json!({})).await;
    let create = |extra: Value| {
        let mut p = json!({"LoadBalancerArn": lb["LoadBalancerArn"], "Protocol": "HTTP", "Port": "8000",
                           "DefaultActions": forward(&tg)});
        for (k, v) in extra.as_object().expect("an object") {
            p[k] = v.clone();
        }
        listeners::create(&env.ctx, elb(p))
    };
    let fixed = |status: &str| json!([{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": status}}]);
    for (extra, want) in [
        (
            json!({"Protocol": "TCP"}),
            ErrorCode::ElbUnsupportedProtocol,
        ),
        (json!({"Port": "0"}), ErrorCode::ElbValidationError),
        (json!({"DefaultActions": []}), ErrorCode::ElbValidationError),
        (
            json!({"DefaultActions": fixed("302")}),
            ErrorCode::ElbValidationError,
        ),
        (
            json!({"DefaultActions": [{"Type": "authenticate-oidc"}]}),
            ErrorCode::ElbInvalidLoadBalancerAction,
        ),
        (
            json!({"DefaultActions": [forward(&tg)[0].clone(), fixed("404")[0].clone()]}),
            ErrorCode::ElbInvalidLoadBalancerAction,
        ),
        (
            json!({"DefaultActions": [{"Type": "forward", "TargetGroupArn": ghost(&tg["TargetGroupArn"])}]}),
            ErrorCode::ElbTargetGroupNotFound,
        ),
        (
            json!({"LoadBalancerArn": ghost(&lb["LoadBalancerArn"])}),
            ErrorCode::ElbLoadBalancerNotFound,
        ),
    ] {
        assert_eq!(code(create(extra.clone()).await), want, "{extra}");
    }
    let e = code(listeners::describe(&env.ctx, elb(json!({}))).await);
    assert_eq!(e, ErrorCode::ElbValidationError);
    // A fixed response and a redirect are actions too.
    let out = ok(create(json!({"DefaultActions": fixed("404")})).await);
    assert_eq!(
        out["Listeners"][0]["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"],
        "404"
    );
}

// ---------------------------------------------------------------------------------------------
// Rules

#[tokio::test]
async fn rules_are_ordered_by_priority_with_the_default_last() {
    let env = env();
    let (_, tg, l) = stack(&env.ctx).await;
    let r10 = ok(make_rule(&env.ctx, &l, 10, &tg, "/api/*").await);
    assert_eq!(
        (r10["Priority"].as_str(), r10["IsDefault"].as_bool()),
        (Some("10"), Some(false))
    );
    let prefix = s(&l, "ListenerArn").replace(":listener/", ":listener-rule/");
    assert!(s(&r10, "RuleArn").starts_with(&prefix), "{r10}");
    ok(make_rule(&env.ctx, &l, 5, &tg, "/five").await);
    let all = describe_rules(&env.ctx, &l).await;
    let prios: Vec<&str> = all
        .iter()
        .map(|r| r["Priority"].as_str().expect("a priority"))
        .collect();
    assert_eq!(prios, ["5", "10", "default"]);
    let default = &all[2];
    assert_eq!(
        (default["IsDefault"].as_bool(), default["Actions"].clone()),
        (Some(true), forward(&tg))
    );
    let d = ok(rules::describe(&env.ctx, elb(json!({"RuleArns": [default["RuleArn"]]}))).await);
    assert_eq!(d["Rules"][0]["IsDefault"], true);
}

#[tokio::test]
async fn a_priority_is_used_by_one_rule_at_a_time() {
    let env = env();
    let (_, tg, l) = stack(&env.ctx).await;
    let r = ok(make_rule(&env.ctx, &l, 10, &tg, "/a").await);
    assert_eq!(
        code(make_rule(&env.ctx, &l, 10, &tg, "/b").await),
        ErrorCode::ElbPriorityInUse
    );
    ok(rules::delete(&env.ctx, elb(json!({"RuleArn": r["RuleArn"]}))).await);
    ok(make_rule(&env.ctx, &l, 10, &tg, "/b").await);
}

#[tokio::test]
async fn rule_requests_are_validated() {
    let env = env();
    let (_, tg, l) = stack(&env.ctx).await;
    assert_eq!(
        code(make_rule(&env.ctx, &l, 0, &tg, "/a").await),
        ErrorCode::ElbValidationError
    );
    assert_eq!(
        code(make_rule(&env.ctx, &l, 50_001, &tg, "/a").await),
        ErrorCode::ElbValidationError
    );
    let e = code(
        rules::create(
            &env.ctx,
            elb(
                json!({"ListenerArn": l["ListenerArn"], "Priority": "1", "Actions": forward(&tg),
                   "Conditions": [{"Field": "cookie", "Values": ["x"]}]}),
            ),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbValidationError);
    let gone = json!({"ListenerArn": ghost(&l["ListenerArn"])});
    assert_eq!(
        code(make_rule(&env.ctx, &gone, 1, &tg, "/a").await),
        ErrorCode::ElbListenerNotFound
    );
    let e = code(rules::describe(&env.ctx, elb(json!({}))).await);
    assert_eq!(e, ErrorCode::ElbValidationError);
}

#[tokio::test]
async fn modify_rule_changes_it_but_not_the_default_rule() {
    let env = env();
    let (_, tg, l) = stack(&env.ctx).await;
    let r = ok(make_rule(&env.ctx, &l, 10, &tg, "/a").await);
    let out = ok(rules::modify(
        &env.ctx,
        elb(json!({"RuleArn": r["RuleArn"], "Conditions": [{"Field": "path-pattern", "Values": ["/v2/*"]}],
                   "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}]})),
    )
    .await)["Rules"][0]
        .clone();
    assert_eq!(out["Conditions"][0]["Values"], json!(["/v2/*"]));
    assert_eq!(out["Actions"][0]["Type"], "fixed-response");
    let default = describe_rules(&env.ctx, &l)
        .await
        .pop()
        .expect("the default rule");
    let e = code(rules::modify(
        &env.ctx,
        elb(json!({"RuleArn": default["RuleArn"], "Conditions": [{"Field": "path-pattern", "Values": ["/"]}]})),
    )
    .await);
    assert_eq!(e, ErrorCode::ElbOperationNotPermitted);
    let e = code(rules::modify(&env.ctx, elb(json!({"RuleArn": ghost(&r["RuleArn"])}))).await);
    assert_eq!(e, ErrorCode::ElbRuleNotFound);
}

#[tokio::test]
async fn set_rule_priorities_swaps_but_never_clashes() {
    let env = env();
    let (_, tg, l) = stack(&env.ctx).await;
    let r1 = ok(make_rule(&env.ctx, &l, 10, &tg, "/one").await);
    let r2 = ok(make_rule(&env.ctx, &l, 5, &tg, "/two").await);
    let set = |pairs: Value| rules::set_priorities(&env.ctx, elb(json!({"RulePriorities": pairs})));
    let out = ok(set(json!([{"RuleArn": r1["RuleArn"], "Priority": "5"}, {"RuleArn": r2["RuleArn"], "Priority": "10"}])).await);
    let got: Vec<(String, String)> = out["Rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| (s(r, "RuleArn"), s(r, "Priority")))
        .collect();
    assert_eq!(
        got,
        [
            (s(&r1, "RuleArn"), "5".to_owned()),
            (s(&r2, "RuleArn"), "10".to_owned())
        ]
    );
    let order: Vec<Value> = describe_rules(&env.ctx, &l)
        .await
        .iter()
        .take(2)
        .map(|r| r["RuleArn"].clone())
        .collect();
    assert_eq!(order, [r1["RuleArn"].clone(), r2["RuleArn"].clone()]);
    let e = code(set(json!([{"RuleArn": r1["RuleArn"], "Priority": "10"}])).await);
    assert_eq!(e, ErrorCode::ElbPriorityInUse);
    let default = describe_rules(&env.ctx, &l)
        .await
        .pop()
        .expect("the default rule");
    let e = code(set(json!([{"RuleArn": default["RuleArn"], "Priority": "3"}])).await);
    assert_eq!(e, ErrorCode::ElbOperationNotPermitted);
    assert_eq!(code(set(json!([])).await), ErrorCode::ElbValidationError);
    // The priority freed by the move can be taken again.
    ok(make_rule(&env.ctx, &l, 7, &tg, "/seven").await);
}

#[tokio::test]
async fn delete_rule_but_not_the_default_rule() {
    let env = env();
    let (_, tg, l) = stack(&env.ctx).await;
    let r = ok(make_rule(&env.ctx, &l, 1, &tg, "/r").await);
    // A rule forwarding to a target group puts it in use.
    let tg2 = make_tg(&env.ctx, "tg2", json!({})).await;
    let r2 = ok(make_rule(&env.ctx, &l, 2, &tg2, "/r2").await);
    let e = code(
        target_groups::delete(
            &env.ctx,
            elb(json!({"TargetGroupArn": tg2["TargetGroupArn"]})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbResourceInUse);
    ok(rules::delete(&env.ctx, elb(json!({"RuleArn": r2["RuleArn"]}))).await);
    ok(target_groups::delete(
        &env.ctx,
        elb(json!({"TargetGroupArn": tg2["TargetGroupArn"]})),
    )
    .await);
    ok(rules::delete(&env.ctx, elb(json!({"RuleArn": r["RuleArn"]}))).await);
    let e = code(rules::describe(&env.ctx, elb(json!({"RuleArns": [r["RuleArn"]]}))).await);
    assert_eq!(e, ErrorCode::ElbRuleNotFound);
    let e = code(rules::delete(&env.ctx, elb(json!({"RuleArn": r["RuleArn"]}))).await);
    assert_eq!(e, ErrorCode::ElbRuleNotFound);
    let default = describe_rules(&env.ctx, &l)
        .await
        .pop()
        .expect("the default rule");
    let e = code(rules::delete(&env.ctx, elb(json!({"RuleArn": default["RuleArn"]}))).await);
    assert_eq!(e, ErrorCode::ElbOperationNotPermitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rules_on_one_listener_all_get_their_priorities() {
    let env = env();
    let (_, tg, l) = stack(&env.ctx).await;
    let calls = (1..=16).map(|p| {
        let (ctx, l, tg) = (env.ctx(), l.clone(), tg.clone());
        tokio::spawn(async move { make_rule(&ctx, &l, p, &tg, &format!("/{p}")).await })
    });
    for r in futures::future::join_all(calls).await {
        ok(r.expect("the call's task ends"));
    }
    assert_eq!(describe_rules(&env.ctx, &l).await.len(), 17);
    // Racing for one priority: exactly one wins, the others hear PriorityInUse.
    let calls = (0..8).map(|i| {
        let (ctx, l, tg) = (env.ctx(), l.clone(), tg.clone());
        tokio::spawn(async move { make_rule(&ctx, &l, 100, &tg, &format!("/race{i}")).await })
    });
    let results: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("ends"))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for r in results.into_iter().filter(Result::is_err) {
        assert_eq!(code(r), ErrorCode::ElbPriorityInUse);
    }
}

// ---------------------------------------------------------------------------------------------
// Targets and health

struct FakeHealth;

impl TargetHealthSource for FakeHealth {
    fn target_health(&self, _: &str) -> Vec<TargetHealthEntry> {
        vec![
            TargetHealthEntry {
                id: "10.0.0.1".into(),
                port: 8080,
                state: "healthy".into(),
                reason: None,
                description: None,
            },
            TargetHealthEntry {
                id: "10.0.0.9".into(),
                port: 8080,
                state: "draining".into(),
                reason: None,
                description: None,
            },
        ]
    }
}

#[tokio::test]
async fn register_targets_and_read_their_health() {
    let env = env();
    let tg = make_tg(&env.ctx, "tg", json!({"TargetType": "ip"})).await;
    let arn = &tg["TargetGroupArn"];
    let register =
        |t: Value| targets::register(&env.ctx, elb(json!({"TargetGroupArn": arn, "Targets": t})));
    ok(register(json!([{"Id": "10.0.0.1"}, {"Id": "10.0.0.2", "Port": "9000"}])).await);
    ok(register(json!([{"Id": "10.0.0.1"}])).await);
    let rows = health(&env.ctx, &tg, json!([])).await;
    let ids: Vec<(String, u64)> = rows
        .iter()
        .map(|h| {
            (
                s(&h["Target"], "Id"),
                h["Target"]["Port"].as_u64().expect("a port"),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [("10.0.0.1".to_owned(), 8080), ("10.0.0.2".to_owned(), 9000)]
    );
    assert_eq!(rows[0]["TargetHealth"]["State"], "unused");
    assert_eq!(rows[0]["TargetHealth"]["Reason"], "Target.NotInUse");
    assert_eq!(rows[0]["HealthCheckPort"], "8080");
    // Once a listener forwards to the group, targets start in `initial`.
    let lb = make_lb(&env.ctx, "lb").await;
    make_listener(&env.ctx, &lb, &tg, 8000).await;
    assert_eq!(
        health(&env.ctx, &tg, json!([])).await[0]["TargetHealth"]["State"],
        "initial"
    );
    let only = health(&env.ctx, &tg, json!([{"Id": "10.0.0.2", "Port": "9000"}])).await;
    assert_eq!(only.len(), 1);
    let missing = health(&env.ctx, &tg, json!([{"Id": "10.9.9.9"}])).await;
    assert_eq!(missing[0]["TargetHealth"]["Reason"], "Target.NotRegistered");
}

#[tokio::test]
async fn target_health_comes_from_the_data_plane() {
    let env = env_with(|ops| ops.with_target_health(Arc::new(FakeHealth)));
    let tg = make_tg(&env.ctx, "tg", json!({"TargetType": "ip"})).await;
    ok(targets::register(
        &env.ctx,
        elb(json!({"TargetGroupArn": tg["TargetGroupArn"], "Targets": [{"Id": "10.0.0.1"}]})),
    )
    .await);
    let rows = health(&env.ctx, &tg, json!([])).await;
    assert_eq!(
        rows.len(),
        2,
        "the registered target, then one still draining: {rows:?}"
    );
    assert_eq!(rows[0]["TargetHealth"]["State"], "healthy");
    assert_eq!(rows[1]["Target"]["Id"], "10.0.0.9");
    assert_eq!(
        rows[1]["TargetHealth"]["Reason"],
        "Target.DeregistrationInProgress"
    );
}

#[tokio::test]
async fn deregister_targets_and_target_errors() {
    let env = env();
    let tg = make_tg(&env.ctx, "tg", json!({"TargetType": "ip"})).await;
    let arn = &tg["TargetGroupArn"];
    let call = |t: Value| json!({"TargetGroupArn": arn, "Targets": t});
    ok(targets::register(
        &env.ctx,
        elb(call(
            json!([{"Id": "10.0.0.1"}, {"Id": "10.0.0.2", "Port": "9000"}]),
        )),
    )
    .await);
    ok(targets::deregister(
        &env.ctx,
        elb(call(json!([{"Id": "10.0.0.2", "Port": "9000"}]))),
    )
    .await);
    let rows = health(&env.ctx, &tg, json!([])).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Target"]["Id"], "10.0.0.1");
    let e = code(
        targets::deregister(
            &env.ctx,
            elb(call(json!([{"Id": "10.0.0.2", "Port": "9000"}]))),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbInvalidTarget);
    for bad in [
        json!([{"Id": "not-an-ip"}]),
        json!([{"Id": "10.0.0.3", "Port": "0"}]),
    ] {
        let e = code(targets::register(&env.ctx, elb(call(bad.clone()))).await);
        assert_eq!(e, ErrorCode::ElbInvalidTarget, "{bad}");
    }
    let e = code(targets::register(&env.ctx, elb(call(json!([])))).await);
    assert_eq!(e, ErrorCode::ElbValidationError);
    let gone = json!({"TargetGroupArn": ghost(arn), "Targets": [{"Id": "10.0.0.1"}]});
    assert_eq!(
        code(targets::register(&env.ctx, elb(gone.clone())).await),
        ErrorCode::ElbTargetGroupNotFound
    );
    assert_eq!(
        code(targets::describe_health(&env.ctx, elb(gone)).await),
        ErrorCode::ElbTargetGroupNotFound
    );
}

#[tokio::test]
async fn a_target_group_holds_at_most_1000_targets() {
    let env = env();
    let tg = make_tg(&env.ctx, "tg", json!({"TargetType": "ip"})).await;
    let arn = &tg["TargetGroupArn"];
    for start in (0..1000).step_by(250) {
        let batch: Vec<Value> = (start..start + 250)
            .map(|i| json!({"Id": format!("10.1.{}.{}", i / 250, i % 250)}))
            .collect();
        ok(targets::register(
            &env.ctx,
            elb(json!({"TargetGroupArn": arn, "Targets": batch})),
        )
        .await);
    }
    let e = code(
        targets::register(
            &env.ctx,
            elb(json!({"TargetGroupArn": arn, "Targets": [{"Id": "10.2.0.1"}]})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbTooManyTargets);
    assert_eq!(health(&env.ctx, &tg, json!([])).await.len(), 1000);
}

/// RegisterTargets checks the 1000-target limit against the registrations it read, and its
/// transaction guards the target group record, which registering once did not change:
/// concurrent registrations each saw room and all committed. Registering now rewrites it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_never_exceed_the_target_limit() {
    let env = env();
    let tg = make_tg(&env.ctx, "tg", json!({"TargetType": "ip"})).await;
    let arn = tg["TargetGroupArn"].clone();
    for start in (0..999).step_by(333) {
        let batch: Vec<Value> = (start..start + 333)
            .map(|i| json!({"Id": format!("10.1.{}.{}", i / 250, i % 250)}))
            .collect();
        ok(targets::register(
            &env.ctx,
            elb(json!({"TargetGroupArn": arn, "Targets": batch})),
        )
        .await);
    }
    let calls = (0..8).map(|i| {
        let (ctx, arn) = (env.ctx(), arn.clone());
        tokio::spawn(async move {
            targets::register(
                &ctx,
                elb(json!({"TargetGroupArn": arn, "Targets": [{"Id": format!("10.9.0.{i}")}]})),
            )
            .await
        })
    });
    futures::future::join_all(calls).await;
    assert_eq!(health(&env.ctx, &tg, json!([])).await.len(), 1000);
}

/// CreateListener's transaction guards the load balancer record, which DeleteLoadBalancer
/// deletes only after listing the listeners it knows; a listener created in between once
/// survived its load balancer and kept its port taken. CreateListener now rewrites the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_never_outlives_its_load_balancer() {
    let env = env();
    for i in 0..30u16 {
        let lb = make_lb(&env.ctx, &format!("lb{i}")).await;
        let (c1, c2, arn) = (env.ctx(), env.ctx(), lb["LoadBalancerArn"].clone());
        let params = json!({"LoadBalancerArn": arn, "Protocol": "HTTP", "Port": (9000 + i).to_string(),
            "DefaultActions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]});
        let create = tokio::spawn(async move { listeners::create(&c1, elb(params)).await });
        let delete = tokio::spawn(async move {
            load_balancers::delete(&c2, elb(json!({"LoadBalancerArn": arn}))).await
        });
        let (created, deleted) = (create.await.expect("ends"), delete.await.expect("ends"));
        if let (Ok(l), Ok(_)) = (created, deleted) {
            let d = listeners::describe(
                &env.ctx,
                elb(json!({"ListenerArns": [l["Listeners"][0]["ListenerArn"]]})),
            )
            .await;
            assert_eq!(code(d), ErrorCode::ElbListenerNotFound, "round {i}");
        }
    }
}

/// DeleteTargetGroup checks that no listener or rule forwards to the target group outside the
/// transaction that deletes it: a listener (or rule) created meanwhile once kept forwarding to
/// a deleted target group. Writes that forward now rewrite the target group record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_forwards_to_a_deleted_target_group() {
    let env = env();
    let lb = make_lb(&env.ctx, "lb").await;
    let l = make_listener(
        &env.ctx,
        &lb,
        &make_tg(&env.ctx, "base", json!({})).await,
        8000,
    )
    .await;
    for i in 0..30u16 {
        let tg = make_tg(&env.ctx, &format!("tg{i}"), json!({})).await;
        let (c1, c2, c3) = (env.ctx(), env.ctx(), env.ctx());
        let (lb, l, t) = (lb.clone(), l.clone(), tg.clone());
        let listener = tokio::spawn(async move {
            listeners::create(
                &c1,
                elb(
                    json!({"LoadBalancerArn": lb["LoadBalancerArn"], "Protocol": "HTTP",
                           "Port": (9000 + i).to_string(), "DefaultActions": forward(&t)}),
                ),
            )
            .await
        });
        let t = tg.clone();
        let rule =
            tokio::spawn(async move { make_rule(&c3, &l, 1 + u32::from(i), &t, "/r").await });
        let arn = tg["TargetGroupArn"].clone();
        let delete = tokio::spawn(async move {
            target_groups::delete(&c2, elb(json!({"TargetGroupArn": arn}))).await
        });
        let (created, ruled, deleted) = (
            listener.await.expect("ends"),
            rule.await.expect("ends"),
            delete.await.expect("ends"),
        );
        if deleted.is_ok() {
            assert!(
                created.is_err(),
                "round {i}: a listener forwards to a deleted target group"
            );
            assert!(
                ruled.is_err(),
                "round {i}: a rule forwards to a deleted target group"
            );
        }
    }
}

/// RegisterTargets racing DeleteTargetGroup never leaves registrations of a deleted target
/// group behind (registering rewrites the target group record, which the delete guards on).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_target_outlives_its_target_group() {
    let env = env();
    for i in 0..30 {
        let tg = make_tg(&env.ctx, &format!("tg{i}"), json!({"TargetType": "ip"})).await;
        let (c1, c2, arn) = (env.ctx(), env.ctx(), tg["TargetGroupArn"].clone());
        let a = arn.clone();
        let register = tokio::spawn(async move {
            targets::register(
                &c1,
                elb(json!({"TargetGroupArn": a, "Targets": [{"Id": "10.0.0.1"}]})),
            )
            .await
        });
        let delete = tokio::spawn(async move {
            target_groups::delete(&c2, elb(json!({"TargetGroupArn": arn}))).await
        });
        let (_, deleted) = (register.await.expect("ends"), delete.await.expect("ends"));
        ok(deleted);
        let (left, _) = ok(env
            .store
            .list(&berth_model::keys::elb_targets_of(
                s(&tg, "TargetGroupArn").as_str(),
            ))
            .await
            .map_err(berth_ops::store_err));
        assert_eq!(left.len(), 0, "round {i}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tags

async fn described_tags(ctx: &Ctx, arn: &Value) -> Vec<(String, String)> {
    let out = ok(tags::describe(ctx, elb(json!({"ResourceArns": [arn]}))).await);
    out["TagDescriptions"][0]["Tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| (s(t, "Key"), s(t, "Value")))
        .collect()
}

#[tokio::test]
async fn add_remove_and_describe_tags_on_every_kind() {
    let env = env();
    let (lb, tg, l) = stack(&env.ctx).await;
    let r = ok(make_rule(&env.ctx, &l, 1, &tg, "/t").await);
    let arns = [
        &lb["LoadBalancerArn"],
        &tg["TargetGroupArn"],
        &l["ListenerArn"],
        &r["RuleArn"],
    ];
    ok(tags::add(
        &env.ctx,
        elb(json!({"ResourceArns": arns, "Tags": [{"Key": "team", "Value": "web"}, {"Key": "born", "Value": "yes"}]})),
    )
    .await);
    ok(tags::remove(
        &env.ctx,
        elb(json!({"ResourceArns": arns, "TagKeys": ["born"]})),
    )
    .await);
    for arn in arns {
        assert_eq!(
            described_tags(&env.ctx, arn).await,
            [("team".to_owned(), "web".to_owned())],
            "{arn}"
        );
    }
    let out = ok(tags::describe(&env.ctx, elb(json!({"ResourceArns": arns}))).await);
    assert_eq!(
        out["TagDescriptions"]
            .as_array()
            .expect("descriptions")
            .len(),
        4
    );
}

#[tokio::test]
async fn tag_errors() {
    let env = env();
    let lb = make_lb(&env.ctx, "lb").await;
    let tg = make_tg(&env.ctx, "tg", json!({})).await;
    let add = |arns: Value, tags: Value| {
        tags::add(&env.ctx, elb(json!({"ResourceArns": arns, "Tags": tags})))
    };
    let arns = json!([lb["LoadBalancerArn"], tg["TargetGroupArn"]]);
    let e = code(
        add(
            arns.clone(),
            json!([{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbDuplicateTagKeys);
    let sixty: Vec<Value> = (0..60)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    assert_eq!(
        code(add(arns.clone(), json!(sixty)).await),
        ErrorCode::ElbTooManyTags
    );
    let e = code(add(json!([ghost(&tg["TargetGroupArn"])]), json!([{"Key": "a"}])).await);
    assert_eq!(e, ErrorCode::ElbTargetGroupNotFound);
    let e = code(
        tags::describe(
            &env.ctx,
            elb(json!({"ResourceArns": [ghost(&lb["LoadBalancerArn"])]})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ElbLoadBalancerNotFound);
    assert_eq!(
        code(add(json!(["arn:aws:s3:::bucket"]), json!([{"Key": "a"}])).await),
        ErrorCode::ElbValidationError
    );
    assert_eq!(
        code(add(json!([]), json!([{"Key": "a"}])).await),
        ErrorCode::ElbValidationError
    );
    assert_eq!(
        code(add(arns.clone(), json!([])).await),
        ErrorCode::ElbValidationError
    );
    // None of the failed calls changed anything.
    assert_eq!(described_tags(&env.ctx, &lb["LoadBalancerArn"]).await, []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_add_tags_on_one_load_balancer_lose_nothing() {
    let env = env();
    let lb = make_lb(&env.ctx, "lb").await;
    let calls = (0..16).map(|i| {
        let (ctx, arn) = (env.ctx(), lb["LoadBalancerArn"].clone());
        tokio::spawn(async move {
            tags::add(&ctx, elb(json!({"ResourceArns": [arn], "Tags": [{"Key": format!("k{i}"), "Value": "v"}]}))).await
        })
    });
    for r in futures::future::join_all(calls).await {
        ok(r.expect("the call's task ends"));
    }
    assert_eq!(
        described_tags(&env.ctx, &lb["LoadBalancerArn"]).await.len(),
        16
    );
}
