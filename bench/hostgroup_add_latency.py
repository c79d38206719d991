#!/usr/bin/env python3
"""Host add latency per host provider (issue 13, host groups): SetDesiredCapacity +1 until the
new host's container instance is ACTIVE and connected in the group's cluster.

One `berth up --no-agent` (temporary data dir, free port) with two host groups, one on the
`process` provider (the baseline: `berth agent` as a local child process) and one on the
`docker` provider (a container from berth's own `berth-host` image with cgroup limits and
its own network namespace). Runs alternate between the two groups, so a load change on a
shared machine hits both alike; each run raises the desired capacity by one and polls
ListContainerInstances / DescribeContainerInstances every 20 ms until one more host is ACTIVE
and connected. The docker group's first host (which builds the image) is timed apart.

Prints per provider: median, min and max over the runs, and docker/process as a ratio.

Usage: .venv/bin/python bench/hostgroup_add_latency.py [--runs 5]
Needs target/debug/berth (or BERTH_BIN), boto3, Docker and /bin/busybox (scripts/build-test-image.sh
installs it). Every container (label berth.hostgroup) and process it starts is removed at the end.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from conftest import docker  # noqa: E402
from test_hostgroups import kill_all_under, make_group, start_server  # noqa: E402


def active(ecs, cluster):
    arns = ecs.list_container_instances(cluster=cluster, status="ACTIVE")["containerInstanceArns"]
    if not arns:
        return 0
    cis = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]
    return sum(1 for c in cis if c["agentConnected"])


def add_one(asg, ecs, group, cluster, n):
    t0 = time.monotonic()
    asg.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=n + 1)
    deadline = t0 + 120
    while time.monotonic() < deadline:
        if active(ecs, cluster) >= n + 1:
            return time.monotonic() - t0
        time.sleep(0.02)
    raise RuntimeError(f"{group}: no new host within 120 s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        b = start_server(d)
        groups = {}
        try:
            ecs = b.client()
            asg = None
            for provider in ("process", "docker"):
                name = f"bench-{provider}-{os.getpid()}"
                asg = make_group(b, name, name, 0, provider=provider, max_size=args.runs + 2)
                groups[provider] = name
            # The docker image is built on the first docker launch: timed apart.
            first = add_one(asg, ecs, groups["docker"], groups["docker"], 0)
            counts = {"process": 0, "docker": 1}
            times = {"process": [], "docker": []}
            for i in range(args.runs):
                order = ("process", "docker") if i % 2 == 0 else ("docker", "process")
                for p in order:
                    times[p].append(add_one(asg, ecs, groups[p], groups[p], counts[p]))
                    counts[p] += 1
            print(f"host add latency (SetDesiredCapacity +1 -> container instance ACTIVE), {args.runs} runs each")
            print(f"  docker first host (builds berth-host image): {first * 1000:.0f} ms")
            for p in ("process", "docker"):
                t = times[p]
                print(f"  {p:8s} median {statistics.median(t) * 1000:7.0f} ms  min {min(t) * 1000:7.0f}  max {max(t) * 1000:7.0f}")
            ratio = statistics.median(times["docker"]) / statistics.median(times["process"])
            print(f"  docker / process (baseline) median ratio: {ratio:.2f}x")
        finally:
            for name in groups.values():
                try:
                    b.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
                except Exception:  # noqa: BLE001 - best effort, containers go by label below
                    pass
            b.stop()
            for name in groups.values():
                ids = docker("ps", "-aq", "--filter", f"label=berth.hostgroup={name}", check=False).stdout.split()
                if ids:
                    docker("rm", "-f", *ids, check=False)
            kill_all_under(d)


if __name__ == "__main__":
    main()
