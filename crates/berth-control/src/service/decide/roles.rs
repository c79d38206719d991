//! Roles: how many tasks the primary deployment wants, and which live tasks are its
//! "keepers" and which are "retired".
//!
//! Why a phase of its own: scale-in, retirement, launches, completion and the steady state
//! all count the same two sets. A keeper is a live task of the PRIMARY deployment on a usable
//! instance (ACTIVE, and for a DAEMON one of the instances it should run on, one task per
//! instance); every other live task (older deployments, DRAINING instances, DAEMON extras)
//! is retired. A service being deleted wants nothing, so all its tasks retire.

use std::collections::HashSet;

use berth_model::{SchedulingStrategy, ServiceStatus, Task};

use super::state::Work;

/// Sets the desired count and splits the live tasks that `replace` left into keep and retire.
pub(super) fn assign(w: &mut Work) {
    w.daemon = w.svc.scheduling_strategy == SchedulingStrategy::Daemon;
    w.desired = if w.svc.status == ServiceStatus::Draining {
        0
    } else if w.daemon {
        w.input.daemon_instances.len() as u32
    } else {
        w.svc.desired_count
    };
    // A DAEMON's desired count is the number of instances it runs on.
    if w.daemon && w.svc.status == ServiceStatus::Active && w.svc.desired_count != w.desired {
        w.svc.desired_count = w.desired;
        w.changed = true;
    }
    let daemon_set: HashSet<&str> = w
        .input
        .daemon_instances
        .iter()
        .map(String::as_str)
        .collect();
    let usable = |t: &Task| -> bool {
        let inst = t.container_instance_id.as_deref().unwrap_or("");
        !w.draining_instances.contains(inst) && (!w.daemon || daemon_set.contains(inst))
    };
    let primary = w.primary.id.as_str();
    let (mut keep, mut retire): (Vec<&Task>, Vec<&Task>) = w
        .live
        .iter()
        .copied()
        .filter(|t| !w.stopping.contains(&t.id))
        .partition(|t| t.started_by.as_deref() == Some(primary) && usable(t));
    // DAEMON: one task per instance; extras retire.
    if w.daemon {
        let mut seen = HashSet::new();
        let (k, extra): (Vec<&Task>, Vec<&Task>) = keep
            .into_iter()
            .partition(|t| seen.insert(t.container_instance_id.clone()));
        keep = k;
        retire.extend(extra);
    }
    w.keep = keep;
    w.retire = retire;
}
