"""Clock skew between replicas, within SigV4's window: one replica runs under libfaketime with
its wall clock four minutes ahead. Requests signed with the real clock are accepted by every
replica; a request signed outside the 15-minute window is refused with AWS's
`InvalidSignatureException` ("Signature expired ..."), each replica judging by its own clock;
leadership (an etcd lease, timed by etcd) is not affected.

Without the replica work (`--replica-id`, `/control-plane`) the case runs one skewed server
on the embedded store and says so in its row.
"""
import datetime

from conftest import EtcdCluster, control_plane, e2e, replica, replicas_supported, uniq, wait_for

SKEW_MIN = 4


def signed_at(b, minutes):
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
    status, _, body = e2e.raw_call(b.endpoint, "ListClusters", when=when)
    return status, body


def expired(status, body):
    return status == 403 and body.get("__type") == "InvalidSignatureException" and \
        "Signature expired" in body.get("message", "")


def test_clock_skew_within_the_window_is_harmless(workdir, row):
    r = row(f"one replica's clock {SKEW_MIN} min ahead (libfaketime)",
            "real-clock requests accepted by every replica; signed 16 min ago refused by all "
            "(InvalidSignatureException, Signature expired); leadership unchanged")
    multi = replicas_supported()
    etcd = EtcdCluster(1) if multi else None
    servers = []
    try:
        if multi:
            etcd.__enter__()
            store = f"etcd://{etcd.endpoints()}/skew"
            skewed = replica(workdir, "skewed", store, skew=f"+{SKEW_MIN}m").start()
            servers.append(skewed)
            wait_for(lambda: control_plane(skewed)["isLeader"], 20, interval=0.1, what="the skewed replica to lead")
            servers.append(replica(workdir, "real", store).start())
        else:
            servers.append(replica(workdir, "skewed", f"{workdir}/skewed", skew=f"+{SKEW_MIN}m").start())
        before = [control_plane(b) for b in servers]

        # Real-clock boto3 calls, a write through one replica read through every other.
        name = uniq("skew")
        servers[0].client().create_cluster(clusterName=name)
        for b in servers:
            assert b.client().describe_clusters(clusters=[name])["clusters"][0]["status"] == "ACTIVE"
        for b in servers:
            status, body = signed_at(b, -16)
            assert expired(status, body), (status, body)
            status, body = signed_at(b, -1)
            assert status == 200, body
        # Each replica measures the window by its own clock: 13 minutes ago is inside the
        # window of a replica on the real clock, outside the one four minutes ahead.
        status, body = signed_at(servers[0], -13)
        assert expired(status, body), (status, body)
        if multi:
            status, body = signed_at(servers[1], -13)
            assert status == 200, body

        after = [control_plane(b) for b in servers]
        if multi:
            assert all(a["leader"] == "skewed" for a in after), after
            assert [a["term"] for a in after] == [before[0]["term"]] * len(after), (before, after)
            r.seen = (f"2 replicas on etcd (leader: the skewed one, term {after[0]['term']} throughout); "
                      "real-clock calls accepted by both; -16 min refused by both (InvalidSignatureException, "
                      "Signature expired); -13 min refused by the skewed replica only")
        else:
            r.seen = ("ONE replica only (no --replica-id in this build): skewed server accepts real-clock calls, "
                      "refuses -16 min and -13 min with InvalidSignatureException (Signature expired); "
                      "leadership not checked")
    finally:
        for b in servers:
            b.stop()
        if etcd:
            etcd.__exit__(None, None, None)
