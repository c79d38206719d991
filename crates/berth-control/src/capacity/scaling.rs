//! The capacity loop: places PROVISIONING tasks when capacity appears, and runs managed
//! scaling for every capacity provider that has it enabled.
//!
//! Level-triggered: each pass reads the providers, their host groups, the hosts and the
//! cluster, decides with the pure functions of `berth_sched::capacity`, and writes only what
//! differs (`HostGroup.desired_capacity`, a host's `protected_from_scale_in`) with
//! compare-and-swap. The host group controller does the rest (starting hosts, removing
//! unprotected ones). After a restart the next pass sees the same state and decides the same.
//! Each pass also records the CapacityProviderReservation metric (namespace
//! `AWS/ECS/ManagedScaling`, dimensions `CapacityProviderName` and `ClusterName`, as ECS
//! publishes it) into the metrics hub, so `/metrics` shows it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_metrics::SeriesKey;
use berth_model::capacity::CapacityProvider;
use berth_model::hostgroup::{
    instance_type_size, HostGroup, HostRecord, LaunchConfiguration, ATTR_HOST_ID,
};
use berth_model::{keys, ApiError, Clock, Cluster, ClusterStatus, TaskStatus};
use berth_sched::capacity::{self as calc, GroupState, ScalingSettings};
use berth_store::{Store, StoreExt, Txn, TxnResult};
use tokio_util::sync::CancellationToken;

use super::provision::is_waiting;
use crate::autoscale::MetricsHub;
use crate::launch::Launcher;
use crate::snapshot::ClusterSnapshot;
use crate::store_err;

/// How the capacity loop runs.
#[derive(Debug, Clone, Copy)]
pub struct ScalingConfig {
    /// Seconds between passes.
    pub period: f64,
    /// Seconds a task may wait in PROVISIONING before it stops with `TaskFailedToStart`
    /// (ECS: about 30 minutes).
    pub provisioning_timeout: f64,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig {
            period: 2.0,
            provisioning_timeout: 1800.0,
        }
    }
}

/// The capacity loop; see the module docs.
pub struct ManagedScaling {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    launcher: Arc<Launcher>,
    hub: Option<Arc<MetricsHub>>,
    cfg: ScalingConfig,
}

/// The series key of a provider's CapacityProviderReservation.
pub fn reservation_key(provider: &str, cluster: &str) -> SeriesKey {
    SeriesKey::new(
        "AWS/ECS/ManagedScaling",
        "CapacityProviderReservation",
        &[("CapacityProviderName", provider), ("ClusterName", cluster)],
    )
}

/// What one provider's pass decided.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingDecision {
    /// M: hosts needed.
    pub needed: u32,
    /// N: hosts running or starting.
    pub hosts: u32,
    /// The reservation, percent.
    pub reservation: f64,
    /// The group's desired capacity to write (the current one when nothing changes).
    pub desired: u32,
    /// Hosts whose protection must change: (instance id, protected).
    pub protection: Vec<(String, bool)>,
}

/// What managed scaling observed of a provider's group.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The group's hosts.
    pub hosts: &'a [HostRecord],
    /// Live tasks on each host, by host instance id.
    pub tasks_per_host: &'a HashMap<String, u32>,
    /// The (cpu, memory) of the provider's PROVISIONING tasks.
    pub waiting: &'a [(u64, u64)],
    /// The (cpu units, MiB) of one host of the group's instance type.
    pub host_size: (u64, u64),
}

