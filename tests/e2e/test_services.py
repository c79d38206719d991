"""Services end to end on real multi-agent clusters: `berth up --no-agent` plus three (or more)
`berth agent` processes with the process driver, each its own "host".

Covered: CreateService / UpdateService / DeleteService / DescribeServices / ListServices and
their errors (boto3, wire-checked against botocore's model), `aws ecs wait services-stable`,
the `berth service` CLI (deploy --wait included); the controller keeping the desired count
(killed containers replaced, crash loops backing off), spreading over instances, rolling
deployments that never go below minimumHealthyPercent nor above maximumPercent (sampled in a
thread while they run), the circuit breaker with rollback, unhealthy tasks replaced after the
grace period, lost hosts (kill -9 of an agent: tasks STOPPED with InfrastructureHealth, replaced
elsewhere, and no duplicate when the host returns), DRAINING instances, DAEMON services
following instances, and a server killed with -9 in the middle of a deployment.

Agents poll every second and the server declares them disconnected after 3 s (host lost after
6 s), so failures are seen fast. Every wait polls a condition with a deadline.
"""
import collections
import contextlib
import json
import math
import os
import re
import signal
import statistics
import tempfile
import threading
import time
from unittest import mock

import botocore
import pytest

from conftest import (
    Agent, Berth, expect_error, join_token, processes_with_argv, register, uniq, wait_for,
)

REGION = "eu-west-1"
ACCOUNT = "000000000000"
TIMEOUT = 3          # --agent-timeout; the host-lost timeout defaults to twice that
HOST_LOST = 2 * TIMEOUT
CPU, MEM = 4096, 2048
STEADY = "has reached a steady state."

# Replacement times (kill of a container -> its replacement RUNNING), for the summary.
REPLACEMENT_TIMES = []


# ---------------------------------------------------------------------------------------------
# Fixtures: one server, three agents in the default cluster (zones a, b, c).

@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def berth(base):
    b = Berth(os.path.join(base, "server"), agent=False, args=["--agent-timeout", str(TIMEOUT)])
    os.makedirs(b.data_dir)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


@pytest.fixture(scope="module")
def agents(berth, ecs, base):
    started = start_agents(berth, ecs, base, "default", 3)
    yield started
    _delete_all_services(ecs, "default")
    for a in started:
        a.stop()
    if REPLACEMENT_TIMES:
        print(f"\nreplacement times (kill -> replacement RUNNING), {len(REPLACEMENT_TIMES)} kills: "
              f"median {statistics.median(REPLACEMENT_TIMES):.3f}s max {max(REPLACEMENT_TIMES):.3f}s")


@pytest.fixture(autouse=True)
def clean_default(request):
    """Tests on the shared cluster leave it with no service, no task and every instance ACTIVE."""
    yield
    if "agents" not in request.fixturenames:
        return
    ecs = request.getfixturevalue("ecs")
    arns = ecs.list_container_instances(cluster="default", status="DRAINING")["containerInstanceArns"]
    if arns:
        ecs.update_container_instances_state(cluster="default", containerInstances=arns, status="ACTIVE")
    _delete_all_services(ecs, "default")


def start_agents(b, ecs, base, cluster, n, first=0):
    token = join_token(b, cluster)
    started = []
    for i in range(first, first + n):
        a = Agent(b, os.path.join(base, f"{cluster}-host{i}"), token, cluster=cluster,
                  attributes=[f"zone={'abcdefgh'[i % 8]}"], cpu=CPU, memory=MEM, poll_wait=1)
        started.append(a.start())
    for a in started:
        a.wait_registered(ecs)
    return started


def _delete_all_services(ecs, cluster):
    for arn in ecs.list_services(cluster=cluster)["serviceArns"]:
        ecs.delete_service(cluster=cluster, service=arn, force=True)
    wait_for(lambda: not ecs.list_tasks(cluster=cluster)["taskArns"], 30, interval=0.1,
             what="every task to stop")
    # Gone from the instances too (STOPPED, not just asked to stop).
    def all_stopped():
        arns = ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
        return all(t["lastStatus"] == "STOPPED" for t in describe_tasks(ecs, arns, cluster))
    wait_for(all_stopped, 30, interval=0.1, what="every task to be STOPPED")


@contextlib.contextmanager
def own_cluster(berth, ecs, base, n=3):
    """A fresh cluster with `n` agents of its own, for tests that kill or add hosts."""
    cluster = uniq("svc")
    ecs.create_cluster(clusterName=cluster)
    agents = start_agents(berth, ecs, base, cluster, n)
    try:
        yield cluster, agents
    finally:
        # A test that failed with a host killed: bring it back so it stops what it still runs.
        for a in agents:
            if a.proc.poll() is not None:
                with contextlib.suppress(Exception):
                    a.start().wait_registered(ecs)
        for arn in ecs.list_services(cluster=cluster)["serviceArns"]:
            ecs.delete_service(cluster=cluster, service=arn, force=True)
        try:
            wait_for(lambda: not ecs.list_tasks(cluster=cluster)["taskArns"], 20, interval=0.1)
        finally:
            for a in agents:
                a.stop()


# ---------------------------------------------------------------------------------------------
# Helpers

_marker = iter(range(10_000, 100_000))


def sleeper_argv():
    """A command line no other task uses, so its processes can be counted."""
    return ["sleep", f"{next(_marker)}{os.getpid() % 1000:03d}.5"]


def taskdef(ecs, argv=None, health=None, memory=16, family=None):
    c = {"name": "app", "image": "busybox", "memory": memory, "command": argv or sleeper_argv()}
    if health:
        c["healthCheck"] = health
    return register(ecs, family or uniq("svc"), [c])["taskDefinition"]["taskDefinitionArn"]


def crasher(ecs, code=1, family=None):
    c = {"name": "app", "image": "busybox", "memory": 16, "entryPoint": ["sh", "-c"],
         "command": [f"exit {code}"]}
    return register(ecs, family or uniq("svc"), [c])["taskDefinition"]["taskDefinitionArn"]


# Probes every 5 s (ECS's minimum interval); one result decides.
HEALTHY = {"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 1}
UNHEALTHY = {"command": ["CMD-SHELL", "test -f /nonexistent"], "interval": 5, "timeout": 2, "retries": 1}


def describe(ecs, name, cluster="default"):
    d = ecs.describe_services(cluster=cluster, services=[name])
    assert not d["failures"], d["failures"]
    return d["services"][0]


def describe_tasks(ecs, arns, cluster="default"):
    out = []
    for i in range(0, len(arns), 100):
        out += ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])["tasks"]
    return out


def service_tasks(ecs, name, cluster="default", desired="RUNNING"):
    arns = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus=desired)["taskArns"]
    return describe_tasks(ecs, arns, cluster)


def running(ecs, name, cluster="default"):
    return [t for t in service_tasks(ecs, name, cluster) if t["lastStatus"] == "RUNNING"]


def healthy(t, checked=()):
    """ECS's healthy: RUNNING (and not being stopped) and, for a task definition with a health
    check (in `checked`), HEALTHY."""
    return (t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"
            and (t["taskDefinitionArn"] not in checked or t.get("healthStatus") == "HEALTHY"))


def stable(ecs, name, cluster="default", count=None):
    s = describe(ecs, name, cluster)
    want = s["desiredCount"] if count is None else count
    return (len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED"
            and s["runningCount"] == want == s["desiredCount"] and s["pendingCount"] == 0) and s


def wait_stable(ecs, name, cluster="default", count=None, timeout=30):
    return wait_for(lambda: stable(ecs, name, cluster, count), timeout, interval=0.1,
                    what=f"service {name} to be steady")


