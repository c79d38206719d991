//! Placing and creating tasks: RunTask, StartTask and the service controller all come here.
//!
//! A launch reads the cluster (instances, tasks), asks the scheduler where the tasks fit, and
//! writes the tasks with their assignment-index keys in one transaction. Launches in one
//! cluster are serialised by an in-process lock, and every launch also bumps the cluster's
//! `placement/` key under compare-and-swap, so two servers placing into the same cluster
//! cannot both spend the same capacity: the loser re-reads and places again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use berth_model::{
    keys, ApiError, Container, ContainerInstance, DesiredStatus, HealthStatus, InstanceStatus, Tag,
    Task, TaskDefinition, TaskOverride, TaskStatus, TransportProtocol,
};
use berth_sched::{Constraint, InstanceView, Resources, Strategy, TaskAsk};
use berth_store::{Store, StoreExt, Txn, TxnResult};
use serde::{Deserialize, Serialize};

use crate::snapshot::{is_connected, ClusterSnapshot};
use crate::store_err;

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The name of the cluster to launch into.
    pub cluster: String,
    /// The registered definition; `overrides` are applied on top.
    pub taskdef: TaskDefinition,
    /// Per-launch changes to the definition (RunTask's `overrides`).
    pub overrides: TaskOverride,
    /// How many tasks to launch.
    pub count: usize,
    /// The task group (`family:FAMILY` unless RunTask names one; `service:NAME` for a service's
    /// tasks).
    pub group: Option<String>,
    /// Who started the tasks (`startedBy`): a free tag, or the service's deployment id.
    pub started_by: Option<String>,
    /// Tags of the new tasks.
    pub tags: Vec<Tag>,
    /// The launch type recorded on the tasks (`EC2`, `EXTERNAL` or `FARGATE`).
    pub launch_type: String,
    /// Placement strategies, applied in order.
    pub strategies: Vec<Strategy>,
    /// Placement constraints every chosen instance must satisfy.
    pub constraints: Vec<Constraint>,
    /// StartTask: place one task on each of these instance ids, and nowhere else.
    pub on_instances: Option<Vec<String>>,
    /// RunTask's `clientToken`: a launch repeated with the same token returns the first one's tasks
    /// instead of launching again.
    pub client_token: Option<String>,
    /// Set for FARGATE (and FARGATE_SPOT) tasks: they go only on the provider's managed hosts,
    /// and wait in PROVISIONING for one when none has room (see `crate::fargate`).
    pub fargate: Option<berth_model::fargate::FargateTask>,
    /// An awsvpc task's `networkConfiguration`, checked and completed (default security
    /// group) by the caller: each task gets an interface in one of its subnets.
    pub network: Option<berth_model::NetworkConfiguration>,
    /// Launched through a capacity provider: the tasks may use only its host group's hosts,
    /// and a task that does not fit now is created PROVISIONING (placed later) instead of
    /// failing.
    pub capacity_provider: Option<ProviderTarget>,
}

/// A capacity provider a launch goes through, and the host group behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderTarget {
    /// The provider's name, recorded on the tasks (`capacityProviderName`).
    pub name: String,
    /// The host group whose hosts the tasks may use; `None` while the provider has no group
    /// (its tasks wait in PROVISIONING).
    pub group: Option<String>,
}

impl ProviderTarget {
    /// Whether a scheduler view is one of this provider's hosts.
    pub fn admits(&self, v: &InstanceView) -> bool {
        self.group.as_ref().is_some_and(|g| {
            v.attributes
                .get(berth_model::hostgroup::ATTR_HOST_GROUP)
                .is_some_and(|a| a.as_deref() == Some(g.as_str()))
        })
    }
}

/// A task that could not be placed, as RunTask's `failures` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementFailure {
    /// The closest matching instance (or the one StartTask named).
    pub arn: Option<String>,
    /// Why the task was not placed.
    pub reason: PlacementReason,
    /// More about the reason, when there is something to say.
    pub detail: Option<String>,
}

