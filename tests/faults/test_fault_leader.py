"""Kill -9 the leader during a burst of RunTask / CreateService / UpdateService, with three
replicas on one etcd: every acknowledged write is there after failover and no task is started
twice.

Replica `r0` starts first and leads; two agents poll `r1`; the burst goes round-robin to all
three replicas until `r0` is killed halfway, then to the two left. What was acknowledged is
checked afterwards through a surviving replica: each RunTask made exactly one task (its
`startedBy` is unique), each service exists with its last acknowledged desired count and runs
exactly that many tasks, and there is exactly one live process per RUNNING task.

Needs the replica work (`--replica-id`, `GET /control-plane`); skips with the reason without it.
"""
import itertools
import os
import threading
import time

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from conftest import (
    Agent, EtcdCluster, control_plane, join_token, kill_argv, processes_with_argv, register, replica,
    replicas_supported, server_args, sleeper_argv, uniq, wait_for,
)

WRITERS = 3
# Each writer's operations, in order: 2 services, 4 RunTasks, 4 UpdateServices.
PLAN = ["create", "run", "update", "run", "create", "update", "run", "update", "run", "update"]


def leader_of(servers):
    for b in servers:
        with_cp = control_plane(b)
        if with_cp and with_cp["isLeader"]:
            return with_cp
    return None


