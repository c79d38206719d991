//! PROVISIONING tasks: a task launched through a capacity provider that found no room waits
//! with no container instance (as ECS holds it) until its provider's hosts can take it.
//!
//! [`Launcher::place_waiting`] is the level-triggered step: it reads the cluster, stops the
//! waiting tasks that were asked to stop or waited past the timeout (stopCode
//! `TaskFailedToStart`), and places the others with the same scheduler call and the same
//! per-cluster lock and `placement/` compare-and-swap as a launch, so there is one placement
//! path. The provisioning loop in [`super::ManagedScaling`] calls it for every cluster with
//! waiting tasks, on every instance change and on a short period.

use std::collections::BTreeMap;

use berth_model::{keys, ApiError, DesiredStatus, StopCode, Task, TaskDefinition, TaskStatus};
use berth_sched::InstanceView;
use berth_store::{StoreExt, Txn, TxnResult};

use crate::launch::{instance_views, place, LaunchSpec, Launcher, ProviderTarget};
use crate::lifecycle::{force_stopped, write_task};
use crate::snapshot::ClusterSnapshot;
use crate::store_err;

/// Whether a task is waiting for capacity: launched through a provider, not yet placed.
pub fn is_waiting(t: &Task) -> bool {
    t.container_instance_id.is_none()
        && t.capacity_provider_name.is_some()
        && t.last_status != TaskStatus::Stopped
}

/// The stopped reason of a task that waited too long: ECS's words (`EMPTY CAPACITY
/// PROVIDER`, with stopCode `TaskFailedToStart`), then what berth knows.
pub fn timeout_reason(provider: &str, secs: f64) -> String {
    format!(
        "EMPTY CAPACITY PROVIDER: the task stayed in PROVISIONING for {secs:.0} seconds \
         without capacity from capacity provider {provider}."
    )
}

/// Tasks that can be placed with one scheduler call: same provider, definition and group.
type BatchKey = (String, String, u32, Option<String>);

impl Launcher {
    /// Places, times out or stops the cluster's PROVISIONING tasks; returns how many tasks it
    /// changed. Waiting tasks older than `timeout_secs` stop with `TaskFailedToStart`.
    pub async fn place_waiting(
        &self,
        cluster: &str,
        now: f64,
        timeout_secs: f64,
        arn_of: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<usize, ApiError> {
        let lock = self.lock_for(cluster);
        let _guard = lock.lock().await;
        let mut changed = 0;
        // One batch per transaction, so each batch sees the capacity the previous one took.
        for _ in 0..64 {
            let mut retry = berth_store::Retry::new();
            let mut done = None;
            while retry.next().await {
                if let Some(n) = self
                    .waiting_pass(cluster, now, timeout_secs, arn_of)
                    .await?
                {
                    done = Some(n);
                    break;
                }
            }
            match done {
                Some(0) => break,
                Some(n) => changed += n,
                None => return Err(ApiError::server("Too many concurrent placements; retry.")),
            }
        }
        Ok(changed)
    }

    /// One transaction: stops what must stop, places one batch. `None` on a lost race.
    async fn waiting_pass(
        &self,
        cluster: &str,
        now: f64,
        timeout_secs: f64,
        arn_of: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Option<usize>, ApiError> {
        let store = &*self.store;
        let pkey = format!("placement/{cluster}");
        let prev = store.get(&pkey).await.map_err(store_err)?;
        let prev_rev = prev.as_ref().map_or(0, |kv| kv.mod_revision);
        let snap = ClusterSnapshot::load(store, cluster)
            .await
            .map_err(store_err)?;
        let mut txn = Txn::new()
            .when_mod_revision(pkey.clone(), prev_rev)
            .put(pkey, now.to_string().into_bytes());
        let mut writes = 0;
        let mut batches: BTreeMap<BatchKey, Vec<(Task, u64)>> = BTreeMap::new();
        for (t, rev) in snap.tasks.iter().filter(|(t, _)| is_waiting(t)) {
            let mut t = t.clone();
            let provider = t.capacity_provider_name.clone().unwrap_or_default();
            if t.desired_status == DesiredStatus::Stopped {
                let (code, reason) = (
                    t.stop_code.unwrap_or(StopCode::UserInitiated),
                    t.stopped_reason.clone().unwrap_or_default(),
                );
                force_stopped(&mut t, code, &reason, now);
            } else if now - t.created_at >= timeout_secs {
                let reason = timeout_reason(&provider, timeout_secs);
                force_stopped(&mut t, StopCode::TaskFailedToStart, &reason, now);
            } else {
                let key = (provider, t.family.clone(), t.revision, t.group.clone());
                batches.entry(key).or_default().push((t, *rev));
                continue;
            }
            txn = write_task(txn, &t, *rev)?;
            writes += 1;
        }
        let views = instance_views(&snap, now, self.agent_timeout_secs, arn_of);
        for ((provider, family, revision, _), tasks) in batches {
            let placed = self
                .place_batch(&provider, &family, revision, &tasks, &views, now, arn_of)
                .await?;
            if placed.is_empty() {
                continue;
            }
            for (t, rev) in placed {
                txn = write_task(txn, &t, rev)?;
                writes += 1;
            }
            break;
        }
        if writes == 0 {
            return Ok(Some(0));
        }
        match store.txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } => Ok(Some(writes)),
            TxnResult::Conflict { .. } => Ok(None),
        }
    }

