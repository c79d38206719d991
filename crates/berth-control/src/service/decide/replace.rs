//! Replace: tasks that are live but no longer serve are stopped, so that `launch` replaces
//! them.
//!
//! Why a phase of its own, and first: a task that crashed, was stopped, or sat on a lost host
//! is already no longer live, and `launch` fills its place without anything to stop. A task
//! whose health checks fail is still live, and would be counted as a keeper by every later
//! phase: it must be taken out before the keep/retire split. The grace period
//! (`healthCheckGracePeriodSeconds`) protects tasks that are still starting up; while one is
//! inside it, the pass asks to be called again when it ends.

use berth_model::{HealthStatus, TaskStatus};

use super::events::{self, StopReason};
use super::state::Work;
use super::LbHealth;

/// Stops the unhealthy tasks past their grace period (container or load-balancer health
/// checks), with one event each.
pub(super) fn unhealthy(w: &mut Work) {
    let grace = f64::from(w.svc.health_check_grace_period_seconds.unwrap_or(0));
    let now = w.now;
    let name = w.svc.name.clone();
    for t in w.live.clone() {
        let running = t.last_status == TaskStatus::Running;
        let past_grace = t.started_at.is_some_and(|s| now - s >= grace);
        if running && t.health_status == HealthStatus::Unhealthy && past_grace {
            w.stop(t, StopReason::ContainerHealthChecks);
            w.tell(events::container_health_failed(&name, &t.id));
        } else if let (LbHealth::Unhealthy(tg), true, true) = (w.health.lb(t), past_grace, running)
        {
            w.tell(events::elb_unhealthy(&name, &t.id, &tg));
            w.stop(t, StopReason::ElbHealthChecks { target_group: tg });
        } else if t.health_status == HealthStatus::Unhealthy && !past_grace {
            w.requeue(t.started_at.map_or(grace, |s| s + grace - now).max(0.05));
        }
    }
}