def events(svc):
    return [e["message"] for e in svc["events"]]


def by_instance(tasks):
    return collections.Counter(t["containerInstanceArn"] for t in tasks)


def task_id(arn):
    return arn.rsplit("/", 1)[1]


def task_pids(task, argv):
    """Pids of the task's command process (the process driver runs it with the container's
    state directory, named by its runtime id, as working directory)."""
    rid = task["containers"][0]["runtimeId"]
    pids = []
    for pid in processes_with_argv(argv):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if os.path.basename(cwd) == rid and os.path.basename(os.path.dirname(cwd)) == "containers":
            pids.append(pid)
    return pids


def kill_task_process(task, argv):
    pids = task_pids(task, argv)
    assert len(pids) == 1, (task["taskArn"], pids)
    os.kill(pids[0], signal.SIGKILL)


class Sampler(threading.Thread):
    """Samples a service's tasks while it moves: the fewest healthy RUNNING tasks and the most
    live ones (desiredStatus RUNNING, not yet STOPPED) ever seen. A sample counts only when the
    task list did not change while it was taken, so it is a consistent picture."""

    def __init__(self, b, name, checked=(), cluster="default"):
        super().__init__(daemon=True)
        self.ecs = b.client()
        self.name, self.checked, self.cluster = name, checked, cluster
        self.min_healthy = None
        self.max_live = 0
        self.samples = 0
        self.history = []
        self.halt = threading.Event()

    def sample(self):
        arns = self.ecs.list_tasks(cluster=self.cluster, serviceName=self.name)["taskArns"]
        tasks = describe_tasks(self.ecs, arns, self.cluster)
        again = self.ecs.list_tasks(cluster=self.cluster, serviceName=self.name)["taskArns"]
        if sorted(arns) != sorted(again):
            return
        h = sum(1 for t in tasks if healthy(t, self.checked))
        live = sum(1 for t in tasks if t["desiredStatus"] == "RUNNING" and t["lastStatus"] != "STOPPED")
        self.min_healthy = h if self.min_healthy is None else min(self.min_healthy, h)
        self.max_live = max(self.max_live, live)
        self.samples += 1
        self.history.append((round(time.monotonic(), 2), h, live))

    def run(self):
        while not self.halt.is_set():
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - the server may be restarting
                pass
            time.sleep(0.03)

    def stop(self):
        self.halt.set()
        self.join(10)


@contextlib.contextmanager
def sampling(b, name, checked=(), cluster="default"):
    s = Sampler(b, name, checked, cluster)
    s.sample()
    s.start()
    try:
        yield s
    finally:
        s.stop()


@contextlib.contextmanager
def fast_waiters():
    """The aws CLI's ECS waiters with their own acceptors, polling every second instead of 15 s
    (botocore reads models from AWS_DATA_PATH before its own)."""
    src = os.path.join(os.path.dirname(botocore.__file__), "data", "ecs", "2014-11-13", "waiters-2.json")
    with open(src) as f:
        model = json.load(f)
    for w in model["waiters"].values():
        w["delay"] = 1
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "ecs", "2014-11-13"))
        with open(os.path.join(d, "ecs", "2014-11-13", "waiters-2.json"), "w") as f:
            json.dump(model, f)
        with mock.patch.dict(os.environ, {"AWS_DATA_PATH": d}):
            yield


# ---------------------------------------------------------------------------------------------
# The API: create, describe, list, update, delete and their errors

def test_create_and_describe_every_field(ecs, agents):
    name = uniq("web")
    td = taskdef(ecs)
    r = ecs.create_service(
        cluster="default", serviceName=name, taskDefinition=td, desiredCount=2,
        deploymentConfiguration={"maximumPercent": 150, "minimumHealthyPercent": 50,
                                 "deploymentCircuitBreaker": {"enable": True, "rollback": True}},
        placementStrategy=[{"type": "spread", "field": "attribute:zone"}],
        placementConstraints=[{"type": "memberOf", "expression": "attribute:zone in [a, b, c]"}],
        healthCheckGracePeriodSeconds=30, tags=[{"key": "team", "value": "blue"}],
        propagateTags="SERVICE", launchType="EC2")["service"]
    assert r["serviceArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/default/{name}"
    assert r["clusterArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/default"
    assert r["serviceName"] == name and r["status"] == "ACTIVE" and r["desiredCount"] == 2
    assert r["taskDefinition"] == td and r["launchType"] == "EC2"
    assert r["schedulingStrategy"] == "REPLICA"
    assert r["deploymentConfiguration"] == {
        "maximumPercent": 150, "minimumHealthyPercent": 50,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    assert r["placementStrategy"] == [{"type": "spread", "field": "attribute:zone"}]
    assert r["placementConstraints"][0]["type"] == "memberOf"
    assert r["healthCheckGracePeriodSeconds"] == 30
    assert r["deploymentController"] == {"type": "ECS"}
    assert r["propagateTags"] == "SERVICE"
    assert r["tags"] == [{"key": "team", "value": "blue"}]
    [d] = r["deployments"]
    assert re.fullmatch(r"ecs-svc/\d{19}", d["id"])
    assert d["status"] == "PRIMARY" and d["taskDefinition"] == td and d["desiredCount"] == 2
    assert d["rolloutState"] == "IN_PROGRESS"

    s = wait_stable(ecs, name, count=2)
    assert s["runningCount"] == 2 and s["pendingCount"] == 0
    [d2] = s["deployments"]
    assert d2["id"] == d["id"] and d2["runningCount"] == 2 and d2["failedTasks"] == 0
    assert d2["rolloutState"] == "COMPLETED"
    assert d2["rolloutStateReason"] == f"ECS deployment {d['id']} completed."
    msgs = events(s)
    assert msgs[0] == f"(service {name}) {STEADY}"
    started = [m for m in msgs if "has started 2 tasks" in m]
    assert len(started) == 1
    tasks = running(ecs, name)
    assert re.fullmatch(rf"\(service {name}\) has started 2 tasks: \(task [0-9a-f]{{32}}\) \(task [0-9a-f]{{32}}\)\.",
                        started[0])
    assert sorted(re.findall(r"task ([0-9a-f]{32})", started[0])) == sorted(task_id(t["taskArn"]) for t in tasks)
    # Events newest first.
    stamps = [e["createdAt"] for e in s["events"]]
    assert stamps == sorted(stamps, reverse=True)
    # Tasks carry the service's group, the deployment as startedBy and the service's tags.
    tagged = ecs.describe_tasks(cluster="default", tasks=[t["taskArn"] for t in tasks], include=["TAGS"])["tasks"]
    for t in tagged:
        assert t["group"] == f"service:{name}" and t["startedBy"] == d["id"]
        assert {"key": "team", "value": "blue"} in t["tags"]
    # Tags show only when asked for.
    assert "tags" not in s
    with_tags = ecs.describe_services(cluster="default", services=[name], include=["TAGS"])["services"][0]
    assert with_tags["tags"] == [{"key": "team", "value": "blue"}]
    # By ARN too, and missing ones come back as failures.
    missing = uniq("nope")
    d = ecs.describe_services(cluster="default", services=[r["serviceArn"], missing])
    assert [x["serviceName"] for x in d["services"]] == [name]
    assert d["failures"] == [{"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/default/{missing}", "reason": "MISSING"}]


def test_service_tags_through_the_tagging_api(ecs, agents):
    name = uniq("tag")
    arn = ecs.create_service(cluster="default", serviceName=name, taskDefinition=taskdef(ecs), desiredCount=0,
                             tags=[{"key": "team", "value": "blue"}])["service"]["serviceArn"]
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "blue"}]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "prod"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["team"])
    got = ecs.describe_services(cluster="default", services=[name], include=["TAGS"])["services"][0]["tags"]
    assert got == [{"key": "env", "value": "prod"}]
    missing = arn.replace(name, name + "-gone")
    expect_error("InvalidParameterException", ecs.list_tags_for_resource, resourceArn=missing)