    /// Where the batch's tasks go now: the tasks that found an instance, with it set.
    #[allow(clippy::too_many_arguments)]
    async fn place_batch(
        &self,
        provider: &str,
        family: &str,
        revision: u32,
        tasks: &[(Task, u64)],
        views: &[InstanceView],
        now: f64,
        arn_of: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Vec<(Task, u64)>, ApiError> {
        let store = &*self.store;
        let cluster = tasks
            .first()
            .map(|(t, _)| t.cluster.as_str())
            .unwrap_or_default();
        let group = super::backing_group(store, provider, cluster)
            .await?
            .map(|(g, _)| g.auto_scaling_group_name);
        let target = ProviderTarget {
            name: provider.to_owned(),
            group,
        };
        let mine: Vec<InstanceView> = views.iter().filter(|v| target.admits(v)).cloned().collect();
        let Some((first, _)) = tasks.first() else {
            return Ok(Vec::new());
        };
        let Some((taskdef, _)) = store
            .get_json::<TaskDefinition>(&keys::taskdef(family, revision))
            .await
            .map_err(store_err)?
        else {
            return Ok(Vec::new());
        };
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let spec = LaunchSpec {
            cluster: first.cluster.clone(),
            overrides: first.overrides.clone(),
            count: tasks.len(),
            group: first.group.clone(),
            started_by: first.started_by.clone(),
            tags: Vec::new(),
            launch_type: first.launch_type.clone(),
            strategies: Vec::new(),
            constraints: Vec::new(),
            on_instances: None,
            client_token: None,
            capacity_provider: Some(target),
            // The tasks already hold their interfaces (given when they were created).
            network: None,
            fargate: None,
            taskdef,
        };
        let td = spec.overrides.apply(&spec.taskdef)?;
        let results = place(&spec, &td, &mine, now, arn_of)?;
        Ok(tasks
            .iter()
            .zip(results)
            .filter_map(|((t, rev), r)| {
                let inst = r.ok()?;
                let mut t = t.clone();
                t.container_instance_id = Some(inst);
                t.version += 1;
                Some((t, *rev))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_unplaced_through_a_provider() {
        let mut t: Task = serde_json::from_value(serde_json::json!({
            "id": "t", "cluster": "c", "family": "f", "revision": 1,
            "lastStatus": "PROVISIONING", "desiredStatus": "RUNNING", "launchType": "EC2",
            "cpu": 0, "memory": 8, "createdAt": 1.0, "containers": [],
            "capacityProviderName": "cp"
        }))
        .unwrap();
        assert!(is_waiting(&t));
        t.container_instance_id = Some("i".into());
        assert!(!is_waiting(&t));
        t.container_instance_id = None;
        t.capacity_provider_name = None;
        assert!(!is_waiting(&t));
        assert!(timeout_reason("cp", 1800.0).contains("cp"));
    }
}
