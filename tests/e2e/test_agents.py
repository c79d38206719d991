"""Agents end to end: `berth up --no-agent` plus `berth agent` processes (process driver), each
with its own state dir standing in for a host. Registration (resources and attributes),
exact remaining resources, placement (failures with ECS's reasons, spread, binpack,
distinctInstance, memberOf), instance state and attributes, and what happens when agents and
the server die: disconnection, adoption after a restart, reconciliation, join-token checks and
deregistration.

Agents poll every second and the server declares them disconnected after 3 s, so failures
are seen fast; every wait polls a condition with a deadline.
"""
import collections
import json
import os
import re
import tempfile

import pytest

from conftest import (
    Agent, Berth, describe_task, expect_error, join_token, processes_with_argv, register,
    resources, run_one, supports_flag, uniq, wait_for, wait_task,
)

ACCOUNT = "000000000000"
REGION = "eu-west-1"
TIMEOUT = 3  # --agent-timeout
CPU, MEM = 2048, 1024


def server_args():
    # Tests here take agents and the server away for a few seconds on purpose: keep the
    # host-lost policy (which gives up on the tasks of long-silent hosts) out of the way.
    args = ["--agent-timeout", str(TIMEOUT)]
    if supports_flag("up", "--host-lost-timeout"):
        args += ["--host-lost-timeout", "120"]
    return args


@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def berth(base):
    b = Berth(os.path.join(base, "server"), agent=False, args=server_args())
    os.makedirs(b.data_dir)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


@pytest.fixture(scope="module")
def token(berth):
    return join_token(berth)


@pytest.fixture(scope="module")
def agents(berth, ecs, token, base):
    """Three hosts in the default cluster, in zones a, b and c; host a is also `stack=prod`."""
    started = []
    attrs = [["zone=a", "stack=prod"], ["zone=b"], ["zone=c", "gpu"]]
    for i, extra in enumerate(attrs):
        a = Agent(berth, os.path.join(base, f"host{i}"), token, attributes=extra, cpu=CPU, memory=MEM)
        started.append(a.start())
    for a in started:
        a.wait_registered(ecs)
    yield started
    _stop_all(ecs, "default")
    for a in started:
        a.stop()


@pytest.fixture(autouse=True)
def clean_default(request):
    """Each test leaves the default cluster with no running task and every instance ACTIVE."""
    yield
    if "agents" not in request.fixturenames:
        return
    ecs = request.getfixturevalue("ecs")
    _stop_all(ecs, "default")
    arns = ecs.list_container_instances(cluster="default", status="DRAINING")["containerInstanceArns"]
    if arns:
        ecs.update_container_instances_state(cluster="default", containerInstances=arns, status="ACTIVE")


def _stop_all(ecs, cluster):
    arns = ecs.list_tasks(cluster=cluster)["taskArns"]
    for a in arns:
        ecs.stop_task(cluster=cluster, task=a, reason="test cleanup")
    for a in arns:
        wait_task(ecs, a, "STOPPED", cluster=cluster)


def sh(script, name="app", memory=16, **kw):
    return {"name": name, "image": "busybox", "memory": memory, "entryPoint": ["sh", "-c"],
            "command": [script], **kw}


def sleeper(ecs, memory=16, cpu=0, ports=(), argv=("sleep", "600"), **kw):
    c = {"name": "app", "image": "busybox", "memory": memory, "cpu": cpu, "command": list(argv)}
    if ports:
        c["portMappings"] = [{"containerPort": p, "hostPort": p} for p in ports]
    return register(ecs, uniq("ag"), [c], **kw)["taskDefinition"]["taskDefinitionArn"]


def instance(ecs, arn, cluster="default"):
    return ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])["containerInstances"][0]


def placed_on(ecs, tasks):
    return collections.Counter(t["containerInstanceArn"] for t in tasks)


def new_cluster(ecs):
    name = uniq("cl")
    ecs.create_cluster(clusterName=name)
    return name


# ---------------------------------------------------------------------------------------------
# Registration and resources

