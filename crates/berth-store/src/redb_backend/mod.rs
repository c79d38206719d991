//! The redb backend: one file (or memory), one writer thread, group commit.

mod codec;
mod fault;
mod watch;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, oneshot};

use crate::error::{OrBackend, StoreError};
use crate::store::{BoxFuture, BoxStream, Store};
use crate::types::{KeyValue, Revision, Txn, TxnResult, WatchEvent};

/// key -> record (see [`codec`]).
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// Bookkeeping counters, see the `META_*` names.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// revision -> every event of that revision's txn (see [`codec`]).
const CHANGELOG: TableDefinition<u64, &[u8]> = TableDefinition::new("changelog");

/// The store revision (that of the last write).
const META_REVISION: &str = "revision";
/// The highest revision trimmed from the changelog; watches need `after >= compacted`.
const META_COMPACTED: &str = "compacted";
/// The on-disk layout version.
const META_FORMAT: &str = "format";
const FORMAT: u64 = 1;

/// How many revisions of watch history are kept unless [`RedbStore::with_history`] says otherwise.
const DEFAULT_HISTORY: u64 = 10_000;
/// Committed txns buffered per watcher before it falls back to re-reading the changelog.
const BROADCAST_CAPACITY: usize = 1024;

/// State shared by the handle, the writer thread and (weakly) watch streams.
struct Shared {
    /// The open file, reopened by the writer after an I/O fault (see [`fault`]).
    db: fault::Db,
    /// Every committed write txn, in revision order.
    events: broadcast::Sender<Arc<writer::Committed>>,
    /// Changelog revisions to retain; read by the writer at every batch.
    history: AtomicU64,
    /// Number of redb write transactions committed (test-only observability of group commit).
    #[cfg(test)]
    commits: AtomicU64,
    /// Held by a test to make the writer wait after taking a batch's first txn.
    #[cfg(test)]
    gate: std::sync::Mutex<()>,
}

/// A [`Store`] on [redb](https://docs.rs/redb): a single file (or memory) and
/// a dedicated writer thread that group-commits concurrent txns with one fsync.
///
/// Every read (`get`, `list`, `revision`, watch replays) runs on
/// `tokio::task::spawn_blocking`, so the futures and streams must be polled
/// inside a Tokio runtime. A read transaction never waits for the writer, but
/// its B-tree lookups are file reads, and a page that is not cached yet costs a
/// disk read: done inline, that stalls a runtime worker and every task queued on
/// it (API requests, the load balancer's health checks) for as long.
///
/// Dropping the store lets the writer finish the txns already queued, then
/// joins it and closes the file; open watch streams then end with
/// [`StoreError::Closed`].
pub struct RedbStore {
    shared: Arc<Shared>,
    requests: Option<mpsc::Sender<writer::Request>>,
    writer: Option<JoinHandle<()>>,
}

