//! Model-based test: random txn sequences applied to a store and to a trivial
//! BTreeMap model give the same results, revisions, final contents and watch
//! history. It runs against both backends: `RedbStore::in_memory` and an
//! `EtcdStore` on a real etcd (one namespace per case).

mod support {
    pub mod etcd;
}

use std::collections::BTreeMap;
use std::task::Poll;
use std::time::Duration;

use berth_store::{
    Compare, EtcdStore, EventKind, KeyValue, Op, RedbStore, Revision, Store, StoreError, Txn,
    TxnResult, WatchEvent,
};
use futures::StreamExt;
use proptest::prelude::*;

const KEYS: [&str; 5] = ["a/1", "a/2", "a/3", "b/1", "b/2"];

#[derive(Debug, Clone)]
enum Expect {
    /// The key's current mod_revision in the model (usually holds).
    Current,
    /// The key must not exist.
    Absent,
    /// Some arbitrary revision (usually fails).
    Rev(Revision),
}

#[derive(Debug, Clone)]
enum GenOp {
    Put(usize, u8),
    Delete(usize),
}

#[derive(Debug, Clone)]
struct GenTxn {
    compares: Vec<(usize, Expect)>,
    ops: Vec<GenOp>,
}

fn gen_txn() -> impl Strategy<Value = GenTxn> {
    let expect = prop_oneof![
        3 => Just(Expect::Current),
        1 => Just(Expect::Absent),
        1 => (1u64..12).prop_map(Expect::Rev),
    ];
    let op = prop_oneof![
        3 => (0..KEYS.len(), any::<u8>()).prop_map(|(k, v)| GenOp::Put(k, v)),
        2 => (0..KEYS.len()).prop_map(GenOp::Delete),
    ];
    (
        prop::collection::vec((0..KEYS.len(), expect), 0..3),
        prop::collection::vec(op, 0..4),
    )
        .prop_map(|(compares, ops)| GenTxn { compares, ops })
}

#[derive(Default)]
struct Model {
    kv: BTreeMap<String, KeyValue>,
    revision: Revision,
    history: Vec<WatchEvent>,
    /// The store's revision when the case started (etcd's counter is shared by every case).
    base: Revision,
    /// Whether the store keeps only the last op per key of a txn (etcd refuses duplicates).
    last_op_per_key: bool,
}

impl Model {
    fn mod_revision(&self, key: &str) -> Revision {
        self.kv.get(key).map_or(0, |kv| kv.mod_revision)
    }

    /// Turns a generated txn into a concrete one against the current model state.
    fn concretize(&self, g: &GenTxn) -> Txn {
        let mut txn = Txn::new();
        for (k, expect) in &g.compares {
            let key = KEYS[*k];
            txn = match expect {
                Expect::Current => txn.when_mod_revision(key, self.mod_revision(key)),
                Expect::Absent => txn.when_absent(key),
                Expect::Rev(r) => txn.when_mod_revision(key, self.base + *r),
            };
        }
        let key_of = |op: &GenOp| match op {
            GenOp::Put(k, _) | GenOp::Delete(k) => *k,
        };
        for (i, op) in g.ops.iter().enumerate() {
            if self.last_op_per_key && g.ops[i + 1..].iter().any(|l| key_of(l) == key_of(op)) {
                continue;
            }
            txn = match op {
                GenOp::Put(k, v) => txn.put(KEYS[*k], vec![*v; usize::from(*v % 4)]),
                GenOp::Delete(k) => txn.delete(KEYS[*k]),
            };
        }
        txn
    }

    fn apply(&mut self, txn: &Txn) -> TxnResult {
        for Compare::ModRevision { key, revision } in &txn.compares {
            if self.mod_revision(key) != *revision {
                return TxnResult::Conflict { key: key.clone() };
            }
        }
        let rev = self.revision + 1;
        let mut events = Vec::new();
        for op in &txn.ops {
            match op {
                Op::Put { key, value } => {
                    let create_revision = self.kv.get(key).map_or(rev, |kv| kv.create_revision);
                    let kv = KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision,
                        mod_revision: rev,
                    };
                    self.kv.insert(key.clone(), kv.clone());
                    events.push(WatchEvent {
                        kind: EventKind::Put,
                        kv,
                    });
                }
                Op::Delete { key } => {
                    if let Some(old) = self.kv.remove(key) {
                        events.push(WatchEvent {
                            kind: EventKind::Delete,
                            kv: KeyValue {
                                key: key.clone(),
                                value: Vec::new(),
                                create_revision: old.create_revision,
                                mod_revision: rev,
                            },
                        });
                    }
                }
            }
        }
        if !events.is_empty() {
            self.revision = rev;
            self.history.extend(events);
        }
        TxnResult::Committed {
            revision: self.revision,
        }
    }
}

async fn take(
    watch: &mut berth_store::BoxStream<Result<WatchEvent, StoreError>>,
    n: usize,
) -> Vec<WatchEvent> {
    let mut out = Vec::new();
    for _ in 0..n {
        let item = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("watch event within 10s")
            .expect("watch stream ended");
        out.push(item.expect("watch event"));
    }
    out
}

