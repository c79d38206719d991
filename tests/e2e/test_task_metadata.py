"""The task metadata endpoint (v4): every container gets ECS_CONTAINER_METADATA_URI_V4 and
reads its own container, its task and their stats in ECS's JSON shapes, from a bridge-mode and
a host-mode container on the docker driver and from a process-driver task; a URI answers only
for the task whose container was given it (a wrong token is a 404).

One `berth up --no-agent` with two agents: docker (cluster `default`, its own scope) and
process (cluster `proc`). Every task is stopped and every container removed by label.
"""
import json
import os
import tempfile
import urllib.error
import urllib.request

import pytest

from conftest import Agent, Berth, join_token, register, run_one, uniq, wait_for, wait_task
from conftest import docker, docker_ok, build_test_image

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
IMAGE = "berth-test/busybox:latest"
SLEEP = "trap 'exit 0' TERM; while :; do sleep 0.2; done"




@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def berth(base):
    d = os.path.join(base, "server")
    os.makedirs(d)
    b = Berth(d, agent=False, args=["--agent-timeout", "3"]).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


def _stop_all(ecs, cluster):
    arns = ecs.list_tasks(cluster=cluster)["taskArns"]
    for t in arns:
        ecs.stop_task(cluster=cluster, task=t)
    for t in arns:
        wait_task(ecs, t, "STOPPED", cluster=cluster, timeout=40)


@pytest.fixture(scope="module")
def docker_agent(berth, ecs, base):
    if not docker_ok():
        pytest.skip("no Docker daemon")
    build_test_image()
    scope = uniq("e2e-md")
    a = Agent(berth, os.path.join(base, "docker-host"), join_token(berth), driver="docker",
              scope=scope).start()
    a.wait_registered(ecs)
    yield a
    try:
        _stop_all(ecs, "default")
    finally:
        a.stop()
        ids = docker("ps", "-aq", "--filter", f"label=berth.scope={scope}", check=False).stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False)


@pytest.fixture(scope="module")
def process_agent(berth, ecs, base):
    ecs.create_cluster(clusterName="proc")
    a = Agent(berth, os.path.join(base, "process-host"), join_token(berth, "proc"), cluster="proc",
              driver="process", attributes=["ecs.availability-zone=eu-west-1c"]).start()
    a.wait_registered(ecs)
    yield a
    try:
        _stop_all(ecs, "proc")
    finally:
        a.stop()


