//! Hosts whose agent has been silent too long: their tasks are stopped, so services replace
//! them. When the host returns, its agent no longer finds them assigned and stops them.
//!
//! One key per cluster ([`Key::Hosts`](super::Key)): woken by any write to one of its
//! instances, and requeued for the moment the next silent host would cross the timeout (no
//! write announces silence).

use std::time::Duration;

use berth_model::{keys, ApiError, ContainerInstance, InstanceStatus, StopCode};
use berth_store::StoreExt;

use super::{host_lost, ServiceController};
use crate::lifecycle;
use crate::runtime::Action;
use crate::store_err;

/// The longest a cluster's host check waits between two looks while it has live hosts.
const MAX_HOST_CHECK_SECS: f64 = 5.0;

impl ServiceController {
    pub(super) async fn reconcile_hosts(&self, cluster: &str) -> Result<Action, ApiError> {
        let now = self.clock.now();
        let instances = self
            .store
            .list_json::<ContainerInstance>(&keys::instances_of(cluster))
            .await
            .map_err(store_err)?;
        let mut next: Option<f64> = None;
        for (_, inst, _) in &instances {
            if inst.status == InstanceStatus::Inactive {
                continue;
            }
            match host_lost(inst, now, self.started_at, self.cfg.host_lost_secs) {
                Some(silent) => self.give_up(inst, silent, now).await?,
                None => {
                    let left = inst.last_seen.max(self.started_at) + self.cfg.host_lost_secs - now;
                    next = Some(next.map_or(left, |n: f64| n.min(left)));
                }
            }
        }
        Ok(match next {
            // Just past the moment, so the check that follows finds the host lost.
            Some(left) => Action::RequeueAfter(Duration::from_secs_f64(
                (left + 0.01).clamp(0.05, MAX_HOST_CHECK_SECS),
            )),
            None => Action::Done,
        })
    }

    /// Stops every task still assigned to the lost host `inst`.
    async fn give_up(
        &self,
        inst: &ContainerInstance,
        silent: f64,
        now: f64,
    ) -> Result<(), ApiError> {
        let (assigned, _) = self
            .store
            .list(&keys::assignments_of(&inst.id))
            .await
            .map_err(store_err)?;
        let reason = super::decide::events::host_lost_reason(&inst.id, silent);
        for kv in assigned {
            let Some(task_id) = kv.key.rsplit('/').next() else {
                continue;
            };
            let after = lifecycle::update_task(&self.store, &inst.cluster, task_id, |t| {
                if t.container_instance_id.as_deref() == Some(inst.id.as_str())
                    && t.holds_resources()
                {
                    lifecycle::force_stopped(t, StopCode::InfrastructureHealth, &reason, now);
                    true
                } else {
                    false
                }
            })
            .await?;
            if after.is_some_and(|t| !t.holds_resources()) {
                tracing::warn!(task = %task_id, instance = %inst.id, "host lost; task stopped");
            }
        }
        Ok(())
    }
}
