#!/usr/bin/env python3
"""Auto scaling reaction time (issue: auto scaling). Prints figures anyone can rerun.

A `berth up --no-agent` server with the DEFAULT autoscaling settings (10 s period, scale-out
after 2 ten-second datapoints above target), two process-driver agents, and a service of
CPU-burning tasks (a duty-cycled shell loop, switched on by a file) with a target tracking
policy on ECSServiceAverageCPUUtilization = 50%, min 1, max 4. For each of N rounds:

- load step -> the first scale-out decision (desiredCount rises);
- load step -> the new tasks RUNNING (ECS has no traffic for these tasks; the LB variant of
  this, new tasks serving requests, is printed by tests/e2e/test_autoscaling.py);
- then the load ends and the service is left to scale back in (not timed here beyond a cap).

Baseline, in the same run: the period itself (10 s) and AWS's documented minimum for target
tracking (three one-minute datapoints: 180 s), so the ratio says how much of berth's reaction
is the metric window.

Usage: .venv/bin/python bench/autoscale_bench.py [--rounds 3] [--period 10]
Needs target/release/berth (or BERTH_BIN) and boto3.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tests/e2e"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BERTH_BIN", os.path.join(ROOT, "target/release/berth"))

from conftest import Agent, Berth, join_token, wait_for  # noqa: E402

NS, DIM = "ecs", "ecs:service:DesiredCount"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--period", type=float, default=10.0)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="berth-as-bench-")
    b = Berth(os.path.join(d, "server"), agent=False,
              args=["--agent-timeout", "5", "--autoscale-period", str(args.period),
                    "--autoscale-in-points", "3"])
    os.makedirs(b.data_dir)
    b.start()
    agents = []
    ecs = b.client()
    try:
        aas = b.client("application-autoscaling")
        token = join_token(b, "default")
        agents = [Agent(b, os.path.join(d, f"h{i}"), token, cpu=4096, memory=2048, poll_wait=1).start()
                  for i in range(2)]
        for a in agents:
            a.wait_registered(ecs)
        go = os.path.join(d, "go")
        script = (f"while :; do if [ -f {go} ]; then timeout 0.2 sh -c 'while :; do :; done'; sleep 0.2; "
                  "else sleep 0.2; fi; done")
        td = ecs.register_task_definition(family="burn", containerDefinitions=[{
            "name": "app", "image": "busybox", "cpu": 128, "memory": 16,
            "entryPoint": ["sh", "-c"], "command": [script]}])["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster="default", serviceName="burn", taskDefinition=td, desiredCount=1)
        rid = "service/default/burn"
        aas.register_scalable_target(ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM,
                                     MinCapacity=1, MaxCapacity=4)
        aas.put_scaling_policy(PolicyName="cpu50", ServiceNamespace=NS, ResourceId=rid, ScalableDimension=DIM,
                               PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration={
                                   "TargetValue": 50.0, "ScaleOutCooldown": 0, "ScaleInCooldown": 0,
                                   "PredefinedMetricSpecification": {
                                       "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})

        def svc():
            return ecs.describe_services(cluster="default", services=["burn"])["services"][0]

        decisions, running = [], []
        for r in range(args.rounds):
            wait_for(lambda: svc()["desiredCount"] == 1 and svc()["runningCount"] == 1, 300, interval=0.5,
                     what="one task, idle")
            # Let the idle datapoints settle so the step is clean.
            time.sleep(2 * args.period)
            open(go, "w").close()
            t0 = time.monotonic()
            wait_for(lambda: svc()["desiredCount"] > 1, 180, interval=0.1, what="scale-out")
            decisions.append(time.monotonic() - t0)
            n = svc()["desiredCount"]
            wait_for(lambda: svc()["runningCount"] >= n, 120, interval=0.1, what="new tasks running")
            running.append(time.monotonic() - t0)
            print(f"round {r + 1}: decision {decisions[-1]:.1f} s, new tasks RUNNING {running[-1]:.1f} s "
                  f"(desired {n})", flush=True)
            os.remove(go)
        load = os.getloadavg()[0]
        dm, rm = statistics.median(decisions), statistics.median(running)
        print(f"autoscale reaction (period {args.period:.0f} s, defaults otherwise), {args.rounds} rounds: "
              f"load step -> scale-out decision median {dm:.1f} s (max {max(decisions):.1f}), "
              f"-> new tasks RUNNING median {rm:.1f} s | baseline: one period {args.period:.0f} s "
              f"(ratio {dm / args.period:.2f}); AWS target tracking's 3 one-minute datapoints 180 s "
              f"(ratio {dm / 180:.2f}) | load average {load:.1f}")
    finally:
        # Agents leave their tasks running when they stop (by design): stop the tasks first.
        try:
            ecs.update_service(cluster="default", service="burn", desiredCount=0)
            wait_for(lambda: not ecs.list_tasks(cluster="default")["taskArns"], 60, interval=0.2,
                     what="the tasks to stop")
        except Exception as e:  # noqa: BLE001 - best effort; say so
            print(f"warning: tasks may be left running: {e}", file=sys.stderr)
        for a in agents:
            a.stop()
        b.stop()


if __name__ == "__main__":
    main()
