"""SSM Parameter Store and Secrets Manager on berth's endpoint, with boto3 and the aws CLI,
and task definitions' `secrets`: a task on the docker driver whose container prints one value
from an SSM SecureString and one from a JSON key of a Secrets Manager secret; the values never
show in DescribeTasks, the store file, the server's or the agent's logs, or /metrics; a task
whose secret does not exist stops with ECS's ResourceInitializationError and no container.
"""
import os
import stat
import subprocess
import tempfile
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import (
    Agent, Berth, describe_task, execution_role, join_token, register, strict_responses, uniq,
    wait_for, wait_task,
)
from conftest import build_test_image
from test_tasks_docker import IMAGE, _remove_scope, docker_ok

SSM_PW = "ssm-Secure-Value-4711"
ASM_KEY = "asm-Json-Value-0815"


@pytest.fixture(scope="module")
def base():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def berth(base):
    d = os.path.join(base, "server")
    os.makedirs(d)
    # Debug logging, so the check that no value is logged covers every line berth writes.
    b = Berth(d, agent=False, env={"RUST_LOG": "debug"}).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ssm(berth):
    c = berth.client("ssm")
    strict_responses(c)
    return c


@pytest.fixture(scope="module")
def sm(berth):
    c = berth.client("secretsmanager")
    strict_responses(c)
    return c


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


def error_code(fn, *args, **kw):
    with pytest.raises(ClientError) as e:
        fn(*args, **kw)
    return e.value.response["Error"]["Code"]


def test_exports_name_the_ssm_and_secrets_manager_endpoints(base):
    d = os.path.join(base, "exports")
    os.makedirs(d)
    b = Berth(d, agent=False).start()
    try:
        exports = b.read_exports()
    finally:
        b.stop()
    assert exports["AWS_ENDPOINT_URL_SSM"] == b.endpoint
    assert exports["AWS_ENDPOINT_URL_SECRETS_MANAGER"] == b.endpoint
    key = os.path.join(d, "secrets.key")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and os.path.getsize(key) == 32


def test_parameter_store_with_boto3(ssm):
    name = f"/{uniq('app')}/db/url"
    assert ssm.put_parameter(Name=name, Value="v1", Type="String", Description="db")["Version"] == 1
    assert error_code(ssm.put_parameter, Name=name, Value="v2", Type="String") == "ParameterAlreadyExists"
    assert ssm.put_parameter(Name=name, Value="v2", Overwrite=True)["Version"] == 2
    p = ssm.get_parameter(Name=name)["Parameter"]
    assert (p["Value"], p["Version"], p["Type"]) == ("v2", 2, "String")
    assert p["ARN"].endswith(":parameter" + name)
    assert ssm.get_parameter(Name=f"{name}:1")["Parameter"]["Value"] == "v1"
    ssm.label_parameter_version(Name=name, ParameterVersion=1, Labels=["stable"])
    assert ssm.get_parameter(Name=f"{name}:stable")["Parameter"]["Value"] == "v1"
    hist = ssm.get_parameter_history(Name=name)["Parameters"]
    assert [h["Version"] for h in hist] == [1, 2] and hist[0]["Labels"] == ["stable"]
    root = name.rsplit("/", 2)[0]
    ssm.put_parameter(Name=f"{root}/top", Value="t", Type="String")
    one = ssm.get_parameters_by_path(Path=root)["Parameters"]
    assert [x["Name"] for x in one] == [f"{root}/top"]
    rec = ssm.get_parameters_by_path(Path=root, Recursive=True)["Parameters"]
    assert {x["Name"] for x in rec} == {name, f"{root}/top"}
    got = ssm.get_parameters(Names=[name, f"{root}/nope"])
    assert got["InvalidParameters"] == [f"{root}/nope"]
    desc = ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [root]}])
    assert len(desc["Parameters"]) == 2 and all("Value" not in x for x in desc["Parameters"])
    # The paginator follows NextToken.
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=root, Recursive=True, MaxResults=1)
    assert sum(len(pg["Parameters"]) for pg in pages) == 2
    ssm.put_parameter(Name=f"{root}/pw", Value=SSM_PW, Type="SecureString")
    assert ssm.get_parameter(Name=f"{root}/pw")["Parameter"]["Value"] != SSM_PW
    assert ssm.get_parameter(Name=f"{root}/pw", WithDecryption=True)["Parameter"]["Value"] == SSM_PW
    out = ssm.delete_parameters(Names=[f"{root}/top", f"{root}/pw", f"{root}/nope"])
    assert out["InvalidParameters"] == [f"{root}/nope"]
    ssm.delete_parameter(Name=name)
    assert error_code(ssm.get_parameter, Name=name) == "ParameterNotFound"
    assert error_code(ssm.delete_parameter, Name=name) == "ParameterNotFound"
    assert error_code(ssm.put_parameter, Name="x", Value="v", Type="String", Tier="Advanced") == "ValidationException"


