//! The backend-neutral [`Store`] trait and the JSON helpers on top of it.

use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;

use crate::election::Election;
use crate::error::StoreError;
use crate::types::{KeyValue, Revision, Txn, TxnResult, WatchEvent};

/// A boxed, `Send` future borrowing the store.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed, `Send` stream that owns everything it needs.
pub type BoxStream<T> = Pin<Box<dyn futures::Stream<Item = T> + Send>>;

/// A transactional, revisioned key-value store with prefix watches.
///
/// Object-safe so callers hold `Arc<dyn Store>`; an etcd backend will implement it too.
pub trait Store: Send + Sync + 'static {
    /// The record under `key`, if any.
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>, StoreError>>;

    /// All keys starting with `prefix`, sorted by key, plus the store revision the read saw.
    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>>;

    /// Atomically check `txn.compares` and, if they all hold, apply `txn.ops`.
    /// `Ok(Committed)` means the write is durable.
    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResult, StoreError>>;

    /// The current store revision (that of the last write).
    fn revision(&self) -> BoxFuture<'_, Result<Revision, StoreError>>;

    /// Every event on keys under `prefix` with revision > `after`, in revision order, then live
    /// ones as they commit. Err(Compacted) as the first item if `after` is older than the
    /// retained history. The stream ends after yielding an error.
    fn watch(&self, prefix: &str, after: Revision) -> BoxStream<Result<WatchEvent, StoreError>>;

    /// Whether the store takes writes now. False after a storage fault (an I/O error, a full
    /// disk) until the backend has recovered; `/ping` answers 503 meanwhile. A backend that
    /// cannot tell says true.
    fn healthy(&self) -> bool {
        true
    }

    /// Joins the election of the replicas sharing this store as `replica` (see
    /// [`Election`]). A store only one process can hold has one replica, always the leader.
    /// Must be called inside a Tokio runtime.
    fn elect(&self, replica: &str) -> Election {
        Election::sole(replica)
    }
}

/// JSON helpers on any [`Store`], including `dyn Store`.
pub trait StoreExt {
    /// The JSON value under `key` and its mod_revision.
    fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> BoxFuture<'_, Result<Option<(T, Revision)>, StoreError>>;

    /// Every JSON value under `prefix` as `(key, value, mod_revision)`, sorted by key.
    #[allow(clippy::type_complexity)] // spelled out on purpose: it is the whole contract
    fn list_json<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> BoxFuture<'_, Result<Vec<(String, T, Revision)>, StoreError>>;
}

impl<S: Store + ?Sized> StoreExt for S {
    fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> BoxFuture<'_, Result<Option<(T, Revision)>, StoreError>> {
        let get = self.get(key);
        Box::pin(async move {
            match get.await? {
                None => Ok(None),
                Some(kv) => Ok(Some((decode(&kv)?, kv.mod_revision))),
            }
        })
    }

    #[allow(clippy::type_complexity)] // spelled out on purpose: it is the whole contract
    fn list_json<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> BoxFuture<'_, Result<Vec<(String, T, Revision)>, StoreError>> {
        let list = self.list(prefix);
        Box::pin(async move {
            let (kvs, _) = list.await?;
            kvs.into_iter()
                .map(|kv| {
                    let value = decode(&kv)?;
                    Ok((kv.key, value, kv.mod_revision))
                })
                .collect()
        })
    }
}

fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<T, StoreError> {
    serde_json::from_slice(&kv.value).map_err(|source| StoreError::Decode {
        key: kv.key.clone(),
        source,
    })
}
