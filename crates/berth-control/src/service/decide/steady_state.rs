//! Steady state: whether the service has everything it wants, and the end of a deleted one.
//!
//! Why a phase of its own, and last: steadiness is a judgement on the whole pass (nothing to
//! stop or launch, every keeper healthy, nothing retired, one deployment left), so it can only
//! be made once every other phase has decided. Reaching it writes ECS's "has reached a steady
//! state" event, which also marks every problem told before it as resolved. A deleted service
//! (DRAINING) becomes INACTIVE once its last task has stopped, not merely been asked to.

use berth_model::{DeploymentStatus, ServiceStatus, TaskStatus};

use super::events;
use super::state::Work;

/// Records the service's steadiness, and ends a deleted service whose tasks are all stopped.
pub(super) fn settle(w: &mut Work) {
    let desired = w.desired as usize;
    let steady = w.svc.status == ServiceStatus::Active
        && w.plan.stop.is_empty()
        && w.plan.launch.is_empty()
        && w.keep_healthy() == desired
        && w.keep.len() == desired
        && w.retire.is_empty()
        && w.svc
            .deployments
            .iter()
            .filter(|d| d.status != DeploymentStatus::Inactive)
            .count()
            == 1;
    if steady && !w.svc.steady {
        w.svc.steady = true;
        w.changed = true;
        let event = events::steady_state(&w.svc.name);
        w.tell(event);
    } else if !steady && w.svc.steady {
        w.svc.steady = false;
        w.changed = true;
    }
    if w.svc.status == ServiceStatus::Draining
        && w.live_total == 0
        && w.plan.stop.is_empty()
        && w.tasks.iter().all(|t| t.last_status == TaskStatus::Stopped)
    {
        w.svc.status = ServiceStatus::Inactive;
        w.changed = true;
    }
}
