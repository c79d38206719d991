//! The single writer thread and its group commit.
//!
//! The thread blocks for one request, then drains whatever else is queued (up
//! to [`MAX_BATCH`]) and applies the txns in arrival order inside one redb
//! write transaction: each txn's compares see the txns before it, a
//! conflicting txn writes nothing without affecting the others, and every txn
//! that writes gets its own revision. One commit (one fsync) then makes the
//! whole batch durable, after which the events are published and every caller
//! answered. If nothing in a batch wrote, the redb transaction is aborted
//! instead: no fsync.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use redb::{Database, ReadableTable, Table, WriteTransaction};
use tokio::sync::oneshot;

use super::{codec, Shared, CHANGELOG, KV, META, META_COMPACTED, META_REVISION};
use crate::error::{OrBackend, StoreError};
use crate::types::{Compare, EventKind, KeyValue, Op, Revision, Txn, TxnResult, WatchEvent};

/// Upper bound on txns per redb transaction, to bound commit latency and memory.
const MAX_BATCH: usize = 1024;

pub(super) struct Request {
    pub txn: Txn,
    pub reply: oneshot::Sender<Result<TxnResult, StoreError>>,
}

/// The events of one committed revision, as broadcast to watchers.
pub(super) struct Committed {
    pub revision: Revision,
    pub events: Vec<WatchEvent>,
}

/// How often an unhealthy store retries reopening and probing when no write comes in.
const RECOVERY_INTERVAL: Duration = Duration::from_millis(250);

/// The writer thread's body; returns once every `RedbStore` handle is gone.
///
/// After a write fault the database is reopened (see [`super::fault`]) before the next batch,
/// and while the store is unhealthy and idle a probe commit is retried every
/// [`RECOVERY_INTERVAL`], so health comes back without waiting for a client's write.
pub(super) fn run(shared: &Shared, requests: &mpsc::Receiver<Request>) {
    // The handle has failed a write since it was opened: reopen it before using it again.
    let mut faulted = false;
    loop {
        let first = if shared.db.healthy() {
            match requests.recv() {
                Ok(first) => first,
                Err(_) => return,
            }
        } else {
            match requests.recv_timeout(RECOVERY_INTERVAL) {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if !faulted || shared.db.reopen() {
                        faulted = shared.db.probe().is_err();
                    }
                    continue;
                }
            }
        };
        if faulted {
            faulted = !shared.db.reopen();
        }
        #[cfg(test)]
        let gate = shared
            .gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        #[cfg(test)]
        drop(gate);
        faulted |= !write_batch(shared, batch);
    }
}

/// Applies one batch and answers its callers; false when the write failed (a fault).
fn write_batch(shared: &Shared, batch: Vec<Request>) -> bool {
    let (txns, replies): (Vec<Txn>, Vec<_>) = batch.into_iter().map(|r| (r.txn, r.reply)).unzip();
    let history = shared.history.load(Ordering::Relaxed);
    match shared.db.with(|db| apply_batch(shared, db, &txns, history)) {
        Ok((results, committed)) => {
            shared.db.mark_ok();
            tracing::trace!(
                txns = txns.len(),
                revisions = committed.len(),
                "store batch"
            );
            for c in committed {
                // Err only means nobody is watching.
                let _ = shared.events.send(Arc::new(c));
            }
            for (reply, result) in replies.into_iter().zip(results) {
                // Err only means the caller stopped waiting.
                let _ = reply.send(Ok(result));
            }
            true
        }
        Err(err) => {
            let msg = match err {
                StoreError::Backend(msg) => msg,
                other => other.to_string(),
            };
            let msg = super::fault::describe(&msg);
            tracing::error!(error = %msg, txns = txns.len(), "store write failed");
            shared.db.mark_fault(&msg);
            for reply in replies {
                let _ = reply.send(Err(StoreError::Backend(msg.clone())));
            }
            false
        }
    }
}

type Applied = (Vec<TxnResult>, Vec<Committed>);

