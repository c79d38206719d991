"""berth on an etcd store (`--store etcd://...`): a cluster, a service and its task survive a
restart of berth; `berth admin migrate` copies the state to an embedded store (a fresh data dir)
that berth then serves the same; `berth admin snapshot` / `restore` round-trip it into a fresh
etcd namespace.

Each test starts its own one-member etcd (`/usr/bin/etcd`, Debian's etcd-server) on free ports in
a temp dir and kills it at the end. Without etcd the tests skip, except in CI (CI=true)."""
import contextlib
import os
import shutil
import subprocess
import tempfile
import urllib.request

import pytest

from conftest import Berth, container, delete_services_and_wait, free_port, register, uniq, wait_for, wait_task

ETCD = os.environ.get("BERTH_TEST_ETCD", "/usr/bin/etcd")


@contextlib.contextmanager
def etcd_server():
    """One etcd member; yields its `host:port`."""
    if not os.path.exists(ETCD):
        if os.environ.get("CI") == "true":
            pytest.fail("etcd is not installed (apt-get install etcd-server); CI must run these tests")
        pytest.skip("etcd is not installed (apt-get install etcd-server)")
    with tempfile.TemporaryDirectory() as d:
        client, peer = free_port(), free_port()
        name = f"berth-e2e-{os.getpid()}-{client}"
        log = open(os.path.join(d, "etcd.log"), "wb")
        proc = subprocess.Popen(
            [ETCD, "--name", name, "--data-dir", os.path.join(d, "data"),
             "--listen-client-urls", f"http://127.0.0.1:{client}",
             "--advertise-client-urls", f"http://127.0.0.1:{client}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"{name}=http://127.0.0.1:{peer}",
             "--max-txn-ops", "4096"],  # berth's largest txns need more than etcd's 128
            stdout=subprocess.DEVNULL, stderr=log)
        try:
            def healthy():
                if proc.poll() is not None:
                    raise RuntimeError(f"etcd exited with {proc.returncode}")
                with urllib.request.urlopen(f"http://127.0.0.1:{client}/health", timeout=2) as r:
                    return b'"health":"true"' in r.read()
            wait_for(healthy, 30, interval=0.1, what="etcd to be healthy")
            yield f"127.0.0.1:{client}"
        finally:
            proc.kill()
            proc.wait()
            log.close()


def state(ecs, cluster, service):
    """What must survive: the cluster, the service and its running tasks."""
    c = ecs.describe_clusters(clusters=[cluster])["clusters"]
    s = ecs.describe_services(cluster=cluster, services=[service])["services"]
    tasks = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")["taskArns"]
    return {
        "cluster": [(x["clusterName"], x["status"]) for x in c],
        "service": [(x["serviceName"], x["status"], x["desiredCount"], x["taskDefinition"]) for x in s],
        "tasks": sorted(tasks),
    }


def test_state_on_etcd_survives_a_restart_and_migrates_to_a_data_dir(fresh_dir):
    with etcd_server() as endpoint:
        url = f"etcd://{endpoint}/e2e"
        args = ["--store", url, "--driver", "process"]
        b = Berth(fresh_dir, args=args).start()
        try:
            ecs = b.client()
            cluster, service = "default", uniq("svc")
            td = register(ecs, uniq("etcd"), [container(memory=16, command=["sleep", "3600.417"])])
            td_arn = td["taskDefinition"]["taskDefinitionArn"]
            ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=td_arn, desiredCount=1)

            def one_running():
                arns = ecs.list_tasks(cluster=cluster, serviceName=service)["taskArns"]
                return arns if len(arns) == 1 else None
            [task] = wait_for(one_running, 60, interval=0.2, what="the service's task")
            wait_task(ecs, task, "RUNNING", timeout=60)
            before = state(ecs, cluster, service)
            assert b.stop() == 0
            # Nothing of the state is in the data dir: the embedded store was never written.
            assert not os.path.exists(os.path.join(fresh_dir, "berth.redb"))

            b = Berth(fresh_dir, port=b.port, args=args).start()
            ecs = b.client()
            assert state(ecs, cluster, service) == before
            assert ecs.describe_tasks(cluster=cluster, tasks=[task])["tasks"][0]["lastStatus"] == "RUNNING"
            assert b.stop() == 0

            # etcd -> a fresh data dir's embedded store; berth serves the same state from it.
            with tempfile.TemporaryDirectory() as moved:
                for f in os.listdir(fresh_dir):  # keys and secrets travel with the data dir
                    path = os.path.join(fresh_dir, f)
                    if os.path.isfile(path) and not f.endswith((".redb", ".log", ".snap")):
                        shutil.copy2(path, moved)
                out = b.cli("admin", "migrate", "--from", url, "--to", moved)
                assert "copied" in out.stdout
                # A second copy would merge: refused.
                again = b.cli("admin", "migrate", "--from", url, "--to", moved, check=False)
                assert again.returncode != 0 and "not empty" in again.stderr
                # No local agent there: it would start the service's task a second time.
                m = Berth(moved, agent=False).start()
                try:
                    assert state(m.client(), cluster, service)["service"] == before["service"]
                    assert state(m.client(), cluster, service)["cluster"] == before["cluster"]
                finally:
                    m.stop()

            # Snapshot the etcd store, restore it into a fresh namespace, compare the records.
            snap = os.path.join(fresh_dir, "state.snap")
            b.cli("admin", "snapshot", "--store", url, "--out", snap)
            assert os.stat(snap).st_mode & 0o077 == 0
            b.cli("admin", "restore", "--store", f"etcd://{endpoint}/copy", "--in", snap)
            snap2 = os.path.join(fresh_dir, "copy.snap")
            b.cli("admin", "snapshot", "--store", f"etcd://{endpoint}/copy", "--out", snap2)
            with open(snap, "rb") as f1, open(snap2, "rb") as f2:
                assert f1.read() == f2.read()
            # A damaged file is refused.
            with open(snap, "r+b") as f:
                f.seek(20)
                byte = f.read(1)
                f.seek(20)
                f.write(bytes([byte[0] ^ 1]))
            bad = b.cli("admin", "restore", "--store", f"etcd://{endpoint}/other", "--in", snap, check=False)
            assert bad.returncode != 0 and "checksum" in bad.stderr

            b = Berth(fresh_dir, port=b.port, args=args).start()
            delete_services_and_wait(b.client(), cluster)
        finally:
            b.stop()