def test_agents_register_with_resources_and_attributes(ecs, agents):
    arns = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    assert sorted(arns) == sorted(a.arn for a in agents)
    for arn in arns:
        assert re.fullmatch(rf"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/default/[0-9a-f]{{32}}", arn)
    cis = ecs.describe_container_instances(cluster="default", containerInstances=arns)["containerInstances"]
    assert len(cis) == 3
    zone_of = {a.arn: z for a, z in zip(agents, "abc")}
    for ci in cis:
        zone = zone_of[ci["containerInstanceArn"]]
        assert ci["status"] == "ACTIVE" and ci["agentConnected"] is True
        reg = resources(ci, "registeredResources")
        assert reg["CPU"] == CPU and reg["MEMORY"] == MEM
        assert resources(ci) == reg  # nothing runs yet
        assert ci["runningTasksCount"] == 0 and ci["pendingTasksCount"] == 0
        attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
        assert attrs["ecs.os-type"] == "linux"
        assert attrs["ecs.cpu-architecture"] == os.uname().machine
        assert attrs["berth.driver"] == "process"
        assert attrs["zone"] == zone
        assert ci["versionInfo"]["agentVersion"]
        assert ci["ec2InstanceId"]
    by_zone = {next(a["value"] for a in ci["attributes"] if a["name"] == "zone"): ci for ci in cis}
    assert {"name": "stack", "value": "prod"} in by_zone["a"]["attributes"]
    assert {"name": "gpu"} in by_zone["c"]["attributes"]  # a value-less attribute


def test_remaining_resources_are_exact(ecs, agents):
    host = agents[0].arn
    port = 20000 + os.getpid() % 10000
    td = sleeper(ecs, memory=100, cpu=256, ports=[port])
    r = ecs.start_task(cluster="default", taskDefinition=td, containerInstances=[host])
    assert not r["failures"]
    t = r["tasks"][0]
    # Resources are held from the moment the task is placed, before it runs.
    rem = resources(instance(ecs, host))
    assert rem["CPU"] == CPU - 256 and rem["MEMORY"] == MEM - 100
    assert str(port) in rem["PORTS"] and "22" in rem["PORTS"]
    t = wait_task(ecs, t["taskArn"], "RUNNING")
    b = t["containers"][0]["networkBindings"]
    assert b == [{"bindIP": "0.0.0.0", "containerPort": port, "hostPort": port, "protocol": "tcp"}]
    ci = instance(ecs, host)
    assert ci["runningTasksCount"] == 1 and ci["pendingTasksCount"] == 0
    # A second one on the same host: exact sums.
    td2 = sleeper(ecs, memory=50, cpu=128)
    t2 = ecs.start_task(cluster="default", taskDefinition=td2, containerInstances=[host])["tasks"][0]
    rem = resources(instance(ecs, host))
    assert rem["CPU"] == CPU - 256 - 128 and rem["MEMORY"] == MEM - 150
    # Other hosts are untouched.
    for other in agents[1:]:
        assert resources(instance(ecs, other.arn)) == resources(instance(ecs, other.arn), "registeredResources")
    # UDP host ports are held apart from TCP ones.
    td3 = register(ecs, uniq("ag"), [{"name": "app", "image": "busybox", "memory": 8, "command": ["sleep", "600"],
                                       "portMappings": [{"containerPort": 53, "hostPort": port, "protocol": "udp"}]}],
                   )["taskDefinition"]["taskDefinitionArn"]
    t3 = ecs.start_task(cluster="default", taskDefinition=td3, containerInstances=[host], group="udp")["tasks"][0]
    assert t3["group"] == "udp"
    rem = resources(instance(ecs, host))
    assert str(port) in rem["PORTS_UDP"] and str(port) in rem["PORTS"] and rem["MEMORY"] == MEM - 158
    ecs.stop_task(cluster="default", task=t3["taskArn"])
    wait_task(ecs, t3["taskArn"], "STOPPED")
    ecs.stop_task(cluster="default", task=t["taskArn"])
    wait_task(ecs, t["taskArn"], "STOPPED")
    rem = resources(instance(ecs, host))
    assert rem["CPU"] == CPU - 128 and rem["MEMORY"] == MEM - 50 and str(port) not in rem["PORTS"]
    ecs.stop_task(cluster="default", task=t2["taskArn"])
    wait_task(ecs, t2["taskArn"], "STOPPED")
    ci = instance(ecs, host)
    assert resources(ci) == resources(ci, "registeredResources")
    assert ci["runningTasksCount"] == 0


def test_overrides_change_what_a_task_holds(ecs, agents):
    host = agents[2].arn
    td = sleeper(ecs, memory=16, cpu=64)
    t = ecs.start_task(cluster="default", taskDefinition=td, containerInstances=[host],
                       overrides={"containerOverrides": [{"name": "app", "memory": 300, "cpu": 512}]})["tasks"][0]
    assert (t["cpu"], t["memory"]) == ("512", "300")
    rem = resources(instance(ecs, host))
    assert (rem["CPU"], rem["MEMORY"]) == (CPU - 512, MEM - 300)
    t2 = ecs.start_task(cluster="default", taskDefinition=td, containerInstances=[host],
                        overrides={"cpu": "1024", "memory": "400"})["tasks"][0]
    assert (t2["cpu"], t2["memory"]) == ("1024", "400")
    rem = resources(instance(ecs, host))
    assert (rem["CPU"], rem["MEMORY"]) == (CPU - 512 - 1024, MEM - 300 - 400)


