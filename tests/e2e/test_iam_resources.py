"""IAM on the resources of every API, not only ECS's: a policy on one SSM parameter, one
secret, one target group, one security group, one log group, one user allows that one and
refuses its neighbour, worded as each protocol words it; `aws:ResourceTag/...`,
`aws:RequestTag/...` and `aws:TagKeys` conditions on ELBv2, SSM, Secrets Manager and
Application Auto Scaling resources; a policy variable; and per-action
throttle buckets (a burst of RunTask is throttled while DescribeClusters still answers).
"""
import json
import tempfile
import time

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, Berth, expect_error, register, uniq

BERTH_AGENT = False
ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def iam(berth):
    return berth.client("iam")


def user_with(berth, iam, *statements):
    name = uniq("u")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}))
    key = iam.create_access_key(UserName=name)["AccessKey"]

    def client(service):
        return berth.client(service, access_key=key["AccessKeyId"],
                            secret_key=key["SecretAccessKey"], strict=False)
    return name, client


def denied(user, action, resource):
    return (f"User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: "
            f"{action} on resource: {resource} because no identity-based policy allows the "
            f"{action} action")


def refused(fn, code, status, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    r = e.value.response
    assert r["Error"]["Code"] == code, r
    assert r["ResponseMetadata"]["HTTPStatusCode"] == status, r
    return r["Error"]["Message"]


def test_one_parameter_allowed_its_neighbour_refused(berth, iam):
    ssm = berth.client("ssm")
    a, b = f"/{uniq('app')}/a", f"/{uniq('app')}/b"
    for n in (a, b):
        ssm.put_parameter(Name=n, Value="v", Type="String")
    arn = lambda n: f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{n}"
    user, client = user_with(berth, iam, {
        "Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters"],
        "Resource": arn(a)})
    u = client("ssm")
    assert u.get_parameter(Name=a)["Parameter"]["Value"] == "v"
    assert u.get_parameter(Name=f"{a}:1")["Parameter"]["Value"] == "v"
    e = expect_error("AccessDeniedException", u.get_parameter, Name=b)
    assert e.response["Error"]["Message"] == denied(user, "ssm:GetParameter", arn(b))
    expect_error("AccessDeniedException", u.get_parameters, Names=[a, b])
    # DescribeParameters names no parameter: it is on `*`, which this policy does not cover.
    e = expect_error("AccessDeniedException", u.describe_parameters)
    assert e.response["Error"]["Message"] == denied(user, "ssm:DescribeParameters", "*")


def test_one_secret_allowed_by_its_name_pattern(berth, iam):
    sm = berth.client("secretsmanager")
    a, b = uniq("sa"), uniq("sb")
    arns = {n: sm.create_secret(Name=n, SecretString="s3cret")["ARN"] for n in (a, b)}
    user, client = user_with(berth, iam, {
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
        "Resource": f"arn:aws:secretsmanager:*:*:secret:{a}-??????"})
    u = client("secretsmanager")
    assert u.get_secret_value(SecretId=a)["SecretString"] == "s3cret"
    assert u.get_secret_value(SecretId=arns[a])["SecretString"] == "s3cret"
    e = expect_error("AccessDeniedException", u.get_secret_value, SecretId=b)
    # The name resolves to the secret's full ARN, suffix and all.
    assert e.response["Error"]["Message"] == denied(
        user, "secretsmanager:GetSecretValue", arns[b])


def test_one_target_group_allowed_its_neighbour_refused(berth, iam):
    elb = berth.client("elbv2")
    tgs = [elb.create_target_group(Name=uniq("tg"), Protocol="HTTP", Port=80, TargetType="ip")
           ["TargetGroups"][0]["TargetGroupArn"] for _ in range(2)]
    user, client = user_with(berth, iam, {
        "Effect": "Allow", "Action": "elasticloadbalancing:ModifyTargetGroup",
        "Resource": tgs[0]}, {
        "Effect": "Allow", "Action": "elasticloadbalancing:Describe*", "Resource": "*"})
    u = client("elbv2")
    assert len(u.describe_target_groups(TargetGroupArns=tgs)["TargetGroups"]) == 2
    u.modify_target_group(TargetGroupArn=tgs[0], HealthCheckPath="/ok")
    msg = refused(u.modify_target_group, "AccessDenied", 403, TargetGroupArn=tgs[1],
                  HealthCheckPath="/ok")
    assert msg == denied(user, "elasticloadbalancing:ModifyTargetGroup", tgs[1])
    got = {t["TargetGroupArn"]: t["HealthCheckPath"]
           for t in elb.describe_target_groups(TargetGroupArns=tgs)["TargetGroups"]}
    assert got[tgs[0]] == "/ok" and got[tgs[1]] != "/ok"


