"""Application Auto Scaling's API for ECS services end to end: every action through boto3
(responses checked strictly against botocore's model, errors by code), a few through the aws
CLI, berth's alarm actions (`BerthV1.PutMetricAlarm` / `DescribeAlarms` / `DeleteAlarms`)
through raw signed calls, and the `berth service autoscale` one-liner.

Services are created with desiredCount 0, so no agent is needed; nothing here waits on the
autoscaler controller.
"""
import re

import pytest

from conftest import expect_error, raw_call, register, uniq

BERTH_AGENT = False

DIM = "ecs:service:DesiredCount"
ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def aas(berth):
    return berth.client("application-autoscaling")


@pytest.fixture(scope="module")
def family(ecs):
    f = uniq("aas-td")
    register(ecs, f)
    return f


@pytest.fixture
def service(ecs, family):
    """A fresh ECS service (desired count 0) in the default cluster; yields its resource id."""
    name = uniq("svc")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=family, desiredCount=0)
    return f"service/default/{name}"


def target(rid):
    return {"ServiceNamespace": "ecs", "ResourceId": rid, "ScalableDimension": DIM}


def register_target(aas, rid, lo=1, hi=5, **kw):
    return aas.register_scalable_target(**target(rid), MinCapacity=lo, MaxCapacity=hi, **kw)


def cpu_policy(aas, rid, name="cpu", value=60.0, **cfg):
    return aas.put_scaling_policy(
        PolicyName=name, **target(rid), PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": value,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            **cfg,
        },
    )


def step_policy(aas, rid, name="step", steps=None):
    return aas.put_scaling_policy(
        PolicyName=name, **target(rid), PolicyType="StepScaling",
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity",
            "StepAdjustments": steps or [
                {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
                {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 2},
            ],
            "Cooldown": 60,
            "MetricAggregationType": "Average",
        },
    )


def berth_call(berth, action, body):
    status, _, doc = raw_call(berth.endpoint, body=body, target=f"BerthV1.{action}")
    return status, doc


# ---------------------------------------------------------------------------------------------
# Scalable targets.

def test_register_describe_update_and_deregister(aas, service):
    r = register_target(aas, service, 1, 5)
    arn = r["ScalableTargetARN"]
    assert re.fullmatch(r"arn:aws:application-autoscaling:eu-west-1:\d{12}:scalable-target/[0-9a-f]{16,}", arn)

    d = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[service])["ScalableTargets"]
    assert len(d) == 1
    t = d[0]
    assert (t["MinCapacity"], t["MaxCapacity"], t["ScalableDimension"]) == (1, 5, DIM)
    assert t["ScalableTargetARN"] == arn
    assert t["RoleARN"].startswith("arn:aws:iam::")
    assert t["SuspendedState"] == {
        "DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
        "ScheduledScalingSuspended": False,
    }
    created = t["CreationTime"]

    # An update changes what it gives and keeps the ARN and creation time.
    r2 = aas.register_scalable_target(**target(service), MaxCapacity=8,
                                      SuspendedState={"DynamicScalingInSuspended": True},
                                      RoleARN=f"arn:aws:iam::{ACCOUNT}:role/mine")
    assert r2["ScalableTargetARN"] == arn
    t = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[service],
                                      ScalableDimension=DIM)["ScalableTargets"][0]
    assert (t["MinCapacity"], t["MaxCapacity"]) == (1, 8)
    assert t["SuspendedState"]["DynamicScalingInSuspended"] is True
    assert t["RoleARN"] == f"arn:aws:iam::{ACCOUNT}:role/mine"
    assert t["CreationTime"] == created

    expect_error("ValidationException", aas.register_scalable_target, **target(service), MinCapacity=9)
    aas.deregister_scalable_target(**target(service))
    assert aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[service])["ScalableTargets"] == []
    expect_error("ObjectNotFoundException", aas.deregister_scalable_target, **target(service))


