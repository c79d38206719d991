//! Surviving storage faults: the open database behind a lock, reopened after an I/O error.
//!
//! redb refuses every operation after a failed write or fsync ("Previous I/O error occurred.
//! Please close and re-open the database") because it can no longer trust its in-memory view
//! of the file. A server that keeps that handle is dead until someone restarts it, so the
//! writer thread, which sees every write fault first, marks the store unhealthy, drops the
//! handle and opens the file again (redb's recovery on open restores the last committed
//! state, so nothing acknowledged is lost). While the disk still refuses writes (a full disk)
//! the writer keeps retrying with a small probe commit; the store is healthy again only once
//! a commit has reached the disk. [`Db::healthy`] is what `/ping` reports meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use redb::{Database, ReadableTable, TableDefinition};

use crate::error::{OrBackend, StoreError};

/// Opens the database again after a fault (the file, with the same options).
pub(super) type Opener = Box<dyn Fn() -> Result<Database, StoreError> + Send + Sync>;

/// Where the probe commit writes: its own table, so it never touches a revision.
const PROBE: TableDefinition<&str, u64> = TableDefinition::new("probe");

/// The database handle shared by readers and the writer thread.
pub(super) struct Db {
    /// `None` between dropping a faulted handle and a successful reopen.
    db: RwLock<Option<Database>>,
    /// `None` for a store that cannot be reopened (in memory).
    opener: Option<Opener>,
    healthy: AtomicBool,
    /// What the last fault was, for the errors answered while there is no handle.
    last_fault: Mutex<String>,
}

impl Db {
    pub(super) fn new(db: Database, opener: Option<Opener>) -> Self {
        Self {
            db: RwLock::new(Some(db)),
            opener,
            healthy: AtomicBool::new(true),
            last_fault: Mutex::new(String::new()),
        }
    }

    /// Runs `f` on the open database, or fails at once while it is being reopened.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(db) => f(db),
            None => Err(StoreError::Backend(format!(
                "the store is unavailable until it can be reopened (last fault: {})",
                self.last_fault
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            ))),
        }
    }

    /// Whether the last write (or probe) reached the disk.
    pub(super) fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// A write reached the disk.
    pub(super) fn mark_ok(&self) {
        if !self.healthy.swap(true, Ordering::Relaxed) {
            tracing::warn!("the store accepts writes again");
        }
    }

    /// A write failed with `msg`: unhealthy until a commit succeeds again.
    pub(super) fn mark_fault(&self, msg: &str) {
        self.healthy.store(false, Ordering::Relaxed);
        *self
            .last_fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = msg.to_owned();
    }

    /// Drops the faulted handle and opens the file again. Returns whether a handle is open
    /// (a store without an opener keeps its handle).
    pub(super) fn reopen(&self) -> bool {
        let Some(opener) = &self.opener else {
            return true;
        };
        let mut guard = self.db.write().unwrap_or_else(PoisonError::into_inner);
        // The old handle holds the file's lock: it must be gone before the file is opened.
        drop(guard.take());
        match opener() {
            Ok(db) => {
                *guard = Some(db);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "reopening the store failed; retrying");
                false
            }
        }
    }

    /// Commits a tiny write (durably) to learn whether the disk takes writes again.
    pub(super) fn probe(&self) -> Result<(), StoreError> {
        let result = self.with(|db| {
            let mut wtx = db.begin_write().or_backend()?;
            wtx.set_durability(redb::Durability::Immediate);
            {
                let mut t = wtx.open_table(PROBE).or_backend()?;
                let n = t.get("n").or_backend()?.map_or(0, |g| g.value());
                t.insert("n", n.wrapping_add(1)).or_backend()?;
            }
            wtx.commit().or_backend()
        });
        match &result {
            Ok(()) => self.mark_ok(),
            Err(e) => self.mark_fault(&describe(&e.to_string())),
        }
        result
    }
}

