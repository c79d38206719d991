"""Every request member of CreateService, UpdateService, RunTask and StartTask (and of the
shapes they carry: TaskOverride, ContainerOverride, NetworkConfiguration, AwsVpcConfiguration,
DeploymentConfiguration), as botocore's ECS model lists them, is either HONOURED, with the e2e
test that shows its effect, or REFUSED with InvalidParameterException and a message naming it.
A member botocore adds later fails this test until it is put in one table (RegisterTask-
Definition and ContainerDefinition are covered elsewhere).
"""
import ast
import re
import glob
import os

import botocore.session
import pytest
from botocore.exceptions import ClientError

BERTH_AGENT = False

HERE = os.path.dirname(__file__)
TD = "coverage-td:1"
INSTANCE = "0123456789abcdef0123456789abcdef"

OPERATIONS = ["CreateService", "UpdateService", "RunTask", "StartTask"]
SHAPES = ["TaskOverride", "ContainerOverride", "NetworkConfiguration", "AwsVpcConfiguration",
          "DeploymentConfiguration"]

# member -> "file.py::test" (or "file.py::test_a file.py::test_b") showing its effect.
HONOURED = {
    "CreateService.cluster": "test_services.py::test_create_and_describe_every_field",
    "CreateService.serviceName": "test_services.py::test_create_and_describe_every_field",
    "CreateService.taskDefinition": "test_services.py::test_create_and_describe_every_field",
    "CreateService.desiredCount": "test_services.py::test_create_and_describe_every_field",
    "CreateService.loadBalancers": "test_lb_services.py::test_traffic_spreads_and_rolling_deploy_drops_nothing",
    "CreateService.launchType": "test_services.py::test_create_and_describe_every_field",
    "CreateService.deploymentConfiguration": "test_services.py::test_rolling_deployment_respects_the_limits",
    "CreateService.placementConstraints": "test_api_members.py::test_create_service_placement_members",
    "CreateService.placementStrategy": "test_api_members.py::test_create_service_placement_members",
    "CreateService.healthCheckGracePeriodSeconds": "test_services.py::test_unhealthy_tasks_are_replaced_after_the_grace_period",
    "CreateService.schedulingStrategy": "test_services.py::test_daemon_service_follows_instances",
    "CreateService.tags": "test_services.py::test_service_tags_through_the_tagging_api",
    "CreateService.enableECSManagedTags": "test_api_members.py::test_service_tag_members_on_create_and_update",
    "CreateService.propagateTags": "test_api_members.py::test_service_tag_members_on_create_and_update",

    "UpdateService.cluster": "test_services.py::test_update_service_fields",
    "UpdateService.service": "test_services.py::test_update_service_fields",
    "UpdateService.desiredCount": "test_services.py::test_update_service_fields",
    "UpdateService.taskDefinition": "test_services.py::test_rolling_deployment_respects_the_limits",
    "UpdateService.deploymentConfiguration": "test_services.py::test_update_service_fields",
    "UpdateService.placementConstraints": "test_api_members.py::test_update_service_placement_members",
    "UpdateService.placementStrategy": "test_api_members.py::test_update_service_placement_members",
    "UpdateService.forceNewDeployment": "test_services.py::test_update_service_fields",
    "UpdateService.healthCheckGracePeriodSeconds": "test_services.py::test_update_service_fields",
    "UpdateService.enableECSManagedTags": "test_api_members.py::test_service_tag_members_on_create_and_update",
    "UpdateService.propagateTags": "test_api_members.py::test_service_tag_members_on_create_and_update",
    "UpdateService.loadBalancers": "test_lb_services.py::test_service_load_balancer_validation",  # applied as CreateService's are (effect: test_traffic_spreads_and_rolling_deploy_drops_nothing)

    "RunTask.cluster": "test_tasks_lifecycle.py::test_run_to_running_then_stop_by_user",
    "RunTask.taskDefinition": "test_tasks_lifecycle.py::test_run_to_running_then_stop_by_user",
    "RunTask.count": "test_tasks_lifecycle.py::test_client_token_makes_run_task_idempotent",
    "RunTask.clientToken": "test_tasks_lifecycle.py::test_client_token_makes_run_task_idempotent",
    "RunTask.startedBy": "test_tasks_lifecycle.py::test_run_to_running_then_stop_by_user",
    "RunTask.launchType": "test_tasks_lifecycle.py::test_run_to_running_then_stop_by_user",
    "RunTask.overrides": "test_tasks_lifecycle.py::test_overrides_change_what_runs",
    "RunTask.placementConstraints": "test_agents.py::test_distinct_instance",
    "RunTask.placementStrategy": "test_agents.py::test_spread_by_instance_id",
    "RunTask.tags": "test_tasks_lifecycle.py::test_stop_before_start_and_tags",
    "RunTask.group": "test_api_members.py::test_run_task_tags_group_and_overrides",
    "RunTask.propagateTags": "test_api_members.py::test_run_task_tags_group_and_overrides",
    "RunTask.enableECSManagedTags": "test_api_members.py::test_run_task_tags_group_and_overrides",
    "RunTask.platformVersion": "test_fargate.py::test_fargate_run_task_runs_on_a_hidden_managed_host",
    "RunTask.capacityProviderStrategy": "test_fargate.py::test_run_task_with_a_fargate_spot_strategy",
    "CreateService.platformVersion": "test_fargate.py::test_fargate_service_of_two_tasks",
    "CreateService.capacityProviderStrategy": "test_fargate.py::test_spot_task_interrupted_and_replaced",

    "StartTask.cluster": "test_api_members.py::test_start_task_members",
    "StartTask.containerInstances": "test_api_members.py::test_start_task_members",
    "StartTask.taskDefinition": "test_api_members.py::test_start_task_members",
    "StartTask.group": "test_api_members.py::test_start_task_members",
    "StartTask.startedBy": "test_api_members.py::test_start_task_members",
    "StartTask.tags": "test_api_members.py::test_start_task_members",
    "StartTask.overrides": "test_api_members.py::test_start_task_members",
    "StartTask.propagateTags": "test_api_members.py::test_start_task_members",
    "StartTask.enableECSManagedTags": "test_api_members.py::test_start_task_members",

    "TaskOverride.containerOverrides": "test_tasks_lifecycle.py::test_overrides_change_what_runs",
    "TaskOverride.cpu": "test_agents.py::test_overrides_change_what_a_task_holds",
    "TaskOverride.memory": "test_agents.py::test_overrides_change_what_a_task_holds",
    "TaskOverride.taskRoleArn": "test_task_role.py::test_unknown_and_untrusting_roles_are_refused",
    "ContainerOverride.name": "test_tasks_lifecycle.py::test_overrides_change_what_runs",
    "ContainerOverride.command": "test_tasks_lifecycle.py::test_overrides_change_what_runs",
    "ContainerOverride.environment": "test_tasks_lifecycle.py::test_overrides_change_what_runs",
    "ContainerOverride.cpu": "test_agents.py::test_overrides_change_what_a_task_holds",
    "ContainerOverride.memory": "test_agents.py::test_overrides_change_what_a_task_holds",
    "ContainerOverride.memoryReservation": "test_api_members.py::test_run_task_tags_group_and_overrides",

    "RunTask.networkConfiguration": "test_awsvpc.py::test_two_tasks_on_port_80_each_with_its_own_address",
    "StartTask.networkConfiguration": "test_awsvpc.py::test_network_configuration_is_checked",
    "CreateService.networkConfiguration": "test_awsvpc.py::test_service_behind_a_load_balancer_with_an_ip_target_group",
    "UpdateService.networkConfiguration": "test_awsvpc.py::test_network_configuration_is_checked",
    "NetworkConfiguration.awsvpcConfiguration": "test_awsvpc.py::test_two_tasks_on_port_80_each_with_its_own_address",
    "AwsVpcConfiguration.subnets": "test_awsvpc.py::test_two_tasks_on_port_80_each_with_its_own_address",
    "AwsVpcConfiguration.securityGroups": "test_awsvpc.py::test_security_groups_are_enforced",
    "AwsVpcConfiguration.assignPublicIp": "test_awsvpc.py::test_network_configuration_is_checked",

    "DeploymentConfiguration.deploymentCircuitBreaker": "test_services.py::test_circuit_breaker_rolls_back",
    "DeploymentConfiguration.maximumPercent": "test_services.py::test_rolling_deployment_respects_the_limits",
    "DeploymentConfiguration.minimumHealthyPercent": "test_services.py::test_rolling_deployment_respects_the_limits",
}