def test_concurrent_run_tasks_never_oversubscribe(berth, ecs, agents):
    import concurrent.futures
    td = sleeper(ecs, memory=600)

    def run(_):
        c = berth.client()
        return c.run_task(cluster="default", taskDefinition=td)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(8)))
    placed = [t for r in results for t in r["tasks"]]
    failed = [f for r in results for f in r["failures"]]
    assert len(placed) == 3 and len(failed) == 5
    assert placed_on(ecs, placed) == {a.arn: 1 for a in agents}
    assert {f["reason"] for f in failed} == {"RESOURCE:MEMORY"}
    for a in agents:
        assert resources(instance(ecs, a.arn))["MEMORY"] == MEM - 600


def test_unplaceable_tasks_come_back_as_failures(ecs, agents):
    arns = {a.arn for a in agents}
    r = ecs.run_task(cluster="default", taskDefinition=sleeper(ecs, memory=MEM + 1))
    assert r["tasks"] == [] and r["failures"]
    assert {f["reason"] for f in r["failures"]} == {"RESOURCE:MEMORY"}
    assert all(f["arn"] in arns for f in r["failures"])

    r = ecs.run_task(cluster="default", taskDefinition=sleeper(ecs, cpu=CPU + 1))
    assert r["tasks"] == [] and {f["reason"] for f in r["failures"]} == {"RESOURCE:CPU"}

    port = 21000 + os.getpid() % 10000
    r = ecs.run_task(cluster="default", taskDefinition=sleeper(ecs, ports=[port]), count=4)
    assert len(r["tasks"]) == 3
    assert placed_on(ecs, r["tasks"]) == {a.arn: 1 for a in agents}
    assert [f["reason"] for f in r["failures"]] == ["RESOURCE:PORTS"]
    # The port stays taken while they run: one more cannot be placed anywhere.
    r2 = ecs.run_task(cluster="default", taskDefinition=sleeper(ecs, ports=[port]))
    assert r2["tasks"] == [] and {f["reason"] for f in r2["failures"]} == {"RESOURCE:PORTS"}

    # A memory request that fits one host but not two at once.
    big = sleeper(ecs, memory=MEM - 100)
    r3 = ecs.run_task(cluster="default", taskDefinition=big, count=4)
    assert len(r3["tasks"]) == 3 and [f["reason"] for f in r3["failures"]] == ["RESOURCE:MEMORY"]


def test_a_cluster_without_instances_cannot_run_tasks(ecs, agents):
    cluster = new_cluster(ecs)
    expect_error("InvalidParameterException", ecs.run_task, cluster=cluster, taskDefinition=sleeper(ecs))


def test_spread_by_instance_id(ecs, agents):
    td = sleeper(ecs)
    r = ecs.run_task(cluster="default", taskDefinition=td, count=6,
                     placementStrategy=[{"type": "spread", "field": "instanceId"}])
    assert not r["failures"]
    assert sorted(placed_on(ecs, r["tasks"]).values()) == [2, 2, 2]
    for t in r["tasks"]:
        wait_task(ecs, t["taskArn"], "RUNNING")


def test_spread_by_attribute(ecs, agents):
    td = sleeper(ecs)
    r = ecs.run_task(cluster="default", taskDefinition=td, count=3,
                     placementStrategy=[{"type": "spread", "field": "attribute:zone"}])
    assert sorted(placed_on(ecs, r["tasks"]).values()) == [1, 1, 1]


def test_binpack_by_memory(ecs, agents):
    # Host b already holds 200 MiB: binpack(memory) fills it first.
    host = agents[1].arn
    ecs.start_task(cluster="default", taskDefinition=sleeper(ecs, memory=200), containerInstances=[host])
    td = sleeper(ecs, memory=300)
    r = ecs.run_task(cluster="default", taskDefinition=td, count=2,
                     placementStrategy=[{"type": "binpack", "field": "memory"}])
    assert placed_on(ecs, r["tasks"]) == {host: 2}
    # 824 - 600 = 224 left there: the next 300 MiB task goes to the fullest host that fits.
    r = ecs.run_task(cluster="default", taskDefinition=td, count=1,
                     placementStrategy=[{"type": "binpack", "field": "memory"}])
    assert r["tasks"][0]["containerInstanceArn"] != host
    assert resources(instance(ecs, host))["MEMORY"] == MEM - 800


