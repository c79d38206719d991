#!/usr/bin/env python3
"""Generate AWS SigV4 test vectors for berth-sigv4 with botocore.

The fixtures in ``botocore_vectors.json`` (next to this file) are the output of
this script; ``tests/botocore.rs`` checks that berth-sigv4 verifies every one
of them and, for header auth, that ``sign`` reproduces botocore's exact
``Authorization`` header. They are what shows we interoperate with real SDKs.

Regenerate (from the repository root, with the project venv that has botocore):

    .venv/bin/python crates/berth-sigv4/tests/gen_vectors.py \
        > crates/berth-sigv4/tests/botocore_vectors.json

The output is deterministic: credentials are fixed, the signing clock is
frozen by patching ``botocore.auth.get_current_datetime`` (the clock
``SigV4Auth.add_auth`` reads), and the per-call ``amz-sdk-invocation-id``
UUID (also used as the idempotency ``clientToken``) is pinned.

Two kinds of requests are signed:

* real client calls (``ecs`` RunTask over JSON 1.1, ``elbv2``
  CreateLoadBalancer over the Query protocol) that go through botocore's full
  pipeline; the signed request is captured in ``before-send`` and the call is
  aborted there, so nothing touches the network;
* hand-built ``AWSRequest``s signed directly with ``SigV4Auth`` /
  ``SigV4QueryAuth`` (reserved characters and repeated keys in the query, a
  path that botocore normalises and double-encodes, duplicate and
  whitespace-laden headers, UNSIGNED-PAYLOAD, the ``Date`` header fallback,
  and presigned URLs).

Each vector records:

* ``method``, ``path``, ``query`` (raw, without ``?``), ``headers`` and
  ``body``: the request exactly as a server receives it. ``Host`` is added
  from the URL the way the HTTP client would send it (botocore signs it but
  leaves it to urllib3 to send);
* ``sign_headers``: the headers on the request once botocore has signed it,
  minus ``Authorization`` and ``X-Amz-Date`` (which ``berth_sigv4::sign``
  returns) and plus ``Host``: the input ``sign`` needs to reproduce
  ``authorization``. Absent when ``sign`` cannot reproduce the vector: the
  ``Date``-header variant (``sign`` always uses ``x-amz-date``) and presigned
  URLs (``sign`` only does header auth);
* ``timestamp`` / ``unix_time``: the frozen signing time;
* ``authorization`` (header auth) and botocore's ``canonical_request`` and
  ``string_to_sign``, for debugging a mismatch;
* ``expires`` for presigned URLs.
"""

import datetime
import json
import sys
import uuid
from unittest import mock
from urllib.parse import urlsplit

import botocore
import botocore.auth
import botocore.session
from botocore.auth import SigV4Auth, SigV4QueryAuth, _host_from_url
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

ACCESS_KEY_ID = "AKIDBERTHEXAMPLE0001"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYBERTHEXAMPLEKEY"
CREDS = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
INVOCATION_ID = uuid.UUID("0b5c2d1e-3f40-4a51-8b62-7c83d94ea5f6")


class Captured(Exception):
    """Raised from before-send to stop a client call once it is signed."""


class Recorder:
    """Wraps SigV4Auth to remember the last canonical request, string to sign,
    and the headers right after signing."""

    def __init__(self):
        self.canonical_request = None
        self.string_to_sign = None
        self.signed_headers = None
        self._orig_cr = SigV4Auth.canonical_request
        self._orig_sts = SigV4Auth.string_to_sign
        self._orig_add_auth = SigV4Auth.add_auth

    def __enter__(self):
        rec = self

        def canonical_request(signer, request):
            rec.canonical_request = rec._orig_cr(signer, request)
            return rec.canonical_request

        def string_to_sign(signer, request, canonical_request):
            rec.string_to_sign = rec._orig_sts(signer, request, canonical_request)
            return rec.string_to_sign

        def add_auth(signer, request):
            result = rec._orig_add_auth(signer, request)
            rec.signed_headers = list(request.headers.items())
            return result

        self._patches = [
            mock.patch.object(SigV4Auth, "canonical_request", canonical_request),
            mock.patch.object(SigV4Auth, "string_to_sign", string_to_sign),
            mock.patch.object(SigV4Auth, "add_auth", add_auth),
        ]
        for p in self._patches:
            p.start()
        return self

    def __exit__(self, *exc):
        for p in reversed(self._patches):
            p.stop()


def frozen(ts):
    """Freeze botocore's signing clock at ``ts`` (a naive UTC datetime)."""
    return mock.patch.object(botocore.auth, "get_current_datetime", return_value=ts)


def amz(ts):
    return ts.strftime("%Y%m%dT%H%M%SZ")


def unix(ts):
    return int(ts.replace(tzinfo=datetime.timezone.utc).timestamp())