# Minimal requests asking for a member berth refuses.
SVC = {"serviceName": "cov", "taskDefinition": TD, "desiredCount": 1}
UPD = {"service": "cov"}
RUN = {"taskDefinition": TD}
START = {"taskDefinition": TD, "containerInstances": [INSTANCE]}


def _common(op, base):
    """The refusals every one of the four actions shares, for `op` on `base`."""
    out = {
        f"{op}.enableExecuteCommand": (op, {**base, "enableExecuteCommand": True}),
        f"{op}.volumeConfigurations": (op, {**base, "volumeConfigurations": [
            {"name": "v", "managedEBSVolume": {"roleArn": "arn:aws:iam::1:role/r"}}]}),
    }
    # RunTask's and CreateService's Fargate members are honoured (see HONOURED).
    if op == "UpdateService":
        out[f"{op}.capacityProviderStrategy"] = (op, {**base, "capacityProviderStrategy": [
            {"capacityProvider": "FARGATE_SPOT", "weight": 1}]})
        out[f"{op}.platformVersion"] = (op, {**base, "platformVersion": "LATEST"})
    return out


def _service_only(op, base):
    return {
        f"{op}.deploymentController": (op, {**base, "deploymentController": {"type": "CODE_DEPLOY"}}),
        f"{op}.serviceRegistries": (op, {**base, "serviceRegistries": [
            {"registryArn": "arn:aws:servicediscovery:us-east-1:1:service/srv-1"}]}),
        f"{op}.serviceConnectConfiguration": (op, {**base, "serviceConnectConfiguration": {
            "enabled": True, "namespace": "ns"}}),
        f"{op}.vpcLatticeConfigurations": (op, {**base, "vpcLatticeConfigurations": [
            {"roleArn": "arn:aws:iam::1:role/r", "targetGroupArn": "arn:tg", "portName": "p"}]}),
        f"{op}.availabilityZoneRebalancing": (op, {**base, "availabilityZoneRebalancing": "ENABLED"}),
        f"{op}.gatewayConnectors": (op, {**base, "gatewayConnectors": [{"portName": "web"}]}),
        f"{op}.monitoring": (op, {**base, "monitoring": {"metricConfigurations": [
            {"metricNames": ["CPUUtilization"], "resolutionSeconds": 60}]}}),
    }