def get(url):
    """(status, parsed JSON or None)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def docker_output(ecs, task_arn, marker):
    def ready():
        t = ecs.describe_tasks(cluster="default", tasks=[task_arn])["tasks"][0]
        rid = t["containers"][0].get("runtimeId")
        out = docker("logs", rid, check=False).stdout if rid else ""
        return out if marker in out else None
    return wait_for(ready, timeout=30, what=f"{marker} in the container's output")


def parse_output(out):
    """The JSON line the container printed, and the URI it was given."""
    lines = out.splitlines()
    uri = next(line.split("=", 1)[1] for line in lines if line.startswith("URI="))
    body = next(line.split("=", 1)[1] for line in lines if line.startswith("TASK="))
    return uri, json.loads(body)


def in_container_fetch(network_mode):
    return {
        "name": "app", "image": IMAGE, "memory": 32, "cpu": 128, "stopTimeout": 2,
        "portMappings": [{"containerPort": 8080}] if network_mode == "bridge" else [],
        "dockerLabels": {"team": "md"},
        "command": ["sh", "-c",
                    'echo "URI=$ECS_CONTAINER_METADATA_URI_V4"; '
                    'echo "TASK=$(wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task)"; '
                    'echo "SELF=$(wget -qO- $ECS_CONTAINER_METADATA_URI_V4)"; ' + SLEEP],
    }


def same_arn(a, b):
    """ARNs equal but for the region (berth names resources in the region each client signs
    for; the agent sees the server's)."""
    return a.split(":")[4:] == b.split(":")[4:] and a.split(":")[:3] == b.split(":")[:3]


def check_task_shape(task, task_arn, family, cluster, zone=None):
    for k in ("Cluster", "TaskARN", "Family", "Revision", "DesiredStatus", "KnownStatus", "Limits",
              "AvailabilityZone", "LaunchType", "Containers"):
        assert k in task, k
    assert same_arn(task["TaskARN"], task_arn)
    assert task["Cluster"] == cluster
    assert task["Family"] == family and task["Revision"] == "1"
    assert task["DesiredStatus"] == "RUNNING"
    # The agent's ecs.availability-zone attribute, else the task's region + "a".
    assert task["AvailabilityZone"] == (zone or task["TaskARN"].split(":")[3] + "a")
    assert task["LaunchType"] == "EC2"
    [c] = task["Containers"]
    for k in ("DockerId", "Name", "DockerName", "Image", "Labels", "DesiredStatus", "KnownStatus",
              "Limits", "Type", "ContainerARN", "Networks"):
        assert k in c, k
    assert c["Name"] == "app"
    assert c["Labels"]["com.amazonaws.ecs.task-arn"] == task["TaskARN"]
    assert c["Labels"]["com.amazonaws.ecs.cluster"] == cluster
    assert c["Labels"]["com.amazonaws.ecs.task-definition-family"] == family
    return c


def test_bridge_container_reads_its_task_and_a_wrong_token_is_404(ecs, docker_agent):
    family = uniq("md-bridge")
    td = register(ecs, family, [in_container_fetch("bridge")])["taskDefinition"]["taskDefinitionArn"]
    arn = run_one(ecs, td)["taskArn"]
    wait_task(ecs, arn, "RUNNING", timeout=30)
    uri, task = parse_output(docker_output(ecs, arn, "SELF="))
    c = check_task_shape(task, arn, family, "default")
    described = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]["containers"][0]
    assert c["DockerId"] == described["runtimeId"]
    assert c["Image"] == IMAGE and c["ImageID"].startswith("sha256:")
    assert c["KnownStatus"] == "RUNNING"
    assert c["Limits"] == {"CPU": 128, "Memory": 32}
    assert c["Labels"]["team"] == "md"
    [net] = c["Networks"]
    assert net["NetworkMode"] == "bridge" and net["IPv4Addresses"][0].count(".") == 3
    [port] = c["Ports"]
    assert port["ContainerPort"] == 8080 and port["HostPort"] == described["networkBindings"][0]["hostPort"]
    assert same_arn(c["ContainerARN"], described["containerArn"])
    # The URI holds an unguessable token, on the Docker bridge's gateway.
    prefix, token = uri.rsplit("/", 1)
    assert prefix.endswith("/v4") and len(token) == 64
    # From the host too: the right token answers, a wrong one (or none) is a 404.
    status, body = get(uri)
    assert status == 200 and body["DockerId"] == c["DockerId"]
    assert get(f"{prefix}/{'0' * 64}/task")[0] == 404
    assert get(f"{prefix}/{token[:-1]}x")[0] == 404
    assert get(prefix + "/")[0] == 404
    status, stats = get(uri + "/stats")
    assert status == 200 and "memory_stats" in stats and "cpu_stats" in stats
    status, all_stats = get(uri + "/task/stats")
    assert status == 200 and set(all_stats) == {c["DockerId"]}
    # A second task gets its own token, which answers only for itself.
    arn2 = run_one(ecs, td)["taskArn"]
    wait_task(ecs, arn2, "RUNNING", timeout=30)
    uri2, task2 = parse_output(docker_output(ecs, arn2, "SELF="))
    assert uri2 != uri and same_arn(task2["TaskARN"], arn2)
    assert get(uri)[1]["DockerId"] == c["DockerId"]
    # Once the task has stopped, its URI answers no more.
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=30)
    wait_for(lambda: get(uri)[0] == 404, timeout=20, what="the stopped task's URI to be a 404")


def test_host_mode_container_reaches_the_endpoint(ecs, docker_agent):
    family = uniq("md-host")
    td = register(ecs, family, [in_container_fetch("host")], networkMode="host")
    arn = run_one(ecs, td["taskDefinition"]["taskDefinitionArn"])["taskArn"]
    wait_task(ecs, arn, "RUNNING", timeout=30)
    _, task = parse_output(docker_output(ecs, arn, "SELF="))
    c = check_task_shape(task, arn, family, "default")
    assert c["Networks"][0]["NetworkMode"] == "host"


def test_process_task_reads_its_task(ecs, process_agent, base):
    family = uniq("md-proc")
    out = os.path.join(base, family + ".json")
    fetch = ("import json,os,urllib.request as u; b=os.environ['ECS_CONTAINER_METADATA_URI_V4']; "
             f"open({out!r}+'.tmp','w').write(json.dumps({{'uri': b, 'task': json.load(u.urlopen(b+'/task'))}})); "
             f"os.rename({out!r}+'.tmp', {out!r})")
    c = {"name": "app", "image": "python", "memory": 32, "stopTimeout": 2,
         "command": ["sh", "-c", f"python3 -c \"{fetch}\"; {SLEEP}"]}
    td = register(ecs, family, [c])["taskDefinition"]["taskDefinitionArn"]
    arn = run_one(ecs, td, cluster="proc")["taskArn"]
    wait_task(ecs, arn, "RUNNING", cluster="proc", timeout=30)
    wait_for(lambda: os.path.exists(out), timeout=30, what="the process task's metadata")
    with open(out) as f:
        got = json.load(f)
    assert got["uri"].startswith("http://")
    c = check_task_shape(got["task"], arn, family, "proc", "eu-west-1c")
    assert c["KnownStatus"] == "RUNNING" and c["DockerId"]
    prefix = got["uri"].rsplit("/", 1)[0]
    assert get(prefix + "/" + "f" * 64)[0] == 404
