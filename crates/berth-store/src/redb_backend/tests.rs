use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::{RedbStore, BROADCAST_CAPACITY};
use crate::{
    EventKind, KeyValue, Revision, Store, StoreError, StoreExt, Txn, TxnResult, WatchEvent,
};

type Watch = crate::BoxStream<Result<WatchEvent, StoreError>>;

fn mem() -> RedbStore {
    RedbStore::in_memory().expect("in-memory store")
}

async fn commit(store: &dyn Store, txn: Txn) -> Revision {
    match store.txn(txn).await.expect("txn") {
        TxnResult::Committed { revision } => revision,
        TxnResult::Conflict { key } => panic!("unexpected conflict on {key}"),
    }
}

async fn put(store: &dyn Store, key: &str, value: &str) -> Revision {
    commit(store, Txn::new().put(key, value.as_bytes().to_vec())).await
}

async fn next(watch: &mut Watch) -> Result<WatchEvent, StoreError> {
    tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("watch event within 10s")
        .expect("watch stream ended")
}

async fn take(watch: &mut Watch, n: usize) -> Vec<WatchEvent> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next(watch).await.expect("watch event"));
    }
    out
}

async fn assert_idle(watch: &mut Watch) {
    let more = tokio::time::timeout(Duration::from_millis(50), watch.next()).await;
    assert!(more.is_err(), "unexpected extra watch item: {more:?}");
}

fn summary(events: &[WatchEvent]) -> Vec<(EventKind, &str, &[u8], Revision)> {
    events
        .iter()
        .map(|e| {
            (
                e.kind.clone(),
                e.kv.key.as_str(),
                e.kv.value.as_slice(),
                e.kv.mod_revision,
            )
        })
        .collect()
}

fn keys(kvs: &[KeyValue]) -> Vec<&str> {
    kvs.iter().map(|kv| kv.key.as_str()).collect()
}

#[tokio::test]
async fn put_get_delete_list() {
    let store = mem();
    assert_eq!(store.get("clusters/a").await.expect("get"), None);
    assert_eq!(store.list("").await.expect("list"), (vec![], 0));

    let r1 = put(&store, "clusters/a", "A").await;
    let kv = store
        .get("clusters/a")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        kv,
        KeyValue {
            key: "clusters/a".into(),
            value: b"A".to_vec(),
            create_revision: r1,
            mod_revision: r1
        }
    );

    for key in [
        "clusters/b",
        "clustersX",
        "clusters/",
        "tasks/a/1",
        "clusters/a/x",
        "c",
    ] {
        put(&store, key, key).await;
    }
    let (kvs, rev) = store.list("clusters/").await.expect("list");
    assert_eq!(
        keys(&kvs),
        ["clusters/", "clusters/a", "clusters/a/x", "clusters/b"]
    );
    assert_eq!(rev, 7);
    let (all, _) = store.list("").await.expect("list");
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].key < w[1].key), "sorted by key");
    assert_eq!(store.list("nope").await.expect("list").0, vec![]);

    let r = commit(&store, Txn::new().delete("clusters/a")).await;
    assert_eq!(r, 8);
    assert_eq!(store.get("clusters/a").await.expect("get"), None);
    assert_eq!(
        keys(&store.list("clusters/").await.expect("list").0),
        ["clusters/", "clusters/a/x", "clusters/b"]
    );
}

#[tokio::test]
async fn compare_and_swap() {
    let store = mem();
    let r1 = commit(&store, Txn::new().when_absent("k").put("k", b"1".to_vec())).await;
    // when_absent on an existing key conflicts and writes nothing.
    let res = store
        .txn(
            Txn::new()
                .when_absent("k")
                .put("k", b"x".to_vec())
                .put("other", b"x".to_vec()),
        )
        .await
        .expect("txn");
    assert_eq!(res, TxnResult::Conflict { key: "k".into() });
    assert_eq!(store.get("other").await.expect("get"), None);

    // Stale revision conflicts; the first failing compare is reported.
    let stale = Txn::new()
        .when_absent("free")
        .when_mod_revision("k", r1 + 5)
        .when_absent("k")
        .put("k", b"2".to_vec());
    assert_eq!(
        store.txn(stale).await.expect("txn"),
        TxnResult::Conflict { key: "k".into() }
    );
    assert_eq!(
        store.revision().await.expect("revision"),
        r1,
        "conflicts do not bump"
    );

    // The right revision succeeds.
    let r2 = commit(
        &store,
        Txn::new()
            .when_mod_revision("k", r1)
            .put("k", b"2".to_vec()),
    )
    .await;
    assert_eq!(r2, r1 + 1);
    // ... exactly once.
    let again = store
        .txn(
            Txn::new()
                .when_mod_revision("k", r1)
                .put("k", b"3".to_vec()),
        )
        .await
        .expect("txn");
    assert_eq!(again, TxnResult::Conflict { key: "k".into() });
    assert_eq!(store.get("k").await.expect("get").expect("k").value, b"2");

    // Compare-and-delete.
    let r3 = commit(&store, Txn::new().when_mod_revision("k", r2).delete("k")).await;
    assert_eq!(r3, r2 + 1);
    assert_eq!(store.get("k").await.expect("get"), None);
}

