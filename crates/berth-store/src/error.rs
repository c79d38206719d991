//! The store's error type.

use crate::types::Revision;

/// Everything a [`Store`](crate::Store) operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A watch asked for history that is no longer retained. `requested` is
    /// the exclusive start revision asked for; `oldest` is the oldest revision
    /// still retained, so `watch(prefix, oldest - 1)` is the earliest watch
    /// that can succeed. Re-`list` and watch from the listed revision instead.
    #[error("revision {requested} has been compacted; oldest available is {oldest}")]
    Compacted {
        /// The exclusive start revision the watch asked for.
        requested: Revision,
        /// The oldest revision still retained.
        oldest: Revision,
    },
    /// A stored value is not the JSON the caller asked for.
    #[error("decoding the value of {key}: {source}")]
    Decode {
        /// The key whose value failed to decode.
        key: String,
        /// What serde_json rejected.
        #[source]
        source: serde_json::Error,
    },
    /// The storage backend failed (I/O, corruption, ...). When a `txn` fails
    /// this way its outcome is unknown, as with any database commit error.
    #[error("store backend: {0}")]
    Backend(String),
    /// A write through a [`Fenced`](crate::Fenced) store was refused because the leader key
    /// is no longer at the writer's term: another replica leads now. Final for the writer:
    /// it must stop acting as the leader, not retry.
    #[error("fenced: this replica's term {term} has ended (another replica leads)")]
    Fenced {
        /// The term the refused write was fenced at.
        term: Revision,
    },
    /// The store has been shut down.
    #[error("store is closed")]
    Closed,
}

/// `.or_backend()?`: turns any backend error into [`StoreError::Backend`].
pub(crate) trait OrBackend<T> {
    fn or_backend(self) -> Result<T, StoreError>;
}

impl<T, E: std::fmt::Display> OrBackend<T> for Result<T, E> {
    fn or_backend(self) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Backend(e.to_string()))
    }
}