def test_kill_the_leader_during_a_burst_of_writes(workdir, row):
    r = row("kill -9 the leader of 3 replicas during a RunTask/CreateService/UpdateService burst",
            "every acknowledged write present after failover; no task started twice")
    if not replicas_supported():
        pytest.skip("this berth has no --replica-id (the leader work): nothing to fail over to")
    argv = sleeper_argv()
    servers, agents = [], []
    with EtcdCluster(1) as etcd:
        store = f"etcd://{etcd.endpoints()}/leader"
        try:
            servers.append(replica(workdir, "r0", store, args=server_args()).start())
            if control_plane(servers[0]) is None:
                pytest.skip("GET /control-plane answers 404: this berth has no leader election")
            wait_for(lambda: control_plane(servers[0])["isLeader"], 20, interval=0.1, what="r0 to lead")
            for name in ("r1", "r2"):
                servers.append(replica(workdir, name, store, args=server_args()).start())
            clients = [b.client() for b in servers]
            ecs = clients[1]
            token = join_token(servers[1])
            for i in range(2):
                a = Agent(servers[1], os.path.join(workdir, f"host{i}"), token, cpu=4096, memory=4096)
                agents.append(a.start())
            for a in agents:
                a.wait_registered(ecs, timeout=30)
            td = register(ecs, uniq("burst"), [{"name": "app", "image": "busybox", "memory": 8,
                                                "command": argv}])["taskDefinition"]["taskDefinitionArn"]

            # Three writers at once, each with its own services (so "the last acknowledged
            # desired count" of a service is well defined); r0 is killed when half the
            # operations have started, so some are in flight to it.
            acked_runs, services, desired, errors, latencies = {}, [], {}, [], []
            alive = [True, True, True]
            lock = threading.Lock()
            started = itertools.count()
            total = WRITERS * len(PLAN)
            killed = threading.Event()
            t_kill = []

            def writer(w):
                mine = []
                for k, kind in enumerate(PLAN):
                    n = next(started)
                    if n == total // 2:
                        servers[0].kill9()
                        alive[0] = False
                        t_kill.append(time.monotonic())
                        killed.set()
                    targets = [c for c, up in zip(clients, alive) if up]
                    c = targets[(n + w) % len(targets)]
                    t0 = time.monotonic()
                    try:
                        if kind == "run":
                            tag = f"burst-{os.getpid()}-{w}-{k}"
                            res = c.run_task(cluster="default", taskDefinition=td, startedBy=tag)
                            if not res["tasks"]:
                                raise AssertionError(f"RunTask placed nothing: {res['failures']}")
                            with lock:
                                acked_runs[tag] = res["tasks"][0]["taskArn"]
                        elif kind == "create":
                            name = uniq(f"svc{w}")
                            with lock:
                                desired[name] = {1}  # if it lands at all, at 1
                            c.create_service(cluster="default", serviceName=name, taskDefinition=td,
                                             desiredCount=1)
                            mine.append(name)
                            with lock:
                                services.append(name)
                        elif mine:
                            name = mine[k % len(mine)]
                            want = 1 + (k % 2)
                            with lock:
                                desired[name].add(want)  # in flight: either may be the outcome
                            c.update_service(cluster="default", service=name, desiredCount=want)
                            with lock:
                                desired[name] = {want}
                    except (ClientError, BotoCoreError) as e:
                        with lock:  # not acknowledged: its outcome is unknown
                            errors.append((kind, w, k, repr(e)[:200]))
                    with lock:
                        latencies.append(time.monotonic() - t0)

            threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert killed.is_set() and not any(t.is_alive() for t in threads)
            t_kill = t_kill[0]

            t_new = wait_for(lambda: leader_of(servers[1:]), 15, interval=0.05, what="a new leader")
            failover = time.monotonic() - t_kill

            # Every acknowledged RunTask made exactly one task; an unacknowledged one at most one.
            for tag in (f"burst-{os.getpid()}-{w}-{k}" for w in range(WRITERS) for k, kind in enumerate(PLAN)
                        if kind == "run"):
                got = (ecs.list_tasks(cluster="default", startedBy=tag, desiredStatus="RUNNING")["taskArns"]
                       + ecs.list_tasks(cluster="default", startedBy=tag, desiredStatus="STOPPED")["taskArns"])
                assert got == [acked_runs[tag]] if tag in acked_runs else len(got) <= 1, (tag, got)
            # Every acknowledged service exists at its last acknowledged desired count; every
            # service (also one whose create was not acknowledged but landed) runs exactly that.
            def settled():
                arns = ecs.list_services(cluster="default")["serviceArns"]
                d = clients[2].describe_services(cluster="default", services=arns)["services"] if arns else []
                by_name = {s["serviceName"]: s for s in d}
                if not set(services) <= set(by_name):
                    raise AssertionError(f"acknowledged services missing: {set(services) - set(by_name)}")
                for name, s in by_name.items():
                    if name in desired:  # every service here was made by this test
                        assert s["desiredCount"] in desired[name], (name, s["desiredCount"], desired[name])
                    n = len(ecs.list_tasks(cluster="default", serviceName=name, desiredStatus="RUNNING")["taskArns"])
                    if not (s["runningCount"] == s["desiredCount"] == n and len(s["deployments"]) == 1):
                        return None
                return d
            wait_for(settled, 60, interval=0.2, what="every service running its desired count")

            # No task started twice: one live process per RUNNING task, nothing else.
            def one_process_each():
                arns = ecs.list_tasks(cluster="default", desiredStatus="RUNNING")["taskArns"]
                ts = [t for k in range(0, len(arns), 100)
                      for t in ecs.describe_tasks(cluster="default", tasks=arns[k:k + 100])["tasks"]]
                return len(ts) if (all(t["lastStatus"] == "RUNNING" for t in ts)
                                   and len(processes_with_argv(argv)) == len(ts)) else None
            want_running = wait_for(one_process_each, 60, interval=0.2, what="one live process per RUNNING task")
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            r.seen = (f"new leader {t_new['leader']} (term {t_new['term']}) {failover:.1f}s after the kill; "
                      f"{len(acked_runs)} RunTasks, {len(services)} CreateServices, "
                      f"{WRITERS * PLAN.count('update') - sum(1 for e in errors if e[0] == 'update')} "
                      f"UpdateServices acknowledged by 3 concurrent writers, all present; {len(errors)} failed "
                      f"(in flight to the killed leader: outcome unknown, checked as such); "
                      f"{want_running} RUNNING tasks, one process each; burst p50 "
                      f"{latencies[len(latencies) // 2] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
        finally:
            for a in agents:
                a.stop(timeout=10)
            kill_argv(argv)
            for b in servers:
                b.stop()
