"""End-to-end fixtures: a real `berth up` process per test module, driven by boto3 and the aws CLI.

Every wait here polls a condition with a deadline; nothing sleeps for a fixed time.
"""
import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import functools
import http.client
import itertools
import urllib.parse
from unittest import mock

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

BERTH_BIN = os.environ.get("BERTH_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/berth"))
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"
# Process tasks write to the tests' own (private) temporary dirs: run them as root here;
# test_process_isolation.py checks the default (an unprivileged user) explicitly.
os.environ.setdefault("BERTH_TASK_USER", "root")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.lru_cache(maxsize=None)
def supports_flag(command, flag):
    """Whether this berth binary's `command` takes `flag` (the CLI grows between issues)."""
    p = subprocess.run([BERTH_BIN, command, "--help"], capture_output=True, text=True, timeout=30)
    return flag in p.stdout


def wait_for(cond, timeout=20.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - the condition may fail until it holds
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


class Berth:
    """One berth server process on its own data dir and port."""

    def __init__(self, data_dir, port=None, env=None, keys=True, args=(), agent=True, nofile=None, tls=False):
        self.data_dir = data_dir
        # tls: serve HTTPS with a certificate from the cluster CA (ca.pem in the data dir).
        self.tls = tls
        self.nofile = nofile  # an open-file limit for the server process
        self.args = list(args)
        if not agent and supports_flag("up", "--no-agent"):
            # API-only tests: no local agent, whose long-poll would hold up a clean stop.
            self.args.append("--no-agent")
        self.port = port or free_port()
        if tls:
            self.args.append("--tls")
        self.endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        if keys:
            self.env.update(BERTH_ROOT_ACCESS_KEY_ID=ACCESS_KEY, BERTH_ROOT_SECRET_ACCESS_KEY=SECRET_KEY)
        self.env.update(env or {})
        self.proc = None
        self.stdout_lines = []

    def start(self, command="up"):
        self.log = open(os.path.join(self.data_dir, "berth.log"), "ab")
        self.proc = subprocess.Popen(
            [BERTH_BIN, command, "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}", *self.args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=self.env,
            text=True,
            preexec_fn=self._limits if self.nofile else None,
        )
        # `berth up` prints its export lines once the API answers and the default cluster exists.
        wait_for(self._ready, what="berth to listen")
        return self

    def _limits(self):
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"berth exited with {self.proc.returncode}")
        with urllib.request.urlopen(self.endpoint + "/ping", timeout=1, context=self.ssl_context()) as r:
            return r.status == 200

    @property
    def ca_bundle(self):
        """The cluster CA clients trust when the server serves TLS."""
        return os.path.join(self.data_dir, "ca.pem")

    def ssl_context(self):
        """An SSL context trusting only the cluster CA (None for plain HTTP)."""
        if not self.tls:
            return None
        import ssl
        return ssl.create_default_context(cafile=self.ca_bundle)

    def metrics_text(self):
        """`GET /metrics` with the bearer token berth keeps in the data dir."""
        with open(os.path.join(self.data_dir, "metrics.token")) as f:
            token = f.read().strip()
        req = urllib.request.Request(self.endpoint + "/metrics", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10, context=self.ssl_context()) as r:
            return r.read().decode()

    def read_exports(self):
        exports = {}
        while True:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("export "):
                k, v = line[len("export "):].strip().split("=", 1)
                exports[k] = v
            if line.startswith("# then"):
                break
        return exports

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def client(self, service="ecs", region=REGION, strict=True, **kw):
        c = boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=kw.pop("access_key", ACCESS_KEY),
            aws_secret_access_key=kw.pop("secret_key", SECRET_KEY),
            # No retries unless a test asks (retries=10 gives the SDK's standard retry mode,
            # which backs off on ThrottlingException as every AWS SDK does).
            config=Config(retries={"max_attempts": kw.pop("retries", 1), "mode": "standard"}),
            verify=kw.pop("verify", self.ca_bundle if self.tls else None),
            **kw,
        )
        if strict and service in ("ecs", "application-autoscaling"):
            strict_responses(c)
        return c

    def aws(self, *args, check=True):
        """Runs the real aws CLI (from PyPI) against this server; returns parsed JSON or the process."""
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION=REGION,
            AWS_MAX_ATTEMPTS="1",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )
        aws = os.path.join(os.path.dirname(os.path.realpath(os.sys.executable)), "aws")
        if not os.path.exists(aws):
            aws = "aws"
        p = subprocess.run(
            [aws, "--endpoint-url", self.endpoint, *(["--ca-bundle", self.ca_bundle] if self.tls else []),
             "--output", "json", *args],
            capture_output=True, text=True, env=env, timeout=60,
        )
        if check:
            assert p.returncode == 0, f"aws {' '.join(args)} failed: {p.stderr}"
            return json.loads(p.stdout) if p.stdout.strip() else {}
        return p

    def cli(self, *args, check=True):
        """Runs berth's own CLI client against this server."""
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION=REGION,
            AWS_ENDPOINT_URL_ECS=self.endpoint,
            **({"AWS_CA_BUNDLE": self.ca_bundle} if self.tls else {}),
        )
        p = subprocess.run([BERTH_BIN, *args], capture_output=True, text=True, env=env, timeout=60)
        if check:
            assert p.returncode == 0, f"berth {' '.join(args)} failed: {p.stderr}"
        return p


