//! The etcd backend against real etcd members: watches resume across an etcd restart without
//! loss or repeats, a compacted history is reported as `Compacted` and recovered from by a
//! re-list, a three-member cluster keeps serving (and watching) with one member down, and
//! records copy between the backends both ways.

mod support {
    pub mod etcd;
}

use std::time::Duration;

use berth_store::{
    snapshot, EtcdStore, EventKind, RedbStore, Revision, Store, StoreError, Txn, TxnResult,
    WatchEvent,
};
use futures::StreamExt;
use support::etcd::Cluster;

/// Every test's whole run is bounded by this.
const TEST_DEADLINE: Duration = Duration::from_secs(120);

fn run<F: std::future::Future<Output = ()>>(f: F) {
    support::etcd::run_within(TEST_DEADLINE, f);
}

async fn put(store: &dyn Store, key: &str, value: &str) -> Revision {
    match store
        .txn(Txn::new().put(key, value.as_bytes().to_vec()))
        .await
        .expect("txn")
    {
        TxnResult::Committed { revision } => revision,
        other => panic!("put {key}: {other:?}"),
    }
}

async fn next(
    watch: &mut berth_store::BoxStream<Result<WatchEvent, StoreError>>,
) -> Result<WatchEvent, StoreError> {
    tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .expect("a watch item within 30s")
        .expect("the watch goes on")
}

#[test]
fn a_watch_resumes_across_an_etcd_restart_without_loss_or_repeats() {
    let Some(mut cluster) = Cluster::start(1) else {
        return;
    };
    let url = cluster.url("resume");
    run(async {
        let store = EtcdStore::connect_url(&url).await.expect("connect");
        let r1 = put(&store, "k/1", "a").await;
        put(&store, "other/1", "x").await;
        let r3 = put(&store, "k/2", "b").await;
        // Resuming from r1 gives exactly what came after it, under the prefix.
        let mut watch = store.watch("k/", r1);
        let e = next(&mut watch).await.expect("event");
        assert_eq!((e.kv.key.as_str(), e.revision()), ("k/2", r3));
        // The member goes away and comes back on the same data: the watch picks up where
        // it was, and a delete carries the deleted record's create_revision.
        cluster.restart(0);
        let r4 = put(&store, "k/3", "c").await;
        let r5 = match store.txn(Txn::new().delete("k/1")).await.expect("delete") {
            TxnResult::Committed { revision } => revision,
            other => panic!("{other:?}"),
        };
        let e = next(&mut watch).await.expect("event");
        assert_eq!((e.kv.key.as_str(), e.revision()), ("k/3", r4));
        let e = next(&mut watch).await.expect("event");
        assert_eq!(e.kind, EventKind::Delete);
        assert_eq!((e.kv.key.as_str(), e.revision()), ("k/1", r5));
        assert_eq!(e.kv.create_revision, r1);
        // Nothing was repeated: the next event is the next write.
        let r6 = put(&store, "k/4", "d").await;
        assert_eq!(next(&mut watch).await.expect("event").revision(), r6);
    });
    drop(cluster);
}

#[test]
fn a_compacted_history_is_reported_and_a_relist_recovers() {
    let Some(cluster) = Cluster::start(1) else {
        return;
    };
    let url = cluster.url("compact");
    run(async move {
        let store = EtcdStore::connect_url(&url).await.expect("connect");
        let first = put(&store, "k/a", "1").await;
        for i in 0..5 {
            put(&store, "k/b", &i.to_string()).await;
        }
        let compact_at = store.revision().await.expect("revision");
        store.compact(compact_at).await.expect("compact");
        // Watching from before the compaction: Compacted first, then the stream ends.
        let mut watch = store.watch("k/", first);
        match next(&mut watch).await {
            Err(StoreError::Compacted { requested, oldest }) => {
                assert_eq!(requested, first);
                assert_eq!(oldest, compact_at);
            }
            other => panic!("expected Compacted, got {other:?}"),
        }
        assert!(
            watch.next().await.is_none(),
            "the stream ends after the error"
        );
        // The contract's recovery: list, then watch from the listed revision.
        let (kvs, at) = store.list("k/").await.expect("list");
        assert_eq!(kvs.len(), 2);
        assert_eq!(kvs[1].value, b"4");
        let mut watch = store.watch("k/", at);
        let r = put(&store, "k/c", "new").await;
        let e = next(&mut watch).await.expect("event");
        assert_eq!((e.kv.key.as_str(), e.revision()), ("k/c", r));
    });
    drop(cluster);
}