def test_random_and_binpack_by_cpu(ecs, agents):
    td = sleeper(ecs, cpu=700)
    r = ecs.run_task(cluster="default", taskDefinition=td, count=6, placementStrategy=[{"type": "random"}])
    assert len(r["tasks"]) == 6 and not r["failures"]
    # 2048 cpu units per host hold two 700-unit tasks: six fill the three hosts exactly.
    assert sorted(placed_on(ecs, r["tasks"]).values()) == [2, 2, 2]
    _stop_all(ecs, "default")
    small = sleeper(ecs, cpu=500)
    r = ecs.run_task(cluster="default", taskDefinition=small, count=4,
                     placementStrategy=[{"type": "binpack", "field": "cpu"}])
    assert list(placed_on(ecs, r["tasks"]).values()) == [4]


def test_distinct_instance(ecs, agents):
    td = sleeper(ecs)
    r = ecs.run_task(cluster="default", taskDefinition=td, count=4,
                     placementConstraints=[{"type": "distinctInstance"}])
    assert len(r["tasks"]) == 3
    assert placed_on(ecs, r["tasks"]) == {a.arn: 1 for a in agents}
    assert [f["reason"] for f in r["failures"]] == ["DistinctInstance placement constraint unsatisfied."]


def test_member_of_custom_attribute(ecs, agents):
    td = sleeper(ecs)
    r = ecs.run_task(cluster="default", taskDefinition=td, count=3,
                     placementConstraints=[{"type": "memberOf", "expression": "attribute:zone == b"}])
    assert placed_on(ecs, r["tasks"]) == {agents[1].arn: 3}
    # Spread, so that both eligible hosts get some (RunTask's default placement is random).
    r = ecs.run_task(cluster="default", taskDefinition=td, count=4,
                     placementStrategy=[{"type": "spread", "field": "instanceId"}],
                     placementConstraints=[{"type": "memberOf", "expression": "attribute:zone in [a, c]"}])
    assert set(placed_on(ecs, r["tasks"])) == {agents[0].arn, agents[2].arn}
    r = ecs.run_task(cluster="default", taskDefinition=td,
                     placementConstraints=[{"type": "memberOf", "expression": "attribute:stack == prod and attribute:zone != a"}])
    assert r["tasks"] == []
    assert {f["reason"] for f in r["failures"]} == {"MemberOf placement constraint unsatisfied."}
    expect_error("InvalidParameterException", ecs.run_task, cluster="default", taskDefinition=td,
                 placementConstraints=[{"type": "memberOf", "expression": "attribute:zone =="}])


def test_list_container_instances_filters(ecs, agents):
    a, b, c = (x.arn for x in agents)
    ls = lambda **kw: sorted(ecs.list_container_instances(cluster="default", **kw)["containerInstanceArns"])  # noqa: E731
    assert ls(filter="attribute:zone == a") == [a]
    assert ls(filter="attribute:zone in [a, c]") == sorted([a, c])
    assert ls(filter="attribute:gpu exists") == [c]
    assert ls(filter="attribute:ecs.os-type == linux") == sorted([a, b, c])
    assert ls(filter="attribute:zone == z") == []
    assert ls(status="ACTIVE") == sorted([a, b, c])
    assert ls(status="DRAINING") == []
    # Task groups: where tasks of a group run.
    grp = uniq("grp")
    ecs.start_task(cluster="default", taskDefinition=sleeper(ecs), containerInstances=[b], group=grp)
    assert ls(filter=f"task:group == {grp}") == [b]
    # Pages.
    first = ecs.list_container_instances(cluster="default", maxResults=2)
    assert len(first["containerInstanceArns"]) == 2 and first["nextToken"]
    rest = ecs.list_container_instances(cluster="default", maxResults=2, nextToken=first["nextToken"])
    assert "nextToken" not in rest
    assert sorted(first["containerInstanceArns"] + rest["containerInstanceArns"]) == sorted([a, b, c])
    expect_error("InvalidParameterException", ecs.list_container_instances, cluster="default", filter="attribute:zone ==")


def test_draining_instances_get_no_new_tasks(ecs, agents):
    a, b, c = (x.arn for x in agents)
    running = ecs.start_task(cluster="default", taskDefinition=sleeper(ecs), containerInstances=[a])["tasks"][0]
    r = ecs.update_container_instances_state(cluster="default", containerInstances=[a, b], status="DRAINING")
    assert sorted(ci["containerInstanceArn"] for ci in r["containerInstances"]) == sorted([a, b])
    assert all(ci["status"] == "DRAINING" for ci in r["containerInstances"])
    assert sorted(ecs.list_container_instances(cluster="default", status="DRAINING")["containerInstanceArns"]) == sorted([a, b])
    r = ecs.run_task(cluster="default", taskDefinition=sleeper(ecs), count=5)
    assert placed_on(ecs, r["tasks"]) == {c: 5}
    # A standalone task already on a draining host keeps running.
    assert describe_task(ecs, running["taskArn"])["desiredStatus"] == "RUNNING"
    expect_error("InvalidParameterException", lambda: ecs.update_container_instances_state(
        cluster="default", containerInstances=[a], status="INACTIVE"))
    ecs.update_container_instances_state(cluster="default", containerInstances=[a, b], status="ACTIVE")
    r = ecs.run_task(cluster="default", taskDefinition=sleeper(ecs), count=3,
                     placementStrategy=[{"type": "spread", "field": "instanceId"}])
    assert a in placed_on(ecs, r["tasks"]) and b in placed_on(ecs, r["tasks"])


