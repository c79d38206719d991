"""Agents that disappear: one cut off from the server by a partition (a TCP proxy between it
and the server stops passing anything), and every agent killed -9 and started again at once.

Agents are `berth agent` processes on the process driver, each with its own state dir (its
own "host"), reaching the server through its own `Proxy`. Task processes carry a command line
unique to the case; a sampler thread counts them all along, which is how "never more live
copies than maximumPercent allows" is checked from outside berth.
"""
import contextlib
import os
import time

from conftest import (
    AGENT_TIMEOUT, HOST_LOST_TIMEOUT, Berth, Proxy, ProxiedAgent, Sampler, join_token, kill_argv,
    processes_with_argv, register, server_args, sleeper_argv, uniq, wait_for,
)

DESIRED, MAX_PERCENT = 4, 150


@contextlib.contextmanager
def three_hosts(workdir):
    """A server (short agent and host-lost timeouts) and three agents, each behind a proxy."""
    b = Berth(os.path.join(workdir, "server"), agent=False, args=server_args())
    os.makedirs(b.data_dir)
    b.start()
    stack = contextlib.ExitStack()
    agents = []
    try:
        ecs = b.client()
        token = join_token(b)
        for i in range(3):
            p = stack.enter_context(Proxy(b.port))
            a = ProxiedAgent(b, p, os.path.join(workdir, f"host{i}"), token, cpu=1024, memory=1024)
            agents.append(a.start())
        for a in agents:
            a.wait_registered(ecs, timeout=30)
        yield b, ecs, agents
    finally:
        for a in agents:
            a.stop(timeout=10)
        stack.close()
        b.stop()


def service(ecs, argv, name):
    td = register(ecs, uniq("fault"), [{"name": "app", "image": "busybox", "memory": 16, "command": argv}])
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=td["taskDefinition"]["taskDefinitionArn"],
                       desiredCount=DESIRED,
                       deploymentConfiguration={"maximumPercent": MAX_PERCENT, "minimumHealthyPercent": 50})


def running(ecs, name):
    arns = ecs.list_tasks(cluster="default", serviceName=name, desiredStatus="RUNNING")["taskArns"]
    if not arns:
        return []
    return [t for t in ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if t["lastStatus"] == "RUNNING"]


def steady(ecs, name, argv, count=DESIRED):
    def ok():
        ts = running(ecs, name)
        s = ecs.describe_services(cluster="default", services=[name])["services"][0]
        return ts if (len(ts) == count and s["runningCount"] == count and len(s["deployments"]) == 1
                      and len(processes_with_argv(argv)) == count) else None
    return wait_for(ok, 30, interval=0.1, what=f"{count} tasks RUNNING, one process each")


def connected(ecs, arn):
    return ecs.describe_container_instances(cluster="default", containerInstances=[arn])[
        "containerInstances"][0]["agentConnected"]