# ---------------------------------------------------------------------------------------------
# Strict wire checks: every response berth sends to boto3 must match botocore's ECS model
# exactly (no unknown fields, no nulls, right JSON types, enum values in range), and every error
# must be an AWS JSON 1.1 error (`__type` + `message`) with a request id. botocore itself is
# lenient (it drops what it does not know); this is what other SDKs would trip over.

class WireMismatch(AssertionError):
    pass


# Error codes AWS JSON services send for any action (protocol and authentication level).
COMMON_ERRORS = {
    "UnknownOperationException", "SerializationException", "RequestEntityTooLargeException",
    "MissingAuthenticationTokenException", "IncompleteSignatureException",
    "UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException",
    "ThrottlingException", "ValidationException",
}


def check_shape(shape, value, path="$", errors=None):
    """Compares a decoded JSON value with a botocore shape; returns a list of mismatches."""
    errors = [] if errors is None else errors
    t = shape.type_name
    if value is None:
        errors.append(f"{path}: null (AWS omits absent members)")
    elif t == "structure":
        if not isinstance(value, dict):
            errors.append(f"{path}: expected object for {shape.name}, got {type(value).__name__}")
            return errors
        for k, v in value.items():
            if k not in shape.members:
                errors.append(f"{path}.{k}: not a member of {shape.name}")
            else:
                check_shape(shape.members[k], v, f"{path}.{k}", errors)
    elif t == "list":
        if not isinstance(value, list):
            errors.append(f"{path}: expected array, got {type(value).__name__}")
            return errors
        for i, v in enumerate(value):
            check_shape(shape.member, v, f"{path}[{i}]", errors)
    elif t == "map":
        if not isinstance(value, dict):
            errors.append(f"{path}: expected object (map), got {type(value).__name__}")
            return errors
        for k, v in value.items():
            check_shape(shape.value, v, f"{path}[{k!r}]", errors)
    elif t == "string":
        if not isinstance(value, str):
            errors.append(f"{path}: expected string, got {value!r}")
        elif shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} not in enum {shape.name} {shape.enum}")
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected {t}, got {value!r}")
    elif t in ("double", "float", "timestamp"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{path}: expected number ({t}), got {value!r}")
    elif t == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected boolean, got {value!r}")
    return errors


def check_response(operation_model, status, headers, body):
    """Raises WireMismatch when a raw ECS response does not match the model."""
    rid = {k.lower(): v for k, v in headers.items()}.get("x-amzn-requestid")
    problems = [] if rid else ["no x-amzn-RequestId header"]
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        raise WireMismatch(f"{operation_model.name}: body is not JSON: {body[:200]!r}")
    if status < 300:
        if operation_model.output_shape is not None:
            check_shape(operation_model.output_shape, doc, "$", problems)
    else:
        code = doc.get("__type", "") if isinstance(doc, dict) else ""
        code = code.split("#")[-1]
        modeled = {e.name for e in operation_model.error_shapes}
        if not code:
            problems.append(f"error without __type: {doc!r}")
        elif code not in modeled | COMMON_ERRORS | {"ServerException"}:
            problems.append(f"error code {code} is not an ECS error of {operation_model.name}")
        if not isinstance(doc.get("message"), str):
            problems.append(f"error without message: {doc!r}")
        if status >= 500:
            problems.append(f"HTTP {status} for {operation_model.name}: {doc!r}")
    if problems:
        raise WireMismatch(f"{operation_model.name} (HTTP {status}): " + "; ".join(problems))


def strict_responses(client):
    def before_parse(operation_model, response_dict, **_):
        check_response(operation_model, response_dict["status_code"], response_dict["headers"], response_dict["body"])

    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-parse.{service_id}.*", before_parse)
    return client


# ---------------------------------------------------------------------------------------------
# Helpers shared by the test modules.

_seq = itertools.count()


def uniq(prefix="t"):
    """A name no other test in this run uses (modules share one server)."""
    return f"{prefix}-{os.getpid()}-{next(_seq)}"


def container(name="app", image="busybox", memory=64, **kw):
    return {"name": name, "image": image, "memory": memory, **kw}


def execution_role(iam):
    """A role tasks may name as `executionRoleArn` that may read every SSM parameter and
    Secrets Manager secret (berth reads a task's secrets as its execution role); its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    read = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["ssm:GetParameters", "secretsmanager:GetSecretValue"],
        "Resource": "*"}]}
    name = uniq("exec")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=json.dumps(read))
    return arn


def register(ecs, family, containers=None, **kw):
    return ecs.register_task_definition(family=family, containerDefinitions=containers or [container()], **kw)


def expect_error(code, fn, *args, status=400, **kwargs):
    """Calls fn and asserts it fails with ECS error `code` and HTTP `status`; returns the error."""
    with pytest.raises(ClientError) as ei:
        fn(*args, **kwargs)
    r = ei.value.response
    assert r["Error"]["Code"] == code, r
    assert r["ResponseMetadata"]["HTTPStatusCode"] == status, r
    return ei.value


def raw_call(endpoint, action=None, body=b"{}", *, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
             region=REGION, service="ecs", target=None, sign=True, when=None, headers=None,
             mutate=None, timeout=30):
    """Sends one hand-made JSON 1.1 request, SigV4-signed with botocore's own signer.

    `when` signs at another time (a datetime); `mutate(headers)` edits headers after signing.
    Returns (status, headers, decoded JSON body or raw bytes).
    """
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    u = urllib.parse.urlsplit(endpoint)
    hdrs = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": target if target is not None else f"AmazonEC2ContainerServiceV20141113.{action}",
        "Host": u.netloc,
    }
    hdrs.update(headers or {})
    if sign:
        req = AWSRequest(method="POST", url=endpoint + "/", data=body, headers=hdrs)
        signer = SigV4Auth(Credentials(access_key, secret_key), service, region)
        if when is not None:
            with mock.patch("botocore.auth.get_current_datetime", return_value=when):
                signer.add_auth(req)
        else:
            signer.add_auth(req)
        hdrs = dict(req.headers.items())
    if mutate:
        mutate(hdrs)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        try:
            conn.request("POST", "/", body=body, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (e.g. 413) and stopped reading: read that answer
        resp = conn.getresponse()
        data = resp.read()
        rh = dict(resp.getheaders())
    finally:
        conn.close()
    try:
        doc = json.loads(data) if data else {}
    except ValueError:
        doc = data
    return resp.status, rh, doc


@pytest.fixture(scope="module")
def berth(request):
    # A test module that needs no local agent says so with `BERTH_AGENT = False`.
    agent = getattr(request.module, "BERTH_AGENT", True)
    with tempfile.TemporaryDirectory() as d:
        b = Berth(d, agent=agent).start()
        yield b
        b.stop()


@pytest.fixture
def fresh_dir():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()


# ---------------------------------------------------------------------------------------------
# Agents: `berth agent` processes joining a server, for multi-host clusters on one machine.

def join_token(b, cluster="default"):
    """The cluster's join token, as `berth join-token CLUSTER` prints it."""
    return b.cli("join-token", cluster).stdout.strip()


class Agent:
    """One `berth agent` process with its own state dir (its own "host")."""

    def __init__(self, b, state_dir, token, cluster="default", driver="process", attributes=(),
                 cpu=None, memory=None, poll_wait=1, scope=None, args=()):
        self.berth = b
        self.state_dir = state_dir
        self.token = token
        self.cluster = cluster
        self.driver = driver
        self.attributes = list(attributes)
        self.cpu = cpu
        self.memory = memory
        self.poll_wait = poll_wait
        self.scope = scope
        self.args = list(args)
        self.proc = None
        os.makedirs(state_dir, exist_ok=True)
        self.log_path = os.path.join(state_dir, "agent.log")

    def command(self):
        cmd = [BERTH_BIN, "agent", "--server", self.berth.endpoint, "--cluster", self.cluster,
               "--token", self.token, "--state-dir", self.state_dir, "--driver", self.driver,
               "--poll-wait", str(self.poll_wait)]
        if supports_flag("agent", "--task-user"):
            cmd += ["--task-user", os.environ["BERTH_TASK_USER"]]  # see the top of this file
        for a in self.attributes:
            cmd += ["--attribute", a]
        if self.cpu is not None:
            cmd += ["--cpu", str(self.cpu)]
        if self.memory is not None:
            cmd += ["--memory", str(self.memory)]
        if self.scope is not None:
            cmd += ["--scope", self.scope]
        if supports_flag("agent", "--logs-listen"):
            cmd += ["--logs-listen", "127.0.0.1:0"]
        if getattr(self.berth, "tls", False) and "--ca-cert" not in self.args:
            cmd += ["--ca-cert", self.berth.ca_bundle]
        return cmd + self.args

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log, env=env)
        return self

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def identity(self):
        """The container instance id the agent saved, or None before it registered."""
        try:
            with open(os.path.join(self.state_dir, "agent.json")) as f:
                return json.load(f)["instanceId"]
        except (OSError, ValueError, KeyError):
            return None

    def wait_registered(self, ecs, timeout=20):
        """Waits until the agent registered and shows connected; returns its instance ARN."""
        def connected():
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}: {self.log()[-2000:]}")
            iid = self.identity()
            if not iid:
                return None
            d = ecs.describe_container_instances(cluster=self.cluster, containerInstances=[iid])
            ci = d["containerInstances"]
            return ci and ci[0]["agentConnected"] and ci[0]["containerInstanceArn"]
        self.arn = wait_for(connected, timeout, what="agent registration")
        return self.arn

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        return self.stop(signal.SIGKILL)


