//! Upgrades of the stored state from one berth release to the next.
//!
//! Two mechanisms, each for what it does best:
//! - **Records migrate on read.** Every record type decodes the shape of every earlier
//!   release: a field added later has a serde default, a renamed one keeps its old name as an
//!   alias. So a record is never rewritten just because berth was upgraded; it takes the new
//!   shape the next time something changes it.
//! - **The store carries a schema version** (`meta/schema`), for what reading one record
//!   cannot do: indexes added later must exist for records written before them. [`migrate`]
//!   runs each missing step in order, before the server serves or reconciles anything, and
//!   every step is idempotent, so a crash halfway just runs it again.
//!
//! | version | what it added |
//! |---|---|
//! | 1 | (no `meta/schema` key) the layout of the releases before the control layer |
//! | 2 | the service-task index (`svctasks/CLUSTER/SERVICE/TASK`), read by the service controller |

use berth_model::{keys, Task};
use berth_store::{Store, StoreError, StoreExt, Txn, TxnResult};

/// The schema version this release writes.
pub const SCHEMA_VERSION: u32 = 2;

/// Index entries written per transaction while backfilling.
const BATCH: usize = 256;

/// Brings the stored state up to [`SCHEMA_VERSION`]; returns the version it found.
pub async fn migrate(store: &dyn Store) -> Result<u32, StoreError> {
    let found = match store.get_json::<u32>(keys::SCHEMA_VERSION).await? {
        Some((v, _)) => v,
        None if store.revision().await? == 0 => {
            // A new store: nothing to migrate.
            set_version(store).await?;
            return Ok(SCHEMA_VERSION);
        }
        None => 1,
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "the state was written by a newer berth (schema {found}; this one knows {SCHEMA_VERSION})"
        )));
    }
    if found < 2 {
        backfill_service_tasks(store).await?;
    }
    if found < SCHEMA_VERSION {
        set_version(store).await?;
        tracing::info!(from = found, to = SCHEMA_VERSION, "stored state migrated");
    }
    Ok(found)
}

async fn set_version(store: &dyn Store) -> Result<(), StoreError> {
    let bytes =
        serde_json::to_vec(&SCHEMA_VERSION).map_err(|e| StoreError::Backend(e.to_string()))?;
    store
        .txn(Txn::new().put(keys::SCHEMA_VERSION, bytes))
        .await
        .map(|_| ())
}

/// 1 → 2: an index entry for every task of a service.
async fn backfill_service_tasks(store: &dyn Store) -> Result<(), StoreError> {
    let (kvs, _) = store.list(keys::TASKS).await?;
    let mut entries = Vec::new();
    for kv in kvs {
        // A record that does not decode is left alone: the service controller skips it too.
        let Ok(t) = serde_json::from_slice::<Task>(&kv.value) else {
            tracing::warn!(key = %kv.key, "task record does not decode; not indexed");
            continue;
        };
        if let Some(svc) = t.service_name() {
            entries.push(keys::service_task(&t.cluster, svc, &t.id));
        }
    }
    for chunk in entries.chunks(BATCH) {
        let txn = chunk
            .iter()
            .fold(Txn::new(), |txn, k| txn.put(k.clone(), Vec::new()));
        if let TxnResult::Conflict { key } = store.txn(txn).await? {
            return Err(StoreError::Backend(format!("unexpected conflict on {key}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::RedbStore;

    #[tokio::test]
    async fn a_new_store_starts_at_the_current_version() {
        let store = RedbStore::in_memory().expect("store");
        assert_eq!(migrate(&store).await.expect("migrates"), SCHEMA_VERSION);
        assert_eq!(migrate(&store).await.expect("again"), SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn version_1_gets_the_service_task_index() {
        let store = RedbStore::in_memory().expect("store");
        let task = |id: &str, group: Option<&str>| {
            let mut v = serde_json::json!({
                "id": id, "cluster": "default", "family": "web", "revision": 1,
                "lastStatus": "RUNNING", "desiredStatus": "RUNNING", "launchType": "EC2",
                "cpu": 0, "memory": 64,
                "containers": [], "createdAt": 1.0, "version": 1
            });
            if let Some(g) = group {
                v["group"] = serde_json::json!(g);
            }
            serde_json::to_vec(&v).expect("json")
        };
        let txn = Txn::new()
            .put(keys::task("default", "t1"), task("t1", Some("service:web")))
            .put(keys::task("default", "t2"), task("t2", Some("family:web")))
            .put(keys::task("default", "t3"), b"not json".to_vec());
        store.txn(txn).await.expect("writes");
        assert_eq!(migrate(&store).await.expect("migrates"), 1);
        let (idx, _) = store
            .list(&keys::service_tasks_of("default", "web"))
            .await
            .expect("lists");
        let ids: Vec<&str> = idx.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(ids, ["svctasks/default/web/t1"]);
        assert_eq!(migrate(&store).await.expect("again"), SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let store = RedbStore::in_memory().expect("store");
        store
            .txn(Txn::new().put(keys::SCHEMA_VERSION, b"99".to_vec()))
            .await
            .expect("writes");
        assert!(migrate(&store).await.is_err());
    }
}
