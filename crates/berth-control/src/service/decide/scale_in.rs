//! Scale in: the primary deployment has more keepers than it wants.
//!
//! Why a phase of its own: ECS exempts scale-in from minimum healthy percent (the surplus is
//! not needed to serve), and picks the tasks to stop by its own rule, which keeps the service
//! balanced over instances. It runs before `retire`, whose minimum-healthy arithmetic counts
//! only the keepers that stay. (A DAEMON service has a surplus only when it is deleted: at
//! most one task per instance is kept by `roles`.)

use std::collections::HashMap;

use berth_model::{Task, TaskStatus};

use super::events::StopReason;
use super::state::Work;

/// Stops surplus keepers, each from the instance running the most of them; there, pending
/// ones first, then the newest.
pub(super) fn surplus(w: &mut Work) {
    while w.keep.len() > w.desired as usize {
        let Some(i) = next_to_stop(&w.keep) else {
            break;
        };
        let t = w.keep.remove(i);
        let reason = StopReason::Scaling {
            deployment: w.primary.id.clone(),
        };
        w.stop(t, reason);
    }
}

/// The index in `keep` of the task scale-in stops next.
fn next_to_stop(keep: &[&Task]) -> Option<usize> {
    let mut per_instance: HashMap<&str, usize> = HashMap::new();
    for t in keep {
        *per_instance
            .entry(t.container_instance_id.as_deref().unwrap_or(""))
            .or_default() += 1;
    }
    let load = |t: &Task| per_instance[t.container_instance_id.as_deref().unwrap_or("")];
    keep.iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| {
            load(a)
                .cmp(&load(b))
                .then(
                    (a.last_status != TaskStatus::Running)
                        .cmp(&(b.last_status != TaskStatus::Running)),
                )
                .then(a.created_at.total_cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        })
        .map(|(i, _)| i)
}
