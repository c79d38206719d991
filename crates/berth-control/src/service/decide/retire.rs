//! Retire: the tasks of older deployments (and of DRAINING instances) stop, as far as
//! minimum healthy percent allows.
//!
//! Why a phase of its own: this is where a rolling update's two limits meet. Unhealthy and
//! pending retired tasks serve nobody and go at once; healthy ones go only while at least
//! `ceil(desired × minimumHealthyPercent / 100)` healthy tasks remain, counting keepers and
//! retired tasks alike; young ones (running, not settled yet) wait until they are one or the
//! other. What stays live here bounds what `launch` may start within maximum percent.

use super::events::StopReason;
use super::state::Work;

/// Stops what may go of the retired tasks, and counts the live tasks that stay.
pub(super) fn older(w: &mut Work) {
    let min_healthy = w.svc.deployment_configuration.min_healthy(w.desired) as usize;
    let mut healthy_total = w
        .keep
        .iter()
        .chain(&w.retire)
        .filter(|t| w.health.healthy(t))
        .count();
    w.live_total = w.keep.len() + w.retire.len();
    // Unhealthy ones first.
    let mut retire = std::mem::take(&mut w.retire);
    retire.sort_by_key(|t| w.health.healthy(t));
    for t in retire.iter().copied() {
        let h = w.health.healthy(t);
        if w.health.young(t) || (h && healthy_total <= min_healthy) {
            continue;
        }
        let draining = t
            .container_instance_id
            .as_deref()
            .is_some_and(|i| w.draining_instances.contains(i));
        let why = if draining {
            StopReason::InstanceDraining
        } else {
            StopReason::Scaling {
                deployment: w.primary.id.clone(),
            }
        };
        w.stop(t, why);
        if h {
            healthy_total -= 1;
        }
        w.live_total -= 1;
    }
    w.retire = retire;
}