def test_task_and_instance_tags_through_the_tagging_api(ecs, agents):
    td = taskdef(ecs)
    task = ecs.run_task(cluster="default", taskDefinition=td, tags=[{"key": "a", "value": "1"}])["tasks"][0]
    arn = task["taskArn"]
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "a", "value": "1"}]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["a"])
    got = ecs.describe_tasks(cluster="default", tasks=[arn], include=["TAGS"])["tasks"][0]["tags"]
    assert got == [{"key": "b", "value": "2"}]
    ecs.stop_task(cluster="default", task=arn)
    inst = ecs.list_container_instances(cluster="default")["containerInstanceArns"][0]
    ecs.tag_resource(resourceArn=inst, tags=[{"key": "rack", "value": "r1"}])
    assert {"key": "rack", "value": "r1"} in ecs.list_tags_for_resource(resourceArn=inst)["tags"]
    ecs.untag_resource(resourceArn=inst, tagKeys=["rack"])
    assert {"key": "rack", "value": "r1"} not in ecs.list_tags_for_resource(resourceArn=inst)["tags"]
    gone = arn.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"
    expect_error("InvalidParameterException", ecs.list_tags_for_resource, resourceArn=gone)


def test_list_and_describe_service_deployments(ecs, agents):
    name = uniq("dep")
    family = uniq("depfam")
    first_td = taskdef(ecs, family=family)
    svc_arn = ecs.create_service(cluster="default", serviceName=name, taskDefinition=first_td,
                                 desiredCount=2)["service"]["serviceArn"]
    wait_stable(ecs, name, count=2)
    second_td = taskdef(ecs, family=family)
    ecs.update_service(cluster="default", service=name, taskDefinition=second_td)
    wait_stable(ecs, name, count=2)
    listed = ecs.list_service_deployments(cluster="default", service=name)["serviceDeployments"]
    assert [d["status"] for d in listed] == ["SUCCESSFUL", "SUCCESSFUL"], listed
    newest, oldest = listed
    assert newest["createdAt"] >= oldest["createdAt"] and newest["finishedAt"]
    assert newest["serviceArn"] == svc_arn
    assert newest["serviceDeploymentArn"].startswith(f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/default/{name}/")
    assert ecs.list_service_deployments(cluster="default", service=name, status=["IN_PROGRESS"])["serviceDeployments"] == []
    page = ecs.list_service_deployments(cluster="default", service=name, maxResults=1)
    assert page["serviceDeployments"] == [newest] and page["nextToken"]
    rest = ecs.list_service_deployments(cluster="default", service=name, nextToken=page["nextToken"])
    assert rest["serviceDeployments"] == [oldest]
    missing = newest["serviceDeploymentArn"].rsplit("/", 1)[0] + "/999"
    got = ecs.describe_service_deployments(serviceDeploymentArns=[newest["serviceDeploymentArn"], missing])
    [d] = got["serviceDeployments"]
    assert got["failures"] == [{"arn": missing, "reason": "MISSING"}]
    assert d["status"] == "SUCCESSFUL"
    assert d["targetServiceRevision"]["requestedTaskCount"] == 2
    assert d["targetServiceRevision"]["runningTaskCount"] == 2
    assert [s["arn"] for s in d["sourceServiceRevisions"]] == [oldest["targetServiceRevisionArn"]]
    assert d["deploymentCircuitBreaker"]["status"] == "DISABLED"
    expect_error("ServiceNotFoundException", ecs.list_service_deployments, cluster="default", service=name + "x")
    expect_error("InvalidParameterException", ecs.describe_service_deployments, serviceDeploymentArns=["nope"])


def test_list_services_filters_and_pages(ecs, agents):
    td = taskdef(ecs)
    names = [uniq("ls") for _ in range(3)]
    for n in names:
        ecs.create_service(cluster="default", serviceName=n, taskDefinition=td, desiredCount=0)
    arns = ecs.list_services(cluster="default")["serviceArns"]
    want = {f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/default/{n}" for n in names}
    assert want <= set(arns)
    assert ecs.list_services(cluster="default", schedulingStrategy="DAEMON")["serviceArns"] == []
    assert want <= set(ecs.list_services(cluster="default", launchType="EC2")["serviceArns"])
    assert ecs.list_services(cluster="default", launchType="FARGATE")["serviceArns"] == []
    first = ecs.list_services(cluster="default", maxResults=2)
    assert len(first["serviceArns"]) == 2 and first["nextToken"]
    rest = ecs.list_services(cluster="default", maxResults=2, nextToken=first["nextToken"])
    assert set(first["serviceArns"] + rest["serviceArns"]) == set(arns)
    # boto3's paginator walks the same pages.
    pages = ecs.get_paginator("list_services").paginate(cluster="default", PaginationConfig={"PageSize": 1})
    assert sorted(a for p in pages for a in p["serviceArns"]) == sorted(arns)
    # A desired count of 0 is steady at once.
    for n in names:
        wait_stable(ecs, n, count=0)
    # Deleted services leave the list.
    ecs.delete_service(cluster="default", service=names[0])
    assert f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/default/{names[0]}" not in \
        ecs.list_services(cluster="default")["serviceArns"]


def test_errors(ecs, agents):
    td = taskdef(ecs)
    name = uniq("err")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=1)
    e = expect_error("InvalidParameterException", ecs.create_service, cluster="default", serviceName=name,
                     taskDefinition=td, desiredCount=1)
    assert "Creation of service was not idempotent" in str(e)
    expect_error("ClusterNotFoundException", ecs.create_service, cluster=uniq("nocl"), serviceName=uniq("x"),
                 taskDefinition=td, desiredCount=1)
    expect_error("ClientException", ecs.create_service, cluster="default", serviceName=uniq("x"),
                 taskDefinition="no-such-family:1", desiredCount=1)
    for bad in ({"maximumPercent": 100, "minimumHealthyPercent": 100},
                {"maximumPercent": 50}, {"minimumHealthyPercent": 101}):
        expect_error("InvalidParameterException", ecs.create_service, cluster="default", serviceName=uniq("x"),
                     taskDefinition=td, desiredCount=1, deploymentConfiguration=bad)
    expect_error("InvalidParameterException", ecs.create_service, cluster="default", serviceName=uniq("x"),
                 taskDefinition=td, desiredCount=1, schedulingStrategy="DAEMON")
    expect_error("InvalidParameterException", ecs.create_service, cluster="default", serviceName=uniq("x"),
                 taskDefinition=td, schedulingStrategy="DAEMON",
                 placementStrategy=[{"type": "spread", "field": "instanceId"}])
    expect_error("InvalidParameterException", ecs.create_service, cluster="default", serviceName=uniq("x"),
                 taskDefinition=td, desiredCount=1, placementStrategy=[{"type": "sideways"}])
    expect_error("InvalidParameterException", ecs.create_service, cluster="default", serviceName="bad name!",
                 taskDefinition=td, desiredCount=1)

    expect_error("InvalidParameterException", ecs.describe_services, cluster="default",
                 services=[uniq("x") for _ in range(11)])
    expect_error("ClusterNotFoundException", ecs.describe_services, cluster=uniq("nocl"), services=[name])
    expect_error("ClusterNotFoundException", ecs.list_services, cluster=uniq("nocl"))
    nope = uniq("nope")
    expect_error("ServiceNotFoundException", ecs.update_service, cluster="default", service=nope, desiredCount=1)
    expect_error("ServiceNotFoundException", ecs.delete_service, cluster="default", service=nope)
    expect_error("InvalidParameterException", ecs.update_service, cluster="default", service=name,
                 deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 100})
    # ECS's rule: a REPLICA service is scaled to 0 before it is deleted, unless forced.
    e = expect_error("InvalidParameterException", ecs.delete_service, cluster="default", service=name)
    assert "scaled above 0" in str(e)
    assert describe(ecs, name)["status"] == "ACTIVE"
    ecs.update_service(cluster="default", service=name, desiredCount=0)
    d = ecs.delete_service(cluster="default", service=name)["service"]
    assert d["status"] in ("DRAINING", "INACTIVE")
    expect_error("ServiceNotActiveException", ecs.update_service, cluster="default", service=name, desiredCount=1)
    wait_for(lambda: describe(ecs, name)["status"] == "INACTIVE", 10, what="the service to be INACTIVE")
    expect_error("ServiceNotActiveException", ecs.update_service, cluster="default", service=name, desiredCount=1)
    # Deleting again answers with the service as it is (ECS keeps INACTIVE services a while).
    assert ecs.delete_service(cluster="default", service=name)["service"]["status"] == "INACTIVE"
    # The name is free again once the old service is INACTIVE.
    again = ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=0)["service"]
    assert again["status"] == "ACTIVE"