/// Why a task could not be placed: one vocabulary for the scheduler, the service controller's
/// events and RunTask's `failures[].reason` (the wire string is [`as_str`](Self::as_str)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementReason {
    /// The scheduler's reason on the closest instance.
    Scheduler(berth_sched::Reason),
    /// `MISSING`: StartTask named an instance that does not exist.
    Missing,
    /// `RESOURCE`: StartTask's instance has no room for the task.
    Resource,
}

impl PlacementReason {
    /// ECS's reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            PlacementReason::Scheduler(r) => r.as_str(),
            PlacementReason::Missing => "MISSING",
            PlacementReason::Resource => "RESOURCE",
        }
    }
}

/// What a launch did: the tasks it created and the ones it could not place.
#[derive(Debug, Clone, Default)]
pub struct LaunchOutcome {
    /// The tasks created.
    pub tasks: Vec<Task>,
    /// One entry per task that could not be placed.
    pub failures: Vec<PlacementFailure>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TokenRecord {
    task_ids: Vec<String>,
}

/// Places and creates tasks. One per server; cheap to share.
pub struct Launcher {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) agent_timeout_secs: f64,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Decoded records reused across launches (placement reads the whole cluster).
    snapshots: crate::snapshot::SnapshotCache,
}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launcher").finish_non_exhaustive()
    }
}

/// Builds the scheduler's view of one instance.
fn view(
    inst: &ContainerInstance,
    usage: &berth_model::InstanceUsage,
    tasks: &[&Task],
    arn: String,
    now: f64,
    timeout: f64,
) -> InstanceView {
    let mut attributes: BTreeMap<String, Option<String>> = inst
        .attributes
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    attributes
        .entry("ecs.instance-id".into())
        .or_insert_with(|| Some(inst.ec2_instance_id.clone()));
    let mut ports_in_use = BTreeSet::new();
    for p in &usage.remaining.ports {
        ports_in_use.insert((*p, TransportProtocol::Tcp));
    }
    for p in &usage.remaining.ports_udp {
        ports_in_use.insert((*p, TransportProtocol::Udp));
    }
    let mut task_groups: BTreeMap<String, u32> = BTreeMap::new();
    for t in tasks.iter().filter(|t| t.holds_resources()) {
        if let Some(g) = &t.group {
            *task_groups.entry(g.clone()).or_default() += 1;
        }
    }
    InstanceView {
        id: inst.id.clone(),
        arn,
        active: inst.status == InstanceStatus::Active,
        connected: is_connected(inst, now, timeout),
        remaining: Resources {
            cpu: usage.remaining.cpu,
            memory: usage.remaining.memory,
        },
        ports_in_use,
        attributes,
        task_groups,
        registered_at: inst.registered_at,
        running_tasks: usage.running_tasks as u32,
        pending_tasks: usage.pending_tasks as u32,
        agent_version: inst.version_info["agentVersion"]
            .as_str()
            .map(str::to_owned),
    }
}

/// The scheduler's view of every non-INACTIVE instance of a snapshot (also what
/// ListContainerInstances' `filter` expressions are evaluated against).
pub fn instance_views(
    snap: &ClusterSnapshot,
    now: f64,
    timeout: f64,
    arn_of: &(dyn Fn(&str) -> String + Sync),
) -> Vec<InstanceView> {
    let usages = snap.usages();
    let mut by_instance: HashMap<&str, Vec<&Task>> = HashMap::new();
    for (t, _) in &snap.tasks {
        if let Some(i) = &t.container_instance_id {
            by_instance.entry(i.as_str()).or_default().push(t);
        }
    }
    snap.instances
        .iter()
        .filter(|(i, _)| i.status != InstanceStatus::Inactive)
        .map(|(i, _)| {
            let usage = usages.get(&i.id).cloned().unwrap_or_default();
            let tasks = by_instance.get(i.id.as_str()).cloned().unwrap_or_default();
            view(i, &usage, &tasks, arn_of(&i.id), now, timeout)
        })
        .collect()
}

