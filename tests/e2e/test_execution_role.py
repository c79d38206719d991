"""Task execution roles and managed policies on roles, with boto3.

- Managed policies attach to roles (AttachRolePolicy / DetachRolePolicy /
  ListAttachedRolePolicies, with `arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy`),
  and a role with one attached cannot be deleted.
- A task definition with secrets needs `executionRoleArn` (ECS's ClientException), naming a role.
- berth reads a task's secrets and checks its `awslogs` streams as the task's execution role: a
  role whose policies (inline and attached) do not allow `ssm:GetParameters`,
  `secretsmanager:GetSecretValue` or `logs:CreateLogStream` fails the task to start with ECS's
  ResourceInitializationError and the AccessDeniedException the role would get; once allowed,
  the task runs and has its secret.

One `berth up --no-agent` and one process agent; each test stops the tasks it started.
"""
import json
import os
import sys
import tempfile

import pytest
from botocore.exceptions import ClientError

from conftest import Agent, Berth, join_token, uniq, wait_for, wait_task

ACCOUNT = "000000000000"
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}
PREFIX = ("ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
          "retrieval failed: ")

# Runs in the task: writes the secret it was given.
SHOW = r"""
import os, sys, time
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(os.environ.get("SECRET", "<none>"))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
"""


@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def berth(base):
    d = os.path.join(base, "server")
    os.makedirs(d)
    b = Berth(d, agent=False).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


@pytest.fixture(scope="module")
def iam(berth):
    return berth.client("iam")


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


def new_role(iam, attached=(), inline=None):
    name = uniq("exec")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    for p in attached:
        iam.attach_role_policy(RoleName=name, PolicyArn=p)
    if inline:
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(inline))
    return name, arn


def error_of(fn, *a, **kw):
    with pytest.raises(ClientError) as e:
        fn(*a, **kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def session(role, task):
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{task.rsplit('/', 1)[1]}"


def test_managed_policies_attach_to_roles(iam):
    name, _ = new_role(iam, attached=[EXECUTION_POLICY, READ_ONLY])
    iam.attach_role_policy(RoleName=name, PolicyArn=READ_ONLY)  # again: no change
    listed = iam.list_attached_role_policies(RoleName=name)
    assert listed["AttachedPolicies"] == [
        {"PolicyName": "AmazonECSTaskExecutionRolePolicy", "PolicyArn": EXECUTION_POLICY},
        {"PolicyName": "ReadOnlyAccess", "PolicyArn": READ_ONLY}]
    assert listed["IsTruncated"] is False
    only = iam.list_attached_role_policies(RoleName=name, PathPrefix="/service-role/")
    assert [p["PolicyName"] for p in only["AttachedPolicies"]] == ["AmazonECSTaskExecutionRolePolicy"]
    page = iam.list_attached_role_policies(RoleName=name, MaxItems=1)
    assert page["IsTruncated"] and len(page["AttachedPolicies"]) == 1
    assert error_of(iam.attach_role_policy, RoleName=name,
                    PolicyArn="arn:aws:iam::aws:policy/Nope") == (
        "NoSuchEntity", "Policy arn:aws:iam::aws:policy/Nope does not exist or is not attachable.")
    assert error_of(iam.attach_role_policy, RoleName=uniq("nobody"), PolicyArn=READ_ONLY)[0] == "NoSuchEntity"
    assert error_of(iam.delete_role, RoleName=name) == (
        "DeleteConflict", "Cannot delete entity, must detach all policies first.")
    iam.detach_role_policy(RoleName=name, PolicyArn=READ_ONLY)
    assert error_of(iam.detach_role_policy, RoleName=name, PolicyArn=READ_ONLY) == (
        "NoSuchEntity", f"Policy {READ_ONLY} was not found.")
    iam.detach_role_policy(RoleName=name, PolicyArn=EXECUTION_POLICY)
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    iam.delete_role(RoleName=name)


def test_secrets_need_an_execution_role(ecs, iam):
    c = [{"name": "app", "image": "process", "memory": 64, "command": ["true"],
          "secrets": [{"name": "SECRET", "valueFrom": "/any/param"}]}]
    assert error_of(ecs.register_task_definition, family=uniq("ex"), containerDefinitions=c) == (
        "ClientException",
        "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'.")
    missing = f"arn:aws:iam::{ACCOUNT}:role/{uniq('missing')}"
    assert error_of(ecs.register_task_definition, family=uniq("ex"), containerDefinitions=c,
                    executionRoleArn=missing) == ("ClientException", "Role is not valid")


def task_def(ecs, role_arn, out, secrets=(), log=None):
    c = {"name": "app", "image": "process", "memory": 64, "stopTimeout": 2,
         "command": [sys.executable, "-c", SHOW, out], "secrets": list(secrets)}
    if log:
        c["logConfiguration"] = {"logDriver": "awslogs", "options": {
            "awslogs-group": log, "awslogs-stream-prefix": "app"}}
    return ecs.register_task_definition(family=uniq("ex"), executionRoleArn=role_arn,
                                        containerDefinitions=[c])["taskDefinition"]["taskDefinitionArn"]


def run(ecs, td):
    r = ecs.run_task(taskDefinition=td)
    assert not r["failures"], r
    return r["tasks"][0]["taskArn"]


def failed_with(ecs, task):
    t = wait_task(ecs, task, "STOPPED", timeout=30)
    assert t["stopCode"] == "TaskFailedToStart", t
    return t["stoppedReason"]


def runs_with_secret(ecs, task, out, want):
    wait_task(ecs, task, "RUNNING", timeout=30)
    wait_for(lambda: os.path.exists(out), 20, interval=0.1, what="the task to write its secret")
    with open(out) as f:
        assert f.read() == want
    ecs.stop_task(task=task)
    wait_task(ecs, task, "STOPPED", timeout=30)


def test_the_execution_role_must_allow_reading_the_ssm_parameter(berth, ecs, iam, agent, base):
    ssm = berth.client("ssm")
    param = f"/{uniq('app')}/db/password"
    ssm.put_parameter(Name=param, Value="ssm-value-1", Type="SecureString")
    # AWS's execution policy alone (ECR, logs) does not reach Parameter Store.
    name, arn = new_role(iam, attached=[EXECUTION_POLICY])
    out = os.path.join(base, uniq("ssm-out"))
    td = task_def(ecs, arn, out, secrets=[{"name": "SECRET", "valueFrom": param}])
    task = run(ecs, td)
    resource = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{param}"
    assert failed_with(ecs, task) == (
        f"{PREFIX}unable to retrieve secrets from ssm: service call has been retried 1 time(s): "
        f"AccessDeniedException: User: {session(name, task)} is not authorized to perform: "
        f"ssm:GetParameters on resource: {resource} because no identity-based policy allows the "
        "ssm:GetParameters action")
    assert not os.path.exists(out)
    iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "ssm:GetParameters", "Resource": resource}]}))
    runs_with_secret(ecs, run(ecs, td), out, "ssm-value-1")