def test_create_while_draining_is_refused(ecs, agents):
    name = uniq("drn")
    td = taskdef(ecs)
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=2)
    wait_stable(ecs, name, count=2)
    assert ecs.delete_service(cluster="default", service=name, force=True)["service"]["status"] == "DRAINING"
    e = expect_error("InvalidParameterException", ecs.create_service, cluster="default", serviceName=name,
                     taskDefinition=td, desiredCount=1)
    assert "still Draining" in str(e)
    wait_for(lambda: describe(ecs, name)["status"] == "INACTIVE", 15, what="the service to be INACTIVE")
    s = describe(ecs, name)
    assert s["desiredCount"] == 0 and s["runningCount"] == 0
    assert all(t["lastStatus"] == "STOPPED" and t["stopCode"] == "ServiceSchedulerInitiated"
               for t in service_tasks(ecs, name, desired="STOPPED"))


def test_update_service_fields(ecs, agents):
    name = uniq("upd")
    td1 = taskdef(ecs)
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td1, desiredCount=2)
    first = wait_stable(ecs, name, count=2)["deployments"][0]["id"]
    # desiredCount only: the same deployment scales, no new one.
    s = ecs.update_service(cluster="default", service=name, desiredCount=4)["service"]
    assert s["desiredCount"] == 4 and [d["id"] for d in s["deployments"]] == [first]
    wait_stable(ecs, name, count=4)
    ecs.update_service(cluster="default", service=name, desiredCount=1)
    s = wait_stable(ecs, name, count=1)
    assert any("has stopped 3 running tasks" in m for m in events(s))
    # Deployment configuration: members given change, the others stay.
    s = ecs.update_service(cluster="default", service=name,
                           deploymentConfiguration={"minimumHealthyPercent": 50})["service"]
    assert s["deploymentConfiguration"]["minimumHealthyPercent"] == 50
    assert s["deploymentConfiguration"]["maximumPercent"] == 200
    assert [d["id"] for d in s["deployments"]] == [first]
    s = ecs.update_service(cluster="default", service=name, healthCheckGracePeriodSeconds=12)["service"]
    assert s["healthCheckGracePeriodSeconds"] == 12 and [d["id"] for d in s["deployments"]] == [first]
    # forceNewDeployment: a new PRIMARY deployment of the same task definition replaces the tasks.
    old = {t["taskArn"] for t in running(ecs, name)}
    s = ecs.update_service(cluster="default", service=name, forceNewDeployment=True)["service"]
    assert s["deployments"][0]["status"] == "PRIMARY" and s["deployments"][0]["id"] != first
    assert s["deployments"][0]["taskDefinition"] == td1
    assert s["deployments"][1]["id"] == first and s["deployments"][1]["status"] == "ACTIVE"
    s = wait_stable(ecs, name, count=1)
    assert not old & {t["taskArn"] for t in running(ecs, name)}
    second = s["deployments"][0]["id"]
    # Placement changes start a deployment too, and are honoured by it.
    s = ecs.update_service(cluster="default", service=name,
                           placementConstraints=[{"type": "memberOf", "expression": "attribute:zone == b"}])["service"]
    assert s["deployments"][0]["id"] != second
    wait_stable(ecs, name, count=1)
    [t] = running(ecs, name)
    assert t["containerInstanceArn"] == agents[1].arn
    # A new task definition: the service shows it.
    td2 = taskdef(ecs, family=td1.rsplit("/", 1)[1].split(":")[0])
    assert td2.endswith(":2")
    s = ecs.update_service(cluster="default", service=name, taskDefinition=td2)["service"]
    assert s["taskDefinition"] == td2 and s["deployments"][0]["taskDefinition"] == td2
    wait_stable(ecs, name, count=1)
    assert [t["taskDefinitionArn"] for t in running(ecs, name)] == [td2]
    # By family only: the latest ACTIVE revision.
    s = ecs.update_service(cluster="default", service=name, taskDefinition=td1.rsplit("/", 1)[1].split(":")[0])
    assert s["service"]["taskDefinition"] == td2


def test_unplaceable_service_says_why(ecs, agents):
    name = uniq("big")
    td = taskdef(ecs, memory=MEM + 1)
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td, desiredCount=1)

    def unable():
        return [m for m in events(describe(ecs, name)) if "was unable to place a task" in m]
    [m] = wait_for(unable, 10, what="the placement failure event")
    assert m.startswith(f"(service {name}) was unable to place a task because no container instance met all "
                        "of its requirements. The closest matching (container-instance ")
    assert "has insufficient memory available" in m
    s = describe(ecs, name)
    assert s["runningCount"] == 0 and s["pendingCount"] == 0
    # The same event is not repeated while the cause lasts: let the controller make more passes
    # (another service reaching its steady state proves it did) and look again.
    other = uniq("small")
    ecs.create_service(cluster="default", serviceName=other, taskDefinition=taskdef(ecs), desiredCount=1)
    wait_stable(ecs, other, count=1)
    assert len(unable()) == 1


# ---------------------------------------------------------------------------------------------
# The controller: spread, replacement, backoff

