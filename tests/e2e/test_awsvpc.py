"""awsvpc networking on the docker driver: the EC2 subset (VPCs, subnets, security groups)
through the aws CLI and boto3, networkConfiguration checked as ECS checks it, each task with
its own address on the subnet's bridge (two tasks both on port 80, containers of a task on one
localhost), security groups enforced by the host's packet filter (from the host and from
another task), and a service behind a berth load balancer through an `ip` target group.

Each run uses a VPC block of its own (BERTH_DEFAULT_VPC_CIDR) so runs sharing the Docker
daemon never overlap; everything started is removed by scope label, bridge name and chain name.
"""
import ipaddress
import json
import os
import random
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import (
    Agent, Berth, describe_task, free_port, join_token, register, supports_flag, uniq, wait_for,
    wait_task,
)
from conftest import docker, docker_ok, build_test_image, REGION

IMAGE = "berth-test/busybox:latest"

pytestmark = pytest.mark.skipif(not docker_ok(), reason="no Docker daemon")


def docker_subnets():
    ids = docker("network", "ls", "-q").stdout.split()
    out = []
    for n in json.loads(docker("network", "inspect", *ids).stdout) if ids else []:
        for c in (n.get("IPAM") or {}).get("Config") or []:
            if c.get("Subnet") and ":" not in c["Subnet"]:
                out.append(ipaddress.ip_network(c["Subnet"]))
    return out


def pick_cidr():
    """A /16 in 10.100-239 that no Docker network on this daemon overlaps."""
    taken = docker_subnets()
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{random.randint(100, 239)}.0.0/16")
        if not any(net.overlaps(t) for t in taken):
            return str(net)
    raise RuntimeError("no free 10.x.0.0/16 block")


@pytest.fixture(scope="module")
def cidr():
    return pick_cidr()


@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def scope():
    return uniq("e2e-awsvpc")


@pytest.fixture(scope="module")
def berth(base, cidr):
    d = os.path.join(base, "server")
    os.makedirs(d)
    args = ["--agent-timeout", "5"]
    if supports_flag("up", "--host-lost-timeout"):
        args += ["--host-lost-timeout", "120"]
    b = Berth(d, agent=False, args=args, env={"BERTH_DEFAULT_VPC_CIDR": cidr}).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


@pytest.fixture(scope="module")
def ec2(berth):
    return berth.client("ec2")


@pytest.fixture(scope="module")
def agent(berth, ecs, base, scope, cidr):
    build_test_image()
    a = Agent(berth, os.path.join(base, "host"), join_token(berth), driver="docker", scope=scope).start()
    a.wait_registered(ecs)
    started = []
    a.started = started
    yield a
    try:
        for arn in ecs.list_services(cluster="default")["serviceArns"]:
            ecs.delete_service(cluster="default", service=arn, force=True)
        arns = ecs.list_tasks(cluster="default")["taskArns"]
        for t in arns:
            ecs.stop_task(cluster="default", task=t)
        for t in arns:
            try:
                wait_task(ecs, t, "STOPPED", timeout=40)
            except AssertionError:
                pass
    finally:
        a.stop()
        cleanup(scope, cidr, started)


def cleanup(scope, cidr, task_ids):
    """Removes what this module's agent made, by label, bridge name and chain name."""
    ids = docker("ps", "-aq", "--filter", f"label=berth.scope={scope}", check=False).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)
    net = ipaddress.ip_network(cidr)
    for n in docker("network", "ls", "--format", "{{.Name}}", check=False).stdout.split():
        if n.startswith("berth-vpc-"):
            block = n[len("berth-vpc-"):].rsplit("-", 1)
            if len(block) == 2 and ipaddress.ip_network("/".join(block)).subnet_of(net):
                docker("network", "rm", n, check=False)
    listing = subprocess.run(["iptables", "-w", "-S", "BERTH-SG"], capture_output=True, text=True).stdout
    for tid in task_ids:
        chain = "BERTH-T-" + tid[:16]
        for line in listing.splitlines():
            if line.startswith("-A ") and line.endswith(chain):
                subprocess.run(["iptables", "-w", "-D", *line.split()[1:]], capture_output=True)
        subprocess.run(["iptables", "-w", "-F", chain], capture_output=True)
        subprocess.run(["iptables", "-w", "-X", chain], capture_output=True)