def test_ec2_and_logs_resources(berth, iam):
    ec2 = berth.client("ec2")
    names = [uniq("grp") for _ in range(2)]
    sgs = [ec2.create_security_group(GroupName=n, Description="d")["GroupId"] for n in names]
    logs = berth.client("logs")
    groups = [f"/{uniq('lg')}" for _ in range(2)]
    for g in groups:
        logs.create_log_group(logGroupName=g)
    user, client = user_with(berth, iam, {
        "Effect": "Allow", "Action": "ec2:DeleteSecurityGroup",
        "Resource": f"arn:aws:ec2:*:*:security-group/{sgs[0]}"}, {
        "Effect": "Allow", "Action": "logs:CreateLogStream",
        "Resource": f"arn:aws:logs:*:*:log-group:{groups[0]}"})
    u = client("ec2")
    u.delete_security_group(GroupId=sgs[0])
    msg = refused(u.delete_security_group, "UnauthorizedOperation", 403, GroupId=sgs[1])
    assert msg == "You are not authorized to perform this operation. " + denied(
        user, "ec2:DeleteSecurityGroup", f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{sgs[1]}")
    # By name (the default VPC's group): resolved to the same ARN, refused the same way.
    assert refused(u.delete_security_group, "UnauthorizedOperation", 403, GroupName=names[1]) == msg
    ul = client("logs")
    ul.create_log_stream(logGroupName=groups[0], logStreamName="s")
    e = expect_error("AccessDeniedException", ul.create_log_stream, logGroupName=groups[1],
                     logStreamName="s")
    assert e.response["Error"]["Message"] == denied(
        user, "logs:CreateLogStream", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{groups[1]}")


def test_iam_user_arn_and_policy_variable(berth, iam):
    other = uniq("other")
    iam.create_user(UserName=other, Path="/team/")
    user, client = user_with(berth, iam, {
        "Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::*:user/u*"}, {
        # A policy variable: each user manages its own keys only.
        "Effect": "Allow", "Action": ["iam:CreateAccessKey", "iam:ListAccessKeys"],
        "Resource": "arn:aws:iam::*:user/${aws:username}"})
    ui = client("iam")
    assert ui.get_user()["User"]["UserName"] == user
    msg = refused(ui.get_user, "AccessDenied", 403, UserName=other)
    # The user's path is part of its ARN.
    assert msg == denied(user, "iam:GetUser", f"arn:aws:iam::{ACCOUNT}:user/team/{other}")
    assert len(ui.list_access_keys()["AccessKeyMetadata"]) == 1
    ui.create_access_key()
    assert len(ui.list_access_keys(UserName=user)["AccessKeyMetadata"]) == 2
    msg = refused(ui.create_access_key, "AccessDenied", 403, UserName=other)
    assert msg == denied(user, "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/team/{other}")


def test_resource_and_request_tag_conditions(berth, iam):
    ssm, sm, elb = berth.client("ssm"), berth.client("secretsmanager"), berth.client("elbv2")
    web, db = [{"Key": "team", "Value": "web"}], [{"Key": "team", "Value": "db"}]
    p_web, p_db = uniq("pw"), uniq("pd")
    ssm.put_parameter(Name=p_web, Value="v", Type="String", Tags=web)
    ssm.put_parameter(Name=p_db, Value="v", Type="String", Tags=db)
    s_web, s_db = uniq("sw"), uniq("sd")
    sm.create_secret(Name=s_web, SecretString="x", Tags=web)
    sm.create_secret(Name=s_db, SecretString="x", Tags=db)
    tg_web, tg_db = [elb.create_target_group(Name=uniq("tg"), Protocol="HTTP", Port=80,
                                             TargetType="ip", Tags=t)
                     ["TargetGroups"][0]["TargetGroupArn"] for t in (web, db)]
    on_web = {"StringEquals": {"aws:ResourceTag/team": "web"}}
    user, client = user_with(berth, iam, {
        "Effect": "Allow", "Action": ["ssm:GetParameter", "secretsmanager:DescribeSecret",
                                      "elasticloadbalancing:ModifyTargetGroup"],
        "Resource": "*", "Condition": on_web}, {
        "Effect": "Allow", "Action": ["ssm:PutParameter", "secretsmanager:CreateSecret"],
        "Resource": "*", "Condition": {"StringEquals": {"aws:RequestTag/team": "web"}}})
    u_ssm, u_sm, u_elb = client("ssm"), client("secretsmanager"), client("elbv2")
    u_ssm.get_parameter(Name=p_web)
    expect_error("AccessDeniedException", u_ssm.get_parameter, Name=p_db)
    u_sm.describe_secret(SecretId=s_web)
    expect_error("AccessDeniedException", u_sm.describe_secret, SecretId=s_db)
    u_elb.modify_target_group(TargetGroupArn=tg_web, HealthCheckPath="/ok")
    refused(u_elb.modify_target_group, "AccessDenied", 403, TargetGroupArn=tg_db,
            HealthCheckPath="/ok")
    # A create is allowed only with the tag the condition asks for.
    u_ssm.put_parameter(Name=uniq("new"), Value="v", Type="String", Tags=web)
    expect_error("AccessDeniedException", u_ssm.put_parameter, Name=uniq("new"), Value="v",
                 Type="String", Tags=db)
    expect_error("AccessDeniedException", u_ssm.put_parameter, Name=uniq("new"), Value="v",
                 Type="String")
    u_sm.create_secret(Name=uniq("new"), SecretString="x", Tags=web)
    expect_error("AccessDeniedException", u_sm.create_secret, Name=uniq("new"), SecretString="x")


def test_tag_keys_under_set_operators(berth, iam):
    user, client = user_with(berth, iam, {
        "Effect": "Allow", "Action": "elasticloadbalancing:CreateTargetGroup", "Resource": "*",
        "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost"]},
                      "ForAnyValue:StringEquals": {"aws:TagKeys": "team"}}})
    u = client("elbv2")

    def create(*keys):
        tags = {"Tags": [{"Key": k, "Value": "v"} for k in keys]} if keys else {}
        return u.create_target_group(Name=uniq("tg"), Protocol="HTTP", Port=80, TargetType="ip",
                                     **tags)
    create("team")
    create("team", "cost")
    for keys in [(), ("cost",), ("team", "other")]:
        with pytest.raises(ClientError) as e:
            create(*keys)
        assert e.value.response["Error"]["Code"] == "AccessDenied", keys
    # A plain operator on the multivalued key is refused when the policy is stored, by name.
    e = expect_error("MalformedPolicyDocument", iam.put_user_policy, UserName=user,
                     PolicyName="plain", PolicyDocument=json.dumps({"Statement": {
                         "Effect": "Allow", "Action": "*", "Resource": "*",
                         "Condition": {"StringEquals": {"aws:TagKeys": "team"}}}}))
    assert "aws:TagKeys" in e.response["Error"]["Message"]


