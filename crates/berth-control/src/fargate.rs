//! FARGATE capacity: the pools FARGATE tasks may use, and the controller that keeps berth's
//! managed host groups sized to the FARGATE tasks of each cluster.
//!
//! Why a controller of its own: Fargate has no hosts the user sees or sizes, so berth must
//! (a) hold a FARGATE task that fits nowhere in PROVISIONING rather than fail it, (b) grow the
//! provider's managed host group until it fits, and (c) let empty hosts go after an idle
//! time. The host group controller (the `hostgroups` part) converges hosts to the group's
//! `desired_capacity`; this controller only writes that number (compare-and-swap) and the
//! hosts' scale-in protection, so hosts holding tasks are never the ones taken.
//!
//! Level-triggered: each pass reads the cluster (tasks, instances, the group and its host
//! records), decides with [`berth_model::fargate::size_group`] (pure) and writes; the idle
//! time of a host is derived from the records (its launch time and the last stop of a task
//! on it), so a restart loses nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth_model::capacity::{FARGATE, FARGATE_SPOT};
use berth_model::fargate::{self, FargateTask, ManagedHost};
use berth_model::hostgroup::{
    instance_type_size, HostGroup, HostRecord, LaunchConfiguration, ATTR_HOST_GROUP, ATTR_HOST_ID,
};
use berth_model::{keys, ApiError, Clock, Cluster, DesiredStatus, StopCode, Task, TaskStatus};
use berth_sched::InstanceView;
use berth_store::{Store, StoreExt, Txn, TxnResult};
use tokio_util::sync::CancellationToken;

use crate::snapshot::ClusterSnapshot;
use crate::{lifecycle, store_err, Launcher};

/// Whether an instance may take a task: FARGATE tasks (`fargate` set) only their provider's
/// managed hosts, every other task only hosts that are not managed.
pub fn in_pool(v: &InstanceView, cluster: &str, fargate: Option<&FargateTask>) -> bool {
    let group = v.attributes.get(ATTR_HOST_GROUP).and_then(|g| g.as_deref());
    match fargate {
        Some(f) => {
            let want = fargate::managed_group_name(&f.capacity_provider_name, cluster);
            group.is_some() && group == want.as_deref()
        }
        None => !group.is_some_and(fargate::is_managed_group_name),
    }
}

/// A FARGATE task waiting for managed capacity: no instance yet, still wanted.
pub fn is_waiting(t: &Task) -> bool {
    t.fargate.is_some()
        && t.container_instance_id.is_none()
        && t.desired_status == DesiredStatus::Running
        && t.last_status != TaskStatus::Stopped
}

/// How the managed capacity is provided and sized.
#[derive(Debug, Clone)]
pub struct FargateConfig {
    /// The host provider of managed groups (`process` by default, `docker`, `command`).
    pub provider: String,
    /// The region and account, for the groups' ARNs.
    pub region: String,
    /// The account id, for the groups' ARNs.
    pub account_id: String,
    /// Seconds an empty managed host is kept before it goes.
    pub idle_secs: f64,
    /// At most this many FARGATE hosts per cluster.
    pub max_hosts: u32,
    /// At most this many FARGATE_SPOT hosts per cluster (the spot capacity cap).
    pub spot_max_hosts: u32,
}

impl Default for FargateConfig {
    fn default() -> Self {
        Self {
            provider: "process".into(),
            region: "us-east-1".into(),
            account_id: berth_model::DEFAULT_ACCOUNT_ID.into(),
            idle_secs: 60.0,
            max_hosts: 20,
            spot_max_hosts: 10,
        }
    }
}

/// The controller of managed (FARGATE) capacity; one per server.
pub struct FargateCapacity {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    launcher: Arc<Launcher>,
    config: FargateConfig,
}

impl std::fmt::Debug for FargateCapacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FargateCapacity").finish_non_exhaustive()
    }
}

