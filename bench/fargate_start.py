#!/usr/bin/env python3
"""FARGATE start latency on berth (issue 13, FARGATE part). Prints figures anyone can rerun.

One `berth up --driver process` (temporary data dir, free port) with its local agent (an EC2
host) and one managed FARGATE host (a `berth agent` with `berth.host-group=berth-fargate-default`,
as the host group controller starts it). Measured, interleaved run by run so a load change on
a shared machine hits both alike:

- FARGATE: `RunTask --launch-type FARGATE` to the first DescribeTasks saying RUNNING, on the
  managed host that is already up;
- baseline: the same task (same image, command, size) with the EC2 launch type on the local
  agent.

Then the PROVISIONING path: a FARGATE task run while no managed host is up waits; the time
from the managed host's registration to the task RUNNING is berth's share of "unplaceable
task -> new host up -> RUNNING" (the host's own start excluded), against the same baseline.

Usage: .venv/bin/python bench/fargate_start.py [--runs 20]
Needs target/release/berth (or BERTH_BIN) and boto3. Every process it starts is stopped.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

import boto3
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BERTH_BIN", os.path.join(ROOT, "target/release/berth"))
AK, SK = "AKIABENCHFARGATE0001", "benchsecretbenchsecretbenchsecret0000002"
NET = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(cond, timeout, what, interval=0.005):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise SystemExit(f"timed out: {what}")


def ms(s):
    return f"{s * 1000:.1f} ms"


def summary(v):
    return f"median {ms(statistics.median(v))}  min {ms(min(v))}  max {ms(max(v))}"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="berth-fargate-bench-")
    port = free_port()
    env = dict(os.environ, BERTH_ROOT_ACCESS_KEY_ID=AK, BERTH_ROOT_SECRET_ACCESS_KEY=SK,
               RUST_LOG="warn")
    server = subprocess.Popen(
        [BIN, "up", "--driver", "process", "--data-dir", os.path.join(d, "server"),
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=open(os.path.join(d, "berth.log"), "wb"), text=True,
        env=env)
    agents = []
    try:
        token = None
        for line in server.stdout:
            m = re.search(r"--token\s+(\S+)", line)
            if m:
                token = m.group(1)
                break
        endpoint = f"http://127.0.0.1:{port}"
        ecs = boto3.client("ecs", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id=AK, aws_secret_access_key=SK,
                           config=Config(retries={"max_attempts": 2}))
        wait(lambda: ecs.list_container_instances()["containerInstanceArns"], 60, "local agent")

        def managed(i):
            state = os.path.join(d, f"managed-{i}")
            os.makedirs(state)
            a = subprocess.Popen(
                [BIN, "agent", "--server", endpoint, "--cluster", "default", "--token", token,
                 "--state-dir", state, "--driver", "process", "--cpu", "32768",
                 "--memory", "131072", "--attribute", "berth.host-group=berth-fargate-default",
                 "--attribute", f"berth.host-id=i-{i:017x}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={k: v for k, v in os.environ.items() if not k.startswith("BERTH_")})
            agents.append(a)
            wait(lambda: os.path.exists(os.path.join(state, "agent.json")), 30, "managed host")
            return a

        td = ecs.register_task_definition(
            family="bench", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
            cpu="256", memory="512",
            containerDefinitions=[{"name": "app", "image": "busybox",
                                   "command": ["sleep", "100000"], "stopTimeout": 2}],
        )["taskDefinition"]["taskDefinitionArn"]

        def running(arn):
            return ecs.describe_tasks(tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING"

        def stop(arn):
            ecs.stop_task(task=arn)
            wait(lambda: ecs.describe_tasks(tasks=[arn])["tasks"][0]["lastStatus"] == "STOPPED",
                 60, "stop", 0.05)

        def once(**kw):
            t0 = time.monotonic()
            arn = ecs.run_task(taskDefinition=td, **kw)["tasks"][0]["taskArn"]
            wait(lambda: running(arn), 60, "RUNNING")
            took = time.monotonic() - t0
            stop(arn)
            return took

        # The PROVISIONING path first, while no managed host is up.
        arn = ecs.run_task(taskDefinition=td, launchType="FARGATE",
                           networkConfiguration=NET)["tasks"][0]["taskArn"]
        assert ecs.describe_tasks(tasks=[arn])["tasks"][0]["lastStatus"] == "PROVISIONING"
        managed(0)
        t_reg = time.monotonic()
        wait(lambda: running(arn), 60, "waiting task RUNNING")
        held = time.monotonic() - t_reg
        stop(arn)

        fargate, ec2 = [], []
        for i in range(args.runs):
            order = [("f", dict(launchType="FARGATE", networkConfiguration=NET)),
                     ("e", dict(launchType="EC2"))]
            for which, kw in (order if i % 2 == 0 else order[::-1]):
                (fargate if which == "f" else ec2).append(once(**kw))
        print(f"FARGATE start, RunTask -> RUNNING, process driver, {args.runs} runs "
              f"(load average {loadavg()})")
        print(f"  FARGATE on a managed host : {summary(fargate)}")
        print(f"  EC2 on the local agent    : {summary(ec2)}   (baseline)")
        print(f"  ratio of medians          : {statistics.median(fargate) / statistics.median(ec2):.2f}x")
        print(f"  PROVISIONING task: managed host registered -> RUNNING: {ms(held)} "
              f"({held / statistics.median(ec2):.1f}x the EC2 start)")
    finally:
        for a in agents:
            a.send_signal(signal.SIGTERM)
            try:
                a.wait(timeout=20)
            except subprocess.TimeoutExpired:
                a.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