def test_put_delete_list_attributes(ecs, agents):
    a, b = agents[0].arn, agents[1].arn
    r = ecs.put_attributes(cluster="default", attributes=[
        {"name": "color", "value": "blue", "targetType": "container-instance", "targetId": a},
        {"name": "color", "value": "red", "targetId": b.rsplit("/", 1)[1]},
    ])
    assert len(r["attributes"]) == 2
    got = ecs.list_attributes(cluster="default", targetType="container-instance", attributeName="color")["attributes"]
    assert sorted((x["targetId"], x["value"]) for x in got) == sorted([(a, "blue"), (b, "red")])
    assert all(x["targetType"] == "container-instance" for x in got)
    blue = ecs.list_attributes(cluster="default", targetType="container-instance", attributeName="color",
                               attributeValue="blue")["attributes"]
    assert [x["targetId"] for x in blue] == [a]
    # Placement sees it at once.
    r = ecs.run_task(cluster="default", taskDefinition=sleeper(ecs), count=2,
                     placementConstraints=[{"type": "memberOf", "expression": "attribute:color == red"}])
    assert placed_on(ecs, r["tasks"]) == {b: 2}
    ecs.delete_attributes(cluster="default", attributes=[{"name": "color", "targetId": a}])
    got = ecs.list_attributes(cluster="default", targetType="container-instance", attributeName="color")["attributes"]
    assert [(x["targetId"], x["value"]) for x in got] == [(b, "red")]
    ecs.delete_attributes(cluster="default", attributes=[{"name": "color", "targetId": b}])
    assert ecs.list_attributes(cluster="default", targetType="container-instance", attributeName="color")["attributes"] == []
    expect_error("TargetNotFoundException", ecs.put_attributes, cluster="default",
                 attributes=[{"name": "x", "value": "y", "targetId": "0" * 32}])
    # Every instance lists the agent's attributes.
    os_types = ecs.list_attributes(cluster="default", targetType="container-instance", attributeName="ecs.os-type")
    assert len(os_types["attributes"]) == 3


# ---------------------------------------------------------------------------------------------
# Agents and servers that die

def test_killed_agent_disconnects_and_restart_adopts_its_tasks(berth, ecs, base):
    cluster = new_cluster(ecs)
    agent = Agent(berth, os.path.join(base, uniq("adopt")), join_token(berth, cluster), cluster=cluster)
    arn = agent.start().wait_registered(ecs)
    keep_argv = ["sleep", "1001.5"]
    stop_argv = ["sleep", "1002.5"]
    flag = os.path.join(base, uniq("flag"))
    keep = run_one(ecs, sleeper(ecs, argv=keep_argv), cluster=cluster)["taskArn"]
    gone = run_one(ecs, sleeper(ecs, argv=stop_argv), cluster=cluster)["taskArn"]
    dies = run_one(ecs, register(ecs, uniq("ag"), [sh(f"while [ ! -f {flag} ]; do sleep 0.1; done; exit 6")])
                   ["taskDefinition"]["taskDefinitionArn"], cluster=cluster)["taskArn"]
    keep_id = wait_task(ecs, keep, "RUNNING", cluster)["containers"][0]["runtimeId"]
    wait_task(ecs, gone, "RUNNING", cluster)
    wait_task(ecs, dies, "RUNNING", cluster)
    assert len(processes_with_argv(keep_argv)) == 1

    agent.kill9()
    wait_for(lambda: instance(ecs, arn, cluster)["agentConnected"] is False, TIMEOUT + 3,
             what="agentConnected to turn false")
    # The host's tasks keep running, and nothing new goes to a disconnected host.
    assert len(processes_with_argv(keep_argv)) == 1
    assert describe_task(ecs, keep, cluster)["lastStatus"] == "RUNNING"
    r = ecs.run_task(cluster=cluster, taskDefinition=sleeper(ecs))
    assert r["tasks"] == [] and {f["reason"] for f in r["failures"]} == {"AGENT"}
    # A stop asked while the agent is away is carried out when it is back; a container that
    # exits meanwhile is reported then.
    ecs.stop_task(cluster=cluster, task=gone, reason="while away")
    open(flag, "w").close()

    agent.start()
    assert agent.wait_registered(ecs) == arn
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == [arn]
    t = wait_task(ecs, gone, "STOPPED", cluster)
    assert t["stopCode"] == "UserInitiated" and t["stoppedReason"] == "while away"
    assert t["containers"][0]["exitCode"] == 143
    assert processes_with_argv(stop_argv) == []
    t = wait_task(ecs, dies, "STOPPED", cluster)
    assert t["stopCode"] == "EssentialContainerExited" and t["containers"][0]["exitCode"] == 6
    t = describe_task(ecs, keep, cluster)
    assert t["lastStatus"] == "RUNNING"
    assert t["containers"][0]["runtimeId"] == keep_id
    assert len(processes_with_argv(keep_argv)) == 1  # adopted, not started again
    ci = instance(ecs, arn, cluster)
    assert ci["agentConnected"] is True and ci["runningTasksCount"] == 1

    ecs.stop_task(cluster=cluster, task=keep)
    wait_task(ecs, keep, "STOPPED", cluster)
    assert processes_with_argv(keep_argv) == []
    agent.stop()


