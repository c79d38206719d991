"""The ELBv2 API over the AWS Query protocol, driven by boto3 and the aws CLI.

Load balancers, target groups, listeners, rules, targets and their health, attributes and tags.
Listener ports are free ports: once the data plane binds them, tests must not collide.
"""
import datetime
import json
import http.client
import urllib.parse

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY, expect_error, free_port, uniq

BERTH_AGENT = False  # API-level tests: no local agent needed

ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def elb(berth):
    c = berth.client("elbv2")
    c._berth = berth  # for the few raw requests botocore would refuse to send
    return c


def name(prefix):
    # ELB names: letters, digits and hyphens only, at most 32.
    return uniq(prefix).replace("_", "-")[:32].strip("-")


def make_lb(elb, **kw):
    return elb.create_load_balancer(Name=name("lb"), **kw)["LoadBalancers"][0]


def make_tg(elb, port=8080, **kw):
    return elb.create_target_group(Name=name("tg"), Protocol="HTTP", Port=port, **kw)["TargetGroups"][0]


def make_listener(elb, lb, tg, port=None):
    return elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port or free_port(),
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )["Listeners"][0]


# ---------------------------------------------------------------------------------------------
# Load balancers

def test_create_describe_delete_load_balancer(elb):
    n = name("lb")
    lb = elb.create_load_balancer(Name=n, Subnets=["subnet-1", "subnet-2"],
                                  Tags=[{"Key": "team", "Value": "web"}])["LoadBalancers"][0]
    assert lb["LoadBalancerName"] == n
    assert lb["LoadBalancerArn"].startswith(
        f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/{n}/")
    assert len(lb["LoadBalancerArn"].rsplit("/", 1)[1]) == 16
    assert lb["DNSName"] == "127.0.0.1"
    assert lb["State"] == {"Code": "active"}
    assert lb["Type"] == "application"
    assert lb["Scheme"] == "internet-facing"
    assert isinstance(lb["CreatedTime"], datetime.datetime)
    assert [z["SubnetId"] for z in lb["AvailabilityZones"]] == ["subnet-1", "subnet-2"]

    by_name = elb.describe_load_balancers(Names=[n])["LoadBalancers"]
    assert [x["LoadBalancerArn"] for x in by_name] == [lb["LoadBalancerArn"]]
    by_arn = elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])["LoadBalancers"]
    assert by_arn[0]["LoadBalancerName"] == n
    assert n in [x["LoadBalancerName"] for x in elb.describe_load_balancers()["LoadBalancers"]]

    # Same settings again: idempotent. Different scheme: duplicate name.
    again = elb.create_load_balancer(Name=n)["LoadBalancers"][0]
    assert again["LoadBalancerArn"] == lb["LoadBalancerArn"]
    expect_error("DuplicateLoadBalancerName", elb.create_load_balancer, Name=n, Scheme="internal")

    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    expect_error("LoadBalancerNotFound", elb.describe_load_balancers, Names=[n])
    expect_error("LoadBalancerNotFound", elb.describe_load_balancers, LoadBalancerArns=[lb["LoadBalancerArn"]])
    expect_error("LoadBalancerNotFound", elb.delete_load_balancer, LoadBalancerArn=lb["LoadBalancerArn"])


@pytest.mark.parametrize("bad", ["-lead", "trail-", "under_score", "x" * 33, "internal-x"])
def test_load_balancer_names_are_validated(elb, bad):
    expect_error("ValidationError", elb.create_load_balancer, Name=bad)


def test_describe_load_balancers_pages(elb):
    made = {make_lb(elb)["LoadBalancerArn"] for _ in range(5)}
    seen, kw = [], {"PageSize": 2}
    while True:
        r = elb.describe_load_balancers(**kw)
        assert len(r["LoadBalancers"]) <= 2
        seen += [x["LoadBalancerArn"] for x in r["LoadBalancers"]]
        if "NextMarker" not in r:
            break
        kw["Marker"] = r["NextMarker"]
    assert made <= set(seen)
    assert len(seen) == len(set(seen))
    # The paginator botocore ships walks the same pages.
    pages = elb.get_paginator("describe_load_balancers").paginate(PaginationConfig={"PageSize": 3})
    assert made <= {x["LoadBalancerArn"] for p in pages for x in p["LoadBalancers"]}