def processes_with_argv(argv):
    """Pids of live processes whose command line is exactly `argv` (zombies excluded)."""
    want = [a.encode() for a in argv]
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")[:-1]
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if cmdline == want and state not in (b"Z", b"X"):
            pids.append(int(entry))
    return pids


def delete_services_and_wait(ecs, cluster="default", timeout=45):
    """Deletes every service and waits until every task is really STOPPED: agents leave their
    tasks running when they stop (by design), so fixtures call this before stopping them."""
    for arn in ecs.list_services(cluster=cluster)["serviceArns"]:
        with contextlib.suppress(Exception):
            ecs.delete_service(cluster=cluster, service=arn, force=True)

    def all_stopped():
        arns = (ecs.list_tasks(cluster=cluster)["taskArns"]
                + ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"])
        return all(t["lastStatus"] == "STOPPED" for i in range(0, len(arns), 100)
                   for t in ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])["tasks"])
    with contextlib.suppress(AssertionError):
        wait_for(all_stopped, timeout, interval=0.2, what="every task STOPPED")


def describe_task(ecs, arn, cluster="default"):
    d = ecs.describe_tasks(cluster=cluster, tasks=[arn])
    assert not d["failures"], d["failures"]
    return d["tasks"][0]


def wait_task(ecs, arn, status, cluster="default", timeout=20):
    """Waits until the task's lastStatus is `status`; returns the described task."""
    def reached():
        t = describe_task(ecs, arn, cluster)
        if t["lastStatus"] == "STOPPED" and status != "STOPPED":
            raise AssertionError(f"task stopped: {t.get('stopCode')} {t.get('stoppedReason')} {t['containers']}")
        return t if t["lastStatus"] == status else None
    return wait_for(reached, timeout, interval=0.1, what=f"task {arn} to be {status}")