#[tokio::test]
async fn create_revision_stays_mod_revision_moves() {
    let store = mem();
    let r1 = put(&store, "k", "a").await;
    put(&store, "unrelated", "x").await;
    let r3 = put(&store, "k", "b").await;
    let kv = store.get("k").await.expect("get").expect("k");
    assert_eq!((kv.create_revision, kv.mod_revision), (r1, r3));

    commit(&store, Txn::new().delete("k")).await;
    let r5 = put(&store, "k", "c").await;
    let kv = store.get("k").await.expect("get").expect("k");
    assert_eq!(
        (kv.create_revision, kv.mod_revision),
        (r5, r5),
        "recreated key starts over"
    );

    // Several ops in one txn share its revision; put after delete recreates.
    let r6 = commit(
        &store,
        Txn::new()
            .put("a", b"1".to_vec())
            .put("a", b"2".to_vec())
            .delete("k")
            .put("k", b"d".to_vec()),
    )
    .await;
    assert_eq!(r6, r5 + 1);
    let a = store.get("a").await.expect("get").expect("a");
    assert_eq!(
        (a.value.as_slice(), a.create_revision, a.mod_revision),
        (&b"2"[..], r6, r6)
    );
    let k = store.get("k").await.expect("get").expect("k");
    assert_eq!((k.create_revision, k.mod_revision), (r6, r6));
}

#[tokio::test]
async fn revision_increases_by_one_per_write() {
    let store = mem();
    assert_eq!(store.revision().await.expect("revision"), 0);
    for i in 1..=20u64 {
        let r = put(&store, &format!("k{}", i % 3), "v").await;
        assert_eq!(r, i);
        assert_eq!(store.revision().await.expect("revision"), i);
    }
    // Writes that change nothing do not bump the revision.
    assert_eq!(commit(&store, Txn::new()).await, 20);
    assert_eq!(commit(&store, Txn::new().delete("missing")).await, 20);
    assert_eq!(commit(&store, Txn::new().when_absent("missing")).await, 20);
    assert_eq!(store.revision().await.expect("revision"), 20);
    assert_eq!(
        commit(&store, Txn::new().delete("missing").delete("k1")).await,
        21
    );
}

#[tokio::test]
async fn reopen_keeps_data_revision_and_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    {
        let store = RedbStore::open(&path).expect("open");
        put(&store, "a", "1").await;
        put(&store, "b", "2").await;
        commit(&store, Txn::new().delete("a")).await;
    }
    let store = RedbStore::open(&path).expect("reopen");
    assert_eq!(store.revision().await.expect("revision"), 3);
    assert_eq!(store.get("a").await.expect("get"), None);
    assert_eq!(
        store.get("b").await.expect("get").expect("b").mod_revision,
        2
    );
    let mut w = store.watch("", 0);
    let events = take(&mut w, 3).await;
    assert_eq!(
        summary(&events),
        [
            (EventKind::Put, "a", &b"1"[..], 1),
            (EventKind::Put, "b", &b"2"[..], 2),
            (EventKind::Delete, "a", &b""[..], 3)
        ]
    );
    assert_eq!(
        events[2].kv.create_revision, 1,
        "a delete event carries the deleted create_revision"
    );
    assert_eq!(
        put(&store, "c", "3").await,
        4,
        "revisions continue after reopen"
    );
    drop(w);
    drop(store);
    // The file is released on drop: it can be opened again right away.
    let store = RedbStore::open(&path).expect("third open");
    assert_eq!(store.revision().await.expect("revision"), 4);
}

