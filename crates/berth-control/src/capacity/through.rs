//! Launching through a capacity provider strategy: the tasks are split over the strategy's
//! providers by ECS's base-then-weight rule (for a service, counting its live tasks already
//! on each provider, so its replacements keep the proportions), and each share is launched on
//! its provider's host group; tasks that do not fit wait in PROVISIONING.

use berth_model::capacity::StrategyItem;
use berth_model::{ApiError, TaskStatus};
use berth_sched::capacity::{split, SplitItem};

use crate::launch::{LaunchOutcome, LaunchSpec, Launcher, ProviderTarget};
use crate::snapshot::ClusterSnapshot;
use crate::store_err;

impl Launcher {
    /// The provider `name` as a launch target in `cluster` (its host group, when it has one).
    pub async fn provider_target(
        &self,
        name: &str,
        cluster: &str,
    ) -> Result<ProviderTarget, ApiError> {
        let group = super::backing_group(&*self.store, name, cluster)
            .await?
            .map(|(g, _)| g.auto_scaling_group_name);
        Ok(ProviderTarget {
            name: name.to_owned(),
            group,
        })
    }

    /// Launches `spec.count` tasks through `items` (a validated strategy); the launch type of
    /// a share on `FARGATE` / `FARGATE_SPOT` is `FARGATE`.
    pub async fn launch_through(
        &self,
        spec: &LaunchSpec,
        items: &[StrategyItem],
        now: f64,
        arn_of: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<LaunchOutcome, ApiError> {
        // A service's tasks are split as a whole (its replacements keep the proportions);
        // each RunTask splits only its own tasks, as ECS does.
        let existing: Vec<u32> = match spec.group.as_ref().filter(|g| g.starts_with("service:")) {
            Some(group) => {
                let snap = ClusterSnapshot::load(&*self.store, &spec.cluster)
                    .await
                    .map_err(store_err)?;
                items
                    .iter()
                    .map(|i| {
                        snap.tasks
                            .iter()
                            .filter(|(t, _)| {
                                t.group.as_ref() == Some(group)
                                    && t.last_status != TaskStatus::Stopped
                                    && t.capacity_provider_name.as_deref()
                                        == Some(i.capacity_provider.as_str())
                            })
                            .count() as u32
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let split_items: Vec<SplitItem> = items
            .iter()
            .map(|i| SplitItem {
                base: i.base,
                weight: i.weight,
            })
            .collect();
        let shares = split(&split_items, &existing, spec.count as u32);
        let mut out = LaunchOutcome::default();
        for (item, n) in items.iter().zip(shares) {
            if n == 0 {
                continue;
            }
            let mut one = spec.clone();
            one.count = n as usize;
            if super::is_builtin(&item.capacity_provider) {
                one.launch_type = "FARGATE".into();
            }
            one.capacity_provider = Some(
                self.provider_target(&item.capacity_provider, &spec.cluster)
                    .await?,
            );
            let got = self.launch(&one, now, arn_of).await?;
            out.tasks.extend(got.tasks);
            out.failures.extend(got.failures);
        }
        Ok(out)
    }
}
