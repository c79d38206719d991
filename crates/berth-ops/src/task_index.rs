//! What the read paths need of every task, kept in memory from one store watch: a summary per
//! task (the fields ListTasks filters on and a container instance's usage counts) and each
//! service deployment's running, pending and failed counts.
//!
//! Why: DescribeServices counted by listing and decoding every task of the cluster, and
//! ListTasks decoded every task to filter them; with 100,000 tasks each call cost seconds,
//! measured with `berth sim`. Here a task is decoded once per write (from the watch event) and a
//! call costs the tasks it answers with.
//!
//! Level-triggered: the index is built from a list of the store and then follows a watch of
//! every key from that list's revision; when the watch ends (a compaction, an error) it is
//! built again from a fresh list. Reads are as fresh as a store read: a reader takes the
//! store's current revision and waits until the index has applied every event up to it
//! (every key is watched so that the index's revision advances with the store's, whatever was
//! written). The index holds the store weakly and stops with it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use berth_control::service::counts;
use berth_model::{
    keys, ContainerInstance, DeploymentCounts, DesiredStatus, InstanceUsage, Task, TaskStatus,
    TransportProtocol,
};
use berth_store::{EventKind, Revision, Store, StoreError};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

/// How long a reader waits for the index to reach the store's revision before it answers
/// from what the index has (and says so in the log).
const CATCH_UP: Duration = Duration::from_secs(5);

/// Events applied under one hold of the lock, at most.
const BATCH: usize = 512;

/// What the read paths need of one task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) cluster: String,
    pub(crate) id: String,
    pub(crate) desired_status: DesiredStatus,
    pub(crate) last_status: TaskStatus,
    pub(crate) container_instance_id: Option<String>,
    pub(crate) family: String,
    pub(crate) started_by: Option<String>,
    pub(crate) group: Option<String>,
    pub(crate) launch_type: String,
    pub(crate) cpu: u64,
    pub(crate) memory: u64,
    pub(crate) host_ports: Vec<(u16, TransportProtocol)>,
    /// What the task adds to its deployment's counts (none: it counts nowhere).
    counted: Option<(String, DeploymentCounts)>,
}

impl Summary {
    fn of(t: &Task) -> Self {
        let counted = counts(&[t]).into_iter().next();
        Self {
            cluster: t.cluster.clone(),
            id: t.id.clone(),
            desired_status: t.desired_status,
            last_status: t.last_status,
            container_instance_id: t.container_instance_id.clone(),
            family: t.family.clone(),
            started_by: t.started_by.clone(),
            group: t.group.clone(),
            launch_type: t.launch_type.clone(),
            cpu: t.cpu,
            memory: t.memory,
            host_ports: t.host_ports.clone(),
            counted,
        }
    }

    /// Whether the task still holds resources on its instance (as [`Task::holds_resources`]).
    pub(crate) fn holds_resources(&self) -> bool {
        self.last_status != TaskStatus::Stopped
    }

    /// Whether it is not yet RUNNING (as [`Task::is_pending`]).
    pub(crate) fn is_pending(&self) -> bool {
        self.last_status < TaskStatus::Running
    }
}

/// Remaining resources and task counts of `inst`, from the summaries of the tasks placed on
/// it: what [`berth_control::usage_of`] computes from whole tasks, for the read paths.
pub(crate) fn usage<'a>(
    inst: &ContainerInstance,
    tasks: impl Iterator<Item = &'a Summary>,
) -> InstanceUsage {
    let mut u = InstanceUsage {
        remaining: inst.registered.clone(),
        running_tasks: 0,
        pending_tasks: 0,
    };
    for t in tasks.filter(|t| t.holds_resources()) {
        u.remaining.cpu = u.remaining.cpu.saturating_sub(t.cpu);
        u.remaining.memory = u.remaining.memory.saturating_sub(t.memory);
        for (port, proto) in &t.host_ports {
            let list = if *proto == TransportProtocol::Udp {
                &mut u.remaining.ports_udp
            } else {
                &mut u.remaining.ports
            };
            if !list.contains(port) {
                list.push(*port);
            }
        }
        if t.last_status == TaskStatus::Running {
            u.running_tasks += 1;
        } else if t.is_pending() {
            u.pending_tasks += 1;
        }
    }
    u.remaining.ports.sort_unstable();
    u.remaining.ports_udp.sort_unstable();
    u
}