#[tokio::test]
async fn watch_replays_then_goes_live() {
    let store = mem();
    put(&store, "tasks/c1/1", "a").await; // 1
    put(&store, "clusters/c1", "x").await; // 2
    put(&store, "tasks/c1/2", "b").await; // 3
    commit(
        &store,
        Txn::new().delete("tasks/c1/1").put("tasks/c2/1", "c"),
    )
    .await; // 4

    let mut from_zero = store.watch("tasks/", 0);
    let mut from_middle = store.watch("tasks/", 3);
    let mut c1_only = store.watch("tasks/c1/", 0);
    let mut live = store.watch("", store.revision().await.expect("revision"));

    let all = take(&mut from_zero, 4).await;
    assert_eq!(
        summary(&all),
        [
            (EventKind::Put, "tasks/c1/1", &b"a"[..], 1),
            (EventKind::Put, "tasks/c1/2", &b"b"[..], 3),
            (EventKind::Delete, "tasks/c1/1", &b""[..], 4),
            (EventKind::Put, "tasks/c2/1", &b"c"[..], 4)
        ]
    );
    assert_eq!(take(&mut from_middle, 2).await, all[2..]);
    assert_eq!(take(&mut c1_only, 3).await, all[..3]);
    assert_idle(&mut from_zero).await;
    assert_idle(&mut live).await;

    put(&store, "tasks/c1/3", "d").await; // 5
    put(&store, "services/s", "e").await; // 6
    let e5 = next(&mut from_zero).await.expect("event");
    assert_eq!(
        summary(std::slice::from_ref(&e5)),
        [(EventKind::Put, "tasks/c1/3", &b"d"[..], 5)]
    );
    assert_eq!(next(&mut from_middle).await.expect("event"), e5);
    assert_eq!(next(&mut c1_only).await.expect("event"), e5);
    assert_eq!(
        take(&mut live, 2)
            .await
            .iter()
            .map(|e| e.revision())
            .collect::<Vec<_>>(),
        [5, 6]
    );
    assert_idle(&mut from_zero).await;
    assert_idle(&mut live).await;

    // A watch from the future starts delivering once the store gets there.
    let mut future = store.watch("", 7);
    put(&store, "x", "7").await;
    put(&store, "x", "8").await;
    assert_eq!(next(&mut future).await.expect("event").revision(), 8);
}

#[tokio::test]
async fn watch_survives_broadcast_lag() {
    let store = mem();
    let mut w = store.watch("k/", 0);
    let mut other = store.watch("other/", 0);
    let n = BROADCAST_CAPACITY as u64 * 2 + 10;
    for i in 1..=n {
        // Every third write is outside the prefix.
        let key = if i % 3 == 0 {
            format!("other/{i}")
        } else {
            format!("k/{}", i % 7)
        };
        put(&store, &key, &i.to_string()).await;
    }
    let expected: Vec<Revision> = (1..=n).filter(|i| i % 3 != 0).collect();
    let got = take(&mut w, expected.len()).await;
    assert_eq!(
        got.iter().map(WatchEvent::revision).collect::<Vec<_>>(),
        expected
    );
    assert_idle(&mut w).await;
    // Lag again while live, then continue.
    for i in n + 1..=n + BROADCAST_CAPACITY as u64 + 5 {
        put(&store, "k/x", &i.to_string()).await;
    }
    let got = take(&mut w, BROADCAST_CAPACITY + 5).await;
    assert_eq!(got.first().map(WatchEvent::revision), Some(n + 1));
    assert_eq!(
        got.last().map(WatchEvent::revision),
        Some(n + BROADCAST_CAPACITY as u64 + 5)
    );
    assert!(got
        .windows(2)
        .all(|p| p[1].revision() == p[0].revision() + 1));
    assert_eq!(
        take(&mut other, (n / 3) as usize).await.len(),
        (n / 3) as usize
    );
    assert_idle(&mut other).await;
}

#[tokio::test]
async fn watch_after_compaction() {
    let store = mem().with_history(5);
    for i in 1..=12 {
        put(&store, "k", &i.to_string()).await;
    }
    // Revisions 8..=12 are retained.
    match next(&mut store.watch("", 3)).await {
        Err(StoreError::Compacted {
            requested: 3,
            oldest: 8,
        }) => {}
        other => panic!("expected Compacted, got {other:?}"),
    }
    let mut stale = store.watch("", 6);
    assert!(matches!(
        next(&mut stale).await,
        Err(StoreError::Compacted {
            requested: 6,
            oldest: 8
        })
    ));
    assert!(
        stale.next().await.is_none(),
        "the stream ends after the error"
    );
    let got = take(&mut store.watch("", 7), 5).await;
    assert_eq!(
        got.iter().map(WatchEvent::revision).collect::<Vec<_>>(),
        [8, 9, 10, 11, 12]
    );
    let mut live = store.watch("", 12);
    put(&store, "k", "13").await;
    assert_eq!(next(&mut live).await.expect("event").revision(), 13);
}