#[test]
fn three_members_keep_serving_with_one_down() {
    let Some(mut cluster) = Cluster::start(3) else {
        return;
    };
    let url = cluster.url("three");
    let only_third = format!("etcd://{}/three", cluster.endpoint(2));
    run(async {
        let store = EtcdStore::connect_url(&url).await.expect("connect");
        let r1 = put(&store, "k/1", "a").await;
        let mut watch = store.watch("k/", r1);
        cluster.kill(0);
        // Writes go on (2 of 3 is a quorum), possibly after the client moves to a live
        // member; each is retried until it lands (a failed attempt has an unknown outcome,
        // so the retry is conditional on the key being absent).
        let mut written = Vec::new();
        for i in 2..5 {
            let key = format!("k/{i}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                match store
                    .txn(Txn::new().when_absent(&key).put(&key, b"v".to_vec()))
                    .await
                {
                    Ok(TxnResult::Committed { revision }) => {
                        written.push(revision);
                        break;
                    }
                    Ok(TxnResult::Conflict { .. }) => {
                        let kv = store.get(&key).await.expect("get").expect("written");
                        written.push(kv.mod_revision);
                        break;
                    }
                    Err(e) => {
                        assert!(tokio::time::Instant::now() < deadline, "write {key}: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        let mut seen = Vec::new();
        while seen.len() < written.len() {
            seen.push(next(&mut watch).await.expect("event").revision());
        }
        assert_eq!(seen, written);
        // Another member, asked alone, has every record.
        let other = EtcdStore::connect_url(&only_third).await.expect("connect");
        let (kvs, _) = other.list("k/").await.expect("list");
        let keys: Vec<&str> = kvs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["k/1", "k/2", "k/3", "k/4"]);
    });
    drop(cluster);
}

#[test]
fn records_copy_between_backends_and_snapshots_restore_into_a_fresh_namespace() {
    let Some(cluster) = Cluster::start(1) else {
        return;
    };
    let (url_a, url_b) = (cluster.url("copy-a"), cluster.url("copy-b"));
    let dir = tempfile::tempdir().expect("temp dir");
    let (redb_a, redb_b) = (dir.path().join("a.redb"), dir.path().join("b.redb"));
    run(async move {
        let source = RedbStore::open(&redb_a).expect("redb");
        for i in 0..300 {
            let value = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 50));
            put(&source, &format!("tasks/c/{i:04}"), &value).await;
        }
        put(&source, "clusters/default", "{}").await;
        let (want, _) = source.list("").await.expect("list");
        // redb -> etcd -> redb.
        let etcd = EtcdStore::connect_url(&url_a).await.expect("connect");
        assert_eq!(snapshot::copy(&source, &etcd).await.expect("copy"), 301);
        let (got, _) = etcd.list("").await.expect("list");
        assert!(snapshot::same_records(&want, &got));
        let back = RedbStore::open(&redb_b).expect("redb");
        assert_eq!(snapshot::copy(&etcd, &back).await.expect("copy"), 301);
        let (got, _) = back.list("").await.expect("list");
        assert!(snapshot::same_records(&want, &got));
        // Snapshot of etcd, restored into a fresh namespace.
        let file = snapshot::encode(&snapshot::dump(&etcd).await.expect("dump"));
        let fresh = EtcdStore::connect_url(&url_b).await.expect("connect");
        let records = snapshot::decode(&file).expect("decode");
        assert_eq!(snapshot::load(&fresh, &records).await.expect("load"), 301);
        let (got, _) = fresh.list("").await.expect("list");
        assert!(snapshot::same_records(&want, &got));
        // A restore never merges into a store that has records.
        assert!(matches!(
            snapshot::load(&fresh, &records).await,
            Err(snapshot::SnapshotError::NotEmpty(301))
        ));
    });
    drop(cluster);
}

#[test]
fn a_txn_over_etcds_op_limit_fails_saying_which_flag_to_raise() {
    let Some(cluster) = Cluster::start(1) else {
        return;
    };
    let url = cluster.url("limit");
    run(async move {
        let store = EtcdStore::connect_url(&url).await.expect("connect");
        let mut txn = Txn::new();
        for i in 0..=berth_store::MIN_MAX_TXN_OPS {
            txn = txn.put(format!("k/{i}"), Vec::new());
        }
        match store.txn(txn).await {
            Err(StoreError::Backend(message)) => {
                assert!(message.contains("--max-txn-ops"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Nothing was written.
        assert!(store.list("k/").await.expect("list").0.is_empty());
    });
    drop(cluster);
}

#[test]
fn connecting_where_no_etcd_listens_fails_instead_of_hanging() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    run(async move {
        match EtcdStore::connect_url(&format!("etcd://127.0.0.1:{port}")).await {
            Err(StoreError::Backend(message)) => assert!(message.contains("etcd"), "{message}"),
            other => panic!("expected a connection error, got {other:?}"),
        }
    });
}