/// The fixed host ports a task reserves on its instance.
pub(crate) fn fixed_host_ports(td: &TaskDefinition) -> Vec<(u16, TransportProtocol)> {
    let host_mode = td.network_mode.as_deref() == Some("host");
    let awsvpc = td.network_mode.as_deref() == Some("awsvpc");
    let mut out = Vec::new();
    if awsvpc {
        return out;
    }
    for c in &td.container_definitions {
        for p in &c.port_mappings {
            let port = if host_mode {
                p.container_port
            } else {
                p.host_port.filter(|h| *h != 0)
            };
            if let Some(port) = port.and_then(|p| u16::try_from(p).ok()) {
                out.push((port, p.protocol()));
            }
        }
    }
    out
}

fn new_task(spec: &LaunchSpec, td: &TaskDefinition, instance_id: Option<&str>, now: f64) -> Task {
    let containers = td
        .container_definitions
        .iter()
        .map(|c| Container {
            name: c.name.clone(),
            image: c.image.clone(),
            last_status: TaskStatus::Pending,
            exit_code: None,
            reason: None,
            network_bindings: Vec::new(),
            health_status: HealthStatus::Unknown,
            runtime_id: None,
            cpu: c.cpu,
            memory: c.memory,
            memory_reservation: c.memory_reservation,
            essential: c.is_essential(),
            restart_count: None,
        })
        .collect();
    Task {
        id: uuid::Uuid::new_v4().simple().to_string(),
        cluster: spec.cluster.clone(),
        family: td.family.clone(),
        revision: td.revision,
        container_instance_id: instance_id.map(str::to_owned),
        last_status: TaskStatus::Provisioning,
        desired_status: DesiredStatus::Running,
        launch_type: spec.launch_type.clone(),
        capacity_provider_name: spec.capacity_provider.as_ref().map(|p| p.name.clone()),
        cpu: td.cpu_units(),
        memory: td.memory_mib(),
        host_ports: fixed_host_ports(td),
        containers,
        overrides: spec.overrides.clone(),
        group: spec.group.clone(),
        started_by: spec.started_by.clone(),
        tags: spec.tags.clone(),
        created_at: now,
        started_at: None,
        stopping_at: None,
        stopped_at: None,
        execution_stopped_at: None,
        pull_started_at: None,
        pull_stopped_at: None,
        stop_code: None,
        stopped_reason: None,
        health_status: HealthStatus::Unknown,
        version: 1,
        stats: None,
        stop_after_drain: None,
        failed_health_checks: false,
        eni: None,
        fargate: spec.fargate.clone(),
    }
}

/// The value kept under an assignment key: what the agent should do with the task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Assignment {
    pub desired_status: DesiredStatus,
}

pub(crate) fn assignment_bytes(desired: DesiredStatus) -> Vec<u8> {
    serde_json::to_vec(&Assignment {
        desired_status: desired,
    })
    .unwrap_or_default()
}

