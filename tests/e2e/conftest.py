"""End-to-end fixtures: a real `berth up` process per test module, driven by boto3 and the aws CLI.

Every wait here polls a condition with a deadline; nothing sleeps for a fixed time.
"""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config

BERTH_BIN = os.environ.get("BERTH_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/berth"))
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    def __init__(self, data_dir, port=None, env=None, keys=True):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        if keys:
            self.env.update(BERTH_ROOT_ACCESS_KEY_ID=ACCESS_KEY, BERTH_ROOT_SECRET_ACCESS_KEY=SECRET_KEY)
        self.env.update(env or {})
        self.proc = None
        self.stdout_lines = []

    def start(self, command="up"):
        self.log = open(os.path.join(self.data_dir, "berth.log"), "ab")
        self.proc = subprocess.Popen(
            [BERTH_BIN, command, "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=self.env,
            text=True,
        )
        # `berth up` prints its export lines once the API answers and the default cluster exists.
        wait_for(self._ready, what="berth to listen")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"berth exited with {self.proc.returncode}")
        with urllib.request.urlopen(self.endpoint + "/ping", timeout=1) as r:
            return r.status == 200

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

    def client(self, service="ecs", region=REGION, **kw):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=kw.pop("access_key", ACCESS_KEY),
            aws_secret_access_key=kw.pop("secret_key", SECRET_KEY),
            config=Config(retries={"max_attempts": 1}),
            **kw,
        )

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
            [aws, "--endpoint-url", self.endpoint, "--output", "json", *args],
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
        )
        p = subprocess.run([BERTH_BIN, *args], capture_output=True, text=True, env=env, timeout=60)
        if check:
            assert p.returncode == 0, f"berth {' '.join(args)} failed: {p.stderr}"
        return p


@pytest.fixture(scope="module")
def berth():
    with tempfile.TemporaryDirectory() as d:
        b = Berth(d).start()
        yield b
        b.stop()


@pytest.fixture
def fresh_dir():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.fixture(scope="module")
def ecs(berth):
    return berth.client()