def test_agent_stopped_gracefully_leaves_its_tasks_running(berth, ecs, base):
    cluster = new_cluster(ecs)
    agent = Agent(berth, os.path.join(base, uniq("term")), join_token(berth, cluster), cluster=cluster)
    arn = agent.start().wait_registered(ecs)
    argv = ["sleep", "1006.5"]
    r = ecs.run_task(cluster=cluster, taskDefinition=sleeper(ecs, argv=argv), count=5)
    ids = {t["taskArn"]: wait_task(ecs, t["taskArn"], "RUNNING", cluster)["containers"][0]["runtimeId"]
           for t in r["tasks"]}
    pids = sorted(processes_with_argv(argv))
    assert len(pids) == 5
    assert agent.stop() == 0  # SIGTERM: the agent goes, its tasks stay
    assert sorted(processes_with_argv(argv)) == pids
    agent.start()
    assert agent.wait_registered(ecs) == arn
    later = run_one(ecs, sleeper(ecs), cluster=cluster)["taskArn"]  # the agent is past adoption
    wait_task(ecs, later, "RUNNING", cluster)
    assert sorted(processes_with_argv(argv)) == pids
    for arn_, rid in ids.items():
        t = describe_task(ecs, arn_, cluster)
        assert t["lastStatus"] == "RUNNING" and t["containers"][0]["runtimeId"] == rid
    _stop_all(ecs, cluster)
    assert processes_with_argv(argv) == []
    agent.stop()


def test_bad_join_token_is_refused(berth, ecs, base):
    cluster = new_cluster(ecs)
    other = new_cluster(ecs)
    for bad in ("bjt1." + "0" * 40, join_token(berth, other)):
        agent = Agent(berth, os.path.join(base, uniq("bad")), bad, cluster=cluster).start()
        try:
            wait_for(lambda: "registration failed" in agent.log(), 15, what="the agent to be refused")
            assert "join token is not valid" in agent.log()
            assert agent.identity() is None
            assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == []
        finally:
            agent.kill9()


