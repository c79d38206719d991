//! Wake-ups for waiting agent polls: one store watch for the whole process instead of two per
//! waiting poll.
//!
//! A poll that finds nothing new waits for a change to its instance's assignments (or to
//! `ec2/`, which changes what an awsvpc task's agent enforces). With a store watch per
//! waiting poll, every commit woke every waiting poll to filter it (the redb backend
//! broadcasts each commit to all watchers): with thousands of hosts, thousands of wake-ups
//! per write, measured with `berth sim`. Here one task watches `assign/` and `ec2/` and bumps
//! a counter per instance (every counter for `ec2/`); a poll subscribes before it lists, so a
//! change committed after its list always reaches it. When the hub's watch ends (a compaction,
//! an error) it wakes every poll and starts again from the current revision: a spurious
//! wake-up only costs the poll a re-list. The hub holds the store weakly and stops with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use berth_model::keys;
use berth_store::Store;
use futures::StreamExt;
use tokio::sync::watch;

/// The counters waiting polls watch (see the module docs).
#[derive(Default)]
pub(crate) struct PollHub {
    state: Mutex<HubState>,
}

#[derive(Default)]
struct HubState {
    started: bool,
    /// Bumped on a change to the instance's assignments.
    instances: HashMap<String, watch::Sender<u64>>,
    /// Bumped on a change under `ec2/`, and when the hub's watch restarts.
    all: Option<watch::Sender<u64>>,
}

/// What one waiting poll listens to.
pub(crate) struct Subscription {
    pub(crate) instance: watch::Receiver<u64>,
    pub(crate) all: watch::Receiver<u64>,
}

impl Subscription {
    /// Resolves at the next change after the subscription was made.
    pub(crate) async fn changed(&mut self) {
        tokio::select! {
            r = self.instance.changed() => if r.is_err() { std::future::pending::<()>().await },
            r = self.all.changed() => if r.is_err() { std::future::pending::<()>().await },
        }
    }
}

/// The instance id of an `assign/{instance}/{task}` key.
fn instance_of(key: &str) -> Option<&str> {
    key.strip_prefix(keys::ASSIGNMENTS)?.split('/').next()
}

impl PollHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes a poll of `instance` (starting the hub's watch on first use).
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        instance: &str,
    ) -> Subscription {
        let mut s = self.lock();
        if !s.started {
            s.started = true;
            tokio::spawn(run(Arc::downgrade(self), Arc::downgrade(store)));
        }
        let all = s.all.get_or_insert_with(|| watch::channel(0).0).subscribe();
        let instance = s
            .instances
            .entry(instance.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Subscription { instance, all }
    }

    fn bump_instance(&self, id: &str) {
        if let Some(tx) = self.lock().instances.get(id) {
            tx.send_modify(|v| *v += 1);
        }
    }

    fn bump_all(&self) {
        if let Some(tx) = &self.lock().all {
            tx.send_modify(|v| *v += 1);
        }
    }
}

/// Watches `assign/` and `ec2/` until the hub or the store is gone.
async fn run(hub: Weak<PollHub>, store: Weak<dyn Store>) {
    loop {
        let (assign, ec2) = {
            let Some(store) = store.upgrade() else { return };
            let rev = match store.revision().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "poll hub: cannot read the store revision");
                    drop(store);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            (
                store.watch(keys::ASSIGNMENTS, rev),
                store.watch(keys::EC2, rev),
            )
        };
        // Anything between the last event seen and `rev` may have been missed.
        match hub.upgrade() {
            Some(h) => h.bump_all(),
            None => return,
        }
        let (mut assign, mut ec2) = (assign, ec2);
        loop {
            tokio::select! {
                ev = assign.next() => match ev {
                    Some(Ok(e)) => {
                        let Some(h) = hub.upgrade() else { return };
                        if let Some(id) = instance_of(&e.kv.key) {
                            h.bump_instance(id);
                        }
                    }
                    _ => break,
                },
                ev = ec2.next() => match ev {
                    Some(Ok(_)) => {
                        let Some(h) = hub.upgrade() else { return };
                        h.bump_all();
                    }
                    _ => break,
                },
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

    #[test]
    fn assignment_keys_name_their_instance() {
        assert_eq!(instance_of(&keys::assignment("i1", "t1")), Some("i1"));
        assert_eq!(instance_of("tasks/c/t1"), None);
    }
}
