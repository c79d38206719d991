//! The backend-neutral data model: keys, records, transactions and events.

/// A store revision: the etcd-style global counter, bumped by exactly one for
/// every transaction that writes something. `0` means "before the first write"
/// (and, in a [`Compare`], "the key does not exist").
pub type Revision = u64;

/// A record as stored under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full path key, e.g. `tasks/{cluster}/{id}`.
    pub key: String,
    /// The stored bytes. Opaque to the store; callers store JSON and read it back
    /// with [`StoreExt`](crate::StoreExt).
    pub value: Vec<u8>,
    /// The revision of the write that created this key (since its last delete).
    pub create_revision: Revision,
    /// The revision of the last write to this key.
    pub mod_revision: Revision,
}

/// A precondition of a [`Txn`]; all of them must hold for its ops to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's mod_revision equals this (0 means: the key must not exist).
    ModRevision {
        /// The key whose mod_revision is checked; it need not exist.
        key: String,
        /// The mod_revision it must have; 0 means it must not exist.
        revision: Revision,
    },
}

/// A write inside a [`Txn`]. Ops apply in order, all at the txn's revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or overwrite `key`. Overwriting keeps its `create_revision`.
    Put {
        /// The key to create or overwrite.
        key: String,
        /// The new value, replacing any previous one.
        value: Vec<u8>,
    },
    /// Remove `key`. Deleting a missing key is a no-op (it produces no event).
    Delete {
        /// The key to remove; a missing key makes this a no-op.
        key: String,
    },
}

/// An atomic compare-and-write transaction: if every compare holds, every op
/// applies at one new revision; otherwise nothing is written.
///
/// ```
/// use berth_store::Txn;
/// let txn = Txn::new()
///     .when_absent("clusters/default")
///     .put("clusters/default", b"{}".to_vec());
/// assert!(!txn.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// Preconditions, all of which must hold for anything to be written.
    pub compares: Vec<Compare>,
    /// Writes applied in order, at one revision, if every compare holds.
    pub ops: Vec<Op>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Require that `key` does not exist.
    pub fn when_absent(self, key: impl Into<String>) -> Self {
        self.when_mod_revision(key, 0)
    }

    /// Require that `key`'s mod_revision is `rev` (0: the key must not exist).
    pub fn when_mod_revision(mut self, key: impl Into<String>, rev: Revision) -> Self {
        self.compares.push(Compare::ModRevision {
            key: key.into(),
            revision: rev,
        });
        self
    }

    /// Put `value` under `key`.
    pub fn put(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Delete `key` (a no-op if it does not exist).
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }

    /// True when the txn has neither compares nor ops.
    pub fn is_empty(&self) -> bool {
        self.compares.is_empty() && self.ops.is_empty()
    }
}

/// The outcome of [`Store::txn`](crate::Store::txn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    /// Every compare held and the ops were applied (durably) at `revision`.
    /// If no op changed anything, `revision` is the current store revision
    /// and it was not bumped.
    Committed {
        /// The revision the ops were applied at (or the current one if nothing changed).
        revision: Revision,
    },
    /// A compare failed; nothing was written. `key` is the first compare that failed.
    Conflict {
        /// The key of the first compare that failed.
        key: String,
    },
}

/// What happened to a key in a [`WatchEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or overwritten.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change to one key, as delivered by [`Store::watch`](crate::Store::watch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// Whether the key was written or deleted.
    pub kind: EventKind,
    /// For `Put`: the record as written. For `Delete`: the value is empty,
    /// `mod_revision` is the deleting revision and `create_revision` is the
    /// deleted record's.
    pub kv: KeyValue,
}

impl WatchEvent {
    /// The revision of the txn that produced this event.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}
