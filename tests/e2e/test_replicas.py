"""Several `berth server` replicas on one etcd: every replica serves the API, exactly one leads
(runs the controllers), a kill -9 of the leader is followed by a new leader within 5 s, services
keep their tasks and new ones are reconciled, and a leader that was stopped (SIGSTOP) long
enough to lose its lease steps down when it resumes without starting duplicate tasks.

One etcd member (see test_etcd.py), three replicas with their own data dirs sharing the root
key (environment) and the secrets key (the later ones `--join` the first), and one
process-driver agent connected to the third replica."""
import json
import os
import signal
import time
import urllib.request

from conftest import Agent, Berth, container, delete_services_and_wait, join_token, register, uniq, wait_for
from test_etcd import etcd_server

# The leader's lease is 3 s; a new leader must be in place within 5 s of a kill -9.
FAILOVER_LIMIT = 5.0


def control_plane(b):
    with urllib.request.urlopen(b.endpoint + "/control-plane", timeout=2) as r:
        return json.load(r)


def leader_of(replicas):
    """The replica that says it leads, once the others agree on it."""
    views = {b: control_plane(b) for b in replicas}
    leading = [b for b, v in views.items() if v["isLeader"]]
    if len(leading) != 1:
        return None
    name = views[leading[0]]["replica"]
    if all(v["leader"] == name and v["term"] == views[leading[0]]["term"] for v in views.values()):
        return leading[0]
    return None


def service_tasks(ecs, service, status="RUNNING"):
    return sorted(ecs.list_tasks(cluster="default", serviceName=service, desiredStatus=status)["taskArns"])


def running(ecs, service, n):
    arns = service_tasks(ecs, service)
    if len(arns) != n:
        return None
    tasks = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
    return arns if all(t["lastStatus"] == "RUNNING" for t in tasks) else None


def test_replicas_share_the_api_and_fail_over(tmp_path):
    with etcd_server() as endpoint:
        args = ["--store", f"etcd://{endpoint}/replicas", "--agent-timeout", "6"]
        dirs = [str(tmp_path / n) for n in "abc"]
        for d in dirs:
            os.makedirs(d, mode=0o700)
        procs, agent = [], None
        try:
            a = Berth(dirs[0], args=args + ["--replica-id", "a"]).start("server")
            procs.append(a)
            wait_for(lambda: control_plane(a)["isLeader"], 20, what="the first replica to lead")
            # The others join with its server token: one set of keys (the secrets key too).
            with open(os.path.join(dirs[0], "server.token")) as f:
                join = ["--join", f.read().strip()]
            b = Berth(dirs[1], args=args + join + ["--replica-id", "b"]).start("server")
            c = Berth(dirs[2], args=args + join + ["--replica-id", "c"]).start("server")
            procs += [b, c]
            replicas = [a, b, c]
            assert wait_for(lambda: leader_of(replicas), 20, what="one agreed leader") is a
            assert control_plane(b) == {"replica": "b", "leader": "a", "isLeader": False,
                                        "term": control_plane(a)["term"]}
            assert "\nberth_leader 1\n" in a.metrics_text()
            assert "\nberth_leader 0\n" in b.metrics_text()

            # A write on one replica is read on another.
            eb, ec = b.client(), c.client()
            eb.create_cluster(clusterName="default")
            assert [x["clusterName"] for x in ec.describe_clusters(clusters=["default"])["clusters"]] == ["default"]
            td = register(ec, uniq("rep"), [container(memory=16, command=["sleep", "3600.731"])])
            td_arn = td["taskDefinition"]["taskDefinitionArn"]
            assert eb.describe_task_definition(taskDefinition=td_arn)["taskDefinition"]["taskDefinitionArn"] == td_arn

            agent = Agent(c, str(tmp_path / "host"), join_token(c)).start()
            agent.wait_registered(ec)
            before = uniq("before")
            eb.create_service(cluster="default", serviceName=before, taskDefinition=td_arn, desiredCount=2)
            kept = wait_for(lambda: running(ec, before, 2), 60, interval=0.2, what="the first service's tasks")

            # kill -9 the leader (c is held still meanwhile, so b is the one to take over).
            c.proc.send_signal(signal.SIGSTOP)
            try:
                killed_at = time.monotonic()
                a.kill9()
                wait_for(lambda: control_plane(b)["isLeader"], 15, interval=0.05, what="b to lead")
                failover = time.monotonic() - killed_at
            finally:
                c.proc.send_signal(signal.SIGCONT)
            print(f"failover after kill -9: {failover:.2f} s")
            assert failover < FAILOVER_LIMIT, failover
            replicas = [b, c]
            assert wait_for(lambda: leader_of(replicas), 20, what="c to follow b") is b

            after = uniq("after")
            ec.create_service(cluster="default", serviceName=after, taskDefinition=td_arn, desiredCount=1)
            wait_for(lambda: running(eb, after, 1), 60, interval=0.2, what="the new leader to reconcile")
            assert running(eb, before, 2) == kept, "the first service kept its tasks"

            # b stops (SIGSTOP) long enough to lose its lease: c leads; c's controllers scale up.
            term_b = control_plane(b)["term"]
            b.proc.send_signal(signal.SIGSTOP)
            try:
                wait_for(lambda: control_plane(c)["isLeader"], 15, interval=0.05, what="c to lead")
                ec.update_service(cluster="default", service=after, desiredCount=2)
                wait_for(lambda: running(ec, after, 2), 60, interval=0.2, what="c to scale the service")
            finally:
                b.proc.send_signal(signal.SIGCONT)
            # b resumes believing it leads for a moment; it must step down, and its controllers
            # must not have started anything (its writes are fenced at its old term).
            wait_for(lambda: leader_of(replicas) is c, 15, what="b to step down")
            assert control_plane(b)["term"] > term_b
            log = os.path.join(dirs[1], "berth.log")
            wait_for(lambda: "stopping the leader loops" in open(log, errors="replace").read(), 15,
                     what="b to stop its leader loops")
            assert running(ec, before, 2) == kept
            assert len(service_tasks(ec, after)) == 2
            assert service_tasks(ec, before, "STOPPED") == []
            ec.delete_service(cluster="default", service=before, force=True)
            ec.delete_service(cluster="default", service=after, force=True)
            delete_services_and_wait(ec, "default")
        finally:
            if agent:
                agent.stop()
            for p in procs:
                if p.proc and p.proc.poll() is None:
                    p.proc.send_signal(signal.SIGCONT)
                p.stop()
