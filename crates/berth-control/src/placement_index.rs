//! What each container instance has left, kept beside the store so a launch costs what it
//! places, not what the cluster holds.
//!
//! Placement used to list (copy) and clone every task of the cluster at each launch to work
//! out each instance's free CPU, memory, ports and task-group counts. The index keeps those
//! per instance, ready as the scheduler's [`InstanceView`]s, and follows the store:
//! it is built from one `list` of `instances/` and `tasks/` and then kept current by one watch
//! on every key (level-triggered: a watch that fails or falls behind compaction rebuilds it
//! from the store). A task write costs the index the task's own footprint: its old share of
//! its instance is taken back and the new one added.
//!
//! The index is a cache, not the guard: a launch still compares-and-swaps the cluster's
//! `placement/` key, and before it reads the index it waits until the index has applied the
//! revision that key was last written at (every placement writes it), so it sees every
//! placement committed before its own; one that commits in between makes the swap fail and
//! the launch place again. When the index is not ready in time the launch reads the cluster
//! as before ([`crate::snapshot`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use berth_model::{ContainerInstance, InstanceStatus, TaskStatus, TransportProtocol};
use berth_sched::{InstanceView, Resources};
use berth_store::{EventKind, Revision, Store, StoreError, WatchEvent};
use futures::{FutureExt, StreamExt};
use serde::Deserialize;

use crate::snapshot::is_connected;

/// How long a launch waits for the index to reach the revision it needs before it reads the
/// cluster from the store instead.
const CATCH_UP: Duration = Duration::from_secs(2);

/// What a task holds on its instance while it is not STOPPED.
#[derive(Debug, Clone, PartialEq)]
struct Footprint {
    instance: String,
    cpu: u64,
    memory: u64,
    ports: Vec<(u16, TransportProtocol)>,
    group: Option<String>,
    running: bool,
    pending: bool,
}

/// The fields of a task record the index reads (decoding only these skips the rest of the
/// record, its containers above all).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskRecord {
    id: String,
    #[serde(default)]
    container_instance_id: Option<String>,
    last_status: TaskStatus,
    cpu: u64,
    memory: u64,
    #[serde(default)]
    host_ports: Vec<(u16, TransportProtocol)>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    capacity_provider_name: Option<String>,
    #[serde(default)]
    fargate: Option<serde::de::IgnoredAny>,
}

/// What the capacity loops ask of a task without reading the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Waits {
    /// Waiting for a capacity provider's host (`crate::capacity::is_waiting`).
    provider: bool,
    /// A FARGATE task that is not STOPPED.
    fargate: bool,
}

impl TaskRecord {
    fn waits(&self) -> Waits {
        let live = self.last_status != TaskStatus::Stopped;
        Waits {
            provider: live
                && self.container_instance_id.is_none()
                && self.capacity_provider_name.is_some(),
            fargate: live && self.fargate.is_some(),
        }
    }

    /// The task's footprint: none while it has no instance or once it is STOPPED (it holds
    /// nothing then, as `Task::holds_resources` and [`crate::snapshot::usage_of`] count).
    fn footprint(self) -> Option<Footprint> {
        let instance = self.container_instance_id?;
        (self.last_status != TaskStatus::Stopped).then_some(Footprint {
            instance,
            cpu: self.cpu,
            memory: self.memory,
            ports: self.host_ports,
            group: self.group,
            running: self.last_status == TaskStatus::Running,
            pending: self.last_status < TaskStatus::Running,
        })
    }
}

/// The sum of the footprints on one instance.
#[derive(Debug, Default)]
struct Held {
    cpu: u64,
    memory: u64,
    /// Host ports, with how many tasks hold each.
    ports: BTreeMap<(u16, TransportProtocol), u32>,
    /// Tasks per task group (no zero entries).
    groups: BTreeMap<String, u32>,
    running: u32,
    pending: u32,
}

fn bump<K: Ord>(map: &mut BTreeMap<K, u32>, key: K, add: bool) {
    if add {
        *map.entry(key).or_default() += 1;
    } else if let Some(n) = map.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&key);
        }
    }
}

