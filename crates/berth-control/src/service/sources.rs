//! Which keys a store change wakes: the service controller's watches, one per prefix.
//!
//! - `services/CLUSTER/NAME` wakes that service (the key says which; the value is not read,
//!   so a record that does not decode still gets its reconcile, and its error, alone).
//! - `tasks/...` wakes the task's service, named by its group (`service:NAME`); other tasks
//!   wake nothing.
//! - `instances/CLUSTER/...` wakes the cluster's host check and every service of the cluster,
//!   only when the instance changed in a way they care about (registered, deregistered,
//!   status, resources, attributes): the agent's heartbeat rewrites `lastSeen` every few
//!   seconds and must cost nothing. Silence is time, not a write: the host check requeues
//!   itself for the moment the next host would count as lost.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use berth_model::{keys, ContainerInstance};
use berth_store::{EventKind, Store, StoreError, WatchEvent};

use super::Key;
use crate::runtime::Trigger;

/// The service controller's view of which services and instances exist, kept from the
/// watches, so a change can be fanned out to the keys it concerns.
pub(super) struct Sources {
    trigger: Trigger<Key>,
    /// Services by cluster.
    services: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// A digest of each instance's placement-relevant fields, by store key.
    shapes: Mutex<HashMap<String, u64>>,
}

/// Only the fields of a task record that say whose it is.
#[derive(serde::Deserialize)]
struct Owner {
    cluster: String,
    #[serde(default)]
    group: Option<String>,
}

/// `services/CLUSTER/NAME` → (CLUSTER, NAME).
fn service_of_key(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix(keys::SERVICES)?
        .split_once('/')
        .filter(|(c, n)| !c.is_empty() && !n.is_empty() && !n.contains('/'))
}

/// `instances/CLUSTER/ID` → CLUSTER.
fn cluster_of_instance_key(key: &str) -> Option<&str> {
    key.strip_prefix("instances/")?
        .split_once('/')
        .map(|(c, _)| c)
        .filter(|c| !c.is_empty())
}

/// What placement sees of an instance: everything but the heartbeat.
fn shape(value: &[u8]) -> Option<u64> {
    let mut i: ContainerInstance = serde_json::from_slice(value).ok()?;
    i.last_seen = 0.0;
    i.version = 0;
    let mut h = DefaultHasher::new();
    serde_json::to_vec(&i).ok()?.hash(&mut h);
    Some(h.finish())
}

impl Sources {
    pub(super) fn new(trigger: Trigger<Key>) -> Self {
        Self {
            trigger,
            services: Mutex::new(BTreeMap::new()),
            shapes: Mutex::new(HashMap::new()),
        }
    }

    fn service_names(&self, cluster: &str) -> Vec<String> {
        self.services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(cluster)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn wake_cluster(&self, cluster: &str) {
        for name in self.service_names(cluster) {
            self.trigger.send(Key::service(cluster, &name));
        }
    }

    pub(super) fn on_service(&self, ev: &WatchEvent) {
        let Some((cluster, name)) = service_of_key(&ev.kv.key) else {
            return;
        };
        {
            let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
            if ev.kind == EventKind::Delete {
                if let Some(s) = services.get_mut(cluster) {
                    s.remove(name);
                }
            } else {
                services
                    .entry(cluster.to_owned())
                    .or_default()
                    .insert(name.to_owned());
            }
        }
        self.trigger.send(Key::service(cluster, name));
    }

    pub(super) fn on_task(&self, ev: &WatchEvent) {
        if ev.kind == EventKind::Delete {
            return;
        }
        let Ok(o) = serde_json::from_slice::<Owner>(&ev.kv.value) else {
            return;
        };
        if let Some(name) = o.group.as_deref().and_then(|g| g.strip_prefix("service:")) {
            self.trigger.send(Key::service(&o.cluster, name));
        }
    }

    pub(super) fn on_instance(&self, ev: &WatchEvent) {
        let Some(cluster) = cluster_of_instance_key(&ev.kv.key) else {
            return;
        };
        let new = match ev.kind {
            EventKind::Delete => None,
            EventKind::Put => shape(&ev.kv.value),
        };
        let changed = {
            let mut shapes = self.shapes.lock().unwrap_or_else(|e| e.into_inner());
            let old = match new {
                Some(s) => shapes.insert(ev.kv.key.clone(), s),
                None => shapes.remove(&ev.kv.key),
            };
            old != new
        };
        if changed {
            self.trigger.send(Key::Hosts(cluster.to_owned()));
            self.wake_cluster(cluster);
        }
    }

    /// Reads which services and instances exist and queues every key: at start, after a
    /// broken watch, and periodically.
    pub(super) async fn resync(&self, store: &dyn Store) -> Result<(), StoreError> {
        let (services, _) = store.list(keys::SERVICES).await?;
        let (instances, _) = store.list("instances/").await?;
        let mut by_cluster: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for kv in &services {
            if let Some((c, n)) = service_of_key(&kv.key) {
                by_cluster
                    .entry(c.to_owned())
                    .or_default()
                    .insert(n.to_owned());
            }
        }
        let mut shapes = HashMap::new();
        let mut clusters = BTreeSet::new();
        for kv in &instances {
            if let Some(c) = cluster_of_instance_key(&kv.key) {
                clusters.insert(c.to_owned());
                if let Some(s) = shape(&kv.value) {
                    shapes.insert(kv.key.clone(), s);
                }
            }
        }
        for (c, names) in &by_cluster {
            for n in names {
                self.trigger.send(Key::service(c, n));
            }
        }
        for c in clusters {
            self.trigger.send(Key::Hosts(c));
        }
        *self.services.lock().unwrap_or_else(|e| e.into_inner()) = by_cluster;
        *self.shapes.lock().unwrap_or_else(|e| e.into_inner()) = shapes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse() {
        assert_eq!(service_of_key("services/c/web"), Some(("c", "web")));
        assert_eq!(service_of_key("services/c/"), None);
        assert_eq!(service_of_key("services/c/a/b"), None);
        assert_eq!(service_of_key("clusters/c"), None);
        assert_eq!(cluster_of_instance_key("instances/c/i-1"), Some("c"));
        assert_eq!(cluster_of_instance_key("instances//i-1"), None);
    }
}
