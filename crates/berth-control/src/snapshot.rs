//! A cluster's instances and tasks read together, and what each instance has left.

use std::collections::HashMap;

use berth_model::{
    keys, ContainerInstance, HostResources, InstanceStatus, InstanceUsage, Task, TaskStatus,
    TransportProtocol,
};
use berth_store::{Revision, Store, StoreError, StoreExt};

/// Whether an agent that last polled at `last_seen` counts as connected at `now`. A
/// deregistered (INACTIVE) instance has no agent any more.
pub fn is_connected(inst: &ContainerInstance, now: f64, timeout_secs: f64) -> bool {
    inst.status != InstanceStatus::Inactive && now - inst.last_seen <= timeout_secs
}

/// Remaining resources and task counts of `inst`, from the tasks placed on it.
pub fn usage_of<'a>(
    inst: &ContainerInstance,
    tasks: impl Iterator<Item = &'a Task>,
) -> InstanceUsage {
    let mut u = InstanceUsage {
        remaining: inst.registered.clone(),
        running_tasks: 0,
        pending_tasks: 0,
    };
    for t in tasks.filter(|t| t.container_instance_id.as_deref() == Some(inst.id.as_str())) {
        if !t.holds_resources() {
            continue;
        }
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

/// Every instance and task of one cluster, as of one moment.
#[derive(Debug, Clone, Default)]
pub struct ClusterSnapshot {
    /// Every container instance of the cluster, with the revision it was read at.
    pub instances: Vec<(ContainerInstance, Revision)>,
    /// Every task of the cluster, with the revision it was read at.
    pub tasks: Vec<(Task, Revision)>,
}

impl ClusterSnapshot {
    /// Reads the cluster's instances and tasks.
    pub async fn load(store: &dyn Store, cluster: &str) -> Result<Self, StoreError> {
        let instances = store
            .list_json::<ContainerInstance>(&keys::instances_of(cluster))
            .await?
            .into_iter()
            .map(|(_, i, r)| (i, r))
            .collect();
        let tasks = store
            .list_json::<Task>(&keys::tasks_of(cluster))
            .await?
            .into_iter()
            .map(|(_, t, r)| (t, r))
            .collect();
        Ok(Self { instances, tasks })
    }

    /// Usage of every instance, computed in one pass over the tasks.
    pub fn usages(&self) -> HashMap<String, InstanceUsage> {
        let mut by_instance: HashMap<&str, Vec<&Task>> = HashMap::new();
        for (t, _) in &self.tasks {
            if let Some(i) = &t.container_instance_id {
                by_instance.entry(i.as_str()).or_default().push(t);
            }
        }
        self.instances
            .iter()
            .map(|(i, _)| {
                let tasks = by_instance
                    .get(i.id.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                (i.id.clone(), usage_of(i, tasks.iter().copied()))
            })
            .collect()
    }
}

/// Decoded instances and tasks of each cluster, reused while their mod revision holds.
///
/// Placement reads the whole cluster at every launch; decoding every task's JSON each time
/// made a launch cost grow with the cluster's task count (with 100,000 tasks, `berth sim`
/// spent most of the server's time in `Task`'s deserializer). The records are still listed
/// (a byte copy), but only those written since the last load are decoded again. A key's mod
/// revision changes with every write to it, so an entry whose revision matches holds the
/// value as stored. Entries of records no longer listed are dropped at each load.
#[derive(Default)]
pub struct SnapshotCache {
    clusters: std::sync::Mutex<HashMap<String, Decoded>>,
}

#[derive(Default)]
struct Decoded {
    instances: HashMap<String, (Revision, ContainerInstance)>,
    tasks: HashMap<String, (Revision, Task)>,
}

/// The values of `kvs`, taken from `old` where the revision matches, else decoded; and the
/// entries to keep for next time.
#[allow(clippy::type_complexity)] // (records, cache entries)
fn decode_with<T: serde::de::DeserializeOwned + Clone>(
    kvs: Vec<berth_store::KeyValue>,
    mut old: HashMap<String, (Revision, T)>,
) -> Result<(Vec<(T, Revision)>, HashMap<String, (Revision, T)>), StoreError> {
    let mut out = Vec::with_capacity(kvs.len());
    let mut keep = HashMap::with_capacity(kvs.len());
    for kv in kvs {
        let value = match old.remove(&kv.key) {
            Some((rev, v)) if rev == kv.mod_revision => v,
            _ => serde_json::from_slice(&kv.value).map_err(|source| StoreError::Decode {
                key: kv.key.clone(),
                source,
            })?,
        };
        out.push((value.clone(), kv.mod_revision));
        keep.insert(kv.key, (kv.mod_revision, value));
    }
    Ok((out, keep))
}

impl SnapshotCache {
    /// The same as [`ClusterSnapshot::load`], decoding only what changed since the last load.
    pub async fn load(
        &self,
        store: &dyn Store,
        cluster: &str,
    ) -> Result<ClusterSnapshot, StoreError> {
        let (instances, _) = store.list(&keys::instances_of(cluster)).await?;
        let (tasks, _) = store.list(&keys::tasks_of(cluster)).await?;
        // Taken out while decoding: a concurrent load of the same cluster decodes afresh.
        let old = self.lock().remove(cluster).unwrap_or_default();
        let (instances, i) = decode_with(instances, old.instances)?;
        let (tasks, t) = decode_with(tasks, old.tasks)?;
        self.lock().insert(
            cluster.to_owned(),
            Decoded {
                instances: i,
                tasks: t,
            },
        );
        Ok(ClusterSnapshot { instances, tasks })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Decoded>> {
        self.clusters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Resources of a host as registered, for tests and callers that build instances.
pub fn host(cpu: u64, memory: u64) -> HostResources {
    HostResources {
        cpu,
        memory,
        ports: Vec::new(),
        ports_udp: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::DesiredStatus;

    fn inst() -> ContainerInstance {
        ContainerInstance {
            id: "i1".into(),
            cluster: "c".into(),
            ec2_instance_id: "h".into(),
            status: InstanceStatus::Active,
            status_reason: None,
            registered: HostResources {
                cpu: 1024,
                memory: 1000,
                ports: vec![22],
                ports_udp: vec![],
            },
            attributes: vec![],
            tags: vec![],
            version_info: serde_json::Value::Null,
            registered_at: 0.0,
            last_seen: 100.0,
            version: 1,
            agent_endpoint: None,
        }
    }

    fn task(status: TaskStatus, cpu: u64, mem: u64, ports: &[u16]) -> Task {
        Task {
            id: format!("t{cpu}{mem}"),
            cluster: "c".into(),
            family: "f".into(),
            revision: 1,
            container_instance_id: Some("i1".into()),
            last_status: status,
            desired_status: DesiredStatus::Running,
            launch_type: "EC2".into(),
            capacity_provider_name: None,
            cpu,
            memory: mem,
            host_ports: ports.iter().map(|p| (*p, TransportProtocol::Tcp)).collect(),
            containers: vec![],
            overrides: Default::default(),
            group: None,
            started_by: None,
            tags: vec![],
            created_at: 0.0,
            started_at: None,
            stopping_at: None,
            stopped_at: None,
            execution_stopped_at: None,
            pull_started_at: None,
            pull_stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            health_status: Default::default(),
            version: 1,
            stats: None,
            stop_after_drain: None,
            failed_health_checks: false,
            eni: None,
            fargate: None,
        }
    }

    #[test]
    fn usage_subtracts_live_tasks_only() {
        let tasks = [
            task(TaskStatus::Running, 256, 100, &[80]),
            task(TaskStatus::Pending, 128, 50, &[]),
            task(TaskStatus::Stopped, 512, 500, &[81]),
        ];
        let u = usage_of(&inst(), tasks.iter());
        assert_eq!(u.remaining.cpu, 1024 - 256 - 128);
        assert_eq!(u.remaining.memory, 1000 - 150);
        assert_eq!(u.remaining.ports, vec![22, 80]);
        assert_eq!((u.running_tasks, u.pending_tasks), (1, 1));
    }

    #[test]
    fn the_cache_decodes_only_what_changed() {
        let kv = |key: &str, value: &str, rev: u64| berth_store::KeyValue {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            create_revision: 1,
            mod_revision: rev,
        };
        let old: HashMap<String, (Revision, u32)> = [
            ("a".to_owned(), (5, 100)),
            ("b".to_owned(), (5, 200)),
            ("gone".to_owned(), (5, 300)),
        ]
        .into();
        // "a" kept its revision: the cached value is used (the bytes are not even read);
        // "b" was rewritten: decoded; "c" is new; "gone" is no longer listed: dropped.
        let (out, keep) = decode_with(vec![kv("a", "1", 5), kv("b", "2", 6), kv("c", "3", 7)], old)
            .unwrap_or_default();
        assert_eq!(out, vec![(100, 5), (2, 6), (3, 7)]);
        assert_eq!(keep.len(), 3);
        assert_eq!(keep.get("b"), Some(&(6, 2)));
        assert!(decode_with::<u32>(vec![kv("x", "not json", 1)], HashMap::new()).is_err());
    }

    #[test]
    fn connection_is_a_matter_of_last_seen() {
        assert!(is_connected(&inst(), 120.0, 30.0));
        assert!(!is_connected(&inst(), 131.0, 30.0));
        let mut gone = inst();
        gone.status = InstanceStatus::Inactive;
        assert!(!is_connected(&gone, 120.0, 30.0));
    }
}
