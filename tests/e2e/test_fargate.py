"""FARGATE end to end: the aws CLI's `run-task --launch-type FARGATE` reaches RUNNING on a
managed host that no ECS answer shows; a FARGATE service of two tasks; bad cpu/memory refused
with ECS's text; a FARGATE_SPOT task interrupted (stopCode SpotInterruption) and replaced by
its service.

Managed hosts are `berth agent` processes carrying the managed group's attribute, as the host
group controller starts them (`berth.host-group=berth-fargate-CLUSTER`). This file starts
them itself, so it runs with or without the host group controller; with it, the controller's
own hosts join as well. FARGATE tasks are awsvpc tasks: the managed hosts run the Docker
driver, each task gets its own address in the default subnet, and everything started is removed
by scope label, bridge name and chain name (as in test_awsvpc).
"""

import json
import os
import tempfile

import pytest

from conftest import (Agent, Berth, TEST_IMAGE, build_test_image, docker, docker_ok, join_token,
                      raw_call, supports_flag, uniq, wait_for)
from test_awsvpc import cleanup, pick_cidr

pytestmark = pytest.mark.skipif(not docker_ok(), reason="no Docker daemon")

# Filled with the default subnet berth made at start-up (see the `berth` fixture).
NET = {"awsvpcConfiguration": {"subnets": []}}
NET_CLI = ""
SCOPE = uniq("e2e-fargate")
STARTED = []


@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


# With the host group controller in the binary, managed hosts also come from it (process hosts
# running the process driver), and the last test relies on it alone.
HOST_GROUPS = supports_flag("up", "--host-provider")


def server_args():
    args = ["--agent-timeout", "5", "--fargate-idle-secs", "2"]
    if HOST_GROUPS:
        args += ["--host-agent-driver", "docker"]
    return args


