#!/usr/bin/env python3
"""Start latency for berth (issue: tasks/agent). Prints figures anyone can rerun.

For each driver, a fresh `berth up --driver D` (release build, temporary data dir, free port)
runs one task at a time (`sleep 100000`): the time from sending RunTask to the first
DescribeTasks answer that says RUNNING, over N runs (each task is stopped, and STOPPED, before
the next run). DescribeTasks is polled tightly: a new call starts every POLL ms (2 by default)
or as soon as the previous answer arrives when a call takes longer, so the figure includes up
to one call's round trip of polling lag; that round trip is printed too. The tasks' own
timestamps give a second, poll-free figure: createdAt (written by RunTask) to startedAt
(stamped by the agent when every container runs).

Baselines, measured in the same script and interleaved with the berth runs (each run does
berth and the baselines one after the other, alternating which goes first, so a load change
on a shared machine hits both alike):
- docker: `docker run -d berth-test/busybox:latest sleep 100000` until `docker inspect` says
  running (the issue's baseline); also `docker run -d` alone, and the engine API calls the
  docker driver itself makes (create + start + inspect over /var/run/docker.sock, no CLI).
- process: spawning `sleep 100000` from this script (fork + exec), and one DescribeTasks
  round trip (the API floor under any RunTask-to-RUNNING figure).

On a small machine the tight polling itself competes with the Docker engine for CPU (boto3
and the server answering every few ms) and slows the container start it is timing: compare
with `--poll-ms 25` (the task's timestamps still give the start without the poll lag).

Targets (issue): docker within 1.2x of `docker run -d`; process driver median under 20 ms.

Usage: .venv/bin/python bench/start_latency.py [--runs 20] [--poll-ms 2] [--only docker|process]
Needs target/release/berth (or BERTH_BIN), boto3, and for docker the image from
scripts/build-test-image.sh. Every container and process it starts is removed at the end.
"""
import argparse
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BERTH_BIN", os.path.join(ROOT, "target/release/berth"))
IMAGE = "berth-test/busybox:latest"
AK, SK = "AKIABENCHSTARTLATENCY", "benchsecretbenchsecretbenchsecret0000001"
WARMUP = 2


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(cond, timeout, what, interval=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise SystemExit(f"timed out: {what}")


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def ms(s):
    return f"{s * 1000:.1f} ms"


def summary(values):
    return f"median {ms(statistics.median(values))}  p90 {ms(pct(values, 90))}  min {ms(min(values))}"


def kill_leftovers(state_dir):
    """Kills the process groups of process-driver containers still running under `state_dir`
    (only if the pid still belongs to the process the record names: same start time)."""
    for rec in glob.glob(os.path.join(state_dir, "containers", "*", "*.json")):
        try:
            r = json.load(open(rec))
            pid, ticks = int(r["pid"]), int(r["start_ticks"])
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[19]) == ticks:
                os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            pass


