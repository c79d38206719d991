//! Backoff: tasks of the primary deployment that keep failing pause its launches.
//!
//! Why a phase of its own: without it a task that crashes at once would be relaunched on
//! every pass, as fast as the controller runs. After [`BACKOFF_AFTER`] failures in a row the
//! next launch waits 1, 2, 4 ... up to [`MAX_BACKOFF_SECS`] seconds after the last failure.
//! Failures count since a task of the deployment last ran healthy (ECS resets the failure
//! count when a task turns healthy); the circuit breaker in `deployments` reads the same
//! count.

use berth_model::Task;

use super::classify::failed;
use super::events;
use super::state::Work;

/// Failures in a row after which launches back off.
const BACKOFF_AFTER: usize = 3;
/// The longest pause between launches of a crashing service.
const MAX_BACKOFF_SECS: f64 = 30.0;

/// Counts the primary's recent failures, and holds launches back while they call for it
/// (telling the problem once while it lasts).
pub(super) fn pace(w: &mut Work) {
    let primary = w.primary.id.as_str();
    let last_good = w
        .keep
        .iter()
        .filter(|t| w.health.healthy(t))
        .filter_map(|t| t.started_at)
        .fold(f64::MIN, f64::max);
    w.recent_failures = w
        .tasks
        .iter()
        .filter(|t| t.started_by.as_deref() == Some(primary) && failed(t))
        .filter_map(|t: &&Task| t.stopped_at)
        .filter(|s| *s > last_good)
        .collect();
    let recent = w.recent_failures.len();
    if recent < BACKOFF_AFTER {
        return;
    }
    let delay = 2f64
        .powi((recent - BACKOFF_AFTER) as i32)
        .min(MAX_BACKOFF_SECS);
    let last = w.recent_failures.iter().copied().fold(f64::MIN, f64::max);
    if w.now < last + delay {
        w.launch_ok = false;
        w.requeue((last + delay - w.now).max(0.05));
    }
    let event = events::unable_to_start_consistently(&w.svc.name);
    w.tell(event);
}
