"""Task roles: a task whose definition names `taskRoleArn` gets temporary credentials for its
role, which boto3 inside the task finds by itself (the container credentials provider, here
`AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN` on a process-driver
host), and what it may do is what the role's policy allows.

Also: a role that does not exist or does not trust ecs-tasks is refused; the keys need their
session token (signed); they are refreshed before they expire, refused once expired, and
refused once their task has stopped.

One `berth up --no-agent --task-credentials-secs 30` and one process agent. Each task is
stopped by the test that started it (and every task at the end).
"""
import json
import os
import sys
import tempfile

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import Agent, Berth, build_test_image, docker, docker_ok, join_token, uniq, wait_for, wait_task

ACCOUNT = "000000000000"
LIFETIME = 30
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}
LIST_ONLY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}]}

# Runs in the task: boto3's default chain, with nothing in the environment but what berth
# gives the task, must find the role's credentials.
CHECKS = r"""
import json, os, sys
import boto3
from botocore.exceptions import ClientError
for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
    os.environ.pop(k, None)
s = boto3.session.Session()
c = s.client("ecs")
out = {"method": s.get_credentials().method,
       "akid": s.get_credentials().get_frozen_credentials().access_key,
       "clusters": c.list_clusters()["clusterArns"]}
calls = {"describe": lambda: c.describe_services(cluster="default", services=["x"]),
         "create": lambda: c.create_cluster(clusterName="not-allowed")}
for name, call in calls.items():
    try:
        call()
        out[name] = "allowed"
    except ClientError as e:
        out[name] = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    json.dump(out, f)
os.rename(tmp, sys.argv[1])
"""

# Runs in the task until stopped: appends its credentials each time they change.
HOLDER = r"""
import json, signal, sys, time
import boto3
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
creds = boto3.session.Session().get_credentials()
last = None
while True:
    f = creds.get_frozen_credentials()
    if f.access_key != last:
        last = f.access_key
        with open(sys.argv[1], "a") as out:
            out.write(json.dumps([f.access_key, f.secret_key, f.token]) + "\n")
    time.sleep(0.5)
"""


@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def berth(base):
    d = os.path.join(base, "server")
    os.makedirs(d)
    b = Berth(d, agent=False,
              args=["--agent-timeout", "3", "--task-credentials-secs", str(LIFETIME)]).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


@pytest.fixture(scope="module")
def agent(berth, ecs, base):
    a = Agent(berth, os.path.join(base, "host"), join_token(berth)).start()
    a.wait_registered(ecs)
    yield a
    try:
        for t in ecs.list_tasks()["taskArns"]:
            ecs.stop_task(task=t)
        for t in ecs.list_tasks(desiredStatus="STOPPED")["taskArns"]:
            wait_task(ecs, t, "STOPPED", timeout=30)
    finally:
        a.stop()


@pytest.fixture(scope="module")
def role(berth):
    iam = berth.client("iam")
    name = uniq("task-role")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="list", PolicyDocument=json.dumps(LIST_ONLY))
    return name, arn