impl Held {
    fn apply(&mut self, f: &Footprint, add: bool) {
        let step = |v: u64, by: u64| {
            if add {
                v.saturating_add(by)
            } else {
                v.saturating_sub(by)
            }
        };
        self.cpu = step(self.cpu, f.cpu);
        self.memory = step(self.memory, f.memory);
        for p in &f.ports {
            bump(&mut self.ports, *p, add);
        }
        if let Some(g) = &f.group {
            bump(&mut self.groups, g.clone(), add);
        }
        let count = |v: u32, yes: bool| match (yes, add) {
            (false, _) => v,
            (true, true) => v.saturating_add(1),
            (true, false) => v.saturating_sub(1),
        };
        self.running = count(self.running, f.running);
        self.pending = count(self.pending, f.pending);
    }
}

/// The scheduler's view of `inst` holding `held` (its `arn` and `connected` are filled in at
/// launch time).
fn build_view(inst: &ContainerInstance, held: Option<&Held>) -> InstanceView {
    let empty = Held::default();
    let held = held.unwrap_or(&empty);
    let mut attributes: BTreeMap<String, Option<String>> = inst
        .attributes
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    attributes
        .entry("ecs.instance-id".into())
        .or_insert_with(|| Some(inst.ec2_instance_id.clone()));
    let mut ports_in_use: BTreeSet<(u16, TransportProtocol)> = held.ports.keys().copied().collect();
    ports_in_use.extend(
        inst.registered
            .ports
            .iter()
            .map(|p| (*p, TransportProtocol::Tcp)),
    );
    ports_in_use.extend(
        inst.registered
            .ports_udp
            .iter()
            .map(|p| (*p, TransportProtocol::Udp)),
    );
    InstanceView {
        id: inst.id.clone(),
        arn: String::new(),
        active: inst.status == InstanceStatus::Active,
        connected: false,
        remaining: Resources {
            cpu: inst.registered.cpu.saturating_sub(held.cpu),
            memory: inst.registered.memory.saturating_sub(held.memory),
        },
        ports_in_use,
        attributes,
        task_groups: held.groups.clone(),
        registered_at: inst.registered_at,
        running_tasks: held.running,
        pending_tasks: held.pending,
        agent_version: inst.version_info["agentVersion"]
            .as_str()
            .map(str::to_owned),
    }
}

/// One cluster's instances and task footprints, and the views derived from them.
#[derive(Debug, Default)]
pub(crate) struct ClusterIndex {
    instances: HashMap<String, (Revision, ContainerInstance)>,
    tasks: HashMap<String, (Revision, Option<Footprint>)>,
    held: HashMap<String, Held>,
    /// Tasks waiting for a capacity provider's host.
    waiting: BTreeSet<String>,
    /// FARGATE tasks that are not STOPPED.
    fargate_live: BTreeSet<String>,
    /// One per instance that is not INACTIVE, sorted by id (the order a `list` gives).
    views: Vec<InstanceView>,
}

impl ClusterIndex {
    /// Rebuilds the view of instance `id` (or drops it) after its record or holdings changed.
    fn refresh(&mut self, id: &str) {
        let at = self.views.binary_search_by(|v| v.id.as_str().cmp(id));
        let live = self
            .instances
            .get(id)
            .filter(|(_, i)| i.status != InstanceStatus::Inactive);
        match (live, at) {
            (Some((_, inst)), Ok(i)) => self.views[i] = build_view(inst, self.held.get(id)),
            (Some((_, inst)), Err(i)) => self.views.insert(i, build_view(inst, self.held.get(id))),
            (None, Ok(i)) => {
                self.views.remove(i);
            }
            (None, Err(_)) => {}
        }
    }

    /// Records instance `inst` as written at `rev` (ignored when the index holds a later write).
    pub(crate) fn put_instance(&mut self, rev: Revision, inst: ContainerInstance) {
        if self.instances.get(&inst.id).is_some_and(|(r, _)| *r >= rev) {
            return;
        }
        let id = inst.id.clone();
        self.instances.insert(id.clone(), (rev, inst));
        self.refresh(&id);
    }

    /// Forgets instance `id`, deleted at `rev`.
    pub(crate) fn delete_instance(&mut self, id: &str, rev: Revision) {
        if self.instances.get(id).is_some_and(|(r, _)| *r >= rev) {
            return;
        }
        self.instances.remove(id);
        self.refresh(id);
    }