def test_secrets_manager_with_boto3(sm):
    name = uniq("prod/db")
    out = sm.create_secret(Name=name, SecretString='{"password":"one"}', Tags=[{"Key": "team", "Value": "a"}])
    arn = out["ARN"]
    assert arn.split(":secret:")[1][:-7] == name and arn[-7] == "-"
    assert error_code(sm.create_secret, Name=name, SecretString="x") == "ResourceExistsException"
    sm.put_secret_value(SecretId=arn, SecretString='{"password":"two"}')
    assert sm.get_secret_value(SecretId=name)["SecretString"] == '{"password":"two"}'
    prev = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert prev["SecretString"] == '{"password":"one"}'
    sm.update_secret(SecretId=name, Description="the db")
    d = sm.describe_secret(SecretId=arn)
    assert d["Description"] == "the db" and d["Tags"] == [{"Key": "team", "Value": "a"}]
    assert sorted(s for v in d["VersionIdsToStages"].values() for s in v) == ["AWSCURRENT", "AWSPREVIOUS"]
    assert name in [s["Name"] for s in sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]]
    assert error_code(sm.delete_secret, SecretId=name, RecoveryWindowInDays=3) == "InvalidParameterException"
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert error_code(sm.get_secret_value, SecretId=name) == "InvalidRequestException"
    assert name not in [s["Name"] for s in sm.list_secrets()["SecretList"]]
    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == '{"password":"two"}'
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert error_code(sm.describe_secret, SecretId=name) == "ResourceNotFoundException"


def test_the_aws_cli_speaks_both(berth):
    name = f"/{uniq('cli')}/token"
    berth.aws("ssm", "put-parameter", "--name", name, "--value", "cli-value", "--type", "SecureString")
    out = berth.aws("ssm", "get-parameter", "--name", name, "--with-decryption")
    assert out["Parameter"]["Value"] == "cli-value"
    p = berth.aws("ssm", "put-parameter", "--name", name, "--value", "x", "--type", "String", check=False)
    assert p.returncode != 0 and "ParameterAlreadyExists" in p.stderr
    secret = uniq("cli-secret")
    berth.aws("secretsmanager", "create-secret", "--name", secret, "--secret-string", '{"k":"v"}')
    out = berth.aws("secretsmanager", "get-secret-value", "--secret-id", secret)
    assert out["SecretString"] == '{"k":"v"}'
    out = berth.aws("secretsmanager", "delete-secret", "--secret-id", secret, "--recovery-window-in-days", "7")
    assert out["Name"] == secret
    p = berth.aws("secretsmanager", "get-secret-value", "--secret-id", secret, check=False)
    assert p.returncode != 0 and "InvalidRequestException" in p.stderr
    berth.aws("secretsmanager", "restore-secret", "--secret-id", secret)
    listed = berth.aws("secretsmanager", "list-secrets")
    assert secret in [s["Name"] for s in listed["SecretList"]]


# ---------------------------------------------------------------------------------------------
# Tasks on the docker driver.

needs_docker = pytest.mark.skipif(not docker_ok(), reason="no Docker daemon")