def test_an_agent_cut_off_keeps_its_tasks_which_are_replaced_then_stopped_on_heal(workdir, row):
    r = row("agent cut off from the server (partition via TCP proxy)",
            f"its tasks keep running; replaced after the host-lost timeout ({HOST_LOST_TIMEOUT}s); "
            f"stale copies stopped on heal; live copies <= {MAX_PERCENT}% of {DESIRED}")
    argv = sleeper_argv()
    limit = DESIRED * MAX_PERCENT // 100
    try:
        with three_hosts(workdir) as (b, ecs, agents):
            name = uniq("cut")
            service(ecs, argv, name)
            tasks = steady(ecs, name, argv)
            per_host = {}
            for t in tasks:
                per_host.setdefault(t["containerInstanceArn"], []).append(t["taskArn"])
            victim = max(agents, key=lambda a: len(per_host.get(a.arn, [])))
            stale = per_host[victim.arn]
            stale_pids = set(processes_with_argv(argv))
            with Sampler(argv) as s:
                victim.proxy.cut()
                t0 = time.monotonic()
                wait_for(lambda: not connected(ecs, victim.arn), AGENT_TIMEOUT + 10, interval=0.05,
                         what="the cut-off instance to show agentConnected=false")
                detected = time.monotonic() - t0
                # Its tasks still run: nothing told the host to stop them.
                assert set(processes_with_argv(argv)) == stale_pids

                def replaced():
                    ts = running(ecs, name)
                    return ts if len(ts) == DESIRED and all(t["containerInstanceArn"] != victim.arn
                                                            for t in ts) else None
                wait_for(replaced, HOST_LOST_TIMEOUT + 20, interval=0.05, what="replacement tasks RUNNING")
                replaced_after = time.monotonic() - t0
                # The stale copies run next to their replacements until the host hears.
                assert len(processes_with_argv(argv)) == DESIRED + len(stale)
                r.seen = (f"lost agent detected in {detected:.1f}s ({detected / AGENT_TIMEOUT:.2f}x agent timeout "
                          f"{AGENT_TIMEOUT}s); {len(stale)} tasks replaced, RUNNING after {replaced_after:.1f}s "
                          f"({replaced_after / HOST_LOST_TIMEOUT:.2f}x host-lost timeout {HOST_LOST_TIMEOUT}s)")
                print(f"\nlost agent: detected {detected:.2f}s, replaced {replaced_after:.2f}s")

                victim.proxy.heal()
                t1 = time.monotonic()
                wait_for(lambda: connected(ecs, victim.arn), 30, interval=0.05, what="the agent to reconnect")
                wait_for(lambda: len(processes_with_argv(argv)) == DESIRED, 30, interval=0.05,
                         what="the stale copies to be stopped")
                healed = time.monotonic() - t1
            for t in ecs.describe_tasks(cluster="default", tasks=stale)["tasks"]:
                assert t["lastStatus"] == "STOPPED", t
            assert len(steady(ecs, name, argv)) == DESIRED
            assert s.max_live <= limit, f"{s.max_live} live copies at once, more than {limit}"
            r.seen += (f"; stale copies stopped {healed:.1f}s after heal; at most {s.max_live} live copies "
                       f"(limit {limit}) over {s.samples} samples")
    finally:
        kill_argv(argv)


def test_every_agent_killed_and_restarted_at_once_adopts_every_task(workdir, row):
    r = row("every agent kill -9'd and restarted at once",
            "no task restarts (same pids, same task ARNs), all adopted, service steady")
    argv = sleeper_argv()
    try:
        with three_hosts(workdir) as (b, ecs, agents):
            name = uniq("restart")
            service(ecs, argv, name)
            before = {t["taskArn"]: t["containerInstanceArn"] for t in steady(ecs, name, argv)}
            pids = set(processes_with_argv(argv))
            with Sampler(argv) as s:
                registered = [a.log().count("registered") for a in agents]
                for a in agents:
                    a.kill9()
                t0 = time.monotonic()
                for a in agents:
                    a.start()
                # Each new agent process has registered again (with its saved credential).
                for a, n in zip(agents, registered):
                    wait_for(lambda a=a, n=n: a.log().count("registered") > n, 30, interval=0.05,
                             what="the restarted agent to register")
                    a.wait_registered(ecs, timeout=30)
                back = time.monotonic() - t0
                tasks = steady(ecs, name, argv)
            after = {t["taskArn"]: t["containerInstanceArn"] for t in tasks}
            assert after == before, "the same tasks on the same instances"
            assert set(processes_with_argv(argv)) == pids, "no task process was restarted"
            assert s.max_live == DESIRED, f"{s.max_live} copies at once"
            stopped = ecs.list_tasks(cluster="default", serviceName=name, desiredStatus="STOPPED")["taskArns"]
            assert not stopped, f"tasks stopped: {stopped}"
            # Adopted, not merely left alone: stopping one task on every host makes each new
            # agent stop a process it did not start.
            one_each = {}
            for arn, host in before.items():
                one_each.setdefault(host, arn)
            for arn in one_each.values():
                ecs.stop_task(cluster="default", task=arn, reason="adoption check")
            wait_for(lambda: all(t["lastStatus"] == "STOPPED" for t in ecs.describe_tasks(
                cluster="default", tasks=list(one_each.values()))["tasks"]), 30, interval=0.05,
                what="every host to stop an adopted task")
            assert len(pids - set(processes_with_argv(argv))) == len(one_each)
            steady(ecs, name, argv)
            r.seen = (f"{len(after)} tasks kept their ARNs and pids; all agents registered again in {back:.1f}s; "
                      f"max {s.max_live} live copies over {s.samples} samples; no task STOPPED; "
                      f"each of {len(one_each)} hosts then stopped an adopted task on StopTask")
    finally:
        kill_argv(argv)

