"""Tasks end to end on `berth up` with its in-process agent (process driver): RunTask to
RUNNING and back to STOPPED, stop codes and exit codes, non-essential containers, dependsOn,
health checks, overrides, clientToken idempotency, ListTasks filters and paging, and the
retention of stopped tasks. The aws CLI's `wait tasks-running` / `tasks-stopped` are checked
against the same tasks.

The process driver runs entryPoint + command as host processes, so containers of one task share
the file system: the tests coordinate containers (and check what they did) through files in a
per-module temporary directory.
"""
import concurrent.futures
import datetime
import os
import re
import tempfile

import pytest

from conftest import (
    Berth, describe_task, expect_error, processes_with_argv, register, run_one, uniq, wait_for,
    wait_task,
)

ACCOUNT = "000000000000"
REGION = "eu-west-1"
HEX32 = r"[0-9a-f]{32}"


@pytest.fixture(scope="module")
def berth():
    with tempfile.TemporaryDirectory() as d:
        b = Berth(d, args=["--driver", "process", "--agent-timeout", "3"]).start()
        yield b
        _stop_everything(b)
        b.stop()


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


@pytest.fixture(scope="module")
def work():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def instance_arn(berth, ecs):
    """The in-process agent of `berth up` registers the host in the default cluster."""
    def one():
        arns = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
        return arns[0] if len(arns) == 1 else None
    return wait_for(one, 20, what="the local agent to register")


def _stop_everything(b):
    """Stops every task still running so no process outlives the module."""
    try:
        ecs = b.client()
        arns = ecs.list_tasks(cluster="default")["taskArns"]
        for a in arns:
            ecs.stop_task(cluster="default", task=a, reason="module teardown")
        if arns:
            wait_for(lambda: all(t["lastStatus"] == "STOPPED"
                                 for t in ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]), 30)
    except Exception:  # noqa: BLE001 - best effort
        pass


def sh(script, name="app", memory=32, **kw):
    return {"name": name, "image": "busybox", "memory": memory, "entryPoint": ["sh", "-c"],
            "command": [script], **kw}


def td_of(ecs, containers, **kw):
    return register(ecs, uniq("lc"), containers, **kw)["taskDefinition"]["taskDefinitionArn"]


def container_of(task, name):
    return next(c for c in task["containers"] if c["name"] == name)


def aws_wait(berth, what, arns, check=True):
    return berth.aws("ecs", "wait", what, "--cluster", "default", "--tasks", *arns, check=check)


# ---------------------------------------------------------------------------------------------

def test_local_agent_registers_with_berth_up(ecs, instance_arn):
    assert re.fullmatch(rf"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/default/{HEX32}", instance_arn)
    ci = ecs.describe_container_instances(cluster="default", containerInstances=[instance_arn])["containerInstances"][0]
    assert ci["status"] == "ACTIVE" and ci["agentConnected"] is True
    attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
    assert attrs["berth.managed"] == "true"
    assert attrs["berth.driver"] == "process"
    assert attrs["ecs.os-type"] == "linux"
    cpu = next(r for r in ci["registeredResources"] if r["name"] == "CPU")["integerValue"]
    assert cpu == 1024 * os.cpu_count()