def test_delete_load_balancer_deletes_listeners_and_rules(elb):
    lb, tg = make_lb(elb), make_tg(elb)
    lis = make_listener(elb, lb, tg)
    rule = elb.create_rule(ListenerArn=lis["ListenerArn"], Priority=1,
                           Conditions=[{"Field": "path-pattern", "Values": ["/a"]}],
                           Actions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Rules"][0]
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    expect_error("ListenerNotFound", elb.describe_listeners, ListenerArns=[lis["ListenerArn"]])
    expect_error("RuleNotFound", elb.describe_rules, RuleArns=[rule["RuleArn"]])
    # The target group is free again, and so is the port.
    assert elb.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])["TargetGroups"][0]["LoadBalancerArns"] == []
    lb2 = make_lb(elb)
    make_listener(elb, lb2, tg, port=lis["Port"])
    elb.delete_load_balancer(LoadBalancerArn=lb2["LoadBalancerArn"])
    elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])


# ---------------------------------------------------------------------------------------------
# Target groups

def test_target_group_defaults_and_describe(elb):
    n = name("tg")
    tg = elb.create_target_group(Name=n, Protocol="HTTP", Port=8080, VpcId="vpc-1")["TargetGroups"][0]
    assert tg["TargetGroupArn"].startswith(f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{n}/")
    assert tg["Port"] == 8080 and tg["Protocol"] == "HTTP" and tg["TargetType"] == "instance"
    assert tg["HealthCheckPath"] == "/"
    assert tg["HealthCheckIntervalSeconds"] == 30
    assert tg["HealthCheckTimeoutSeconds"] == 5
    assert tg["HealthyThresholdCount"] == 5
    assert tg["UnhealthyThresholdCount"] == 2
    assert tg["Matcher"] == {"HttpCode": "200"}
    assert tg["HealthCheckPort"] == "traffic-port"
    assert tg["HealthCheckEnabled"] is True
    assert tg["VpcId"] == "vpc-1"
    assert tg["LoadBalancerArns"] == []

    assert elb.describe_target_groups(Names=[n])["TargetGroups"][0]["TargetGroupArn"] == tg["TargetGroupArn"]
    assert elb.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])["TargetGroups"][0]["TargetGroupName"] == n
    assert n in [t["TargetGroupName"] for t in elb.describe_target_groups()["TargetGroups"]]
    expect_error("TargetGroupNotFound", elb.describe_target_groups, Names=["nope-" + n[:20]])
    expect_error("DuplicateTargetGroupName", elb.create_target_group, Name=n, Protocol="HTTP", Port=9090)
    ip = elb.create_target_group(Name=name("tgip"), Protocol="HTTP", Port=80, TargetType="ip",
                                 HealthCheckPath="/healthz", Matcher={"HttpCode": "200-299"},
                                 HealthCheckIntervalSeconds=10, HealthCheckTimeoutSeconds=3)["TargetGroups"][0]
    assert ip["TargetType"] == "ip" and ip["HealthCheckPath"] == "/healthz"
    assert ip["Matcher"]["HttpCode"] == "200-299" and ip["HealthCheckIntervalSeconds"] == 10


@pytest.mark.parametrize("kw,code", [
    ({"Name": "bad_name", "Port": 80}, "ValidationError"),
    ({"Port": 80, "TargetType": "lambda"}, "ValidationError"),
    ({"Port": 80, "Matcher": {"HttpCode": "600"}}, "ValidationError"),
    ({"Port": 80, "HealthCheckIntervalSeconds": 5, "HealthCheckTimeoutSeconds": 10}, "InvalidConfigurationRequest"),
])
def test_target_group_validation(elb, kw, code):
    kw = {"Name": name("tgv"), "Protocol": "HTTP", **kw}
    expect_error(code, elb.create_target_group, **kw)


