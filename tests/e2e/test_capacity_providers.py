"""Capacity providers against a real `berth up` with a process-provider host group:
`aws ecs create-capacity-provider`, PutClusterCapacityProviders with a default strategy,
tasks that do not fit wait in PROVISIONING, managed scaling adds hosts, the tasks run on the
provider's hosts; when the load goes, empty hosts are removed and a host running tasks never
is (managed termination protection). A second server checks the PROVISIONING timeout.

Every test removes what it started: tasks are stopped, groups force-deleted, and any process
still running under the server's data dir is killed by pid (never by name).
"""

import json
import tempfile
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import Berth, register, uniq, wait_for
from test_hostgroups import cleanup_groups, in_service, kill_all_under, user_data


def start_server(d, *args):
    return Berth(d, agent=False,
                 args=["--host-agent-driver", "process", "--agent-timeout", "6",
                       "--capacity-period", "0.3", *args]).start()


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as d:
        b = start_server(d)
        try:
            yield b
        finally:
            stop_all_tasks(b)
            cleanup_groups(b)
            b.stop()
            kill_all_under(d)


def stop_all_tasks(b):
    ecs = b.client()
    try:
        for c in ecs.list_clusters()["clusterArns"]:
            for t in ecs.list_tasks(cluster=c)["taskArns"]:
                ecs.stop_task(cluster=c, task=t)
    except Exception:  # noqa: BLE001 - best effort; the processes are killed by pid after
        pass


def group_with_provider(b, cluster, max_size=4, protect=True, scaling=None):
    """A process host group (t3.small: 2048 cpu units each) and a provider over it."""
    name = uniq("cpg")
    asg = b.client("autoscaling")
    ecs = b.client()
    ecs.create_cluster(clusterName=cluster)
    asg.create_launch_configuration(LaunchConfigurationName=name, ImageId="berth-host",
                                    InstanceType="t3.small", UserData=user_data(cluster))
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchConfigurationName=name, MinSize=0, MaxSize=max_size,
        DesiredCapacity=0, AvailabilityZones=["eu-west-1a"], HealthCheckGracePeriod=60,
        NewInstancesProtectedFromScaleIn=protect,
        Tags=[{"Key": "berth:provider", "Value": "process", "PropagateAtLaunch": False}])
    arn = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0][
        "AutoScalingGroupARN"]
    provider = uniq("cp")
    spec = {"autoScalingGroupArn": arn,
            "managedScaling": scaling or {"status": "ENABLED", "targetCapacity": 100,
                                          "minimumScalingStepSize": 1, "maximumScalingStepSize": 4,
                                          "instanceWarmupPeriod": 0},
            "managedTerminationProtection": "ENABLED" if protect else "DISABLED"}
    out = b.aws("ecs", "create-capacity-provider", "--name", provider,
                "--auto-scaling-group-provider", json.dumps(spec))
    assert out["capacityProvider"]["autoScalingGroupProvider"]["autoScalingGroupArn"] == arn
    b.aws("ecs", "put-cluster-capacity-providers", "--cluster", cluster,
          "--capacity-providers", provider,
          "--default-capacity-provider-strategy", f"capacityProvider={provider},weight=1")
    return name, provider


def sleeper(ecs):
    """A task of 1024 cpu units: two fit on one t3.small host."""
    return register(ecs, uniq("cpt"), [{"name": "app", "image": "busybox", "memory": 64, "cpu": 1024,
                                        "command": ["sleep", "600"]}])["taskDefinition"]["taskDefinitionArn"]


def describe(ecs, cluster, arns):
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]


def test_provisioning_tasks_bring_hosts_and_empty_hosts_go(server):
    ecs, asg = server.client(), server.client("autoscaling")
    cluster = uniq("cpc")
    name, provider = group_with_provider(server, cluster)
    td = sleeper(ecs)

    # No host yet: RunTask succeeds, the tasks wait in PROVISIONING (the cluster's default
    # strategy applies: no launch type, no strategy given).
    out = ecs.run_task(cluster=cluster, taskDefinition=td, count=4)
    assert out["failures"] == []
    arns = [t["taskArn"] for t in out["tasks"]]
    for t in out["tasks"]:
        assert t["lastStatus"] == "PROVISIONING" and t["capacityProviderName"] == provider
        assert "containerInstanceArn" not in t

    # Managed scaling asks for two hosts; the tasks are placed on them and run.
    hosts = in_service(asg, name, 2)
    host_ids = {h["InstanceId"] for h in hosts}
    wait_for(lambda: all(t["lastStatus"] == "RUNNING" for t in describe(ecs, cluster, arns)),
             timeout=90, interval=0.3, what="tasks RUNNING")
    tasks = describe(ecs, cluster, arns)
    cis = ecs.describe_container_instances(
        cluster=cluster, containerInstances=list({t["containerInstanceArn"] for t in tasks}))["containerInstances"]
    assert {ci["ec2InstanceId"] for ci in cis} == host_ids
    assert all(ci["capacityProviderName"] == provider for ci in cis)
    # Hosts running tasks are protected from scale-in.
    wait_for(lambda: all(i["ProtectedFromScaleIn"] for i in asg.describe_auto_scaling_instances(
        InstanceIds=list(host_ids))["AutoScalingInstances"]), timeout=30, what="hosts protected")
    # The reservation is published (M = N = 2: 100 percent).
    metrics = server.metrics_text()
    assert "CapacityProviderReservation" in metrics and provider in metrics

    # The load on one host goes: that host is removed, the one running tasks stays.
    by_ci = {ci["containerInstanceArn"]: ci["ec2InstanceId"] for ci in cis}
    first = by_ci[tasks[0]["containerInstanceArn"]]
    on_first = [t["taskArn"] for t in tasks if by_ci[t["containerInstanceArn"]] == first]
    others = [t["taskArn"] for t in tasks if t["taskArn"] not in on_first]
    for a in on_first:
        ecs.stop_task(cluster=cluster, task=a)
    left = in_service(asg, name, 1)
    assert {h["InstanceId"] for h in left} == host_ids - {first}
    assert all(t["lastStatus"] == "RUNNING" for t in describe(ecs, cluster, others))
    acts = asg.describe_scaling_activities(AutoScalingGroupName=name)["Activities"]
    terminated = [a["Description"].split(": ")[1] for a in acts if a["Description"].startswith("Terminating")]
    assert terminated == [first]

    # All load gone: the group goes to zero.
    for a in others:
        ecs.stop_task(cluster=cluster, task=a)
    in_service(asg, name, 0)
    # A provider in use by the cluster cannot be deleted; once removed, it can.
    with pytest.raises(ClientError) as ei:
        ecs.delete_capacity_provider(capacityProvider=provider)
    assert ei.value.response["Error"]["Code"] == "ClientException"
    ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[],
                                       defaultCapacityProviderStrategy=[])
    assert ecs.delete_capacity_provider(capacityProvider=provider)["capacityProvider"]["status"] == "INACTIVE"


