"""etcd out of space under berth: etcd's own "full disk", its NOSPACE alarm.

etcd runs with a small `--quota-backend-bytes` (16 MiB); the test fills it with large values
under a key prefix of its own (outside berth's namespace) until etcd refuses a put and raises
the alarm. From then on etcd refuses every write and serves reads, as it does when the disk
under its data dir fills. Recovery is the operator's procedure: delete what filled it,
compact, defragment, disarm the alarm.
"""
import base64
import time
import urllib.error
import urllib.request

from botocore.exceptions import ClientError

from conftest import Berth, EtcdCluster, EtcdError, uniq, wait_for
from test_fault_etcd import TD, default_client, missing

QUOTA = 16 * 1024 * 1024
FILLER = b"faults-filler/"
CHUNK = 512 * 1024


def b64(x):
    return base64.b64encode(x).decode()


def ping(b):
    try:
        with urllib.request.urlopen(b.endpoint + "/ping", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def fill(etcd):
    """Puts CHUNK-sized values until etcd refuses one for space; returns how many it took."""
    for n in range(4 * QUOTA // CHUNK):
        try:
            etcd.call(0, "/v3/kv/put", {"key": b64(FILLER + str(n).encode()), "value": b64(bytes(CHUNK))})
        except EtcdError as e:
            assert "database space exceeded" in str(e), e
            return n
    raise AssertionError(f"etcd took {4 * QUOTA} bytes under a {QUOTA}-byte quota")


def alarms(etcd):
    return [a.get("alarm") for a in etcd.call(0, "/v3/maintenance/alarm", {"action": "GET"}).get("alarms", [])]


def free(etcd):
    """The operator's way back: delete the filler, compact, defragment, disarm NOSPACE."""
    etcd.call(0, "/v3/kv/deleterange", {"key": b64(FILLER), "range_end": b64(FILLER[:-1] + b"0")})
    rev = int(etcd.status(0)["header"]["revision"])
    etcd.call(0, "/v3/kv/compaction", {"revision": rev, "physical": True})
    etcd.call(0, "/v3/maintenance/defragment", {}, timeout=30)
    member = etcd.status(0)["header"]["member_id"]
    etcd.call(0, "/v3/maintenance/alarm", {"action": "DEACTIVATE", "memberID": member, "alarm": "NOSPACE"})


def test_etcd_out_of_space_refuses_writes_clearly_and_recovers(workdir, row):
    r = row("etcd out of space (NOSPACE alarm, 16 MiB quota filled)",
            "writes: ServerException naming the cause, within 10 s; reads work; /ping 503; after "
            "compact+defrag+disarm: writes work, /ping 200, every acknowledged write present, no "
            "refused write applied")
    with EtcdCluster(1, args=["--quota-backend-bytes", str(QUOTA)]) as etcd:
        b = Berth(workdir, agent=False, args=["--store", f"etcd://{etcd.endpoints()}/faults"])
        b.start()
        try:
            ecs = default_client(b)
            once = default_client(b, retries={"max_attempts": 1}, read_timeout=60, connect_timeout=5)
            family = uniq("full")
            acked = [ecs.register_task_definition(family=family, containerDefinitions=TD)[
                "taskDefinition"]["taskDefinitionArn"] for _ in range(5)]
            assert ping(b) == 200

            puts = fill(etcd)
            assert "NOSPACE" in alarms(etcd)

            t0 = time.monotonic()
            try:
                once.register_task_definition(family=family, containerDefinitions=TD)
                raise AssertionError("a write was acknowledged with etcd out of space")
            except ClientError as e:
                code, message = e.response["Error"]["Code"], e.response["Error"]["Message"]
            refused = time.monotonic() - t0
            assert code == "ServerException", (code, message)
            assert "out of space" in message, message
            assert refused < 10, f"the refused write took {refused:.1f}s"

            # Reads keep working.
            assert once.describe_task_definition(taskDefinition=acked[0])["taskDefinition"]["revision"] == 1
            listed = once.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
            assert listed == acked, listed
            wait_for(lambda: ping(b) == 503, 5, interval=0.05, what="/ping to answer 503")

            free(etcd)
            t1 = time.monotonic()
            wait_for(lambda: ping(b) == 200, 10, interval=0.05, what="/ping to answer 200 again")
            healthy_after = time.monotonic() - t1

            def writes():
                acked.append(once.register_task_definition(family=family, containerDefinitions=TD)[
                    "taskDefinition"]["taskDefinitionArn"])
                return True
            wait_for(writes, 10, interval=0.1, what="writes to succeed after the alarm is disarmed")
            lost = missing(ecs, acked)
            assert not lost, lost
            # The refused write left nothing: revisions run 1..6 with no gap or extra.
            listed = ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
            assert listed == acked and acked[-1].endswith(":6"), listed
            r.seen = (f"quota full after {puts} x 512 KiB puts; write refused in {refused * 1000:.0f} ms as "
                      f"{code} ({message[:60]}...); reads ok; /ping 503; after disarm /ping 200 in "
                      f"{healthy_after:.1f}s, writes ok; {len(acked)} acknowledged, 0 missing, 0 extra")
        finally:
            b.stop()
