//! Forgets STOPPED tasks once they are older than the retention (ECS keeps them about an
//! hour). Level-triggered: each pass lists every task and deletes the expired ones, so a
//! restart loses nothing but a little time.

use std::sync::Arc;
use std::time::Duration;

use berth_model::{keys, Clock, Task, TaskStatus};
use berth_store::{Store, StoreExt, Txn};
use tokio_util::sync::CancellationToken;

/// Deletes STOPPED tasks once their retention has passed.
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
    /// A reaper that forgets tasks `retention_secs` after they stopped.
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
            // The task's address, unless another task holds it by now.
            if let Some(eni) = &t.eni {
                let akey = keys::ec2_address(&eni.subnet_id, &eni.ip);
                if let Some((h, arev)) = self
                    .store
                    .get_json::<berth_model::vpc::AddressHolder>(&akey)
                    .await?
                {
                    if h.task_id == t.id && h.cluster == t.cluster {
                        txn = txn.when_mod_revision(akey.clone(), arev).delete(akey);
                    }
                }
            }
            if let berth_store::TxnResult::Committed { .. } = self.store.txn(txn).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Runs a pass every `every` until `stop` is cancelled (a pass under way completes).
    pub async fn run(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "task reaper pass failed");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
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

    /// `run` passes until its token is cancelled, then returns (no pass is cut short).
    #[tokio::test]
    async fn run_reaps_and_returns_once_stopped() {
        let store: Arc<dyn Store> = Arc::new(berth_store::RedbStore::in_memory().unwrap());
        let clock: Arc<dyn Clock> = Arc::new(berth_model::SystemClock);
        let stopped: Task = serde_json::from_value(serde_json::json!({
            "id": "t", "cluster": "c", "family": "f", "revision": 1,
            "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "launchType": "EC2",
            "cpu": 0, "memory": 8, "createdAt": 1.0, "stoppedAt": 2.0, "containers": []}))
        .unwrap();
        let key = &keys::task("c", "t");
        store
            .txn(Txn::new().put(key, serde_json::to_vec(&stopped).unwrap()))
            .await
            .unwrap();
        let reaper = Arc::new(Reaper::new(store.clone(), clock, 60.0));
        let stop = CancellationToken::new();
        let run = tokio::spawn(reaper.run(Duration::from_millis(10), stop.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while store.get(key).await.unwrap().is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the task was not reaped"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("run returns once stopped")
            .unwrap();
    }
}