def test_modify_target_group(elb):
    tg = make_tg(elb)
    out = elb.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckPath="/up",
                                  HealthyThresholdCount=3, Matcher={"HttpCode": "200,204"})["TargetGroups"][0]
    assert out["HealthCheckPath"] == "/up" and out["HealthyThresholdCount"] == 3
    assert out["Matcher"]["HttpCode"] == "200,204"
    again = elb.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])["TargetGroups"][0]
    assert again["HealthCheckPath"] == "/up"
    expect_error("ValidationError", elb.modify_target_group, TargetGroupArn=tg["TargetGroupArn"],
                 HealthCheckPath="no-slash")
    expect_error("TargetGroupNotFound", elb.modify_target_group,
                 TargetGroupArn=tg["TargetGroupArn"][:-4] + "0000", HealthCheckPath="/")


def test_target_group_attributes(elb):
    tg = make_tg(elb)
    arn = tg["TargetGroupArn"]
    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]}
    assert attrs["deregistration_delay.timeout_seconds"] == "300"
    assert attrs["load_balancing.algorithm.type"] == "round_robin"
    assert attrs["stickiness.enabled"] == "false"
    out = elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "5"},
        {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"},
    ])["Attributes"]
    got = {a["Key"]: a["Value"] for a in out}
    assert got["deregistration_delay.timeout_seconds"] == "5"
    assert got["load_balancing.algorithm.type"] == "least_outstanding_requests"
    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]}
    assert attrs["deregistration_delay.timeout_seconds"] == "5"
    for bad in [{"Key": "deregistration_delay.timeout_seconds", "Value": "-1"},
                {"Key": "load_balancing.algorithm.type", "Value": "random"},
                {"Key": "stickiness.enabled", "Value": "maybe"},
                {"Key": "no.such.key", "Value": "1"}]:
        expect_error("ValidationError", elb.modify_target_group_attributes, TargetGroupArn=arn, Attributes=[bad])


def test_delete_target_group_in_use(elb):
    lb, tg = make_lb(elb), make_tg(elb)
    lis = make_listener(elb, lb, tg)
    described = elb.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])["TargetGroups"][0]
    assert described["LoadBalancerArns"] == [lb["LoadBalancerArn"]]
    by_lb = elb.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"]
    assert [t["TargetGroupArn"] for t in by_lb] == [tg["TargetGroupArn"]]
    expect_error("ResourceInUse", elb.delete_target_group, TargetGroupArn=tg["TargetGroupArn"])
    elb.delete_listener(ListenerArn=lis["ListenerArn"])
    elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    expect_error("TargetGroupNotFound", elb.describe_target_groups, TargetGroupArns=[tg["TargetGroupArn"]])
    # Deleting again is not an error, as in ELB.
    elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])


# ---------------------------------------------------------------------------------------------
# Listeners

