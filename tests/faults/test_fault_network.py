"""An agent cut off on a real network: three agents run in Docker containers on a Docker
network this case creates, and one is taken off it with `docker network disconnect` (its
interface goes; packets to and from it are dropped) and put back with `docker network connect`.

The server listens on loopback; the containers reach it through a forwarder (the suite's
`Proxy`, never cut) on the network's gateway address, as the `docker` host provider does.
Task processes run inside the containers (process driver) but are visible in this machine's
`/proc`, so the sampler counts live copies across all three hosts from outside berth.
"""
import contextlib
import os
import time

from conftest import (
    AGENT_TIMEOUT, HOST_LOST_TIMEOUT, Berth, DockerAgent, Proxy, Sampler, docker_network, join_token, kill_argv,
    need_docker, processes_with_argv, server_args, sleeper_argv, uniq, wait_for,
)
from test_fault_agents import DESIRED, MAX_PERCENT, connected, running, service, steady


@contextlib.contextmanager
def three_container_hosts(workdir):
    """A server and three agents in containers on a fresh Docker network."""
    need_docker()
    case = uniq("net")
    b = Berth(os.path.join(workdir, "server"), agent=False, args=server_args())
    os.makedirs(b.data_dir)
    b.start()
    try:
        with docker_network(case) as (net, gw), Proxy(b.port, listen_host=gw) as fwd:
            ecs = b.client()
            token = join_token(b)
            agents = [DockerAgent(b, f"http://{gw}:{fwd.port}", net, case, os.path.join(workdir, f"host{i}"), token,
                                  cpu=1024, memory=1024).start() for i in range(3)]
            for a in agents:
                a.wait_registered(ecs, timeout=60)
            yield b, ecs, agents
    finally:
        b.stop()


def test_an_agent_off_its_docker_network_keeps_its_tasks_which_are_replaced_then_stopped(workdir, row):
    r = row("agent container disconnected from its Docker network",
            f"its tasks keep running; replaced after the host-lost timeout ({HOST_LOST_TIMEOUT}s); "
            f"stale copies stopped on reconnect; live copies <= {MAX_PERCENT}% of {DESIRED}")
    argv = sleeper_argv()
    limit = DESIRED * MAX_PERCENT // 100
    try:
        with three_container_hosts(workdir) as (b, ecs, agents):
            name = uniq("netcut")
            service(ecs, argv, name)
            tasks = steady(ecs, name, argv)
            per_host = {}
            for t in tasks:
                per_host.setdefault(t["containerInstanceArn"], []).append(t["taskArn"])
            victim = max(agents, key=lambda a: len(per_host.get(a.arn, [])))
            stale = per_host[victim.arn]
            stale_pids = set(processes_with_argv(argv))
            with Sampler(argv) as s:
                victim.disconnect()
                t0 = time.monotonic()
                wait_for(lambda: not connected(ecs, victim.arn), AGENT_TIMEOUT + 10, interval=0.05,
                         what="the disconnected instance to show agentConnected=false")
                detected = time.monotonic() - t0
                assert set(processes_with_argv(argv)) == stale_pids, "tasks kept running"

                def replaced():
                    ts = running(ecs, name)
                    return ts if len(ts) == DESIRED and all(t["containerInstanceArn"] != victim.arn
                                                            for t in ts) else None
                wait_for(replaced, HOST_LOST_TIMEOUT + 20, interval=0.05, what="replacement tasks RUNNING")
                replaced_after = time.monotonic() - t0
                assert len(processes_with_argv(argv)) == DESIRED + len(stale)
                r.seen = (f"lost agent detected in {detected:.1f}s; {len(stale)} tasks replaced, RUNNING after "
                          f"{replaced_after:.1f}s ({replaced_after / HOST_LOST_TIMEOUT:.2f}x host-lost timeout)")

                victim.connect()
                t1 = time.monotonic()
                wait_for(lambda: connected(ecs, victim.arn), 60, interval=0.05, what="the agent to reconnect")
                reconnected = time.monotonic() - t1
                wait_for(lambda: len(processes_with_argv(argv)) == DESIRED, 30, interval=0.05,
                         what="the stale copies to be stopped")
                healed = time.monotonic() - t1
            for t in ecs.describe_tasks(cluster="default", tasks=stale)["tasks"]:
                assert t["lastStatus"] == "STOPPED", t
            assert len(steady(ecs, name, argv)) == DESIRED
            assert s.max_live <= limit, f"{s.max_live} live copies at once, more than {limit}"
            r.seen += (f"; reconnected {reconnected:.1f}s and stale copies stopped {healed:.1f}s after "
                       f"`docker network connect`; at most {s.max_live} live copies (limit {limit}) over "
                       f"{s.samples} samples")
    finally:
        kill_argv(argv)