def with_host(url, headers):
    """Headers as sent on the wire: Host first unless already present."""
    headers = [(text(k), text(v)) for k, v in headers]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", _host_from_url(url)))
    return headers


def text(value):
    """botocore keeps some header values (and bodies) as bytes."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def body_text(body):
    return text(body)


def wire_headers(request, prepared):
    """Headers as sent: the signed AWSRequest's (which keep duplicates, unlike
    the prepared request's HeadersDict) plus what prepare() added
    (Content-Length)."""
    headers = list(request.headers.items())
    names = {text(k).lower() for k, _ in headers}
    headers += [(k, v) for k, v in prepared.headers.items() if text(k).lower() not in names]
    return with_host(prepared.url, headers)


def sign_input(url, rec):
    """The headers botocore signed, minus the two berth's sign() adds itself
    (X-Amz-Date, Authorization): exactly what sign() needs as input. Includes
    what botocore adds before signing, e.g. X-Amz-Content-SHA256."""
    headers = [
        (k, v)
        for k, v in rec.signed_headers
        if text(k).lower() not in ("authorization", "x-amz-date")
    ]
    return with_host(url, headers)


def split_url(url):
    parts = urlsplit(url)
    return parts.path or "/", parts.query


def client_vector(name, service_name, region, endpoint_url, ts, call):
    """Run a real botocore client call, capturing the signed request."""
    session = botocore.session.get_session()
    client = session.create_client(
        service_name,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(user_agent="berth-gen-vectors/1", retries={"max_attempts": 1}),
    )
    seen = {}

    def before_send(request, **kwargs):
        seen["request"] = request
        raise Captured()

    client.meta.events.register("before-send", before_send)
    with frozen(ts), Recorder() as rec, mock.patch(
        "botocore.endpoint.uuid.uuid4", return_value=INVOCATION_ID
    ):
        try:
            call(client)
        except Captured:
            pass
        else:
            raise RuntimeError("request was not captured")
    req = seen["request"]
    path, query = split_url(req.url)
    signing_name = client.meta.service_model.signing_name
    return {
        "name": name,
        "auth": "header",
        "region": region,
        "service": signing_name,
        "timestamp": amz(ts),
        "unix_time": unix(ts),
        "method": req.method,
        "path": path,
        "query": query,
        "headers": with_host(req.url, req.headers.items()),
        "body": body_text(req.body),
        "sign_headers": sign_input(req.url, rec),
        "authorization": text(req.headers["Authorization"]),
        "canonical_request": rec.canonical_request,
        "string_to_sign": rec.string_to_sign,
    }


def header_vector(name, service, region, ts, request, reproducible=True):
    """Sign a hand-built AWSRequest with SigV4Auth."""
    with frozen(ts), Recorder() as rec:
        SigV4Auth(CREDS, service, region).add_auth(request)
    prepared = request.prepare()
    path, query = split_url(prepared.url)
    vector = {
        "name": name,
        "auth": "header",
        "region": region,
        "service": service,
        "timestamp": amz(ts),
        "unix_time": unix(ts),
        "method": prepared.method,
        "path": path,
        "query": query,
        "headers": wire_headers(request, prepared),
        "body": body_text(prepared.body),
        "authorization": text(prepared.headers["Authorization"]),
        "canonical_request": rec.canonical_request,
        "string_to_sign": rec.string_to_sign,
    }
    if reproducible:
        vector["sign_headers"] = sign_input(prepared.url, rec)
    return vector


def query_vector(name, service, region, ts, request, expires):
    """Presign a hand-built AWSRequest with SigV4QueryAuth."""
    with frozen(ts), Recorder() as rec:
        SigV4QueryAuth(CREDS, service, region, expires=expires).add_auth(request)
    prepared = request.prepare()
    path, query = split_url(prepared.url)
    return {
        "name": name,
        "auth": "query",
        "region": region,
        "service": service,
        "timestamp": amz(ts),
        "unix_time": unix(ts),
        "expires": expires,
        "method": prepared.method,
        "path": path,
        "query": query,
        "headers": wire_headers(request, prepared),
        "body": body_text(prepared.body),
        "canonical_request": rec.canonical_request,
        "string_to_sign": rec.string_to_sign,
    }


def main():
    vectors = []

    # 1. ECS RunTask, JSON 1.1 POST to "/" with X-Amz-Target, through the
    #    real client pipeline against a local (berth-style) http endpoint.
    vectors.append(
        client_vector(
            "ecs-run-task-json",
            "ecs",
            "us-east-1",
            "http://localhost:8080",
            datetime.datetime(2025, 3, 14, 15, 9, 26),
            lambda c: c.run_task(
                cluster="default",
                taskDefinition="web:3",
                count=2,
                startedBy="berth test \u00e9",
                overrides={
                    "containerOverrides": [
                        {"name": "web", "environment": [{"name": "A", "value": "b c"}]}
                    ]
                },
            ),
        )
    )

    # 2. ELBv2 CreateLoadBalancer, Query-protocol form POST, real client,
    #    default https endpoint in eu-west-1.
    vectors.append(
        client_vector(
            "elbv2-create-load-balancer-query",
            "elbv2",
            "eu-west-1",
            None,
            datetime.datetime(2024, 12, 31, 23, 59, 59),
            lambda c: c.create_load_balancer(
                Name="web-lb",
                Subnets=["subnet-0a1b", "subnet-2c3d"],
                Scheme="internet-facing",
                Tags=[{"Key": "env", "Value": "prod & test/+=?"}],
            ),
        )
    )

    # 3. GET with reserved characters and repeated keys in the query, encoded
    #    the way botocore's serializers do (percent_encode_sequence), and a
    #    path botocore normalises (dot segment, double slash) and re-encodes.
    query = percent_encode_sequence(
        [
            ("tag", "b"),
            ("tag", "a"),
            ("tag", "a b"),
            ("Filter.1.Name", "!*'();:@&=+$,/?#[] ~"),
            ("empty", ""),
            ("caf\u00e9", "\u00fcber/\u20ac"),
            ("a-b_c.d~e", "x"),
        ]
    )
    req = AWSRequest(
        method="GET",
        url="https://api.example.internal:8443/v1/things/a%20b/./c~d//e?" + query,
        headers={"X-Amz-Meta-Note": "  several    spaces\there  "},
    )
    req.headers["X-Dup"] = "first"
    req.headers["X-Dup"] = " second  value "
    req.headers["User-Agent"] = "not-signed/1.0"
    vectors.append(
        header_vector(
            "get-reserved-query-repeated-keys",
            "execute-api",
            "ap-southeast-2",
            datetime.datetime(2025, 1, 2, 3, 4, 5),
            req,
        )
    )

    # 4. GET whose query comes from AWSRequest.params: botocore signs
    #    quote()-encoded pairs but sends them urlencode()d, so spaces arrive
    #    as '+'. The verifier must decode '+' as a space.
    req = AWSRequest(
        method="GET",
        url="https://ecs.us-west-2.amazonaws.com/",
        params=[("q", "hello world"), ("Action", "ListClusters"), ("q", "*star*")],
    )
    vectors.append(
        header_vector(
            "get-params-plus-encoded-spaces",
            "ecs",
            "us-west-2",
            datetime.datetime(2025, 6, 30, 0, 0, 0),
            req,
        )
    )

    # 5. UNSIGNED-PAYLOAD: payload signing disabled over https, so botocore
    #    sends X-Amz-Content-SHA256: UNSIGNED-PAYLOAD and signs that value.
    req = AWSRequest(
        method="POST",
        url="https://ecs.us-east-1.amazonaws.com/",
        data=b'{"cluster":"default"}',
        headers={
            "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListServices",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    req.context["payload_signing_enabled"] = False
    vectors.append(
        header_vector(
            "ecs-unsigned-payload",
            "ecs",
            "us-east-1",
            datetime.datetime(2025, 3, 14, 15, 9, 26),
            req,
        )
    )

    # 6. Date header instead of X-Amz-Date: botocore rewrites Date and signs
    #    it. Verify-only (berth's sign always uses x-amz-date).
    req = AWSRequest(
        method="POST",
        url="https://ecs.us-east-1.amazonaws.com/",
        data=b"{}",
        headers={
            "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
            "Content-Type": "application/x-amz-json-1.1",
            "Date": "placeholder",
        },
    )
    vectors.append(
        header_vector(
            "ecs-date-header",
            "ecs",
            "us-east-1",
            datetime.datetime(2025, 3, 14, 15, 9, 26),
            req,
            reproducible=False,
        )
    )

    # 7. Presigned URL (SigV4QueryAuth) for an ECS JSON call; the body's
    #    form params move into the query string.
    req = AWSRequest(
        method="GET",
        url="https://ecs.us-east-1.amazonaws.com/?Action=ListClusters&Version=2014-11-13",
    )
    vectors.append(
        query_vector(
            "ecs-presigned-url",
            "ecs",
            "us-east-1",
            datetime.datetime(2025, 3, 14, 15, 9, 26),
            req,
            expires=300,
        )
    )

    # 8. Presigned STS GetCallerIdentity with an extra signed header, the
    #    shape aws-iam-authenticator / EKS tokens use.
    req = AWSRequest(
        method="GET",
        url="https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        headers={"x-k8s-aws-id": "my-cluster"},
    )
    vectors.append(
        query_vector(
            "sts-presigned-with-signed-header",
            "sts",
            "us-east-1",
            datetime.datetime(2025, 2, 28, 23, 50, 0),
            req,
            expires=60,
        )
    )

    out = {
        "generator": "crates/berth-sigv4/tests/gen_vectors.py",
        "botocore_version": botocore.__version__,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        "vectors": vectors,
    }
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