def test_register_errors(aas, service):
    # Capacities are required on create, within 0..=10000 and min <= max.
    expect_error("ValidationException", aas.register_scalable_target, **target(service))
    expect_error("ValidationException", register_target, aas, service, 5, 2)
    expect_error("ValidationException", register_target, aas, service, 0, 10001)
    # The service must exist and be ACTIVE.
    e = expect_error("ValidationException", register_target, aas, "service/default/nope-missing")
    assert "ECS service doesn't exist: service/default/nope-missing" in e.response["Error"]["Message"]
    # ECS services only.
    expect_error("ValidationException", aas.register_scalable_target, ServiceNamespace="dynamodb",
                 ResourceId="table/t", ScalableDimension="dynamodb:table:ReadCapacityUnits",
                 MinCapacity=1, MaxCapacity=2)
    expect_error("ValidationException", aas.register_scalable_target, ServiceNamespace="ecs",
                 ResourceId=service, ScalableDimension="ecs:service:Other", MinCapacity=1, MaxCapacity=2)
    expect_error("ValidationException", aas.register_scalable_target, ServiceNamespace="ecs",
                 ResourceId="cluster/default", ScalableDimension=DIM, MinCapacity=1, MaxCapacity=2)
    expect_error("ValidationException", aas.describe_scalable_targets, ServiceNamespace="ecs", MaxResults=51)
    expect_error("InvalidNextTokenException", aas.describe_scalable_targets, ServiceNamespace="ecs",
                 NextToken="not-a-token")


def test_describe_targets_pages(aas, ecs, family):
    rids = []
    for _ in range(3):
        name = uniq("pg")
        ecs.create_service(cluster="default", serviceName=name, taskDefinition=family, desiredCount=0)
        rids.append(f"service/default/{name}")
        register_target(aas, rids[-1])
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        r = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=rids, MaxResults=2, **kw)
        assert len(r["ScalableTargets"]) <= 2
        seen += [t["ResourceId"] for t in r["ScalableTargets"]]
        token = r.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(rids)
    # boto3's paginator walks the same pages.
    pages = aas.get_paginator("describe_scalable_targets").paginate(
        ServiceNamespace="ecs", ResourceIds=rids, PaginationConfig={"PageSize": 1})
    assert sorted(t["ResourceId"] for p in pages for t in p["ScalableTargets"]) == sorted(rids)


def test_tags_on_scalable_targets(aas, service):
    arn = register_target(aas, service, Tags={"team": "web"})["ScalableTargetARN"]
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "web"}
    aas.tag_resource(ResourceARN=arn, Tags={"env": "prod", "team": "api"})
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"env": "prod", "team": "api"}
    aas.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"env": "prod"}
    missing = f"arn:aws:application-autoscaling:eu-west-1:{ACCOUNT}:scalable-target/0123456789abcdef0123"
    expect_error("ResourceNotFoundException", aas.list_tags_for_resource, ResourceARN=missing)
    expect_error("ResourceNotFoundException", aas.tag_resource, ResourceARN=missing, Tags={"a": "b"})
    expect_error("TooManyTagsException", aas.tag_resource, ResourceARN=arn,
                 Tags={f"k{i}": "v" for i in range(51)})
    # Deregistering drops the tags; a new registration starts without them.
    aas.deregister_scalable_target(**target(service))
    arn2 = register_target(aas, service)["ScalableTargetARN"]
    assert arn2 != arn
    assert aas.list_tags_for_resource(ResourceARN=arn2)["Tags"] == {}


# ---------------------------------------------------------------------------------------------
# Scaling policies.

def test_target_tracking_policy(aas, service):
    register_target(aas, service)
    r = cpu_policy(aas, service, value=55)
    arn = r["PolicyARN"]
    m = re.fullmatch(
        r"arn:aws:autoscaling:eu-west-1:\d{12}:scalingPolicy:([0-9a-f-]{36}):resource/ecs/"
        + re.escape(service) + r":policyName/cpu", arn)
    assert m, arn
    names = sorted(a["AlarmName"] for a in r["Alarms"])
    assert len(names) == 2
    assert names[0].startswith(f"TargetTracking-{service}-AlarmHigh-")
    assert names[1].startswith(f"TargetTracking-{service}-AlarmLow-")
    for a in r["Alarms"]:
        assert a["AlarmARN"] == f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{a['AlarmName']}"

    p = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)["ScalingPolicies"]
    assert len(p) == 1
    p = p[0]
    assert p["PolicyARN"] == arn and p["PolicyType"] == "TargetTrackingScaling"
    cfg = p["TargetTrackingScalingPolicyConfiguration"]
    assert cfg["TargetValue"] == 55.0
    assert (cfg["ScaleInCooldown"], cfg["ScaleOutCooldown"]) == (300, 300)
    assert p["Alarms"] == r["Alarms"]

    # Updating keeps the ARN and the alarms.
    r2 = cpu_policy(aas, service, value=70, ScaleOutCooldown=30, DisableScaleIn=True)
    assert r2["PolicyARN"] == arn and r2["Alarms"] == r["Alarms"]
    cfg = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service,
                                        PolicyNames=["cpu"])["ScalingPolicies"][0][
        "TargetTrackingScalingPolicyConfiguration"]
    assert (cfg["TargetValue"], cfg["ScaleOutCooldown"], cfg["DisableScaleIn"]) == (70.0, 30, True)

    # Memory, requests per target and a customized metric.
    aas.put_scaling_policy(
        PolicyName="mem", **target(service), PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 75, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageMemoryUtilization"}})
    aas.put_scaling_policy(
        PolicyName="req", **target(service), PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 100, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ALBRequestCountPerTarget",
                "ResourceLabel": "app/web/0123456789abcdef/targetgroup/api/fedcba9876543210"}})
    cluster, name = service.split("/")[1:]
    aas.put_scaling_policy(
        PolicyName="custom", **target(service), PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 40, "CustomizedMetricSpecification": {
                "MetricName": "CPUUtilization", "Namespace": "AWS/ECS", "Statistic": "Average",
                "Dimensions": [{"Name": "ClusterName", "Value": cluster},
                               {"Name": "ServiceName", "Value": name}]}})
    got = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)["ScalingPolicies"]
    assert sorted(p["PolicyName"] for p in got) == ["cpu", "custom", "mem", "req"]

    aas.delete_scaling_policy(PolicyName="cpu", **target(service))
    expect_error("ObjectNotFoundException", aas.delete_scaling_policy, PolicyName="cpu", **target(service))
    assert "cpu" not in [p["PolicyName"] for p in aas.describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId=service)["ScalingPolicies"]]