def code(e):
    return e.response["Error"]["Code"]


def default_network(ec2):
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    return vpc, subnets


def new_group(ec2, vpc_id, port=None, cidr=None):
    g = ec2.create_security_group(GroupName=uniq("grp"), Description="e2e", VpcId=vpc_id)["GroupId"]
    if port:
        ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}])
    return g


WEB = {"name": "web", "image": IMAGE, "memory": 32, "stopTimeout": 2,
       "portMappings": [{"containerPort": 80}],
       "command": ["sh", "-c", "mkdir -p /www && echo $MARK > /www/index.html && exec httpd -f -p 80 -h /www"]}
SIDE = {"name": "side", "image": IMAGE, "memory": 16, "stopTimeout": 2, "essential": False,
        "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]}


def awsvpc_td(ecs, mark="hello"):
    web = dict(WEB, environment=[{"name": "MARK", "value": mark}])
    return register(ecs, uniq("vpc"), [web, SIDE], networkMode="awsvpc")["taskDefinition"]["taskDefinitionArn"]


def eni_of(task):
    att = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"]
    assert len(att) == 1, task["attachments"]
    return {d["name"]: d["value"] for d in att[0]["details"]}, att[0]


def run_awsvpc(ecs, agent, td, subnets, groups):
    r = ecs.run_task(cluster="default", taskDefinition=td, networkConfiguration={"awsvpcConfiguration": {
        "subnets": subnets, "securityGroups": groups, "assignPublicIp": "DISABLED"}})
    assert not r["failures"], r["failures"]
    arn = r["tasks"][0]["taskArn"]
    agent.started.append(arn.rsplit("/", 1)[1])
    return wait_task(ecs, arn, "RUNNING", timeout=40)


def get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def reachable(url):
    try:
        get(url)
        return True
    except (urllib.error.URLError, OSError):
        return False


def container_id(task, name):
    return next(c["runtimeId"] for c in task["containers"] if c["name"] == name)


def wget_from(task, url):
    """Fetches `url` from inside `task`'s side container; the body, or None (also when no
    answer comes within 4 s: a dropped SYN gets none; busybox's own `-T` crashes here)."""
    try:
        p = subprocess.run(["docker", "exec", container_id(task, "side"), "wget", "-q", "-O", "-", url],
                           capture_output=True, text=True, timeout=4)
    except subprocess.TimeoutExpired:
        return None
    return p.stdout if p.returncode == 0 else None


# ---------------------------------------------------------------------------------------------

def test_ec2_through_the_cli_and_boto3(berth, ec2, cidr):
    vpcs = berth.aws("ec2", "describe-vpcs")["Vpcs"]
    default = [v for v in vpcs if v["IsDefault"]]
    assert len(default) == 1 and default[0]["CidrBlock"] == cidr
    assert default[0]["VpcId"].startswith("vpc-") and len(default[0]["VpcId"]) == 21
    subnets = berth.aws("ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={default[0]['VpcId']}")["Subnets"]
    assert len(subnets) == 2 and all(s["DefaultForAz"] for s in subnets)
    assert {s["AvailabilityZone"] for s in subnets} == {f"{REGION}a", f"{REGION}b"}
    assert all(ipaddress.ip_network(s["CidrBlock"]).subnet_of(ipaddress.ip_network(cidr)) for s in subnets)
    groups = berth.aws("ec2", "describe-security-groups", "--filters", "Name=group-name,Values=default")["SecurityGroups"]
    assert [g["VpcId"] for g in groups] == [default[0]["VpcId"]]
    assert groups[0]["GroupId"].startswith("sg-")

    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "e2e"}]}])["Vpc"]
    assert vpc["Tags"] == [{"Key": "Name", "Value": "e2e"}] and not vpc["IsDefault"]
    sub = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.99.1.0/24", AvailabilityZone=f"{REGION}b")["Subnet"]
    assert sub["AvailableIpAddressCount"] == 251
    with pytest.raises(ClientError) as e:
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.99.1.128/25")
    assert code(e.value) == "InvalidSubnet.Conflict"
    with pytest.raises(ClientError) as e:
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.98.0.0/24")
    assert code(e.value) == "InvalidSubnet.Range"
    g = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc["VpcId"])["GroupId"]
    with pytest.raises(ClientError) as e:
        ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc["VpcId"])
    assert code(e.value) == "InvalidGroup.Duplicate"
    perm = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    r = ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[perm])
    assert r["Return"] and r["SecurityGroupRules"][0]["CidrIpv4"] == "10.0.0.0/8"
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[perm])
    assert code(e.value) == "InvalidPermission.Duplicate"
    # The CLI's shorthand (top-level protocol, port and CIDR).
    berth.aws("ec2", "authorize-security-group-ingress", "--group-id", g, "--protocol", "udp",
              "--port", "53", "--cidr", "10.1.0.0/16")
    got = ec2.describe_security_groups(GroupIds=[g])["SecurityGroups"][0]["IpPermissions"]
    assert {(p["IpProtocol"], p["FromPort"], p["IpRanges"][0]["CidrIp"]) for p in got} == {
        ("tcp", 80, "10.0.0.0/8"), ("udp", 53, "10.1.0.0/16")}
    ec2.revoke_security_group_ingress(GroupId=g, IpPermissions=[perm])
    got = ec2.describe_security_groups(GroupIds=[g])["SecurityGroups"][0]["IpPermissions"]
    assert [p["IpProtocol"] for p in got] == ["udp"]
    with pytest.raises(ClientError) as e:
        ec2.revoke_security_group_ingress(GroupId=g, IpPermissions=[perm])
    assert code(e.value) == "InvalidPermission.NotFound"

    for fn, kw, want in [
        (ec2.describe_subnets, {"SubnetIds": ["subnet-0123456789abcdef0"]}, "InvalidSubnetID.NotFound"),
        (ec2.describe_subnets, {"SubnetIds": ["nope"]}, "InvalidSubnetID.Malformed"),
        (ec2.describe_vpcs, {"VpcIds": ["vpc-0123456789abcdef0"]}, "InvalidVpcID.NotFound"),
        (ec2.describe_security_groups, {"GroupIds": ["sg-0123456789abcdef0"]}, "InvalidGroup.NotFound"),
        (ec2.delete_subnet, {"SubnetId": "subnet-0123456789abcdef0"}, "InvalidSubnetID.NotFound"),
        (ec2.describe_vpcs, {"Filters": [{"Name": "no-such-filter", "Values": ["x"]}]}, "InvalidParameterValue"),
        (ec2.authorize_security_group_egress, {"GroupId": g, "IpPermissions": [perm]}, "UnsupportedOperation"),
        (ec2.delete_security_group, {"GroupId": groups[0]["GroupId"]}, "CannotDelete"),
        (ec2.delete_vpc, {"VpcId": vpc["VpcId"]}, "DependencyViolation"),
    ]:
        with pytest.raises(ClientError) as e:
            fn(**kw)
        assert code(e.value) == want, (fn, kw, e.value.response)
    p = berth.aws("ec2", "describe-subnets", "--subnet-ids", "subnet-0123456789abcdef0", check=False)
    assert p.returncode != 0 and "InvalidSubnetID.NotFound" in p.stderr
    ec2.delete_security_group(GroupId=g)
    ec2.delete_subnet(SubnetId=sub["SubnetId"])
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Vpcs"]