REFUSED = {
    **_common("CreateService", SVC), **_service_only("CreateService", SVC),
    **_common("UpdateService", UPD), **_service_only("UpdateService", UPD),
    **_common("RunTask", RUN), **_common("StartTask", START),
    "CreateService.role": ("CreateService", {**SVC, "role": "ecsServiceRole"}),
    "CreateService.clientToken": ("CreateService", {**SVC, "clientToken": "tok"}),
    "RunTask.referenceId": ("RunTask", {**RUN, "referenceId": "ref"}),
    "StartTask.referenceId": ("StartTask", {**START, "referenceId": "ref"}),
    "TaskOverride.executionRoleArn": ("RunTask", {**RUN, "overrides": {
        "executionRoleArn": "arn:aws:iam::1:role/r"}}),
    "TaskOverride.ephemeralStorage": ("RunTask", {**RUN, "overrides": {
        "ephemeralStorage": {"sizeInGiB": 30}}}),
    "TaskOverride.inferenceAcceleratorOverrides": ("RunTask", {**RUN, "overrides": {
        "inferenceAcceleratorOverrides": [{"deviceName": "d", "deviceType": "eia2.medium"}]}}),
    "ContainerOverride.environmentFiles": ("RunTask", {**RUN, "overrides": {"containerOverrides": [
        {"name": "app", "environmentFiles": [{"value": "arn:aws:s3:::b/e.env", "type": "s3"}]}]}}),
    "ContainerOverride.resourceRequirements": ("RunTask", {**RUN, "overrides": {"containerOverrides": [
        {"name": "app", "resourceRequirements": [{"value": "1", "type": "GPU"}]}]}}),
    "DeploymentConfiguration.alarms": ("CreateService", {**SVC, "deploymentConfiguration": {
        "alarms": {"alarmNames": ["a"], "enable": True, "rollback": True}}}),
    "DeploymentConfiguration.strategy": ("CreateService", {**SVC, "deploymentConfiguration": {
        "strategy": "BLUE_GREEN"}}),
    "DeploymentConfiguration.bakeTimeInMinutes": ("CreateService", {**SVC, "deploymentConfiguration": {
        "bakeTimeInMinutes": 5}}),
    "DeploymentConfiguration.lifecycleHooks": ("CreateService", {**SVC, "deploymentConfiguration": {
        "lifecycleHooks": [{"hookTargetArn": "arn:aws:lambda:us-east-1:1:function:f",
                            "roleArn": "arn:aws:iam::1:role/r", "lifecycleStages": ["PRE_SCALE_UP"]}]}}),
    "DeploymentConfiguration.linearConfiguration": ("CreateService", {**SVC, "deploymentConfiguration": {
        "linearConfiguration": {"stepPercent": 10.0}}}),
    "DeploymentConfiguration.canaryConfiguration": ("CreateService", {**SVC, "deploymentConfiguration": {
        "canaryConfiguration": {"canaryPercent": 10.0}}}),
    "DeploymentConfiguration.earlySuccessCriteria": ("CreateService", {**SVC, "deploymentConfiguration": {
        "earlySuccessCriteria": {"enable": True}}}),
}


