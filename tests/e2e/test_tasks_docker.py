"""Tasks on the docker driver: `berth up --no-agent` plus a `berth agent --driver docker`
with its own scope, running the local `berth-test/busybox` image (built without a registry by
scripts/build-test-image.sh). Checks what Docker was asked to do (`docker inspect` of the
runtimeId), dynamic host ports that answer HTTP, health checks, exit codes, stop timeouts,
missing images, adoption after an agent restart, and that two agents sharing the daemon never
touch each other's containers.
"""
import json
import os
import tempfile
import urllib.request

import pytest

from conftest import (
    Agent, Berth, describe_task, join_token, register, resources, run_one, supports_flag, uniq,
    wait_for, wait_task,
)
from conftest import docker, docker_ok, build_test_image

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
IMAGE = "berth-test/busybox:latest"
TIMEOUT = 3


def server_args():
    # Tests here take agents away for a few seconds on purpose: keep the host-lost policy
    # (which gives up on the tasks of long-silent hosts) out of the way.
    args = ["--agent-timeout", str(TIMEOUT)]
    if supports_flag("up", "--host-lost-timeout"):
        args += ["--host-lost-timeout", "120"]
    return args




pytestmark = pytest.mark.skipif(not docker_ok(), reason="no Docker daemon")


@pytest.fixture(scope="session")
def test_image():
    build_test_image()
    return IMAGE


@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def scope():
    return uniq("e2e-scope")


@pytest.fixture(scope="module")
def berth(base):
    d = os.path.join(base, "server")
    os.makedirs(d)
    b = Berth(d, agent=False, args=server_args()).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


@pytest.fixture(scope="module")
def agent(berth, ecs, base, scope, test_image):
    a = Agent(berth, os.path.join(base, "host"), join_token(berth), driver="docker", scope=scope).start()
    a.wait_registered(ecs)
    yield a
    arns = ecs.list_tasks(cluster="default")["taskArns"]
    for t in arns:
        ecs.stop_task(cluster="default", task=t)
    for t in arns:
        try:
            wait_task(ecs, t, "STOPPED", timeout=40)
        except AssertionError:
            pass
    a.stop()
    _remove_scope(scope)


@pytest.fixture(autouse=True)
def no_task_left(request):
    """Whatever a test leaves running in the default cluster is stopped after it."""
    yield
    if "agent" not in request.fixturenames:
        return
    ecs = request.getfixturevalue("ecs")
    arns = ecs.list_tasks(cluster="default")["taskArns"]
    for t in arns:
        ecs.stop_task(cluster="default", task=t)
    for t in arns:
        wait_task(ecs, t, "STOPPED", timeout=40)


def _remove_scope(scope):
    ids = docker("ps", "-aq", "--filter", f"label=berth.scope={scope}", check=False).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)


def inspect(runtime_id):
    return json.loads(docker("inspect", runtime_id).stdout)[0]


# A long-running container that ends at once on SIGTERM (PID 1 gets no default handlers).
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]


def td_of(ecs, **c):
    # PID 1 in a container ignores SIGTERM unless it handles it: keep stops short.
    c = {"name": "app", "image": IMAGE, "memory": 32, "stopTimeout": 2, **c}
    return register(ecs, uniq("dk"), [c])["taskDefinition"]["taskDefinitionArn"]


def containers_of_task(task_arn):
    tid = task_arn.rsplit("/", 1)[1]
    return docker("ps", "-q", "--filter", f"label=berth.task-id={tid}").stdout.split()


# ---------------------------------------------------------------------------------------------

def test_agent_registers_with_docker_attributes(ecs, agent):
    ci = ecs.describe_container_instances(cluster="default", containerInstances=[agent.arn])["containerInstances"][0]
    attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
    assert attrs["berth.driver"] == "docker"
    server = json.loads(docker("version", "--format", "{{json .Server}}").stdout)
    assert attrs.get("berth.docker-version") == server["Version"].split("+")[0]
    assert ci["versionInfo"]["dockerVersion"]