def test_network_configuration_is_checked(ecs, ec2, agent):
    vpc, subnets = default_network(ec2)
    td = awsvpc_td(ecs)
    bridge = register(ecs, uniq("br"), [dict(SIDE, essential=True)])["taskDefinition"]["taskDefinitionArn"]
    s = subnets[0]["SubnetId"]

    def refused(message, **kw):
        with pytest.raises(ClientError) as e:
            ecs.run_task(cluster="default", **kw)
        assert code(e.value) == "InvalidParameterException", e.value.response
        assert message in e.value.response["Error"]["Message"], e.value.response

    refused("Network Configuration must be provided when networkMode 'awsvpc' is specified.", taskDefinition=td)
    refused("subnet-0123456789abcdef0", taskDefinition=td, networkConfiguration={
        "awsvpcConfiguration": {"subnets": ["subnet-0123456789abcdef0"]}})
    refused("sg-0123456789abcdef0", taskDefinition=td, networkConfiguration={
        "awsvpcConfiguration": {"subnets": [s], "securityGroups": ["sg-0123456789abcdef0"]}})
    refused("Assign public IP", taskDefinition=td, networkConfiguration={
        "awsvpcConfiguration": {"subnets": [s], "assignPublicIp": "ENABLED"}})
    refused("subnets can have at most 16 items", taskDefinition=td, networkConfiguration={
        "awsvpcConfiguration": {"subnets": [s] * 17}})
    refused("not valid for the given networkMode", taskDefinition=bridge, networkConfiguration={
        "awsvpcConfiguration": {"subnets": [s]}})
    # StartTask takes the same member, with the same checks.
    with pytest.raises(ClientError) as e:
        ecs.start_task(cluster="default", taskDefinition=td, containerInstances=[agent.arn],
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-0123456789abcdef0"]}})
    assert "subnet-0123456789abcdef0" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        ecs.create_service(cluster="default", serviceName=uniq("svc"), taskDefinition=td, desiredCount=1)
    assert "Network Configuration must be provided" in e.value.response["Error"]["Message"]
    # Without securityGroups the VPC's default group applies, as on ECS.
    name = uniq("svc")
    svc = ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=0,
                             networkConfiguration={"awsvpcConfiguration": {"subnets": [s]}})["service"]
    default_sg = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc["VpcId"]]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    assert svc["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"] == [default_sg["GroupId"]]
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster="default", service=name, networkConfiguration={
            "awsvpcConfiguration": {"subnets": ["subnet-0123456789abcdef0"]}})
    assert "subnet-0123456789abcdef0" in e.value.response["Error"]["Message"]
    up = ecs.update_service(cluster="default", service=name, networkConfiguration={
        "awsvpcConfiguration": {"subnets": [subnets[1]["SubnetId"]]}})["service"]
    assert up["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == [subnets[1]["SubnetId"]]
    ecs.delete_service(cluster="default", service=name, force=True)


def test_two_tasks_on_port_80_each_with_its_own_address(ecs, ec2, agent, cidr):
    vpc, subnets = default_network(ec2)
    g = new_group(ec2, vpc["VpcId"], port=80, cidr=cidr)
    ids = [s["SubnetId"] for s in subnets]
    a = run_awsvpc(ecs, agent, awsvpc_td(ecs, "task-a"), ids, [g])
    b = run_awsvpc(ecs, agent, awsvpc_td(ecs, "task-b"), ids, [g])
    (da, att_a), (db, _) = eni_of(a), eni_of(b)
    assert att_a["status"] == "ATTACHED"
    assert da["privateIPv4Address"] != db["privateIPv4Address"]
    for d in (da, db):
        assert ipaddress.ip_address(d["privateIPv4Address"]) in ipaddress.ip_network(cidr)
        assert d["networkInterfaceId"].startswith("eni-") and d["subnetId"] in ids
    web = next(c for c in a["containers"] if c["name"] == "web")
    assert web["networkBindings"] == []
    assert web["networkInterfaces"] == [{"attachmentId": att_a["id"], "privateIpv4Address": da["privateIPv4Address"]}]
    # Both answer on port 80 of their own address, from the host.
    assert wait_for(lambda: reachable(f"http://{da['privateIPv4Address']}/"), 20, what="task a") is True
    assert get(f"http://{da['privateIPv4Address']}/").strip() == "task-a"
    assert wait_for(lambda: reachable(f"http://{db['privateIPv4Address']}/"), 20, what="task b") is True
    assert get(f"http://{db['privateIPv4Address']}/").strip() == "task-b"
    # A task's containers share localhost; the MAC is the one shown.
    assert wget_from(a, "http://127.0.0.1:80/").strip() == "task-a"
    link = docker("exec", container_id(a, "side"), "cat", "/sys/class/net/eth0/address").stdout.strip()
    assert link == da["macAddress"]
    # The task metadata endpoint still answers inside the task's own namespace.
    uri = subprocess.run(["docker", "exec", container_id(a, "side"), "sh", "-c", "echo $ECS_CONTAINER_METADATA_URI_V4"],
                         capture_output=True, text=True, timeout=10).stdout.strip()
    if uri:
        meta = json.loads(wget_from(a, uri + "/task"))
        assert meta["TaskARN"].rsplit("/", 1)[1] == a["taskArn"].rsplit("/", 1)[1]
    ecs.stop_task(cluster="default", task=a["taskArn"])
    stopped = wait_task(ecs, a["taskArn"], "STOPPED", timeout=40)
    assert eni_of(stopped)[1]["status"] == "DETACHED"


def test_security_groups_are_enforced(ecs, ec2, agent, cidr):
    vpc, subnets = default_network(ec2)
    closed = new_group(ec2, vpc["VpcId"])
    opener = new_group(ec2, vpc["VpcId"], port=80, cidr=cidr)
    target = run_awsvpc(ecs, agent, awsvpc_td(ecs, "guarded"), [subnets[0]["SubnetId"]], [closed])
    other = run_awsvpc(ecs, agent, awsvpc_td(ecs, "other"), [subnets[0]["SubnetId"]], [opener])
    ip = eni_of(target)[0]["privateIPv4Address"]
    url = f"http://{ip}/"
    # The container listens (it answers on its own localhost), but no rule lets anyone in.
    assert wait_for(lambda: wget_from(target, "http://127.0.0.1/"), 20, what="httpd").strip() == "guarded"
    assert not reachable(url)
    assert wget_from(other, url) is None
    perm = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": cidr}]}
    ec2.authorize_security_group_ingress(GroupId=closed, IpPermissions=[perm])
    wait_for(lambda: reachable(url), 20, what="ingress allowed from the host")
    assert (wget_from(other, url) or "").strip() == "guarded"
    ec2.revoke_security_group_ingress(GroupId=closed, IpPermissions=[perm])
    wait_for(lambda: not reachable(url), 20, what="ingress blocked again")
    # A source-group rule lets the other task's members in, and not the host.
    ec2.authorize_security_group_ingress(GroupId=closed, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": opener}]}])
    wait_for(lambda: wget_from(other, url), 20, what="ingress from the source group")
    assert not reachable(url)


def test_service_behind_a_load_balancer_with_an_ip_target_group(berth, ecs, ec2, agent, cidr):
    vpc, subnets = default_network(ec2)
    g = new_group(ec2, vpc["VpcId"], port=80, cidr=cidr)
    elb = berth.client("elbv2")
    lb = elb.create_load_balancer(Name=uniq("lb"))["LoadBalancers"][0]
    ip_tg = elb.create_target_group(Name=uniq("tg"), Protocol="HTTP", Port=80, VpcId=vpc["VpcId"],
                                    TargetType="ip", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                    HealthyThresholdCount=2)["TargetGroups"][0]
    inst_tg = elb.create_target_group(Name=uniq("tg"), Protocol="HTTP", Port=80, VpcId=vpc["VpcId"],
                                      TargetType="instance")["TargetGroups"][0]
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": ip_tg["TargetGroupArn"]}])
    td = awsvpc_td(ecs, "via-lb")
    net = {"awsvpcConfiguration": {"subnets": [s["SubnetId"] for s in subnets], "securityGroups": [g]}}
    with pytest.raises(ClientError) as e:
        ecs.create_service(cluster="default", serviceName=uniq("svc"), taskDefinition=td, desiredCount=1,
                           networkConfiguration=net, loadBalancers=[{
                               "targetGroupArn": inst_tg["TargetGroupArn"], "containerName": "web", "containerPort": 80}])
    assert "has target type instance, which is incompatible with the awsvpc network mode" in e.value.response["Error"]["Message"]
    name = uniq("svc")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=2,
                       networkConfiguration=net, loadBalancers=[{
                           "targetGroupArn": ip_tg["TargetGroupArn"], "containerName": "web", "containerPort": 80}])

    def registered():
        h = elb.describe_target_health(TargetGroupArn=ip_tg["TargetGroupArn"])["TargetHealthDescriptions"]
        return len([t for t in h if t["TargetHealth"]["State"] == "healthy"]) == 2 and h
    health = wait_for(registered, 60, interval=0.5, what="two healthy ip targets")
    for t in ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(cluster="default", serviceName=name)["taskArns"])["tasks"]:
        agent.started.append(t["taskArn"].rsplit("/", 1)[1])
    tasks = ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(cluster="default", serviceName=name)["taskArns"])["tasks"]
    ips = {eni_of(t)[0]["privateIPv4Address"] for t in tasks}
    assert {t["Target"]["Id"] for t in health} == ips
    assert all(t["Target"]["Port"] == 80 for t in health)
    assert wait_for(lambda: reachable(f"http://127.0.0.1:{port}/") and get(f"http://127.0.0.1:{port}/").strip(),
                    20, what="the LB to answer") == "via-lb"
    ecs.delete_service(cluster="default", service=name, force=True)