/// Submits `txns` in order without waiting in between, so the writer can
/// batch them, then waits for all results.
async fn submit_pipelined(store: &dyn Store, txns: &[Txn]) -> Vec<TxnResult> {
    let mut futures: Vec<_> = txns.iter().map(|t| store.txn(t.clone())).collect();
    let mut results: Vec<Option<TxnResult>> = vec![None; txns.len()];
    // The first poll enqueues the txn, so this fixes the submission order.
    for (fut, slot) in futures.iter_mut().zip(results.iter_mut()) {
        if let Poll::Ready(r) = futures::poll!(fut) {
            *slot = Some(r.expect("txn"));
        }
    }
    for (fut, slot) in futures.into_iter().zip(results.iter_mut()) {
        if slot.is_none() {
            *slot = Some(fut.await.expect("txn"));
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every txn answered"))
        .collect()
}

/// Runs one case on `store`. Txns are submitted `pipeline` at a time without waiting (only
/// redb orders concurrent txns by submission; for etcd `pipeline` is 1).
async fn run_case(store: &dyn Store, gens: Vec<GenTxn>, pipeline: usize, etcd: bool) {
    let base = store.revision().await.expect("revision");
    let mut model = Model {
        revision: base,
        base,
        last_op_per_key: etcd,
        ..Model::default()
    };
    let mut revisions_seen = Vec::new();

    for chunk in gens.chunks(pipeline) {
        let mut txns = Vec::new();
        let mut expected = Vec::new();
        for g in chunk {
            let txn = model.concretize(g);
            expected.push(model.apply(&txn));
            txns.push(txn);
        }
        let got = submit_pipelined(store, &txns).await;
        assert_eq!(got, expected, "txn results for {txns:?}");
        revisions_seen.push(model.revision);
        assert_eq!(store.revision().await.expect("revision"), model.revision);
    }

    // Final contents.
    let (all, rev) = store.list("").await.expect("list");
    assert_eq!(all, model.kv.values().cloned().collect::<Vec<_>>());
    assert_eq!(rev, model.revision);
    let (a, _) = store.list("a/").await.expect("list");
    assert_eq!(
        a,
        model
            .kv
            .range("a/".to_string().."b".to_string())
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    );
    for key in KEYS {
        assert_eq!(
            store.get(key).await.expect("get"),
            model.kv.get(key).cloned()
        );
    }

    // History: watches from 0 and from each chunk's revision replay exactly what was committed.
    let mut watches = vec![("", 0), ("a/", 0), ("b/", 0)];
    watches.extend(revisions_seen.iter().map(|r| ("", *r)));
    let mut streams = Vec::new();
    for (prefix, after) in &watches {
        let expected: Vec<WatchEvent> = model
            .history
            .iter()
            .filter(|e| e.kv.key.starts_with(prefix) && e.kv.mod_revision > *after)
            .cloned()
            .collect();
        let mut stream = store.watch(prefix, *after);
        assert_eq!(
            take(&mut stream, expected.len()).await,
            expected,
            "watch({prefix:?}, {after})"
        );
        streams.push(stream);
    }
    // Nothing else is pending: the next event of every watch is a fresh write.
    let marker = match store
        .txn(
            Txn::new()
                .put("a/~", b"m".to_vec())
                .put("b/~", b"m".to_vec()),
        )
        .await
        .expect("marker txn")
    {
        TxnResult::Committed { revision } => revision,
        other => panic!("marker: {other:?}"),
    };
    assert_eq!(marker, model.revision + 1);
    for (stream, (prefix, after)) in streams.iter_mut().zip(&watches) {
        let next = take(stream, 1).await;
        assert_eq!(
            next[0].kv.mod_revision, marker,
            "watch({prefix:?}, {after}) had extra events"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn redb_store_matches_model(gens in prop::collection::vec(gen_txn(), 0..60), pipeline in 1usize..8) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let store = RedbStore::in_memory().expect("store");
            run_case(&store, gens, pipeline, false).await;
        });
    }
}

/// The same property on etcd: one etcd for every case, a fresh namespace per case.
#[test]
fn etcd_store_matches_model() {
    let Some(cluster) = support::etcd::Cluster::start(1) else {
        return;
    };
    let strategy = prop::collection::vec(gen_txn(), 0..40);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24));
    let case = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&strategy, |gens| {
        let url = cluster.url(&format!(
            "model-{}",
            case.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let store = tokio::time::timeout(Duration::from_secs(30), EtcdStore::connect_url(&url))
                .await
                .expect("etcd answers within 30s")
                .expect("connect");
            tokio::time::timeout(Duration::from_secs(120), run_case(&store, gens, 1, true))
                .await
                .expect("a case within 120s");
        });
        Ok(())
    });
    drop(cluster);
    result.expect("etcd store matches the model");
}
