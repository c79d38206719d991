"""`berth up` prints an `AWS_ENDPOINT_URL_<SERVICE>` export for every API it serves, named as
botocore reads it (the service id, upper case, spaces as underscores), and a client created
with nothing but those exports reaches berth.
"""
import os
from unittest import mock

import boto3
import botocore.session

from conftest import Berth

# Every API berth serves today, by botocore service name.
SERVED = {"ecs", "elbv2", "application-autoscaling", "ssm", "secretsmanager", "logs", "ec2",
          "autoscaling", "iam"}

# A cheap read per service, to show the client reached berth.
PROBES = {
    "ecs": lambda c: c.list_clusters(),
    "elbv2": lambda c: c.describe_load_balancers(),
    "application-autoscaling": lambda c: c.describe_scalable_targets(ServiceNamespace="ecs"),
    "ssm": lambda c: c.describe_parameters(),
    "secretsmanager": lambda c: c.list_secrets(),
    "logs": lambda c: c.describe_log_groups(),
    "ec2": lambda c: c.describe_vpcs(),
    "autoscaling": lambda c: c.describe_auto_scaling_groups(),
    "iam": lambda c: c.list_users(),
}


def env_names():
    """`AWS_ENDPOINT_URL_<ID>` → botocore service name, for every service botocore knows."""
    s = botocore.session.get_session()
    out = {}
    for name in s.get_available_services():
        sid = s.get_service_model(name).service_id
        out["AWS_ENDPOINT_URL_" + sid.replace(" ", "_").upper()] = name
    return out


def test_every_served_api_has_a_working_export(fresh_dir):
    b = Berth(fresh_dir, agent=False).start()
    try:
        exports = b.read_exports()
        names = env_names()
        printed = {k: v for k, v in exports.items() if k.startswith("AWS_ENDPOINT_URL_")}
        unknown = set(printed) - set(names)
        assert not unknown, f"botocore reads no such variables: {unknown}"
        services = {names[k] for k in printed}
        assert services >= SERVED, f"missing exports for {SERVED - services}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(exports, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        with mock.patch.dict(os.environ, env, clear=True):
            for service in sorted(services):
                # No endpoint_url, region or keys given: the exports alone.
                client = boto3.session.Session().client(service)
                assert client.meta.endpoint_url == b.endpoint, service
                if service in PROBES:
                    PROBES[service](client)
    finally:
        b.stop()
