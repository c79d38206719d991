//! The state store of berth's control plane.
//!
//! Every piece of control-plane state (clusters, task definitions, tasks,
//! services, ...) lives in a [`Store`] under a typed path key such as
//! `clusters/{name}`, `taskdefs/{family}/{rev}` or `tasks/{cluster}/{id}`.
//! Callers read with [`Store::get`] and [`Store::list`] (by key prefix),
//! write with [`Store::txn`], and follow changes with [`Store::watch`].
//! Secondary indexes are plain keys that callers maintain in the same
//! transaction as the record they index.
//!
//! # Revision model
//!
//! The model is etcd v3's, so an etcd backend can replace the built-in one
//! without touching callers. A global [`Revision`] counter is bumped by
//! exactly one for each transaction that writes something; every key carries
//! the revision that created it (`create_revision`) and the one that last
//! modified it (`mod_revision`). A [`Txn`] is a list of [`Compare`]s on
//! mod_revisions (optimistic concurrency: read a record, then write it "if it
//! is still at the revision I read") and a list of [`Op`]s applied atomically
//! at one revision if every compare holds. A failed compare yields
//! [`TxnResult::Conflict`] and writes nothing. Watches replay the retained
//! history after a given revision and then stream live events in revision
//! order; history older than the retention window is reported as
//! [`StoreError::Compacted`].
//!
//! # Durability
//!
//! A `txn` that returns `Ok(TxnResult::Committed { .. })` has been fsynced:
//! it survives `kill -9` of the process and a power loss.
//!
//! # The etcd backend
//!
//! [`EtcdStore`] keeps the same model in an etcd v3 cluster (berth's revision is
//! etcd's), so several berth servers can share one replicated store. Open it
//! with [`EtcdStore::connect_url`] and an `etcd://host:2379,host2:2379/namespace` URL.
//!
//! # The redb backend
//!
//! [`RedbStore`] keeps everything in one [redb](https://docs.rs/redb) file. A
//! single writer thread takes every txn queued while the previous commit was
//! in flight and applies them, in order, in one redb write transaction with
//! one fsync (group commit): concurrent writers share the cost of an fsync
//! instead of queueing behind one each. Reads never wait for the writer.
//!
//! ```no_run
//! use std::sync::Arc;
//! use berth_store::{RedbStore, Store, StoreExt, Txn, TxnResult};
//!
//! # async fn demo() -> Result<(), berth_store::StoreError> {
//! let store: Arc<dyn Store> = Arc::new(RedbStore::open("/var/lib/berth/state.redb".as_ref())?);
//! let put = Txn::new().when_absent("clusters/default").put("clusters/default", br#"{"n":1}"#.to_vec());
//! match store.txn(put).await? {
//!     TxnResult::Committed { revision } => println!("created at {revision}"),
//!     TxnResult::Conflict { key } => println!("{key} already exists"),
//! }
//! let cluster: Option<(serde_json::Value, u64)> = store.get_json("clusters/default").await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod election;
mod error;
mod etcd_backend;
mod redb_backend;
mod retry;
pub mod seal;
pub mod snapshot;
mod store;
mod types;

pub use crate::{
    election::{Election, Fenced, Leadership, LEADER_KEY},
    error::StoreError,
    etcd_backend::{EtcdStore, EtcdTarget, DEFAULT_NAMESPACE, LEASE_TTL, MIN_MAX_TXN_OPS},
    redb_backend::{owner_only, RedbStore},
    retry::{update_json, Retry, Update, UpdateError, CONTENTION_DEADLINE},
    seal::{SealError, Sealer},
    store::{BoxFuture, BoxStream, Store, StoreExt},
    types::{Compare, EventKind, KeyValue, Op, Revision, Txn, TxnResult, WatchEvent},
};
