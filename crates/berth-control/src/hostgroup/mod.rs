//! The host group controller: keeps each group's hosts at its desired capacity, healthy.
//!
//! Level-triggered, as every controller here: each pass reads a group, its hosts, its
//! cluster's container instances and tasks, asks the provider which hosts are still alive,
//! hands all that to the pure [`decide`] and carries its steps out. Every step is a small
//! compare-and-swap write (or a provider call followed by one), so a crash between two steps
//! leaves records the next pass, in this process or the next, simply continues from: a host
//! is written (with its instance id) before the provider starts it, and forgotten only after
//! the provider destroyed it.
//!
//! Hosts are made by a [`HostProvider`] (process, docker, the operator's commands); the
//! providers do I/O and live in the `berth` binary, this crate only sees the trait.

mod decide;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_model::hostgroup::{
    HostGroup, HostRecord, ScalingActivity, ATTR_HOST_GROUP, ATTR_HOST_ID,
};
use berth_model::{keys, Clock, ContainerInstance, InstanceStatus, StopCode, Task};
use berth_store::{update_json, Store, StoreExt, Txn, Update};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use decide::{
    decide, order_for_termination, Limits, Observed, Step, HEALTHY, IN_SERVICE, PENDING,
    TERMINATING, UNHEALTHY,
};

/// What a provider is asked to start: one host running `berth agent`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostSpec {
    /// The host's instance id (`i-...`): providers name their hosts by it.
    pub instance_id: String,
    /// Its group.
    pub group: String,
    /// The ECS cluster its agent joins.
    pub cluster: String,
    /// The server's URL for the agent, or every replica's, separated by commas (what
    /// `berth agent --server` takes).
    pub server_url: String,
    /// The cluster's join token.
    pub join_token: String,
    /// EC2 instance type.
    pub instance_type: String,
    /// The launch configuration's ImageId.
    pub image_id: String,
    /// CPU units the agent registers (1,024 per vCPU).
    pub cpu: u64,
    /// Memory (MiB) the agent registers.
    pub memory: u64,
    /// Attributes the agent registers (`berth.host-group`, `berth.host-id`, ...).
    pub attributes: Vec<(String, String)>,
    /// The launch configuration's user data, decoded (UTF-8, lossy).
    pub user_data: Option<String>,
}

/// The errors of a provider.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HostError(pub String);

/// Makes and destroys hosts: process, docker, or the operator's commands.
pub trait HostProvider: Send + Sync {
    /// Starts a host; returns the handle that finds it again (also after a server restart).
    fn create<'a>(&'a self, spec: &'a HostSpec) -> BoxFuture<'a, Result<String, HostError>>;
    /// Stops and removes a host (a host already gone is not an error).
    fn destroy<'a>(&'a self, handle: &'a str) -> BoxFuture<'a, Result<(), HostError>>;
    /// Whether the host is still there (`Err`: cannot tell now).
    fn alive<'a>(&'a self, handle: &'a str) -> BoxFuture<'a, Result<bool, HostError>>;
}

/// Settings of the host group controller.
#[derive(Clone)]
pub struct HostGroupConfig {
    /// Provider of groups that name none (`--host-provider`).
    pub default_provider: String,
    /// The server URL given to hosts (a comma list with several replicas).
    pub server_url: String,
    /// The join token of a cluster.
    pub join_token: Arc<dyn Fn(&str) -> String + Send + Sync>,
    /// Seconds between passes.
    pub period: Duration,
    /// The longest a scale-in waits for service tasks to leave a host.
    pub drain_timeout: f64,
    /// An agent that has not polled for this long is disconnected.
    pub agent_timeout: f64,
}

/// The host group controller; see the module docs. Start with [`HostGroupController::run`].
pub struct HostGroupController {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    providers: HashMap<String, Arc<dyn HostProvider>>,
    cfg: HostGroupConfig,
    /// Per group, when launches may be tried again after a provider failed one (so a broken
    /// provider is not asked, and a failed activity recorded, twice a second).
    launch_backoff: std::sync::Mutex<HashMap<String, f64>>,
}

/// How long a group waits to launch again after a provider failed a launch.
const LAUNCH_BACKOFF_SECS: f64 = 10.0;