def test_policy_errors(aas, service):
    # No scalable target yet.
    expect_error("ObjectNotFoundException", cpu_policy, aas, service)
    register_target(aas, service)

    def tt(spec, **extra):
        return aas.put_scaling_policy(
            PolicyName="bad", **target(service), PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={"TargetValue": 50, **spec, **extra})

    expect_error("ValidationException", tt, {"PredefinedMetricSpecification": {
        "PredefinedMetricType": "ALBRequestCountPerTarget"}})
    expect_error("ValidationException", tt, {"PredefinedMetricSpecification": {
        "PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": "nonsense"}})
    expect_error("ValidationException", tt, {"PredefinedMetricSpecification": {
        "PredefinedMetricType": "DynamoDBReadCapacityUtilization"}})
    expect_error("ValidationException", tt, {"CustomizedMetricSpecification": {
        "MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "Statistic": "Average"}})
    expect_error("ValidationException", tt, {})
    expect_error("ValidationException", aas.put_scaling_policy, PolicyName="bad", **target(service),
                 PolicyType="TargetTrackingScaling")
    # Step adjustments must not overlap, and at most one may be unbounded on each side.
    expect_error("ValidationException", step_policy, aas, service, steps=[
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 5, "ScalingAdjustment": 2}])
    expect_error("ValidationException", step_policy, aas, service, steps=[
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 2}])
    expect_error("ValidationException", aas.put_scaling_policy, PolicyName="bad", ServiceNamespace="ecs",
                 ResourceId="service/default", ScalableDimension=DIM, PolicyType="StepScaling")
    expect_error("InvalidNextTokenException", aas.describe_scaling_policies, ServiceNamespace="ecs",
                 NextToken="xyz")


def test_policies_page(aas, service):
    register_target(aas, service)
    for i in range(5):
        cpu_policy(aas, service, name=f"p{i}", value=50 + i)
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        r = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service, MaxResults=2, **kw)
        seen += [p["PolicyName"] for p in r["ScalingPolicies"]]
        token = r.get("NextToken")
        if not token:
            break
    assert seen == [f"p{i}" for i in range(5)]


