"""CloudWatch Logs and the awslogs log driver.

The Logs API with boto3 and the aws CLI (groups, streams, PutLogEvents' rules, GetLogEvents'
tokens, FilterLogEvents' text patterns and paging, retention enforced by the sweep); awslogs
options refused at registration naming the option; and, on the docker driver, a container's
output arriving under `prefix/container-name/task-id`, a missing group failing the task as ECS
does, other log drivers passed to Docker, and output written while the server is down (and
across an agent restart) arriving once, in order, with nothing lost.
"""
import os
import subprocess
import tempfile
import time

import pytest
from botocore.exceptions import ClientError

from conftest import Agent, Berth, join_token, register, run_one, supports_flag, uniq, wait_for, wait_task
from conftest import docker, docker_ok, build_test_image

IMAGE = "berth-test/busybox:latest"
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
NOW_MS = lambda: int(time.time() * 1000)  # noqa: E731


def server_args():
    args = ["--agent-timeout", "3"]
    if supports_flag("up", "--host-lost-timeout"):
        args += ["--host-lost-timeout", "120"]
    if supports_flag("up", "--logs-sweep-interval"):
        args += ["--logs-sweep-interval", "0.5"]
    return args


@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def berth(base):
    d = os.path.join(base, "server")
    os.makedirs(d)
    b = Berth(d, agent=False, args=server_args()).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def logs(berth):
    return berth.client("logs")


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


def code_of(fn, *a, **kw):
    with pytest.raises(ClientError) as e:
        fn(*a, **kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def messages(events):
    return [e["message"] for e in events]


def all_events(logs, group, stream):
    """Every event of a stream, from the head, following nextForwardToken until it repeats."""
    out, token = [], None
    for _ in range(1000):
        kw = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kw["nextToken"] = token
        r = logs.get_log_events(**kw)
        out += r["events"]
        if r["nextForwardToken"] == token:
            return out
        token = r["nextForwardToken"]
    raise AssertionError("GetLogEvents paging did not terminate")


# ---------------------------------------------------------------------------------------------
# The API

def test_logs_api_with_boto3(logs):
    g = "/e2e/" + uniq("g")
    logs.create_log_group(logGroupName=g, tags={"team": "e2e"})
    assert code_of(logs.create_log_group, logGroupName=g)[0] == "ResourceAlreadyExistsException"
    [desc] = logs.describe_log_groups(logGroupNamePrefix=g)["logGroups"]
    assert desc["logGroupName"] == g and desc["arn"].endswith(f":log-group:{g}:*")
    assert "retentionInDays" not in desc
    logs.create_log_stream(logGroupName=g, logStreamName="a")
    logs.create_log_stream(logGroupName=g, logStreamName="b")
    now = NOW_MS()
    r = logs.put_log_events(logGroupName=g, logStreamName="a", logEvents=[
        {"timestamp": now + 2, "message": "INFO three"},
        {"timestamp": now, "message": "ERROR one"},
        {"timestamp": now + 1, "message": "WARN two"},
        {"timestamp": now + 3 * 3600 * 1000, "message": "too new"},
    ])
    assert r["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 3}
    logs.put_log_events(logGroupName=g, logStreamName="b", sequenceToken="ignored", logEvents=[
        {"timestamp": now + 1, "message": "ERROR healthcheck"}])
    assert messages(all_events(logs, g, "a")) == ["ERROR one", "WARN two", "INFO three"]
    # Newest first by default, and the backward token pages back.
    r = logs.get_log_events(logGroupName=g, logStreamName="a", limit=1)
    assert messages(r["events"]) == ["INFO three"]
    r = logs.get_log_events(logGroupName=g, logStreamName="a", limit=2, nextToken=r["nextBackwardToken"])
    assert messages(r["events"]) == ["ERROR one", "WARN two"]
    # FilterLogEvents: interleaved across streams, text patterns, paging with boto3's paginator.
    f = logs.filter_log_events(logGroupName=g, filterPattern="?ERROR ?WARN")
    assert messages(f["events"]) == ["ERROR one", "WARN two", "ERROR healthcheck"]
    assert {e["logStreamName"] for e in f["events"]} == {"a", "b"}
    f = logs.filter_log_events(logGroupName=g, filterPattern="ERROR -healthcheck", logStreamNames=["a", "b"])
    assert messages(f["events"]) == ["ERROR one"]
    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName=g, PaginationConfig={"PageSize": 1}))
    assert sum(len(p["events"]) for p in pages) == 4 and len(pages) >= 4
    c, m = code_of(logs.filter_log_events, logGroupName=g, filterPattern='{ $.level = "error" }')
    assert c == "InvalidParameterException" and "filterPattern" in m
    # DescribeLogStreams by last event time, newest first.
    s = logs.describe_log_streams(logGroupName=g, orderBy="LastEventTime", descending=True)["logStreams"]
    assert [x["logStreamName"] for x in s] == ["a", "b"]
    assert s[0]["lastEventTimestamp"] == now + 2 and s[0]["storedBytes"] > 0
    logs.delete_log_stream(logGroupName=g, logStreamName="b")
    assert code_of(logs.get_log_events, logGroupName=g, logStreamName="b")[0] == "ResourceNotFoundException"
    logs.delete_log_group(logGroupName=g)
    assert code_of(logs.delete_log_group, logGroupName=g)[0] == "ResourceNotFoundException"
    assert code_of(logs.create_log_group, logGroupName=uniq("k"), kmsKeyId="alias/x")[1].find("kmsKeyId") >= 0