def test_listener_lifecycle(elb):
    lb, tg, tg2 = make_lb(elb), make_tg(elb), make_tg(elb)
    port = free_port()
    lis = make_listener(elb, lb, tg, port=port)
    assert lis["ListenerArn"].startswith(
        f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/app/{lb['LoadBalancerName']}/")
    assert lis["Port"] == port and lis["Protocol"] == "HTTP"
    assert lis["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}]
    listed = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert [x["ListenerArn"] for x in listed] == [lis["ListenerArn"]]
    assert elb.describe_listeners(ListenerArns=[lis["ListenerArn"]])["Listeners"][0]["Port"] == port

    # The port is taken for every load balancer: they all bind on one host.
    other = make_lb(elb)
    expect_error("DuplicateListener", make_listener, elb, other, tg, port=port)

    new_port = free_port()
    out = elb.modify_listener(ListenerArn=lis["ListenerArn"], Port=new_port, DefaultActions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": tg["TargetGroupArn"], "Weight": 3},
            {"TargetGroupArn": tg2["TargetGroupArn"], "Weight": 1}]}}])["Listeners"][0]
    assert out["Port"] == new_port
    weights = {t["TargetGroupArn"]: t["Weight"] for t in out["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]}
    assert weights == {tg["TargetGroupArn"]: 3, tg2["TargetGroupArn"]: 1}
    # The old port is free now.
    make_listener(elb, other, tg, port=port)
    assert lb["LoadBalancerArn"] in elb.describe_target_groups(
        TargetGroupArns=[tg2["TargetGroupArn"]])["TargetGroups"][0]["LoadBalancerArns"]

    elb.delete_listener(ListenerArn=lis["ListenerArn"])
    expect_error("ListenerNotFound", elb.describe_listeners, ListenerArns=[lis["ListenerArn"]])
    expect_error("ListenerNotFound", elb.delete_listener, ListenerArn=lis["ListenerArn"])


def test_listener_actions(elb):
    lb, tg = make_lb(elb), make_tg(elb)
    fixed = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=free_port(),
                                DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                                    "StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no <route>"}}])
    act = fixed["Listeners"][0]["DefaultActions"][0]
    assert act["FixedResponseConfig"] == {"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no <route>"}
    redirect = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=free_port(),
                                   DefaultActions=[{"Type": "redirect", "RedirectConfig": {
                                       "Protocol": "HTTP", "Port": "8443", "StatusCode": "HTTP_301"}}])
    assert redirect["Listeners"][0]["DefaultActions"][0]["RedirectConfig"]["StatusCode"] == "HTTP_301"
    arn = lb["LoadBalancerArn"]
    expect_error("TargetGroupNotFound", elb.create_listener, LoadBalancerArn=arn, Protocol="HTTP", Port=free_port(),
                 DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"][:-4] + "0000"}])
    expect_error("ValidationError", elb.create_listener, LoadBalancerArn=arn, Protocol="HTTP", Port=free_port(),
                 DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "302"}}])
    expect_error("UnsupportedProtocol", elb.create_listener, LoadBalancerArn=arn, Protocol="TCP", Port=free_port(),
                 DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    expect_error("LoadBalancerNotFound", elb.create_listener, LoadBalancerArn=arn[:-4] + "0000", Protocol="HTTP",
                 Port=free_port(), DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    expect_error("ValidationError", elb.describe_listeners)


# ---------------------------------------------------------------------------------------------
# Rules

@pytest.fixture
def listener(elb):
    lb, tg = make_lb(elb), make_tg(elb)
    lis = make_listener(elb, lb, tg)
    yield lis, tg
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


def fwd(tg):
    return [{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}]


def test_rules_lifecycle(elb, listener):
    lis, tg = listener
    la = lis["ListenerArn"]
    r1 = elb.create_rule(ListenerArn=la, Priority=10, Actions=fwd(tg),
                         Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}])["Rules"][0]
    assert r1["Priority"] == "10" and r1["IsDefault"] is False
    assert r1["RuleArn"].startswith(la.replace(":listener/", ":listener-rule/") + "/")
    r2 = elb.create_rule(ListenerArn=la, Priority=5, Actions=fwd(tg), Conditions=[
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["api.example.com"]}},
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["blue"]}},
        {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET", "HEAD"]}},
        {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}]}},
        {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}},
    ])["Rules"][0]
    conds = {c["Field"]: c for c in r2["Conditions"]}
    assert conds["http-header"]["HttpHeaderConfig"] == {"HttpHeaderName": "X-Env", "Values": ["blue"]}
    assert conds["query-string"]["QueryStringConfig"]["Values"] == [{"Key": "v", "Value": "2"}]

    rules = elb.describe_rules(ListenerArn=la)["Rules"]
    assert [r["Priority"] for r in rules] == ["5", "10", "default"]
    default = rules[-1]
    assert default["IsDefault"] is True and default["Conditions"] == []
    assert default["Actions"] == fwd(tg)
    assert elb.describe_rules(RuleArns=[default["RuleArn"]])["Rules"][0]["IsDefault"] is True

    expect_error("PriorityInUse", elb.create_rule, ListenerArn=la, Priority=10, Actions=fwd(tg),
                 Conditions=[{"Field": "path-pattern", "Values": ["/x"]}])
    expect_error("ValidationError", elb.create_rule, ListenerArn=la, Priority=11, Actions=fwd(tg),
                 Conditions=[{"Field": "cookie", "Values": ["x"]}])
    expect_error("ListenerNotFound", elb.create_rule, ListenerArn=la[:-4] + "0000", Priority=11, Actions=fwd(tg),
                 Conditions=[{"Field": "path-pattern", "Values": ["/x"]}])

    mod = elb.modify_rule(RuleArn=r1["RuleArn"], Conditions=[{"Field": "path-pattern", "Values": ["/v2/*"]}],
                          Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}])["Rules"][0]
    assert mod["Conditions"][0]["Values"] == ["/v2/*"]
    assert mod["Actions"][0]["Type"] == "fixed-response"
    expect_error("OperationNotPermitted", elb.modify_rule, RuleArn=default["RuleArn"],
                 Conditions=[{"Field": "path-pattern", "Values": ["/"]}])

    # Swap the two priorities in one call; then a clash is refused.
    out = elb.set_rule_priorities(RulePriorities=[{"RuleArn": r1["RuleArn"], "Priority": 5},
                                                  {"RuleArn": r2["RuleArn"], "Priority": 10}])["Rules"]
    assert {r["RuleArn"]: r["Priority"] for r in out} == {r1["RuleArn"]: "5", r2["RuleArn"]: "10"}
    assert [r["RuleArn"] for r in elb.describe_rules(ListenerArn=la)["Rules"][:2]] == [r1["RuleArn"], r2["RuleArn"]]
    expect_error("PriorityInUse", elb.set_rule_priorities, RulePriorities=[{"RuleArn": r1["RuleArn"], "Priority": 10}])
    expect_error("OperationNotPermitted", elb.set_rule_priorities,
                 RulePriorities=[{"RuleArn": default["RuleArn"], "Priority": 3}])
    # The freed priority can be used again.
    elb.create_rule(ListenerArn=la, Priority=7, Actions=fwd(tg), Conditions=[{"Field": "path-pattern", "Values": ["/7"]}])

    elb.delete_rule(RuleArn=r1["RuleArn"])
    expect_error("RuleNotFound", elb.describe_rules, RuleArns=[r1["RuleArn"]])
    expect_error("RuleNotFound", elb.delete_rule, RuleArn=r1["RuleArn"])
    expect_error("OperationNotPermitted", elb.delete_rule, RuleArn=default["RuleArn"])
    elb.create_rule(ListenerArn=la, Priority=5, Actions=fwd(tg), Conditions=[{"Field": "path-pattern", "Values": ["/5"]}])


