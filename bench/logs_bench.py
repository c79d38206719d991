#!/usr/bin/env python3
"""awslogs throughput (issue 12). Prints figures anyone can rerun, with ratios.

Starts `berth up --no-agent` and one `berth agent --driver docker` (release build, temporary
dirs, free port), registers a task whose container prints N numbered lines as fast as it can
(busybox `seq`) with `logDriver: awslogs`, and measures:
- lines/s shipped: from the task's RUNNING until GetLogEvents (paged with nextForwardToken)
  holds all N lines;
- baseline, in the same run and on the same container: lines/s of `docker logs` reading the
  same N lines back from Docker (what `berth logs` and the shipper's tail read);
- the agent's CPU seconds and peak RSS (VmHWM, /proc) while it shipped, vs idle before.

Usage: .venv/bin/python bench/logs_bench.py [--lines 200000]
Needs target/release/berth (or BERTH_BIN), Docker, the test image
(scripts/build-test-image.sh) and boto3. Every process and container it starts is removed.
"""
import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import boto3
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BERTH_BIN", os.path.join(ROOT, "target/release/berth"))
AK, SK = "AKIABENCHLOGSTHRUPUT", "benchsecretbenchsecretbenchsecret0000012"
IMAGE = "berth-test/busybox:latest"


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
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def count_events(logs, group, stream):
    n, token = 0, None
    while True:
        kw = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kw["nextToken"] = token
        r = logs.get_log_events(**kw)
        n += len(r["events"])
        if r["nextForwardToken"] == token:
            return n
        token = r["nextForwardToken"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lines", type=int, default=200_000)
    a = p.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: cargo build --release")
    d = tempfile.mkdtemp(prefix="berth-logs-bench-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    scope = "bench-" + uuid.uuid4().hex[:8]
    env = dict(os.environ, BERTH_ROOT_ACCESS_KEY_ID=AK, BERTH_ROOT_SECRET_ACCESS_KEY=SK,
               RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    server = subprocess.Popen([BIN, "up", "--no-agent", "--data-dir", d + "/server", "--listen", f"127.0.0.1:{port}"],
                              stdout=subprocess.PIPE, stderr=open(d + "/server.log", "wb"), text=True, env=env)
    agent = None
    print(f"awslogs throughput: one container printing {a.lines} lines as fast as it can, docker driver")
    print(f"load average before: {loadavg()}  ({os.cpu_count()} cpus)")
    try:
        token = None
        for line in server.stdout:
            if "--token" in line:
                token = line.split("--token", 1)[1].strip()
                break
        if not token:
            raise SystemExit("berth up printed no join token")
        agent = subprocess.Popen(
            [BIN, "agent", "--server", url, "--cluster", "default", "--token", token, "--state-dir", d + "/agent",
             "--driver", "docker", "--scope", scope],
            stdout=subprocess.DEVNULL, stderr=open(d + "/agent.log", "wb"), env=env)
        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id=AK, aws_secret_access_key=SK,
                  config=Config(retries={"max_attempts": 3}))
        ecs, logs = boto3.client("ecs", **kw), boto3.client("logs", **kw)
        wait(lambda: ecs.list_container_instances(cluster="default")["containerInstanceArns"], 60,
             "the agent to register")
        group = "/bench/" + scope
        ecs.register_task_definition(family="printer", containerDefinitions=[{
            "name": "app", "image": IMAGE, "memory": 64, "essential": True,
            "command": ["sh", "-c", f"seq 1 {a.lines}; sleep 3600"],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": group, "awslogs-stream-prefix": "p", "awslogs-create-group": "true"}}}])
        time.sleep(1)
        idle_cpu0 = cpu_seconds(agent.pid)
        time.sleep(2)
        idle_cpu = (cpu_seconds(agent.pid) - idle_cpu0) / 2
        idle_rss = status_kib(agent.pid, "VmRSS")
        cpu0 = cpu_seconds(agent.pid)
        t0 = time.monotonic()
        task = ecs.run_task(cluster="default", taskDefinition="printer")["tasks"][0]
        arn = task["taskArn"]
        stream = f"p/app/{arn.rsplit('/', 1)[1]}"
        wait(lambda: ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING",
             60, "RUNNING")
        wait(lambda: count_events(logs, group, stream) >= a.lines, 600, "every line in CloudWatch Logs", 0.5)
        shipped_s = time.monotonic() - t0
        cpu = cpu_seconds(agent.pid) - cpu0
        peak = status_kib(agent.pid, "VmHWM")
        rid = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]["containers"][0]["runtimeId"]
        t1 = time.monotonic()
        out = subprocess.run(["docker", "logs", rid], capture_output=True, text=True, timeout=600).stdout
        docker_s = time.monotonic() - t1
        assert out.count("\n") >= a.lines
        ship_rate, docker_rate = a.lines / shipped_s, a.lines / docker_s
        print(f"shipped to GetLogEvents:   {ship_rate:12,.0f} lines/s  ({shipped_s:.2f} s, RunTask to the last line)")
        print(f"`docker logs` (baseline): {docker_rate:12,.0f} lines/s  ({docker_s:.2f} s)")
        print(f"ratio shipped / docker logs: {ship_rate / docker_rate:.3f}")
        print(f"agent CPU while shipping: {cpu:.2f} s ({cpu / shipped_s * 100:.0f}% of one core; idle "
              f"{idle_cpu * 100:.1f}%), {cpu / a.lines * 1e6:.1f} us/line")
        print(f"agent RSS: idle {idle_rss / 1024:.1f} MiB, peak while shipping {peak / 1024:.1f} MiB "
              f"(ratio {peak / max(idle_rss, 1):.2f})")
        print(f"load average after: {loadavg()}")
        ecs.stop_task(cluster="default", task=arn)
    finally:
        for proc in (agent, server):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=berth.scope={scope}"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