def test_logs_api_with_the_aws_cli(berth):
    g = "/e2e/" + uniq("cli")
    berth.aws("logs", "create-log-group", "--log-group-name", g)
    berth.aws("logs", "create-log-stream", "--log-group-name", g, "--log-stream-name", "s")
    now = NOW_MS()
    berth.aws("logs", "put-log-events", "--log-group-name", g, "--log-stream-name", "s",
              "--log-events", f"timestamp={now},message=hello", f"timestamp={now + 1},message=world")
    r = berth.aws("logs", "get-log-events", "--log-group-name", g, "--log-stream-name", "s", "--start-from-head")
    assert messages(r["events"]) == ["hello", "world"] and r["nextForwardToken"].startswith("f/")
    # The CLI pages FilterLogEvents itself until nextToken is absent.
    r = berth.aws("logs", "filter-log-events", "--log-group-name", g, "--filter-pattern", "world", "--page-size", "1")
    assert messages(r["events"]) == ["world"]
    r = berth.aws("logs", "describe-log-groups", "--log-group-name-prefix", g)
    assert [x["logGroupName"] for x in r["logGroups"]] == [g]
    assert berth.aws("logs", "describe-log-streams", "--log-group-name", g)["logStreams"][0]["logStreamName"] == "s"
    berth.aws("logs", "put-retention-policy", "--log-group-name", g, "--retention-in-days", "7")
    assert berth.aws("logs", "describe-log-groups", "--log-group-name-prefix", g)["logGroups"][0]["retentionInDays"] == 7
    p = berth.aws("logs", "put-retention-policy", "--log-group-name", g, "--retention-in-days", "2", check=False)
    assert p.returncode != 0 and "InvalidParameterException" in p.stderr
    berth.aws("logs", "delete-retention-policy", "--log-group-name", g)
    # `aws logs tail` is an aws CLI v2 command; the PyPI `awscli` is v1 and has none. With v2
    # installed it polls FilterLogEvents, which is what the checks above exercise.
    p = berth.aws("logs", "tail", g, check=False)
    if p.returncode == 0:
        assert "hello" in p.stdout and "world" in p.stdout
    else:
        assert "invalid choice" in p.stderr.lower()
    berth.aws("logs", "delete-log-stream", "--log-group-name", g, "--log-stream-name", "s")
    berth.aws("logs", "delete-log-group", "--log-group-name", g)


