"""Fault-injection fixtures: berth servers, agents and etcd members as real processes on this
machine, a TCP proxy the tests can cut, and the table every case reports a row to.

The e2e suite's helpers (`Berth`, `Agent`, `wait_for`, ...) are imported from
`tests/e2e/conftest.py`, not copied. Every wait polls a condition with a deadline; every
process a case starts is stopped in a `finally`, and task processes are found again (and
killed) by their command line, which each case makes unique.
"""
import asyncio
import contextlib
import functools
import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest

_E2E = os.path.join(os.path.dirname(__file__), "..", "e2e")
_spec = importlib.util.spec_from_file_location("berth_e2e_conftest", os.path.join(_E2E, "conftest.py"))
e2e = importlib.util.module_from_spec(_spec)
sys.modules["berth_e2e_conftest"] = e2e
_spec.loader.exec_module(e2e)

Agent, Berth, wait_for, free_port, join_token = e2e.Agent, e2e.Berth, e2e.wait_for, e2e.free_port, e2e.join_token
processes_with_argv, uniq, register, container = e2e.processes_with_argv, e2e.uniq, e2e.register, e2e.container
supports_flag, describe_task, wait_task = e2e.supports_flag, e2e.describe_task, e2e.wait_task

ETCD = os.environ.get("BERTH_TEST_ETCD", "/usr/bin/etcd")
# Short timeouts keep every case within seconds (see the README's Fault injection section).
AGENT_TIMEOUT = 3
HOST_LOST_TIMEOUT = 6


# ---------------------------------------------------------------------------------------------
# The report: one row per case (case, expected, seen), printed at the end and written to a file.

ROWS = []


class Row:
    def __init__(self, case, expected):
        self.case, self.expected, self.seen, self.outcome = case, expected, "(did not finish)", "FAIL"
        ROWS.append(self)


@pytest.fixture
def row(request):
    """`row(case, expected)` opens this case's row; set `.seen` as facts come in. The outcome
    is the test's (passed / failed / skipped), filled in by the report hook."""
    made = request.node._fault_rows = []

    def open_row(case, expected):
        r = Row(case, expected)
        made.append(r)
        return r
    return open_row


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item._fault_call = rep
    if rep.when == "teardown":
        call_rep = getattr(item, "_fault_call", None)
        for r in getattr(item, "_fault_rows", []):
            if call_rep is None or call_rep.skipped:
                r.outcome = "SKIP"
                if call_rep is not None and isinstance(call_rep.longrepr, tuple):
                    r.seen = "skipped: " + str(call_rep.longrepr[2]).removeprefix("Skipped: ")
            else:
                r.outcome = "ok" if call_rep.passed else "FAIL"


def _table():
    lines = ["| case | expected | seen | outcome |", "|---|---|---|---|"]
    for r in ROWS:
        cells = [str(x).replace("|", "/").replace("\n", " ") for x in (r.case, r.expected, r.seen, r.outcome)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pytest_sessionfinish(session):
    """The agents' image this run built goes with the run (its containers are gone by now)."""
    if agent_image.cache_info().currsize:
        e2e.docker("rmi", agent_image(), check=False)


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    out_dir = os.environ.get("BERTH_FAULTS_OUT") or tempfile.mkdtemp(prefix="berth-faults-")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "last-run.md")
    with open(path, "w") as f:
        f.write("# berth fault injection, " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()) + "\n\n")
        f.write(_table() + "\n")
    terminalreporter.write_sep("=", "fault injection")
    terminalreporter.write_line(_table())
    terminalreporter.write_line(f"(written to {path})")


# ---------------------------------------------------------------------------------------------
# A TCP proxy a test can cut: `pass` forwards, `blackhole` accepts and forwards nothing (and
# holds what it has), `delay` forwards each chunk after `delay` seconds. Healing closes every
# connection the blackhole held, so both ends see a reset, as after a real partition heals
# with the peers' connections timed out.