@pytest.fixture(scope="module")
def throttled():
    with tempfile.TemporaryDirectory() as d:
        b = Berth(d, agent=False, args=["--api-rate", "1", "--api-burst", "10"]).start()
        yield b
        b.stop()


def test_a_burst_of_run_task_is_throttled_while_describe_answers(throttled):
    ecs = throttled.client()  # max_attempts 1: boto3 would otherwise retry the throttle
    # --api-rate 1 --api-burst 10: launches get a fifth (burst 2, 0.2/s), reads all of it.
    outcomes, start = [], time.monotonic()
    for _ in range(8):
        try:
            ecs.run_task(taskDefinition="nothing:1", cluster=uniq("none"))
            outcomes.append("ran")
        except ClientError as e:
            r = e.response
            if r["Error"]["Code"] == "ThrottlingException":
                assert r["Error"]["Message"] == "Rate exceeded"
                outcomes.append("throttled")
            else:
                outcomes.append("answered")  # past the throttle: the cluster does not exist
    elapsed = time.monotonic() - start
    answered = outcomes.count("answered")
    assert outcomes[:2] == ["answered"] * 2, outcomes
    assert answered <= 2 + 0.2 * elapsed + 1, (outcomes, elapsed)
    assert "throttled" in outcomes, outcomes
    # The read bucket is untouched by the launches.
    for _ in range(8):
        assert ecs.describe_clusters(clusters=["default"])["failures"] is not None
    # And writes have their own (half): CreateCluster still answers.
    ecs.create_cluster(clusterName=uniq("c"))


def test_scalable_target_by_resource_id_and_tags(berth, iam):
    ecs, aas = berth.client(), berth.client("application-autoscaling")
    family = uniq("iam-td")
    register(ecs, family)
    ids = []
    for team in ("web", "db"):
        name = uniq("svc")
        ecs.create_service(cluster="default", serviceName=name, taskDefinition=family,
                           desiredCount=0)
        ids.append(f"service/default/{name}")
        aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=ids[-1],
                                     ScalableDimension="ecs:service:DesiredCount",
                                     MinCapacity=0, MaxCapacity=2,
                                     Tags={"team": team})
    arns = {t["ResourceId"]: t["ScalableTargetARN"] for t in aas.describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=ids)["ScalableTargets"]}
    user, client = user_with(berth, iam, {
        "Effect": "Allow", "Action": "application-autoscaling:RegisterScalableTarget",
        "Resource": "*", "Condition": {"StringEquals": {"aws:ResourceTag/team": "web"}}})
    u = client("application-autoscaling")
    target = lambda rid: {"ServiceNamespace": "ecs", "ResourceId": rid,  # noqa: E731
                          "ScalableDimension": "ecs:service:DesiredCount"}
    u.register_scalable_target(**target(ids[0]), MaxCapacity=3)
    e = expect_error("AccessDeniedException", u.register_scalable_target, **target(ids[1]),
                     MaxCapacity=3)
    # The resource id resolves to the target's ARN.
    assert e.response["Error"]["Message"] == denied(
        user, "application-autoscaling:RegisterScalableTarget", arns[ids[1]])
    for rid in ids:
        aas.deregister_scalable_target(**target(rid))
        ecs.delete_service(cluster="default", service=rid.rsplit("/", 1)[1], force=True)
