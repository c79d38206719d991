#!/usr/bin/env python3
"""API latency during a leader failover, and the failover time (issue 15's "API p99 during a
leader failover"). Prints figures anyone can rerun.

Starts one etcd member and two `berth server` replicas on it (`a` leads, `b` follows) and a
process-driver agent on `b`. A client thread calls DescribeClusters, DescribeServices and
ListTasks back to back against the follower:
- baseline: for `--window` seconds with no failover;
- failover: for the same time starting at kill -9 of the leader.
It prints p50/p99/max of each window and their ratios (failover / baseline), the time from the
kill to the follower reporting `isLeader` (`/control-plane`), and to the new leader's first
reconcile (a service created right after the kill has its first task, or an event saying why
it has none). With `--rounds N` the
killed replica is restarted as a follower and the roles swap each round.

Usage: .venv/bin/python bench/failover.py [--rounds 3] [--window 8]
Needs BERTH_BIN (default target/release/berth), /usr/bin/etcd and boto3. Every process it
starts is stopped.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests/e2e"))
os.environ.setdefault("BERTH_BIN", os.path.join(ROOT, "target/release/berth"))

import conftest  # noqa: E402
from conftest import Agent, Berth, container, join_token, register, uniq, wait_for  # noqa: E402
from test_etcd import etcd_server  # noqa: E402
from test_replicas import control_plane  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def measure(ecs, service, seconds, errors):
    """Latencies (ms) of Describe/List calls made back to back for `seconds`."""
    out, end = [], time.monotonic() + seconds
    calls = [
        lambda: ecs.describe_clusters(clusters=["default"]),
        lambda: ecs.describe_services(cluster="default", services=[service]),
        lambda: ecs.list_tasks(cluster="default", serviceName=service),
    ]
    i = 0
    while time.monotonic() < end:
        t = time.monotonic()
        try:
            calls[i % len(calls)]()
        except Exception as e:  # counted, not hidden
            errors.append(repr(e))
        out.append((time.monotonic() - t) * 1000)
        i += 1
    return out


def reconciled_once(ecs, service):
    """The service controller acted on `service`: it started a task or said why it could not
    (a service event), whichever the capacity allows."""
    if ecs.list_tasks(cluster="default", serviceName=service)["taskArns"]:
        return True
    [svc] = ecs.describe_services(cluster="default", services=[service])["services"]
    return bool(svc.get("events"))


def summary(xs):
    return f"n={len(xs):5d} p50={pct(xs, 50):7.2f} ms p99={pct(xs, 99):7.2f} ms max={max(xs):7.2f} ms"


def start(d, name, args):
    return Berth(d, args=args + ["--replica-id", name]).start("server")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--window", type=float, default=8.0)
    opts = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="berth-failover-")
    procs, agent = {}, None
    try:
        with etcd_server() as endpoint:
            args = ["--store", f"etcd://{endpoint}/bench", "--agent-timeout", "6"]
            dirs = {n: os.path.join(tmp, n) for n in "ab"}
            for d in dirs.values():
                os.makedirs(d, mode=0o700)
            procs["a"] = start(dirs["a"], "a", args)
            wait_for(lambda: control_plane(procs["a"])["isLeader"], 20, what="a to lead")
            with open(os.path.join(dirs["a"], "server.token")) as f:
                join = ["--join", f.read().strip()]
            procs["b"] = start(dirs["b"], "b", args + join)
            leader, follower = "a", "b"
            ecs = procs["b"].client()
            ecs.create_cluster(clusterName="default")
            td = register(ecs, uniq("fo"), [container(memory=8, command=["sleep", "3600.5"])])
            td_arn = td["taskDefinition"]["taskDefinitionArn"]
            agent = Agent(procs["b"], os.path.join(tmp, "host"), join_token(procs["b"])).start()
            agent.wait_registered(ecs)
            base_svc = uniq("steady")
            ecs.create_service(cluster="default", serviceName=base_svc, taskDefinition=td_arn, desiredCount=1)
            print(f"berth: {os.environ['BERTH_BIN']}  load: {open('/proc/loadavg').read().split()[:3]}")
            for r in range(opts.rounds):
                client = procs[follower].client()
                errors = []
                base = measure(client, base_svc, opts.window, errors)
                got = {}

                def during():
                    got["lat"] = measure(client, base_svc, opts.window, errors)
                t = threading.Thread(target=during)
                killed = time.monotonic()
                t.start()
                procs[leader].kill9()
                wait_for(lambda: control_plane(procs[follower])["isLeader"], 20, interval=0.02, what="a new leader")
                elected = time.monotonic() - killed
                svc = uniq("after")
                procs[follower].client().create_service(
                    cluster="default", serviceName=svc, taskDefinition=td_arn, desiredCount=1)
                wait_for(lambda: reconciled_once(client, svc), 30, interval=0.02,
                         what="the new leader's first reconcile")
                reconciled = time.monotonic() - killed
                t.join()
                fail = got["lat"]
                print(f"round {r + 1}: kill -9 {leader} -> {follower} leads after {elected:.2f} s, "
                      f"first reconcile after {reconciled:.2f} s; errors during failover: {len(errors)}")
                print(f"  baseline (no failover): {summary(base)}")
                print(f"  during failover:        {summary(fail)}")
                print(f"  ratio failover/baseline: p50 {pct(fail, 50) / pct(base, 50):.2f}x  "
                      f"p99 {pct(fail, 99) / pct(base, 99):.2f}x")
                # The killed replica comes back as a follower; roles swap.
                procs[leader] = start(dirs[leader], leader, args)
                leader, follower = follower, leader
                wait_for(lambda: control_plane(procs[follower])["leader"] == leader, 20, what="a follower")
    finally:
        if agent:
            agent.stop()
        for p in procs.values():
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