@pytest.fixture(scope="module")
def scope():
    return uniq("e2e-secrets")


@pytest.fixture(scope="module")
def image():
    build_test_image()
    return IMAGE


@pytest.fixture(scope="module")
def agent(berth, ecs, base, scope, image):
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


@pytest.fixture(scope="module")
def exec_role(berth):
    """An execution role that may read every parameter and secret (berth reads a task's
    secrets as its execution role)."""
    return execution_role(berth.client("iam"))


def containers_of_task(task_arn):
    tid = task_arn.rsplit("/", 1)[1]
    p = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=berth.task-id={tid}"],
                       capture_output=True, text=True, timeout=30)
    return p.stdout.split()


@needs_docker
def test_a_task_gets_its_secrets_and_nobody_else_sees_them(berth, ecs, ssm, sm, agent, base, exec_role):
    param = f"/{uniq('svc')}/db/password"
    ssm.put_parameter(Name=param, Value=SSM_PW, Type="SecureString")
    arn = sm.create_secret(Name=uniq("svc-api"), SecretString=f'{{"api_key":"{ASM_KEY}","other":"x"}}')["ARN"]
    td = register(ecs, uniq("sec"), [{
        "name": "app", "image": IMAGE, "memory": 32, "stopTimeout": 2,
        "command": ["sh", "-c", 'echo "DB=$DB_PASSWORD API=$API_KEY"; trap "exit 0" TERM; '
                                "while :; do sleep 0.2; done"],
        "secrets": [
            {"name": "DB_PASSWORD", "valueFrom": param},
            {"name": "API_KEY", "valueFrom": f"{arn}:api_key::"},
        ],
    }], executionRoleArn=exec_role)["taskDefinition"]["taskDefinitionArn"]
    task = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]
    wait_task(ecs, task, "RUNNING", timeout=30)
    want = f"DB={SSM_PW} API={ASM_KEY}"
    wait_for(lambda: want in berth.cli("logs", task, "--cluster", "default").stdout, 20, interval=0.2,
             what="the container to print its secrets")
    shown = str(ecs.describe_tasks(cluster="default", tasks=[task]))
    assert SSM_PW not in shown and ASM_KEY not in shown
    ecs.stop_task(cluster="default", task=task)
    wait_task(ecs, task, "STOPPED", timeout=30)
    metrics = berth.metrics_text()
    for where, text in [("metrics", metrics), ("agent log", agent.log())]:
        assert SSM_PW not in text and ASM_KEY not in text, where
    with open(os.path.join(berth.data_dir, "berth.log"), "rb") as f:
        server_log = f.read()
    with open(os.path.join(berth.data_dir, "berth.redb"), "rb") as f:
        store = f.read()
    for where, blob in [("server log", server_log), ("store", store)]:
        assert SSM_PW.encode() not in blob and ASM_KEY.encode() not in blob, where


@needs_docker
def test_a_missing_secret_stops_the_task_before_any_container(ecs, agent, exec_role):
    missing = f"/{uniq('nope')}/password"
    td = register(ecs, uniq("sec-missing"), [{
        "name": "app", "image": IMAGE, "memory": 32, "command": ["true"],
        "secrets": [{"name": "PW", "valueFrom": missing}],
    }], executionRoleArn=exec_role)["taskDefinition"]["taskDefinitionArn"]
    task = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]
    t = wait_task(ecs, task, "STOPPED", timeout=30)
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"] == (
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource "
        "retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 "
        f"time(s): invalid parameters: {missing}")
    assert containers_of_task(task) == []


def test_register_refuses_a_value_from_that_is_no_secret(ecs, exec_role):
    with pytest.raises(ClientError) as e:
        register(ecs, uniq("sec-bad"), [{
            "name": "app", "image": IMAGE, "memory": 32,
            "secrets": [{"name": "X", "valueFrom": "arn:aws:s3:::bucket/key"}],
        }], executionRoleArn=exec_role)
    assert e.value.response["Error"]["Code"] == "ClientException"
    assert "secrets[0].valueFrom" in e.value.response["Error"]["Message"]