impl FargateCapacity {
    /// A controller writing through `store`, placing through `launcher`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        launcher: Arc<Launcher>,
        config: FargateConfig,
    ) -> Self {
        Self {
            store,
            clock,
            launcher,
            config,
        }
    }

    /// Runs a pass every `every` until `stop`.
    pub async fn run(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "FARGATE capacity pass failed");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One pass over every cluster.
    pub async fn run_once(&self) -> Result<(), ApiError> {
        let clusters = self
            .store
            .list_json::<Cluster>("clusters/")
            .await
            .map_err(store_err)?;
        for (_, c, _) in clusters {
            self.reconcile(&c.cluster_name).await?;
        }
        Ok(())
    }

    /// Stops waiting tasks no longer wanted, places the waiting ones that fit, and sizes the
    /// cluster's managed groups.
    pub async fn reconcile(&self, cluster: &str) -> Result<(), ApiError> {
        let now = self.clock.now();
        if !self.has_work(cluster).await? {
            return Ok(());
        }
        self.stop_unwanted(cluster, now).await?;
        self.launcher.place_waiting_fargate(cluster, now).await?;
        for provider in [FARGATE, FARGATE_SPOT] {
            self.size(cluster, provider, now).await?;
        }
        Ok(())
    }

    /// Whether the cluster has a live FARGATE task or a managed group with hosts: most
    /// clusters have neither, and a pass over them reads one prefix and two keys.
    async fn has_work(&self, cluster: &str) -> Result<bool, ApiError> {
        let tasks = self
            .store
            .list_json::<Task>(&keys::tasks_of(cluster))
            .await
            .map_err(store_err)?;
        if tasks
            .iter()
            .any(|(_, t, _)| t.fargate.is_some() && t.last_status != TaskStatus::Stopped)
        {
            return Ok(true);
        }
        for provider in [FARGATE, FARGATE_SPOT] {
            let Some(name) = fargate::managed_group_name(provider, cluster) else {
                continue;
            };
            let group = self
                .store
                .get_json::<HostGroup>(&keys::host_group(&name))
                .await
                .map_err(store_err)?;
            if group.is_some_and(|(g, _)| g.desired_capacity > 0) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A waiting task asked to stop has no agent to stop it: it is STOPPED here.
    async fn stop_unwanted(&self, cluster: &str, now: f64) -> Result<(), ApiError> {
        let tasks = self
            .store
            .list_json::<Task>(&keys::tasks_of(cluster))
            .await
            .map_err(store_err)?;
        for (_, mut t, rev) in tasks {
            if t.fargate.is_some()
                && t.container_instance_id.is_none()
                && t.desired_status == DesiredStatus::Stopped
                && t.last_status != TaskStatus::Stopped
            {
                let code = t.stop_code.unwrap_or(StopCode::UserInitiated);
                let reason = t.stopped_reason.clone().unwrap_or_default();
                lifecycle::force_stopped(&mut t, code, &reason, now);
                let txn = lifecycle::write_task(Txn::new(), &t, rev)?;
                self.store.txn(txn).await.map_err(store_err)?;
            }
        }
        Ok(())
    }

    /// Sizes one provider's managed group in a cluster (creating it on first need).
    async fn size(&self, cluster: &str, provider: &str, now: f64) -> Result<(), ApiError> {
        let Some(name) = fargate::managed_group_name(provider, cluster) else {
            return Ok(());
        };
        let snap = ClusterSnapshot::load(&*self.store, cluster)
            .await
            .map_err(store_err)?;
        let of_provider = |t: &Task| {
            t.fargate
                .as_ref()
                .is_some_and(|f| f.capacity_provider_name == provider)
        };
        let pending: Vec<(u64, u64)> = snap
            .tasks
            .iter()
            .filter(|(t, _)| is_waiting(t) && of_provider(t))
            .map(|(t, _)| (t.cpu, t.memory))
            .collect();
        let group = self
            .store
            .get_json::<HostGroup>(&keys::host_group(&name))
            .await
            .map_err(store_err)?;
        let (group, grev) = match group {
            Some(g) => g,
            None if pending.is_empty() => return Ok(()),
            None => self.create_group(cluster, provider, &name, now).await?,
        };
        let hosts = self
            .store
            .list_json::<HostRecord>(&keys::hg_hosts_of(&name))
            .await
            .map_err(store_err)?;
        let views = managed_hosts(&snap, &hosts, now);
        let size = instance_type_size(fargate::MANAGED_INSTANCE_TYPE).unwrap_or((32768, 131_072));
        let max = if provider == FARGATE_SPOT {
            self.config.spot_max_hosts
        } else {
            self.config.max_hosts
        }
        .min(group.max_size.max(1));
        let decision = fargate::size_group(&views, &pending, size, max, now, self.config.idle_secs);
        for (key, h, rev) in hosts {
            let protect = decision.protect.contains(&h.instance_id);
            let release = decision.release.contains(&h.instance_id);
            if protect || release {
                let mut h = h;
                h.protected_from_scale_in = protect;
                let txn = Txn::new()
                    .when_mod_revision(key.clone(), rev)
                    .put(key, to_bytes(&h)?);
                self.store.txn(txn).await.map_err(store_err)?;
            }
        }
        if decision.desired != group.desired_capacity {
            let mut g = group;
            g.desired_capacity = decision.desired.clamp(g.min_size, g.max_size);
            let key = keys::host_group(&name);
            let txn = Txn::new()
                .when_mod_revision(key.clone(), grev)
                .put(key, to_bytes(&g)?);
            if let TxnResult::Conflict { .. } = self.store.txn(txn).await.map_err(store_err)? {
                tracing::debug!(group = %name, "managed group changed concurrently; next pass");
            }
        }
        Ok(())
    }

    /// Writes the launch configuration and the (empty) managed group; idempotent.
    async fn create_group(
        &self,
        cluster: &str,
        provider: &str,
        name: &str,
        now: f64,
    ) -> Result<(HostGroup, u64), ApiError> {
        let arn_base = format!(
            "arn:aws:autoscaling:{}:{}",
            self.config.region, self.config.account_id
        );
        let lc = LaunchConfiguration {
            launch_configuration_name: name.to_owned(),
            launch_configuration_arn: format!(
                "{arn_base}:launchConfiguration:{}:launchConfigurationName/{name}",
                uuid::Uuid::new_v4()
            ),
            image_id: "berth".into(),
            instance_type: fargate::MANAGED_INSTANCE_TYPE.into(),
            user_data: None,
            created_time: now,
        };
        let g = HostGroup {
            auto_scaling_group_name: name.to_owned(),
            auto_scaling_group_arn: format!(
                "{arn_base}:autoScalingGroup:{}:autoScalingGroupName/{name}",
                uuid::Uuid::new_v4()
            ),
            launch_configuration_name: name.to_owned(),
            min_size: 0,
            max_size: if provider == FARGATE_SPOT {
                self.config.spot_max_hosts
            } else {
                self.config.max_hosts
            },
            desired_capacity: 0,
            default_cooldown: 0,
            health_check_grace_period: 60,
            health_check_type: "EC2".into(),
            termination_policies: vec!["Default".into()],
            new_instances_protected_from_scale_in: true,
            availability_zones: vec![format!("{}a", self.config.region)],
            cluster: cluster.to_owned(),
            provider: self.config.provider.clone(),
            managed_by: Some(provider.to_owned()),
            status: None,
            tags: Vec::new(),
            created_time: now,
        };
        let (lkey, gkey) = (keys::hg_launch_config(name), keys::host_group(name));
        let txn = Txn::new()
            .when_absent(gkey.clone())
            .put(lkey, to_bytes(&lc)?)
            .put(gkey.clone(), to_bytes(&g)?);
        self.store.txn(txn).await.map_err(store_err)?;
        self.store
            .get_json::<HostGroup>(&gkey)
            .await
            .map_err(store_err)?
            .ok_or_else(|| ApiError::server("managed host group vanished"))
    }
}

fn to_bytes<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::server(format!("encoding record: {e}")))
}