def test_tasks_spread_and_killed_containers_are_replaced(ecs, agents):
    name = uniq("spread")
    argv = sleeper_argv()
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=taskdef(ecs, argv), desiredCount=6)
    wait_stable(ecs, name, count=6)
    tasks = running(ecs, name)
    assert sorted(by_instance(tasks).values()) == [2, 2, 2]
    assert len(processes_with_argv(argv)) == 6

    # Kill one container per host, one after another, and time each replacement.
    for victim_host in [a.arn for a in agents]:
        before = {t["taskArn"]: t for t in running(ecs, name)}
        victim = next(t for t in before.values() if t["containerInstanceArn"] == victim_host)
        t0, wall0 = time.monotonic(), time.time()
        kill_task_process(victim, argv)

        def replaced():
            now = running(ecs, name)
            new = [t for t in now if t["taskArn"] not in before]
            return new if len(now) == 6 and new else None
        [new] = wait_for(replaced, 10, interval=0.02, what="the replacement to run")
        REPLACEMENT_TIMES.append(time.monotonic() - t0)
        [dead] = describe_tasks(ecs, [victim["taskArn"]])
        assert dead["lastStatus"] == "STOPPED" and dead["stopCode"] == "EssentialContainerExited"
        assert dead["containers"][0]["exitCode"] == 137
        # Placed right after the failure was reported (server-side timestamps).
        placed = (new["createdAt"] - dead["stoppedAt"]).total_seconds()
        print(f"kill -> reported STOPPED {dead['stoppedAt'].timestamp() - wall0:.3f}s, "
              f"-> placed {placed:.3f}s, -> RUNNING {(new['startedAt'] - new['createdAt']).total_seconds():.3f}s")
        assert 0 <= placed < 1.0
        # Still spread: the replacement goes where a task is missing.
        assert sorted(by_instance(running(ecs, name)).values()) == [2, 2, 2]
    assert len(processes_with_argv(argv)) == 6
    s = wait_stable(ecs, name, count=6)
    assert sum("has started 1 tasks" in m for m in events(s)) == 3
    # Tasks that ran and were killed are replaced, not counted as failures of the deployment
    # (nor do they slow the next replacement down as a crash loop would).
    assert s["deployments"][0]["failedTasks"] == 0
    # Scaling in keeps the balance (ECS stops tasks from the busiest instance), and so does
    # scaling out again.
    ecs.update_service(cluster="default", service=name, desiredCount=3)
    wait_stable(ecs, name, count=3)
    assert sorted(by_instance(running(ecs, name)).values()) == [1, 1, 1]
    ecs.update_service(cluster="default", service=name, desiredCount=6)
    wait_stable(ecs, name, count=6)
    assert sorted(by_instance(running(ecs, name)).values()) == [2, 2, 2]
    print(f"replacement times: {[round(x, 3) for x in REPLACEMENT_TIMES]}")
    # Well under a few seconds each (the controller reacts to the report, not to a timer).
    assert max(REPLACEMENT_TIMES) < 5


def test_several_kills_at_once_are_all_replaced(ecs, agents):
    name = uniq("multi")
    argv = sleeper_argv()
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=taskdef(ecs, argv), desiredCount=6)
    wait_stable(ecs, name, count=6)
    before = running(ecs, name)
    t0 = time.monotonic()
    for t in before[:4]:
        kill_task_process(t, argv)

    def restored():
        now = running(ecs, name)
        return len(now) == 6 and len({t["taskArn"] for t in now} - {t["taskArn"] for t in before}) == 4
    wait_for(restored, 10, interval=0.02, what="four replacements")
    REPLACEMENT_TIMES.append(time.monotonic() - t0)
    assert sorted(by_instance(running(ecs, name)).values()) == [2, 2, 2]
    wait_for(lambda: len(processes_with_argv(argv)) == 6, 5, what="six processes")


def test_crash_loop_backs_off_and_says_so(ecs, agents):
    name = uniq("crash")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=crasher(ecs), desiredCount=1)
    msg = f"(service {name}) is unable to consistently start tasks successfully."

    def complained():
        s = describe(ecs, name)
        return s if any(m.startswith(msg) for m in events(s)) else None
    s = wait_for(complained, 15, what="the crash-loop event")
    # Launches slow down: the gaps between tries grow (1 s, 2 s, 4 s ... after three failures).
    def tries():
        ts = service_tasks(ecs, name, desired="STOPPED") + service_tasks(ecs, name)
        return sorted(t["createdAt"] for t in ts)
    # One read that holds six (a task moving from running to stopped between the two lists'
    # reads can be missing from a second read).
    created = wait_for(lambda: c if len(c := tries()) >= 6 else None, 20, interval=0.2, what="six tries")
    gaps = [(b - a).total_seconds() for a, b in zip(created, created[1:])]
    assert gaps[3] >= 0.9 and gaps[4] >= 1.8, gaps
    assert len(created) < 12, f"no backoff: {len(created)} tries"
    for t in service_tasks(ecs, name, desired="STOPPED"):
        assert t["stopCode"] == "EssentialContainerExited" and t["containers"][0]["exitCode"] == 1
    s = describe(ecs, name)
    assert sum(m.startswith(msg) for m in events(s)) == 1, "the event is not repeated while it lasts"
    assert s["deployments"][0]["rolloutState"] == "IN_PROGRESS"  # no circuit breaker asked for
    assert s["deployments"][0]["failedTasks"] >= 5  # (the sixth try may still be under way)


# ---------------------------------------------------------------------------------------------
# Rolling deployments

@pytest.mark.parametrize("desired,max_pct,min_pct,checks", [
    (4, 200, 100, True),    # room for all the new tasks: they start before any old one stops
    (3, 100, 50, True),     # no room: old ones stop first, ceil(1.5) = 2 keep serving
    (5, 100, 60, False),    # no health checks, deployed the moment the first tasks run
])
def test_rolling_deployment_respects_the_limits(berth, ecs, agents, desired, max_pct, min_pct, checks):
    name = uniq(f"roll{max_pct}")
    family = uniq("rollfam")
    argv1, argv2 = sleeper_argv(), sleeper_argv()
    # The new revision has a health check (first probe 5 s after the start): a new task counts
    # as healthy only once it passed it, which makes each step of the rollout last.
    td1 = taskdef(ecs, argv1, family=family)
    td2 = taskdef(ecs, argv2, health=HEALTHY if checks else None, family=family)
    checked = {td2} if checks else set()
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td1, desiredCount=desired,
                       deploymentConfiguration={"maximumPercent": max_pct, "minimumHealthyPercent": min_pct})
    if checks:
        wait_stable(ecs, name, count=desired)
    else:
        wait_for(lambda: len(running(ecs, name)) == desired, 10, interval=0.02, what="the tasks to run")
    floor = math.ceil(desired * min_pct / 100)   # ECS rounds the minimum up
    cap = math.floor(desired * max_pct / 100)    # and the maximum down
    with sampling(berth, name, checked=checked) as s:
        ecs.update_service(cluster="default", service=name, taskDefinition=td2)
        with fast_waiters():
            berth.aws("ecs", "wait", "services-stable", "--cluster", "default", "--services", name)
        # The waiter returned on a stable service: one deployment, all of it running.
        waited = describe(ecs, name)
        assert len(waited["deployments"]) == 1 and waited["runningCount"] == waited["desiredCount"] == desired
        # (The last new task may still be in its first health check: the rollout completes then.)
        final = wait_stable(ecs, name, count=desired)
        s.sample()
    assert s.samples > (20 if checks else 5), s.samples
    assert s.min_healthy >= floor, f"healthy fell to {s.min_healthy} < {floor}: {s.history}"
    assert s.max_live <= cap, f"{s.max_live} tasks live > {cap}: {s.history}"
    if max_pct == 200:
        # Room for all new tasks: they start before any old one stops.
        assert s.max_live == 2 * desired
    elif checks:
        # No room: old ones stop first, down to exactly the minimum (for as long as the new
        # ones take to turn healthy, so the sampler sees it).
        assert s.min_healthy == floor
    d = final["deployments"][0]
    assert d["taskDefinition"] == td2 and d["rolloutState"] == "COMPLETED" and d["status"] == "PRIMARY"
    tasks = running(ecs, name)
    assert {t["taskDefinitionArn"] for t in tasks} == {td2} and len(tasks) == desired
    assert len(processes_with_argv(argv2)) == desired
    wait_for(lambda: processes_with_argv(argv1) == [], 10, what="old processes to end")
    msgs = events(final)
    assert msgs[0] == f"(service {name}) {STEADY}"
    assert f"(service {name}) (deployment {d['id']}) deployment completed." in msgs
    stopped = [m for m in msgs if re.match(rf"\(service {name}\) has stopped \d+ running tasks: \(task ", m)]
    assert sum(int(re.search(r"stopped (\d+)", m).group(1)) for m in stopped) == desired
    for t in service_tasks(ecs, name, desired="STOPPED"):
        assert t["taskDefinitionArn"] == td1 and t["stopCode"] == "ServiceSchedulerInitiated"
        assert t["stoppedReason"] == f"Scaling activity initiated by (deployment {d['id']})"