def test_agent_endpoints_require_the_instance_credential(berth, ecs, agents, token):
    """Polls and reports present the instance's own credential (issued at registration, kept
    in the agent's state dir); the join token only joins."""
    import urllib.error
    import urllib.request
    iid = agents[0].identity()
    with open(os.path.join(agents[0].state_dir, "agent.json")) as f:
        credential = json.load(f)["credential"]
    other = join_token(berth, new_cluster(ecs))

    def call(path, headers, body=None):
        req = urllib.request.Request(berth.endpoint + path, data=body, method="POST" if body else "GET",
                                     headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
    poll = f"/agent/v1/poll?cluster=default&instance={iid}&since=&wait=0"
    mine = {"x-berth-instance": iid, "x-berth-instance-credential": credential}
    assert call(poll, mine) == 200
    forged = credential[:-1] + ("0" if credential[-1] != "0" else "1")
    for bad in ({}, {"x-berth-join-token": token}, {"x-berth-join-token": other},
                {"x-berth-instance": iid, "x-berth-instance-credential": forged},
                {"x-berth-instance": iid, "x-berth-instance-credential": token}):
        assert call(poll, bad) == 403
        report = json.dumps({"cluster": "default", "instanceId": iid, "tasks": []}).encode()
        assert call("/agent/v1/status", bad, report) == 403


def test_deregister_busy_instance_needs_force(berth, ecs, base):
    cluster = new_cluster(ecs)
    agent = Agent(berth, os.path.join(base, uniq("dereg")), join_token(berth, cluster), cluster=cluster)
    arn = agent.start().wait_registered(ecs)
    argv = ["sleep", "1003.5"]
    task = run_one(ecs, sleeper(ecs, argv=argv), cluster=cluster)["taskArn"]
    wait_task(ecs, task, "RUNNING", cluster)
    expect_error("ClientException", ecs.deregister_container_instance, cluster=cluster, containerInstance=arn)
    assert instance(ecs, arn, cluster)["status"] == "ACTIVE"

    r = ecs.deregister_container_instance(cluster=cluster, containerInstance=arn, force=True)
    assert r["containerInstance"]["status"] == "INACTIVE"
    t = wait_task(ecs, task, "STOPPED", cluster)
    assert t["desiredStatus"] == "STOPPED" and t["stoppedReason"]
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == []
    assert ecs.list_container_instances(cluster=cluster, status="INACTIVE")["containerInstanceArns"] == [arn]
    # Its processes do not outlive the deregistration.
    wait_for(lambda: processes_with_argv(argv) == [], 15, what="the task's process to end")
    # An idle instance deregisters without force.
    agent.kill9()
    cluster2 = new_cluster(ecs)
    idle = Agent(berth, os.path.join(base, uniq("idle")), join_token(berth, cluster2), cluster=cluster2)
    arn2 = idle.start().wait_registered(ecs)
    assert ecs.deregister_container_instance(cluster=cluster2, containerInstance=arn2)["containerInstance"]["status"] == "INACTIVE"
    idle.kill9()


def test_host_deregistered_while_its_agent_is_away_leaves_no_orphans(berth, ecs, base):
    cluster = new_cluster(ecs)
    agent = Agent(berth, os.path.join(base, uniq("away")), join_token(berth, cluster), cluster=cluster)
    arn = agent.start().wait_registered(ecs)
    argv = ["sleep", "1005.5"]
    task = run_one(ecs, sleeper(ecs, argv=argv), cluster=cluster)["taskArn"]
    wait_task(ecs, task, "RUNNING", cluster)
    agent.kill9()
    ecs.deregister_container_instance(cluster=cluster, containerInstance=arn, force=True)
    t = describe_task(ecs, task, cluster)
    assert t["lastStatus"] == "STOPPED" and t["stoppedReason"] == "Container instance deregistered"
    assert len(processes_with_argv(argv)) == 1  # nobody told the host yet
    # Back, the host joins as a new container instance (deregistration is final) and stops
    # the container of the task the cluster no longer has.
    assert instance(ecs, arn, cluster)["agentConnected"] is False
    old_id = agent.identity()
    agent.start()
    wait_for(lambda: agent.identity() != old_id, 15, what="the agent to register anew")
    new_arn = agent.wait_registered(ecs)
    assert new_arn != arn
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == [new_arn]
    assert instance(ecs, arn, cluster)["status"] == "INACTIVE"
    wait_for(lambda: processes_with_argv(argv) == [], 15, what="the orphan to be stopped")
    assert describe_task(ecs, task, cluster)["lastStatus"] == "STOPPED"
    agent.stop()


def test_force_deregistration_stops_stubborn_containers_too(berth, ecs, base):
    cluster = new_cluster(ecs)
    agent = Agent(berth, os.path.join(base, uniq("stubborn")), join_token(berth, cluster), cluster=cluster)
    arn = agent.start().wait_registered(ecs)
    argv = ["sh", "-c", f"trap '' TERM; while :; do sleep 0.1; done; # {uniq()}"]
    td = register(ecs, uniq("ag"), [{"name": "app", "image": "busybox", "memory": 16, "command": argv,
                                     "stopTimeout": 2}])["taskDefinition"]["taskDefinitionArn"]
    task = run_one(ecs, td, cluster=cluster)["taskArn"]
    wait_task(ecs, task, "RUNNING", cluster)
    ecs.deregister_container_instance(cluster=cluster, containerInstance=arn, force=True)
    try:
        wait_for(lambda: processes_with_argv(argv) == [], 8, what="the stubborn container to be killed")
    finally:
        for pid in processes_with_argv(argv):
            os.killpg(os.getpgid(pid), 9)
        agent.kill9()


def test_server_killed_tasks_keep_running_and_reconcile(base):
    d = os.path.join(base, uniq("srv"))
    os.makedirs(d)
    b = Berth(d, agent=False, args=server_args()).start()
    agent = None
    try:
        ecs = b.client()
        agent = Agent(b, os.path.join(d, "host"), join_token(b)).start()
        arn = agent.wait_registered(ecs)
        flag = os.path.join(d, "flag")
        keep_argv = ["sleep", "1004.5"]
        keep = run_one(ecs, sleeper(ecs, argv=keep_argv))["taskArn"]
        ends = run_one(ecs, register(ecs, uniq("ag"), [sh(f"while [ ! -f {flag} ]; do sleep 0.1; done; exit 4")])
                       ["taskDefinition"]["taskDefinitionArn"])["taskArn"]
        keep_id = wait_task(ecs, keep, "RUNNING")["containers"][0]["runtimeId"]
        wait_task(ecs, ends, "RUNNING")

        b.kill9()
        # Without a control plane, the host goes on: the task runs, the other one exits.
        assert len(processes_with_argv(keep_argv)) == 1
        open(flag, "w").close()
        wait_for(lambda: "poll failed" in agent.log(), 15, what="the agent to notice the server is gone")
        assert len(processes_with_argv(keep_argv)) == 1

        b.start()
        t = wait_task(ecs, ends, "STOPPED", timeout=20)
        assert t["stopCode"] == "EssentialContainerExited" and t["containers"][0]["exitCode"] == 4
        wait_for(lambda: instance(ecs, arn)["agentConnected"], 15, what="the agent to reconnect")
        t = describe_task(ecs, keep)
        assert t["lastStatus"] == "RUNNING" and t["containers"][0]["runtimeId"] == keep_id
        assert len(processes_with_argv(keep_argv)) == 1
        ecs.stop_task(cluster="default", task=keep)
        wait_task(ecs, keep, "STOPPED")
        assert processes_with_argv(keep_argv) == []
    finally:
        if agent:
            agent.stop()
        b.stop()


def test_register_container_instance_through_the_api(ecs):
    cluster = new_cluster(ecs)
    total = [
        {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 7680},
        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375"]},
        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []},
    ]
    doc = json.dumps({"instanceId": "i-0123456789abcdef0", "region": REGION})
    r = ecs.register_container_instance(cluster=cluster, totalResources=total, instanceIdentityDocument=doc,
                                        attributes=[{"name": "rack", "value": "r1"}],
                                        versionInfo={"agentVersion": "1.0", "dockerVersion": "DockerVersion: 20.10"})
    ci = r["containerInstance"]
    arn = ci["containerInstanceArn"]
    assert re.fullmatch(rf"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/{cluster}/[0-9a-f]{{32}}", arn)
    assert ci["ec2InstanceId"] == "i-0123456789abcdef0"
    reg = resources(ci, "registeredResources")
    assert (reg["CPU"], reg["MEMORY"], reg["PORTS"]) == (4096, 7680, {"22", "2375"})
    assert resources(ci) == reg
    assert {"name": "rack", "value": "r1"} in ci["attributes"]
    assert ci["versionInfo"]["dockerVersion"] == "DockerVersion: 20.10"
    # Registering again under its ARN renews it in place.
    total[1]["integerValue"] = 8000
    again = ecs.register_container_instance(cluster=cluster, totalResources=total, containerInstanceArn=arn)
    assert again["containerInstance"]["containerInstanceArn"] == arn
    assert resources(again["containerInstance"], "registeredResources")["MEMORY"] == 8000
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == [arn]
    d = ecs.deregister_container_instance(cluster=cluster, containerInstance=arn)
    assert d["containerInstance"]["status"] == "INACTIVE" and d["containerInstance"]["agentConnected"] is False
    missing = ecs.describe_container_instances(cluster=cluster, containerInstances=["0" * 32])
    assert missing["failures"][0]["reason"] == "MISSING"


def test_agent_refuses_bad_attributes(berth, token, base):
    import subprocess
    a = Agent(berth, os.path.join(base, uniq("badattr")), token, attributes=["not valid=x"])
    p = subprocess.run(a.command(), capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "bad --attribute" in p.stderr


@pytest.mark.parametrize("bad_id", ["x/../../y", "é" * 20, "a" * 300, ""])
def test_agent_registration_refuses_ids_that_are_not_ids(berth, token, bad_id):
    """A caller-chosen instance id becomes a store key: refused unless it is letters, digits and
    '-' (issue 14: a multibyte id panicked, and `x/../../y` nested under another's keys)."""
    import urllib.error
    import urllib.request
    body = json.dumps({"cluster": "default", "instanceId": bad_id, "hostname": "h",
                       "resources": {"cpu": 1024, "memory": 512}}).encode()
    req = urllib.request.Request(berth.endpoint + "/agent/v1/register", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "x-berth-join-token": token})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 400, e.value.read()
    assert "InvalidParameterException" in e.value.read().decode()
    # The server keeps answering.
    assert berth.client().list_clusters()["clusterArns"]