def test_step_policy_with_berth_alarms(berth, aas, service):
    register_target(aas, service)
    arn = step_policy(aas, service)["PolicyARN"]
    p = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)["ScalingPolicies"][0]
    assert p["PolicyType"] == "StepScaling" and p["Alarms"] == []
    assert p["StepScalingPolicyConfiguration"]["StepAdjustments"][1] == {
        "MetricIntervalLowerBound": 10.0, "ScalingAdjustment": 2}

    cluster, name = service.split("/")[1:]
    alarm = uniq("cpu-high")
    body = {
        "AlarmName": alarm, "Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": name}],
        "Statistic": "Average", "Period": 60, "EvaluationPeriods": 2, "Threshold": 70,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "AlarmActions": [arn],
    }
    status, doc = berth_call(berth, "PutMetricAlarm", body)
    assert status == 200, doc

    status, doc = berth_call(berth, "DescribeAlarms", {"AlarmNames": [alarm]})
    assert status == 200, doc
    (a,) = doc["MetricAlarms"]
    assert a["AlarmArn"] == f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{alarm}"
    assert a["StateValue"] == "INSUFFICIENT_DATA" and a["AlarmActions"] == [arn]
    assert a["Threshold"] == 70 and a["Period"] == 60 and isinstance(a["StateUpdatedTimestamp"], float)

    # The step policy now names the alarm that triggers it.
    p = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)["ScalingPolicies"][0]
    assert p["Alarms"] == [{"AlarmName": alarm, "AlarmARN": a["AlarmArn"]}]

    # Bad alarms.
    for bad in ({"Period": 5}, {"ComparisonOperator": "Bigger"}, {"Statistic": "p99"},
                {"Namespace": "AWS/EC2"}, {"Dimensions": []},
                {"AlarmActions": ["arn:aws:autoscaling:eu-west-1:0:scalingPolicy:nope"]}):
        status, doc = berth_call(berth, "PutMetricAlarm", {**body, "AlarmName": uniq("bad"), **bad})
        assert (status, doc["__type"]) == (400, "ValidationException"), (bad, doc)

    status, doc = berth_call(berth, "DeleteAlarms", {"AlarmNames": [alarm]})
    assert status == 200, doc
    status, doc = berth_call(berth, "DeleteAlarms", {"AlarmNames": [alarm]})
    assert (status, doc["__type"]) == (400, "ResourceNotFoundException")
    p = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)["ScalingPolicies"][0]
    assert p["Alarms"] == []


# ---------------------------------------------------------------------------------------------
# Scheduled actions and activities.

def test_scheduled_actions(aas, service):
    expect_error("ObjectNotFoundException", aas.put_scheduled_action, **target(service),
                 ScheduledActionName="x", Schedule="rate(5 minutes)")
    register_target(aas, service)
    aas.put_scheduled_action(**target(service), ScheduledActionName="morning",
                             Schedule="cron(0 8 ? * MON-FRI *)", Timezone="Europe/Dublin",
                             ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 6})
    aas.put_scheduled_action(**target(service), ScheduledActionName="once",
                             Schedule="at(2030-01-01T00:00:00)",
                             ScalableTargetAction={"MinCapacity": 0})
    aas.put_scheduled_action(**target(service), ScheduledActionName="every",
                             Schedule="rate(1 hour)", StartTime=2_000_000_000, EndTime=2_100_000_000,
                             ScalableTargetAction={"MaxCapacity": 3})
    got = {a["ScheduledActionName"]: a for a in aas.describe_scheduled_actions(
        ServiceNamespace="ecs", ResourceId=service)["ScheduledActions"]}
    assert sorted(got) == ["every", "morning", "once"]
    m = got["morning"]
    assert m["Schedule"] == "cron(0 8 ? * MON-FRI *)" and m["Timezone"] == "Europe/Dublin"
    assert m["ScalableTargetAction"] == {"MinCapacity": 2, "MaxCapacity": 6}
    assert m["ScheduledActionARN"].endswith(f":resource/ecs/{service}:scheduledActionName/morning")
    assert got["every"]["StartTime"].timestamp() == 2_000_000_000

    # An update keeps the ARN and what it does not give.
    aas.put_scheduled_action(**target(service), ScheduledActionName="morning", Schedule="cron(30 7 ? * MON-FRI *)")
    m2 = aas.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=service,
                                        ScheduledActionNames=["morning"])["ScheduledActions"][0]
    assert m2["ScheduledActionARN"] == m["ScheduledActionARN"]
    assert m2["Schedule"] == "cron(30 7 ? * MON-FRI *)" and m2["ScalableTargetAction"] == m["ScalableTargetAction"]

    for bad in ("rate(0 minutes)", "rate(5 weeks)", "cron(0 8 * * MON *)", "cron(0 8 ? *)",
                "at(2030-13-01T00:00:00)", "every monday"):
        expect_error("ValidationException", aas.put_scheduled_action, **target(service),
                     ScheduledActionName="bad", Schedule=bad)
    expect_error("ValidationException", aas.put_scheduled_action, **target(service),
                 ScheduledActionName="bad", Schedule="rate(5 minutes)",
                 ScalableTargetAction={"MinCapacity": 5, "MaxCapacity": 2})
    expect_error("ValidationException", aas.put_scheduled_action, **target(service),
                 ScheduledActionName="bad", Schedule="rate(5 minutes)", StartTime=2, EndTime=1)
    expect_error("ValidationException", aas.put_scheduled_action, **target(service),
                 ScheduledActionName="needs-schedule")

    aas.delete_scheduled_action(**target(service), ScheduledActionName="once")
    expect_error("ObjectNotFoundException", aas.delete_scheduled_action, **target(service),
                 ScheduledActionName="once")