def test_rule_forwarding_marks_target_group_in_use(elb, listener):
    lis, _ = listener
    tg = make_tg(elb)
    r = elb.create_rule(ListenerArn=lis["ListenerArn"], Priority=1, Actions=fwd(tg),
                        Conditions=[{"Field": "path-pattern", "Values": ["/r"]}])["Rules"][0]
    lbs = elb.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])["TargetGroups"][0]["LoadBalancerArns"]
    assert len(lbs) == 1
    expect_error("ResourceInUse", elb.delete_target_group, TargetGroupArn=tg["TargetGroupArn"])
    elb.delete_rule(RuleArn=r["RuleArn"])
    elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])


# ---------------------------------------------------------------------------------------------
# Targets and health

def health(elb, tg, **kw):
    return elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"], **kw)["TargetHealthDescriptions"]


def test_register_deregister_and_health(elb):
    tg = make_tg(elb, port=8080, TargetType="ip")
    arn = tg["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.1"}, {"Id": "10.0.0.2", "Port": 9000}])
    # Registering again is idempotent.
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.1"}])
    rows = health(elb, tg)
    got = {(h["Target"]["Id"], h["Target"]["Port"]): h for h in rows}
    assert set(got) == {("10.0.0.1", 8080), ("10.0.0.2", 9000)}
    h = got[("10.0.0.1", 8080)]
    assert h["TargetHealth"]["State"] == "unused"
    assert h["TargetHealth"]["Reason"] == "Target.NotInUse"
    assert h["HealthCheckPort"] == "8080"

    # Once a load balancer forwards to it, targets start in `initial` (until the data plane reports).
    lb = make_lb(elb)
    make_listener(elb, lb, tg)
    states = {h["TargetHealth"]["State"] for h in health(elb, tg)}
    assert states <= {"initial", "healthy", "unhealthy"}, states

    only = health(elb, tg, Targets=[{"Id": "10.0.0.2", "Port": 9000}])
    assert [(h["Target"]["Id"], h["Target"]["Port"]) for h in only] == [("10.0.0.2", 9000)]
    missing = health(elb, tg, Targets=[{"Id": "10.9.9.9"}])
    assert missing[0]["TargetHealth"]["Reason"] == "Target.NotRegistered"

    elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.2", "Port": 9000}])
    assert {h["Target"]["Id"] for h in health(elb, tg) if h["TargetHealth"]["State"] != "draining"} == {"10.0.0.1"}
    expect_error("InvalidTarget", elb.deregister_targets, TargetGroupArn=arn, Targets=[{"Id": "10.0.0.2", "Port": 9000}])
    expect_error("InvalidTarget", elb.register_targets, TargetGroupArn=arn, Targets=[{"Id": "not-an-ip"}])
    status, _, body = query_call_raw_register(elb, arn)
    assert status == 400 and b"<Code>InvalidTarget</Code>" in body, body
    expect_error("TargetGroupNotFound", elb.register_targets, TargetGroupArn=arn[:-4] + "0000",
                 Targets=[{"Id": "10.0.0.1"}])
    expect_error("TargetGroupNotFound", elb.describe_target_health, TargetGroupArn=arn[:-4] + "0000")
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