def test_the_execution_role_must_allow_reading_the_secret(berth, ecs, iam, agent, base):
    sm = berth.client("secretsmanager")
    secret = sm.create_secret(Name=uniq("db"), SecretString="asm-value-2")["ARN"]
    name, arn = new_role(iam, inline={"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": secret}, {
        "Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]})
    out = os.path.join(base, uniq("asm-out"))
    td = task_def(ecs, arn, out, secrets=[{"name": "SECRET", "valueFrom": secret}])
    task = run(ecs, td)
    assert failed_with(ecs, task) == (
        f"{PREFIX}unable to retrieve secret from asm: service call has been retried 1 time(s): "
        f"failed to fetch secret {secret} from secrets manager: AccessDeniedException: User: "
        f"{session(name, task)} is not authorized to perform: secretsmanager:GetSecretValue on "
        f"resource: {secret} with an explicit deny in an identity-based policy")
    iam.delete_role_policy(RoleName=name, PolicyName="inline")
    iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret}]}))
    runs_with_secret(ecs, run(ecs, td), out, "asm-value-2")


def test_awslogs_needs_the_execution_role_to_write_logs(berth, ecs, iam, agent, base):
    group = f"/ecs/{uniq('exec-logs')}"
    berth.client("logs").create_log_group(logGroupName=group)
    name, arn = new_role(iam)
    out = os.path.join(base, uniq("logs-out"))
    td = task_def(ecs, arn, out, log=group)
    task = run(ecs, td)
    assert failed_with(ecs, task) == (
        "ResourceInitializationError: failed to validate logger args: create stream has been "
        "retried 1 times: failed to create Cloudwatch log stream: AccessDeniedException: User: "
        f"{session(name, task)} is not authorized to perform: logs:CreateLogStream on resource: "
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group} because no identity-based policy "
        "allows the logs:CreateLogStream action : exit status 1")
    # The managed policy ECS suggests for execution roles allows it: attached policies count.
    iam.attach_role_policy(RoleName=name, PolicyArn=EXECUTION_POLICY)
    runs_with_secret(ecs, run(ecs, td), out, "<none>")
