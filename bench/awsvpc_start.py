#!/usr/bin/env python3
"""awsvpc task start vs bridge (issue 13, item 4). Prints figures anyone can rerun.

Starts `berth up --no-agent` (its own default VPC block, picked clear of every Docker network
on the daemon) and one `berth agent --driver docker` with its own scope, then launches the same
one-container task (`berth-test/busybox`, a shell that sleeps) with networkMode `bridge` (the
baseline) and `awsvpc` (the task's own pause container, address and security-group chain),
interleaved, in waves of N concurrent tasks (RunTask count up to 10, several calls at once):
for each wave, the start time of each task from its own timestamps (createdAt, written by
RunTask, to startedAt, stamped by the agent once every container runs). Between waves every
task is stopped and STOPPED.

Prints, per wave size: the median and p90 start of bridge and awsvpc tasks, the ratio and the
added milliseconds (target: under 100 ms added); and the largest wave whose awsvpc median stays
under twice the single-task awsvpc median (how many awsvpc tasks one host starts at once before
start time doubles).

Usage: .venv/bin/python bench/awsvpc_start.py [--waves 1,10,30] [--rounds 3]
Needs BERTH_BIN (default target/release/berth), boto3, root (iptables), and the image from
scripts/build-test-image.sh. Every container, network, chain and process it starts is removed.
"""
import argparse
import ipaddress
import json
import os
import random
import shutil
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
AK, SK = "AKIABENCHAWSVPCSTART", "benchsecretbenchsecretbenchsecret0000003"


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
    raise SystemExit(f"timed out waiting for {what}")