def test_services_stable_waiter_failures(berth, ecs, agents):
    # The real waiter (15 s delay) on an already stable service returns at its first look.
    name = uniq("wait")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=taskdef(ecs), desiredCount=1)
    wait_stable(ecs, name, count=1)
    t0 = time.monotonic()
    berth.aws("ecs", "wait", "services-stable", "--cluster", "default", "--services", name)
    assert time.monotonic() - t0 < 10
    with fast_waiters():
        p = berth.aws("ecs", "wait", "services-stable", "--cluster", "default", "--services", uniq("nope"), check=False)
        assert p.returncode != 0 and "terminal failure" in p.stderr
        ecs.delete_service(cluster="default", service=name, force=True)
        p = berth.aws("ecs", "wait", "services-stable", "--cluster", "default", "--services", name, check=False)
        assert p.returncode != 0 and "terminal failure" in p.stderr
        berth.aws("ecs", "wait", "services-inactive", "--cluster", "default", "--services", name)
    assert describe(ecs, name)["status"] == "INACTIVE"


def test_circuit_breaker_rolls_back(berth, ecs, agents):
    name = uniq("cb")
    family = uniq("cbfam")
    argv = sleeper_argv()
    good = taskdef(ecs, argv, family=family)
    bad = crasher(ecs, family=family)
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=good, desiredCount=3,
                       deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    first = wait_stable(ecs, name, count=3)["deployments"][0]["id"]
    with sampling(berth, name) as s:
        p = berth.cli("service", "deploy", name, bad, "--wait", "--timeout", "60", check=False)
        assert p.returncode != 0, p.stdout
        assert re.search(r"deployment ecs-svc/\d+ failed: .*tasks failed to start\. The service rolled back to ecs-svc/",
                         p.stderr), p.stderr
        wait_stable(ecs, name, count=3)
    assert s.min_healthy >= 3, s.history   # the good tasks kept serving throughout
    svc = describe(ecs, name)
    [d] = svc["deployments"]
    assert d["taskDefinition"] == good and d["id"] != first and d["rolloutState"] == "COMPLETED"
    msgs = events(svc)
    failed = [m for m in msgs if m.endswith("deployment failed: tasks failed to start.")]
    assert len(failed) == 1, msgs
    bad_id = re.search(r"\(deployment (ecs-svc/\d+)\)", failed[0]).group(1)
    assert bad_id not in (first, d["id"])
    assert any(m == f"(service {name}) (deployment {d['id']}) rolling back to deployment {first}." for m in msgs), msgs
    # The failed deployment's tasks: at least the threshold (3 for 3 desired) crashed; a
    # replacement still starting when the breaker tripped is stopped by the rollback, as ECS does
    # (the same rule as test_circuit_breaker_rolls_back_tasks_that_never_turn_healthy).
    bad_tasks = [t for t in service_tasks(ecs, name, desired="STOPPED") if t["startedBy"] == bad_id]
    crashed = [t for t in bad_tasks if t["stopCode"] == "EssentialContainerExited"]
    assert len(crashed) >= 3, bad_tasks
    rolled_back = [t for t in bad_tasks if t not in crashed]
    assert all(t["stopCode"] == "ServiceSchedulerInitiated"
               and t["stoppedReason"] == f"Scaling activity initiated by (deployment {d['id']})"
               for t in rolled_back), rolled_back
    assert {t["taskDefinitionArn"] for t in running(ecs, name)} == {good}
    wait_for(lambda: len(processes_with_argv(argv)) == 3, 10, what="three good processes")
    assert p.stdout.count("\n") >= 2  # progress lines were printed
    # ListServiceDeployments folds the rollback into the deployment it undid, as ECS does.
    listed = ecs.list_service_deployments(cluster="default", service=name)["serviceDeployments"]
    assert [d["status"] for d in listed] == ["ROLLBACK_SUCCESSFUL", "SUCCESSFUL"], listed
    [failed_dep] = ecs.describe_service_deployments(
        serviceDeploymentArns=[listed[0]["serviceDeploymentArn"]])["serviceDeployments"]
    assert failed_dep["serviceDeploymentArn"].endswith("/" + bad_id.split("/")[-1])
    assert failed_dep["rollback"]["serviceRevisionArn"].endswith("/" + d["id"].split("/")[-1])
    assert failed_dep["deploymentCircuitBreaker"]["status"] == "TRIGGERED"


def test_circuit_breaker_rolls_back_tasks_that_never_turn_healthy(berth, ecs, agents):
    name = uniq("cbh")
    family = uniq("cbhfam")
    argv = sleeper_argv()
    good = taskdef(ecs, argv, family=family)
    sick = taskdef(ecs, health=UNHEALTHY, family=family)
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=good, desiredCount=3,
                       deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    first = wait_stable(ecs, name, count=3)["deployments"][0]["id"]
    before = {t["taskArn"] for t in running(ecs, name)}
    with sampling(berth, name, checked={sick}) as s:
        bad_id = ecs.update_service(cluster="default", service=name, taskDefinition=sick)["service"]["deployments"][0]["id"]

        def rolled_back():
            svc = describe(ecs, name)
            return svc if svc["deployments"][0]["id"] not in (first, bad_id) else None
        svc = wait_for(rolled_back, 25, interval=0.1, what="the rollback")
        assert svc["deployments"][0]["taskDefinition"] == good
        wait_stable(ecs, name, count=3)
    assert s.min_healthy >= 3, s.history  # the good tasks served throughout
    msgs = events(describe(ecs, name))
    assert f"(service {name}) (deployment {bad_id}) deployment failed: tasks failed to start." in msgs
    sick_tasks = [t for t in service_tasks(ecs, name, desired="STOPPED") if t["startedBy"] == bad_id]
    reasons = collections.Counter(t["stoppedReason"] for t in sick_tasks)
    # At least the threshold failed their checks; any later one went with the rollback.
    assert reasons["Task failed container health checks"] >= 3, reasons
    assert set(reasons) <= {"Task failed container health checks",
                            f"Scaling activity initiated by (deployment {svc['deployments'][0]['id']})"}, reasons
    # The tasks of the first deployment were replaced by the rollback's own, never before.
    assert not before & {t["taskArn"] for t in running(ecs, name)}


def test_circuit_breaker_threshold_without_rollback(ecs, agents):
    # desired 8: threshold max(3, ceil(8 / 2)) = 4 failed tasks; FAILED, no rollback target.
    name = uniq("cbn")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=crasher(ecs), desiredCount=8,
                       deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": False}})

    def failed():
        d = describe(ecs, name)["deployments"][0]
        return d if d["rolloutState"] == "FAILED" else None
    d = wait_for(failed, 20, what="the deployment to fail")
    assert d["rolloutStateReason"].startswith("ECS deployment circuit breaker: tasks failed to start")
    assert d["failedTasks"] >= 4
    assert d["status"] == "PRIMARY"