/// The pure decision for one provider's group at `now`.
pub fn decide(
    p: &CapacityProvider,
    g: &HostGroup,
    o: Observed<'_>,
    now: f64,
) -> Option<ScalingDecision> {
    let (hosts, tasks_per_host, waiting) = (o.hosts, o.tasks_per_host, o.waiting);
    let asg = p.auto_scaling_group_provider.as_ref()?;
    let m = asg.managed_scaling.as_ref()?;
    if m.status.as_deref() != Some("ENABLED") {
        return None;
    }
    let live: Vec<&HostRecord> = hosts
        .iter()
        .filter(|h| h.lifecycle_state == "Pending" || h.lifecycle_state == "InService")
        .collect();
    let on = |h: &HostRecord| tasks_per_host.get(&h.instance_id).copied().unwrap_or(0);
    let busy = live.iter().filter(|h| on(h) > 0).count() as u32;
    let needed = calc::hosts_needed(busy, waiting, o.host_size);
    let warmup = f64::from(
        m.instance_warmup_period
            .unwrap_or(calc::defaults::WARMUP_SECS),
    );
    let warming = live
        .iter()
        .filter(|h| on(h) == 0 && now - h.launched_at < warmup)
        .count() as u32;
    let state = GroupState {
        desired: g.desired_capacity,
        min: g.min_size,
        max: g.max_size,
        hosts: live.len() as u32,
        busy_hosts: busy,
        warming,
    };
    let settings = ScalingSettings {
        target_capacity: m.target_capacity.unwrap_or(calc::defaults::TARGET_CAPACITY),
        min_step: m
            .minimum_scaling_step_size
            .unwrap_or(calc::defaults::MIN_STEP),
        max_step: m
            .maximum_scaling_step_size
            .unwrap_or(calc::defaults::MAX_STEP),
    };
    let protection = if asg.managed_termination_protection.as_deref() == Some("ENABLED") {
        live.iter()
            .filter(|h| calc::protect(on(h)) != h.protected_from_scale_in)
            .map(|h| (h.instance_id.clone(), calc::protect(on(h))))
            .collect()
    } else {
        Vec::new()
    };
    Some(ScalingDecision {
        needed,
        hosts: state.hosts,
        reservation: calc::reservation(needed, state.hosts),
        desired: calc::desired_capacity(needed, state, settings),
        protection,
    })
}

