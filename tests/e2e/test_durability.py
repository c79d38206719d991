"""State survives restarts: a clean SIGTERM, and kill -9 in the middle of a stream of writes
(every write that was acknowledged with a 200 must be there afterwards)."""
import signal
import socket
import threading
import time

import pytest

from conftest import Berth, container, wait_for


def td_key(td):
    return td["family"], td["revision"]


def test_sigterm_exits_zero_promptly_and_state_survives(fresh_dir):
    b = Berth(fresh_dir, agent=False).start()
    ecs = b.client()
    ecs.create_cluster(clusterName="keep", tags=[{"key": "k", "value": "v"}],
                       settings=[{"name": "containerInsights", "value": "enabled"}])
    ecs.create_cluster(clusterName="gone")
    ecs.delete_cluster(cluster="gone")
    for i in range(3):
        ecs.register_task_definition(family="web", containerDefinitions=[container(environment=[{"name": "I", "value": str(i)}])])
    ecs.deregister_task_definition(taskDefinition="web:2")
    ecs.deregister_task_definition(taskDefinition="web:3")
    ecs.delete_task_definitions(taskDefinitions=["web:3"])
    before = {
        "clusters": ecs.describe_clusters(clusters=["keep", "gone", "default"], include=["TAGS", "SETTINGS"])["clusters"],
        "tds": [ecs.describe_task_definition(taskDefinition=f"web:{r}")["taskDefinition"] for r in (1, 2, 3)],
    }

    t0 = time.monotonic()
    b.proc.send_signal(signal.SIGTERM)
    assert b.proc.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 5, "SIGTERM took too long"

    b = Berth(fresh_dir, port=b.port, agent=False).start()
    try:
        ecs = b.client()
        after = {
            "clusters": ecs.describe_clusters(clusters=["keep", "gone", "default"], include=["TAGS", "SETTINGS"])["clusters"],
            "tds": [ecs.describe_task_definition(taskDefinition=f"web:{r}")["taskDefinition"] for r in (1, 2, 3)],
        }
        assert after == before
        assert [c["status"] for c in after["clusters"]] == ["ACTIVE", "INACTIVE", "ACTIVE"]
        assert [t["status"] for t in after["tds"]] == ["ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"]
        assert ecs.describe_task_definition(taskDefinition="web")["taskDefinition"]["revision"] == 1
        assert ecs.register_task_definition(family="web", containerDefinitions=[container()])["taskDefinition"]["revision"] == 4
    finally:
        assert b.stop() == 0


def test_sigterm_is_prompt_even_with_a_stalled_connection(fresh_dir):
    b = Berth(fresh_dir).start()  # with the local agent of `berth up`, as a user runs it
    b.client().create_cluster(clusterName="x")
    s = socket.create_connection(("127.0.0.1", b.port))
    try:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")  # and never the rest
        t0 = time.monotonic()
        b.proc.send_signal(signal.SIGTERM)
        try:
            rc = b.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            b.proc.kill()
            b.proc.wait()
            raise AssertionError("SIGTERM did not stop berth within 5 s")
        assert rc == 0
        assert time.monotonic() - t0 < 5
    finally:
        s.close()


def test_sigint_also_stops_cleanly(fresh_dir):
    b = Berth(fresh_dir, agent=False).start()
    b.client().create_cluster(clusterName="x")
    assert b.stop(sig=signal.SIGINT, timeout=10) == 0


def test_every_acknowledged_write_survives_kill_9(fresh_dir):
    b = Berth(fresh_dir, agent=False).start()
    acked_tds, acked_clusters = [], []
    lock = threading.Lock()
    stop = threading.Event()
    writers = 3

    def writer(w):
        ecs = b.client()
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if i % 4 == 0:
                    name = f"c-{w}-{i}"
                    ecs.create_cluster(clusterName=name)
                    with lock:
                        acked_clusters.append(name)
                else:
                    fam = f"fam-{(w + i) % 3}"
                    td = ecs.register_task_definition(
                        family=fam,
                        containerDefinitions=[container(environment=[{"name": "W", "value": f"{w}-{i}"}])],
                    )["taskDefinition"]
                    with lock:
                        acked_tds.append((fam, td["revision"], f"{w}-{i}"))
            except Exception:  # noqa: BLE001 - the server dies under us: stop writing
                return

    def killer():
        # Strike while the writers are mid-stream, not between requests.
        wait_for(lambda: len(acked_tds) + len(acked_clusters) >= 150, timeout=60, interval=0.005,
                 what="150 acknowledged writes")
        b.kill9()

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(writers)]
    for t in threads:
        t.start()
    k = threading.Thread(target=killer)
    k.start()
    k.join()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert b.proc.returncode == -signal.SIGKILL

    with lock:
        tds, clusters = list(acked_tds), list(acked_clusters)
    b = Berth(fresh_dir, port=b.port, agent=False).start()
    try:
        ecs = b.client()
        for fam, rev, marker in tds:
            td = ecs.describe_task_definition(taskDefinition=f"{fam}:{rev}")["taskDefinition"]
            assert td["status"] == "ACTIVE"
            assert td["containerDefinitions"][0]["environment"] == [{"name": "W", "value": marker}], (fam, rev)
        if clusters:
            for i in range(0, len(clusters), 100):
                d = ecs.describe_clusters(clusters=clusters[i:i + 100])
                assert d["failures"] == []
                assert {c["status"] for c in d["clusters"]} == {"ACTIVE"}
        # Revisions stay dense per family, and the next one continues after everything stored.
        for fam in {f for f, _, _ in tds}:
            arns = []
            token = None
            while True:
                page = ecs.list_task_definitions(familyPrefix=fam, **({"nextToken": token} if token else {}))
                arns += page["taskDefinitionArns"]
                token = page.get("nextToken")
                if not token:
                    break
            revs = [int(a.rsplit(":", 1)[1]) for a in arns]
            assert revs == list(range(1, len(revs) + 1)), fam
            assert max(r for f, r, _ in tds if f == fam) <= len(revs)
            nxt = ecs.register_task_definition(family=fam, containerDefinitions=[container()])["taskDefinition"]
            assert nxt["revision"] == len(revs) + 1
    finally:
        b.stop()


def test_restart_after_kill_9_on_an_idle_server(fresh_dir):
    b = Berth(fresh_dir, agent=False).start()
    ecs = b.client()
    ecs.create_cluster(clusterName="idle")
    b.kill9()
    b = Berth(fresh_dir, port=b.port, agent=False).start()
    try:
        assert b.client().describe_clusters(clusters=["idle"])["clusters"][0]["status"] == "ACTIVE"
    finally:
        b.stop()


def test_data_dir_and_store_files_are_private(fresh_dir):
    """The data dir holds the store, the access key and the secrets key: owner only (issue 14)."""
    import os
    import stat
    data = os.path.join(fresh_dir, "data")
    os.mkdir(data)
    os.chmod(data, 0o755)  # as a umask of 022 leaves it; berth must tighten it
    b = Berth(data, agent=False).start()
    try:
        b.client().list_clusters()
        mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
        assert mode(data) == 0o700, oct(mode(data))
        for name in ("berth.redb", "logs.redb", "secrets.key"):
            path = os.path.join(data, name)
            assert mode(path) == 0o600, (name, oct(mode(path)))
    finally:
        b.stop()
