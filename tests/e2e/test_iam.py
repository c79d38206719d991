"""IAM: users, access keys and policies, enforced at the edge for every API.

A user's key signs like any AWS key; what it may do is what the user's policies allow, and a
refusal is worded as AWS words it. berth's root key is unaffected.
"""
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY, expect_error, uniq, wait_for

BERTH_AGENT = False
ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def iam(berth):
    return berth.client("iam")


def make_user(iam, name=None, managed=(), inline=None):
    name = name or uniq("u")
    iam.create_user(UserName=name)
    for arn in managed:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    for pname, doc in (inline or {}).items():
        iam.put_user_policy(UserName=name, PolicyName=pname, PolicyDocument=json.dumps(doc))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, key


def as_user(berth, key, service="ecs"):
    return berth.client(service, access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"],
                        strict=False)


def denied_message(user, action, resource, explicit=False):
    why = ("with an explicit deny in an identity-based policy" if explicit
           else f"because no identity-based policy allows the {action} action")
    return (f"User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: "
            f"{action} on resource: {resource} {why}")


def test_users_keys_and_policies_round_trip(iam):
    name, key = make_user(iam, managed=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
                          inline={"p": {"Version": "2012-10-17", "Statement": [
                              {"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}]}})
    assert key["AccessKeyId"].startswith("AKIA") and key["Status"] == "Active"
    u = iam.get_user(UserName=name)["User"]
    assert u["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}" and u["UserId"].startswith("AIDA")
    assert name in [x["UserName"] for x in iam.list_users()["Users"]]
    keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [key["AccessKeyId"]]
    assert "SecretAccessKey" not in keys[0]
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["p"]
    doc = iam.get_user_policy(UserName=name, PolicyName="p")["PolicyDocument"]
    assert doc["Statement"][0]["Action"] == "ecs:ListClusters"  # botocore decoded it
    attached = iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
    assert attached == [{"PolicyName": "ReadOnlyAccess",
                         "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName=name)
    assert e.value.response["Error"]["Code"] == "EntityAlreadyExists"
    with pytest.raises(ClientError) as e:
        iam.delete_user(UserName=name)
    assert e.value.response["Error"]["Code"] == "DeleteConflict"
    with pytest.raises(ClientError) as e:
        iam.put_user_policy(UserName=name, PolicyName="bad", PolicyDocument=json.dumps(
            {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}}))
    assert e.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    with pytest.raises(ClientError) as e:
        iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicy")
    assert e.value.response["Error"]["Code"] == "NoSuchEntity"
    with pytest.raises(ClientError) as e:
        iam.get_user(UserName=uniq("nobody"))
    assert e.value.response["Error"]["Code"] == "NoSuchEntity"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_read_only_user_can_describe_but_not_create(berth, iam):
    name, key = make_user(iam, managed=["arn:aws:iam::aws:policy/ReadOnlyAccess"])
    ecs = as_user(berth, key)
    ecs.list_clusters()
    ecs.describe_clusters(clusters=["default"])
    cluster = uniq("ro")
    err = expect_error("AccessDeniedException", ecs.create_cluster, clusterName=cluster)
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}"
    assert err.response["Error"]["Message"] == denied_message(name, "ecs:CreateCluster", arn)
    # A Query service refuses with AccessDenied, worded the same way.
    elb = as_user(berth, key, "elbv2")
    elb.describe_load_balancers()
    tg = uniq("tg")
    with pytest.raises(ClientError) as e:
        elb.create_target_group(Name=tg, Protocol="HTTP", Port=80, TargetType="ip")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    # The new target group, by name: its id is not drawn yet.
    assert e.value.response["Error"]["Message"] == denied_message(
        name, "elasticloadbalancing:CreateTargetGroup",
        f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{tg}/*")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # EC2 words it its own way.
    ec2 = as_user(berth, key, "ec2")
    ec2.describe_vpcs()
    with pytest.raises(ClientError) as e:
        ec2.create_vpc(CidrBlock="10.99.0.0/16")
    assert e.value.response["Error"]["Code"] == "UnauthorizedOperation"
    assert e.value.response["Error"]["Message"] == "You are not authorized to perform this operation. " + \
        denied_message(name, "ec2:CreateVpc", f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/*")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # And IAM itself: a read-only user lists users but makes no keys.
    uiam = as_user(berth, key, "iam")
    uiam.list_users()
    assert uiam.get_user()["User"]["UserName"] == name  # no name: the caller, as in IAM
    assert [k["AccessKeyId"] for k in uiam.list_access_keys()["AccessKeyMetadata"]] == [key["AccessKeyId"]]
    with pytest.raises(ClientError) as e:
        uiam.create_access_key(UserName=name)
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_inline_deny_on_a_resource_wildcard_wins(berth, iam):
    root = berth.client()
    prod, dev = uniq("prod"), uniq("dev")
    for c in (prod, dev):
        root.create_cluster(clusterName=c)
    name, key = make_user(iam, managed=["arn:aws:iam::aws:policy/AmazonECS_FullAccess"], inline={
        "no-prod": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Action": ["ecs:Delete*", "ecs:Describe*"],
            "Resource": f"arn:aws:ecs:*:*:cluster/prod-*"}]}})
    ecs = as_user(berth, key)
    assert ecs.describe_clusters(clusters=[dev])["clusters"][0]["clusterName"] == dev
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{prod}"
    err = expect_error("AccessDeniedException", ecs.describe_clusters, clusters=[prod])
    assert err.response["Error"]["Message"] == denied_message(
        name, "ecs:DescribeClusters", arn, explicit=True)
    expect_error("AccessDeniedException", ecs.delete_cluster, cluster=arn)
    assert root.describe_clusters(clusters=[prod])["clusters"][0]["status"] == "ACTIVE"
    ecs.delete_cluster(cluster=dev)


def test_resource_tag_condition(berth, iam):
    root = berth.client()
    mine, theirs = uniq("web"), uniq("db")
    root.create_cluster(clusterName=mine, tags=[{"key": "team", "value": "web"}])
    root.create_cluster(clusterName=theirs, tags=[{"key": "team", "value": "db"}])
    name, key = make_user(iam, inline={"team": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecs:DescribeClusters", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "web"}}},
        {"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": REGION}}}]}})
    ecs = as_user(berth, key)
    ecs.list_clusters()
    assert ecs.describe_clusters(clusters=[mine])["clusters"][0]["clusterName"] == mine
    expect_error("AccessDeniedException", ecs.describe_clusters, clusters=[theirs])
    expect_error("AccessDeniedException", ecs.describe_clusters, clusters=[mine, theirs])
    # The region condition: the same key signing for another region is refused.
    other = berth.client("ecs", region="us-west-2", access_key=key["AccessKeyId"],
                         secret_key=key["SecretAccessKey"], strict=False)
    expect_error("AccessDeniedException", other.list_clusters)


def test_inactive_and_deleted_keys_and_users_are_refused(berth, iam):
    name, key = make_user(iam, managed=["arn:aws:iam::aws:policy/AdministratorAccess"])
    ecs = as_user(berth, key)
    ecs.list_clusters()
    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert iam.list_access_keys(UserName=name)["AccessKeyMetadata"][0]["Status"] == "Inactive"
    err = expect_error("UnrecognizedClientException", ecs.list_clusters, status=403)
    assert err.response["Error"]["Message"] == "The security token included in the request is invalid."
    with pytest.raises(ClientError) as e:
        as_user(berth, key, "iam").list_users()
    assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"
    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Active")
    ecs.list_clusters()
    # Delete the user (keys and policies first, as IAM requires): the key is refused.
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    expect_error("UnrecognizedClientException", ecs.list_clusters, status=403)
    iam.detach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.delete_user(UserName=name)
    with pytest.raises(ClientError) as e:
        iam.get_user(UserName=name)
    assert e.value.response["Error"]["Code"] == "NoSuchEntity"


def test_root_is_unaffected(berth, iam):
    make_user(iam, inline={"deny-all": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "*", "Resource": "*"}]}})
    root = berth.client()
    c = uniq("root")
    root.create_cluster(clusterName=c)
    root.delete_cluster(cluster=c)
    iam.list_users()


def test_aws_cli_with_a_user_key(berth):
    name = uniq("cli")
    berth.aws("iam", "create-user", "--user-name", name)
    berth.aws("iam", "attach-user-policy", "--user-name", name,
              "--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess")
    key = berth.aws("iam", "create-access-key", "--user-name", name)["AccessKey"]
    aws = os.path.join(os.path.dirname(os.path.realpath(os.sys.executable)), "aws")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key["AccessKeyId"],
               AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"], AWS_DEFAULT_REGION=REGION,
               AWS_MAX_ATTEMPTS="1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    run = lambda *a: subprocess.run([aws, "--endpoint-url", berth.endpoint, "--output", "json", *a],
                                    capture_output=True, text=True, env=env, timeout=60)
    ok = run("ecs", "list-clusters")
    assert ok.returncode == 0, ok.stderr
    no = run("ecs", "create-cluster", "--cluster-name", uniq("x"))
    assert no.returncode != 0 and "AccessDeniedException" in no.stderr, no.stderr
    assert f"user/{name} is not authorized to perform: ecs:CreateCluster" in no.stderr


def test_berth_user_and_key_commands(berth):
    name = uniq("bu")
    berth.cli("user", "create", name)
    assert name in berth.cli("user", "ls").stdout
    key = json.loads(berth.cli("key", "create", name, "-o", "json").stdout)
    assert key["AccessKeyId"].startswith("AKIA") and key["SecretAccessKey"]
    iam = berth.client("iam")
    iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    as_user(berth, key).list_clusters()
    new = json.loads(berth.cli("key", "rotate", name, "-o", "json").stdout)
    assert new["AccessKeyId"] != key["AccessKeyId"]
    ids = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]]
    assert ids == [new["AccessKeyId"]]
    expect_error("UnrecognizedClientException", as_user(berth, key).list_clusters, status=403)
    as_user(berth, new).list_clusters()
    berth.cli("key", "delete", name, new["AccessKeyId"])
    assert iam.list_access_keys(UserName=name)["AccessKeyMetadata"] == []
    refused = berth.cli("user", "rm", name, check=False)
    assert refused.returncode != 0 and "DeleteConflict" in refused.stderr
    iam.detach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    berth.cli("user", "rm", name)
    assert name not in berth.cli("user", "ls").stdout


def test_paths_paging_and_roles(iam):
    path = f"/{uniq('team')}/"
    names = [uniq("p") for _ in range(3)]
    for n in names:
        u = iam.create_user(UserName=n, Path=path)["User"]
        assert u["Arn"] == f"arn:aws:iam::{ACCOUNT}:user{path}{n}" and u["Path"] == path
    page = iam.list_users(PathPrefix=path, MaxItems=2)
    assert len(page["Users"]) == 2 and page["IsTruncated"]
    rest = iam.list_users(PathPrefix=path, Marker=page["Marker"])
    assert not rest["IsTruncated"]
    assert sorted(u["UserName"] for u in page["Users"] + rest["Users"]) == sorted(names)
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName="bad/name")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    for n in names:
        iam.delete_user(UserName=n)

    role = uniq("role")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    r = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust),
                        Description="app", MaxSessionDuration=7200)["Role"]
    assert r["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{role}" and r["RoleId"].startswith("AROA")
    got = iam.get_role(RoleName=role)["Role"]
    assert got["AssumeRolePolicyDocument"] == trust
    assert got["Description"] == "app" and got["MaxSessionDuration"] == 7200
    assert role in [x["RoleName"] for x in iam.list_roles()["Roles"]]
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}]}
    iam.put_role_policy(RoleName=role, PolicyName="list", PolicyDocument=json.dumps(doc))
    assert iam.get_role_policy(RoleName=role, PolicyName="list")["PolicyDocument"] == doc
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["list"]
    with pytest.raises(ClientError) as e:
        iam.delete_role(RoleName=role)
    assert e.value.response["Error"]["Code"] == "DeleteConflict"
    iam.delete_role_policy(RoleName=role, PolicyName="list")
    iam.delete_role(RoleName=role)
    with pytest.raises(ClientError) as e:
        iam.get_role(RoleName=role)
    assert e.value.response["Error"]["Code"] == "NoSuchEntity"


def test_task_role_must_name_a_role_trusting_ecs_tasks(berth, iam):
    # The credentials tasks get are test_task_role.py's; here, only the check at registration.
    ecs = berth.client()
    c = [{"name": "a", "image": "busybox", "memory": 32}]
    with pytest.raises(ClientError) as e:
        ecs.register_task_definition(family=uniq("tr"), taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{uniq('no')}",
                                     containerDefinitions=c)
    assert e.value.response["Error"]["Code"] == "ClientException"
    assert e.value.response["Error"]["Message"] == "Role is not valid"
    role = uniq("app")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    td = ecs.register_task_definition(family=uniq("tr"), taskRoleArn=arn, containerDefinitions=c)
    assert td["taskDefinition"]["taskRoleArn"] == arn
