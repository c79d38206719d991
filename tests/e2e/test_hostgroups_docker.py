"""Host groups on the docker provider: each host is a container running `berth agent` with the
process driver inside. Killing a host container (`docker kill`) is a host dying with its
tasks: the group replaces it and the service's tasks are rescheduled onto the other host(s).

Cleanup: groups are force-deleted; every container labelled with this test's group names is
removed (by label), even on failure.
"""

import tempfile

import pytest

from conftest import build_test_image, docker, docker_ok, register, uniq, wait_for
from test_hostgroups import (active_instances, cleanup_groups, in_service, kill_all_under, make_group,
                             start_server, wait_cluster_hosts)

pytestmark = pytest.mark.skipif(not docker_ok(), reason="needs a Docker daemon")


def remove_containers(label):
    ids = docker("ps", "-aq", "--filter", f"label=berth.hostgroup={label}", check=False).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)


def service_tasks_by_host(ecs, cluster, service):
    arns = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")["taskArns"]
    if not arns:
        return {}
    out = {}
    for t in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]:
        if t["lastStatus"] == "RUNNING":
            out.setdefault(t["containerInstanceArn"], []).append(t["taskArn"])
    return out


def test_killed_host_container_is_replaced_and_its_tasks_move():
    # Busybox (for `sleep` inside the host image) comes with the test image's build.
    build_test_image()
    name, cluster = uniq("hgd"), uniq("hgdc")
    with tempfile.TemporaryDirectory() as d:
        b = start_server(d, "--host-provider", "docker")
        try:
            asg = make_group(b, name, cluster, 2, provider="docker")
            hosts = in_service(asg, name, 2)
            ecs = b.client()
            wait_cluster_hosts(ecs, cluster, [h["InstanceId"] for h in hosts])
            # Each host is its own container with the instance type's limits.
            ids = docker("ps", "-q", "--filter", f"label=berth.hostgroup={name}").stdout.split()
            assert len(ids) == 2
            limits = docker("inspect", "-f", "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}", ids[0]).stdout.split()
            assert limits == [str(2 * 10**9), str(2048 * 1024 * 1024)]

            td = register(ecs, uniq("hgdtd"), [{"name": "app", "image": "busybox", "memory": 32,
                                                 "command": ["sleep", "3600"]}])["taskDefinition"]["taskDefinitionArn"]
            svc = uniq("hgdsvc")
            ecs.create_service(cluster=cluster, serviceName=svc, taskDefinition=td, desiredCount=2,
                               placementStrategy=[{"type": "spread", "field": "instanceId"}])
            placed = wait_for(lambda: (lambda m: len(m) == 2 and m)(service_tasks_by_host(ecs, cluster, svc)),
                              timeout=90, interval=0.3, what="two service tasks on two hosts")
            cis = {i["containerInstanceArn"]: i["ec2InstanceId"] for i in active_instances(ecs, cluster)}
            victim_ci = sorted(placed)[0]
            victim = cis[victim_ci]
            survivor_ci = [c for c in placed if c != victim_ci][0]
            docker("kill", f"berth-host-{victim}")

            # Replaced: two hosts again, the victim gone; the service runs both tasks elsewhere.
            def replaced():
                hs = in_service(asg, name, 2)
                return victim not in [h["InstanceId"] for h in hs] and hs
            wait_for(replaced, timeout=120, interval=0.5, what="a replacement host")

            def moved():
                m = service_tasks_by_host(ecs, cluster, svc)
                return victim_ci not in m and sum(len(v) for v in m.values()) == 2 and m
            m = wait_for(moved, timeout=120, interval=0.5, what="the service's tasks rescheduled")
            assert survivor_ci in m
            acts = asg.describe_scaling_activities(AutoScalingGroupName=name)["Activities"]
            assert any(a["Description"] == f"Terminating EC2 instance: {victim}" for a in acts)
            ecs.update_service(cluster=cluster, service=svc, desiredCount=0)
            ecs.delete_service(cluster=cluster, service=svc, force=True)
        finally:
            cleanup_groups(b)
            b.stop()
            remove_containers(name)
            kill_all_under(d)