/// One store change as the index takes it: its revision and, for a task key, the task's new
/// summary (none: deleted, or undecodable).
struct Change {
    revision: Revision,
    task: Option<(String, Option<Summary>)>,
}

/// Decodes a change (outside the index's lock).
fn change(kind: EventKind, key: String, value: &[u8], revision: Revision) -> Change {
    if !key.starts_with(keys::TASKS) {
        return Change {
            revision,
            task: None,
        };
    }
    let summary = match kind {
        EventKind::Delete => None,
        EventKind::Put => match serde_json::from_slice::<Task>(value) {
            Ok(t) => Some(Summary::of(&t)),
            Err(e) => {
                tracing::warn!(key, error = %e, "task index: undecodable task left out");
                None
            }
        },
    };
    Change {
        revision,
        task: Some((key, summary)),
    }
}

/// Every task's summary and the counts derived from them, as of `revision`.
#[derive(Default)]
pub(crate) struct Tasks {
    revision: Revision,
    /// By store key, in key order (the order ListTasks pages in).
    by_key: BTreeMap<String, Summary>,
    /// The keys of the tasks placed on each instance.
    by_instance: HashMap<String, BTreeSet<String>>,
    /// Counts per (cluster, group, deployment id).
    counts: HashMap<(String, String, String), DeploymentCounts>,
}

fn add(into: &mut DeploymentCounts, c: &DeploymentCounts, sign: i64) {
    let f = |a: u32, b: u32| (i64::from(a) + sign * i64::from(b)).max(0) as u32;
    into.running = f(into.running, c.running);
    into.pending = f(into.pending, c.pending);
    into.failed = f(into.failed, c.failed);
}

impl Tasks {
    fn count(&mut self, s: &Summary, sign: i64) {
        let (Some((deployment, c)), Some(group)) = (&s.counted, &s.group) else {
            return;
        };
        let key = (s.cluster.clone(), group.clone(), deployment.clone());
        let entry = self.counts.entry(key.clone()).or_default();
        add(entry, c, sign);
        if *entry == DeploymentCounts::default() {
            self.counts.remove(&key);
        }
    }

    fn remove(&mut self, key: &str) {
        let Some(old) = self.by_key.remove(key) else {
            return;
        };
        self.count(&old, -1);
        if let Some(inst) = &old.container_instance_id {
            if let Some(set) = self.by_instance.get_mut(inst) {
                set.remove(key);
                if set.is_empty() {
                    self.by_instance.remove(inst);
                }
            }
        }
    }

    fn put(&mut self, key: String, s: Summary) {
        self.remove(&key);
        self.count(&s, 1);
        if let Some(inst) = &s.container_instance_id {
            self.by_instance
                .entry(inst.clone())
                .or_default()
                .insert(key.clone());
        }
        self.by_key.insert(key, s);
    }

    /// Applies one store change (see [`change`]).
    fn apply(&mut self, change: Change) {
        self.revision = self.revision.max(change.revision);
        match change.task {
            None => {}
            Some((key, None)) => self.remove(&key),
            Some((key, Some(s))) => self.put(key, s),
        }
    }

