//! Watch streams on etcd: one etcd watch from `after + 1`, re-opened from the last revision
//! delivered whenever the connection drops, so a caller sees every revision exactly once.
//!
//! etcd never splits one revision's events across watch responses, so "every revision up to
//! `covered` is delivered" holds after each response and re-opening at `covered + 1` neither
//! loses nor repeats an event. If the history after `covered` has been compacted meanwhile
//! (etcd's ErrCompacted: the watch is cancelled with a `compact_revision`), the stream yields
//! [`StoreError::Compacted`] and ends, as the redb backend does for a too-old revision: the
//! caller re-lists and watches from the listed revision.

use std::collections::VecDeque;
use std::time::Duration;

use etcd_client::{EventType, WatchClient, WatchOptions, WatchStream};

use super::{etcd_err, from_etcd, from_etcd_rev};
use crate::error::StoreError;
use crate::store::BoxStream;
use crate::types::{EventKind, KeyValue, Revision, WatchEvent};

/// How long a watch keeps trying to re-open before it gives up with an error.
const RECONNECT_FOR: Duration = Duration::from_secs(60);
/// The first and the largest pause between re-open attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

pub(super) fn stream(
    client: WatchClient,
    namespace: String,
    prefix: &str,
    after: Revision,
) -> BoxStream<Result<WatchEvent, StoreError>> {
    let watch = Watch {
        client,
        key: format!("{namespace}{prefix}"),
        namespace,
        covered: after,
        open: None,
        failing_since: None,
        pause: BACKOFF.0,
        pending: VecDeque::new(),
        done: false,
    };
    Box::pin(futures::stream::unfold(watch, |mut w| async move {
        let item = w.next().await?;
        Some((item, w))
    }))
}

struct Watch {
    client: WatchClient,
    namespace: String,
    /// The namespaced key prefix watched.
    key: String,
    /// Every revision up to this one has been delivered (or is in `pending`).
    covered: Revision,
    open: Option<WatchStream>,
    /// When the current run of failed opens/reads started (None while healthy).
    failing_since: Option<tokio::time::Instant>,
    /// The pause before the next re-open attempt.
    pause: Duration,
    pending: VecDeque<WatchEvent>,
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
            if let Err(e) = self.step().await {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    /// Opens the watch if needed and reads one response into `pending`.
    async fn step(&mut self) -> Result<(), StoreError> {
        let stream = match &mut self.open {
            Some(stream) => stream,
            None => {
                let opened = self.open_watch().await;
                match opened {
                    Ok(stream) => self.open.insert(stream),
                    Err(e) => return self.failed(etcd_err(e)).await,
                }
            }
        };
        let resp = match stream.message().await {
            Ok(Some(resp)) => resp,
            // The connection (or the member) went away: resume from `covered`.
            Ok(None) => {
                return self
                    .failed(StoreError::Backend("etcd ended a watch".into()))
                    .await
            }
            Err(e) => return self.failed(etcd_err(e)).await,
        };
        self.failing_since = None;
        self.pause = BACKOFF.0;
        if resp.compact_revision() > 0 {
            return Err(StoreError::Compacted {
                requested: self.covered,
                oldest: from_etcd_rev(resp.compact_revision()),
            });
        }
        if resp.canceled() {
            tracing::debug!(
                reason = resp.cancel_reason(),
                "etcd cancelled a watch; re-opening"
            );
            self.open = None;
            return Ok(());
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let mut record = from_etcd(&self.namespace, kv)?;
            let kind = match event.event_type() {
                EventType::Put => EventKind::Put,
                EventType::Delete => {
                    record = KeyValue {
                        value: Vec::new(),
                        create_revision: event
                            .prev_kv()
                            .map_or(0, |prev| from_etcd_rev(prev.create_revision())),
                        ..record
                    };
                    EventKind::Delete
                }
            };
            self.covered = self.covered.max(record.mod_revision);
            self.pending.push_back(WatchEvent { kind, kv: record });
        }
        Ok(())
    }

    /// Opens an etcd watch from `covered + 1`.
    async fn open_watch(&mut self) -> Result<WatchStream, etcd_client::Error> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(i64::try_from(self.covered + 1).unwrap_or(i64::MAX));
        self.client.watch(self.key.as_bytes(), Some(options)).await
    }

    /// Drops the etcd watch and pauses before the next attempt; gives up with `error` once
    /// attempts have failed for [`RECONNECT_FOR`].
    async fn failed(&mut self, error: StoreError) -> Result<(), StoreError> {
        self.open = None;
        let since = *self
            .failing_since
            .get_or_insert_with(tokio::time::Instant::now);
        if since.elapsed() >= RECONNECT_FOR {
            return Err(error);
        }
        tracing::debug!(%error, covered = self.covered, "etcd watch failed; re-opening");
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(BACKOFF.1);
        Ok(())
    }
}