def query_call_raw_register(elb, arn):
    """RegisterTargets with port 0, which botocore would refuse before sending."""
    return query_call(elb._berth, {"Action": "RegisterTargets", "TargetGroupArn": arn,
                                   "Targets.member.1.Id": "10.0.0.3", "Targets.member.1.Port": "0"})


def test_too_many_targets(elb):
    tg = make_tg(elb, TargetType="ip")
    for start in range(0, 1000, 250):
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"],
                             Targets=[{"Id": f"10.1.{i // 250}.{i % 250}"} for i in range(start, start + 250)])
    expect_error("TooManyTargets", elb.register_targets, TargetGroupArn=tg["TargetGroupArn"],
                 Targets=[{"Id": "10.2.0.1"}])
    assert len(health(elb, tg)) == 1000


# ---------------------------------------------------------------------------------------------
# Tags

def test_tags(elb):
    lb = make_lb(elb, Tags=[{"Key": "born", "Value": "yes"}])
    tg = make_tg(elb)
    arns = [lb["LoadBalancerArn"], tg["TargetGroupArn"]]
    elb.add_tags(ResourceArns=arns, Tags=[{"Key": "team", "Value": "web"}, {"Key": "born", "Value": "again"}])
    desc = {d["ResourceArn"]: {t["Key"]: t["Value"] for t in d["Tags"]}
            for d in elb.describe_tags(ResourceArns=arns)["TagDescriptions"]}
    assert desc == {lb["LoadBalancerArn"]: {"born": "again", "team": "web"}, tg["TargetGroupArn"]: {"born": "again", "team": "web"}}
    elb.remove_tags(ResourceArns=arns, TagKeys=["born"])
    desc = elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])["TagDescriptions"][0]
    assert desc["Tags"] == [{"Key": "team", "Value": "web"}]
    expect_error("DuplicateTagKeys", elb.add_tags, ResourceArns=arns,
                 Tags=[{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}])
    expect_error("TooManyTags", elb.add_tags, ResourceArns=arns,
                 Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(60)])
    expect_error("LoadBalancerNotFound", elb.describe_tags, ResourceArns=[lb["LoadBalancerArn"][:-4] + "0000"])
    expect_error("TargetGroupNotFound", elb.add_tags, ResourceArns=[tg["TargetGroupArn"][:-4] + "0000"],
                 Tags=[{"Key": "a", "Value": "1"}])