def host_processes(group):
    """Pids of host-group agents of `group` (their argv names the group attribute)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"agent" in argv and f"berth.host-group={group}".encode() in argv:
            pids.append(int(entry))
    return pids


@pytest.fixture(scope="module")
def berth(base):
    global NET_CLI
    build_test_image()
    cidr = pick_cidr()
    b = Berth(os.path.join(base, "server"), agent=False, args=server_args(),
              env={"BERTH_DEFAULT_VPC_CIDR": cidr})
    os.makedirs(b.data_dir)
    b.start()
    subnet = b.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    NET["awsvpcConfiguration"]["subnets"] = [subnet]
    NET_CLI = f"awsvpcConfiguration={{subnets=[{subnet}]}}"
    b.client().put_cluster_capacity_providers(
        cluster="default", capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[])
    try:
        yield b
    finally:
        b.stop()
        cleanup(SCOPE, cidr, STARTED)


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


@pytest.fixture(scope="module")
def ec2_host(berth, ecs, base):
    """One ordinary (EC2) host, so "hidden" is tested against something visible."""
    a = Agent(berth, os.path.join(base, "ec2-host"), join_token(berth), poll_wait=1).start()
    a.wait_registered(ecs)
    yield a
    _stop_everything(ecs)
    a.stop()


def _stop_everything(ecs, cluster="default"):
    for arn in ecs.list_services(cluster=cluster)["serviceArns"]:
        ecs.delete_service(cluster=cluster, service=arn, force=True)
    for arn in ecs.list_tasks(cluster=cluster)["taskArns"]:
        ecs.stop_task(cluster=cluster, task=arn)
    wait_for(lambda: not ecs.list_tasks(cluster=cluster)["taskArns"], 30, interval=0.1,
             what="every task to stop")


@pytest.fixture(scope="module")
def managed_hosts(berth, ecs, base, ec2_host):
    """One managed host per provider, started as the host group controller would."""
    token = join_token(berth)
    hosts = []
    for i, group in enumerate(["berth-fargate-default", "berth-fargate-spot-default"]):
        a = Agent(berth, os.path.join(base, f"managed-{i}"), token, poll_wait=1,
                  cpu=32768, memory=131072, driver="docker", scope=SCOPE,
                  attributes=[f"berth.host-group={group}", f"berth.host-id=i-{i:017x}",
                              "ecs.instance-type=m5.8xlarge"]).start()
        hosts.append(a)
    try:
        for a in hosts:
            wait_for(a.identity, 20, what="managed host registration")
        yield hosts
    finally:
        _stop_everything(ecs)
        for a in hosts:
            a.stop()


def register_fargate(ecs, family, cpu="256", memory="512"):
    return ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
        cpu=cpu, memory=memory,
        containerDefinitions=[{"name": "app", "image": TEST_IMAGE, "essential": True,
                               "command": ["sh", "-c", "sleep 300"], "stopTimeout": 2}],
    )["taskDefinition"]["taskDefinitionArn"]


def describe(ecs, arns):
    return ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]


def test_bad_cpu_memory_is_refused_with_ecs_text(berth):
    r = berth.aws("ecs", "register-task-definition", "--family", uniq("bad"),
                  "--requires-compatibilities", "FARGATE", "--network-mode", "awsvpc",
                  "--cpu", "512", "--memory", "256", "--container-definitions",
                  json.dumps([{"name": "app", "image": TEST_IMAGE}]), check=False)
    assert r.returncode != 0
    assert "ClientException" in r.stderr
    assert ("No Fargate configuration exists for given values: 512 CPU, 256 memory. "
            "See the Amazon ECS documentation for the valid values.") in r.stderr


def test_run_task_without_network_configuration_is_refused(berth, ecs):
    td = register_fargate(ecs, uniq("nonet"))
    r = berth.aws("ecs", "run-task", "--launch-type", "FARGATE", "--task-definition", td,
                  check=False)
    assert r.returncode != 0
    assert "Network Configuration must be provided when networkMode 'awsvpc' is specified." in r.stderr


def test_fargate_run_task_runs_on_a_hidden_managed_host(berth, ecs, ec2_host, managed_hosts):
    td = register_fargate(ecs, uniq("web"), cpu="512", memory="1024")
    out = berth.aws("ecs", "run-task", "--launch-type", "FARGATE", "--task-definition", td,
                    "--network-configuration", NET_CLI, "--platform-version", "LATEST")
    task = out["tasks"][0]
    arn = task["taskArn"]
    wait_for(lambda: describe(ecs, [arn])[0]["lastStatus"] == "RUNNING", 30,
             what="FARGATE task RUNNING")
    t = describe(ecs, [arn])[0]
    assert t["launchType"] == "FARGATE"
    assert t["capacityProviderName"] == "FARGATE"
    assert t["platformVersion"] == "1.4.0"
    assert t["platformFamily"] == "Linux"
    assert (t["cpu"], t["memory"]) == ("512", "1024")
    assert t["ephemeralStorage"] == {"sizeInGiB": 20}
    assert "containerInstanceArn" not in t
    # No ECS answer shows the managed hosts.
    visible = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    assert visible == [ec2_host.arn]
    managed_ids = [a.identity() for a in managed_hosts]
    d = ecs.describe_container_instances(cluster="default", containerInstances=managed_ids)
    assert d["containerInstances"] == []
    assert {f["reason"] for f in d["failures"]} == {"MISSING"}
    c = ecs.describe_clusters(clusters=["default"])["clusters"][0]
    assert c["registeredContainerInstancesCount"] == 1
    # The task does not run on the EC2 host.
    assert ecs.list_tasks(cluster="default", containerInstance=ec2_host.arn)["taskArns"] == []
    ecs.stop_task(cluster="default", task=arn)


def test_fargate_service_of_two_tasks(berth, ecs, managed_hosts):
    td = register_fargate(ecs, uniq("svc"))
    name = uniq("fg")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=2,
                       launchType="FARGATE", networkConfiguration=NET, platformVersion="1.4.0")
    def running():
        arns = ecs.list_tasks(cluster="default", serviceName=name)["taskArns"]
        ts = describe(ecs, arns) if arns else []
        return len(ts) == 2 and all(t["lastStatus"] == "RUNNING" for t in ts) and ts
    ts = wait_for(running, 30, what="two FARGATE service tasks RUNNING")
    assert all(t["launchType"] == "FARGATE" and "containerInstanceArn" not in t for t in ts)
    s = ecs.describe_services(cluster="default", services=[name])["services"][0]
    assert s["launchType"] == "FARGATE"
    assert s["platformVersion"] == "1.4.0"
    ecs.delete_service(cluster="default", service=name, force=True)


def test_spot_task_interrupted_and_replaced(berth, ecs, managed_hosts):
    td = register_fargate(ecs, uniq("spot"))
    name = uniq("spot")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=1,
                       capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
                       networkConfiguration=NET)
    def one_running():
        arns = ecs.list_tasks(cluster="default", serviceName=name)["taskArns"]
        ts = [t for t in (describe(ecs, arns) if arns else []) if t["lastStatus"] == "RUNNING"]
        return ts[0] if len(ts) == 1 else None
    first = wait_for(one_running, 30, what="spot task RUNNING")
    assert first["capacityProviderName"] == "FARGATE_SPOT"
    status, _, body = raw_call(berth.endpoint, target="BerthV1.InterruptSpotTask",
                               body={"cluster": "default", "task": first["taskArn"]})
    assert status == 200, body
    # The warning: told at once, before the task has stopped.
    assert body["task"]["stopCode"] == "SpotInterruption"
    assert body["task"]["stoppedReason"] == "Your Spot Task was interrupted."
    assert body["task"]["desiredStatus"] == "STOPPED"
    wait_for(lambda: describe(ecs, [first["taskArn"]])[0]["lastStatus"] == "STOPPED", 30,
             what="interrupted task STOPPED")
    t = describe(ecs, [first["taskArn"]])[0]
    assert t["stopCode"] == "SpotInterruption"
    def replaced():
        r = one_running()
        return r if r and r["taskArn"] != first["taskArn"] else None
    again = wait_for(replaced, 30, what="the service's replacement task")
    assert again["capacityProviderName"] == "FARGATE_SPOT"
    ecs.delete_service(cluster="default", service=name, force=True)


def test_run_task_with_a_fargate_spot_strategy(berth, ecs, managed_hosts):
    td = register_fargate(ecs, uniq("spot1"))
    out = ecs.run_task(cluster="default", taskDefinition=td, networkConfiguration=NET,
                       capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    arn = out["tasks"][0]["taskArn"]
    wait_for(lambda: describe(ecs, [arn])[0]["lastStatus"] == "RUNNING", 30,
             what="FARGATE_SPOT task RUNNING")
    t = describe(ecs, [arn])[0]
    assert t["capacityProviderName"] == "FARGATE_SPOT"
    assert t["launchType"] == "FARGATE"
    ecs.stop_task(cluster="default", task=arn)


@pytest.mark.skipif(not HOST_GROUPS, reason="needs the host group controller (issue 13's host groups)")
def test_fargate_capacity_comes_and_goes_with_the_host_group_controller(berth, ecs):
    """No managed host is started by hand: the task waits in PROVISIONING, berth grows its
    managed group, the host group controller starts a host, the task runs; once it stops, the
    idle host goes. No ECS or Auto Scaling answer shows the group or its host."""
    cluster = uniq("fgauto")
    group = f"berth-fargate-{cluster}"
    ecs.create_cluster(clusterName=cluster)
    td = register_fargate(ecs, uniq("auto"))
    try:
        arn = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="FARGATE",
                           networkConfiguration=NET)["tasks"][0]["taskArn"]
        t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        assert t["lastStatus"] == "PROVISIONING"
        wait_for(lambda: ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]["lastStatus"]
                 == "RUNNING", 90, what="FARGATE task RUNNING on a host the controller started")
        assert host_processes(group), "a managed host process runs"
        assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == []
        c = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
        assert c["registeredContainerInstancesCount"] == 0
        asg = berth.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
        assert group not in [g["AutoScalingGroupName"] for g in asg]
        ecs.stop_task(cluster=cluster, task=arn)
        wait_for(lambda: ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]["lastStatus"]
                 == "STOPPED", 30, what="task STOPPED")
    finally:
        # Empty managed hosts go after the idle time (2 s here): that is the cleanup too, and
        # a host that goes takes its containers with it (they ran on this machine's Docker).
        wait_for(lambda: not host_processes(group), 90, interval=0.2,
                 what="the idle managed host to go")
        left = lambda: docker("ps", "-aq", "--filter", f"label=berth.cluster={cluster}",
                              check=False).stdout.split()
        try:
            wait_for(lambda: not left(), 30, interval=0.2,
                     what="the destroyed host's containers to be removed")
        finally:
            if left():
                docker("rm", "-f", *left(), check=False)


def test_fargate_tasks_on_port_80_behind_a_load_balancer_and_their_security_group(
        berth, ecs, managed_hosts):
    """Issue 13's picture: a FARGATE service of two tasks, both listening on port 80 (each its
    own address in the subnet), behind a berth load balancer through an `ip` target group and
    reached through it; their security group first lets nothing in (the load balancer's health
    checks fail and a direct request gets no answer), then AuthorizeSecurityGroupIngress lets
    port 80 in and traffic flows."""
    from test_awsvpc import default_network, eni_of, get, new_group, reachable
    from conftest import free_port
    ec2 = berth.client("ec2")
    elb = berth.client("elbv2")
    vpc, subnets = default_network(ec2)
    closed = new_group(ec2, vpc["VpcId"])  # no ingress rule at all
    td = ecs.register_task_definition(
        family=uniq("fgweb"), requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
        cpu="256", memory="512",
        containerDefinitions=[{
            "name": "web", "image": TEST_IMAGE, "essential": True, "stopTimeout": 2,
            "portMappings": [{"containerPort": 80}],
            "command": ["sh", "-c", "mkdir -p /www && hostname -i > /www/index.html && exec httpd -f -p 80 -h /www"]}],
    )["taskDefinition"]["taskDefinitionArn"]
    lb = elb.create_load_balancer(Name=uniq("fglb"))["LoadBalancers"][0]
    tg = elb.create_target_group(Name=uniq("fgtg"), Protocol="HTTP", Port=80, VpcId=vpc["VpcId"],
                                 TargetType="ip", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 HealthyThresholdCount=2)["TargetGroups"][0]
    port = free_port()
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    name = uniq("fgsvc")
    net = {"awsvpcConfiguration": {"subnets": [s["SubnetId"] for s in subnets], "securityGroups": [closed]}}
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=2,
                       launchType="FARGATE", networkConfiguration=net, loadBalancers=[{
                           "targetGroupArn": tg["TargetGroupArn"], "containerName": "web", "containerPort": 80}])
    try:
        def two_running():
            arns = ecs.list_tasks(cluster="default", serviceName=name)["taskArns"]
            ts = describe(ecs, arns) if arns else []
            return ts if len(ts) == 2 and all(t["lastStatus"] == "RUNNING" for t in ts) else None
        tasks = wait_for(two_running, 60, what="two FARGATE tasks RUNNING")
        for t in tasks:
            STARTED.append(t["taskArn"].rsplit("/", 1)[1])
        ips = sorted(eni_of(t)[0]["privateIPv4Address"] for t in tasks)
        assert len(set(ips)) == 2, ips
        assert all("containerInstanceArn" not in t and t["launchType"] == "FARGATE" for t in tasks)
        # Closed: nothing reaches port 80 of either task, not even the load balancer.
        assert not any(reachable(f"http://{ip}:80/") for ip in ips)
        h = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
        assert not any(t["TargetHealth"]["State"] == "healthy" for t in h), h
        # Open port 80 to the VPC (the host's own connections come from the subnet gateway).
        ec2.authorize_security_group_ingress(GroupId=closed, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": vpc["CidrBlock"]}]}])

        def healthy():
            h = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
            return sorted(t["Target"]["Id"] for t in h if t["TargetHealth"]["State"] == "healthy") == ips
        wait_for(healthy, 60, interval=0.5, what="both FARGATE tasks healthy behind the load balancer")
        seen = set()
        def both_answer():
            seen.add(get(f"http://127.0.0.1:{port}/").strip())
            return seen == set(ips)
        wait_for(both_answer, 30, interval=0.1, what="the load balancer to reach both tasks")
    finally:
        ecs.delete_service(cluster="default", service=name, force=True)