/// The sizing view of a managed group's live hosts: free room from the registered instance
/// (all of it before the host registers), tasks on it, and since when it has been empty (its
/// launch, or the last stop of a task on it).
fn managed_hosts(
    snap: &ClusterSnapshot,
    hosts: &[(String, HostRecord, u64)],
    now: f64,
) -> Vec<ManagedHost> {
    let size = instance_type_size(fargate::MANAGED_INSTANCE_TYPE).unwrap_or((32768, 131_072));
    let usages = snap.usages();
    let by_host: BTreeMap<&str, &berth_model::ContainerInstance> = snap
        .instances
        .iter()
        .filter_map(|(i, _)| {
            let id = i.attribute(ATTR_HOST_ID)?.value.as_deref()?;
            Some((id, i))
        })
        .collect();
    hosts
        .iter()
        .filter(|(_, h, _)| matches!(h.lifecycle_state.as_str(), "Pending" | "InService"))
        .map(|(_, h, _)| {
            let inst = by_host.get(h.instance_id.as_str());
            let on_it = |t: &&(Task, u64)| {
                inst.is_some_and(|i| t.0.container_instance_id.as_deref() == Some(i.id.as_str()))
            };
            let tasks = snap
                .tasks
                .iter()
                .filter(on_it)
                .filter(|(t, _)| t.holds_resources())
                .count();
            let last_stop = snap
                .tasks
                .iter()
                .filter(on_it)
                .filter_map(|(t, _)| t.stopped_at)
                .fold(h.launched_at, f64::max);
            let free = inst
                .and_then(|i| usages.get(&i.id))
                .map_or(size, |u| (u.remaining.cpu, u.remaining.memory));
            ManagedHost {
                id: h.instance_id.clone(),
                free,
                tasks,
                idle_since: (tasks == 0).then_some(last_stop.min(now)),
                protected: h.protected_from_scale_in,
            }
        })
        .collect()
}