# ---------------------------------------------------------------------------------------------
# Protocol, auth and the aws CLI

def query_call(berth, params, service="elasticloadbalancing", secret_key=SECRET_KEY, sign=True):
    """One hand-made Query request, signed with botocore's own signer: (status, headers, body)."""
    body = urllib.parse.urlencode({"Version": "2015-12-01", **params}).encode()
    u = urllib.parse.urlsplit(berth.endpoint)
    hdrs = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Host": u.netloc}
    if sign:
        req = AWSRequest(method="POST", url=berth.endpoint + "/", data=body, headers=hdrs)
        SigV4Auth(Credentials(ACCESS_KEY, secret_key), service, REGION).add_auth(req)
        hdrs = dict(req.headers.items())
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("POST", "/", body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_raw_query_protocol_answers_xml(berth):
    status, headers, body = query_call(berth, {"Action": "DescribeLoadBalancers"})
    assert status == 200, body
    assert body.startswith(b"<?xml")
    assert b"<DescribeLoadBalancersResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">" in body
    assert b"<RequestId>" in body
    status, _, body = query_call(berth, {"Action": "NoSuchAction"})
    assert status == 400 and b"<Code>InvalidAction</Code>" in body and b"<Type>Sender</Type>" in body


def test_out_of_range_numbers_are_validation_errors(berth, elb):
    """What botocore's own validation stops client-side, sent raw: the server refuses it too."""
    for params in [
        {"Action": "CreateTargetGroup", "Name": name("raw"), "Protocol": "HTTP", "Port": "0"},
        {"Action": "CreateTargetGroup", "Name": name("raw"), "Protocol": "HTTP", "Port": "70000"},
        {"Action": "DescribeLoadBalancers", "PageSize": "401"},
        {"Action": "CreateTargetGroup", "Name": name("raw"), "Protocol": "HTTP", "Port": "eighty"},
    ]:
        status, _, body = query_call(berth, params)
        assert status == 400 and b"<Code>ValidationError</Code>" in body, (params, body)
    lb, tg = make_lb(elb), make_tg(elb)
    lis = make_listener(elb, lb, tg)
    for prio in ("0", "50001"):
        status, _, body = query_call(berth, {
            "Action": "CreateRule", "ListenerArn": lis["ListenerArn"], "Priority": prio,
            "Conditions.member.1.Field": "path-pattern", "Conditions.member.1.Values.member.1": "/x",
            "Actions.member.1.Type": "forward", "Actions.member.1.TargetGroupArn": tg["TargetGroupArn"]})
        assert status == 400 and b"<Code>ValidationError</Code>" in body, body
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


def test_wrong_signature_is_refused(berth, elb):
    bad = berth.client("elbv2", secret_key="wrong-secret")
    e = expect_error("SignatureDoesNotMatch", bad.describe_load_balancers, status=403)
    assert e.response["Error"]["Message"]
    unknown = berth.client("elbv2", access_key="AKIANOTAKEY")
    expect_error("InvalidClientTokenId", unknown.describe_load_balancers, status=403)
    # Signed for another service: refused, and still answered in XML.
    status, _, body = query_call(berth, {"Action": "DescribeLoadBalancers"}, service="ecs")
    assert status == 403 and b"<ErrorResponse" in body
    status, _, body = query_call(berth, {"Action": "DescribeLoadBalancers"}, sign=False)
    assert status == 403 and b"<ErrorResponse" in body


def test_aws_cli(berth):
    n = name("cli")
    lb = berth.aws("elbv2", "create-load-balancer", "--name", n, "--subnets", "subnet-a")["LoadBalancers"][0]
    assert lb["LoadBalancerName"] == n
    tg = berth.aws("elbv2", "create-target-group", "--name", n, "--protocol", "HTTP", "--port", "80",
                   "--target-type", "ip")["TargetGroups"][0]
    port = free_port()
    lis = berth.aws("elbv2", "create-listener", "--load-balancer-arn", lb["LoadBalancerArn"], "--protocol", "HTTP",
                    "--port", str(port), "--default-actions",
                    f"Type=forward,TargetGroupArn={tg['TargetGroupArn']}")["Listeners"][0]
    assert lis["Port"] == port
    berth.aws("elbv2", "register-targets", "--target-group-arn", tg["TargetGroupArn"], "--targets", "Id=10.0.0.5,Port=8080")
    h = berth.aws("elbv2", "describe-target-health", "--target-group-arn", tg["TargetGroupArn"])
    assert h["TargetHealthDescriptions"][0]["Target"] == {"Id": "10.0.0.5", "Port": 8080}
    rules = berth.aws("elbv2", "describe-rules", "--listener-arn", lis["ListenerArn"])["Rules"]
    assert rules[0]["IsDefault"] is True
    p = berth.aws("elbv2", "describe-load-balancers", "--names", "missing-" + n[:20], check=False)
    assert p.returncode != 0 and "LoadBalancerNotFound" in p.stderr
    berth.aws("elbv2", "delete-load-balancer", "--load-balancer-arn", lb["LoadBalancerArn"])
    berth.aws("elbv2", "delete-target-group", "--target-group-arn", tg["TargetGroupArn"])


def test_client_errors_are_clienterror_with_codes(elb):
    with pytest.raises(ClientError) as ei:
        elb.describe_listeners(ListenerArns=[f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/app/x/0/0"])
    assert ei.value.response["Error"]["Code"] == "ListenerNotFound"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_berth_lb_cli(berth):
    n = name("clilb")
    tgn = name("clitg")
    port = free_port()
    berth.cli("lb", "create", n)
    assert n in berth.cli("lb", "ls").stdout
    lbs = json.loads(berth.cli("lb", "ls", "--output", "json").stdout)
    assert n in [x["LoadBalancerName"] for x in lbs]
    berth.cli("lb", "tg", "create", tgn, "--port", "8080", "--health-path", "/healthz")
    tgs = json.loads(berth.cli("lb", "tg", "ls", "--output", "json").stdout)
    mine = [t for t in tgs if t["TargetGroupName"] == tgn]
    assert mine and mine[0]["HealthCheckPath"] == "/healthz"
    out = berth.cli("lb", "listen", n, "--port", str(port), "--forward", tgn).stdout
    assert str(port) in out
    elb = berth.client("elbv2")
    elb.register_targets(TargetGroupArn=mine[0]["TargetGroupArn"], Targets=[{"Id": "10.0.0.9"}])
    health_out = berth.cli("lb", "health", tgn).stdout
    assert "10.0.0.9" in health_out and "initial" in health_out
    p = berth.cli("lb", "rm", "no-such-" + n[:20], check=False)
    assert p.returncode != 0 and "LoadBalancerNotFound" in p.stderr
    berth.cli("lb", "rm", n)
    assert n not in berth.cli("lb", "ls").stdout