def pick_cidr():
    ids = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True).stdout.split()
    taken = []
    for n in json.loads(subprocess.run(["docker", "network", "inspect", *ids], capture_output=True, text=True).stdout or "[]"):
        for c in (n.get("IPAM") or {}).get("Config") or []:
            if c.get("Subnet") and ":" not in c["Subnet"]:
                taken.append(ipaddress.ip_network(c["Subnet"]))
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{random.randint(100, 239)}.0.0/16")
        if not any(net.overlaps(t) for t in taken):
            return str(net)
    raise SystemExit("no free 10.x.0.0/16 block")


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class Setup:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="berth-awsvpc-bench-")
        self.port = free_port()
        self.cidr = pick_cidr()
        print(f"VPC block {self.cidr}", flush=True)
        self.scope = f"bench-awsvpc-{os.getpid()}"
        env = dict(os.environ, BERTH_ROOT_ACCESS_KEY_ID=AK, BERTH_ROOT_SECRET_ACCESS_KEY=SK,
                   BERTH_DEFAULT_VPC_CIDR=self.cidr)
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.server = subprocess.Popen(
            [BIN, "up", "--no-agent", "--data-dir", os.path.join(self.dir, "data"),
             "--listen", f"127.0.0.1:{self.port}"], stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.agent = None
        url = f"http://127.0.0.1:{self.port}"
        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id=AK,
                  aws_secret_access_key=SK, config=Config(retries={"max_attempts": 3}))
        self.ecs = boto3.client("ecs", **kw)
        self.ec2 = boto3.client("ec2", **kw)
        wait(self._up, 30, "the server")
        cli_env = dict(os.environ, AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK,
                       AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL_ECS=url)
        token = subprocess.run([BIN, "join-token", "default"], capture_output=True, text=True,
                               env=cli_env).stdout.strip()
        agent_env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        self.agent = subprocess.Popen(
            [BIN, "agent", "--server", url, "--cluster", "default", "--token", token,
             "--state-dir", os.path.join(self.dir, "agent"), "--driver", "docker",
             "--scope", self.scope, "--poll-wait", "1", "--cpu", "65536", "--memory", "65536"],
            stdout=self.log, stderr=self.log, env=agent_env)
        wait(lambda: self.ecs.list_container_instances(cluster="default")["containerInstanceArns"], 30, "the agent")
        vpc = self.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
        self.subnets = [s["SubnetId"] for s in self.ec2.describe_subnets()["Subnets"]]
        self.group = self.ec2.create_security_group(GroupName="bench", Description="bench", VpcId=vpc["VpcId"])["GroupId"]
        self.ec2.authorize_security_group_ingress(GroupId=self.group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": self.cidr}]}])
        self.task_ids = []

    def _up(self):
        if self.server.poll() is not None:
            raise SystemExit("berth exited; see " + self.log.name)
        try:
            self.ecs.list_clusters()
            return True
        except Exception:
            return False

    def td(self, mode):
        c = {"name": "app", "image": IMAGE, "memory": 16, "stopTimeout": 2,
             "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]}
        return self.ecs.register_task_definition(family=f"bench-{mode}", networkMode=mode,
                                                 containerDefinitions=[c])["taskDefinition"]["taskDefinitionArn"]

    def wave(self, td, mode, n):
        """Launches n tasks at once; returns each task's createdAt -> startedAt, in seconds."""
        arns = []
        kw = {}
        if mode == "awsvpc":
            kw["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": self.subnets, "securityGroups": [self.group]}}
        left = n
        while left:
            r = self.ecs.run_task(cluster="default", taskDefinition=td, count=min(10, left), **kw)
            if r["failures"]:
                raise SystemExit(f"RunTask failures: {r['failures']}")
            arns += [t["taskArn"] for t in r["tasks"]]
            left -= len(r["tasks"])
        self.task_ids += [a.rsplit("/", 1)[1] for a in arns]

        def all_running():
            out = []
            for i in range(0, len(arns), 100):
                for t in self.ecs.describe_tasks(cluster="default", tasks=arns[i:i + 100])["tasks"]:
                    if t["lastStatus"] == "STOPPED":
                        raise SystemExit(f"task stopped: {t.get('stoppedReason')}")
                    if t["lastStatus"] != "RUNNING":
                        return None
                    out.append((t["startedAt"] - t["createdAt"]).total_seconds())
            return out
        starts = wait(all_running, 120, f"{n} {mode} tasks RUNNING", interval=0.1)
        for a in arns:
            self.ecs.stop_task(cluster="default", task=a)

        def all_stopped():
            return all(t["lastStatus"] == "STOPPED" for i in range(0, len(arns), 100)
                       for t in self.ecs.describe_tasks(cluster="default", tasks=arns[i:i + 100])["tasks"])
        wait(all_stopped, 120, "tasks STOPPED", interval=0.2)
        return starts

    def close(self):
        for p in (self.agent, self.server):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=berth.scope={self.scope}"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        subprocess.run(["docker", "network", "rm", "berth-vpc-" + self.cidr.replace("/", "-")], capture_output=True)
        for sub in ipaddress.ip_network(self.cidr).subnets(new_prefix=20):
            subprocess.run(["docker", "network", "rm", "berth-vpc-" + str(sub).replace("/", "-")], capture_output=True)
        listing = subprocess.run(["iptables", "-w", "-S", "BERTH-SG"], capture_output=True, text=True).stdout
        for tid in self.task_ids:
            chain = "BERTH-T-" + tid[:16]
            for line in listing.splitlines():
                if line.startswith("-A ") and line.endswith(chain):
                    subprocess.run(["iptables", "-w", "-D", *line.split()[1:]], capture_output=True)
            subprocess.run(["iptables", "-w", "-F", chain], capture_output=True)
            subprocess.run(["iptables", "-w", "-X", chain], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--waves", default="1,10,30")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    waves = [int(w) for w in args.waves.split(",")]
    s = Setup()
    try:
        tds = {m: s.td(m) for m in ("bridge", "awsvpc")}
        # Warm-up: the pause image is imported and the bridges made once per host.
        for m in tds:
            s.wave(tds[m], m, 1)
        results = {}
        for n in waves:
            got = {"bridge": [], "awsvpc": []}
            for r in range(args.rounds):
                order = ["bridge", "awsvpc"] if r % 2 == 0 else ["awsvpc", "bridge"]
                for m in order:
                    got[m] += s.wave(tds[m], m, n)
            results[n] = got
        print(f"host: {os.cpu_count()} cpus, load {open('/proc/loadavg').read().split()[:3]}")
        print(f"{'tasks':>6} {'bridge p50':>11} {'p90':>7} {'awsvpc p50':>11} {'p90':>7} {'ratio':>6} {'added':>8}")
        single = None
        holds = None
        for n, got in results.items():
            b, a = statistics.median(got["bridge"]), statistics.median(got["awsvpc"])
            single = single or a
            if a < 2 * single:
                holds = n
            print(f"{n:>6} {b*1000:>9.0f}ms {pct(got['bridge'], 90)*1000:>5.0f}ms {a*1000:>9.0f}ms "
                  f"{pct(got['awsvpc'], 90)*1000:>5.0f}ms {a/b:>6.2f} {(a-b)*1000:>6.0f}ms")
        print(f"largest wave with the awsvpc median under twice the single-task median: {holds}")
    finally:
        s.close()


if __name__ == "__main__":
    sys.exit(main())
