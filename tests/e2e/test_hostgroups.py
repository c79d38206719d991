"""Host groups: berth's EC2 Auto Scaling API (`aws autoscaling`, boto3) with the process and
command host providers against a real `berth up`.

Every test cleans up what it started: groups are force-deleted and their hosts waited out, and
any process still running under the server's data dir is killed by pid (never by name).
"""

import base64
import os
import signal
import tempfile
import time

import pytest
from botocore.exceptions import ClientError

from conftest import BERTH_BIN, Berth, uniq, wait_for

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostgroup_scripts")


def pids_under(path):
    """Pids of live processes whose command line mentions `path` (our hosts and their tasks)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if path.encode() in cmd and state not in (b"Z", b"X"):
            out.append(int(entry))
    return out


def kill_all_under(path):
    for pid in pids_under(path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_server(d, *args, env=None, port=None):
    return Berth(d, agent=False, env=env, port=port,
                 args=["--host-agent-driver", "process", "--agent-timeout", "6", *args]).start()


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as d:
        b = start_server(d)
        try:
            yield b
        finally:
            cleanup_groups(b)
            b.stop()
            kill_all_under(d)


def cleanup_groups(b):
    asg = b.client("autoscaling")
    try:
        groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
        for g in groups:
            asg.delete_auto_scaling_group(AutoScalingGroupName=g["AutoScalingGroupName"], ForceDelete=True)
        wait_for(lambda: not asg.describe_auto_scaling_groups()["AutoScalingGroups"], timeout=60,
                 what="groups deleted")
    except Exception:  # noqa: BLE001 - best effort; the processes are killed by pid after
        pass


def user_data(cluster):
    return f"#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"


def make_group(b, name, cluster, desired, provider="process", max_size=5, **kw):
    asg = b.client("autoscaling")
    b.client().create_cluster(clusterName=cluster)
    asg.create_launch_configuration(LaunchConfigurationName=name, ImageId="berth-host",
                                    InstanceType="t3.small", UserData=user_data(cluster))
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchConfigurationName=name, MinSize=0, MaxSize=max_size,
        DesiredCapacity=desired, AvailabilityZones=["eu-west-1a"], HealthCheckGracePeriod=60,
        Tags=[{"Key": "berth:provider", "Value": provider, "PropagateAtLaunch": False}], **kw)
    return asg


def in_service(asg, name, n):
    """Waits until the group has exactly `n` hosts, all InService; returns them."""
    def check():
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        hosts = g["Instances"]
        done = len(hosts) == n and all(h["LifecycleState"] == "InService" for h in hosts)
        return (hosts or True) if done else None
    r = wait_for(check, timeout=90, interval=0.2, what=f"{n} hosts in service")
    return [] if r is True else r


def active_instances(ecs, cluster):
    arns = ecs.list_container_instances(cluster=cluster, status="ACTIVE")["containerInstanceArns"]
    if not arns:
        return []
    return ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]


def wait_cluster_hosts(ecs, cluster, ids):
    want = sorted(ids)
    return wait_for(
        lambda: sorted(i["ec2InstanceId"] for i in active_instances(ecs, cluster)
                       if i["agentConnected"]) == want,
        timeout=60, interval=0.2, what=f"container instances {want}")


def test_aws_cli_scale_out_and_in_with_protection_and_policies(server):
    name, cluster = uniq("hg"), uniq("hgc")
    server.client().create_cluster(clusterName=cluster)
    ud = base64.b64encode(user_data(cluster).encode()).decode()
    server.aws("autoscaling", "create-launch-configuration", "--launch-configuration-name", name,
               "--image-id", "berth-host", "--instance-type", "t3.small", "--user-data", user_data(cluster))
    lcs = server.aws("autoscaling", "describe-launch-configurations",
                     "--launch-configuration-names", name)["LaunchConfigurations"]
    assert lcs[0]["UserData"] == ud and lcs[0]["InstanceType"] == "t3.small"
    server.aws("autoscaling", "create-auto-scaling-group", "--auto-scaling-group-name", name,
               "--launch-configuration-name", name, "--min-size", "0", "--max-size", "4",
               "--desired-capacity", "2", "--availability-zones", "eu-west-1a",
               "--termination-policies", "OldestInstance",
               "--tags", "Key=berth:provider,Value=process,PropagateAtLaunch=false")
    asg = server.client("autoscaling")
    ecs = server.client()
    hosts = in_service(asg, name, 2)
    # Each host is a container instance of the cluster named in the user data, with its size
    # from the instance type and its instance id as ec2InstanceId.
    cis = wait_cluster_hosts(ecs, cluster, [h["InstanceId"] for h in hosts])
    ci = active_instances(ecs, cluster)[0]
    cpu = [r for r in ci["registeredResources"] if r["name"] == "CPU"][0]["integerValue"]
    assert cpu == 2048 and cis
    attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
    assert attrs["berth.host-group"] == name and attrs["ecs.instance-type"] == "t3.small"

    server.aws("autoscaling", "set-desired-capacity", "--auto-scaling-group-name", name,
               "--desired-capacity", "3")
    hosts = sorted(in_service(asg, name, 3), key=lambda h: h["InstanceId"])
    by_age = [i["InstanceId"] for i in sorted(
        asg.describe_auto_scaling_instances(InstanceIds=[h["InstanceId"] for h in hosts])["AutoScalingInstances"],
        key=lambda i: i["InstanceId"])]
    # Launch order from the activities (oldest first).
    acts = server.aws("autoscaling", "describe-scaling-activities", "--auto-scaling-group-name", name)["Activities"]
    launched = [a["Description"].split(": ")[1] for a in reversed(acts) if a["Description"].startswith("Launching")]
    assert sorted(launched) == sorted(by_age)
    oldest, middle, newest = launched
    assert all(a["StatusCode"] == "Successful" for a in acts), acts
    assert "increasing the capacity from" in acts[0]["Cause"]

    # Protect the oldest: OldestInstance then picks the middle one.
    server.aws("autoscaling", "set-instance-protection", "--auto-scaling-group-name", name,
               "--instance-ids", oldest, "--protected-from-scale-in")
    server.aws("autoscaling", "set-desired-capacity", "--auto-scaling-group-name", name,
               "--desired-capacity", "2")
    left = {h["InstanceId"] for h in in_service(asg, name, 2)}
    assert left == {oldest, newest}
    wait_cluster_hosts(ecs, cluster, [oldest, newest])

    # NewestInstance: the newest unprotected goes.
    server.aws("autoscaling", "update-auto-scaling-group", "--auto-scaling-group-name", name,
               "--termination-policies", "NewestInstance")
    server.aws("autoscaling", "set-desired-capacity", "--auto-scaling-group-name", name,
               "--desired-capacity", "1")
    left = {h["InstanceId"] for h in in_service(asg, name, 1)}
    assert left == {oldest}
    # Scale-in below the protected host leaves it be.
    server.aws("autoscaling", "set-desired-capacity", "--auto-scaling-group-name", name,
               "--desired-capacity", "0")
    time.sleep(0)  # nothing to wait for: the decision is immediate and the host stays
    assert {h["InstanceId"] for h in in_service(asg, name, 1)} == {oldest}
    acts = asg.describe_scaling_activities(AutoScalingGroupName=name)["Activities"]
    terms = [a for a in acts if a["Description"].startswith("Terminating")]
    assert [a["Description"].split(": ")[1] for a in terms] == [newest, middle]
    assert all(a["StatusCode"] == "Successful" for a in terms)
    assert "shrinking the capacity from" in terms[0]["Cause"]

    # ForceDelete terminates even the protected host, then the group is gone.
    p = server.aws("autoscaling", "delete-auto-scaling-group", "--auto-scaling-group-name", name, check=False)
    assert p.returncode != 0 and "ResourceInUse" in p.stderr
    server.aws("autoscaling", "delete-auto-scaling-group", "--auto-scaling-group-name", name, "--force-delete")
    wait_for(lambda: not asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"],
             timeout=60, what="group deleted")
    assert active_instances(ecs, cluster) == []
    server.aws("autoscaling", "delete-launch-configuration", "--launch-configuration-name", name)


def test_validation_errors(server):
    asg = server.client("autoscaling")
    name = uniq("hgv")

    def err(fn, **kw):
        with pytest.raises(ClientError) as ei:
            fn(**kw)
        return ei.value.response["Error"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]

    e, status = err(asg.create_launch_configuration, LaunchConfigurationName=name, ImageId="x",
                    InstanceType="z9.huge")
    assert (e["Code"], status) == ("ValidationError", 400)
    asg.create_launch_configuration(LaunchConfigurationName=name, ImageId="berth-host", InstanceType="t3.micro")
    e, _ = err(asg.create_launch_configuration, LaunchConfigurationName=name, ImageId="x", InstanceType="t3.micro")
    assert e["Code"] == "AlreadyExists"
    e, _ = err(asg.create_auto_scaling_group, AutoScalingGroupName=name, LaunchConfigurationName=name,
               MinSize=2, MaxSize=1, AvailabilityZones=["eu-west-1a"])
    assert e["Code"] == "ValidationError"
    e, _ = err(asg.create_auto_scaling_group, AutoScalingGroupName=name, MinSize=0, MaxSize=1,
               LaunchTemplate={"LaunchTemplateName": "tmpl"}, AvailabilityZones=["eu-west-1a"])
    assert e["Code"] == "ValidationError" and "LaunchTemplate" in e["Message"]
    asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName=name, MinSize=0,
                                  MaxSize=2, AvailabilityZones=["eu-west-1a"])
    e, _ = err(asg.set_desired_capacity, AutoScalingGroupName=name, DesiredCapacity=3)
    assert e["Message"] == "New SetDesiredCapacity value 3 is above max value 2 for the AutoScalingGroup."
    e, _ = err(asg.delete_launch_configuration, LaunchConfigurationName=name)
    assert e["Code"] == "ResourceInUse"
    e, _ = err(asg.set_desired_capacity, AutoScalingGroupName=uniq("missing"), DesiredCapacity=0)
    assert e["Code"] == "ValidationError" and "not found" in e["Message"]
    e, _ = err(asg.describe_auto_scaling_groups, MaxRecords=1000)
    assert e["Code"] == "ValidationError"
    # An empty group goes without ForceDelete, then its launch configuration can.
    asg.delete_auto_scaling_group(AutoScalingGroupName=name)
    asg.delete_launch_configuration(LaunchConfigurationName=name)


def test_dead_host_is_replaced(server):
    name, cluster = uniq("hgr"), uniq("hgrc")
    asg = make_group(server, name, cluster, 1)
    [host] = in_service(asg, name, 1)
    victim = host["InstanceId"]
    [pid] = [p for p in pids_under(server.data_dir) if victim.encode() in open(f"/proc/{p}/cmdline", "rb").read()
             and b" agent" not in b""]
    os.kill(pid, signal.SIGKILL)

    def replaced():
        hosts = in_service(asg, name, 1)
        return hosts[0]["InstanceId"] != victim and hosts
    [new] = wait_for(replaced, timeout=90, interval=0.3, what="a replacement host")
    wait_cluster_hosts(server.client(), cluster, [new["InstanceId"]])
    acts = asg.describe_scaling_activities(AutoScalingGroupName=name)["Activities"]
    term = [a for a in acts if a["Description"] == f"Terminating EC2 instance: {victim}"]
    assert term and "health check" in term[0]["Cause"], acts
    asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    wait_for(lambda: not asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"],
             timeout=60, what="group deleted")


def test_terminate_instance_with_and_without_decrement(server):
    name, cluster = uniq("hgt"), uniq("hgtc")
    asg = make_group(server, name, cluster, 2)
    a, b = [h["InstanceId"] for h in in_service(asg, name, 2)]
    r = asg.terminate_instance_in_auto_scaling_group(InstanceId=a, ShouldDecrementDesiredCapacity=False)
    assert r["Activity"]["StatusCode"] == "InProgress"
    # Replaced: still two hosts, `a` not among them.
    wait_for(lambda: a not in [h["InstanceId"] for h in in_service(asg, name, 2)], timeout=60,
             what="replacement")
    asg.terminate_instance_in_auto_scaling_group(InstanceId=b, ShouldDecrementDesiredCapacity=True)
    hosts = in_service(asg, name, 1)
    assert b not in [h["InstanceId"] for h in hosts]
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert g["DesiredCapacity"] == 1
    asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    wait_for(lambda: not asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"],
             timeout=60, what="group deleted")


def test_berth_hostgroup_cli(server):
    name, cluster = uniq("hgcli"), uniq("hgclic")
    server.client().create_cluster(clusterName=cluster)
    server.cli("hostgroup", "create", name, "--instance-type", "t3.small", "--image", "berth-host",
               "--min", "0", "--max", "3", "--desired", "1", "--cluster", cluster, "--provider", "process")
    asg = server.client("autoscaling")
    [h] = in_service(asg, name, 1)
    wait_cluster_hosts(server.client(), cluster, [h["InstanceId"]])
    out = server.cli("hostgroup", "list").stdout
    assert name in out
    server.cli("hostgroup", "scale", name, "2")
    in_service(asg, name, 2)
    assert h["InstanceId"] in server.cli("hostgroup", "describe", name).stdout
    server.cli("hostgroup", "delete", name, "--force")
    wait_for(lambda: not asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"],
             timeout=60, what="group deleted")


def test_command_provider_scripts():
    with tempfile.TemporaryDirectory() as d:
        hosts_dir = os.path.join(d, "cmd-hosts")
        os.makedirs(hosts_dir)
        spec = ",".join(f"{k}={os.path.join(SCRIPTS, k + '.sh')}" for k in ("create", "destroy", "list"))
        b = start_server(d, "--host-provider-command", spec,
                         env={"HOSTS_DIR": hosts_dir, "BERTH_BIN": os.path.abspath(BERTH_BIN)})
        try:
            name, cluster = uniq("hgcmd"), uniq("hgcmdc")
            asg = make_group(b, name, cluster, 1, provider="command")
            [h] = in_service(asg, name, 1)
            wait_cluster_hosts(b.client(), cluster, [h["InstanceId"]])
            assert os.path.exists(os.path.join(hosts_dir, h["InstanceId"] + ".pid"))
            asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=0)
            in_service(asg, name, 0)
            wait_for(lambda: not os.listdir(hosts_dir) or not any(f.endswith(".pid") for f in os.listdir(hosts_dir)),
                     timeout=30, what="the destroy script ran")
        finally:
            cleanup_groups(b)
            b.stop()
            kill_all_under(d)


def test_scale_in_drains_service_tasks_first(server):
    """The host picked for scale-in is set DRAINING; the service scheduler moves its task to the
    other host before the host is terminated (so the task stops as a service replacement, not
    with its host)."""
    from conftest import register
    name, cluster = uniq("hgdr"), uniq("hgdrc")
    asg = make_group(server, name, cluster, 2, TerminationPolicies=["NewestInstance"])
    hosts = in_service(asg, name, 2)
    ecs = server.client()
    wait_cluster_hosts(ecs, cluster, [h["InstanceId"] for h in hosts])
    td = register(ecs, uniq("hgdrtd"), [{"name": "app", "image": "busybox", "memory": 32,
                                          "command": ["sleep", "3600"]}])["taskDefinition"]["taskDefinitionArn"]
    svc = uniq("hgdrsvc")
    ecs.create_service(cluster=cluster, serviceName=svc, taskDefinition=td, desiredCount=2,
                       placementStrategy=[{"type": "spread", "field": "instanceId"}])

    def running_by_host():
        arns = ecs.list_tasks(cluster=cluster, serviceName=svc, desiredStatus="RUNNING")["taskArns"]
        ts = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
        out = {}
        for t in ts:
            if t["lastStatus"] == "RUNNING":
                out.setdefault(t["containerInstanceArn"], []).append(t["taskArn"])
        return out
    placed = wait_for(lambda: (lambda m: len(m) == 2 and m)(running_by_host()), timeout=60, interval=0.3,
                      what="a service task on each host")
    cis = {i["containerInstanceArn"]: i["ec2InstanceId"] for i in active_instances(ecs, cluster)}
    newest = max(hosts, key=lambda h: [a for a in asg.describe_scaling_activities(AutoScalingGroupName=name)["Activities"]
                                       if a["Description"].endswith(h["InstanceId"])][0]["StartTime"])["InstanceId"]
    victim_ci = [c for c, i in cis.items() if i == newest][0]
    [victim_task] = placed[victim_ci]
    asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=1)
    [left] = in_service(asg, name, 1)
    assert left["InstanceId"] != newest
    m = wait_for(lambda: (lambda m: sum(map(len, m.values())) == 2 and m)(running_by_host()), timeout=60,
                 interval=0.3, what="both service tasks running")
    assert list(m) != [victim_ci] and victim_ci not in m
    stopped = ecs.describe_tasks(cluster=cluster, tasks=[victim_task])["tasks"][0]
    assert stopped.get("stopCode") == "ServiceSchedulerInitiated", stopped
    ecs.update_service(cluster=cluster, service=svc, desiredCount=0)
    ecs.delete_service(cluster=cluster, service=svc, force=True)
    asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    wait_for(lambda: not asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"],
             timeout=60, what="group deleted")


def test_process_hosts_are_adopted_after_a_server_restart():
    """A restarted server finds its process hosts by their handles (pid + start time): the same
    hosts stay in service, none is started twice."""
    with tempfile.TemporaryDirectory() as d:
        b = start_server(d)
        try:
            name, cluster = uniq("hga"), uniq("hgac")
            asg = make_group(b, name, cluster, 2)
            before = sorted(h["InstanceId"] for h in in_service(asg, name, 2))
            agents = sorted(pids_under(os.path.join(d, "hosts")))
            assert len(agents) == 2
            b.stop()
            # The hosts outlive the server, as machines would.
            assert sorted(pids_under(os.path.join(d, "hosts"))) == agents
            b = start_server(d, port=b.port)
            asg = b.client("autoscaling")
            wait_cluster_hosts(b.client(), cluster, before)
            after = sorted(h["InstanceId"] for h in in_service(asg, name, 2))
            assert after == before
            assert sorted(pids_under(os.path.join(d, "hosts"))) == agents
        finally:
            cleanup_groups(b)
            b.stop()
            kill_all_under(d)