def test_httpd_on_a_dynamic_port_with_limits_labels_and_health(ecs, agent, scope):
    td = td_of(
        ecs, memory=48, cpu=256, command=["httpd", "-f", "-p", "8080", "-h", "/www"],
        portMappings=[{"containerPort": 8080, "hostPort": 0}],
        environment=[{"name": "GREETING", "value": "hi there"}],
        dockerLabels={"team": "e2e"},
        healthCheck={"command": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/"],
                     "interval": 5, "timeout": 2, "retries": 2},
        stopTimeout=2,
    )
    arn = run_one(ecs, td)["taskArn"]
    t = wait_task(ecs, arn, "RUNNING", timeout=30)
    c = t["containers"][0]
    [b] = c["networkBindings"]
    assert b["containerPort"] == 8080 and b["protocol"] == "tcp" and b["bindIP"] == "0.0.0.0"
    assert 0 < b["hostPort"] != 8080
    with urllib.request.urlopen(f"http://127.0.0.1:{b['hostPort']}/", timeout=5) as r:
        assert r.status == 200 and r.read().decode().strip() == "berth test page"
    # A dynamic port is not reserved on the instance.
    assert str(b["hostPort"]) not in resources(
        ecs.describe_container_instances(cluster="default", containerInstances=[agent.arn])["containerInstances"][0])["PORTS"]

    info = inspect(c["runtimeId"])
    assert info["State"]["Running"] is True
    assert info["HostConfig"]["Memory"] == 48 * 1024 * 1024
    assert info["HostConfig"]["CpuShares"] == 256
    labels = info["Config"]["Labels"]
    assert labels["team"] == "e2e"
    assert labels["berth.task-id"] == arn.rsplit("/", 1)[1] and labels["berth.container-name"] == "app"
    assert labels["berth.task-arn"].rsplit(":", 1)[1] == arn.rsplit(":", 1)[1]
    assert labels["berth.scope"] == scope
    assert "GREETING=hi there" in info["Config"]["Env"]
    assert info["Config"]["Cmd"] == ["httpd", "-f", "-p", "8080", "-h", "/www"]
    assert info["Config"]["Healthcheck"]["Test"][0] == "CMD-SHELL"

    # Docker's health check decides the container's and the task's health.
    t = wait_for(lambda: (lambda t: t if t["healthStatus"] == "HEALTHY" else None)(describe_task(ecs, arn)), 20,
                 interval=0.2, what="HEALTHY")
    assert t["containers"][0]["healthStatus"] == "HEALTHY"

    # httpd is PID 1 and ignores SIGTERM: it is killed after the 2 s stopTimeout.
    ecs.stop_task(cluster="default", task=arn, reason="enough")
    t = wait_task(ecs, arn, "STOPPED", timeout=20)
    assert t["stopCode"] == "UserInitiated" and t["stoppedReason"] == "enough"
    assert t["containers"][0]["exitCode"] == 137
    assert (t["stoppedAt"] - t["stoppingAt"]).total_seconds() >= 1.5
    assert inspect(c["runtimeId"])["State"]["Running"] is False


def test_exit_code_command_and_environment(ecs, agent):
    td = td_of(ecs, entryPoint=["sh", "-c"], command=['test "$MODE" = strict && exit 7; exit 1'],
               environment=[{"name": "MODE", "value": "strict"}])
    arn = run_one(ecs, td)["taskArn"]
    t = wait_task(ecs, arn, "STOPPED", timeout=30)
    assert t["stopCode"] == "EssentialContainerExited"
    assert t["containers"][0]["exitCode"] == 7


def test_graceful_and_forced_stops(ecs, agent):
    graceful = td_of(ecs, command=["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"], stopTimeout=30)
    stubborn = td_of(ecs, command=["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"], stopTimeout=3)
    a = run_one(ecs, graceful)["taskArn"]
    b = run_one(ecs, stubborn)["taskArn"]
    wait_task(ecs, a, "RUNNING", timeout=30)
    wait_task(ecs, b, "RUNNING", timeout=30)
    ecs.stop_task(cluster="default", task=a)
    ecs.stop_task(cluster="default", task=b)
    ta = wait_task(ecs, a, "STOPPED", timeout=20)
    assert ta["containers"][0]["exitCode"] == 0  # handled SIGTERM
    assert (ta["stoppedAt"] - ta["stoppingAt"]).total_seconds() < 10
    tb = wait_task(ecs, b, "STOPPED", timeout=20)
    assert tb["containers"][0]["exitCode"] == 137  # SIGKILL after stopTimeout
    assert (tb["stoppedAt"] - tb["stoppingAt"]).total_seconds() >= 2.5
    for t in (ta, tb):
        assert t["stopCode"] == "UserInitiated"