    /// The summary of the task stored at `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Summary> {
        self.by_key.get(key)
    }

    /// The tasks of `cluster`, in key order.
    pub(crate) fn of_cluster<'a>(
        &'a self,
        cluster: &str,
    ) -> impl Iterator<Item = (&'a String, &'a Summary)> + 'a {
        let prefix = keys::tasks_of(cluster);
        self.by_key
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
    }

    /// The tasks placed on `instance` (of any status).
    pub(crate) fn on_instance<'a>(&'a self, instance: &str) -> impl Iterator<Item = &'a Summary> {
        self.by_instance
            .get(instance)
            .into_iter()
            .flatten()
            .filter_map(|k| self.by_key.get(k))
    }

    /// The live counts of each deployment of the service whose tasks are in `group`.
    pub(crate) fn deployment_counts(
        &self,
        cluster: &str,
        group: &str,
    ) -> HashMap<String, DeploymentCounts> {
        self.counts
            .iter()
            .filter(|((c, g, _), _)| c == cluster && g == group)
            .map(|((_, _, d), n)| (d.clone(), *n))
            .collect()
    }
}

/// The index (see the module docs). Started on first use.
#[derive(Default)]
pub(crate) struct TaskIndex {
    state: Mutex<IndexState>,
}

#[derive(Default)]
struct IndexState {
    started: bool,
    tasks: Arc<Mutex<Tasks>>,
    /// The revision the index has applied everything up to (none: not built yet).
    revision: Option<watch::Sender<Option<Revision>>>,
}

impl TaskIndex {
    fn lock(&self) -> MutexGuard<'_, IndexState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the index once it has applied every write up to the store's current
    /// revision (starting the index on first use).
    pub(crate) async fn read<R>(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        f: impl FnOnce(&Tasks) -> R,
    ) -> Result<R, StoreError> {
        let (mut rev_rx, tasks) = {
            let mut s = self.lock();
            let tx = s
                .revision
                .get_or_insert_with(|| watch::channel(None).0)
                .clone();
            let rx = tx.subscribe();
            if !s.started {
                s.started = true;
                tokio::spawn(run(Arc::downgrade(&s.tasks), tx, Arc::downgrade(store)));
            }
            (rx, s.tasks.clone())
        };
        let want = store.revision().await?;
        let caught_up =
            tokio::time::timeout(CATCH_UP, rev_rx.wait_for(|r| r.is_some_and(|r| r >= want))).await;
        if !matches!(caught_up, Ok(Ok(_))) {
            tracing::warn!(
                want,
                "task index: behind the store; answering from what it has"
            );
        }
        let t = tasks.lock().unwrap_or_else(|e| e.into_inner());
        Ok(f(&t))
    }
}

