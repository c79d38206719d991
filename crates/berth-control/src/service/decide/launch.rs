//! Launch: what the primary deployment lacks starts, within maximum percent.
//!
//! Why a phase of its own: it is the only phase that adds tasks, and it runs after every stop
//! of the pass so that the room under `maximumPercent` counts the tasks that stay. A REPLICA
//! service asks for a number of tasks and leaves placement to the scheduler; a DAEMON asks
//! for one task on each of its instances that has none (and none still stopping). Nothing
//! launches while `backoff` holds launches back, for a service being deleted, or for a
//! deployment the circuit breaker failed (ECS: it "stops launching new tasks").

use std::collections::HashSet;

use berth_model::{RolloutState, ServiceStatus};

use super::state::Work;
use super::Launch;

/// Plans the launches the primary deployment needs.
pub(super) fn missing(w: &mut Work) {
    if !w.launch_ok
        || w.svc.status != ServiceStatus::Active
        || w.primary.rollout_state == RolloutState::Failed
    {
        return;
    }
    let launch = if w.daemon { daemon(w) } else { replica(w) };
    w.plan.launch.extend(launch);
}

/// As many tasks as the keepers lack, as far as maximum percent leaves room.
fn replica(w: &Work) -> Option<Launch> {
    let max_total = w
        .svc
        .deployment_configuration
        .max_tasks(w.desired)
        .max(w.desired);
    let need = (w.desired as usize).saturating_sub(w.keep.len());
    let room = (max_total as usize).saturating_sub(w.live_total);
    let count = need.min(room);
    (count > 0).then(|| Launch {
        deployment_id: w.primary.id.clone(),
        count,
        on_instances: None,
    })
}

/// One task on each of the service's instances that has no keeper, and no retired task that
/// still runs.
fn daemon(w: &Work) -> Option<Launch> {
    let have: HashSet<&str> = w
        .keep
        .iter()
        .filter_map(|t| t.container_instance_id.as_deref())
        .collect();
    let busy: HashSet<&str> = w
        .retire
        .iter()
        .filter(|t| !w.stopping.contains(&t.id))
        .filter_map(|t| t.container_instance_id.as_deref())
        .collect();
    let targets: Vec<String> = w
        .input
        .daemon_instances
        .iter()
        .filter(|i| !have.contains(i.as_str()) && !busy.contains(i.as_str()))
        .cloned()
        .collect();
    (!targets.is_empty()).then(|| Launch {
        deployment_id: w.primary.id.clone(),
        count: targets.len(),
        on_instances: Some(targets),
    })
}
