//! Application Auto Scaling for ECS services (scalable targets and their tags, scaling
//! policies, scheduled actions, scaling activities) and berth's metric alarms against the
//! in-memory store. Services have desired count 0; the autoscaler controller is not running.

mod support;

use berth_model::{keys, ErrorCode, ScalingActivity};
use berth_ops::autoscaling::{activities, alarms, policies, scheduled, targets};
use berth_ops::Ctx;
use berth_store::Txn;
use serde_json::{json, Value};
use support::{cluster, code, env, ok, req, service, taskdef, Env};

const DIM: &str = "ecs:service:DesiredCount";

/// A cluster `c`, a task definition and an empty service per name; answers their resource ids.
async fn services(ctx: &Ctx, names: &[&str]) -> Vec<String> {
    cluster(ctx, "c").await;
    let td = taskdef(ctx, "web").await;
    let mut out = Vec::new();
    for n in names {
        service(ctx, "c", n, &td, 0).await;
        out.push(format!("service/c/{n}"));
    }
    out
}

/// The three members naming a scalable target, merged with `extra`.
fn target(rid: &str, extra: Value) -> Value {
    let mut v = json!({"ServiceNamespace": "ecs", "ResourceId": rid, "ScalableDimension": DIM});
    for (k, x) in extra.as_object().expect("an object") {
        v[k] = x.clone();
    }
    v
}

async fn register(ctx: &Ctx, rid: &str, extra: Value) -> Result<Value, berth_model::ApiError> {
    targets::register(ctx, req(target(rid, extra))).await
}

async fn described_targets(ctx: &Ctx, rid: &str) -> Vec<Value> {
    let out = ok(targets::describe(
        ctx,
        req(json!({"ServiceNamespace": "ecs", "ResourceIds": [rid]})),
    )
    .await);
    out["ScalableTargets"].as_array().expect("targets").clone()
}