/// Builds the index from a list, then follows the watch; again from a list when it ends.
async fn run(
    tasks: Weak<Mutex<Tasks>>,
    revision: watch::Sender<Option<Revision>>,
    store: Weak<dyn Store>,
) {
    loop {
        let events = {
            let Some(store) = store.upgrade() else { return };
            let (kvs, rev) = match store.list(keys::TASKS).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "task index: cannot list the tasks");
                    drop(store);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let mut fresh = Tasks::default();
            for kv in kvs {
                fresh.apply(change(EventKind::Put, kv.key, &kv.value, kv.mod_revision));
            }
            fresh.revision = rev;
            let Some(shared) = tasks.upgrade() else {
                return;
            };
            *shared.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
            revision.send_replace(Some(rev));
            store.watch("", rev)
        };
        let mut events = events;
        loop {
            // What is already delivered (up to BATCH events) is decoded, then applied under
            // the lock at once, so the events of one transaction are seen together; the
            // revision published is the last one known complete.
            let mut batch = Vec::new();
            let mut next = events.next().await;
            let mut ended = false;
            loop {
                match next {
                    Some(Ok(e)) => {
                        let rev = e.revision();
                        batch.push(change(e.kind, e.kv.key, &e.kv.value, rev));
                    }
                    _ => {
                        ended = true;
                        break;
                    }
                }
                if batch.len() >= BATCH {
                    break;
                }
                match events.next().now_or_never() {
                    Some(n) => next = n,
                    None => break,
                }
            }
            let full = batch.len() >= BATCH;
            let Some(shared) = tasks.upgrade() else {
                return;
            };
            let applied = {
                let mut t = shared.lock().unwrap_or_else(|e| e.into_inner());
                for c in batch {
                    t.apply(c);
                }
                t.revision
            };
            // A full batch may have stopped inside a transaction.
            let complete = if full || ended {
                applied.saturating_sub(1)
            } else {
                applied
            };
            revision.send_if_modified(|r| {
                let newer = r.is_none_or(|r| complete > r);
                if newer {
                    *r = Some(complete);
                }
                newer
            });
            if ended {
                break;
            }
        }
        if store.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::{RedbStore, Txn};

    fn task(id: &str, deployment: &str, last: TaskStatus, desired: DesiredStatus) -> Task {
        serde_json::from_value(serde_json::json!({
            "id": id, "cluster": "c", "family": "f", "revision": 1, "containerInstanceId": "i",
            "lastStatus": last, "desiredStatus": desired, "launchType": "EC2",
            "cpu": 128, "memory": 256, "createdAt": 1.0, "containers": [],
            "group": "service:s", "startedBy": deployment,
        }))
        .unwrap()
    }

    async fn put(store: &Arc<dyn Store>, t: &Task) {
        let bytes = serde_json::to_vec(t).unwrap();
        store
            .txn(Txn::new().put(keys::task(&t.cluster, &t.id), bytes))
            .await
            .unwrap();
    }

    async fn counts_of(index: &Arc<TaskIndex>, store: &Arc<dyn Store>) -> DeploymentCounts {
        index
            .read(store, |t| t.deployment_counts("c", "service:s"))
            .await
            .unwrap()
            .get("d1")
            .copied()
            .unwrap_or_default()
    }

    /// The counts follow every write as soon as it is committed (no waiting in the test), and
    /// an index built afresh over the same store (a restart) finds the same counts.
    #[tokio::test]
    async fn counts_follow_writes_and_survive_a_restart() {
        let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().unwrap());
        use DesiredStatus::Running as Want;
        put(&store, &task("t1", "d1", TaskStatus::Running, Want)).await;
        let index = Arc::new(TaskIndex::default());
        let c = counts_of(&index, &store).await;
        assert_eq!((c.running, c.pending), (1, 0));
        put(&store, &task("t2", "d1", TaskStatus::Pending, Want)).await;
        put(&store, &task("t3", "d1", TaskStatus::Running, Want)).await;
        let c = counts_of(&index, &store).await;
        assert_eq!((c.running, c.pending), (2, 1));
        // t3 is asked to stop, then stops; t2 runs; t1's record goes (reaped).
        put(
            &store,
            &task("t3", "d1", TaskStatus::Running, DesiredStatus::Stopped),
        )
        .await;
        put(&store, &task("t2", "d1", TaskStatus::Running, Want)).await;
        store
            .txn(Txn::new().delete(keys::task("c", "t1")))
            .await
            .unwrap();
        let c = counts_of(&index, &store).await;
        assert_eq!((c.running, c.pending), (1, 0));
        // Writes elsewhere move the store's revision: reads still answer at once.
        store.txn(Txn::new().put("clusters/x", "{}")).await.unwrap();
        assert_eq!(counts_of(&index, &store).await.running, 1);
        let restarted = Arc::new(TaskIndex::default());
        assert_eq!(counts_of(&restarted, &store).await, c);
        let listed: Vec<String> = restarted
            .read(&store, |t| {
                t.of_cluster("c").map(|(_, s)| s.id.clone()).collect()
            })
            .await
            .unwrap();
        assert_eq!(listed, ["t2", "t3"]);
        let on_i = restarted
            .read(&store, |t| t.on_instance("i").count())
            .await
            .unwrap();
        assert_eq!(on_i, 2);
    }
}
