#!/usr/bin/env python3
"""Agent resident memory (issue: tasks/agent). Prints figures anyone can rerun.

Starts `berth up --no-agent` and one `berth agent --driver process` (release build, temporary
dirs, free port), then reads VmRSS (and the peak, VmHWM) from /proc/PID/status of the agent:
- with 0 tasks, once registered and idle;
- with N running tasks (100 by default; `sleep 100000`), once all are RUNNING and the agent
  has gone through a stats round (it samples stats every 10 s).
Baseline, measured in the same script at the same moments: the RSS of the server process
(`berth up --no-agent`: API, store, controllers). Target (issue): agent under 20 MiB with 100.

Usage: .venv/bin/python bench/agent_memory.py [--tasks 100] [--settle 12]
Needs target/release/berth (or BERTH_BIN) and boto3. Every process it starts is stopped.
"""
import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BERTH_BIN", os.path.join(ROOT, "target/release/berth"))
AK, SK = "AKIABENCHAGENTMEMORY", "benchsecretbenchsecretbenchsecret0000002"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(cond, timeout, what, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise SystemExit(f"timed out: {what}")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit(f"no {field} for pid {pid}")


def cpu_seconds(pid):
    """utime + stime of `pid`, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


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


def list_all(ecs, **kw):
    arns, tok = [], None
    while True:
        r = ecs.list_tasks(cluster="default", **kw, **({"nextToken": tok} if tok else {}))
        arns += r["taskArns"]
        tok = r.get("nextToken")
        if not tok:
            return arns


def statuses(ecs, arns):
    out = []
    for i in range(0, len(arns), 100):
        out += [t["lastStatus"] for t in ecs.describe_tasks(cluster="default", tasks=arns[i:i + 100])["tasks"]]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--settle", type=float, default=12.0,
                    help="seconds to wait after a state is reached before reading RSS (covers a stats round)")
    a = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit(f"build first: cargo build --release --bin berth (missing {BIN})")
    d = tempfile.mkdtemp(prefix="berth-agent-memory-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, BERTH_ROOT_ACCESS_KEY_ID=AK, BERTH_ROOT_SECRET_ACCESS_KEY=SK,
               RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    server = subprocess.Popen([BIN, "up", "--no-agent", "--data-dir", d + "/server", "--listen", f"127.0.0.1:{port}"],
                              stdout=subprocess.PIPE, stderr=open(d + "/server.log", "wb"), text=True, env=env)
    agent = None
    ecs = None
    print(f"berth agent memory: one `berth agent --driver process`, {a.tasks} tasks of `sleep 100000`")
    print(f"load average before: {loadavg()}  ({os.cpu_count()} cpus)")
    try:
        token = None
        for line in server.stdout:
            if "--token" in line:
                token = line.split("--token", 1)[1].strip()
                break
        if not token:
            raise SystemExit("berth up printed no join token")
        cap = max(a.tasks, 1) * 16 + 1024
        agent = subprocess.Popen(
            [BIN, "agent", "--server", url, "--cluster", "default", "--token", token, "--state-dir", d + "/agent",
             "--driver", "process", "--cpu", str(cap), "--memory", str(cap)],
            stdout=subprocess.DEVNULL, stderr=open(d + "/agent.log", "wb"), env=env)
        ecs = boto3.client("ecs", endpoint_url=url, region_name="us-east-1", aws_access_key_id=AK,
                           aws_secret_access_key=SK, config=Config(retries={"max_attempts": 3}))
        wait(lambda: ecs.list_container_instances(cluster="default")["containerInstanceArns"], 60,
             "the agent to register")
        ecs.register_task_definition(family="idle", containerDefinitions=[{
            "name": "app", "image": "none", "cpu": 8, "memory": 16, "command": ["sleep", "100000"],
            "stopTimeout": 2}])
        time.sleep(a.settle)
        rows = [("0 tasks", status_kib(agent.pid, "VmRSS"), status_kib(server.pid, "VmRSS"))]

        left = a.tasks
        while left > 0:
            n = min(10, left)
            r = ecs.run_task(cluster="default", taskDefinition="idle", count=n)
            if r.get("failures"):
                raise SystemExit(f"RunTask failures: {r['failures']}")
            left -= n
        arns = list_all(ecs)
        wait(lambda: statuses(ecs, arns).count("RUNNING") == a.tasks, 120, f"{a.tasks} tasks to run", 0.5)
        cpu0 = (cpu_seconds(agent.pid), cpu_seconds(server.pid), time.monotonic())
        time.sleep(a.settle)
        cpu1 = (cpu_seconds(agent.pid), cpu_seconds(server.pid), time.monotonic())
        running = statuses(ecs, arns).count("RUNNING")
        rows.append((f"{a.tasks} tasks", status_kib(agent.pid, "VmRSS"), status_kib(server.pid, "VmRSS")))
        agent_hwm, server_hwm = status_kib(agent.pid, "VmHWM"), status_kib(server.pid, "VmHWM")

        print(f"\n{'':<10} {'agent VmRSS':>12} {'server VmRSS (baseline)':>24} {'agent / server':>15}")
        for name, ag, sv in rows:
            print(f"{name:<10} {mib(ag):>12} {mib(sv):>24} {ag / sv:>14.2f}x")
        (_, a0, s0), (_, a1, s1) = rows
        print(f"{'peak':<10} {mib(agent_hwm):>12} {mib(server_hwm):>24}   (VmHWM)")
        print(f"\nper task: agent +{(a1 - a0) / max(a.tasks, 1):.1f} KiB, server +{(s1 - s0) / max(a.tasks, 1):.1f} KiB "
              f"({running}/{a.tasks} RUNNING when read)")
        span = cpu1[2] - cpu0[2]
        print(f"CPU while {a.tasks} tasks run (over {span:.0f} s, stats and health rounds included): "
              f"agent {(cpu1[0] - cpu0[0]) / span * 100:.1f}% of a core, server {(cpu1[1] - cpu0[1]) / span * 100:.1f}%")
        print(f"target: agent under 20 MiB with {a.tasks} tasks -> {'met' if a1 < 20 * 1024 else 'MISSED'}")
    finally:
        if ecs is not None:
            try:
                arns = list_all(ecs)
                for arn in arns:
                    ecs.stop_task(cluster="default", task=arn, reason="benchmark done")
                wait(lambda: all(s == "STOPPED" for s in statuses(ecs, arns)), 120, "tasks to stop", 0.5)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - cleanup goes on regardless
                print("cleanup:", e, file=sys.stderr)
        for p in (agent, server):
            if p is not None:
                p.send_signal(signal.SIGTERM)
        for p in (agent, server):
            if p is not None:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        kill_leftovers(d + "/agent/process")
        shutil.rmtree(d, ignore_errors=True)
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main()
