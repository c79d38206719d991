//! Forgets STOPPED tasks once they are older than the retention (ECS keeps them about an
//! hour). Level-triggered: each pass lists every task and deletes the expired ones, so a
//! restart loses nothing but a little time.

use std::sync::Arc;
use std::time::Duration;

use berth_model::{keys, Clock, Task, TaskStatus};
use berth_store::{Store, StoreExt, Txn};

pub struct Reaper {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    retention_secs: f64,
}

/// Whether a task should be forgotten at `now`.
pub(crate) fn expired(t: &Task, now: f64, retention_secs: f64) -> bool {
    t.last_status == TaskStatus::Stopped
        && t.stopped_at.is_some_and(|at| now - at >= retention_secs)
}

impl Reaper {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, retention_secs: f64) -> Self {
        Self {
            store,
            clock,
            retention_secs,
        }
    }

    /// One pass; returns how many tasks were removed.
    pub async fn run_once(&self) -> Result<usize, berth_store::StoreError> {
        let now = self.clock.now();
        let tasks = self.store.list_json::<Task>("tasks/").await?;
        let mut removed = 0;
        for (key, t, rev) in tasks {
            if !expired(&t, now, self.retention_secs) {
                continue;
            }
            let mut txn = Txn::new().when_mod_revision(key.clone(), rev).delete(key);
            if let Some(i) = &t.container_instance_id {
                txn = txn.delete(keys::assignment(i, &t.id));
            }
            if let Some(svc) = t.service_name() {
                txn = txn.delete(keys::service_task(&t.cluster, svc, &t.id));
            }
            if let berth_store::TxnResult::Committed { .. } = self.store.txn(txn).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Runs a pass every `every` until the task is dropped.
    pub async fn run(self, every: Duration) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "task reaper pass failed");
            }
            tokio::time::sleep(every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_stopped_tasks_expire() {
        let mut t: Task = serde_json::from_value(serde_json::json!({
            "id": "t", "cluster": "c", "family": "f", "revision": 1,
            "lastStatus": "RUNNING", "desiredStatus": "RUNNING", "launchType": "EC2",
            "cpu": 0, "memory": 8, "createdAt": 1.0, "containers": []}))
        .unwrap();
        assert!(!expired(&t, 10_000.0, 3600.0));
        t.last_status = TaskStatus::Stopped;
        t.stopped_at = Some(100.0);
        assert!(!expired(&t, 3000.0, 3600.0));
        assert!(expired(&t, 3700.0, 3600.0));
    }
}