#[tokio::test]
async fn shrinking_history_on_reopen_trims_at_next_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    {
        let store = RedbStore::open(&path).expect("open");
        for i in 0..30 {
            put(&store, "k", &i.to_string()).await;
        }
    }
    let store = RedbStore::open(&path).expect("reopen").with_history(10);
    assert_eq!(
        take(&mut store.watch("", 0), 30).await.len(),
        30,
        "not trimmed before a write"
    );
    put(&store, "k", "x").await; // 31: keeps 22..=31
    assert!(matches!(
        next(&mut store.watch("", 0)).await,
        Err(StoreError::Compacted {
            requested: 0,
            oldest: 22
        })
    ));
    assert_eq!(take(&mut store.watch("", 21), 10).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_group_committed() {
    let store = Arc::new(mem());
    let n = 100;
    let gate = store.shared.gate.lock().expect("gate");
    let mut tasks = Vec::new();
    for i in 0..n {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            commit(&*store, Txn::new().put(format!("k/{i}"), b"v".to_vec())).await
        }));
    }
    // Let every task enqueue while the writer is held at the gate. (The test
    // body is not a worker thread, so blocking here does not stall the tasks.)
    std::thread::sleep(Duration::from_millis(200));
    drop(gate);
    let mut revisions = Vec::new();
    for t in tasks {
        revisions.push(t.await.expect("task"));
    }
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=n).collect::<Vec<_>>());
    let commits = store.shared.commits.load(Ordering::Relaxed);
    assert!(commits <= 2, "{n} txns took {commits} commits");
    assert_eq!(store.list("k/").await.expect("list").0.len(), n as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_a_file_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(RedbStore::open(&dir.path().join("s.redb")).expect("open"));
    let (tasks, per_task) = (32u64, 8u64);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            // Each task updates its own key with compare-and-swap.
            let key = format!("w/{t}");
            let mut last = 0;
            let mut revs = Vec::new();
            for i in 0..per_task {
                let txn = Txn::new()
                    .when_mod_revision(&key, last)
                    .put(&key, i.to_string());
                last = commit(&*store, txn).await;
                revs.push(last);
            }
            revs
        }));
    }
    let mut revisions = Vec::new();
    for h in handles {
        revisions.extend(h.await.expect("task"));
    }
    revisions.sort_unstable();
    let total = tasks * per_task;
    assert_eq!(revisions, (1..=total).collect::<Vec<_>>());
    let commits = store.shared.commits.load(Ordering::Relaxed);
    assert!(commits < total, "{total} txns took {commits} commits");
    drop(store);
    let store = RedbStore::open(&dir.path().join("s.redb")).expect("reopen");
    assert_eq!(
        store.list("w/").await.expect("list").0.len(),
        tasks as usize
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contended_compare_and_swap_loses_no_update() {
    let store = Arc::new(mem());
    let (tasks, per_task) = (16u64, 10u64);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            for _ in 0..per_task {
                loop {
                    let cur = store.get("counter").await.expect("get");
                    let (rev, n) = match &cur {
                        Some(kv) => {
                            let n = String::from_utf8_lossy(&kv.value)
                                .parse::<u64>()
                                .expect("n");
                            (kv.mod_revision, n)
                        }
                        None => (0, 0),
                    };
                    let txn = Txn::new()
                        .when_mod_revision("counter", rev)
                        .put("counter", (n + 1).to_string());
                    match store.txn(txn).await.expect("txn") {
                        TxnResult::Committed { .. } => break,
                        TxnResult::Conflict { key } => assert_eq!(key, "counter"),
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let counter = store.get("counter").await.expect("get").expect("counter");
    assert_eq!(counter.value, (tasks * per_task).to_string().into_bytes());
    assert_eq!(counter.mod_revision, tasks * per_task);
}

#[tokio::test]
async fn json_helpers_through_dyn_store() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Cluster {
        name: String,
    }
    let store: Arc<dyn Store> = Arc::new(mem());
    let r = commit(
        &*store,
        Txn::new().put("clusters/a", br#"{"name":"a"}"#.to_vec()),
    )
    .await;
    put(&*store, "clusters/b", r#"{"name":"b"}"#).await;
    assert_eq!(
        store
            .get_json::<Cluster>("clusters/a")
            .await
            .expect("get_json"),
        Some((Cluster { name: "a".into() }, r))
    );
    assert_eq!(
        store
            .get_json::<Cluster>("clusters/zz")
            .await
            .expect("get_json"),
        None
    );
    let listed = store
        .list_json::<Cluster>("clusters/")
        .await
        .expect("list_json");
    assert_eq!(
        listed,
        [
            ("clusters/a".to_string(), Cluster { name: "a".into() }, 1),
            ("clusters/b".to_string(), Cluster { name: "b".into() }, 2)
        ]
    );
    put(&*store, "clusters/bad", "not json").await;
    match store.list_json::<Cluster>("clusters/").await {
        Err(StoreError::Decode { key, .. }) => assert_eq!(key, "clusters/bad"),
        other => panic!("expected Decode, got {other:?}"),
    }
}

#[tokio::test]
async fn watches_end_when_the_store_is_dropped() {
    let store = mem();
    put(&store, "a", "1").await;
    let mut w = store.watch("", 0);
    assert_eq!(next(&mut w).await.expect("event").revision(), 1);
    drop(store);
    assert!(matches!(next(&mut w).await, Err(StoreError::Closed)));
    assert!(w.next().await.is_none());
}
