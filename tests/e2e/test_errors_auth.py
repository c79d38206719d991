"""Errors as ECS shapes them (`__type` -> botocore `Error.Code`, HTTP status), protocol errors,
and SigV4 authentication failures. Never a 500 for the client's mistakes, and the server keeps
answering afterwards."""
import datetime
import http.client
import json
import os
import subprocess
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, container, expect_error, raw_call, register, uniq

BERTH_AGENT = False  # API-level tests: no local agent needed


@pytest.fixture(autouse=True)
def still_answers(ecs):
    yield
    assert ecs.list_clusters()["clusterArns"], "berth stopped answering after a bad request"


# --- validation: ClientException for task definitions ----------------------------------------

BAD_TASKDEFS = {
    "family-space": dict(family="has space"),
    "family-256": dict(family="f" * 256),
    "family-empty": dict(family=""),
    "container-name-space": dict(containerDefinitions=[container(name="a b")]),
    "container-name-256": dict(containerDefinitions=[container(name="c" * 256)]),
    "task-cpu-too-small": dict(cpu="64"),
    "task-cpu-words": dict(cpu="lots"),
    "task-memory-negative": dict(memory="-1"),
    "task-memory-words": dict(memory="much"),
    "container-memory-tiny": dict(containerDefinitions=[container(memory=2)]),
    "container-cpu-negative": dict(containerDefinitions=[container(cpu=-1)]),
    "container-cpu-beyond-int32": dict(containerDefinitions=[container(cpu=2**31)]),
    "container-cpu-sum-overflows": dict(containerDefinitions=[container(cpu=2**63 - 1), container("b", cpu=2**63 - 1)]),
    "reservation-above-memory": dict(containerDefinitions=[container(memory=64, memoryReservation=128)]),
    "no-memory-anywhere": dict(containerDefinitions=[{"name": "a", "image": "busybox"}]),
    "no-image": dict(containerDefinitions=[{"name": "a", "memory": 32}]),
    "container-port-0": dict(containerDefinitions=[container(portMappings=[{"containerPort": 0}])]),
    "container-port-65536": dict(containerDefinitions=[container(portMappings=[{"containerPort": 65536}])]),
    "host-port-negative": dict(containerDefinitions=[container(portMappings=[{"containerPort": 80, "hostPort": -1}])]),
    "host-port-twice": dict(containerDefinitions=[container(portMappings=[
        {"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}])]),
    "awsvpc-host-port-differs": dict(networkMode="awsvpc", containerDefinitions=[
        container(portMappings=[{"containerPort": 80, "hostPort": 81}])]),
    "duplicate-container-names": dict(containerDefinitions=[container(), container()]),
    "no-essential-container": dict(containerDefinitions=[container(essential=False), container("b", essential=False)]),
    "eleven-containers": dict(containerDefinitions=[container(f"c{i}") for i in range(11)]),
    "no-containers": dict(containerDefinitions=[]),
    "containers-exceed-task-memory": dict(memory="128", containerDefinitions=[container(memory=256)]),
    "depends-on-unknown": dict(containerDefinitions=[container(dependsOn=[{"containerName": "x", "condition": "START"}])]),
    "depends-on-cycle": dict(containerDefinitions=[
        container("a", dependsOn=[{"containerName": "b", "condition": "START"}]),
        container("b", dependsOn=[{"containerName": "a", "condition": "START"}])]),
    "healthcheck-interval": dict(containerDefinitions=[container(healthCheck={"command": ["CMD", "true"], "interval": 1})]),
}


@pytest.mark.parametrize("kw", list(BAD_TASKDEFS.values()), ids=list(BAD_TASKDEFS))
def test_invalid_task_definitions_are_client_exceptions(ecs, kw):
    kw = {"family": uniq("bad"), "containerDefinitions": [container()], **kw}
    err = expect_error("ClientException", ecs.register_task_definition, **kw)
    assert err.response["Error"]["Message"]


def expect_error_any(fn, **kw):
    with pytest.raises(ClientError) as ei:
        fn(**kw)
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return ei.value.response["Error"]["Code"]


def test_invalid_enum_values_are_rejected(ecs):
    for kw in (dict(networkMode="nat"), dict(requiresCompatibilities=["MAINFRAME"]),
               dict(containerDefinitions=[container(portMappings=[{"containerPort": 80, "protocol": "sctp"}])])):
        kw = {"family": uniq("enum"), "containerDefinitions": [container()], **kw}
        err = expect_error_any(ecs.register_task_definition, **kw)
        assert err in ("ClientException", "InvalidParameterException")


def test_task_definition_over_64_kib(ecs):
    big = [{"name": f"V{i}", "value": "x" * 1000} for i in range(70)]
    err = expect_error("ClientException", register, ecs, uniq("big"), [container(environment=big)])
    assert "64" in err.response["Error"]["Message"] or "size" in err.response["Error"]["Message"].lower()
    # Just under the limit is fine.
    ok = [{"name": f"V{i}", "value": "x" * 1000} for i in range(60)]
    assert register(ecs, uniq("big"), [container(environment=ok)])["taskDefinition"]["revision"] == 1


def test_valid_names_at_the_limit(ecs):
    fam = "F" * 255
    assert register(ecs, fam, [container(name="c" * 255)])["taskDefinition"]["family"] == fam
    assert ecs.create_cluster(clusterName="C" * 255)["cluster"]["clusterName"] == "C" * 255


@pytest.mark.parametrize("name", ["has space", "x" * 256, "dot.name", "slash/name"])
def test_invalid_cluster_names(ecs, name):
    expect_error("InvalidParameterException", ecs.create_cluster, clusterName=name)


# --- protocol errors --------------------------------------------------------------------------

def test_unknown_action(berth):
    status, headers, body = raw_call(berth.endpoint, "Bogus")
    assert status == 400
    assert body["__type"] == "UnknownOperationException"
    assert "x-amzn-RequestId" in headers or "x-amzn-requestid" in {k.lower() for k in headers}


def test_unknown_target_prefix(berth):
    status, _, body = raw_call(berth.endpoint, target="SomethingElse_20200101.ListClusters")
    assert (status, body["__type"]) == (400, "UnknownOperationException")


def test_unknown_action_still_needs_authentication(berth):
    status, _, body = raw_call(berth.endpoint, "Bogus", sign=False)
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException")


@pytest.mark.parametrize(
    "action,body",
    [
        ("ListClusters", b"{not json"),
        ("ListClusters", b"[1, 2]"),
        ("DescribeClusters", b'{"clusters": "not-a-list"}'),
        ("CreateCluster", b'{"clusterName": 5}'),
        ("ListClusters", b'{"maxResults": "ten"}'),
        ("RegisterTaskDefinition", b'{"family": "x", "containerDefinitions": {"name": "a"}}'),
        ("RegisterTaskDefinition", b"\xff\xfe"),
    ],
    ids=["broken", "array", "wrong-type-list", "wrong-type-string", "wrong-type-int", "wrong-type-register", "not-utf8"],
)
def test_malformed_bodies_are_serialization_exceptions(berth, action, body):
    status, _, doc = raw_call(berth.endpoint, action, body)
    assert status == 400, doc
    assert doc["__type"] == "SerializationException", doc
    assert isinstance(doc["message"], str)


def test_empty_body_is_an_empty_request(berth):
    status, _, doc = raw_call(berth.endpoint, "ListClusters", b"")
    assert status == 200 and "clusterArns" in doc


def test_body_over_1_mib_is_413(berth):
    body = json.dumps({"clusterName": "x" * (1024 * 1024 + 10)}).encode()
    status, _, doc = raw_call(berth.endpoint, "CreateCluster", body)
    assert status == 413
    assert doc["__type"] == "RequestEntityTooLargeException"


def test_boto3_client_keeps_working_after_a_413(ecs):
    for _ in range(3):
        expect_error("RequestEntityTooLargeException", ecs.create_cluster, clusterName="x" * (1024 * 1024 + 5),
                     status=413)
        assert ecs.list_clusters()["clusterArns"]


def test_body_over_1_mib_without_content_length_is_413(berth):
    # Chunked upload: the cap must hold without a Content-Length to trust.
    u = urllib.parse.urlsplit(berth.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest("POST", "/")
        conn.putheader("Content-Type", "application/x-amz-json-1.1")
        conn.putheader("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        chunk = b"x" * 65536
        try:
            for _ in range(20):
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once the cap is passed
        resp = conn.getresponse()
        assert resp.status == 413
        assert json.loads(resp.read())["__type"] == "RequestEntityTooLargeException"
    finally:
        conn.close()


# --- authentication ---------------------------------------------------------------------------

def test_wrong_secret(berth):
    status, _, body = raw_call(berth.endpoint, "ListClusters", secret_key="not-the-secret")
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    c = berth.client(secret_key="not-the-secret")
    expect_error("InvalidSignatureException", c.list_clusters, status=403)


def test_unknown_access_key(berth):
    status, _, body = raw_call(berth.endpoint, "ListClusters", access_key="AKIAUNKNOWNUNKNOWN00")
    assert (status, body["__type"]) == (403, "UnrecognizedClientException")
    c = berth.client(access_key="AKIAUNKNOWNUNKNOWN00")
    expect_error("UnrecognizedClientException", c.list_clusters, status=403)


def test_no_authorization_header(berth):
    status, _, body = raw_call(berth.endpoint, "ListClusters", sign=False)
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException")


@pytest.mark.parametrize(
    "auth",
    [
        "AWS4-HMAC-SHA256 garbage",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/eu-west-1/ecs/aws4_request",
        "AWS4-HMAC-SHA256 Credential=nonsense, SignedHeaders=host, Signature=abc",
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
        "Bearer abc",
        "AWS4-HMAC-SHA256",
        "",
    ],
    ids=["no-fields", "no-signature", "bad-credential", "empty-fields", "other-scheme", "scheme-only", "empty"],
)
def test_garbled_authorization_header(berth, auth):
    def mutate(h):
        h["Authorization"] = auth

    status, _, body = raw_call(berth.endpoint, "ListClusters", mutate=mutate)
    assert status == 403, body
    assert body["__type"] in ("IncompleteSignatureException", "MissingAuthenticationTokenException"), body
    if auth.startswith("AWS4-HMAC-SHA256 "):
        assert body["__type"] == "IncompleteSignatureException", body


def test_tampered_body_fails_the_signature(berth):
    signed = {}

    def capture(h):
        signed.update(h)

    raw_call(berth.endpoint, "ListClusters", b"{}", mutate=capture)
    u = urllib.parse.urlsplit(berth.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("POST", "/", body=b'{"maxResults": 1}', headers=signed)
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert (resp.status, body["__type"]) == (403, "InvalidSignatureException")


def test_an_unsigned_target_cannot_swap_the_action(berth):
    """A request signed over `host` alone must not have its action chosen afterwards (issue 14:
    ListClusters signed, GetJoinToken sent)."""
    # Sign a request that has no target, then add one after signing.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from conftest import REGION
    u = urllib.parse.urlsplit(berth.endpoint)
    req = AWSRequest(method="POST", url=berth.endpoint + "/", data=b"{}",
                     headers={"Content-Type": "application/x-amz-json-1.1", "Host": u.netloc})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "ecs", REGION).add_auth(req)
    hdrs = dict(req.headers.items())
    hdrs["X-Amz-Target"] = "BerthV1.GetJoinToken"
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("POST", "/", body=b"{}", headers=hdrs)
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 403 and body["__type"] == "IncompleteSignatureException", body
    assert "'x-amz-target' must be a 'SignedHeader'" in body.get("message", body.get("Message", "")), body


def test_unsigned_payload_is_refused(berth):
    status, _, body = raw_call(berth.endpoint, "ListClusters", b"{}",
                               headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert status == 403 and body["__type"] == "IncompleteSignatureException", body


@pytest.mark.parametrize("minutes", [-20, 20])
def test_request_signed_far_from_now(berth, minutes):
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
    status, _, body = raw_call(berth.endpoint, "ListClusters", when=when)
    assert (status, body["__type"]) == (403, "InvalidSignatureException"), body


def test_request_signed_a_minute_ago_is_fine(berth):
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    status, _, body = raw_call(berth.endpoint, "ListClusters", when=when)
    assert status == 200, body


def test_signed_for_another_service(berth):
    status, _, body = raw_call(berth.endpoint, "ListClusters", service="s3")
    assert status == 403, body
    assert body["__type"] == "InvalidSignatureException"


def test_aws_cli_with_wrong_secret(berth):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY + "x",
               AWS_DEFAULT_REGION="eu-west-1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_MAX_ATTEMPTS="1")
    aws = os.path.join(os.path.dirname(os.path.realpath(os.sys.executable)), "aws")
    p = subprocess.run([aws, "--endpoint-url", berth.endpoint, "ecs", "list-clusters"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode != 0 and "InvalidSignatureException" in p.stderr


def test_no_500_for_a_storm_of_bad_requests(berth):
    bad = [b"", b"{", b"null", b"1", b'"s"', b'{"cluster": null}', b'{"clusters": [null]}',
           b'{"taskDefinition": ""}', b'{"taskDefinitions": []}', b'{"resourceArn": "arn:aws:ecs:x:y:task/a/b"}',
           b'{"include": [1]}', b'{"maxResults": -1}', b'{"nextToken": "\\u0000"}']
    actions = ["CreateCluster", "DescribeClusters", "ListClusters", "UpdateCluster", "UpdateClusterSettings",
               "DeleteCluster", "RegisterTaskDefinition", "DescribeTaskDefinition", "ListTaskDefinitions",
               "ListTaskDefinitionFamilies", "DeregisterTaskDefinition", "DeleteTaskDefinitions", "TagResource",
               "UntagResource", "ListTagsForResource"]
    for action in actions:
        for body in bad:
            status, _, doc = raw_call(berth.endpoint, action, body)
            assert status < 500, (action, body, doc)
            if status >= 400:
                assert isinstance(doc, dict) and doc.get("__type") and "message" in doc, (action, body, doc)
