#!/usr/bin/env python3
"""Service benchmarks for berth (issue: services). Prints figures anyone can rerun:

1. Replacement time: a service task's process (or container) is killed; time until the
   service has a replacement RUNNING. Median and p99 over N kills, for the process driver and
   (if Docker answers) the docker driver. Baseline, in the same run: the time from RunTask to
   RUNNING for a single task (what starting the container itself costs), so the ratio shows
   the control plane's share.
2. Scale-out: a service scaled from 0 to 500 tasks on 20 agents (process driver, a sleeping
   command): time to steady state. Baseline, in the same run: spawning the same 500 sleep
   processes directly from this script.

Usage: .venv/bin/python bench/service_bench.py [--kills 20] [--tasks 500] [--agents 20] [--no-docker]
Needs target/release/berth (or BERTH_BIN) and boto3.
"""
import argparse
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
AK, SK = "AKIABENCHBENCHBENCH0", "benchsecretbenchsecretbenchsecret0000000"


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


class Cluster:
    def __init__(self, agents, driver, cpu=None, memory=None):
        self.dir = tempfile.mkdtemp(prefix="berth-bench-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, BERTH_ROOT_ACCESS_KEY_ID=AK, BERTH_ROOT_SECRET_ACCESS_KEY=SK, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        self.env = env
        self.server = subprocess.Popen(
            [BIN, "up", "--no-agent", "--data-dir", self.dir + "/server", "--listen", f"127.0.0.1:{self.port}",
             "--agent-timeout", "10"],
            stdout=subprocess.PIPE, stderr=open(self.dir + "/server.log", "wb"), text=True, env=env)
        token = None
        for line in self.server.stdout:
            if "--token" in line:
                token = line.split("--token", 1)[1].strip()
                break
        self.ecs = boto3.client("ecs", endpoint_url=self.url, region_name="us-east-1",
                                aws_access_key_id=AK, aws_secret_access_key=SK,
                                config=Config(retries={"max_attempts": 3}))
        self.agents = []
        for i in range(agents):
            args = [BIN, "agent", "--server", self.url, "--cluster", "default", "--token", token,
                    "--state-dir", f"{self.dir}/agent{i}", "--driver", driver, "--poll-wait", "5"]
            if cpu:
                args += ["--cpu", str(cpu), "--memory", str(memory)]
            self.agents.append(subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                                stderr=open(f"{self.dir}/agent{i}.log", "wb"), env=env))
        wait(lambda: len(self.ecs.list_container_instances(cluster="default")["containerInstanceArns"]) == agents,
             60, "agents to register")

    def close(self):
        try:
            for s in self.ecs.list_services(cluster="default")["serviceArns"]:
                self.ecs.delete_service(cluster="default", service=s, force=True)
            wait(lambda: not self.ecs.list_tasks(cluster="default")["taskArns"], 120, "tasks to stop", 0.2)
        except Exception as e:  # noqa: BLE001 - cleanup is best effort
            print("cleanup:", e, file=sys.stderr)
        for p in self.agents + [self.server]:
            p.send_signal(signal.SIGTERM)
        for p in self.agents + [self.server]:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def running(self, service):
        s = self.ecs.describe_services(cluster="default", services=[service])["services"][0]
        return s["runningCount"], s


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def replacement_bench(driver, kills):
    c = Cluster(3, driver)
    try:
        image = "berth-test/busybox:latest"
        c.ecs.register_task_definition(family="victim", containerDefinitions=[
            {"name": "app", "image": image, "memory": 32, "command": ["sleep", "100000"], "stopTimeout": 2}])
        # Baseline: RunTask to RUNNING for one task, the cost of starting the container itself.
        base = []
        for _ in range(5):
            t0 = time.monotonic()
            arn = c.ecs.run_task(cluster="default", taskDefinition="victim")["tasks"][0]["taskArn"]
            wait(lambda: c.ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING",
                 30, "baseline task")
            base.append(time.monotonic() - t0)
            c.ecs.stop_task(cluster="default", task=arn)
        c.ecs.create_service(cluster="default", serviceName="victims", taskDefinition="victim", desiredCount=3)
        wait(lambda: c.running("victims")[0] == 3, 60, "service steady")
        times = []
        for _ in range(kills):
            tasks = c.ecs.describe_tasks(cluster="default", tasks=c.ecs.list_tasks(
                cluster="default", serviceName="victims")["taskArns"])["tasks"]
            # The oldest running task, once it has run past the controller's settle time (1 s):
            # a task killed sooner counts as failing to start, and repeated such kills rightly
            # trigger the crash-loop backoff, which is not what this measures.
            victim = min((t for t in tasks if t["lastStatus"] == "RUNNING"), key=lambda t: t["startedAt"])
            settle = 1.5 - (time.time() - victim["startedAt"].timestamp())
            if settle > 0:
                time.sleep(settle)
            before = {t["taskArn"] for t in tasks}
            rid = victim["containers"][0]["runtimeId"]
            t0 = time.monotonic()
            if driver == "docker":
                subprocess.run(["docker", "kill", rid], check=True, capture_output=True)
            else:
                # The process driver's runtime id names its state dir; its record holds the pid.
                pid = find_pid(c.dir, rid)
                os.killpg(os.getpgid(pid), signal.SIGKILL)

            def replaced():
                ts = c.ecs.describe_tasks(cluster="default", tasks=c.ecs.list_tasks(
                    cluster="default", serviceName="victims")["taskArns"])["tasks"]
                return any(t["taskArn"] not in before and t["lastStatus"] == "RUNNING" for t in ts)
            wait(replaced, 60, "replacement", 0.005)
            times.append(time.monotonic() - t0)
            wait(lambda: c.running("victims")[0] == 3, 60, "steady again")
        med, p99 = statistics.median(times), pct(times, 99)
        bmed = statistics.median(base)
        print(f"replacement[{driver}] kills={kills} median={med*1000:.0f} ms p99={p99*1000:.0f} ms "
              f"max={max(times)*1000:.0f} ms | baseline RunTask->RUNNING median={bmed*1000:.0f} ms "
              f"| ratio median/baseline={med/bmed:.2f}")
    finally:
        c.close()