/// A write error as the client reads it: a full disk said plainly, anything else as is.
pub(super) fn describe(msg: &str) -> String {
    // ENOSPC (28) and EDQUOT (122) on Linux.
    let full = [
        "No space left",
        "os error 28",
        "Disk quota exceeded",
        "os error 122",
    ];
    if full.iter().any(|f| msg.contains(f)) && !msg.starts_with("the store's disk is full") {
        format!("the store's disk is full; free space on it ({msg})")
    } else {
        msg.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use redb::backends::FileBackend;
    use redb::{Database, StorageBackend};

    use super::{describe, Opener};
    use crate::redb_backend::RedbStore;
    use crate::{Store, StoreError, Txn, TxnResult};

    #[test]
    fn a_full_disk_is_said_plainly() {
        let m = describe("I/O error: No space left on device (os error 28)");
        assert!(m.starts_with("the store's disk is full"), "{m}");
        assert_eq!(describe(&m), m, "said once");
        assert_eq!(describe("I/O error: boom"), "I/O error: boom");
    }

    /// A file whose disk can be made "full": every write, growth and fsync then fails with
    /// ENOSPC, as a real full disk answers.
    #[derive(Debug)]
    struct FillableDisk {
        file: FileBackend,
        full: Arc<AtomicBool>,
    }

    impl FillableDisk {
        fn check(&self) -> std::io::Result<()> {
            if self.full.load(Ordering::SeqCst) {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            Ok(())
        }
    }

    impl StorageBackend for FillableDisk {
        fn len(&self) -> std::io::Result<u64> {
            self.file.len()
        }
        fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
            self.file.read(offset, len)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            if len > self.file.len()? {
                self.check()?;
            }
            self.file.set_len(len)
        }
        fn sync_data(&self, eventual: bool) -> std::io::Result<()> {
            self.check()?;
            self.file.sync_data(eventual)
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.check()?;
            self.file.write(offset, data)
        }
    }

    fn opener(path: std::path::PathBuf, full: Arc<AtomicBool>) -> Opener {
        Box::new(move || {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let file = FileBackend::new(file).map_err(|e| StoreError::Backend(e.to_string()))?;
            let disk = FillableDisk {
                file,
                full: Arc::clone(&full),
            };
            Database::builder()
                .create_with_backend(disk)
                .map_err(|e| StoreError::Backend(e.to_string()))
        })
    }

    async fn put(store: &RedbStore, key: &str) -> Result<TxnResult, StoreError> {
        store.txn(Txn::new().put(key, b"v".to_vec())).await
    }

    #[tokio::test]
    async fn a_full_disk_fails_writes_clearly_and_the_store_recovers_with_nothing_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let full = Arc::new(AtomicBool::new(false));
        let store = RedbStore::with_opener(opener(path.clone(), Arc::clone(&full))).unwrap();
        let mut acked = Vec::new();
        for i in 0..10 {
            let key = format!("k/{i:02}");
            put(&store, &key).await.unwrap();
            acked.push(key);
        }
        assert!(store.healthy());

        full.store(true, Ordering::SeqCst);
        for i in 10..13 {
            let err = put(&store, &format!("k/{i:02}")).await.unwrap_err();
            assert!(
                err.to_string().contains("the store's disk is full"),
                "{err}"
            );
            assert!(!store.healthy(), "unhealthy while the disk is full");
        }

        full.store(false, Ordering::SeqCst);
        // The writer's probe brings health back without waiting for a client's write.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !store.healthy() {
            assert!(Instant::now() < deadline, "the store never recovered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        put(&store, "k/99").await.unwrap();
        acked.push("k/99".into());
        let (kvs, _) = store.list("k/").await.unwrap();
        let have: Vec<&str> = kvs.iter().map(|kv| kv.key.as_str()).collect();
        for key in &acked {
            assert!(
                have.contains(&key.as_str()),
                "{key} was acknowledged and is lost"
            );
        }
        drop(store);
        // And on disk: a fresh open sees every acknowledged write.
        let again = RedbStore::open(&path).unwrap();
        let (kvs, _) = again.list("k/").await.unwrap();
        assert!(acked.iter().all(|k| kvs.iter().any(|kv| &kv.key == k)));
    }
}