def test_unhealthy_tasks_are_replaced_after_the_grace_period(ecs, agents):
    name = uniq("sick")
    grace = 7
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=taskdef(ecs, health=UNHEALTHY),
                       desiredCount=1, healthCheckGracePeriodSeconds=grace)
    [t] = wait_for(lambda: running(ecs, name), 10, what="the task to run")
    wait_for(lambda: describe_tasks(ecs, [t["taskArn"]])[0]["healthStatus"] == "UNHEALTHY", 10, interval=0.1,
             what="the task to turn UNHEALTHY")
    # UNHEALTHY after one probe (5 s), but kept until the grace period has passed.
    assert describe_tasks(ecs, [t["taskArn"]])[0]["desiredStatus"] == "RUNNING"

    def stopped():
        x = describe_tasks(ecs, [t["taskArn"]])[0]
        return x if x["lastStatus"] == "STOPPED" else None
    dead = wait_for(stopped, 15, interval=0.1, what="the unhealthy task to be stopped")
    assert dead["stopCode"] == "ServiceSchedulerInitiated"
    assert dead["stoppedReason"] == "Task failed container health checks"
    assert (dead["stoppingAt"] - dead["startedAt"]).total_seconds() >= grace - 0.5
    wait_for(lambda: any(x["taskArn"] != t["taskArn"] for x in running(ecs, name)), 5,
             what="a replacement")
    msgs = events(describe(ecs, name))
    assert f"(service {name}) (task {task_id(t['taskArn'])}) failed container health checks." in msgs


def test_unhealthy_without_grace_is_replaced_at_once(ecs, agents):
    name = uniq("sick0")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=taskdef(ecs, health=UNHEALTHY),
                       desiredCount=1)
    [t] = wait_for(lambda: running(ecs, name), 10, what="the task to run")

    def stopped():
        x = describe_tasks(ecs, [t["taskArn"]])[0]
        return x if x["desiredStatus"] == "STOPPED" else None
    dead = wait_for(stopped, 15, interval=0.05, what="the unhealthy task to be stopped")
    assert dead["stoppedReason"] == "Task failed container health checks"
    # First probe 5 s after the start, stopped as soon as it failed.
    assert (dead["stoppingAt"] - dead["startedAt"]).total_seconds() < 8


# ---------------------------------------------------------------------------------------------
# Hosts that go away, drain, come and go

def test_lost_host_tasks_move_and_never_duplicate(berth, ecs, base):
    with own_cluster(berth, ecs, base) as (cluster, hosts):
        name = uniq("lost")
        argv = sleeper_argv()
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=taskdef(ecs, argv), desiredCount=6)
        wait_stable(ecs, name, cluster, count=6)
        assert sorted(by_instance(running(ecs, name, cluster)).values()) == [2, 2, 2]
        victim = hosts[0]
        on_victim = [t for t in running(ecs, name, cluster) if t["containerInstanceArn"] == victim.arn]
        assert len(on_victim) == 2

        victim.kill9()
        t0 = time.monotonic()

        def given_up():
            ts = describe_tasks(ecs, [t["taskArn"] for t in on_victim], cluster)
            return ts if all(t["lastStatus"] == "STOPPED" for t in ts) else None
        gone = wait_for(given_up, HOST_LOST + 10, interval=0.1, what="the lost host's tasks to be STOPPED")
        lost_after = time.monotonic() - t0
        # Counted from the agent's last recorded poll (polls are held up to 1 s, and last_seen
        # is written at most every TIMEOUT / 4 s), so up to ~2 s before the kill.
        assert lost_after >= HOST_LOST - 2, f"given up after {lost_after:.1f}s, before the host-lost timeout"
        for t in gone:
            assert t["stopCode"] == "InfrastructureHealth" and "Host lost" in t["stoppedReason"]

        def moved():
            ts = running(ecs, name, cluster)
            return ts if len(ts) == 6 and all(t["containerInstanceArn"] != victim.arn for t in ts) else None
        ts = wait_for(moved, 5, interval=0.05, what="replacements on the other hosts")
        REPLACEMENT_TIMES.append(time.monotonic() - t0 - lost_after)
        assert sorted(by_instance(ts).values()) == [3, 3]
        # The lost host's processes still run (nobody can tell it), next to their replacements.
        assert len(processes_with_argv(argv)) == 8

        # Back: its stale containers are stopped, not adopted, and nothing is started twice.
        victim.start()
        assert victim.wait_registered(ecs) == on_victim[0]["containerInstanceArn"]
        wait_for(lambda: len(processes_with_argv(argv)) == 6, 15, what="the stale containers to be stopped")
        for t in describe_tasks(ecs, [t["taskArn"] for t in on_victim], cluster):
            assert t["lastStatus"] == "STOPPED" and t["stopCode"] == "InfrastructureHealth"
        s = wait_stable(ecs, name, cluster, count=6)
        assert len(running(ecs, name, cluster)) == 6
        assert s["runningCount"] == 6
        # Still six a little later: nothing was duplicated or resurrected.
        wait_for(lambda: describe(ecs, name, cluster)["events"][0]["message"].endswith(STEADY), 5)
        assert len(processes_with_argv(argv)) == 6
        assert len(running(ecs, name, cluster)) == 6


def test_draining_instance_tasks_move_within_min_healthy(berth, ecs, agents):
    name = uniq("drain")
    argv = sleeper_argv()
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=taskdef(ecs, argv), desiredCount=6,
                       deploymentConfiguration={"maximumPercent": 150, "minimumHealthyPercent": 100})
    wait_stable(ecs, name, count=6)
    host = agents[0].arn
    on_host = {t["taskArn"] for t in running(ecs, name) if t["containerInstanceArn"] == host}
    assert len(on_host) == 2
    with sampling(berth, name) as s:
        ecs.update_container_instances_state(cluster="default", containerInstances=[host], status="DRAINING")

        def moved():
            ts = running(ecs, name)
            return ts if len(ts) == 6 and all(t["containerInstanceArn"] != host for t in ts) else None
        ts = wait_for(moved, 15, interval=0.05, what="the tasks to leave the draining host")
        wait_stable(ecs, name, count=6)
    assert s.min_healthy >= 6, s.history
    assert s.max_live <= 9, s.history
    assert sorted(by_instance(ts).values()) == [3, 3]
    def all_stopped():
        ts = describe_tasks(ecs, list(on_host))
        return ts if all(t["lastStatus"] == "STOPPED" for t in ts) else None
    stopped = wait_for(all_stopped, 10, what="the drained tasks to stop")
    assert all(t["stopCode"] == "ServiceSchedulerInitiated" for t in stopped)
    ci = ecs.describe_container_instances(cluster="default", containerInstances=[host])["containerInstances"][0]
    assert ci["runningTasksCount"] == 0 and ci["status"] == "DRAINING"
    assert len(processes_with_argv(argv)) == 6
    # Scaling up while it drains places nothing there.
    ecs.update_service(cluster="default", service=name, desiredCount=8)
    wait_stable(ecs, name, count=8)
    assert host not in by_instance(running(ecs, name))
    # Back to ACTIVE, more tasks go there first (spread): the newest tasks are all on it.
    ecs.update_container_instances_state(cluster="default", containerInstances=[host], status="ACTIVE")
    ecs.update_service(cluster="default", service=name, desiredCount=12)
    wait_stable(ecs, name, count=12)
    assert by_instance(running(ecs, name))[host] == 4
    # Scaling in takes from the busiest instances, not simply the newest tasks: balanced.
    ecs.update_service(cluster="default", service=name, desiredCount=6)
    wait_stable(ecs, name, count=6)
    assert sorted(by_instance(running(ecs, name)).values()) == [2, 2, 2]


