//! The working state the phases of [`decide`](super::decide) share.
//!
//! Why one struct: each phase reads what the earlier ones decided (the tasks already being
//! stopped, the keep/retire split, whether launches may go), and the service record collects
//! every phase's changes before it is written once. Fields are filled in pipeline order; a
//! field a phase has not reached yet holds its empty value.

use std::collections::HashSet;

use berth_model::{Deployment, Service, Task};

use super::classify::Health;
use super::events::{self, Event, StopReason};
use super::{Input, Plan};

pub(super) struct Work<'a> {
    pub input: Input<'a>,
    pub now: f64,
    /// The service record as the phases change it.
    pub svc: Service,
    /// Whether `svc` must be written.
    pub changed: bool,
    pub plan: Plan,
    /// The PRIMARY deployment as the pass found it.
    pub primary: Deployment,
    pub health: Health<'a>,
    /// Instances that take no new tasks (DRAINING, INACTIVE).
    pub draining_instances: HashSet<&'a str>,
    /// Every task of the service (classify).
    pub tasks: Vec<&'a Task>,
    /// The tasks that are, or are meant to be, running (classify).
    pub live: Vec<&'a Task>,
    /// Ids of the tasks this pass stops (every phase that stops one).
    pub stopping: HashSet<String>,
    /// Whether the service is a DAEMON (roles).
    pub daemon: bool,
    /// How many tasks the primary deployment wants (roles).
    pub desired: u32,
    /// Live primary tasks on usable instances, not being stopped (roles, scale_in).
    pub keep: Vec<&'a Task>,
    /// Every other live task not stopped by `replace` (roles); `retire` stops what it may.
    pub retire: Vec<&'a Task>,
    /// Live tasks that stay live after this pass's retirements (retire).
    pub live_total: usize,
    /// When failed tasks of the primary stopped, since one last ran healthy (backoff).
    pub recent_failures: Vec<f64>,
    /// Whether launches may go now (backoff).
    pub launch_ok: bool,
}

impl Work<'_> {
    /// Records an event: a change always, a problem unless it was already told and lasts.
    pub fn tell(&mut self, event: Event) {
        if events::tell(&mut self.svc, event, self.now, &mut self.input.new_id) {
            self.changed = true;
        }
    }

    /// Stops a task for `reason`.
    pub fn stop(&mut self, t: &Task, reason: StopReason) {
        self.plan.stop.push((t.id.clone(), reason));
        self.stopping.insert(t.id.clone());
    }

    /// Asks to be called again within `after` seconds.
    pub fn requeue(&mut self, after: f64) {
        self.plan.requeue_after = Some(self.plan.requeue_after.map_or(after, |r| r.min(after)));
    }

    /// Healthy primary tasks that stay.
    pub fn keep_healthy(&self) -> usize {
        self.keep
            .iter()
            .filter(|t| self.health.healthy(t) && !self.stopping.contains(&t.id))
            .count()
    }

    /// One event names every task this pass stops (replaced, scaled in and retired alike).
    pub fn tell_stops(&mut self) {
        if self.plan.stop.is_empty() {
            return;
        }
        let ids: Vec<&str> = self.plan.stop.iter().map(|(id, _)| id.as_str()).collect();
        let event = events::stopped(&self.svc.name, &ids);
        self.tell(event);
    }

    /// The plan, with the service record if any phase changed it.
    pub fn finish(mut self) -> Plan {
        if self.changed {
            self.svc.version += 1;
            self.plan.service = Some(self.svc);
        }
        self.plan
    }
}
