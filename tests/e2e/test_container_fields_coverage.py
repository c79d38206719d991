"""Honour it or refuse it, checked against botocore's model: every member of ECS's
`ContainerDefinition`, `Volume` and `RegisterTaskDefinitionRequest` is either HONOURED (with the
e2e test that shows its effect) or REFUSED (with a minimal request that RegisterTaskDefinition
must refuse with a ClientException naming the member). A member ECS adds later fails this test
until someone decides which it is.
"""
import ast
import copy
import os
import pathlib

import botocore.session
import pytest

from conftest import uniq

BERTH_AGENT = False
HERE = os.path.dirname(__file__)
ROOT = pathlib.Path(HERE).resolve().parents[1]

FIELDS = "test_taskdef_fields.py::"
DOCKER = "test_tasks_docker.py::"
HTTPD = DOCKER + "test_httpd_on_a_dynamic_port_with_limits_labels_and_health"
CONTAINER_FIELDS = FIELDS + "test_container_fields_take_effect"
NAMESPACES = FIELDS + "test_pid_ipc_namespaces_links_and_privileged"
REGISTER = "test_taskdefs.py::test_register_answers_what_ecs_answers"

HONOURED = {
    "ContainerDefinition": {
        "name": HTTPD,
        "image": HTTPD,
        "cpu": HTTPD,
        "memory": HTTPD,
        "memoryReservation": CONTAINER_FIELDS,
        "links": NAMESPACES,
        "portMappings": HTTPD,
        "essential": "test_tasks_lifecycle.py::test_non_essential_exit_keeps_the_task_running",
        "restartPolicy": FIELDS + "test_restart_policy_restarts_in_place",
        "entryPoint": CONTAINER_FIELDS,
        "command": HTTPD,
        "environment": CONTAINER_FIELDS,
        "environmentFiles": CONTAINER_FIELDS,
        "mountPoints": CONTAINER_FIELDS,
        "volumesFrom": CONTAINER_FIELDS,
        "linuxParameters": CONTAINER_FIELDS,
        "dependsOn": "test_tasks_lifecycle.py::test_dependencies_and_health_checks",
        "startTimeout": FIELDS + "test_start_timeout_fails_a_task_whose_dependency_never_gets_there",
        "stopTimeout": DOCKER + "test_graceful_and_forced_stops",
        "hostname": CONTAINER_FIELDS,
        "user": CONTAINER_FIELDS,
        "workingDirectory": CONTAINER_FIELDS,
        "disableNetworking": FIELDS + "test_disable_networking",
        "privileged": FIELDS + "test_privileged",
        "readonlyRootFilesystem": CONTAINER_FIELDS,
        "dnsServers": CONTAINER_FIELDS,
        "dnsSearchDomains": CONTAINER_FIELDS,
        "extraHosts": CONTAINER_FIELDS,
        "dockerSecurityOptions": CONTAINER_FIELDS,
        "interactive": CONTAINER_FIELDS,
        "pseudoTerminal": CONTAINER_FIELDS,
        "dockerLabels": CONTAINER_FIELDS,
        "ulimits": CONTAINER_FIELDS,
        "healthCheck": HTTPD,
        "systemControls": CONTAINER_FIELDS,
        "secrets": "test_secrets.py::test_a_task_gets_its_secrets_and_nobody_else_sees_them",
        # berth never pulls images: the effect is that the credentials are resolved at start and
        # a missing one fails the task as ECS does (the pull itself has nothing to authenticate).
        "repositoryCredentials": "rust:crates/berth-ops/tests/task_secrets.rs::an_unresolvable_secret_fails_the_task_before_the_agent_sees_it",
        "logConfiguration": "test_awslogs.py::test_container_output_arrives_under_prefix_name_task_id",
    },
    "Volume": {
        "name": CONTAINER_FIELDS,
        "host": CONTAINER_FIELDS,
        "dockerVolumeConfiguration": FIELDS + "test_docker_volumes_task_and_shared_scope",
    },
    "RegisterTaskDefinitionRequest": {
        "family": REGISTER,
        "containerDefinitions": REGISTER,
        "cpu": REGISTER,
        "memory": REGISTER,
        "tags": REGISTER,
        "networkMode": HTTPD,
        "volumes": CONTAINER_FIELDS,
        "placementConstraints": "test_agents.py::test_member_of_custom_attribute",
        "requiresCompatibilities": "test_taskdefs.py::test_fargate_rejects_invalid_definitions",
        "pidMode": NAMESPACES,
        "ipcMode": NAMESPACES,
        "runtimePlatform": FIELDS + "test_a_process_host_is_never_given_a_task_needing_docker",
        # The execution role is what the agent uses to read secrets and pull private images.
        "executionRoleArn": "rust:crates/berth-ops/tests/task_secrets.rs::secrets_reach_the_agent_only",
        "taskRoleArn": "test_task_role.py::test_boto3_in_a_task_gets_its_roles_credentials_and_only_its_permissions",
    },
}

# Nothing is accepted and left unapplied.
UNDECIDED = {}

