//! Watch streams: changelog replay, then the live broadcast, without gaps or duplicates.
//!
//! A stream subscribes to the broadcast *before* it reads the changelog, so
//! every revision committed after its read is in its broadcast buffer; it
//! tracks the highest revision it has covered and skips broadcast entries at
//! or below it. If the broadcast lags (or a gap ever shows), it re-reads the
//! changelog from the last covered revision. The stream holds the store only
//! weakly, so an unpolled watch never keeps the file open.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use redb::Database;
use tokio::sync::broadcast::{self, error::RecvError};

use super::writer::Committed;
use super::{codec, meta_get, Shared, CHANGELOG, META, META_COMPACTED, META_REVISION};
use crate::error::{OrBackend, StoreError};
use crate::store::BoxStream;
use crate::types::{Revision, WatchEvent};

/// Revisions read from the changelog per blocking read.
const REPLAY_CHUNK: u64 = 256;

pub(super) fn stream(
    shared: &Arc<Shared>,
    prefix: &str,
    after: Revision,
) -> BoxStream<Result<WatchEvent, StoreError>> {
    let watch = Watch {
        shared: Arc::downgrade(shared),
        live: shared.events.subscribe(),
        prefix: prefix.to_owned(),
        covered: after,
        pending: VecDeque::new(),
        replay: true,
        done: false,
    };
    Box::pin(futures::stream::unfold(watch, |mut w| async move {
        let item = w.next().await?;
        Some((item, w))
    }))
}

struct Watch {
    shared: Weak<Shared>,
    live: broadcast::Receiver<Arc<Committed>>,
    prefix: String,
    /// Every revision up to this one has been read (its matching events are
    /// delivered or in `pending`).
    covered: Revision,
    pending: VecDeque<WatchEvent>,
    /// Whether the changelog must be read before the broadcast.
    replay: bool,
    done: bool,
}

impl Watch {
    async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if self.replay {
                if let Err(e) = self.read_changelog().await {
                    self.done = true;
                    return Some(Err(e));
                }
                continue;
            }
            match self.live.recv().await {
                Ok(c) if c.revision <= self.covered => {}
                Ok(c) if c.revision == self.covered + 1 => {
                    let prefix = &self.prefix;
                    self.pending.extend(
                        c.events
                            .iter()
                            .filter(|e| e.kv.key.starts_with(prefix.as_str()))
                            .cloned(),
                    );
                    self.covered = c.revision;
                }
                // A gap cannot happen given subscribe-then-read, but the
                // changelog is the source of truth if it ever does.
                Ok(_) => self.replay = true,
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(
                        missed,
                        covered = self.covered,
                        "watch lagged; re-reading the changelog"
                    );
                    self.replay = true;
                }
                Err(RecvError::Closed) => {
                    self.done = true;
                    return Some(Err(StoreError::Closed));
                }
            }
        }
    }

    /// Reads the next chunk of history after `covered`.
    async fn read_changelog(&mut self) -> Result<(), StoreError> {
        let shared = self.shared.upgrade().ok_or(StoreError::Closed)?;
        let prefix = self.prefix.clone();
        let after = self.covered;
        let chunk = tokio::task::spawn_blocking(move || {
            shared.db.with(|db| read_chunk(db, &prefix, after))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("watch replay task: {e}")))??;
        self.pending.extend(chunk.events);
        self.covered = chunk.covered;
        self.replay = chunk.more;
        Ok(())
    }
}

struct Chunk {
    events: Vec<WatchEvent>,
    covered: Revision,
    more: bool,
}

fn read_chunk(db: &Database, prefix: &str, after: Revision) -> Result<Chunk, StoreError> {
    let rtx = db.begin_read().or_backend()?;
    let meta = rtx.open_table(META).or_backend()?;
    let log = rtx.open_table(CHANGELOG).or_backend()?;
    let current = meta_get(&meta, META_REVISION)?;
    let compacted = meta_get(&meta, META_COMPACTED)?;
    if after < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            oldest: compacted + 1,
        });
    }
    let end = after.saturating_add(REPLAY_CHUNK).min(current);
    let mut events = Vec::new();
    if end > after {
        for item in log.range(after + 1..=end).or_backend()? {
            let (revision, bytes) = item.or_backend()?;
            codec::decode_events(revision.value(), bytes.value(), prefix, &mut events)?;
        }
    }
    Ok(Chunk {
        events,
        covered: end.max(after),
        more: end < current,
    })
}