class Berth:
    """A `berth up` with its local agent on a temporary data dir."""

    def __init__(self, driver):
        self.driver = driver
        self.dir = tempfile.mkdtemp(prefix="berth-latency-")
        self.port = free_port()
        env = dict(os.environ, BERTH_ROOT_ACCESS_KEY_ID=AK, BERTH_ROOT_SECRET_ACCESS_KEY=SK,
                   RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.proc = subprocess.Popen(
            [BIN, "up", "--driver", driver, "--data-dir", self.dir, "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(self.dir, "berth.log"), "wb"), text=True, env=env)
        for line in self.proc.stdout:
            if "--token" in line:
                break
        self.ecs = boto3.client("ecs", endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1",
                                aws_access_key_id=AK, aws_secret_access_key=SK,
                                config=Config(retries={"max_attempts": 2}))
        wait(lambda: self.ecs.list_container_instances(cluster="default")["containerInstanceArns"], 60,
             "the local agent to register")
        self.arns = []

    def describe(self, arn):
        return self.ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]

    def close(self):
        try:
            for arn in self.arns:
                self.ecs.stop_task(cluster="default", task=arn, reason="benchmark done")
            for arn in self.arns:
                wait(lambda: self.describe(arn)["lastStatus"] == "STOPPED", 60, "tasks to stop", 0.05)
        except Exception as e:  # noqa: BLE001 - cleanup goes on regardless
            print("cleanup:", e, file=sys.stderr)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # Whatever a task left behind: the docker driver labels its containers with the agent
        # dir as scope; the process driver keeps each container's pid in its record.
        agent_dir = os.path.realpath(os.path.join(self.dir, "agent"))
        if shutil.which("docker"):
            ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=berth.scope={agent_dir}"],
                                 capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        kill_leftovers(os.path.join(self.dir, "agent", "process"))
        shutil.rmtree(self.dir, ignore_errors=True)


def berth_once(b, poll, rtts):
    """One RunTask -> RUNNING; returns (seen by polling, RunTask call, createdAt -> startedAt).
    The task is stopped, and STOPPED, before it returns."""
    w0 = time.time()
    t0 = time.perf_counter()
    task = b.ecs.run_task(cluster="default", taskDefinition="latency")["tasks"][0]
    t1 = time.perf_counter()
    arn = task["taskArn"]
    b.arns.append(arn)
    while True:
        start = time.perf_counter()
        t = b.describe(arn)
        end = time.perf_counter()
        rtts.append(end - start)
        if t["lastStatus"] == "RUNNING":
            wseen = w0 + (end - t0)
            break
        if t["lastStatus"] == "STOPPED":
            raise SystemExit(f"task stopped: {t.get('stoppedReason')} {t['containers']}")
        lag = start + poll - time.perf_counter()
        if lag > 0:
            time.sleep(lag)
    b.ecs.stop_task(cluster="default", task=arn, reason="next run")
    wait(lambda: b.describe(arn)["lastStatus"] == "STOPPED", 60, "the task to stop", 0.02)
    b.arns.remove(arn)
    created, pulled, started = (t[k].timestamp() for k in ("createdAt", "pullStartedAt", "startedAt"))
    phases = (created - w0, pulled - created, started - pulled, wseen - started)
    return end - t0, t1 - t0, started - created, phases


def measure(driver, runs, poll, baselines):
    """Interleaves berth runs with the baselines (alternating which goes first), so that load
    changes on a shared machine hit both alike. Returns lists of seconds by name."""
    b = Berth(driver)
    try:
        b.ecs.register_task_definition(family="latency", containerDefinitions=[{
            "name": "app", "image": IMAGE, "memory": 16, "essential": True,
            "command": ["sleep", "100000"], "stopTimeout": 2}])
        out = {k: [] for k in ["total", "call", "stamps", "phases", "rtts", *baselines]}
        for i in range(WARMUP + runs):
            got = {}

            def berth():
                got["total"], got["call"], got["stamps"], got["phases"] = berth_once(b, poll, out["rtts"])

            steps = [berth] + [(lambda k=k, f=f: got.__setitem__(k, f())) for k, f in baselines.items()]
            for step in (steps if i % 2 == 0 else steps[::-1]):
                step()
            if i >= WARMUP:
                for k, v in got.items():
                    out[k].append(v)
        return out
    finally:
        b.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def engine(method, path, body=None):
    conn = UnixHTTPConnection("/var/run/docker.sock")
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status >= 300:
        raise SystemExit(f"docker engine {method} {path}: {resp.status} {data[:200]!r}")
    return json.loads(data) if data else None


LABEL = ("berth-bench-start-latency", str(os.getpid()))


def docker_cli_once(times):
    """`docker run -d` until `docker inspect` says running; records `docker run -d` alone in
    `times`; removes the container."""
    t0 = time.perf_counter()
    cid = subprocess.run(["docker", "run", "-d", "--label", "=".join(LABEL), IMAGE, "sleep", "100000"],
                         check=True, capture_output=True, text=True).stdout.strip()
    t1 = time.perf_counter()
    while subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", cid],
                         capture_output=True, text=True).stdout.strip() != "true":
        pass
    t2 = time.perf_counter()
    subprocess.run(["docker", "rm", "-f", cid], check=True, capture_output=True)
    times.append(t1 - t0)
    return t2 - t0


def engine_once():
    """What the docker driver asks of the engine to start a container: create, start, inspect
    (no CLI)."""
    t0 = time.perf_counter()
    c = engine("POST", "/containers/create", {"Image": IMAGE, "Cmd": ["sleep", "100000"],
                                              "Labels": {LABEL[0]: LABEL[1]}})
    engine("POST", f"/containers/{c['Id']}/start")
    engine("GET", f"/containers/{c['Id']}/json")
    t1 = time.perf_counter()
    engine("DELETE", f"/containers/{c['Id']}?force=true")
    return t1 - t0


def remove_baseline_containers():
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", "label=" + "=".join(LABEL)],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def print_phases(phases):
    """Where the time goes, from the task's timestamps (this host's clock throughout)."""
    names = ["RunTask sent -> createdAt (API, placement)",
             "createdAt -> pullStartedAt (commit, long-poll wake-up, runner)",
             "pullStartedAt -> startedAt (driver start + inspect)",
             "startedAt -> RUNNING seen (reports, commit, poll lag)"]
    for i, name in enumerate(names):
        v = [p[i] for p in phases]
        print(f"      {name:<64} median {ms(statistics.median(v))}  p90 {ms(pct(v, 90))}")


def spawn_once():
    t0 = time.perf_counter()
    p = subprocess.Popen(["sleep", "100000"])
    t1 = time.perf_counter()
    p.kill()
    p.wait()
    return t1 - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--poll-ms", type=float, default=2.0)
    ap.add_argument("--only", choices=["docker", "process"])
    a = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit(f"build first: cargo build --release --bin berth (missing {BIN})")
    poll = a.poll_ms / 1000
    print(f"berth start latency: RunTask -> RUNNING, {a.runs} runs per figure (after {WARMUP} warm-up runs), "
          f"DescribeTasks polled every {a.poll_ms:g} ms (or back to back when a call takes longer)")
    print(f"load average before: {loadavg()}  ({os.cpu_count()} cpus)")
    if a.only in (None, "process"):
        r = measure("process", a.runs, poll, {"spawn": spawn_once})
        med, rtt = statistics.median(r["total"]), statistics.median(r["rtts"])
        print("\nprocess driver")
        print(f"  RunTask -> RUNNING seen        {summary(r['total'])}   target: median < 20 ms -> "
              f"{'met' if med < 0.020 else 'MISSED'}")
        print(f"    of which the RunTask call    {summary(r['call'])}")
        print(f"  createdAt -> startedAt (task)  {summary(r['stamps'])}")
        print_phases(r["phases"])
        print(f"  poll granularity: DescribeTasks round trip median {ms(rtt)}, p90 {ms(pct(r['rtts'], 90))}")
        print(f"  baseline: spawn `sleep` here   {summary(r['spawn'])}   "
              f"ratio (medians) {med / statistics.median(r['spawn']):.1f}x")
        print(f"  baseline: one DescribeTasks    ratio (medians) {med / rtt:.1f}x")
    if a.only in (None, "docker"):
        if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
            print("\ndocker: the engine does not answer; skipped")
        else:
            subprocess.run([os.path.join(ROOT, "scripts/build-test-image.sh")], check=True, capture_output=True)
            run_only = []
            try:
                r = measure("docker", a.runs, poll,
                            {"cli": lambda: docker_cli_once(run_only), "api": engine_once})
            finally:
                remove_baseline_containers()
            run_only = run_only[WARMUP:]
            med, bmed = statistics.median(r["total"]), statistics.median(r["cli"])
            print("\ndocker driver (each run: berth, docker CLI, engine API, alternating the order)")
            print(f"  RunTask -> RUNNING seen        {summary(r['total'])}")
            print(f"    of which the RunTask call    {summary(r['call'])}")
            print(f"  createdAt -> startedAt (task)  {summary(r['stamps'])}")
            print_phases(r["phases"])
            print(f"  poll granularity: DescribeTasks round trip median {ms(statistics.median(r['rtts']))}, "
                  f"p90 {ms(pct(r['rtts'], 90))}")
            print(f"  baseline: docker run -d + inspect running   {summary(r['cli'])}")
            print(f"  baseline: docker run -d alone               {summary(run_only)}")
            print(f"  baseline: engine API create+start+inspect   {summary(r['api'])}")
            print(f"  ratio RunTask->RUNNING / (docker run -d + inspect), medians: {med / bmed:.2f}x   "
                  f"target <= 1.2x -> {'met' if med / bmed <= 1.2 else 'MISSED'}")
            print(f"  ratio RunTask->RUNNING / docker run -d alone, medians:       "
                  f"{med / statistics.median(run_only):.2f}x")
            print(f"  ratio RunTask->RUNNING / engine create+start+inspect, medians: "
                  f"{med / statistics.median(r['api']):.2f}x")
            driver = statistics.median([p[2] for p in r["phases"]])
            print(f"  ratio driver phase (pullStartedAt -> startedAt) / engine calls, medians: "
                  f"{driver / statistics.median(r['api']):.2f}x")
            per_run = [t / c for t, c in zip(r["total"], r["cli"])]
            print(f"  per-run ratio to docker run -d + inspect: median {statistics.median(per_run):.2f}x, "
                  f"p90 {pct(per_run, 90):.2f}x")
    print(f"\nload average after: {loadavg()}")


if __name__ == "__main__":
    main()