BASE = {"family": "cov", "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 32}]}


def with_container(**member):
    r = copy.deepcopy(BASE)
    r["containerDefinitions"][0].update(member)
    return r


def with_task(**member):
    r = copy.deepcopy(BASE)
    r.update(member)
    return r


def with_volume(**member):
    r = with_container(mountPoints=[{"sourceVolume": "v", "containerPath": "/v"}])
    r["volumes"] = [{"name": "v", **member}]
    return r


REFUSED = {
    "ContainerDefinition": {
        "versionConsistency": with_container(versionConsistency="enabled"),
        "resourceRequirements": with_container(resourceRequirements=[{"type": "GPU", "value": "1"}]),
        "firelensConfiguration": with_container(firelensConfiguration={"type": "fluentbit"}),
        "credentialSpecs": with_container(credentialSpecs=["credentialspec:arn:aws:s3:::b/spec.json"]),
    },
    "Volume": {
        "efsVolumeConfiguration": with_volume(efsVolumeConfiguration={"fileSystemId": "fs-1234"}),
        "s3filesVolumeConfiguration": with_volume(
            s3filesVolumeConfiguration={"fileSystemArn": "arn:aws:s3files:us-east-1:000000000000:file-system/f"}),
        "fsxWindowsFileServerVolumeConfiguration": with_volume(fsxWindowsFileServerVolumeConfiguration={
            "fileSystemId": "fs-1", "rootDirectory": "\\\\data",
            "authorizationConfig": {"credentialsParameter": "arn:aws:ssm:us-east-1:000000000000:parameter/c",
                                    "domain": "corp"}}),
        "configuredAtLaunch": with_volume(configuredAtLaunch=True),
    },
    "RegisterTaskDefinitionRequest": {
        "proxyConfiguration": with_task(proxyConfiguration={"containerName": "app", "type": "APPMESH"}),
        "inferenceAccelerators": with_task(inferenceAccelerators=[{"deviceName": "d", "deviceType": "eia2.medium"}]),
        "ephemeralStorage": with_task(ephemeralStorage={"sizeInGiB": 30}),
        "enableFaultInjection": with_task(enableFaultInjection=True),
        "trustedExecutionConfiguration": with_task(trustedExecutionConfiguration={"isolationMode": "x"}),
    },
}

# Refused in part: the value ECS has and berth cannot do, beside the member's honoured uses.
REFUSED_VALUES = {
    "awsfirelens log driver": (with_container(logConfiguration={"logDriver": "awsfirelens"}), "awsfirelens"),
    "S3 environment file": (with_container(environmentFiles=[{"value": "arn:aws:s3:::b/app.env", "type": "s3"}]),
                            "environmentFiles"),
    "Windows": (with_task(runtimePlatform={"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}),
                "operatingSystemFamily"),
}

MODEL = botocore.session.get_session().get_service_model("ecs")
SHAPES = ["ContainerDefinition", "Volume", "RegisterTaskDefinitionRequest"]


def e2e_test_functions():
    """Every `test_*` function of every e2e file, as `file.py::name`."""
    out = set()
    for f in os.listdir(HERE):
        if f.startswith("test_") and f.endswith(".py"):
            with open(os.path.join(HERE, f)) as fh:
                tree = ast.parse(fh.read())
            out |= {f"{f}::{n.name}" for n in tree.body if isinstance(n, ast.FunctionDef)}
    return out


@pytest.mark.parametrize("shape", SHAPES)
def test_every_member_is_honoured_or_refused(shape):
    members = set(MODEL.shape_for(shape).members)
    honoured = set(HONOURED[shape])
    refused = set(REFUSED.get(shape, {}))
    undecided = set(UNDECIDED.get(shape, {}))
    assert not honoured & refused, honoured & refused
    unclassified = members - honoured - refused - undecided
    assert not unclassified, f"{shape} members neither honoured nor refused: {sorted(unclassified)}"
    stale = (honoured | refused | undecided) - members
    assert not stale, f"not members of {shape}: {sorted(stale)}"
    known = e2e_test_functions()
    for member, where in HONOURED[shape].items():
        if where.startswith("rust:"):
            path, _, func = where[len("rust:"):].partition("::")
            src = (ROOT / path).read_text()
            assert f"fn {func}(" in src, f"{shape}.{member}: no Rust test {where}"
            continue
        assert where in known, f"{shape}.{member}: no test {where}"


REFUSALS = [(s, m, req) for s in SHAPES for m, req in REFUSED.get(s, {}).items()]


@pytest.mark.parametrize("shape,member,request_", REFUSALS, ids=[f"{s}.{m}" for s, m, _ in REFUSALS])
def test_refused_members_are_refused_naming_them(ecs, shape, member, request_):
    req = copy.deepcopy(request_)
    req["family"] = uniq("cov")
    with pytest.raises(ecs.exceptions.ClientException) as ei:
        ecs.register_task_definition(**req)
    assert member in ei.value.response["Error"]["Message"]


@pytest.mark.parametrize("what", sorted(REFUSED_VALUES))
def test_refused_values_are_refused_naming_them(ecs, what):
    req, name = copy.deepcopy(REFUSED_VALUES[what][0]), REFUSED_VALUES[what][1]
    req["family"] = uniq("cov")
    with pytest.raises(ecs.exceptions.ClientException) as ei:
        ecs.register_task_definition(**req)
    assert name in ei.value.response["Error"]["Message"]