def task_def(ecs, berth, role_arn, script, out):
    env = [{"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
           {"name": "AWS_ENDPOINT_URL_ECS", "value": berth.endpoint}]
    return ecs.register_task_definition(
        family=uniq("tr"), taskRoleArn=role_arn,
        containerDefinitions=[{"name": "app", "image": "process", "memory": 128,
                               "command": [sys.executable, "-c", script, out],
                               "environment": env}],
    )["taskDefinition"]["taskDefinitionArn"]


def run(ecs, td):
    r = ecs.run_task(taskDefinition=td)
    assert not r["failures"], r
    return r["tasks"][0]["taskArn"]


def session_client(berth, akid, secret, token):
    return berth.client(access_key=akid, secret_key=secret, aws_session_token=token, strict=False)


def code_of(fn, *a, **kw):
    with pytest.raises(ClientError) as e:
        fn(*a, **kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def test_unknown_and_untrusting_roles_are_refused(berth, ecs):
    iam = berth.client("iam")
    c = [{"name": "app", "image": "process", "memory": 64, "command": ["true"]}]
    for arn in (f"arn:aws:iam::{ACCOUNT}:role/{uniq('missing')}", "not-an-arn",
                "arn:aws:iam::111111111111:role/app"):
        assert code_of(ecs.register_task_definition, family=uniq("tr"), taskRoleArn=arn,
                       containerDefinitions=c) == ("ClientException", "Role is not valid")
    name = uniq("ec2-role")
    other = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(other))["Role"]["Arn"]
    code, msg = code_of(ecs.register_task_definition, family=uniq("tr"), taskRoleArn=arn,
                        containerDefinitions=c)
    assert code == "ClientException" and msg.startswith(f"ECS was unable to assume the role '{arn}'")
    td = ecs.register_task_definition(family=uniq("tr"), containerDefinitions=c)["taskDefinition"]
    assert code_of(ecs.run_task, taskDefinition=td["taskDefinitionArn"],
                   overrides={"taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{uniq('missing')}"}) \
        == ("ClientException", "Role is not valid")


def test_boto3_in_a_task_gets_its_roles_credentials_and_only_its_permissions(
        berth, ecs, agent, role, base):
    name, arn = role
    out = os.path.join(base, uniq("checks") + ".json")
    td = task_def(ecs, berth, arn, CHECKS, out)
    assert ecs.describe_task_definition(taskDefinition=td)["taskDefinition"]["taskRoleArn"] == arn
    task = run(ecs, td)
    wait_for(lambda: os.path.exists(out), timeout=60, what="the task's report")
    with open(out) as f:
        got = json.load(f)
    assert got["method"] == "container-role", got
    assert got["akid"].startswith("ASIA") and len(got["akid"]) == 20
    assert any(c.endswith(":cluster/default") for c in got["clusters"]), got
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{task.rsplit('/', 1)[1]}"
    assert got["describe"] == ["AccessDeniedException",
                               f"User: {session} is not authorized to perform: ecs:DescribeServices "
                               f"on resource: arn:aws:ecs:us-east-1:{ACCOUNT}:service/default/x "
                               "because no identity-based policy allows the ecs:DescribeServices action"]
    assert got["create"][0] == "AccessDeniedException" and "ecs:CreateCluster" in got["create"][1]
    wait_task(ecs, task, "STOPPED", timeout=30)
    assert ecs.describe_tasks(tasks=[task])["tasks"][0]["containers"][0]["exitCode"] == 0


def read_creds(path, n=1, timeout=60):
    def lines():
        if not os.path.exists(path):
            return None
        with open(path) as f:
            got = [json.loads(x) for x in f.read().splitlines() if x.strip()]
        return got if len(got) >= n else None
    return wait_for(lines, timeout=timeout, interval=0.2, what=f"{n} sets of credentials")


def test_session_keys_need_their_token_and_die_with_their_task(berth, ecs, agent, role, base):
    out = os.path.join(base, uniq("holder") + ".jsonl")
    task = run(ecs, task_def(ecs, berth, role[1], HOLDER, out))
    [(akid, secret, token)] = read_creds(out)[:1]
    assert session_client(berth, akid, secret, token).list_clusters()["clusterArns"]
    # Without the token, or with another, the keys are nothing.
    for bad in (None, token[:-4] + "AAAA"):
        assert code_of(session_client(berth, akid, secret, bad).list_clusters)[0] \
            == "UnrecognizedClientException"
    ecs.stop_task(task=task)
    wait_task(ecs, task, "STOPPED", timeout=30)
    code, msg = code_of(session_client(berth, akid, secret, token).list_clusters)
    assert (code, msg) == ("UnrecognizedClientException",
                           "The security token included in the request is invalid.")


def test_session_keys_are_refreshed_and_expire(berth, ecs, agent, role, base):
    out = os.path.join(base, uniq("holder") + ".jsonl")
    task = run(ecs, task_def(ecs, berth, role[1], HOLDER, out))
    try:
        first = read_creds(out)[0]
        # Refreshed at half their life: the task picks new keys up by itself.
        second = read_creds(out, n=2, timeout=LIFETIME)[1]
        assert second[0] != first[0]
        assert session_client(berth, *second).list_clusters()["clusterArns"]
        client = session_client(berth, *first)

        def expired():
            try:
                client.list_clusters()
                return None
            except ClientError as e:
                return e.response["Error"]
        err = wait_for(expired, timeout=LIFETIME + 5, interval=0.5, what="the keys to expire")
        assert (err["Code"], err["Message"]) == (
            "ExpiredTokenException", "The security token included in the request is expired")
    finally:
        ecs.stop_task(task=task)
        wait_task(ecs, task, "STOPPED", timeout=30)


def test_a_docker_container_finds_its_credentials_at_ecs_address(berth, ecs, role, base):
    # The relative URI is all a container gets: 169.254.170.2 must lead to the agent (DNAT).
    if not docker_ok():
        pytest.skip("no Docker daemon")
    build_test_image()
    ecs.create_cluster(clusterName="dock")
    scope = uniq("e2e-tr")
    a = Agent(berth, os.path.join(base, "docker-host"), join_token(berth, "dock"), cluster="dock",
              driver="docker", scope=scope).start()
    try:
        a.wait_registered(ecs)
        fetch = ('wget -qO- "http://169.254.170.2${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}" '
                 '| grep -q \'"AccessKeyId":"ASIA\'')
        td = ecs.register_task_definition(
            family=uniq("tr"), taskRoleArn=role[1],
            containerDefinitions=[{"name": "app", "image": "berth-test/busybox:latest", "memory": 32,
                                   "command": ["sh", "-c", fetch]}],
        )["taskDefinition"]["taskDefinitionArn"]
        r = ecs.run_task(cluster="dock", taskDefinition=td)
        assert not r["failures"], r
        task = r["tasks"][0]["taskArn"]
        wait_task(ecs, task, "STOPPED", cluster="dock", timeout=60)
        c = ecs.describe_tasks(cluster="dock", tasks=[task])["tasks"][0]["containers"][0]
        assert c.get("exitCode") == 0, c
    finally:
        a.stop()
        ids = docker("ps", "-aq", "--filter", f"label=berth.scope={scope}", check=False).stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False)