def test_daemon_service_follows_instances(berth, ecs, base):
    with own_cluster(berth, ecs, base) as (cluster, hosts):
        name = uniq("daemon")
        argv = sleeper_argv()
        s = ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=taskdef(ecs, argv),
                               schedulingStrategy="DAEMON")["service"]
        assert s["schedulingStrategy"] == "DAEMON"
        assert s["deploymentConfiguration"]["maximumPercent"] == 100
        assert s["deploymentConfiguration"]["minimumHealthyPercent"] == 0
        assert ecs.list_services(cluster=cluster, schedulingStrategy="DAEMON")["serviceArns"] == [s["serviceArn"]]
        expect_error("InvalidParameterException", ecs.update_service, cluster=cluster, service=name, desiredCount=5)

        def one_each(n, exclude=()):
            def check():
                ts = running(ecs, name, cluster)
                c = by_instance(ts)
                svc = describe(ecs, name, cluster)
                ok = (len(ts) == n and set(c.values()) == {1} and not set(c) & set(exclude)
                      and svc["desiredCount"] == n and svc["runningCount"] == n)
                return ts if ok else None
            return wait_for(check, 15, interval=0.05, what=f"one task on each of {n} instances")
        one_each(3)
        # A new host gets its task.
        extra = start_agents(berth, ecs, base, cluster, 1, first=3)[0]
        try:
            ts = one_each(4)
            assert extra.arn in by_instance(ts)
            # A draining host loses it.
            ecs.update_container_instances_state(cluster=cluster, containerInstances=[hosts[1].arn], status="DRAINING")
            one_each(3, exclude=[hosts[1].arn])
            # A deregistered host too.
            ecs.deregister_container_instance(cluster=cluster, containerInstance=extra.arn, force=True)
            one_each(2, exclude=[hosts[1].arn, extra.arn])
        finally:
            extra.kill9()
        ecs.update_container_instances_state(cluster=cluster, containerInstances=[hosts[1].arn], status="ACTIVE")
        one_each(3)
        wait_for(lambda: len(processes_with_argv(argv)) == 3, 10, what="three daemon processes")
        # A daemon service deletes without being scaled down first.
        assert ecs.delete_service(cluster=cluster, service=name)["service"]["status"] == "DRAINING"
        wait_for(lambda: describe(ecs, name, cluster)["status"] == "INACTIVE", 15, what="INACTIVE")
        wait_for(lambda: processes_with_argv(argv) == [], 10, what="daemon processes to end")


def test_server_killed_mid_deployment_finishes_it(base):
    d = os.path.join(base, uniq("srv"))
    os.makedirs(d)
    b = Berth(d, agent=False, args=["--agent-timeout", "2"]).start()   # host lost after 4 s
    hosts = []
    try:
        ecs = b.client()
        hosts = start_agents(b, ecs, d, "default", 3)
        name = uniq("restart")
        family = uniq("rfam")
        argv1, argv2 = sleeper_argv(), sleeper_argv()
        td1 = taskdef(ecs, argv1, family=family)
        td2 = taskdef(ecs, argv2, health=HEALTHY, family=family)
        ecs.create_service(cluster="default", serviceName=name, taskDefinition=td1, desiredCount=4,
                           deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 50})
        wait_stable(ecs, name, count=4)
        ecs.update_service(cluster="default", service=name, taskDefinition=td2)

        def midway():
            ts = running(ecs, name)
            return {t["taskDefinitionArn"] for t in ts} == {td1, td2}
        wait_for(midway, 10, interval=0.05, what="the deployment to be under way")
        assert describe(ecs, name)["deployments"][0]["rolloutState"] == "IN_PROGRESS"

        b.kill9()
        killed = time.monotonic()
        # Down for longer than the host-lost timeout: hosts look silent, but it is the control
        # plane that was away, so no task may be given up for it.
        wait_for(lambda: time.monotonic() - killed > 5 and all("poll failed" in h.log() for h in hosts), 20,
                 interval=0.2, what="the outage to outlast the host-lost timeout")
        b.start()
        with sampling(b, name, checked={td2}) as s:
            s_final = wait_stable(ecs, name, count=4, timeout=40)
        d0 = s_final["deployments"][0]
        assert d0["taskDefinition"] == td2 and d0["rolloutState"] == "COMPLETED"
        assert s.min_healthy is None or s.min_healthy >= 2, s.history
        assert {t["taskDefinitionArn"] for t in running(ecs, name)} == {td2}
        stopped = service_tasks(ecs, name, desired="STOPPED")
        assert not [t for t in stopped if t["stopCode"] == "InfrastructureHealth"], \
            "tasks were given up because the server, not the hosts, was away"
        wait_for(lambda: len(processes_with_argv(argv2)) == 4 and processes_with_argv(argv1) == [], 10,
                 what="exactly the new processes")
    finally:
        with contextlib.suppress(Exception):
            _delete_all_services(b.client(), "default")
        for h in hosts:
            h.stop()
        b.stop()


# ---------------------------------------------------------------------------------------------
# The CLI

def test_cli_service_commands(berth, ecs, agents):
    name = uniq("cli")
    family = uniq("clifam")
    td1 = taskdef(ecs, family=family)
    td2 = taskdef(ecs, family=family)
    p = berth.cli("service", "create", name, td1, "--count", "2", "--min-healthy-percent", "50",
                  "--max-percent", "150", "--grace-period", "5", "--circuit-breaker")
    assert name in p.stdout
    s = wait_stable(ecs, name, count=2)
    assert s["deploymentConfiguration"] == {"maximumPercent": 150, "minimumHealthyPercent": 50,
                                            "deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    assert s["healthCheckGracePeriodSeconds"] == 5
    ls = berth.cli("service", "ls").stdout.replace("│", " ")
    assert "SERVICE" in ls and re.search(rf"^\s*{re.escape(name)}\s+ACTIVE\s+2\s+2\s+0\s+{family}:1\s+COMPLETED", ls, re.M), ls
    js = json.loads(berth.cli("service", "ls", "-o", "json").stdout)
    assert name in [x["serviceName"] for x in js]
    show = berth.cli("service", "show", name).stdout
    assert "PRIMARY" in show and STEADY in show
    assert json.loads(berth.cli("service", "show", name, "-o", "json").stdout)["serviceName"] == name

    berth.cli("service", "scale", name, "3")
    wait_stable(ecs, name, count=3)

    p = berth.cli("service", "deploy", name, f"{family}:2", "--wait", "--timeout", "60")
    lines = p.stdout.splitlines()
    progress = [ln for ln in lines if re.match(r"\[\s*\d+\.\ds\] ", ln)]
    assert len(progress) >= 2, p.stdout   # it followed the rollout as it moved
    assert any("ACTIVE" in ln for ln in progress), p.stdout
    assert re.search(r"deployment ecs-svc/\d+ completed", p.stdout), p.stdout
    s = describe(ecs, name)
    assert s["taskDefinition"] == td2 and len(s["deployments"]) == 1
    assert len(running(ecs, name)) == 3

    # --force redeploys the same revision.
    before = {t["taskArn"] for t in running(ecs, name)}
    berth.cli("service", "deploy", name, "--force", "--wait", "--timeout", "60")
    assert not before & {t["taskArn"] for t in running(ecs, name)}

    p = berth.cli("service", "rm", name, check=False)
    assert p.returncode != 0 and "scaled above 0" in p.stderr
    berth.cli("service", "rm", name, "--force")
    wait_for(lambda: describe(ecs, name)["status"] == "INACTIVE", 15, what="INACTIVE")
    p = berth.cli("service", "show", uniq("nope"), check=False)
    assert p.returncode != 0 and "MISSING" in p.stderr