type Res<T> = Result<T, String>;

fn se(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// An Auto Scaling time in its activity causes (`2026-12-07T17:30:00Z`).
pub fn iso_secs(t: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t as i64)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A fresh instance id: `i-` and 17 hex digits, as EC2's.
pub fn new_instance_id() -> String {
    let u = uuid::Uuid::new_v4().as_u128();
    format!(
        "i-{:017x}",
        (u as u64 ^ (u >> 64) as u64) & 0x1_ffff_ffff_ffff_ffff_u128 as u64
    )
}

impl HostGroupController {
    /// A controller over `store` with `providers` by name.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        providers: HashMap<String, Arc<dyn HostProvider>>,
        cfg: HostGroupConfig,
    ) -> Self {
        Self {
            store,
            clock,
            providers,
            cfg,
            launch_backoff: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Reconciles every group until `stop`: again as soon as a host group record changes
    /// (a new desired capacity is acted on at once), and every period regardless (agents'
    /// health and providers' hosts change without a write here).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        use futures::StreamExt;
        loop {
            let rev = self.store.revision().await.unwrap_or(0);
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "host group pass failed");
            }
            let mut changes = self.store.watch(keys::HOST_GROUPS, rev);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.cfg.period) => {}
                _ = changes.next() => {}
            }
        }
    }

    /// One pass over every group.
    pub async fn pass(&self) -> Res<()> {
        let groups = self
            .store
            .list_json::<HostGroup>(keys::HOST_GROUPS)
            .await
            .map_err(se)?;
        for (_, g, _) in groups {
            if let Err(e) = self.reconcile(&g).await {
                tracing::warn!(group = %g.auto_scaling_group_name, error = %e, "host group reconcile failed");
            }
        }
        Ok(())
    }

    fn provider(&self, g: &HostGroup) -> Res<Arc<dyn HostProvider>> {
        let name = if g.provider.is_empty() {
            &self.cfg.default_provider
        } else {
            &g.provider
        };
        self.providers
            .get(name)
            .cloned()
            .ok_or_else(|| format!("host provider {name:?} is not configured on this server"))
    }

    async fn reconcile(&self, g: &HostGroup) -> Res<()> {
        let name = &g.auto_scaling_group_name;
        let hosts = self
            .store
            .list_json::<HostRecord>(&keys::hg_hosts_of(name))
            .await
            .map_err(se)?;
        let instances = self
            .store
            .list_json::<ContainerInstance>(&keys::instances_of(&g.cluster))
            .await
            .map_err(se)?;
        let tasks = self
            .store
            .list_json::<Task>(&keys::tasks_of(&g.cluster))
            .await
            .map_err(se)?;
        let provider = self.provider(g)?;
        let now = self.clock.now();
        let mut observed = Vec::new();
        for (_, h, _) in hosts {
            let ci = instances.iter().map(|(_, i, _)| i).find(|i| {
                i.status != InstanceStatus::Inactive
                    && i.attribute(ATTR_HOST_ID).and_then(|a| a.value.as_deref())
                        == Some(h.instance_id.as_str())
            });
            let alive = match &h.provider_handle {
                Some(handle) => provider.alive(handle).await.ok(),
                None => None,
            };
            let o = Observed {
                container_instance_id: ci.map(|i| i.id.clone()),
                connected: ci.is_some_and(|i| crate::is_connected(i, now, self.cfg.agent_timeout)),
                draining: ci.is_some_and(|i| i.status == InstanceStatus::Draining),
                service_tasks: ci.map_or(0, |i| {
                    tasks
                        .iter()
                        .filter(|(_, t, _)| {
                            t.container_instance_id.as_deref() == Some(i.id.as_str())
                                && t.holds_resources()
                                && t.group
                                    .as_deref()
                                    .is_some_and(|gr| gr.starts_with("service:"))
                        })
                        .count()
                }),
                alive,
            };
            observed.push((h, o));
        }
        let limits = Limits {
            drain_timeout: self.cfg.drain_timeout,
        };
        let steps = decide(g, &observed, now, limits);
        for step in steps {
            self.apply(g, &provider, &observed, step).await?;
        }
        Ok(())
    }

    async fn apply(
        &self,
        g: &HostGroup,
        provider: &Arc<dyn HostProvider>,
        observed: &[(HostRecord, Observed)],
        step: Step,
    ) -> Res<()> {
        let name = &g.auto_scaling_group_name;
        let now = self.clock.now();
        let find = |id: &str| observed.iter().find(|(h, _)| h.instance_id == id);
        match step {
            Step::Launch { count, from } => {
                let until = self
                    .launch_backoff
                    .lock()
                    .map_or(0.0, |m| m.get(name).copied().unwrap_or(0.0));
                if now < until {
                    return Ok(());
                }
                for i in 0..count {
                    if !self.launch(g, provider, from + i, from + count).await? {
                        break;
                    }
                }
            }
            Step::InService {
                instance_id,
                container_instance_id,
            } => {
                let h = self
                    .update_host(name, &instance_id, |h| {
                        h.lifecycle_state = IN_SERVICE.into();
                        h.container_instance_id = Some(container_instance_id.clone());
                    })
                    .await?;
                if let Some(a) = h.and_then(|h| h.activity_id) {
                    self.finish_activity(name, &a, "Successful", None).await?;
                }
            }
            Step::Unhealthy { instance_id, why } => {
                let Some((h, _)) = find(&instance_id) else {
                    return Ok(());
                };
                if h.lifecycle_state == PENDING {
                    if let Some(a) = &h.activity_id {
                        self.finish_activity(name, a, "Failed", Some(why.clone()))
                            .await?;
                    }
                }
                let cause = format!("At {} {why}", iso_secs(now));
                self.start_terminating(g, &instance_id, UNHEALTHY, cause)
                    .await?;
            }
            Step::ScaleIn {
                instance_id,
                from,
                to,
            } => {
                let cause = if g.status.is_some() {
                    format!(
                        "At {} the group was deleted with ForceDelete, terminating its instances.",
                        iso_secs(now)
                    )
                } else {
                    format!(
                    "At {} an instance was taken out of service in response to a difference \
                     between desired and actual capacity, shrinking the capacity from {from} to {to}.",
                    iso_secs(now)
                )
                };
                self.start_terminating(g, &instance_id, HEALTHY, cause)
                    .await?;
            }
            Step::Drain { instance_id } => {
                if let Some((h, o)) = find(&instance_id) {
                    if let Some(ci) = &o.container_instance_id {
                        self.set_instance(&g.cluster, ci, false).await?;
                        tracing::info!(group = %name, host = %h.instance_id, "draining host before terminating it");
                    }
                }
            }
            Step::Destroy { instance_id } => {
                let Some((h, o)) = find(&instance_id) else {
                    return Ok(());
                };
                if let Some(handle) = &h.provider_handle {
                    provider.destroy(handle).await.map_err(se)?;
                }
                if let Some(ci) = &o.container_instance_id {
                    self.set_instance(&g.cluster, ci, true).await?;
                }
                self.store
                    .txn(Txn::new().delete(keys::hg_host(name, &instance_id)))
                    .await
                    .map_err(se)?;
                if let Some(a) = &h.activity_id {
                    self.finish_activity(name, a, "Successful", None).await?;
                }
                tracing::info!(group = %name, host = %instance_id, "host terminated");
            }
            Step::DeleteGroup => {
                let (acts, _) = self
                    .store
                    .list(&keys::hg_activities_of(name))
                    .await
                    .map_err(se)?;
                let mut txn = Txn::new().delete(keys::host_group(name));
                for kv in acts {
                    txn = txn.delete(kv.key);
                }
                self.store.txn(txn).await.map_err(se)?;
                tracing::info!(group = %name, "host group deleted");
            }
        }
        Ok(())
    }

    async fn launch(
        &self,
        g: &HostGroup,
        provider: &Arc<dyn HostProvider>,
        from: u32,
        to: u32,
    ) -> Res<bool> {
        let name = &g.auto_scaling_group_name;
        let lc = self
            .store
            .get_json::<berth_model::hostgroup::LaunchConfiguration>(&keys::hg_launch_config(
                &g.launch_configuration_name,
            ))
            .await
            .map_err(se)?
            .map(|(l, _)| l)
            .ok_or_else(|| {
                format!(
                    "launch configuration {} is gone",
                    g.launch_configuration_name
                )
            })?;
        let (cpu, memory) = berth_model::hostgroup::instance_type_size(&lc.instance_type)
            .ok_or_else(|| format!("unknown instance type {}", lc.instance_type))?;
        let now = self.clock.now();
        let id = new_instance_id();
        let activity = ScalingActivity {
            activity_id: uuid::Uuid::new_v4().to_string(),
            auto_scaling_group_name: name.clone(),
            description: format!("Launching a new EC2 instance: {id}"),
            cause: format!(
                "At {} an instance was started in response to a difference between desired and \
                 actual capacity, increasing the capacity from {from} to {to}.",
                iso_secs(now)
            ),
            start_time: now,
            end_time: None,
            status_code: "InProgress".into(),
            status_message: None,
            progress: 0,
        };
        let zone = g
            .availability_zones
            .first()
            .cloned()
            .unwrap_or_else(|| "us-east-1a".into());
        let host = HostRecord {
            instance_id: id.clone(),
            auto_scaling_group_name: name.clone(),
            lifecycle_state: PENDING.into(),
            health_status: HEALTHY.into(),
            protected_from_scale_in: g.new_instances_protected_from_scale_in,
            launch_configuration_name: lc.launch_configuration_name.clone(),
            instance_type: lc.instance_type.clone(),
            availability_zone: zone,
            launched_at: now,
            provider_handle: None,
            container_instance_id: None,
            activity_id: Some(activity.activity_id.clone()),
            terminating_since: None,
        };
        let hkey = keys::hg_host(name, &id);
        let txn = Txn::new()
            .when_absent(hkey.clone())
            .put(hkey, serde_json::to_vec(&host).map_err(se)?)
            .put(
                keys::hg_activity(name, now, &activity.activity_id),
                serde_json::to_vec(&activity).map_err(se)?,
            );
        self.store.txn(txn).await.map_err(se)?;
        let user_data = lc.user_data.as_deref().and_then(decode_user_data);
        let spec = HostSpec {
            instance_id: id.clone(),
            group: name.clone(),
            cluster: g.cluster.clone(),
            server_url: self.cfg.server_url.clone(),
            join_token: (self.cfg.join_token)(&g.cluster),
            instance_type: lc.instance_type.clone(),
            image_id: lc.image_id.clone(),
            cpu,
            memory,
            attributes: vec![
                (ATTR_HOST_GROUP.into(), name.clone()),
                (ATTR_HOST_ID.into(), id.clone()),
                ("ecs.instance-type".into(), lc.instance_type.clone()),
                ("ecs.ami-id".into(), lc.image_id.clone()),
            ],
            user_data,
        };
        match provider.create(&spec).await {
            Ok(handle) => {
                tracing::info!(group = %name, host = %id, %handle, "host launched");
                self.update_host(name, &id, |h| h.provider_handle = Some(handle.clone()))
                    .await?;
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(group = %name, host = %id, error = %e, "host launch failed");
                if let Ok(mut m) = self.launch_backoff.lock() {
                    m.insert(name.clone(), self.clock.now() + LAUNCH_BACKOFF_SECS);
                }
                self.store
                    .txn(Txn::new().delete(keys::hg_host(name, &id)))
                    .await
                    .map_err(se)?;
                self.finish_activity(name, &activity.activity_id, "Failed", Some(e.0))
                    .await?;
                Ok(false)
            }
        }
    }

    /// Marks a host `Terminating` with a new activity.
    async fn start_terminating(
        &self,
        g: &HostGroup,
        instance_id: &str,
        health: &str,
        cause: String,
    ) -> Res<()> {
        let name = &g.auto_scaling_group_name;
        let now = self.clock.now();
        let activity = ScalingActivity {
            activity_id: uuid::Uuid::new_v4().to_string(),
            auto_scaling_group_name: name.clone(),
            description: format!("Terminating EC2 instance: {instance_id}"),
            cause,
            start_time: now,
            end_time: None,
            status_code: "InProgress".into(),
            status_message: None,
            progress: 0,
        };
        let aid = activity.activity_id.clone();
        let updated = self
            .update_host(name, instance_id, |h| {
                h.lifecycle_state = TERMINATING.into();
                h.health_status = health.into();
                h.terminating_since = Some(now);
                h.activity_id = Some(aid.clone());
            })
            .await?;
        if updated.is_some() {
            self.store
                .txn(Txn::new().put(
                    keys::hg_activity(name, now, &aid),
                    serde_json::to_vec(&activity).map_err(se)?,
                ))
                .await
                .map_err(se)?;
        }
        Ok(())
    }

    async fn update_host(
        &self,
        group: &str,
        id: &str,
        f: impl Fn(&mut HostRecord),
    ) -> Res<Option<HostRecord>> {
        let (h, _) =
            update_json::<HostRecord, String, _>(&*self.store, &keys::hg_host(group, id), |cur| {
                Ok(match cur {
                    None => Update::Keep,
                    Some(mut h) => {
                        f(&mut h);
                        Update::Put(h)
                    }
                })
            })
            .await
            .map_err(se)?;
        Ok(h)
    }

    /// Ends an activity (found by id under the group's activities).
    async fn finish_activity(
        &self,
        group: &str,
        id: &str,
        code: &str,
        message: Option<String>,
    ) -> Res<()> {
        let acts = self
            .store
            .list_json::<ScalingActivity>(&keys::hg_activities_of(group))
            .await
            .map_err(se)?;
        let Some((key, _, _)) = acts.iter().find(|(_, a, _)| a.activity_id == id) else {
            return Ok(());
        };
        let now = self.clock.now();
        update_json::<ScalingActivity, String, _>(&*self.store, key, |cur| {
            Ok(match cur {
                Some(mut a) if a.status_code == "InProgress" => {
                    a.status_code = code.into();
                    a.status_message = message.clone();
                    a.end_time = Some(now);
                    a.progress = 100;
                    Update::Put(a)
                }
                _ => Update::Keep,
            })
        })
        .await
        .map_err(se)?;
        Ok(())
    }

    /// Sets a container instance DRAINING, or (`deregister`) INACTIVE with its live tasks
    /// stopped in the same write, as DeregisterContainerInstance with `force` does.
    async fn set_instance(&self, cluster: &str, id: &str, deregister: bool) -> Res<()> {
        let key = keys::instance(cluster, id);
        let mut retry = berth_store::Retry::new();
        while retry.next().await {
            let Some((mut inst, rev)) = self
                .store
                .get_json::<ContainerInstance>(&key)
                .await
                .map_err(se)?
            else {
                return Ok(());
            };
            if inst.status == InstanceStatus::Inactive {
                return Ok(());
            }
            let mut txn = Txn::new().when_mod_revision(key.clone(), rev);
            if deregister {
                inst.status = InstanceStatus::Inactive;
                let now = self.clock.now();
                let tasks = self
                    .store
                    .list_json::<Task>(&keys::tasks_of(cluster))
                    .await
                    .map_err(se)?;
                for (_, mut t, trev) in tasks {
                    if t.container_instance_id.as_deref() == Some(id) && t.holds_resources() {
                        crate::lifecycle::force_stopped(
                            &mut t,
                            StopCode::InfrastructureHealth,
                            "Container instance terminated by its Auto Scaling group",
                            now,
                        );
                        txn = crate::lifecycle::write_task(txn, &t, trev).map_err(|e| e.message)?;
                    }
                }
            } else if inst.status == InstanceStatus::Draining {
                return Ok(());
            } else {
                inst.status = InstanceStatus::Draining;
            }
            inst.version += 1;
            txn = txn.put(key.clone(), serde_json::to_vec(&inst).map_err(se)?);
            if let berth_store::TxnResult::Committed { .. } =
                self.store.txn(txn).await.map_err(se)?
            {
                return Ok(());
            }
        }
        Err(format!("container instance {id} is contended"))
    }
}

/// User data as the host gets it: base64-decoded, as EC2 hands it to cloud-init.
pub fn decode_user_data(b64: &str) -> Option<String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}