class Proxy:
    def __init__(self, target_port, target_host="127.0.0.1", listen_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port = free_port()
        self.mode = "pass"
        self.delay = 0.0
        self._conns = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(10), "proxy did not start"
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, self.listen_host, self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for w in list(self._conns):
                w.transport.abort()
            self._loop.close()

    async def _handle(self, reader, writer):
        self._conns.add(writer)
        up_w = None
        try:
            if self.mode == "blackhole":
                while await reader.read(65536):
                    pass
                return
            up_r, up_w = await asyncio.open_connection(*self.target)
            self._conns.add(up_w)
            await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)
        except OSError:
            pass
        finally:
            for w in (writer, up_w):
                if w is not None:
                    self._conns.discard(w)
                    w.transport.abort()

    async def _pipe(self, r, w):
        while True:
            data = await r.read(65536)
            if not data:
                w.transport.abort()
                return
            while self.mode == "blackhole":
                await asyncio.sleep(0.05)  # held: nothing passes while cut
            if self.mode == "delay" and self.delay:
                await asyncio.sleep(self.delay)
            w.write(data)
            await w.drain()

    def _set(self, mode, delay=0.0, reset=False):
        def apply():
            self.mode, self.delay = mode, delay
            if reset:
                for w in list(self._conns):
                    w.transport.abort()
                self._conns.clear()
        self._loop.call_soon_threadsafe(apply)

    def cut(self):
        """Nothing passes either way from now on; connections stay open, silent."""
        self._set("blackhole")

    def slow(self, delay):
        self._set("delay", delay)

    def heal(self):
        """Everything passes again; connections held silent are reset."""
        self._set("pass", reset=True)


# ---------------------------------------------------------------------------------------------
# Agents through a proxy, task processes by command line.

class ProxiedAgent(Agent):
    """A `berth agent` that reaches its server through `proxy`."""

    def __init__(self, b, proxy, *a, **kw):
        super().__init__(b, *a, **kw)
        self.proxy = proxy

    def command(self):
        cmd = super().command()
        i = cmd.index("--server")
        cmd[i + 1] = f"http://127.0.0.1:{self.proxy.port}"
        return cmd


def sleeper_argv():
    """A command line no other process on this machine has: the label its processes are
    found (and cleaned up) by."""
    return ["sleep", f"{3000 + os.getpid() % 1000}.{time.monotonic_ns() % 10**9}"]


def kill_argv(argv):
    for pid in processes_with_argv(argv):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Sampler:
    """Counts live task processes with `argv` every few milliseconds in a thread."""

    def __init__(self, argv, interval=0.02):
        self.argv, self.interval = argv, interval
        self.max_live, self.samples = 0, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            n = len(processes_with_argv(self.argv))
            self.max_live = max(self.max_live, n)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(10)


# ---------------------------------------------------------------------------------------------
# Agents in Docker containers on a Docker network the case creates: a partition is
# `docker network disconnect`. No image can be pulled: the agents' image is `docker import` of
# the berth binary, the libraries `ldd` lists for it and Debian's static busybox (as the
# `docker` host provider builds `berth-host`). Everything a case makes carries its label.

LABEL = "berth-faults.case"


def need_docker():
    if not e2e.docker_ok():
        if os.environ.get("CI") == "true":
            pytest.fail("Docker does not answer; CI must run this case")
        pytest.skip("Docker does not answer")
    out = subprocess.run(["ldd", "/bin/busybox"], capture_output=True, text=True).stdout if os.path.exists(
        "/bin/busybox") else "=>"
    if "=>" in out:
        if os.environ.get("CI") == "true":
            pytest.fail("no static /bin/busybox (apt-get install busybox-static); CI must run this case")
        pytest.skip("no static /bin/busybox (apt-get install busybox-static)")