    fn set_task(&mut self, id: &str, rev: Revision, now: Option<Footprint>, waits: Waits) {
        let old = match self.tasks.get(id) {
            Some((r, _)) if *r >= rev => return,
            Some((_, f)) => f.clone(),
            None => None,
        };
        for (set, yes) in [
            (&mut self.waiting, waits.provider),
            (&mut self.fargate_live, waits.fargate),
        ] {
            if yes {
                set.insert(id.to_owned());
            } else {
                set.remove(id);
            }
        }
        if old == now {
            self.tasks.insert(id.to_owned(), (rev, now));
            return;
        }
        let mut touched = Vec::with_capacity(2);
        if let Some(f) = &old {
            if let Some(h) = self.held.get_mut(&f.instance) {
                h.apply(f, false);
            }
            touched.push(f.instance.clone());
        }
        if let Some(f) = &now {
            self.held
                .entry(f.instance.clone())
                .or_default()
                .apply(f, true);
            touched.push(f.instance.clone());
        }
        self.tasks.insert(id.to_owned(), (rev, now));
        touched.dedup();
        for i in touched {
            self.refresh(&i);
        }
    }

    /// Records the task record `value` as written at `rev`; a record that does not decode
    /// counts as gone.
    fn put_task(&mut self, key: &str, rev: Revision, value: &[u8]) {
        match serde_json::from_slice::<TaskRecord>(value) {
            Ok(t) => {
                let (id, waits) = (t.id.clone(), t.waits());
                self.set_task(&id, rev, t.footprint(), waits);
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "placement index: undecodable task");
                if let Some((_, _, id)) = split_key(key) {
                    self.delete_task(id, rev);
                }
            }
        }
    }

    /// Forgets task `id`, deleted at `rev`.
    pub(crate) fn delete_task(&mut self, id: &str, rev: Revision) {
        self.set_task(id, rev, None, Waits::default());
        if self.tasks.get(id).is_some_and(|(r, _)| *r == rev) {
            self.tasks.remove(id);
        }
    }

    /// Whether a task of the cluster waits for a capacity provider's host.
    pub(crate) fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Whether the cluster has a FARGATE task that is not STOPPED.
    pub(crate) fn has_live_fargate(&self) -> bool {
        !self.fargate_live.is_empty()
    }

    /// The views of every instance that is not INACTIVE, with `connected` as of `now` and
    /// each `arn` named once by `arn_of`.
    pub(crate) fn views(
        &mut self,
        now: f64,
        timeout: f64,
        arn_of: &(dyn Fn(&str) -> String + Sync),
    ) -> &[InstanceView] {
        for v in &mut self.views {
            if v.arn.is_empty() {
                v.arn = arn_of(&v.id);
            }
            v.connected = self
                .instances
                .get(&v.id)
                .is_some_and(|(_, i)| is_connected(i, now, timeout));
        }
        &self.views
    }
}

/// `tasks/CLUSTER/ID` or `instances/CLUSTER/ID`: the kind, the cluster and the id.
fn split_key(key: &str) -> Option<(&str, &str, &str)> {
    let (kind, rest) = key.split_once('/')?;
    if kind != "tasks" && kind != "instances" {
        return None;
    }
    let (cluster, id) = rest.split_once('/')?;
    (!id.contains('/')).then_some((kind, cluster, id))
}

/// Every cluster's [`ClusterIndex`].
#[derive(Debug, Default)]
pub(crate) struct Indexes {
    clusters: HashMap<String, ClusterIndex>,
}

impl Indexes {
    /// Applies one store event (others than instances and tasks are ignored). A record
    /// that does not decode counts as gone.
    pub(crate) fn apply(&mut self, ev: &WatchEvent) {
        let Some((kind, cluster, id)) = split_key(&ev.kv.key) else {
            return;
        };
        let rev = ev.revision();
        let c = self.clusters.entry(cluster.to_owned()).or_default();
        let put = ev.kind == EventKind::Put;
        if kind == "tasks" {
            if put {
                c.put_task(&ev.kv.key, rev, &ev.kv.value);
            } else {
                c.delete_task(id, rev);
            }
        } else {
            match put.then(|| serde_json::from_slice::<ContainerInstance>(&ev.kv.value)) {
                Some(Ok(i)) => c.put_instance(rev, i),
                Some(Err(e)) => {
                    tracing::warn!(key = %ev.kv.key, error = %e, "placement index: undecodable instance");
                    c.delete_instance(id, rev);
                }
                None => c.delete_instance(id, rev),
            }
        }
    }

    /// The index of `cluster` (empty when the cluster has no instance or task).
    pub(crate) fn cluster(&mut self, cluster: &str) -> &mut ClusterIndex {
        self.clusters.entry(cluster.to_owned()).or_default()
    }
}