/// Creates `path` if missing and restricts it to its owner (mode 0600), before redb opens it,
/// so the file is never readable by others even for a moment.
pub fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl RedbStore {
    /// Open (or create) the store file at `path`. Only one process may have it open.
    /// The file is made readable by its owner only (0600): it holds the cluster's state.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        owner_only(path)
            .map_err(|e| StoreError::Backend(format!("securing {}: {e}", path.display())))?;
        let owned = path.to_path_buf();
        let opener: fault::Opener = Box::new(move || {
            Database::create(&owned)
                .map_err(|e| StoreError::Backend(format!("opening {}: {e}", owned.display())))
        });
        let db = opener()?;
        Self::start(db, Some(opener))
    }

    /// A store whose file is opened (and reopened after a fault) by `opener`: tests inject
    /// storage faults through a backend of their own.
    #[cfg(test)]
    pub(crate) fn with_opener(opener: fault::Opener) -> Result<Self, StoreError> {
        let db = opener()?;
        Self::start(db, Some(opener))
    }

    /// A store that lives in memory only (tests, dry runs). Nothing is durable.
    pub fn in_memory() -> Result<Self, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .or_backend()?;
        Self::start(db, None)
    }

    /// Keep the changelog of the last `revisions` revisions for watch replay
    /// (default 10 000). Older history is trimmed at the next write, after
    /// which watches starting before it fail with [`StoreError::Compacted`].
    pub fn with_history(self, revisions: u64) -> Self {
        self.shared.history.store(revisions, Ordering::Relaxed);
        self
    }

    fn start(db: Database, opener: Option<fault::Opener>) -> Result<Self, StoreError> {
        init_tables(&db)?;
        let db = fault::Db::new(db, opener);
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let shared = Arc::new(Shared {
            db,
            events,
            history: AtomicU64::new(DEFAULT_HISTORY),
            #[cfg(test)]
            commits: AtomicU64::new(0),
            #[cfg(test)]
            gate: std::sync::Mutex::new(()),
        });
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("berth-store-writer".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || writer::run(&shared, &rx)
            })
            .map_err(|e| StoreError::Backend(format!("starting the writer thread: {e}")))?;
        Ok(Self {
            shared,
            requests: Some(tx),
            writer: Some(writer),
        })
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Closing the channel makes the writer drain what is queued and exit.
        drop(self.requests.take());
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("the store writer thread panicked");
            }
        }
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("history", &self.shared.history.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Store for RedbStore {
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>, StoreError>> {
        let key = key.to_owned();
        Box::pin(read(&self.shared, "get", move |db| read_get(db, &key)))
    }

    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>> {
        let prefix = prefix.to_owned();
        Box::pin(read(&self.shared, "list", move |db| read_list(db, &prefix)))
    }

    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResult, StoreError>> {
        Box::pin(async move {
            let requests = self.requests.as_ref().ok_or(StoreError::Closed)?;
            let (reply, answer) = oneshot::channel();
            requests
                .send(writer::Request { txn, reply })
                .map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn revision(&self) -> BoxFuture<'_, Result<Revision, StoreError>> {
        Box::pin(read(&self.shared, "revision", |db| {
            let rtx = db.begin_read().or_backend()?;
            let meta = rtx.open_table(META).or_backend()?;
            meta_get(&meta, META_REVISION)
        }))
    }

    fn watch(&self, prefix: &str, after: Revision) -> BoxStream<Result<WatchEvent, StoreError>> {
        watch::stream(&self.shared, prefix, after)
    }

    fn healthy(&self) -> bool {
        self.shared.db.healthy()
    }
}

/// Runs the read `f` on Tokio's blocking pool (see [`RedbStore`] for why).
async fn read<T, F>(shared: &Arc<Shared>, what: &str, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
{
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || shared.db.with(f))
        .await
        .map_err(|e| StoreError::Backend(format!("{what} task: {e}")))?
}

/// Creates the tables and checks the layout version.
fn init_tables(db: &Database) -> Result<(), StoreError> {
    let mut wtx = db.begin_write().or_backend()?;
    wtx.set_durability(redb::Durability::Immediate);
    {
        wtx.open_table(KV).or_backend()?;
        wtx.open_table(CHANGELOG).or_backend()?;
        let mut meta = wtx.open_table(META).or_backend()?;
        let format = meta.get(META_FORMAT).or_backend()?.map(|g| g.value());
        match format {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(StoreError::Backend(format!(
                    "store file has layout version {other}, this build reads {FORMAT}"
                )))
            }
            None => {
                meta.insert(META_FORMAT, FORMAT).or_backend()?;
            }
        }
    }
    wtx.commit().or_backend()
}

fn meta_get(meta: &impl ReadableTable<&'static str, u64>, name: &str) -> Result<u64, StoreError> {
    Ok(meta.get(name).or_backend()?.map_or(0, |g| g.value()))
}

fn read_get(db: &Database, key: &str) -> Result<Option<KeyValue>, StoreError> {
    let rtx = db.begin_read().or_backend()?;
    let kv = rtx.open_table(KV).or_backend()?;
    let found = kv.get(key).or_backend()?;
    found
        .map(|g| codec::record_to_kv(key, g.value()))
        .transpose()
}

fn read_list(db: &Database, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
    let rtx = db.begin_read().or_backend()?;
    let meta = rtx.open_table(META).or_backend()?;
    let kv = rtx.open_table(KV).or_backend()?;
    let revision = meta_get(&meta, META_REVISION)?;
    let mut out = Vec::new();
    for item in kv.range::<&str>(prefix..).or_backend()? {
        let (key, value) = item.or_backend()?;
        let key = key.value();
        if !key.starts_with(prefix) {
            break;
        }
        out.push(codec::record_to_kv(key, value.value())?);
    }
    Ok((out, revision))
}

#[cfg(test)]
mod tests;