def find_pid(root, rid):
    import json
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) == rid:
            for f in files:
                if f.endswith(".json"):
                    rec = json.load(open(os.path.join(dirpath, f)))
                    for k in ("pid", "supervisor_pid", "pgid"):
                        if k in rec:
                            return int(rec[k])
    raise SystemExit(f"no pid for {rid}")


def scale_bench(agents, tasks):
    # Baseline: spawn the same sleep processes directly.
    t0 = time.monotonic()
    procs = [subprocess.Popen(["sleep", "1000"]) for _ in range(tasks)]
    base = time.monotonic() - t0
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()
    per_agent = max(1, tasks // agents) + 2
    c = Cluster(agents, "process", cpu=per_agent * 16, memory=per_agent * 16)
    try:
        c.ecs.register_task_definition(family="sleeper", containerDefinitions=[
            {"name": "app", "image": "none", "cpu": 16, "memory": 16, "command": ["sleep", "100000"], "stopTimeout": 2}])
        c.ecs.create_service(cluster="default", serviceName="fleet", taskDefinition="sleeper", desiredCount=0)
        t0 = time.monotonic()
        c.ecs.update_service(cluster="default", service="fleet", desiredCount=tasks)
        first = None
        while True:
            n, s = c.running("fleet")
            if first is None and n > 0:
                first = time.monotonic() - t0
            if n == tasks and len(s["deployments"]) == 1:
                break
            if time.monotonic() - t0 > 300:
                raise SystemExit(f"scale-out stuck at {n}")
            time.sleep(0.05)
        total = time.monotonic() - t0
        per_inst = {}
        arns = []
        tok = None
        while True:
            kw = {"cluster": "default", "serviceName": "fleet", **({"nextToken": tok} if tok else {})}
            r = c.ecs.list_tasks(**kw)
            arns += r["taskArns"]
            tok = r.get("nextToken")
            if not tok:
                break
        for i in range(0, len(arns), 100):
            for t in c.ecs.describe_tasks(cluster="default", tasks=arns[i:i + 100])["tasks"]:
                per_inst[t["containerInstanceArn"]] = per_inst.get(t["containerInstanceArn"], 0) + 1
        print(f"scale-out 0->{tasks} tasks on {agents} agents: steady in {total:.2f} s "
              f"(first RUNNING after {first:.2f} s; {tasks/total:.0f} tasks/s; per-agent min/max "
              f"{min(per_inst.values())}/{max(per_inst.values())}) | baseline: spawning {tasks} sleep "
              f"processes directly {base:.2f} s | ratio={total/base:.1f}")
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--tasks", type=int, default=500)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--only", choices=["replace", "scale"])
    a = ap.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit(f"build first: cargo build --release (missing {BIN})")
    if a.only in (None, "replace"):
        replacement_bench("process", a.kills)
        if not a.no_docker and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
            subprocess.run([os.path.join(ROOT, "scripts/build-test-image.sh")], check=True, capture_output=True)
            replacement_bench("docker", a.kills)
    if a.only in (None, "scale"):
        scale_bench(a.agents, a.tasks)


if __name__ == "__main__":
    main()
