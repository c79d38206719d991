"""Agent identity end to end (issue 14): a join token only joins; each agent then acts with its
own instance credential and only for its own instance. Each test here is an attack that worked
while the join token was a cluster-wide bearer token: agent A polling B's desired tasks (and
their environment), A reporting B's task STOPPED (B's agent then killed the real process), a
phantom registration with a stolen token after rotation, hostile ids in agent calls.
"""
import json
import os
import tempfile
import urllib.error
import urllib.request

import pytest

from conftest import Agent, Berth, join_token, register, uniq, wait_for, wait_task

TIMEOUT = 3


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


def call(berth, path, body=None, headers=None):
    """An agent-protocol call; answers (status, parsed body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(berth.endpoint + path, data=data, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


def saved(agent):
    with open(os.path.join(agent.state_dir, "agent.json")) as f:
        return json.load(f)


def as_agent(agent, instance=None):
    s = saved(agent)
    return {"x-berth-instance": instance or s["instanceId"], "x-berth-instance-credential": s["credential"]}


@pytest.fixture(scope="module")
def pair(berth, ecs, base):
    """Hosts a and b in a fresh cluster; b runs a task whose environment holds a secret value."""
    cluster = uniq("id")
    ecs.create_cluster(clusterName=cluster)
    token = join_token(berth, cluster)
    a = Agent(berth, os.path.join(base, "a"), token, cluster=cluster, attributes=["host=a"]).start()
    b = Agent(berth, os.path.join(base, "b"), token, cluster=cluster, attributes=["host=b"]).start()
    try:
        a.wait_registered(ecs)
        b.wait_registered(ecs)
        td = register(ecs, uniq("victim"), [{
            "name": "app", "image": "busybox", "memory": 16, "command": ["sleep", "600"],
            "environment": [{"name": "DB_PASSWORD", "value": "hunter2"}]}])["taskDefinition"]["taskDefinitionArn"]
        t = ecs.run_task(cluster=cluster, taskDefinition=td,
                         placementConstraints=[{"type": "memberOf", "expression": "attribute:host == b"}])
        arn = t["tasks"][0]["taskArn"]
        wait_task(ecs, arn, "RUNNING", cluster=cluster)
        yield {"cluster": cluster, "token": token, "a": a, "b": b, "task": arn}
    finally:
        for t in ecs.list_tasks(cluster=cluster)["taskArns"]:
            ecs.stop_task(cluster=cluster, task=t)
        for t in ecs.list_tasks(cluster=cluster)["taskArns"]:
            wait_task(ecs, t, "STOPPED", cluster=cluster)
        a.stop()
        b.stop()


def test_agent_state_holds_a_server_chosen_id_and_a_private_credential(pair):
    for agent in (pair["a"], pair["b"]):
        s = saved(agent)
        assert len(s["instanceId"]) == 32 and all(c in "0123456789abcdef" for c in s["instanceId"])
        assert s["credential"].startswith("bic1.")
        mode = os.stat(os.path.join(agent.state_dir, "agent.json")).st_mode & 0o777
        assert mode == 0o600, oct(mode)


def test_an_agent_cannot_poll_another_agents_tasks(berth, pair):
    b_id = saved(pair["b"])["instanceId"]
    poll = f"/agent/v1/poll?cluster={pair['cluster']}&instance={b_id}&since=&wait=0"
    status, own = call(berth, poll, headers=as_agent(pair["b"]))
    assert status == 200 and len(own["tasks"]) == 1
    # A names B (in the query and the header) with its own credential; A names itself in the
    # header but B in the query; the join token alone; nothing at all.
    attempts = [as_agent(pair["a"], instance=b_id), as_agent(pair["a"]),
                {"x-berth-join-token": pair["token"]}, {}]
    for headers in attempts:
        status, body = call(berth, poll, headers=headers)
        assert status == 403, (headers, body)
        assert body["__type"] == "AccessDeniedException"
        assert "hunter2" not in json.dumps(body)


def test_an_agent_cannot_report_another_agents_task_stopped(berth, ecs, pair):
    b_id = saved(pair["b"])["instanceId"]
    task_id = pair["task"].rsplit("/", 1)[1]
    report = {"cluster": pair["cluster"], "instanceId": b_id, "tasks": [{
        "taskId": task_id, "lastStatus": "STOPPED",
        "containers": [{"name": "app", "lastStatus": "STOPPED", "exitCode": 0}]}]}
    for headers in (as_agent(pair["a"], instance=b_id), {"x-berth-join-token": pair["token"]}):
        status, body = call(berth, "/agent/v1/status", report, headers=headers)
        assert status == 403, body
        assert body["__type"] == "AccessDeniedException"
    t = ecs.describe_tasks(cluster=pair["cluster"], tasks=[pair["task"]])["tasks"][0]
    assert t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"


def test_hostile_ids_in_agent_calls_are_clean_400s(berth, pair):
    cred = saved(pair["a"])["credential"]
    for bad in ("x/../../y", "a" * 300):
        headers = {"x-berth-instance": bad, "x-berth-instance-credential": cred}
        status, body = call(berth, f"/agent/v1/poll?cluster={pair['cluster']}&instance={bad}&wait=0",
                            headers=headers)
        assert status == 400 and body["__type"] == "InvalidParameterException", body
        report = {"cluster": pair["cluster"], "instanceId": bad, "tasks": []}
        status, body = call(berth, "/agent/v1/status", report, headers=headers)
        assert status == 400 and body["__type"] == "InvalidParameterException", body
    me = as_agent(pair["a"])
    status, body = call(berth, f"/agent/v1/poll?cluster=x/../y&instance={me['x-berth-instance']}&wait=0",
                        headers=me)
    assert status == 400 and body["__type"] == "InvalidParameterException", body


def test_a_stolen_token_registers_no_phantom_after_rotation_and_grace(berth, ecs, pair):
    cluster = pair["cluster"]
    old = pair["token"]
    out = json.loads(berth.cli("join-token", "rotate", cluster, "--grace", "2", "--output", "json").stdout)
    new = out["token"]
    assert new != old and out["previousTokensValidUntil"] > 0
    reg = {"cluster": cluster, "hostname": "phantom", "resources": {"cpu": 1024, "memory": 512}}

    def refused():
        status, body = call(berth, "/agent/v1/register", reg, headers={"x-berth-join-token": old})
        if status == 200:
            ecs.deregister_container_instance(cluster=cluster, containerInstance=body["instanceArn"],
                                              force=True)
            return False
        assert status == 403 and body["__type"] == "UnrecognizedClientException", body
        return True
    wait_for(refused, 20, interval=0.2, what="the rotated-out token to be refused")
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    assert len(arns) == 2, arns
    status, body = call(berth, "/agent/v1/register", {**reg, "hostname": "new"},
                        headers={"x-berth-join-token": new})
    assert status == 200 and body["credential"].startswith("bic1."), body
    ecs.deregister_container_instance(cluster=cluster, containerInstance=body["instanceArn"], force=True)

    # Agent b was started with the old token: killed and restarted with it, it re-registers
    # with its credential as the same instance and adopts its running task.
    b = pair["b"]
    before = saved(b)
    n = b.log().count(" registered")
    b.kill9()
    b.start()
    wait_for(lambda: b.log().count(" registered") > n, 20, what="agent b to re-register")
    assert "registration failed" not in b.log()
    assert saved(b) == before
    t = ecs.describe_tasks(cluster=cluster, tasks=[pair["task"]])["tasks"][0]
    assert t["lastStatus"] == "RUNNING"
    d = ecs.describe_container_instances(cluster=cluster, containerInstances=[before["instanceId"]])
    wait_for(lambda: ecs.describe_container_instances(cluster=cluster, containerInstances=[before["instanceId"]])
             ["containerInstances"][0]["agentConnected"], 10, what="agent b connected")
    assert d["containerInstances"][0]["status"] == "ACTIVE"


def test_deregistration_revokes_the_credential(berth, ecs, base):
    cluster = uniq("rv")
    ecs.create_cluster(clusterName=cluster)
    a = Agent(berth, os.path.join(base, "rv"), join_token(berth, cluster), cluster=cluster).start()
    try:
        arn = a.wait_registered(ecs)
        me = as_agent(a)
        a.kill9()
        ecs.deregister_container_instance(cluster=cluster, containerInstance=arn, force=True)
        report = {"cluster": cluster, "instanceId": me["x-berth-instance"], "tasks": []}
        status, body = call(berth, "/agent/v1/status", report, headers=me)
        assert status == 403, body
        status, body = call(berth, f"/agent/v1/poll?cluster={cluster}&instance={me['x-berth-instance']}&wait=0",
                            headers=me)
        assert status == 200 and body["registered"] is False
    finally:
        a.stop()


def test_an_agent_with_an_id_from_before_credentials_migrates(berth, ecs, base):
    """A state dir written by an older agent holds its self-chosen id and no credential; the
    instance (registered then, so no credential kept) is re-registered with the join token,
    keeps its id, and the agent gets its credential."""
    cluster = uniq("mg")
    ecs.create_cluster(clusterName=cluster)
    legacy = "legacy-" + uniq("h").replace("-", "")[:20]
    arn = f"arn:aws:ecs:us-east-1:000000000000:container-instance/{cluster}/{legacy}"
    ecs.register_container_instance(cluster=cluster, containerInstanceArn=arn, totalResources=[
        {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 512}])
    state = os.path.join(base, "legacy")
    os.makedirs(state, mode=0o700)
    with open(os.path.join(state, "agent.json"), "w") as f:
        json.dump({"cluster": cluster, "instanceId": legacy}, f)
    a = Agent(berth, state, join_token(berth, cluster), cluster=cluster).start()
    try:
        wait_for(lambda: saved(a).get("credential"), 20, what="the agent's credential")
        assert saved(a)["instanceId"] == legacy
        wait_for(lambda: ecs.describe_container_instances(cluster=cluster, containerInstances=[legacy])
                 ["containerInstances"][0]["agentConnected"], 15, what="the migrated agent connected")
        assert len(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]) == 1
    finally:
        a.stop()
