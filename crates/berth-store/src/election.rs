//! Leader election among the berth servers sharing one store, in backend-neutral terms.
//!
//! Every replica serves the API, but only one may run the controllers: two service
//! controllers reconciling the same service would both start its missing tasks. A replica
//! asks its store for an [`Election`] ([`Store::elect`](crate::Store::elect)) and follows its
//! [`Leadership`]: when `is_leader` turns true it starts the controllers, when it turns false
//! it cancels them at once.
//!
//! The etcd backend campaigns for [`LEADER_KEY`] under a short lease (see
//! `etcd_backend/election.rs`). The embedded redb store is held by one process, so there is
//! exactly one replica and it is always the leader, at term 1, unfenced.
//!
//! # Terms and fencing
//!
//! A term is the `mod_revision` of the leader key as the winner wrote it: it changes with
//! every election and never repeats. A leader that stopped (a long GC-like pause, a SIGSTOP,
//! a partition) may still believe it leads for a moment after its lease lapsed; its writes
//! must not land. [`Fenced`] adds "the leader key is still at my term" to every txn, so such a
//! write fails as [`StoreError::Fenced`] instead of corrupting the new leader's work.

use std::sync::Arc;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::store::{BoxFuture, BoxStream, Store};
use crate::types::{Compare, KeyValue, Revision, Txn, TxnResult, WatchEvent};

/// The key the leader holds (under the store's namespace); its value is the leader's replica id.
pub const LEADER_KEY: &str = "control/leader";

/// What one replica knows of the election at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// This replica's id.
    pub replica: String,
    /// The current leader's replica id, if one is known.
    pub leader: Option<String>,
    /// Whether this replica leads now (its lease is live and its key in place).
    pub is_leader: bool,
    /// The current leader's term (its key's mod_revision); 0 while there is none.
    pub term: Revision,
}

impl Leadership {
    /// No leader known yet.
    pub fn none(replica: &str) -> Self {
        Self {
            replica: replica.to_owned(),
            leader: None,
            is_leader: false,
            term: 0,
        }
    }
}

/// A replica's part in the election: the latest [`Leadership`] and its changes. Dropping it
/// stops campaigning (a leader's lease then lapses); [`Election::resign`] hands leadership
/// over at once.
pub struct Election {
    state: watch::Receiver<Leadership>,
    resign: Option<tokio::sync::oneshot::Sender<tokio::sync::oneshot::Sender<()>>>,
    task: Option<tokio::task::JoinHandle<()>>,
    fencing: bool,
    /// A sole replica's state, which never changes (kept so receivers see no end).
    _sole: Option<watch::Sender<Leadership>>,
}

impl Election {
    /// The only replica, always the leader at term 1 (the embedded store, and fakes).
    pub fn sole(replica: &str) -> Self {
        let (sole, state) = watch::channel(Leadership {
            replica: replica.to_owned(),
            leader: Some(replica.to_owned()),
            is_leader: true,
            term: 1,
        });
        Self {
            state,
            resign: None,
            task: None,
            fencing: false,
            _sole: Some(sole),
        }
    }

    /// An election driven by a backend task that publishes on `state` until `resign` fires
    /// (it acknowledges once it has given leadership up) or the handle is dropped.
    pub(crate) fn campaigning(
        state: watch::Receiver<Leadership>,
        resign: tokio::sync::oneshot::Sender<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    ) -> Self {
        Self {
            state,
            resign: Some(resign),
            task: Some(task),
            fencing: true,
            _sole: None,
        }
    }

    /// The leadership as last seen.
    pub fn current(&self) -> Leadership {
        self.state.borrow().clone()
    }

    /// A receiver of every change of leadership.
    pub fn subscribe(&self) -> watch::Receiver<Leadership> {
        self.state.clone()
    }

    /// Whether this election has rivals, whose writes a [`Fenced`] store must keep out.
    pub fn fencing(&self) -> bool {
        self.fencing
    }

    /// `store`, fenced at `term` when this election has rivals (see [`Fenced`]); as it is for
    /// the sole replica.
    pub fn fence(&self, store: Arc<dyn Store>, term: Revision) -> Arc<dyn Store> {
        if self.fencing {
            Arc::new(Fenced::new(store, term))
        } else {
            store
        }
    }

    /// Stops campaigning and, if leading, gives leadership up now (so another replica need
    /// not wait for the lease to lapse). Waits at most `grace`.
    pub async fn resign(mut self, grace: std::time::Duration) {
        if let Some(resign) = self.resign.take() {
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            if resign.send(done_tx).is_ok() {
                let _ = tokio::time::timeout(grace, done_rx).await;
            }
        }
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Election")
            .field("state", &*self.state.borrow())
            .field("fencing", &self.fencing)
            .finish_non_exhaustive()
    }
}