impl ManagedScaling {
    /// A loop over `store`, placing through `launcher`, recording into `hub` when given.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        launcher: Arc<Launcher>,
        hub: Option<Arc<MetricsHub>>,
        cfg: ScalingConfig,
    ) -> Self {
        Self {
            store,
            clock,
            launcher,
            hub,
            cfg,
        }
    }

    /// Runs passes every `period` until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let every = Duration::from_secs_f64(self.cfg.period.clamp(0.05, 60.0));
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e.message, "capacity pass failed");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One pass: PROVISIONING tasks first (placed, stopped or timed out), then managed scaling.
    pub async fn pass(&self) -> Result<(), ApiError> {
        let now = self.clock.now();
        let clusters = self
            .store
            .list_json::<Cluster>(keys::CLUSTERS)
            .await
            .map_err(store_err)?;
        for (_, c, _) in clusters
            .iter()
            .filter(|(_, c, _)| c.status == ClusterStatus::Active)
        {
            let snap = ClusterSnapshot::load(&*self.store, &c.cluster_name)
                .await
                .map_err(store_err)?;
            if snap.tasks.iter().any(|(t, _)| is_waiting(t)) {
                let name = c.cluster_name.clone();
                let arn_of = |id: &str| format!("container-instance/{name}/{id}");
                self.launcher
                    .place_waiting(&c.cluster_name, now, self.cfg.provisioning_timeout, &arn_of)
                    .await?;
            }
        }
        let providers = self
            .store
            .list_json::<CapacityProvider>(keys::CAPACITY_PROVIDERS)
            .await
            .map_err(store_err)?;
        for (_, p, _) in providers.iter().filter(|(_, p, _)| p.status == "ACTIVE") {
            if let Err(e) = self.scale(p, now).await {
                tracing::warn!(provider = %p.name, error = %e.message, "managed scaling failed");
            }
        }
        Ok(())
    }

    /// Managed scaling of one provider's group.
    async fn scale(&self, p: &CapacityProvider, now: f64) -> Result<(), ApiError> {
        // A stored provider names its group; the cluster only matters for FARGATE's.
        let Some((g, grev)) = super::backing_group(&*self.store, &p.name, "").await? else {
            return Ok(());
        };
        let hosts: Vec<(HostRecord, u64)> = self
            .store
            .list_json::<HostRecord>(&keys::hg_hosts_of(&g.auto_scaling_group_name))
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|(_, h, rev)| (h, rev))
            .collect();
        let snap = ClusterSnapshot::load(&*self.store, &g.cluster)
            .await
            .map_err(store_err)?;
        // Container instance id → host instance id, by the host-id attribute.
        let host_of: HashMap<&str, &str> = snap
            .instances
            .iter()
            .filter_map(|(i, _)| {
                let hid = i
                    .attributes
                    .iter()
                    .find(|a| a.name == ATTR_HOST_ID)?
                    .value
                    .as_deref()?;
                Some((i.id.as_str(), hid))
            })
            .collect();
        let mut per_host: HashMap<String, u32> = HashMap::new();
        let mut waiting = Vec::new();
        for (t, _) in &snap.tasks {
            if t.last_status == TaskStatus::Stopped {
                continue;
            }
            match &t.container_instance_id {
                Some(ci) => {
                    if let Some(h) = host_of.get(ci.as_str()) {
                        *per_host.entry((*h).to_owned()).or_default() += 1;
                    }
                }
                None if t.capacity_provider_name.as_deref() == Some(&p.name) => {
                    waiting.push((t.cpu, t.memory));
                }
                None => {}
            }
        }
        let records: Vec<HostRecord> = hosts.iter().map(|(h, _)| h.clone()).collect();
        // The size of a host the group would start: its launch configuration's instance type.
        let host_size = self
            .store
            .get_json::<LaunchConfiguration>(&keys::hg_launch_config(&g.launch_configuration_name))
            .await
            .map_err(store_err)?
            .and_then(|(lc, _)| instance_type_size(&lc.instance_type))
            .or_else(|| {
                records
                    .first()
                    .and_then(|h| instance_type_size(&h.instance_type))
            })
            .unwrap_or((0, 0));
        let observed = Observed {
            hosts: &records,
            tasks_per_host: &per_host,
            waiting: &waiting,
            host_size,
        };
        let Some(d) = decide(p, &g, observed, now) else {
            return Ok(());
        };
        if let Some(hub) = &self.hub {
            hub.lock()
                .record(&reservation_key(&p.name, &g.cluster), now, d.reservation);
        }
        // Protection first: when the group then shrinks, the host group controller already
        // sees which hosts run tasks.
        for (id, protect) in &d.protection {
            if let Some((h, rev)) = hosts.iter().find(|(h, _)| &h.instance_id == id) {
                let mut h2 = h.clone();
                h2.protected_from_scale_in = *protect;
                self.put(&keys::hg_host(&g.auto_scaling_group_name, id), &h2, *rev)
                    .await?;
            }
        }
        if d.desired != g.desired_capacity {
            tracing::info!(provider = %p.name, group = %g.auto_scaling_group_name,
                from = g.desired_capacity, to = d.desired, reservation = d.reservation,
                "managed scaling");
            let mut g2 = g.clone();
            g2.desired_capacity = d.desired;
            self.put(&keys::host_group(&g.auto_scaling_group_name), &g2, grev)
                .await?;
        }
        Ok(())
    }

    /// Writes a record if it is still at `rev`; a lost race is left to the next pass.
    async fn put<T: serde::Serialize>(&self, key: &str, v: &T, rev: u64) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(v).map_err(|e| ApiError::server(e.to_string()))?;
        let txn = Txn::new()
            .when_mod_revision(key.to_owned(), rev)
            .put(key.to_owned(), bytes);
        match self.store.txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } | TxnResult::Conflict { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