def test_service_through_a_provider_runs_on_its_hosts(server):
    ecs, asg = server.client(), server.client("autoscaling")
    cluster = uniq("cps")
    name, provider = group_with_provider(server, cluster)
    td = sleeper(ecs)
    svc = ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=td, desiredCount=3,
                             capacityProviderStrategy=[{"capacityProvider": provider, "weight": 1}])
    assert svc["service"]["capacityProviderStrategy"] == [
        {"capacityProvider": provider, "weight": 1, "base": 0}]
    # Three 1-vCPU tasks on 2-vCPU hosts: managed scaling asks for two hosts.
    hosts = {h["InstanceId"] for h in in_service(asg, name, 2)}

    def running():
        arns = ecs.list_tasks(cluster=cluster, serviceName="web", desiredStatus="RUNNING")["taskArns"]
        ts = describe(ecs, cluster, arns) if arns else []
        return ts if len(ts) == 3 and all(t["lastStatus"] == "RUNNING" for t in ts) else None

    tasks = wait_for(running, timeout=90, interval=0.3, what="service tasks RUNNING")
    assert all(t["capacityProviderName"] == provider for t in tasks)
    cis = ecs.describe_container_instances(
        cluster=cluster, containerInstances=list({t["containerInstanceArn"] for t in tasks}))["containerInstances"]
    assert {ci["ec2InstanceId"] for ci in cis} == hosts
    ecs.update_service(cluster=cluster, service="web", desiredCount=0)
    in_service(asg, name, 0)
    ecs.delete_service(cluster=cluster, service="web")


def test_strategy_validation_through_the_cli(server):
    ecs = server.client()
    cluster = uniq("cpv")
    _, provider = group_with_provider(server, cluster, max_size=1)
    td = sleeper(ecs)
    p = server.aws("ecs", "run-task", "--cluster", cluster, "--task-definition", td,
                   "--launch-type", "EC2", "--capacity-provider-strategy",
                   f"capacityProvider={provider},weight=1", check=False)
    assert p.returncode != 0 and "InvalidParameterException" in p.stderr
    p = server.aws("ecs", "run-task", "--cluster", cluster, "--task-definition", td,
                   "--capacity-provider-strategy", "capacityProvider=FARGATE,weight=1", check=False)
    assert p.returncode != 0 and "not associated with the cluster" in p.stderr
    p = server.aws("ecs", "create-capacity-provider", "--name", "ecs-mine",
                   "--auto-scaling-group-provider", "autoScalingGroupArn=x", check=False)
    assert p.returncode != 0 and "InvalidParameterException" in p.stderr
    names = [c["name"] for c in ecs.describe_capacity_providers()["capacityProviders"]]
    assert names[:2] == ["FARGATE", "FARGATE_SPOT"] and provider in names


def test_provisioning_times_out_with_task_failed_to_start():
    with tempfile.TemporaryDirectory() as d:
        b = start_server(d, "--provisioning-timeout", "1")
        try:
            ecs = b.client()
            cluster = uniq("cpt")
            # A group that may not grow: the task can never be placed.
            _, provider = group_with_provider(b, cluster, max_size=1, protect=False,
                                              scaling={"status": "DISABLED"})
            td = sleeper(ecs)
            arn = ecs.run_task(cluster=cluster, taskDefinition=td,
                               capacityProviderStrategy=[{"capacityProvider": provider, "base": 1}])[
                "tasks"][0]["taskArn"]
            t = wait_for(lambda: [x for x in describe(ecs, cluster, [arn]) if x["lastStatus"] == "STOPPED"],
                         timeout=30, interval=0.2, what="task stopped")[0]
            assert t["stopCode"] == "TaskFailedToStart"
            assert "PROVISIONING" in t["stoppedReason"] and provider in t["stoppedReason"]
        finally:
            stop_all_tasks(b)
            cleanup_groups(b)
            b.stop()
            kill_all_under(d)