/// A [`Store`] whose every txn also requires that [`LEADER_KEY`] is still at `term`: the
/// writes of a leader that has been deposed fail as [`StoreError::Fenced`] (not as a
/// conflict, which callers retry) so its controllers stop. Reads and watches pass through.
pub struct Fenced {
    inner: Arc<dyn Store>,
    term: Revision,
    on_fenced: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Fenced {
    /// `inner`, fenced at `term`.
    pub fn new(inner: Arc<dyn Store>, term: Revision) -> Self {
        Self {
            inner,
            term,
            on_fenced: None,
        }
    }

    /// Calls `f` whenever a write is refused by the fence (the writer's term is over), so the
    /// writer can stop at once rather than wait for the election to say so.
    pub fn on_fenced(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_fenced = Some(Box::new(f));
        self
    }
}

/// `txn` with the fence's compare first, so that a failed fence is the conflict reported.
pub(crate) fn fenced_txn(txn: Txn, term: Revision) -> Txn {
    let mut compares = Vec::with_capacity(txn.compares.len() + 1);
    compares.push(Compare::ModRevision {
        key: LEADER_KEY.to_owned(),
        revision: term,
    });
    compares.extend(txn.compares);
    Txn {
        compares,
        ops: txn.ops,
    }
}

impl Store for Fenced {
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>, StoreError>> {
        self.inner.get(key)
    }

    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>> {
        self.inner.list(prefix)
    }

    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResult, StoreError>> {
        let term = self.term;
        let txn = fenced_txn(txn, term);
        Box::pin(async move {
            match self.inner.txn(txn).await? {
                TxnResult::Conflict { key } if key == LEADER_KEY => {
                    if let Some(f) = &self.on_fenced {
                        f();
                    }
                    Err(StoreError::Fenced { term })
                }
                other => Ok(other),
            }
        })
    }

    fn revision(&self) -> BoxFuture<'_, Result<Revision, StoreError>> {
        self.inner.revision()
    }

    fn watch(&self, prefix: &str, after: Revision) -> BoxStream<Result<WatchEvent, StoreError>> {
        self.inner.watch(prefix, after)
    }

    fn healthy(&self) -> bool {
        self.inner.healthy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_is_the_first_compare() {
        let txn = fenced_txn(Txn::new().when_absent("a").put("a", b"1".to_vec()), 7);
        assert_eq!(
            txn.compares[0],
            Compare::ModRevision {
                key: LEADER_KEY.into(),
                revision: 7
            }
        );
        assert_eq!(txn.compares.len(), 2);
        assert_eq!(txn.ops.len(), 1);
    }

    #[tokio::test]
    async fn a_sole_replica_always_leads_unfenced() {
        let e = Election::sole("r1");
        let now = e.current();
        assert!(now.is_leader);
        assert_eq!(now.leader.as_deref(), Some("r1"));
        assert_eq!(now.term, 1);
        assert!(!e.fencing);
    }

    #[tokio::test]
    async fn a_fenced_write_at_a_stale_term_fails_as_fenced() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Store> =
            Arc::new(crate::RedbStore::open(&dir.path().join("s.redb")).unwrap());
        let rev = match inner
            .txn(Txn::new().put(LEADER_KEY, b"me".to_vec()))
            .await
            .unwrap()
        {
            TxnResult::Committed { revision } => revision,
            other => panic!("{other:?}"),
        };
        let current = Fenced::new(inner.clone(), rev);
        let told = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let t = told.clone();
        let stale = Fenced::new(inner.clone(), rev - 1)
            .on_fenced(move || t.store(true, std::sync::atomic::Ordering::SeqCst));
        assert!(matches!(
            current.txn(Txn::new().put("x", b"1".to_vec())).await,
            Ok(TxnResult::Committed { .. })
        ));
        assert!(matches!(
            stale.txn(Txn::new().put("x", b"2".to_vec())).await,
            Err(StoreError::Fenced { term }) if term == rev - 1
        ));
        assert!(told.load(std::sync::atomic::Ordering::SeqCst));
        // An ordinary conflict stays a conflict.
        assert!(matches!(
            current.txn(Txn::new().when_absent("x").put("x", b"3".to_vec())).await,
            Ok(TxnResult::Conflict { key }) if key == "x"
        ));
    }
}