def run_one(ecs, td_arn, cluster="default", **kw):
    """RunTask with count 1 that must place; returns the task."""
    r = ecs.run_task(cluster=cluster, taskDefinition=td_arn, **kw)
    assert not r["failures"], r["failures"]
    assert len(r["tasks"]) == 1
    return r["tasks"][0]


def resources(ci, which="remainingResources"):
    """An instance's resources as {"CPU": int, "MEMORY": int, "PORTS": set}."""
    out = {}
    for r in ci[which]:
        if r["type"] == "INTEGER":
            out[r["name"]] = r["integerValue"]
        elif r["type"] == "STRINGSET":
            out[r["name"]] = set(r.get("stringSetValue", []))
    return out


# ---------------------------------------------------------------------------------------------
# Docker, for the files that run tasks on the docker driver

TEST_IMAGE = "berth-test/busybox:latest"


def docker(*args, check=True):
    """Runs the docker CLI; asserts success unless `check` is false."""
    p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, f"docker {' '.join(args)}: {p.stderr}"
    return p


def docker_ok():
    """Whether a Docker daemon answers."""
    import shutil
    if not shutil.which("docker"):
        return False
    try:
        return docker("version", check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.lru_cache(maxsize=None)
def build_test_image():
    """Builds `berth-test/busybox` from Debian's busybox (no registry needed), once per run."""
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "build-test-image.sh")
    p = subprocess.run([script], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return TEST_IMAGE