def model():
    return botocore.session.get_session().get_service_model("ecs")


def all_members():
    m = model()
    names = []
    for op in OPERATIONS:
        names += [f"{op}.{k}" for k in m.operation_model(op).input_shape.members]
    for s in SHAPES:
        names += [f"{s}.{k}" for k in m.shape_for(s).members]
    return names


def test_every_member_is_in_exactly_one_table():
    members = set(all_members())
    both = set(HONOURED) & set(REFUSED)
    assert not both, f"in both tables: {sorted(both)}"
    stale = (set(HONOURED) | set(REFUSED)) - members
    assert not stale, f"not in botocore's model: {sorted(stale)}"
    missing = [n for n in all_members() if n not in HONOURED and n not in REFUSED]
    assert not missing, f"neither honoured nor refused: {missing}"


def _test_functions():
    found = set()
    for path in glob.glob(os.path.join(HERE, "test_*.py")):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found.add(f"{os.path.basename(path)}::{node.name}")
    return found


def test_every_honoured_member_names_an_existing_test():
    tests = _test_functions()
    missing = {m: t for m, t in HONOURED.items() if t not in tests}
    assert not missing, missing


def _member_name(key):
    return key.split(".", 1)[1]


@pytest.mark.parametrize("member", sorted(REFUSED))
def test_refused_member_names_itself(ecs, member):
    op, params = REFUSED[member]
    method = getattr(ecs, re.sub(r"(?<!^)([A-Z])", r"_\1", op).lower())
    with pytest.raises(ClientError) as e:
        method(**params)
    err = e.value.response["Error"]
    assert err["Code"] == "InvalidParameterException", (member, err)
    assert _member_name(member) in err["Message"], (member, err["Message"])