/// The indexes of one server, and the watch that keeps them current.
#[derive(Debug)]
pub(crate) struct PlacementIndex {
    state: Mutex<Option<Indexes>>,
    /// The store revision the indexes reflect (every event up to it applied).
    applied: tokio::sync::watch::Sender<Revision>,
    started: AtomicBool,
}

impl Default for PlacementIndex {
    fn default() -> Self {
        Self {
            state: Mutex::new(None),
            applied: tokio::sync::watch::Sender::new(0),
            started: AtomicBool::new(false),
        }
    }
}

impl PlacementIndex {
    fn lock(&self) -> MutexGuard<'_, Option<Indexes>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts following `store` (once; later calls do nothing). Needs a Tokio runtime.
    pub(crate) fn start(self: &Arc<Self>, store: &Arc<dyn Store>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = Arc::downgrade(self);
        // Held weakly: the index never keeps a store open (a closed store ends its watch).
        let store = Arc::downgrade(store);
        tokio::spawn(async move {
            let mut backoff = berth_store::Retry::new();
            loop {
                match follow(&me, &store).await {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "placement index: rebuilding"),
                }
                let (Some(index), Some(_)) = (me.upgrade(), store.upgrade()) else {
                    return;
                };
                *index.lock() = None;
                drop(index);
                if !backoff.next().await {
                    backoff = berth_store::Retry::new();
                }
            }
        });
    }

    /// Runs `f` over the index of `cluster` once it reflects revision `at_least`; `None`
    /// when it is not there within [`CATCH_UP`].
    pub(crate) async fn read<R>(
        &self,
        cluster: &str,
        at_least: Revision,
        f: impl FnOnce(&mut ClusterIndex) -> R,
    ) -> Option<R> {
        let mut rx = self.applied.subscribe();
        let caught_up = tokio::time::timeout(CATCH_UP, async {
            loop {
                if *rx.borrow_and_update() >= at_least && self.lock().is_some() {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        if caught_up != Ok(true) {
            tracing::debug!(
                cluster,
                at_least,
                "placement index not caught up; reading the store"
            );
            return None;
        }
        let mut state = self.lock();
        state.as_mut().map(|s| f(s.cluster(cluster)))
    }

    /// Runs `f` over the index of `cluster` as it is now, without waiting; `None` while it is
    /// being built.
    pub(crate) fn peek<R>(&self, cluster: &str, f: impl FnOnce(&ClusterIndex) -> R) -> Option<R> {
        let mut state = self.lock();
        state.as_mut().map(|s| &*s.cluster(cluster)).map(f)
    }
}

/// Builds the indexes from the store, then applies its events until the index is dropped
/// (`Ok`) or the watch fails (`Err`: the caller rebuilds).
async fn follow(me: &Weak<PlacementIndex>, store: &Weak<dyn Store>) -> Result<(), StoreError> {
    let Some(store) = store.upgrade() else {
        return Ok(());
    };
    let (instances, ri) = store.list("instances/").await?;
    let (tasks, rt) = store.list("tasks/").await?;
    let mut built = Indexes::default();
    for kv in instances.into_iter().chain(tasks) {
        built.apply(&WatchEvent {
            kind: EventKind::Put,
            kv,
        });
    }
    // Events after the earlier list are applied again; each key keeps its latest write.
    let from = ri.min(rt);
    {
        let Some(index) = me.upgrade() else {
            return Ok(());
        };
        *index.lock() = Some(built);
        index.applied.send_replace(from);
    }
    let mut events = store.watch("", from);
    drop(store);
    loop {
        let Some(first) = events.next().await else {
            return Err(StoreError::Closed);
        };
        let mut batch = vec![first?];
        // Everything already delivered goes in together, so a revision is never half applied.
        while let Some(Some(more)) = events.next().now_or_never() {
            batch.push(more?);
        }
        let Some(index) = me.upgrade() else {
            return Ok(());
        };
        let last = batch.last().map_or(from, WatchEvent::revision);
        if let Some(s) = index.lock().as_mut() {
            for ev in &batch {
                s.apply(ev);
            }
        }
        index.applied.send_if_modified(|a| {
            let newer = last > *a;
            if newer {
                *a = last;
            }
            newer
        });
    }
}

#[cfg(test)]
mod tests;