@functools.lru_cache(maxsize=None)
def agent_image():
    """`berth-faults-agent:ID` (ID names the berth binary: size and mtime), built once."""
    st = os.stat(e2e.BERTH_BIN)
    tag = f"berth-faults-agent:{st.st_size:x}-{int(st.st_mtime):x}"
    if e2e.docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(prefix="berth-faults-image-") as root:
        for d in ("bin", "tmp", "etc", "var/lib/berth"):
            os.makedirs(os.path.join(root, d))
        shutil.copy(e2e.BERTH_BIN, os.path.join(root, "bin/berth"))
        ldd = subprocess.run(["ldd", e2e.BERTH_BIN], capture_output=True, text=True, check=True).stdout
        for line in ldd.splitlines():
            path = line.split("=>")[-1].split()[0] if line.split("=>")[-1].split() else ""
            if path.startswith("/"):
                dest = os.path.join(root, path.lstrip("/"))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copy(path, dest)  # follows symlinks: the real bytes under the loader's name
        shutil.copy("/bin/busybox", os.path.join(root, "bin/busybox"))
        for applet in ("sh", "sleep", "cat", "ls", "kill", "ps"):
            os.symlink("busybox", os.path.join(root, "bin", applet))
        with open(os.path.join(root, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/:/bin/sh\n")
        with open(os.path.join(root, "etc/group"), "w") as f:
            f.write("root:x:0:\n")
        p = subprocess.run(f"tar -C {root} --owner=0 --group=0 --numeric-owner -c . | docker import "
                           f"-c 'ENV PATH=/bin' -c 'LABEL {LABEL}=image' - {tag}",
                           shell=True, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
    return tag


@contextlib.contextmanager
def docker_network(case):
    """A Docker bridge network labelled `case`; yields (name, gateway address). On exit every
    container and network with the label is removed, whatever happened."""
    name = f"berth-faults-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    try:
        e2e.docker("network", "create", "--label", f"{LABEL}={case}", name)
        gw = e2e.docker("network", "inspect", name, "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}").stdout.strip()
        assert gw, f"network {name} has no gateway"
        yield name, gw
    finally:
        remove_labelled(case)


def remove_labelled(case):
    ids = e2e.docker("ps", "-aq", "--filter", f"label={LABEL}={case}", check=False).stdout.split()
    if ids:
        e2e.docker("rm", "-f", *ids, check=False)
    nets = e2e.docker("network", "ls", "-q", "--filter", f"label={LABEL}={case}", check=False).stdout.split()
    if nets:
        e2e.docker("network", "rm", *nets, check=False)


class DockerAgent(Agent):
    """A `berth agent` (process driver) in a container on `network`, reaching the server at
    `url`; its state dir is `state_dir` on this machine, mounted, so `identity()` works."""

    def __init__(self, b, url, network, case, state_dir, token, **kw):
        super().__init__(b, state_dir, token, **kw)
        self.url, self.network, self.case = url, network, case
        self.name = f"{network}-{os.path.basename(state_dir)}"

    def command(self):
        cmd = ["berth", "agent", "--server", self.url, "--cluster", self.cluster, "--token", self.token,
               "--state-dir", "/var/lib/berth", "--driver", "process", "--poll-wait", str(self.poll_wait),
               "--task-user", "root", "--logs-listen", "0.0.0.0:0"]
        if self.cpu is not None:
            cmd += ["--cpu", str(self.cpu)]
        if self.memory is not None:
            cmd += ["--memory", str(self.memory)]
        return cmd

    def start(self):
        e2e.docker("run", "-d", "--name", self.name, "--label", f"{LABEL}={self.case}", "--network", self.network,
                   "-v", f"{self.state_dir}:/var/lib/berth", agent_image(), *self.command())
        self.proc = self
        return self

    def poll(self):  # `wait_registered` asks `self.proc.poll()` whether the agent exited
        out = e2e.docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", self.name, check=False).stdout
        running, _, code = out.strip().partition(" ")
        return None if running == "true" else int(code or -1)

    @property
    def returncode(self):
        return self.poll()

    def log(self):
        p = e2e.docker("logs", self.name, check=False)
        return p.stdout + p.stderr

    def disconnect(self):
        e2e.docker("network", "disconnect", self.network, self.name)

    def connect(self):
        e2e.docker("network", "connect", self.network, self.name)

    def stop(self, sig=None, timeout=20):
        e2e.docker("rm", "-f", self.name, check=False)


# ---------------------------------------------------------------------------------------------
# etcd members

def need_etcd():
    if not os.path.exists(ETCD):
        if os.environ.get("CI") == "true":
            pytest.fail("etcd is not installed (apt-get install etcd-server); CI must run these tests")
        pytest.skip("etcd is not installed (apt-get install etcd-server)")


class EtcdError(Exception):
    """An error etcd's gRPC gateway answered (its JSON, as text)."""


class EtcdCluster:
    """`n` etcd members on free loopback ports in a temp dir; killed (all) on exit. `args` are
    more etcd flags (e.g. a small `--quota-backend-bytes`)."""

    def __init__(self, n=1, args=()):
        need_etcd()
        self.args = list(args)
        self.dir = tempfile.TemporaryDirectory(prefix="berth-faults-etcd-")
        self.clients = [free_port() for _ in range(n)]
        self.peers = [free_port() for _ in range(n)]
        self.names = [f"m{i}-{os.getpid()}" for i in range(n)]
        self.procs = [None] * n

    def _cmd(self, i):
        cluster = ",".join(f"{self.names[j]}=http://127.0.0.1:{self.peers[j]}" for j in range(len(self.names)))
        return [ETCD, "--name", self.names[i], "--data-dir", os.path.join(self.dir.name, self.names[i]),
                "--listen-client-urls", f"http://127.0.0.1:{self.clients[i]}",
                "--advertise-client-urls", f"http://127.0.0.1:{self.clients[i]}",
                "--listen-peer-urls", f"http://127.0.0.1:{self.peers[i]}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peers[i]}",
                "--initial-cluster", cluster, "--initial-cluster-token", f"faults-{os.getpid()}",
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--max-txn-ops", "4096", *self.args]

    def __enter__(self):
        for i in range(len(self.names)):
            log = open(os.path.join(self.dir.name, f"{self.names[i]}.log"), "ab")
            self.procs[i] = subprocess.Popen(self._cmd(i), stdout=subprocess.DEVNULL, stderr=log)
        for i in range(len(self.names)):
            wait_for(lambda i=i: self.healthy(i), 30, interval=0.1, what=f"etcd member {i} to be healthy")
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            if p and p.poll() is None:
                p.kill()
                p.wait()
        self.dir.cleanup()

    def healthy(self, i):
        if self.procs[i].poll() is not None:
            raise RuntimeError(f"etcd member {i} exited with {self.procs[i].returncode}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.clients[i]}/health", timeout=2) as r:
            return b'"health":"true"' in r.read()

    def status(self, i):
        return self.call(i, "/v3/maintenance/status")

    def call(self, i, path, body=None, timeout=10):
        """POSTs `body` (JSON) to member `i`'s gRPC gateway at `path`; returns the JSON answer,
        or raises `EtcdError` carrying etcd's message."""
        import json
        import urllib.error
        req = urllib.request.Request(f"http://127.0.0.1:{self.clients[i]}{path}",
                                     data=json.dumps(body or {}).encode(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise EtcdError(e.read().decode(errors="replace")) from None

    def leader(self):
        """The index of the member that leads now."""
        st = self.status(0)
        lead = st["leader"]
        for i in range(len(self.names)):
            if self.procs[i].poll() is None and self.status(i)["header"]["member_id"] == lead:
                return i
        raise AssertionError("no member leads")

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait()

    def endpoints(self, ports=None):
        return ",".join(f"127.0.0.1:{p}" for p in (ports or self.clients))


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="berth-faults-") as d:
        yield d


def server_args(*extra):
    return ["--agent-timeout", str(AGENT_TIMEOUT), "--host-lost-timeout", str(HOST_LOST_TIMEOUT), *extra]


# ---------------------------------------------------------------------------------------------
# Replicas of the control plane on one etcd (the `leader` work: `--replica-id`, `/control-plane`)

FAKETIME_LIB = os.environ.get("BERTH_TEST_FAKETIME", "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def replicas_supported():
    return supports_flag("server", "--replica-id")


def control_plane(b):
    """`GET /control-plane` as JSON, or None where the server has no such route (404)."""
    import json
    import urllib.error
    try:
        with urllib.request.urlopen(b.endpoint + "/control-plane", timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def replica(workdir, name, store, skew=None, args=()):
    """A `berth up --no-agent` replica named `name` on `store`, sharing the master key file in
    `workdir`; `skew` (e.g. "+4m") runs it under libfaketime with its wall clock that far off
    (monotonic clocks left alone, so timers behave)."""
    key = os.path.join(workdir, "master.key")
    if not os.path.exists(key):
        with open(key, "w") as f:
            f.write(os.urandom(32).hex())
        os.chmod(key, 0o600)
    env = {}
    if skew:
        if not os.path.exists(FAKETIME_LIB):
            if os.environ.get("CI") == "true":
                pytest.fail("libfaketime is not installed (apt-get install faketime); CI must run this case")
            pytest.skip("libfaketime is not installed (apt-get install faketime)")
        env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": skew, "FAKETIME_DONT_FAKE_MONOTONIC": "1",
               "FAKETIME_NO_CACHE": "1"}
    extra = ["--store", store, "--master-key-file", key, *args]
    # Replicas after the first on a shared store join with the first one's server token (its
    # keys, sealed in the store); a replica that would make keys of its own is refused.
    tokens = sorted(glob.glob(os.path.join(workdir, "*", "server.token")))
    if store.startswith("etcd://") and tokens:
        with open(tokens[0]) as f:
            extra += ["--join", f.read().strip()]
    if replicas_supported():
        extra += ["--replica-id", name]
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    return Berth(d, agent=False, env=env, args=extra)