fn apply_batch(
    shared: &Shared,
    db: &Database,
    txns: &[Txn],
    history: u64,
) -> Result<Applied, StoreError> {
    #[cfg(not(test))]
    let _ = shared; // counts commits in tests only
    let mut wtx = db.begin_write().or_backend()?;
    wtx.set_durability(redb::Durability::Immediate);
    let (results, committed) = apply_all(&wtx, txns, history)?;
    if committed.is_empty() {
        wtx.abort().or_backend()?;
    } else {
        wtx.commit().or_backend()?;
        #[cfg(test)]
        shared.commits.fetch_add(1, Ordering::Relaxed);
    }
    Ok((results, committed))
}

fn apply_all(wtx: &WriteTransaction, txns: &[Txn], history: u64) -> Result<Applied, StoreError> {
    let mut kv = wtx.open_table(KV).or_backend()?;
    let mut log = wtx.open_table(CHANGELOG).or_backend()?;
    let mut meta = wtx.open_table(META).or_backend()?;
    let start = super::meta_get(&meta, META_REVISION)?;
    let mut current = start;
    let mut results = Vec::with_capacity(txns.len());
    let mut committed = Vec::new();
    for txn in txns {
        let result = apply_one(&mut kv, txn, current + 1)?;
        results.push(match result {
            Outcome::Conflict(key) => TxnResult::Conflict { key },
            Outcome::NoChange => TxnResult::Committed { revision: current },
            Outcome::Wrote(events) => {
                current += 1;
                log.insert(current, codec::encode_events(&events).as_slice())
                    .or_backend()?;
                committed.push(Committed {
                    revision: current,
                    events,
                });
                TxnResult::Committed { revision: current }
            }
        });
    }
    if current != start {
        meta.insert(META_REVISION, current).or_backend()?;
        let compacted = super::meta_get(&meta, META_COMPACTED)?;
        let cut = current.saturating_sub(history);
        if cut > compacted {
            log.retain_in(..=cut, |_, _| false).or_backend()?;
            meta.insert(META_COMPACTED, cut).or_backend()?;
        }
    }
    Ok((results, committed))
}

enum Outcome {
    Conflict(String),
    NoChange,
    Wrote(Vec<WatchEvent>),
}

/// Checks `txn`'s compares and applies its ops at `revision` (which only
/// becomes the store revision if something was written).
fn apply_one(
    kv: &mut Table<'_, &'static str, &'static [u8]>,
    txn: &Txn,
    revision: Revision,
) -> Result<Outcome, StoreError> {
    for Compare::ModRevision {
        key,
        revision: want,
    } in &txn.compares
    {
        let have = match kv.get(key.as_str()).or_backend()? {
            Some(g) => codec::decode_record(key, g.value())?.mod_revision,
            None => 0,
        };
        if have != *want {
            return Ok(Outcome::Conflict(key.clone()));
        }
    }
    let mut events = Vec::new();
    for op in &txn.ops {
        match op {
            Op::Put { key, value } => {
                let create_revision = match kv.get(key.as_str()).or_backend()? {
                    Some(g) => codec::decode_record(key, g.value())?.create_revision,
                    None => revision,
                };
                let record = codec::encode_record(create_revision, revision, value);
                kv.insert(key.as_str(), record.as_slice()).or_backend()?;
                events.push(WatchEvent {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision,
                        mod_revision: revision,
                    },
                });
            }
            Op::Delete { key } => {
                let removed = match kv.remove(key.as_str()).or_backend()? {
                    Some(g) => Some(codec::decode_record(key, g.value())?.create_revision),
                    None => None,
                };
                if let Some(create_revision) = removed {
                    events.push(WatchEvent {
                        kind: EventKind::Delete,
                        kv: KeyValue {
                            key: key.clone(),
                            value: Vec::new(),
                            create_revision,
                            mod_revision: revision,
                        },
                    });
                }
            }
        }
    }
    Ok(if events.is_empty() {
        Outcome::NoChange
    } else {
        Outcome::Wrote(events)
    })
}