fn cpu_policy(rid: &str, name: &str, value: f64) -> Value {
    target(
        rid,
        json!({"PolicyName": name, "PolicyType": "TargetTrackingScaling",
               "TargetTrackingScalingPolicyConfiguration": {"TargetValue": value,
                   "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}}),
    )
}

fn step_policy(rid: &str, name: &str, steps: Value) -> Value {
    target(
        rid,
        json!({"PolicyName": name, "PolicyType": "StepScaling",
               "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": steps,
                   "Cooldown": 60, "MetricAggregationType": "Average"}}),
    )
}

async fn described_policies(ctx: &Ctx, rid: &str) -> Vec<Value> {
    let out = ok(policies::describe(
        ctx,
        req(json!({"ServiceNamespace": "ecs", "ResourceId": rid})),
    )
    .await);
    out["ScalingPolicies"].as_array().expect("policies").clone()
}

async fn described_scheduled(ctx: &Ctx, rid: &str) -> Vec<Value> {
    let out = ok(scheduled::describe(
        ctx,
        req(json!({"ServiceNamespace": "ecs", "ResourceId": rid})),
    )
    .await);
    out["ScheduledActions"].as_array().expect("actions").clone()
}

// ---------------------------------------------------------------------------------------------
// Scalable targets

#[tokio::test]
async fn register_describe_update_and_deregister_a_target() {
    let env = env();
    let rid = &services(&env.ctx, &["api"]).await[0];
    let arn = ok(register(&env.ctx, rid, json!({"MinCapacity": 1, "MaxCapacity": 5})).await)
        ["ScalableTargetARN"]
        .clone();
    let a = arn.as_str().expect("an ARN");
    assert!(
        a.starts_with("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/"),
        "{a}"
    );
    let t = described_targets(&env.ctx, rid).await[0].clone();
    assert_eq!(
        (t["MinCapacity"].as_u64(), t["MaxCapacity"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(t["ScalableTargetARN"], arn);
    assert_eq!(t["SuspendedState"]["DynamicScalingInSuspended"], false);
    // An update changes what it gives and keeps the ARN and creation time.
    env.clock.advance(60.0);
    let again = ok(register(
        &env.ctx,
        rid,
        json!({"MaxCapacity": 8, "SuspendedState": {"DynamicScalingInSuspended": true},
               "RoleARN": "arn:aws:iam::000000000000:role/mine"}),
    )
    .await);
    assert_eq!(again["ScalableTargetARN"], arn);
    let u = described_targets(&env.ctx, rid).await[0].clone();
    assert_eq!(
        (u["MinCapacity"].as_u64(), u["MaxCapacity"].as_u64()),
        (Some(1), Some(8))
    );
    assert_eq!(u["SuspendedState"]["DynamicScalingInSuspended"], true);
    assert_eq!(u["RoleARN"], "arn:aws:iam::000000000000:role/mine");
    assert_eq!(u["CreationTime"], t["CreationTime"]);
    assert_eq!(
        code(register(&env.ctx, rid, json!({"MinCapacity": 9})).await),
        ErrorCode::ValidationException
    );
    ok(targets::deregister(&env.ctx, req(target(rid, json!({})))).await);
    assert_eq!(described_targets(&env.ctx, rid).await, Vec::<Value>::new());
    let e = code(targets::deregister(&env.ctx, req(target(rid, json!({})))).await);
    assert_eq!(e, ErrorCode::ObjectNotFoundException);
}

#[tokio::test]
async fn register_target_errors() {
    let env = env();
    let rid = &services(&env.ctx, &["api"]).await[0];
    for extra in [
        json!({}),
        json!({"MinCapacity": 5, "MaxCapacity": 2}),
        json!({"MinCapacity": 0, "MaxCapacity": 10_001}),
        json!({"MinCapacity": -1, "MaxCapacity": 2}),
        json!({"MinCapacity": 1, "MaxCapacity": 2, "RoleARN": "role"}),
        json!({"MinCapacity": 1, "MaxCapacity": 2, "ScalableDimension": "ecs:service:Other"}),
        json!({"MinCapacity": 1, "MaxCapacity": 2, "ServiceNamespace": "dynamodb"}),
        json!({"MinCapacity": 1, "MaxCapacity": 2, "ResourceId": "cluster/c"}),
        json!({"MinCapacity": 1, "MaxCapacity": 2, "Tags": {"aws:x": "y"}}),
    ] {
        let e = code(register(&env.ctx, rid, extra.clone()).await);
        assert_eq!(e, ErrorCode::ValidationException, "{extra}");
    }
    let e = targets::register(
        &env.ctx,
        req(target(
            "service/c/missing",
            json!({"MinCapacity": 1, "MaxCapacity": 2}),
        )),
    )
    .await
    .expect_err("no such service");
    assert!(
        e.message
            .contains("ECS service doesn't exist: service/c/missing"),
        "{e}"
    );
    assert_eq!(described_targets(&env.ctx, rid).await, Vec::<Value>::new());
}

#[tokio::test]
async fn describe_targets_pages_and_checks_its_input() {
    let env = env();
    let rids = services(&env.ctx, &["a", "b", "c"]).await;
    for rid in &rids {
        ok(register(&env.ctx, rid, json!({"MinCapacity": 1, "MaxCapacity": 2})).await);
    }
    let (mut seen, mut token) = (Vec::new(), None::<String>);
    loop {
        let out = ok(targets::describe(
            &env.ctx,
            req(json!({"ServiceNamespace": "ecs", "ResourceIds": rids, "MaxResults": 2, "NextToken": token})),
        )
        .await);
        let page = out["ScalableTargets"].as_array().expect("a page");
        assert!(page.len() <= 2);
        seen.extend(
            page.iter()
                .map(|t| t["ResourceId"].as_str().expect("an id").to_owned()),
        );
        match out["NextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, rids);
    let describe = |v: Value| targets::describe(&env.ctx, req(v));
    let e = code(describe(json!({"ServiceNamespace": "ecs", "MaxResults": 51})).await);
    assert_eq!(e, ErrorCode::ValidationException);
    let e = code(describe(json!({"ServiceNamespace": "ecs", "NextToken": "not-a-token"})).await);
    assert_eq!(e, ErrorCode::InvalidNextTokenException);
    let e = code(describe(json!({"ServiceNamespace": "rds"})).await);
    assert_eq!(e, ErrorCode::ValidationException);
}

#[tokio::test]
async fn tags_on_scalable_targets() {
    let env = env();
    let rid = &services(&env.ctx, &["api"]).await[0];
    let arn = ok(register(
        &env.ctx,
        rid,
        json!({"MinCapacity": 1, "MaxCapacity": 2, "Tags": {"team": "web"}}),
    )
    .await)["ScalableTargetARN"]
        .clone();
    let list = || targets::list_tags(&env.ctx, req(json!({"ResourceARN": arn})));
    assert_eq!(ok(list().await)["Tags"], json!({"team": "web"}));
    ok(targets::tag(
        &env.ctx,
        req(json!({"ResourceARN": arn, "Tags": {"env": "prod", "team": "api"}})),
    )
    .await);
    assert_eq!(
        ok(list().await)["Tags"],
        json!({"env": "prod", "team": "api"})
    );
    ok(targets::untag(
        &env.ctx,
        req(json!({"ResourceARN": arn, "TagKeys": ["team"]})),
    )
    .await);
    assert_eq!(ok(list().await)["Tags"], json!({"env": "prod"}));
    let many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let e = code(targets::tag(&env.ctx, req(json!({"ResourceARN": arn, "Tags": many}))).await);
    assert_eq!(e, ErrorCode::TooManyTagsException);
    let e = code(targets::tag(&env.ctx, req(json!({"ResourceARN": arn, "Tags": {}}))).await);
    assert_eq!(e, ErrorCode::ValidationException);
    let missing =
        "arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/0123456789abcdef";
    for e in [
        code(targets::list_tags(&env.ctx, req(json!({"ResourceARN": missing}))).await),
        code(
            targets::tag(
                &env.ctx,
                req(json!({"ResourceARN": missing, "Tags": {"a": "b"}})),
            )
            .await,
        ),
        code(
            targets::untag(
                &env.ctx,
                req(json!({"ResourceARN": missing, "TagKeys": ["a"]})),
            )
            .await,
        ),
    ] {
        assert_eq!(e, ErrorCode::ResourceNotFoundException);
    }
    // Deregistering drops the tags; a new registration starts without them.
    ok(targets::deregister(&env.ctx, req(target(rid, json!({})))).await);
    let arn2 = ok(register(&env.ctx, rid, json!({"MinCapacity": 1, "MaxCapacity": 2})).await)
        ["ScalableTargetARN"]
        .clone();
    assert_ne!(arn2, arn);
    let out = ok(targets::list_tags(&env.ctx, req(json!({"ResourceARN": arn2}))).await);
    assert_eq!(out["Tags"], json!({}));
}

// ---------------------------------------------------------------------------------------------
// Scaling policies

#[tokio::test]
async fn a_target_tracking_policy_gets_two_alarms_and_keeps_them_on_update() {
    let env = env();
    let rid = &services(&env.ctx, &["api"]).await[0];
    ok(register(&env.ctx, rid, json!({"MinCapacity": 1, "MaxCapacity": 5})).await);
    let put = ok(policies::put(&env.ctx, req(cpu_policy(rid, "cpu", 55.0))).await);
    let arn = put["PolicyARN"].as_str().expect("an ARN").to_owned();
    assert!(
        arn.ends_with(&format!(":resource/ecs/{rid}:policyName/cpu")),
        "{arn}"
    );
    let mut names: Vec<&str> = put["Alarms"]
        .as_array()
        .expect("alarms")
        .iter()
        .map(|a| a["AlarmName"].as_str().expect("a name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names.len(), 2);
    assert!(
        names[0].starts_with(&format!("TargetTracking-{rid}-AlarmHigh-")),
        "{names:?}"
    );
    assert!(
        names[1].starts_with(&format!("TargetTracking-{rid}-AlarmLow-")),
        "{names:?}"
    );
    let p = described_policies(&env.ctx, rid).await[0].clone();
    assert_eq!(
        (p["PolicyARN"].as_str(), p["PolicyType"].as_str()),
        (Some(arn.as_str()), Some("TargetTrackingScaling"))
    );
    let cfg = &p["TargetTrackingScalingPolicyConfiguration"];
    assert_eq!(
        (
            cfg["ScaleInCooldown"].as_u64(),
            cfg["ScaleOutCooldown"].as_u64()
        ),
        (Some(300), Some(300))
    );
    assert_eq!(p["Alarms"], put["Alarms"]);
    let again = ok(policies::put(&env.ctx, req(cpu_policy(rid, "cpu", 70.0))).await);
    assert_eq!(
        (again["PolicyARN"].as_str(), &again["Alarms"]),
        (Some(arn.as_str()), &put["Alarms"])
    );
    let p = described_policies(&env.ctx, rid).await[0].clone();
    assert_eq!(
        p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"].as_f64(),
        Some(70.0)
    );
}

#[tokio::test]
async fn delete_a_policy_once() {
    let env = env();
    let rid = &services(&env.ctx, &["api"]).await[0];
    ok(register(&env.ctx, rid, json!({"MinCapacity": 1, "MaxCapacity": 5})).await);
    ok(policies::put(&env.ctx, req(cpu_policy(rid, "cpu", 50.0))).await);
    ok(policies::put(&env.ctx, req(cpu_policy(rid, "other", 50.0))).await);
    let del = || policies::delete(&env.ctx, req(target(rid, json!({"PolicyName": "cpu"}))));
    ok(del().await);
    assert_eq!(code(del().await), ErrorCode::ObjectNotFoundException);
    let left: Vec<Value> = described_policies(&env.ctx, rid)
        .await
        .iter()
        .map(|p| p["PolicyName"].clone())
        .collect();
    assert_eq!(left, [json!("other")]);
}

#[tokio::test]
async fn policy_errors() {
    let env = env();
    let rid = &services(&env.ctx, &["api"]).await[0];
    let e = code(policies::put(&env.ctx, req(cpu_policy(rid, "cpu", 50.0))).await);
    assert_eq!(
        e,
        ErrorCode::ObjectNotFoundException,
        "no scalable target yet"
    );
    ok(register(&env.ctx, rid, json!({"MinCapacity": 1, "MaxCapacity": 5})).await);
    let tt = |spec: Value| {
        target(
            rid,
            json!({"PolicyName": "bad", "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": spec}),
        )
    };
    for body in [
        tt(
            json!({"TargetValue": 50, "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget"}}),
        ),
        tt(
            json!({"TargetValue": 50, "PredefinedMetricSpecification": {"PredefinedMetricType": "DynamoDBReadCapacityUtilization"}}),
        ),
        tt(json!({"TargetValue": 50})),
        target(
            rid,
            json!({"PolicyName": "bad", "PolicyType": "TargetTrackingScaling"}),
        ),
        target(
            rid,
            json!({"PolicyName": "bad", "PolicyType": "PredictiveScaling"}),
        ),
        target(rid, json!({"PolicyName": "", "PolicyType": "StepScaling"})),
        step_policy(
            rid,
            "bad",
            json!([
            {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
            {"MetricIntervalLowerBound": 5, "ScalingAdjustment": 2}]),
        ),
        step_policy(
            rid,
            "bad",
            json!([
            {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1},
            {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 2}]),
        ),
        target(
            "service/c",
            json!({"PolicyName": "bad", "PolicyType": "StepScaling"}),
        ),
    ] {
        let e = code(policies::put(&env.ctx, req(body.clone())).await);
        assert_eq!(e, ErrorCode::ValidationException, "{body}");
    }
    // A policy keeps its type.
    ok(policies::put(&env.ctx, req(cpu_policy(rid, "cpu", 50.0))).await);
    let e = code(
        policies::put(
            &env.ctx,
            req(step_policy(
                rid,
                "cpu",
                json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]),
            )),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::ValidationException);
    let e = code(
        policies::describe(
            &env.ctx,
            req(json!({"ServiceNamespace": "ecs", "NextToken": "xyz"})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidNextTokenException);
}

#[tokio::test]
async fn policies_page_in_name_order() {
    let env = env();
    let rid = &services(&env.ctx, &["api"]).await[0];
    ok(register(&env.ctx, rid, json!({"MinCapacity": 1, "MaxCapacity": 5})).await);
    for i in 0..5 {
        ok(policies::put(
            &env.ctx,
            req(cpu_policy(rid, &format!("p{i}"), 50.0 + f64::from(i))),
        )
        .await);
    }
    let (mut seen, mut token) = (Vec::new(), None::<String>);
    loop {
        let out = ok(policies::describe(
            &env.ctx,
            req(json!({"ServiceNamespace": "ecs", "ResourceId": rid, "MaxResults": 2, "NextToken": token})),
        )
        .await);
        seen.extend(
            out["ScalingPolicies"]
                .as_array()
                .expect("a page")
                .iter()
                .map(|p| p["PolicyName"].clone()),
        );
        match out["NextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..5).map(|i| json!(format!("p{i}"))).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// berth's metric alarms

fn alarm(name: &str, policy_arn: &str, extra: Value) -> Value {
    let mut v = json!({
        "AlarmName": name, "Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "ClusterName", "Value": "c"}, {"Name": "ServiceName", "Value": "api"}],
        "Statistic": "Average", "Period": 60, "EvaluationPeriods": 2, "Threshold": 70.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "AlarmActions": [policy_arn],
    });
    for (k, x) in extra.as_object().expect("an object") {
        v[k] = x.clone();
    }
    v
}

#[tokio::test]
async fn a_step_policy_is_triggered_by_berths_alarms() {
    let env = env();
    let rid = &services(&env.ctx, &["api"]).await[0];
    ok(register(&env.ctx, rid, json!({"MinCapacity": 1, "MaxCapacity": 5})).await);
    let step = step_policy(
        rid,
        "step",
        json!([
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 2}]),
    );
    let arn = ok(policies::put(&env.ctx, req(step)).await)["PolicyARN"]
        .as_str()
        .expect("an ARN")
        .to_owned();
    assert_eq!(
        described_policies(&env.ctx, rid).await[0]["Alarms"],
        json!([])
    );
    ok(alarms::put(&env.ctx, req(alarm("cpu-high", &arn, json!({})))).await);
    let d = ok(alarms::describe(&env.ctx, req(json!({"AlarmNames": ["cpu-high"]}))).await);
    let a = &d["MetricAlarms"][0];
    assert_eq!(a["StateValue"], "INSUFFICIENT_DATA");
    assert_eq!(
        a["AlarmArn"],
        "arn:aws:cloudwatch:us-east-1:000000000000:alarm:cpu-high"
    );
    let p = described_policies(&env.ctx, rid).await[0].clone();
    assert_eq!(
        p["Alarms"],
        json!([{"AlarmName": "cpu-high", "AlarmARN": a["AlarmArn"]}])
    );
    for bad in [
        json!({"Period": 5}),
        json!({"ComparisonOperator": "Bigger"}),
        json!({"Statistic": "p99"}),
        json!({"Namespace": "AWS/EC2"}),
        json!({"Dimensions": []}),
        json!({"AlarmActions": ["arn:aws:autoscaling:us-east-1:0:scalingPolicy:nope"]}),
    ] {
        let e = code(alarms::put(&env.ctx, req(alarm("bad", &arn, bad.clone()))).await);
        assert_eq!(e, ErrorCode::ValidationException, "{bad}");
    }
    let del = || alarms::delete(&env.ctx, req(json!({"AlarmNames": ["cpu-high"]})));
    ok(del().await);
    assert_eq!(code(del().await), ErrorCode::ResourceNotFoundException);
    assert_eq!(
        described_policies(&env.ctx, rid).await[0]["Alarms"],
        json!([])
    );
}

// ---------------------------------------------------------------------------------------------
// Scheduled actions

#[tokio::test]
async fn put_describe_update_and_delete_scheduled_actions() {
    let env = env();
    let rid = &services(&env.ctx, &["api"]).await[0];
    let put = |extra: Value| scheduled::put(&env.ctx, req(target(rid, extra)));
    let e = code(put(json!({"ScheduledActionName": "x", "Schedule": "rate(5 minutes)"})).await);
    assert_eq!(
        e,
        ErrorCode::ObjectNotFoundException,
        "no scalable target yet"
    );
    ok(register(&env.ctx, rid, json!({"MinCapacity": 1, "MaxCapacity": 5})).await);
    ok(put(json!({"ScheduledActionName": "morning", "Schedule": "cron(0 8 ? * MON-FRI *)",
                  "Timezone": "Europe/Dublin", "ScalableTargetAction": {"MinCapacity": 2, "MaxCapacity": 6}})).await);
    ok(put(
        json!({"ScheduledActionName": "every", "Schedule": "rate(1 hour)",
                  "StartTime": 2_000_000_000.0, "EndTime": 2_100_000_000.0}),
    )
    .await);
    let got = described_scheduled(&env.ctx, rid).await;
    let names: Vec<&str> = got
        .iter()
        .map(|a| a["ScheduledActionName"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["every", "morning"]);
    let m = got[1].clone();
    assert_eq!(m["Timezone"], "Europe/Dublin");
    assert_eq!(
        m["ScalableTargetAction"],
        json!({"MinCapacity": 2, "MaxCapacity": 6})
    );
    assert!(m["ScheduledActionARN"]
        .as_str()
        .expect("an ARN")
        .ends_with(&format!(":resource/ecs/{rid}:scheduledActionName/morning")));
    // An update keeps the ARN and what it does not give.
    ok(
        put(json!({"ScheduledActionName": "morning", "Schedule": "cron(30 7 ? * MON-FRI *)"}))
            .await,
    );
    let m2 = described_scheduled(&env.ctx, rid).await[1].clone();
    assert_eq!(
        (
            m2["ScheduledActionARN"].clone(),
            m2["ScalableTargetAction"].clone()
        ),
        (
            m["ScheduledActionARN"].clone(),
            m["ScalableTargetAction"].clone()
        )
    );
    assert_eq!(m2["Schedule"], "cron(30 7 ? * MON-FRI *)");
    let del = || {
        scheduled::delete(
            &env.ctx,
            req(target(rid, json!({"ScheduledActionName": "every"}))),
        )
    };
    ok(del().await);
    assert_eq!(code(del().await), ErrorCode::ObjectNotFoundException);
    assert_eq!(described_scheduled(&env.ctx, rid).await.len(), 1);
}

#[tokio::test]
async fn scheduled_action_errors() {
    let env = env();
    let rid = &services(&env.ctx, &["api"]).await[0];
    ok(register(&env.ctx, rid, json!({"MinCapacity": 1, "MaxCapacity": 5})).await);
    let mut bad: Vec<Value> = [
        "rate(0 minutes)",
        "rate(5 weeks)",
        "cron(0 8 * * MON *)",
        "cron(0 8 ? *)",
        "at(2030-13-01T00:00:00)",
        "every monday",
    ]
    .iter()
    .map(|s| json!({"ScheduledActionName": "bad", "Schedule": s}))
    .collect();
    bad.extend([
        json!({"ScheduledActionName": "bad", "Schedule": "rate(5 minutes)", "ScalableTargetAction": {"MinCapacity": 5, "MaxCapacity": 2}}),
        json!({"ScheduledActionName": "bad", "Schedule": "rate(5 minutes)", "StartTime": 2.0, "EndTime": 1.0}),
        json!({"ScheduledActionName": "bad", "Schedule": "rate(5 minutes)", "Timezone": "bad zone"}),
        json!({"ScheduledActionName": "a/b", "Schedule": "rate(5 minutes)"}),
        json!({"ScheduledActionName": "needs-schedule"}),
    ]);
    for extra in bad {
        let e = code(scheduled::put(&env.ctx, req(target(rid, extra.clone()))).await);
        assert_eq!(e, ErrorCode::ValidationException, "{extra}");
    }
    assert_eq!(
        described_scheduled(&env.ctx, rid).await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn deregistering_a_target_removes_its_policies_and_scheduled_actions() {
    let env = env();
    let rids = services(&env.ctx, &["api", "other"]).await;
    for rid in &rids {
        ok(register(&env.ctx, rid, json!({"MinCapacity": 1, "MaxCapacity": 5})).await);
        ok(policies::put(&env.ctx, req(cpu_policy(rid, "cpu", 50.0))).await);
        ok(scheduled::put(
            &env.ctx,
            req(target(
                rid,
                json!({"ScheduledActionName": "s", "Schedule": "rate(5 minutes)"}),
            )),
        )
        .await);
    }
    ok(targets::deregister(&env.ctx, req(target(&rids[0], json!({})))).await);
    assert_eq!(
        described_policies(&env.ctx, &rids[0]).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        described_scheduled(&env.ctx, &rids[0]).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        described_policies(&env.ctx, &rids[1]).await.len(),
        1,
        "another target keeps its own"
    );
    assert_eq!(described_scheduled(&env.ctx, &rids[1]).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Scaling activities

async fn seed_activity(env: &Env, rid: &str, id: &str, start: f64) {
    let a = ScalingActivity {
        activity_id: id.to_owned(),
        service_namespace: "ecs".into(),
        resource_id: rid.to_owned(),
        scalable_dimension: DIM.into(),
        description: "Setting desired count to 2.".into(),
        cause: "test".into(),
        start_time: start,
        end_time: None,
        status_code: "Successful".into(),
        status_message: None,
        details: None,
    };
    let bytes = serde_json::to_vec(&a).expect("encodes");
    env.store
        .txn(Txn::new().put(keys::aas_activity(rid, start, id), bytes))
        .await
        .expect("the seed commits");
}

#[tokio::test]
async fn scaling_activities_are_listed_newest_first_across_targets() {
    let env = env();
    let rids = services(&env.ctx, &["a", "b"]).await;
    let out = ok(activities::describe(&env.ctx, req(json!({"ServiceNamespace": "ecs"}))).await);
    assert_eq!(out["ScalingActivities"], json!([]));
    seed_activity(&env, &rids[0], "a1", 10.0).await;
    seed_activity(&env, &rids[1], "b1", 20.0).await;
    seed_activity(&env, &rids[0], "a2", 30.0).await;
    let ids = |v: &Value| -> Vec<String> {
        v["ScalingActivities"]
            .as_array()
            .expect("activities")
            .iter()
            .map(|a| a["ActivityId"].as_str().expect("an id").to_owned())
            .collect()
    };
    let all = ok(activities::describe(&env.ctx, req(json!({"ServiceNamespace": "ecs"}))).await);
    assert_eq!(ids(&all), ["a2", "b1", "a1"]);
    let first = ok(activities::describe(
        &env.ctx,
        req(json!({"ServiceNamespace": "ecs", "MaxResults": 2})),
    )
    .await);
    assert_eq!(ids(&first), ["a2", "b1"]);
    let rest = ok(activities::describe(
        &env.ctx,
        req(json!({"ServiceNamespace": "ecs", "MaxResults": 2, "NextToken": first["NextToken"]})),
    )
    .await);
    assert_eq!(ids(&rest), ["a1"]);
    let one = ok(activities::describe(
        &env.ctx,
        req(
            json!({"ServiceNamespace": "ecs", "ResourceId": rids[0], "ScalableDimension": DIM,
                   "IncludeNotScaledActivities": true}),
        ),
    )
    .await);
    assert_eq!(ids(&one), ["a2", "a1"]);
    let e = code(activities::describe(&env.ctx, req(json!({"ServiceNamespace": "rds"}))).await);
    assert_eq!(e, ErrorCode::ValidationException);
    let e = code(
        activities::describe(
            &env.ctx,
            req(json!({"ServiceNamespace": "ecs", "NextToken": "bogus"})),
        )
        .await,
    );
    assert_eq!(e, ErrorCode::InvalidNextTokenException);
}

/// PutScalingPolicy counts the target's policies, then commits guarded by the scalable
/// target's record, which adding a policy once did not change: concurrent puts of new policies
/// each saw room and all committed, past the limit of 50. A new policy now rewrites the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_never_exceed_the_policy_limit() {
    let env = env();
    let rid = services(&env.ctx, &["api"]).await.remove(0);
    ok(register(&env.ctx, &rid, json!({"MinCapacity": 1, "MaxCapacity": 5})).await);
    for i in 0..49 {
        ok(policies::put(&env.ctx, req(cpu_policy(&rid, &format!("p{i}"), 50.0))).await);
    }
    let calls = (0..8).map(|i| {
        let (ctx, body) = (env.ctx(), cpu_policy(&rid, &format!("x{i}"), 50.0));
        tokio::spawn(async move { policies::put(&ctx, req(body)).await.is_ok() })
    });
    let won = futures::future::join_all(calls)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(true)))
        .count();
    assert_eq!(won, 1);
}

/// The same for scheduled actions (200 per scalable target).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_never_exceed_the_scheduled_action_limit() {
    let env = env();
    let rid = services(&env.ctx, &["api"]).await.remove(0);
    ok(register(&env.ctx, &rid, json!({"MinCapacity": 1, "MaxCapacity": 5})).await);
    let action = |name: String| {
        target(
            &rid,
            json!({"ScheduledActionName": name, "Schedule": "rate(5 minutes)"}),
        )
    };
    for i in 0..199 {
        ok(scheduled::put(&env.ctx, req(action(format!("s{i}")))).await);
    }
    let calls = (0..8).map(|i| {
        let (ctx, body) = (env.ctx(), action(format!("x{i}")));
        tokio::spawn(async move { scheduled::put(&ctx, req(body)).await.is_ok() })
    });
    let won = futures::future::join_all(calls)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(true)))
        .count();
    assert_eq!(won, 1);
    let (stored, _) = ok(env
        .store
        .list(&keys::aas_scheduled_of(&rid))
        .await
        .map_err(berth_ops::store_err));
    assert_eq!(stored.len(), 200);
    // Updating an existing action is not limited.
    ok(scheduled::put(&env.ctx, req(action("s0".into()))).await);
}