def test_run_to_running_then_stop_by_user(berth, ecs, instance_arn, work):
    marker = os.path.join(work, "ran")
    td = td_of(ecs, [sh(f"touch {marker}; exec sleep 300", cpu=64)])
    before = datetime.datetime.now(datetime.timezone.utc)
    t = run_one(ecs, td, startedBy="lifecycle-test")
    arn = t["taskArn"]
    assert re.fullmatch(rf"arn:aws:ecs:{REGION}:{ACCOUNT}:task/default/{HEX32}", arn)
    assert t["lastStatus"] == "PROVISIONING" and t["desiredStatus"] == "RUNNING"
    assert t["containerInstanceArn"] == instance_arn
    assert t["clusterArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/default"
    assert t["taskDefinitionArn"] == td
    assert t["startedBy"] == "lifecycle-test" and t["launchType"] == "EC2"
    assert t["group"] == "family:" + td.rsplit("/", 1)[1].split(":")[0]
    assert t["containers"][0]["lastStatus"] == "PENDING"

    t = wait_task(ecs, arn, "RUNNING")
    assert os.path.exists(marker)
    assert t["desiredStatus"] == "RUNNING"
    assert before - datetime.timedelta(seconds=1) <= t["createdAt"] <= t["pullStartedAt"] <= t["pullStoppedAt"] <= t["startedAt"]
    c = t["containers"][0]
    assert c["lastStatus"] == "RUNNING" and c["runtimeId"]
    assert c["containerArn"].startswith(f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/default/")
    assert "exitCode" not in c and "stoppedAt" not in t and "stopCode" not in t
    # The aws CLI waiter agrees (and does not wait: the task is already RUNNING).
    aws_wait(berth, "tasks-running", [arn])

    stopped = ecs.stop_task(cluster="default", task=arn, reason="done with it")["task"]
    assert stopped["desiredStatus"] == "STOPPED"
    assert stopped["stopCode"] == "UserInitiated"
    aws_wait(berth, "tasks-stopped", [arn])
    t = describe_task(ecs, arn)
    assert t["lastStatus"] == "STOPPED" and t["desiredStatus"] == "STOPPED"
    assert t["stopCode"] == "UserInitiated"
    assert t["stoppedReason"] == "done with it"
    assert t["startedAt"] <= t["stoppingAt"] <= t["stoppedAt"]
    assert t["executionStoppedAt"] >= t["stoppingAt"]
    c = t["containers"][0]
    assert c["lastStatus"] == "STOPPED"
    assert c["exitCode"] == 143  # SIGTERM
    # A stopped task is no longer RUNNING for the waiter: tasks-running fails at once.
    p = aws_wait(berth, "tasks-running", [arn], check=False)
    assert p.returncode != 0 and "failure" in p.stderr.lower()
    # Stopping again changes nothing.
    again = ecs.stop_task(cluster="default", task=arn, reason="twice")["task"]
    assert again["stoppedReason"] == "done with it"


def test_stop_timeout_ends_with_sigkill(ecs):
    # The shell ignores SIGTERM: after stopTimeout it is killed (137).
    td = td_of(ecs, [sh("trap '' TERM; while :; do sleep 0.1; done", stopTimeout=2)])
    arn = run_one(ecs, td)["taskArn"]
    wait_task(ecs, arn, "RUNNING")
    ecs.stop_task(cluster="default", task=arn)
    # While the agent waits out the stop timeout, the task is DEPROVISIONING.
    t = wait_task(ecs, arn, "DEPROVISIONING")
    assert t["desiredStatus"] == "STOPPED" and t["containers"][0]["lastStatus"] == "RUNNING"
    t = wait_task(ecs, arn, "STOPPED", timeout=15)
    assert t["containers"][0]["exitCode"] == 137
    assert t["stopCode"] == "UserInitiated"
    assert t["stoppedReason"] == "Task stopped by user"
    assert t["stoppedAt"] - t["stoppingAt"] >= datetime.timedelta(seconds=1.9)


def test_essential_container_exit_stops_the_task(berth, ecs):
    td = td_of(ecs, [sh("exit 3")])
    arn = run_one(ecs, td)["taskArn"]
    aws_wait(berth, "tasks-stopped", [arn])  # the first check may already see STOPPED
    t = wait_task(ecs, arn, "STOPPED")
    assert t["stopCode"] == "EssentialContainerExited"
    assert t["stoppedReason"] == "Essential container in task exited"
    assert t["desiredStatus"] == "STOPPED"
    c = t["containers"][0]
    assert c["exitCode"] == 3 and c["lastStatus"] == "STOPPED"


def test_non_essential_exit_keeps_the_task_running(ecs):
    td = td_of(ecs, [
        sh("exec sleep 300", name="main"),
        sh("exit 5", name="side", essential=False),
    ])
    arn = run_one(ecs, td)["taskArn"]

    def side_exited():
        t = describe_task(ecs, arn)
        side = container_of(t, "side")
        return t if side["lastStatus"] == "STOPPED" and side.get("exitCode") == 5 else None
    t = wait_for(side_exited, 20, what="the side container to exit")
    # The report with the exit arrives with or after RUNNING; the task must stay RUNNING.
    t = wait_task(ecs, arn, "RUNNING")
    assert t["desiredStatus"] == "RUNNING" and "stopCode" not in t
    assert container_of(t, "main")["lastStatus"] == "RUNNING"
    assert container_of(t, "side")["exitCode"] == 5
    ecs.stop_task(cluster="default", task=arn)
    t = wait_task(ecs, arn, "STOPPED")
    assert container_of(t, "side")["exitCode"] == 5
    assert container_of(t, "main")["exitCode"] == 143


def test_dependencies_and_health_checks(berth, ecs, work):
    """dependsOn SUCCESS / COMPLETE / START / HEALTHY in one task, plus health verdicts, all
    started together so the health-check interval (at least 5 s) is paid once."""
    log = os.path.join(work, "order.log")
    ready = os.path.join(work, "ready")
    hc = lambda cmd: {"command": ["CMD-SHELL", cmd], "interval": 5, "timeout": 2, "retries": 1}  # noqa: E731
    deps = td_of(ecs, [
        sh(f"echo init >> {log}", name="init", essential=False),
        sh(f"echo fail >> {log}; exit 1", name="fail", essential=False),
        sh(f"touch {ready}; exec sleep 300", name="db", healthCheck=hc(f"test -f {ready}")),
        sh("exec sleep 300", name="sidecar", essential=False),
        # Exits 1 (stopping the task) unless every dependency held when it started.
        sh(f"grep -qx init {log} && grep -qx fail {log} && test -f {ready} && echo app >> {log} && exec sleep 300",
           name="app", dependsOn=[
               {"containerName": "init", "condition": "SUCCESS"},
               {"containerName": "fail", "condition": "COMPLETE"},
               {"containerName": "sidecar", "condition": "START"},
               {"containerName": "db", "condition": "HEALTHY"},
           ]),
    ])
    healthy = td_of(ecs, [sh("exec sleep 300", healthCheck=hc("true"))])
    unhealthy = td_of(ecs, [sh("exec sleep 300", healthCheck=hc("false"))])
    # An essential container that dies while another waits for its dependency ends the task
    # without waiting for the dependency.
    early = td_of(ecs, [
        sh("exec sleep 300", name="db", healthCheck=hc("true")),
        sh("sleep 0.3; exit 9", name="crash"),
        sh("exec sleep 300", name="app", dependsOn=[{"containerName": "db", "condition": "HEALTHY"}]),
    ])
    broken = td_of(ecs, [
        sh("exit 2", name="init", essential=False),
        sh("exec sleep 300", name="app", dependsOn=[{"containerName": "init", "condition": "SUCCESS"}]),
    ])
    a_deps = run_one(ecs, deps)["taskArn"]
    a_ok = run_one(ecs, healthy)["taskArn"]
    a_bad = run_one(ecs, unhealthy)["taskArn"]
    a_broken = run_one(ecs, broken)["taskArn"]
    a_early = run_one(ecs, early)["taskArn"]
    # The aws CLI waiter, started now, has to poll through PROVISIONING and PENDING.
    pool = concurrent.futures.ThreadPoolExecutor(1)
    waiter = pool.submit(aws_wait, berth, "tasks-running", [a_deps])

    # A SUCCESS dependency that fails: the dependent never starts and the task stops.
    t = wait_task(ecs, a_broken, "STOPPED")
    assert container_of(t, "init")["exitCode"] == 2
    app = container_of(t, "app")
    assert "runtimeId" not in app and "exitCode" not in app
    assert t["stopCode"] == "TaskFailedToStart", t

    t = wait_task(ecs, a_early, "STOPPED")
    assert t["stopCode"] == "EssentialContainerExited"
    assert container_of(t, "crash")["exitCode"] == 9
    assert "runtimeId" not in container_of(t, "app")
    assert container_of(t, "db")["healthStatus"] == "UNKNOWN"  # ended before the first probe
    assert container_of(t, "db")["exitCode"] == 143

    # Before the first probe, the health is UNKNOWN; app waits for db to be HEALTHY, and the
    # task is PENDING meanwhile (reported as soon as the agent works on it).
    t = wait_task(ecs, a_deps, "PENDING")
    assert container_of(t, "app")["lastStatus"] == "PENDING" and "runtimeId" not in container_of(t, "app")
    assert container_of(t, "db")["lastStatus"] == "RUNNING"
    assert t["healthStatus"] == "UNKNOWN" and "startedAt" not in t

    t = wait_task(ecs, a_deps, "RUNNING", timeout=20)
    assert container_of(t, "db")["healthStatus"] == "HEALTHY"
    assert t["healthStatus"] == "HEALTHY"
    assert container_of(t, "init")["exitCode"] == 0
    assert container_of(t, "fail")["exitCode"] == 1
    assert container_of(t, "sidecar")["lastStatus"] == "RUNNING"
    assert container_of(t, "app")["lastStatus"] == "RUNNING"
    with open(log) as f:
        assert sorted(f.read().split()) == ["app", "fail", "init"]
    waiter.result(timeout=30)  # the waiter saw RUNNING too (it raises if the CLI failed)
    pool.shutdown()

    t = wait_for(lambda: (lambda t: t if t["healthStatus"] == "HEALTHY" else None)(describe_task(ecs, a_ok)), 15,
                 what="HEALTHY")
    assert t["containers"][0]["healthStatus"] == "HEALTHY"
    t = wait_for(lambda: (lambda t: t if t["healthStatus"] == "UNHEALTHY" else None)(describe_task(ecs, a_bad)), 15,
                 what="UNHEALTHY")
    assert t["containers"][0]["healthStatus"] == "UNHEALTHY"
    # A standalone task is not stopped for being unhealthy (only services replace tasks).
    assert t["lastStatus"] == "RUNNING"
    for a in (a_deps, a_ok, a_bad):
        ecs.stop_task(cluster="default", task=a)
    for a in (a_deps, a_ok, a_bad):
        wait_task(ecs, a, "STOPPED")


def test_a_container_that_cannot_start_fails_the_task(ecs):
    td = td_of(ecs, [{"name": "app", "image": "busybox", "memory": 16, "command": ["no-such-program-xyz"]}])
    arn = run_one(ecs, td)["taskArn"]
    t = wait_task(ecs, arn, "STOPPED")
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("CannotStartContainerError"), t["stoppedReason"]
    c = t["containers"][0]
    assert c["reason"].startswith("CannotStartContainerError") and "exitCode" not in c
    assert "startedAt" not in t


def test_stop_before_start_and_tags(ecs):
    td = td_of(ecs, [sh("exec sleep 300")])
    t = run_one(ecs, td, tags=[{"key": "team", "value": "core"}])
    assert t["tags"] == [{"key": "team", "value": "core"}]
    ecs.stop_task(cluster="default", task=t["taskArn"], reason="changed my mind")
    t = wait_task(ecs, t["taskArn"], "STOPPED")
    assert t["stopCode"] == "UserInitiated" and t["stoppedReason"] == "changed my mind"
    assert "tags" not in t
    tagged = ecs.describe_tasks(cluster="default", tasks=[t["taskArn"]], include=["TAGS"])["tasks"][0]
    assert tagged["tags"] == [{"key": "team", "value": "core"}]


def test_overrides_change_what_runs(ecs, work):
    out = os.path.join(work, "greeting")
    td = td_of(ecs, [sh(f"echo default > {out}; exec sleep 300", environment=[{"name": "KEEP", "value": "k"}])])
    t = run_one(ecs, td, overrides={
        "containerOverrides": [{
            "name": "app",
            "command": [f'echo "$GREETING $KEEP" > {out}; exec sleep 301'],
            "environment": [{"name": "GREETING", "value": "hello"}],
            "memory": 96,
            "cpu": 128,
        }],
    })
    assert t["memory"] == "96" and t["cpu"] == "128"
    assert t["containers"][0]["memory"] == "96" and t["containers"][0]["cpu"] == "128"
    o = t["overrides"]["containerOverrides"][0]
    assert o["name"] == "app" and o["memory"] == 96
    wait_task(ecs, t["taskArn"], "RUNNING")
    wait_for(lambda: open(out).read() == "hello k\n", 10, what="the overridden command to run")
    assert len(processes_with_argv(["sleep", "301"])) == 1
    # Overrides name containers of the definition only.
    expect_error("InvalidParameterException", ecs.run_task, cluster="default", taskDefinition=td,
                 overrides={"containerOverrides": [{"name": "nope", "command": ["true"]}]})
    ecs.stop_task(cluster="default", task=t["taskArn"])
    wait_task(ecs, t["taskArn"], "STOPPED")
    assert processes_with_argv(["sleep", "301"]) == []


def test_client_token_makes_run_task_idempotent(ecs):
    td = td_of(ecs, [sh("exec sleep 300")])
    who = uniq("idem")
    token = uniq("token")
    first = ecs.run_task(cluster="default", taskDefinition=td, count=2, clientToken=token, startedBy=who)
    again = ecs.run_task(cluster="default", taskDefinition=td, count=2, clientToken=token, startedBy=who)
    arns = sorted(t["taskArn"] for t in first["tasks"])
    assert len(arns) == 2
    assert sorted(t["taskArn"] for t in again["tasks"]) == arns
    assert sorted(ecs.list_tasks(cluster="default", startedBy=who)["taskArns"]) == arns
    other = ecs.run_task(cluster="default", taskDefinition=td, count=1, clientToken=uniq("token"), startedBy=who)
    assert other["tasks"][0]["taskArn"] not in arns
    all_arns = arns + [other["tasks"][0]["taskArn"]]
    assert sorted(ecs.list_tasks(cluster="default", startedBy=who)["taskArns"]) == sorted(all_arns)
    for a in all_arns:
        ecs.stop_task(cluster="default", task=a)
    for a in all_arns:
        wait_task(ecs, a, "STOPPED")


def test_list_tasks_filters_and_pages(ecs, instance_arn):
    fam_a = uniq("lsa")
    fam_b = uniq("lsb")
    td_a = register(ecs, fam_a, [sh("exec sleep 300")])["taskDefinition"]["taskDefinitionArn"]
    td_b = register(ecs, fam_b, [sh("exit 0")])["taskDefinition"]["taskDefinitionArn"]
    who = uniq("ls")
    a = ecs.run_task(cluster="default", taskDefinition=td_a, count=5, startedBy=who)["tasks"]
    assert len(a) == 5
    b = run_one(ecs, td_b, startedBy=who)
    wait_task(ecs, b["taskArn"], "STOPPED")
    a_arns = sorted(t["taskArn"] for t in a)

    assert sorted(ecs.list_tasks(cluster="default", family=fam_a)["taskArns"]) == a_arns
    assert ecs.list_tasks(cluster="default", family=fam_b)["taskArns"] == []  # default: RUNNING
    assert ecs.list_tasks(cluster="default", family=fam_b, desiredStatus="STOPPED")["taskArns"] == [b["taskArn"]]
    assert sorted(ecs.list_tasks(cluster="default", startedBy=who)["taskArns"]) == a_arns
    assert set(a_arns) <= set(ecs.list_tasks(cluster="default", containerInstance=instance_arn)["taskArns"])
    iid = instance_arn.rsplit("/", 1)[1]
    assert set(a_arns) <= set(ecs.list_tasks(cluster="default", containerInstance=iid)["taskArns"])
    assert ecs.list_tasks(cluster="default", serviceName="no-such-service")["taskArns"] == []
    assert ecs.list_tasks(cluster="default", family=fam_a, launchType="FARGATE")["taskArns"] == []
    expect_error("InvalidParameterException", ecs.list_tasks, cluster="default", desiredStatus="BOGUS")
    expect_error("ClusterNotFoundException", ecs.list_tasks, cluster="no-such-cluster")

    # Pages of two, in a stable order, covering every task exactly once.
    pages, token, seen = 0, None, []
    while True:
        kw = {"nextToken": token} if token else {}
        page = ecs.list_tasks(cluster="default", family=fam_a, maxResults=2, **kw)
        assert len(page["taskArns"]) <= 2
        seen += page["taskArns"]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3 and sorted(seen) == a_arns and len(seen) == 5
    # The paginator of boto3 agrees.
    pg = ecs.get_paginator("list_tasks").paginate(cluster="default", family=fam_a, PaginationConfig={"PageSize": 2})
    assert sorted(x for p in pg for x in p["taskArns"]) == a_arns

    for t in a:
        ecs.stop_task(cluster="default", task=t["taskArn"])
    wait_for(lambda: ecs.list_tasks(cluster="default", family=fam_a)["taskArns"] == [], 20,
             what="the tasks to be listed as stopped")
    assert sorted(ecs.list_tasks(cluster="default", family=fam_a, desiredStatus="STOPPED")["taskArns"]) == a_arns
    for t in a:
        wait_task(ecs, t["taskArn"], "STOPPED")


def test_run_task_validation(ecs, instance_arn):
    td = td_of(ecs, [sh("exec sleep 300")])
    expect_error("InvalidParameterException", ecs.run_task, cluster="default", taskDefinition=td, count=11)
    expect_error("InvalidParameterException", ecs.run_task, cluster="default", taskDefinition=td, count=0)
    expect_error("InvalidParameterException", ecs.run_task, cluster="default", taskDefinition=td, launchType="FARGATE")
    expect_error("ClientException", ecs.run_task, cluster="default", taskDefinition=uniq("nope") + ":1")
    expect_error("ClusterNotFoundException", ecs.run_task, cluster="no-such-cluster", taskDefinition=td)
    # StartTask puts the task on the instance named.
    r = ecs.start_task(cluster="default", taskDefinition=td, containerInstances=[instance_arn], startedBy="st")
    assert not r["failures"] and r["tasks"][0]["containerInstanceArn"] == instance_arn
    arn = r["tasks"][0]["taskArn"]
    wait_task(ecs, arn, "RUNNING")
    # Ten at once.
    many = ecs.run_task(cluster="default", taskDefinition=td, count=10)
    assert len(many["tasks"]) == 10 and not many["failures"]
    arns = [arn] + [t["taskArn"] for t in many["tasks"]]
    for a in arns:
        ecs.stop_task(cluster="default", task=a)
    for a in arns:
        wait_task(ecs, a, "STOPPED")
    # DescribeTasks by id, by ARN, and a missing one.
    missing = "0" * 32
    d = ecs.describe_tasks(cluster="default", tasks=[arn.rsplit("/", 1)[1], missing])
    assert [t["taskArn"] for t in d["tasks"]] == [arn]
    assert d["failures"] == [{"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/default/{missing}", "reason": "MISSING"}]
    expect_error("InvalidParameterException", ecs.stop_task, cluster="default", task=missing)


def test_berth_up_restart_adopts_the_local_agents_tasks(fresh_dir):
    """SIGTERM stops berth, not its tasks; `berth up` again adopts them (the same process)."""
    b = Berth(fresh_dir, args=["--driver", "process", "--agent-timeout", "3"]).start()
    try:
        ecs = b.client()
        inst = wait_for(lambda: ecs.list_container_instances(cluster="default")["containerInstanceArns"], 20)
        argv = ["sleep", "777.5"]
        td = register(ecs, uniq("up"), [{"name": "app", "image": "busybox", "memory": 16, "command": argv}])
        td = td["taskDefinition"]["taskDefinitionArn"]
        arn = run_one(ecs, td)["taskArn"]
        rid = wait_task(ecs, arn, "RUNNING")["containers"][0]["runtimeId"]
        assert b.stop() == 0
        assert len(processes_with_argv(argv)) == 1
        b.start()
        ecs = b.client()
        # A task started after the restart proves the local agent went through its adoption.
        later = run_one(ecs, register(ecs, uniq("up"), [sh("exec sleep 300")])["taskDefinition"]["taskDefinitionArn"])
        wait_task(ecs, later["taskArn"], "RUNNING")
        assert ecs.list_container_instances(cluster="default")["containerInstanceArns"] == inst
        t = describe_task(ecs, arn)
        assert t["lastStatus"] == "RUNNING" and t["containers"][0]["runtimeId"] == rid
        assert len(processes_with_argv(argv)) == 1
        ecs.stop_task(cluster="default", task=arn)
        wait_task(ecs, arn, "STOPPED")
        assert processes_with_argv(argv) == []
    finally:
        _stop_everything(b)
        b.stop()


def test_stopped_tasks_are_forgotten_after_retention(fresh_dir):
    b = Berth(fresh_dir, args=["--driver", "process", "--agent-timeout", "3", "--task-retention", "2"]).start()
    try:
        ecs = b.client()
        # The server answers before its in-process agent has registered the host.
        wait_for(lambda: ecs.list_container_instances(cluster="default")["containerInstanceArns"], 20,
                 what="the local agent to register")
        # A running task is never forgotten, however old.
        td2 = register(ecs, uniq("ret"), [sh("exec sleep 300")])["taskDefinition"]["taskDefinitionArn"]
        arn2 = run_one(ecs, td2)["taskArn"]
        wait_task(ecs, arn2, "RUNNING", timeout=30)
        td = register(ecs, uniq("ret"), [sh("exit 0")])["taskDefinition"]["taskDefinitionArn"]
        arn = run_one(ecs, td)["taskArn"]
        t = wait_task(ecs, arn, "STOPPED", timeout=30)
        assert t["stopCode"] == "EssentialContainerExited"
        assert ecs.list_tasks(cluster="default", desiredStatus="STOPPED")["taskArns"] == [arn]

        def gone():
            d = ecs.describe_tasks(cluster="default", tasks=[arn])
            return d if not d["tasks"] else None
        d = wait_for(gone, 15, interval=0.2, what="the stopped task to be forgotten")
        assert d["failures"] == [{"arn": arn, "reason": "MISSING"}]
        assert ecs.list_tasks(cluster="default", desiredStatus="STOPPED")["taskArns"] == []
        assert describe_task(ecs, arn2)["lastStatus"] == "RUNNING"
        ecs.stop_task(cluster="default", task=arn2)
        wait_task(ecs, arn2, "STOPPED")
    finally:
        _stop_everything(b)
        b.stop()