def test_missing_image_fails_to_start(ecs, agent):
    td = td_of(ecs, image="berth-test/no-such-image:latest", command=["true"])
    arn = run_one(ecs, td)["taskArn"]
    t = wait_task(ecs, arn, "STOPPED", timeout=20)
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("CannotPullContainerError"), t["stoppedReason"]
    c = t["containers"][0]
    assert c["lastStatus"] == "STOPPED" and c["reason"].startswith("CannotPullContainerError")
    assert "exitCode" not in c
    ci = ecs.describe_container_instances(cluster="default", containerInstances=[agent.arn])["containerInstances"][0]
    assert resources(ci)["MEMORY"] == resources(ci, "registeredResources")["MEMORY"]


def test_restarted_agent_adopts_its_containers(ecs, agent):
    td = td_of(ecs, command=SLEEPER)
    keep = run_one(ecs, td)["taskArn"]
    drop = run_one(ecs, td)["taskArn"]
    keep_id = wait_task(ecs, keep, "RUNNING", timeout=30)["containers"][0]["runtimeId"]
    drop_id = wait_task(ecs, drop, "RUNNING", timeout=30)["containers"][0]["runtimeId"]
    agent.kill9()
    wait_for(lambda: not ecs.describe_container_instances(cluster="default", containerInstances=[agent.arn])
             ["containerInstances"][0]["agentConnected"], TIMEOUT + 3, what="agentConnected false")
    assert inspect(keep_id)["State"]["Running"] is True
    ecs.stop_task(cluster="default", task=drop)
    agent.start()
    assert agent.wait_registered(ecs) == agent.arn
    t = wait_task(ecs, drop, "STOPPED", timeout=30)
    assert t["stopCode"] == "UserInitiated"
    assert inspect(drop_id)["State"]["Running"] is False
    t = describe_task(ecs, keep)
    assert t["lastStatus"] == "RUNNING" and t["containers"][0]["runtimeId"] == keep_id
    assert containers_of_task(keep) == [keep_id[:12]]  # one container, the same one
    ecs.stop_task(cluster="default", task=keep)
    wait_task(ecs, keep, "STOPPED", timeout=30)
    assert containers_of_task(keep) == []


def test_agents_sharing_the_daemon_leave_each_other_alone(berth, ecs, agent, base):
    td = td_of(ecs, command=SLEEPER)
    mine = run_one(ecs, td)["taskArn"]
    mine_id = wait_task(ecs, mine, "RUNNING", timeout=30)["containers"][0]["runtimeId"]
    cluster = uniq("dk")
    ecs.create_cluster(clusterName=cluster)
    # No --scope: the agent's state dir is its scope.
    other = Agent(berth, os.path.join(base, "other-host"), join_token(berth, cluster), cluster=cluster,
                  driver="docker").start()
    try:
        other.wait_registered(ecs)
        theirs = []
        for _ in range(2):  # two rounds of the other agent's loop, orphan sweep included
            arn = run_one(ecs, td, cluster=cluster)["taskArn"]
            theirs.append(arn)
            wait_task(ecs, arn, "RUNNING", cluster=cluster, timeout=30)
        info = inspect(describe_task(ecs, theirs[0], cluster)["containers"][0]["runtimeId"])
        assert info["Config"]["Labels"]["berth.scope"] == os.path.realpath(other.state_dir)
        assert inspect(mine_id)["State"]["Running"] is True
        assert describe_task(ecs, mine)["lastStatus"] == "RUNNING"
        for arn in theirs:
            ecs.stop_task(cluster=cluster, task=arn)
        for arn in theirs:
            wait_task(ecs, arn, "STOPPED", cluster=cluster, timeout=30)
    finally:
        other.stop()
        _remove_scope(os.path.realpath(other.state_dir))
    ecs.stop_task(cluster="default", task=mine)
    wait_task(ecs, mine, "STOPPED", timeout=30)