def test_retention_is_enforced_by_the_sweep(logs):
    g = "/e2e/" + uniq("ret")
    logs.create_log_group(logGroupName=g)
    logs.create_log_stream(logGroupName=g, logStreamName="s")
    day = 24 * 3600 * 1000
    now = NOW_MS()
    logs.put_log_events(logGroupName=g, logStreamName="s", logEvents=[{"timestamp": now - 3 * day, "message": "old"}])
    logs.put_log_events(logGroupName=g, logStreamName="s", logEvents=[{"timestamp": now, "message": "new"}])
    logs.put_retention_policy(logGroupName=g, retentionInDays=1)
    wait_for(lambda: messages(all_events(logs, g, "s")) == ["new"], 20, interval=0.2, what="the retention sweep")
    r = logs.put_log_events(logGroupName=g, logStreamName="s", logEvents=[
        {"timestamp": now - 2 * day + 2 * 3600 * 1000, "message": "expired"}, {"timestamp": now - day + 60_000, "message": "kept"}])
    assert r["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}


def test_awslogs_options_are_checked_at_registration(ecs):
    def td(options, driver="awslogs"):
        return register(ecs, uniq("lg"), [{"name": "app", "image": IMAGE, "memory": 32,
                                           "logConfiguration": {"logDriver": driver, "options": options}}])
    for options, named in [
        ({"awslogs-group": "g", "awslogs-multiline-pattern": "^INFO"}, "awslogs-multiline-pattern"),
        ({"awslogs-group": "g", "awslogs-datetime-format": "%Y"}, "awslogs-datetime-format"),
        ({"awslogs-group": "g", "colour": "blue"}, "colour"),
        ({"awslogs-region": "eu-west-1"}, "awslogs-group"),
        ({"awslogs-group": "g", "mode": "non-blocking", "max-buffer-size": "lots"}, "max-buffer-size"),
        ({"awslogs-group": "g", "awslogs-create-group": "yes"}, "awslogs-create-group"),
    ]:
        c, m = code_of(td, options)
        assert c == "ClientException" and named in m, (named, m)
    c, m = code_of(td, {}, driver="awsfirelens")
    assert c == "ClientException" and "awsfirelens" in m
    td({"awslogs-group": "g", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "p",
        "awslogs-create-group": "true", "mode": "non-blocking", "max-buffer-size": "4m"})
    td({"max-size": "1m"}, driver="json-file")


# ---------------------------------------------------------------------------------------------
# The awslogs driver on Docker



needs_docker = pytest.mark.skipif(not docker_ok(), reason="no Docker daemon")


@pytest.fixture(scope="module")
def scope():
    return uniq("e2e-logs")


@pytest.fixture(scope="module")
def agent(berth, ecs, base, scope):
    build_test_image()
    a = Agent(berth, os.path.join(base, "host"), join_token(berth), driver="docker", scope=scope).start()
    a.wait_registered(ecs)
    yield a
    for t in ecs.list_tasks(cluster="default")["taskArns"]:
        ecs.stop_task(cluster="default", task=t)
    a.stop()
    ids = docker("ps", "-aq", "--filter", f"label=berth.scope={scope}", check=False).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)


COUNTER = ["sh", "-c", "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo \"line $i\"; sleep 0.05; done"]


def awslogs_td(ecs, group, command, **options):
    opts = {"awslogs-group": group, "awslogs-region": "eu-west-1", **options}
    return register(ecs, uniq("aw"), [{
        "name": "app", "image": IMAGE, "memory": 32, "stopTimeout": 2, "command": command,
        "logConfiguration": {"logDriver": "awslogs", "options": opts}}])["taskDefinition"]["taskDefinitionArn"]


def numbers(events):
    return [int(m.split()[1]) for m in messages(events) if m.startswith("line ")]


@needs_docker
def test_container_output_arrives_under_prefix_name_task_id(ecs, logs, agent):
    g = "/ecs/" + uniq("web")
    td = awslogs_td(ecs, g, ["sh", "-c", "echo hello from app; echo oops >&2; sleep 30"],
                    **{"awslogs-stream-prefix": "web", "awslogs-create-group": "true"})
    arn = run_one(ecs, td)["taskArn"]
    t = wait_task(ecs, arn, "RUNNING", timeout=30)
    stream = f"web/app/{arn.rsplit('/', 1)[1]}"
    got = wait_for(lambda: (lambda m: m if {"hello from app", "oops"} <= set(m) else None)(
        messages(all_events(logs, g, stream))), 20, interval=0.2, what="the container's output in CloudWatch Logs")
    assert got.count("hello from app") == 1
    # The container itself keeps Docker's default log driver (the agent reads and ships it).
    info = docker("inspect", "--format", "{{.HostConfig.LogConfig.Type}}", t["containers"][0]["runtimeId"])
    assert info.stdout.strip() == "json-file"
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=30)


@needs_docker
def test_a_missing_group_fails_the_task_as_ecs_does(ecs, agent):
    td = awslogs_td(ecs, "/ecs/" + uniq("absent"), ["sleep", "30"], **{"awslogs-stream-prefix": "p"})
    arn = run_one(ecs, td)["taskArn"]
    t = wait_task(ecs, arn, "STOPPED", timeout=30)
    assert t["stopCode"] == "TaskFailedToStart"
    assert "ResourceInitializationError" in t["stoppedReason"] and "log group" in t["stoppedReason"]