def test_deregister_removes_policies_and_scheduled_actions(aas, service):
    register_target(aas, service)
    cpu_policy(aas, service)
    aas.put_scheduled_action(**target(service), ScheduledActionName="s", Schedule="rate(5 minutes)")
    aas.deregister_scalable_target(**target(service))
    assert aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)["ScalingPolicies"] == []
    assert aas.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=service)["ScheduledActions"] == []


def test_describe_scaling_activities(aas, service):
    register_target(aas, service)
    r = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=service,
                                        ScalableDimension=DIM, MaxResults=10,
                                        IncludeNotScaledActivities=True)
    assert isinstance(r["ScalingActivities"], list)
    for a in r["ScalingActivities"]:
        assert a["ResourceId"] == service
    times = [a["StartTime"] for a in aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]]
    assert times == sorted(times, reverse=True)
    expect_error("ValidationException", aas.describe_scaling_activities, ServiceNamespace="rds")
    expect_error("InvalidNextTokenException", aas.describe_scaling_activities, ServiceNamespace="ecs",
                 NextToken="bogus")


# ---------------------------------------------------------------------------------------------
# Protocol, the aws CLI and berth's CLI.

def test_signed_for_the_wrong_service_is_refused(berth):
    status, _, doc = raw_call(berth.endpoint, body={"ServiceNamespace": "ecs"},
                              target="AnyScaleFrontendService.DescribeScalableTargets", service="ecs")
    assert status == 403, doc
    status, _, doc = raw_call(berth.endpoint, body={"ServiceNamespace": "ecs"},
                              target="AnyScaleFrontendService.DescribeScalableTargets",
                              service="application-autoscaling")
    assert status == 200 and "ScalableTargets" in doc, doc
    status, _, doc = raw_call(berth.endpoint, body={}, target="AnyScaleFrontendService.Nope",
                              service="application-autoscaling")
    assert (status, doc["__type"]) == (400, "UnknownOperationException")


def test_aws_cli(berth, service):
    common = ["--service-namespace", "ecs", "--resource-id", service, "--scalable-dimension", DIM]
    r = berth.aws("application-autoscaling", "register-scalable-target", *common,
                  "--min-capacity", "1", "--max-capacity", "3")
    assert r["ScalableTargetARN"].startswith("arn:aws:application-autoscaling:")
    d = berth.aws("application-autoscaling", "describe-scalable-targets", "--service-namespace", "ecs",
                  "--resource-ids", service)
    assert d["ScalableTargets"][0]["MaxCapacity"] == 3
    p = berth.aws("application-autoscaling", "put-scaling-policy", *common, "--policy-name", "cli-cpu",
                  "--policy-type", "TargetTrackingScaling",
                  "--target-tracking-scaling-policy-configuration",
                  '{"TargetValue": 65, "PredefinedMetricSpecification": '
                  '{"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}')
    assert len(p["Alarms"]) == 2
    d = berth.aws("application-autoscaling", "describe-scaling-policies", "--service-namespace", "ecs",
                  "--resource-id", service)
    assert [x["PolicyName"] for x in d["ScalingPolicies"]] == ["cli-cpu"]
    e = berth.aws("application-autoscaling", "delete-scaling-policy", *common, "--policy-name", "nope",
                  check=False)
    assert e.returncode != 0 and "ObjectNotFoundException" in e.stderr


def test_berth_service_autoscale(berth, aas, service):
    name = service.split("/")[-1]
    p = berth.cli("service", "autoscale", name, "--min", "1", "--max", "4", "--cpu", "60",
                  "--memory", "70", "--scale-in-cooldown", "120", "--cluster", "default")
    assert service in p.stdout
    t = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[service])["ScalableTargets"][0]
    assert (t["MinCapacity"], t["MaxCapacity"]) == (1, 4)
    got = {x["PolicyName"]: x["TargetTrackingScalingPolicyConfiguration"] for x in
           aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)["ScalingPolicies"]}
    assert sorted(got) == ["cpu-target", "memory-target"]
    assert got["cpu-target"]["TargetValue"] == 60 and got["cpu-target"]["ScaleInCooldown"] == 120
    assert got["memory-target"]["PredefinedMetricSpecification"]["PredefinedMetricType"] == \
        "ECSServiceAverageMemoryUtilization"
    # Running it again updates in place.
    berth.cli("service", "autoscale", name, "--min", "2", "--max", "4", "--cpu", "50", "--cluster", "default")
    t = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[service])["ScalableTargets"][0]
    assert t["MinCapacity"] == 2
    bad = berth.cli("service", "autoscale", name, "--min", "1", "--max", "4", check=False)
    assert bad.returncode != 0