/// Where the tasks of `spec` go, one result per task: the instance id, or why none fits.
/// `views` are the instances it may use.
pub(crate) fn place(
    spec: &LaunchSpec,
    td: &TaskDefinition,
    views: &[InstanceView],
    now: f64,
    arn_of: &(dyn Fn(&str) -> String + Sync),
) -> Result<Vec<Result<String, PlacementFailure>>, ApiError> {
    let ask = TaskAsk {
        resources: Resources {
            cpu: td.cpu_units(),
            memory: td.memory_mib(),
        },
        host_ports: fixed_host_ports(td),
        group: spec
            .group
            .clone()
            .unwrap_or_else(|| format!("family:{}", td.family)),
        required_attributes: td
            .requires_attributes
            .iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect(),
    };
    let failure = |f: berth_sched::Failure| PlacementFailure {
        arn: f.instance_arn,
        reason: PlacementReason::Scheduler(f.reason),
        detail: (!f.detail.is_empty()).then_some(f.detail),
    };
    Ok(match &spec.on_instances {
        // StartTask: exactly one task on each named instance.
        Some(only) => only
            .iter()
            .map(|id| {
                let one: Vec<InstanceView> =
                    views.iter().filter(|v| &v.id == id).cloned().collect();
                if one.is_empty() {
                    return Ok(Err(PlacementFailure {
                        arn: Some(arn_of(id)),
                        reason: PlacementReason::Missing,
                        detail: Some("The container instance does not exist.".into()),
                    }));
                }
                let placed = berth_sched::place(&one, &ask, 1, &[], &[], 0)
                    .map_err(|e| ApiError::invalid(e.to_string()))?;
                Ok(match placed.into_iter().next() {
                    Some(Ok(p)) => Ok(p.instance_id),
                    Some(Err(f)) => Err(failure(f)),
                    None => Err(PlacementFailure {
                        arn: Some(arn_of(id)),
                        reason: PlacementReason::Resource,
                        detail: None,
                    }),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?,
        None => berth_sched::place(
            views,
            &ask,
            spec.count,
            &spec.strategies,
            &spec.constraints,
            now.to_bits(),
        )
        .map_err(|e| ApiError::invalid(e.to_string()))?
        .into_iter()
        .map(|r| r.map(|p| p.instance_id).map_err(failure))
        .collect(),
    })
}

/// Adds to `txn` a task record, assignment and service index entry for each placed task (and
/// the client token's record); the outcome lists the tasks and the failures.
fn with_tasks(
    mut txn: Txn,
    spec: &LaunchSpec,
    td: &TaskDefinition,
    results: Vec<Result<String, PlacementFailure>>,
    now: f64,
    mut enis: Option<crate::eni::Allocator>,
) -> Result<(Txn, LaunchOutcome), ApiError> {
    let mut out = LaunchOutcome::default();
    for r in results {
        match r {
            // Through a capacity provider, a task that does not fit now waits in
            // PROVISIONING with no instance (ECS holds it) until the provisioner places it.
            Ok(instance_id) => out.tasks.push(new_task(spec, td, Some(&instance_id), now)),
            Err(_) if spec.capacity_provider.is_some() => {
                out.tasks.push(new_task(spec, td, None, now))
            }
            // A Fargate task waits for managed capacity instead of failing (ECS: PROVISIONING).
            Err(_) if spec.fargate.is_some() => out.tasks.push(new_task(spec, td, None, now)),
            Err(f) => out.failures.push(f),
        }
    }
    for t in out.tasks.iter_mut() {
        // An awsvpc task's interface is allocated with the task, placed or PROVISIONING
        // (ECS provisions the ENI before the task is placed too).
        if let Some(a) = enis.as_mut() {
            let (next, eni) = a.give(txn, &spec.cluster, &t.id)?;
            txn = next;
            t.eni = Some(eni);
        }
        let bytes =
            serde_json::to_vec(&*t).map_err(|e| ApiError::server(format!("encoding task: {e}")))?;
        txn = txn.put(keys::task(&spec.cluster, &t.id), bytes);
        if let Some(instance_id) = &t.container_instance_id {
            txn = txn.put(
                keys::assignment(instance_id, &t.id),
                assignment_bytes(DesiredStatus::Running),
            );
        }
        if let Some(svc) = t.service_name() {
            txn = txn.put(keys::service_task(&spec.cluster, svc, &t.id), Vec::new());
        }
    }
    if let Some(token) = &spec.client_token {
        let rec = TokenRecord {
            task_ids: out.tasks.iter().map(|t| t.id.clone()).collect(),
        };
        txn = txn.put(
            keys::client_token(&spec.cluster, token),
            serde_json::to_vec(&rec).unwrap_or_default(),
        );
    }
    Ok((txn, out))
}

impl Launcher {
    /// A launcher over `store`; an instance whose agent has not polled for `agent_timeout_secs`
    /// gets no tasks.
    pub fn new(store: Arc<dyn Store>, agent_timeout_secs: f64) -> Self {
        Self {
            store,
            agent_timeout_secs,
            locks: Mutex::new(HashMap::new()),
            snapshots: Default::default(),
        }
    }

    /// The cluster's instances and tasks, decoding only records written since the last read
    /// (see `crate::snapshot::SnapshotCache`).
    pub async fn snapshot(
        &self,
        cluster: &str,
    ) -> Result<ClusterSnapshot, berth_store::StoreError> {
        self.snapshots.load(&*self.store, cluster).await
    }

    pub(crate) fn lock_for(&self, cluster: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(cluster.to_owned()).or_default().clone()
    }

    /// Places and creates the tasks of `spec`; `arn_of` names instances in failures.
    pub async fn launch(
        &self,
        spec: &LaunchSpec,
        now: f64,
        arn_of: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<LaunchOutcome, ApiError> {
        let td = spec.overrides.apply(&spec.taskdef)?;
        let lock = self.lock_for(&spec.cluster);
        let _guard = lock.lock().await;

        if let Some(token) = &spec.client_token {
            if let Some(done) = self.replay_token(&spec.cluster, token).await? {
                return Ok(done);
            }
        }

        let mut retry = berth_store::Retry::new();

        while retry.next().await {
            let pkey = format!("placement/{}", spec.cluster);
            let prev = self.store.get(&pkey).await.map_err(store_err)?;
            let prev_rev = prev.as_ref().map_or(0, |kv| kv.mod_revision);
            let snap = self
                .snapshots
                .load(&*self.store, &spec.cluster)
                .await
                .map_err(store_err)?;
            let views: Vec<InstanceView> =
                instance_views(&snap, now, self.agent_timeout_secs, arn_of)
                    .into_iter()
                    .filter(|v| {
                        spec.on_instances
                            .as_ref()
                            .is_none_or(|only| only.contains(&v.id))
                            && spec.capacity_provider.as_ref().is_none_or(|p| p.admits(v))
                    })
                    .filter(|v| crate::fargate::in_pool(v, &spec.cluster, spec.fargate.as_ref()))
                    .collect();
            let waits = spec.capacity_provider.is_some() || spec.fargate.is_some();
            let results = if views.is_empty() && waits {
                // No host yet: every task waits for capacity.
                (0..spec.count)
                    .map(|_| {
                        Err(PlacementFailure {
                            arn: None,
                            reason: PlacementReason::Resource,
                            detail: None,
                        })
                    })
                    .collect()
            } else if views.is_empty() {
                return Err(ApiError::invalid(
                    "No Container Instances were found in your cluster.",
                ));
            } else {
                place(spec, &td, &views, now, arn_of)?
            };
            let txn = Txn::new()
                .when_mod_revision(pkey.clone(), prev_rev)
                .put(pkey.clone(), now.to_string().into_bytes());
            let enis = match &spec.network {
                Some(n) => {
                    Some(crate::eni::Allocator::load(&*self.store, n, &spec.cluster, &snap).await?)
                }
                None => None,
            };
            let (txn, out) = with_tasks(txn, spec, &td, results, now, enis)?;
            match self.store.txn(txn).await.map_err(store_err)? {
                TxnResult::Committed { .. } => return Ok(out),
                TxnResult::Conflict { .. } => continue,
            }
        }
        Err(ApiError::server(
            "Too many concurrent placements in this cluster; retry.",
        ))
    }

    /// Places FARGATE tasks waiting in PROVISIONING (no instance yet) on their pool's managed
    /// hosts, under the same cluster lock and `placement/` guard as a launch; returns how many
    /// it placed. The tasks that still do not fit keep waiting (the managed group grows).
    pub async fn place_waiting_fargate(&self, cluster: &str, now: f64) -> Result<usize, ApiError> {
        let lock = self.lock_for(cluster);
        let _guard = lock.lock().await;
        let mut retry = berth_store::Retry::new();
        let mut taskdefs: HashMap<(String, u32), Option<TaskDefinition>> = HashMap::new();
        while retry.next().await {
            let pkey = format!("placement/{cluster}");
            let prev = self.store.get(&pkey).await.map_err(store_err)?;
            let prev_rev = prev.as_ref().map_or(0, |kv| kv.mod_revision);
            let snap = ClusterSnapshot::load(&*self.store, cluster)
                .await
                .map_err(store_err)?;
            let ident = |id: &str| id.to_owned();
            let mut views = instance_views(&snap, now, self.agent_timeout_secs, &ident);
            let mut txn = Txn::new()
                .when_mod_revision(pkey.clone(), prev_rev)
                .put(pkey.clone(), now.to_string().into_bytes());
            let mut placed = 0;
            for (t, rev) in snap
                .tasks
                .iter()
                .filter(|(t, _)| crate::fargate::is_waiting(t))
            {
                let key = (t.family.clone(), t.revision);
                if !taskdefs.contains_key(&key) {
                    let td = self
                        .store
                        .get_json::<TaskDefinition>(&keys::taskdef(&t.family, t.revision))
                        .await
                        .map_err(store_err)?
                        .map(|(td, _)| td);
                    taskdefs.insert(key.clone(), td);
                }
                let required = taskdefs[&key]
                    .iter()
                    .flat_map(|td| td.requires_attributes.iter())
                    .map(|a| (a.name.clone(), a.value.clone()))
                    .collect();
                let ask = TaskAsk {
                    resources: Resources {
                        cpu: t.cpu,
                        memory: t.memory,
                    },
                    host_ports: t.host_ports.clone(),
                    group: t.group.clone().unwrap_or_default(),
                    required_attributes: required,
                };
                let pool: Vec<InstanceView> = views
                    .iter()
                    .filter(|v| crate::fargate::in_pool(v, cluster, t.fargate.as_ref()))
                    .cloned()
                    .collect();
                let Ok(mut r) = berth_sched::place(&pool, &ask, 1, &[], &[], now.to_bits()) else {
                    continue;
                };
                let Some(Ok(p)) = r.pop() else { continue };
                let Some(v) = views.iter_mut().find(|v| v.id == p.instance_id) else {
                    continue;
                };
                v.remaining.cpu = v.remaining.cpu.saturating_sub(t.cpu);
                v.remaining.memory = v.remaining.memory.saturating_sub(t.memory);
                v.pending_tasks += 1;
                let mut t = t.clone();
                t.container_instance_id = Some(p.instance_id.clone());
                if let (Some(f), Some(Some(zone))) =
                    (&mut t.fargate, v.attributes.get("ecs.availability-zone"))
                {
                    f.availability_zone = zone.clone();
                }
                t.version += 1;
                txn = crate::lifecycle::write_task(txn, &t, *rev)?;
                placed += 1;
            }
            if placed == 0 {
                return Ok(0);
            }
            match self.store.txn(txn).await.map_err(store_err)? {
                TxnResult::Committed { .. } => return Ok(placed),
                TxnResult::Conflict { .. } => continue,
            }
        }
        Err(ApiError::server(
            "Too many concurrent placements in this cluster; retry.",
        ))
    }

    async fn replay_token(
        &self,
        cluster: &str,
        token: &str,
    ) -> Result<Option<LaunchOutcome>, ApiError> {
        let Some((rec, _)) = self
            .store
            .get_json::<TokenRecord>(&keys::client_token(cluster, token))
            .await
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        let mut out = LaunchOutcome::default();
        for id in rec.task_ids {
            if let Some((t, _)) = self
                .store
                .get_json::<Task>(&keys::task(cluster, &id))
                .await
                .map_err(store_err)?
            {
                out.tasks.push(t);
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn host_ports_by_network_mode() {
        let td = |mode: &str| -> TaskDefinition {
            let mut t: TaskDefinition = serde_json::from_value(json!({"family": "f", "networkMode": mode,
                "containerDefinitions": [{"name": "a", "image": "i", "memory": 8,
                  "portMappings": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 8081}]}]}))
            .unwrap();
            t.validate_and_normalize().ok();
            t
        };
        assert_eq!(
            fixed_host_ports(&td("bridge")),
            vec![(8081, TransportProtocol::Tcp)]
        );
        assert!(fixed_host_ports(&td("awsvpc")).is_empty());
    }
}