@needs_docker
def test_other_log_drivers_pass_through_to_docker(ecs, agent):
    td = register(ecs, uniq("jf"), [{
        "name": "app", "image": IMAGE, "memory": 32, "stopTimeout": 2, "command": ["sleep", "30"],
        "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m", "max-file": "2"}}}])
    arn = run_one(ecs, td["taskDefinition"]["taskDefinitionArn"])["taskArn"]
    t = wait_task(ecs, arn, "RUNNING", timeout=30)
    import json
    lc = json.loads(docker("inspect", "--format", "{{json .HostConfig.LogConfig}}",
                           t["containers"][0]["runtimeId"]).stdout)
    assert lc == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=30)


@needs_docker
def test_output_written_while_the_server_is_down_arrives_once_in_order(berth, ecs, logs, agent, base, scope):
    g = "/ecs/" + uniq("outage")
    td = awslogs_td(ecs, g, COUNTER, **{"awslogs-stream-prefix": "c", "awslogs-create-group": "true"})
    arn = run_one(ecs, td)["taskArn"]
    t = wait_task(ecs, arn, "RUNNING", timeout=30)
    rid = t["containers"][0]["runtimeId"]
    stream = f"c/app/{arn.rsplit('/', 1)[1]}"
    wait_for(lambda: len(numbers(all_events(logs, g, stream))) >= 5, 20, interval=0.2, what="first lines")

    def written():
        return len([ln for ln in docker("logs", rid).stdout.splitlines() if ln.startswith("line ")])

    # The server goes away (kill -9, the agent stays); the container keeps writing.
    berth.kill9()
    at_kill = written()
    wait_for(lambda: written() >= at_kill + 40, 30, interval=0.1, what="output while the server is down")
    berth.start()
    logs = berth.client("logs")
    target = written()
    wait_for(lambda: len(numbers(all_events(logs, g, stream))) >= target, 30, interval=0.2,
             what="the outage's output to arrive")
    # The agent restarts too (kill -9): it resumes where the server says it got to.
    agent.kill9()
    agent.start()
    target = written() + 20
    wait_for(lambda: len(numbers(all_events(logs, g, stream))) >= target, 40, interval=0.2,
             what="output after the agent restart")
    got = numbers(all_events(logs, g, stream))
    assert got == list(range(1, len(got) + 1)), "every line once, in order"
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, arn, "STOPPED", timeout=30)


# ---------------------------------------------------------------------------------------------
# `berth up` as a newcomer runs it: the export line, and awslogs on the process driver

def test_berth_up_exports_the_logs_endpoint_and_ships_process_output(base):
    d = os.path.join(base, "up")
    os.makedirs(d)
    b = Berth(d, args=["--driver", "process"]).start()
    try:
        exports = b.read_exports()
        assert exports["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] == b.endpoint
        # botocore reads that name for the service id "CloudWatch Logs".
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=b.endpoint, AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
                   AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", AWS_DEFAULT_REGION="eu-west-1",
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        code = ("import boto3; c = boto3.client('logs'); "
                "print(c.meta.endpoint_url); c.describe_log_groups()")
        p = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0 and p.stdout.strip() == b.endpoint, p.stderr
        ecs, logs = b.client(), b.client("logs")
        g = "/ecs/" + uniq("proc")
        td = awslogs_td(ecs, g, ["sh", "-c", "echo one; echo two >&2; echo three"],
                        **{"awslogs-stream-prefix": "p", "awslogs-create-group": "true"})
        arn = run_one(ecs, td)["taskArn"]
        stream = f"p/app/{arn.rsplit('/', 1)[1]}"
        got = wait_for(lambda: (lambda m: m if len(m) >= 3 else None)(messages(all_events(logs, g, stream))), 30,
                       interval=0.2, what="the process's output in CloudWatch Logs")
        assert sorted(got) == ["one", "three", "two"]
        # Docker log drivers need Docker: the process driver refuses them when the task starts.
        td = register(ecs, uniq("pj"), [{"name": "app", "image": IMAGE, "memory": 32, "command": ["true"],
                                         "logConfiguration": {"logDriver": "json-file"}}])
        arn = run_one(ecs, td["taskDefinition"]["taskDefinitionArn"])["taskArn"]
        t = wait_task(ecs, arn, "STOPPED", timeout=30)
        assert "logDriver json-file" in t["stoppedReason"]
    finally:
        b.stop()
