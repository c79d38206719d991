//! Every text the service controller writes: service events, the stopped reasons of the
//! tasks it stops, and the reasons of deployments' rollout states.
//!
//! Why one module: the texts are ECS's (clients and people match on them), so they are kept
//! word for word in one place, and no decision is made by reading them back. Each event is
//! built here with its [`Kind`], which says how often it is told, and each stop with its
//! [`StopReason`], which says whether the stop counts against the task's deployment; the
//! callers decide on those types and render the text last.
//!
//! One exception is deliberate: [`is_repeat`] compares a problem with the events already
//! stored. A stored event is ECS's `{id, createdAt, message}` and nothing more, so the
//! history can only be recognised by its text; that comparison lives here, beside the
//! functions that render the very texts it recognises.

use berth_model::{Service, ServiceEvent};

use crate::launch::PlacementReason;

/// A problem told in an event is told again after this long if it lasts (ECS: six hours).
const EVENT_REPEAT_SECS: f64 = 6.0 * 3600.0;
/// The end of the steady-state event, which marks every problem before it as resolved.
const STEADY_EVENT: &str = "has reached a steady state.";
/// Where a placement failure's event starts naming the closest instance: the same problem
/// whichever instance came closest.
const CLOSEST_MATCHING: &str = " The closest matching";

/// How often an event is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something happened (tasks started or stopped, a deployment completed): told each time.
    Change,
    /// Something keeps going wrong (a task cannot be placed, tasks keep failing to start):
    /// told once while it lasts, see [`is_repeat`].
    Problem,
}

/// A service event, before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub message: String,
}

impl Event {
    fn change(message: String) -> Self {
        Self {
            kind: Kind::Change,
            message,
        }
    }

    fn problem(message: String) -> Self {
        Self {
            kind: Kind::Problem,
            message,
        }
    }
}

/// Writes `event` into the service's events, unless it is a problem already told and still
/// lasting. Returns whether it was written; `new_id` is called only then.
pub fn tell(svc: &mut Service, event: Event, now: f64, new_id: impl FnOnce() -> String) -> bool {
    if event.kind == Kind::Problem && is_repeat(&svc.events, &event.message, now) {
        return false;
    }
    svc.push_event(new_id(), now, event.message);
    true
}

/// What identifies a problem event: a placement failure is the same problem whichever
/// instance came closest.
fn problem_key(message: &str) -> &str {
    message.split(CLOSEST_MATCHING).next().unwrap_or(message)
}

/// Whether `message`, an event about a problem, was already told since the service was last
/// steady and within ECS's repeat period: duplicates are left out until the cause is resolved
/// or six hours pass.
pub fn is_repeat(events: &[ServiceEvent], message: &str, now: f64) -> bool {
    let key = problem_key(message);
    for e in events {
        if now - e.created_at >= EVENT_REPEAT_SECS || e.message.ends_with(STEADY_EVENT) {
            return false;
        }
        if problem_key(&e.message) == key {
            return true;
        }
    }
    false
}

/// `(task a) (task b)`, as ECS lists tasks in events.
fn task_list(ids: &[&str]) -> String {
    ids.iter()
        .map(|id| format!("(task {id})"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The service has everything it wants, and nothing else runs.
pub fn steady_state(service: &str) -> Event {
    Event::change(format!("(service {service}) {STEADY_EVENT}"))
}

/// The runner started tasks.
pub fn started(service: &str, task_ids: &[&str]) -> Event {
    Event::change(format!(
        "(service {service}) has started {} tasks: {}.",
        task_ids.len(),
        task_list(task_ids)
    ))
}

/// The decision stops tasks (all the stops of one pass in one event).
pub fn stopped(service: &str, task_ids: &[&str]) -> Event {
    Event::change(format!(
        "(service {service}) has stopped {} running tasks: {}.",
        task_ids.len(),
        task_list(task_ids)
    ))
}

/// A task failed its container health checks past the grace period.
pub fn container_health_failed(service: &str, task: &str) -> Event {
    Event::change(format!(
        "(service {service}) (task {task}) failed container health checks."
    ))
}

/// A task's target failed the load balancer's health checks past the grace period.
pub fn elb_unhealthy(service: &str, task: &str, target_group: &str) -> Event {
    Event::change(format!(
        "(service {service}) (task {task}) is unhealthy in (target-group {target_group}) due to (reason Health checks failed)."
    ))
}

/// Tasks of the primary deployment keep failing: launches back off.
pub fn unable_to_start_consistently(service: &str) -> Event {
    Event::problem(format!(
        "(service {service}) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
    ))
}

/// A task of the service could not be placed.
pub fn unplaceable(service: &str, why: Unplaced<'_>) -> Event {
    Event::problem(placement_event(service, why))
}

/// Why a service's launch placed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unplaced<'a> {
    /// The scheduler found no instance; `closest` is the id of the closest matching one.
    Failure {
        /// Why the closest instance did not fit.
        reason: PlacementReason,
        /// The closest matching instance's id.
        closest: Option<&'a str>,
    },
    /// The launch was refused as a whole (no instances in the cluster, ...): its message.
    Refused(&'a str),
}

/// A deployment's task definition is gone from the store.
pub fn task_definition_missing(service: &str, family: &str, revision: u32) -> Event {
    Event::problem(format!(
        "(service {service}) was unable to start tasks: task definition {family}:{revision} is missing."
    ))
}

pub fn deployment_completed(service: &str, deployment: &str) -> Event {
    Event::change(format!(
        "(service {service}) (deployment {deployment}) deployment completed."
    ))
}

pub fn deployment_failed(service: &str, deployment: &str) -> Event {
    Event::change(format!(
        "(service {service}) (deployment {deployment}) deployment failed: tasks failed to start."
    ))
}

pub fn rolling_back(service: &str, rollback: &str, target: &str) -> Event {
    Event::change(format!(
        "(service {service}) (deployment {rollback}) rolling back to deployment {target}."
    ))
}

/// The event ECS writes when a service's task cannot be placed, worded by the failure's
/// reason as ECS words it.
pub fn placement_event(service: &str, why: Unplaced<'_>) -> String {
    use berth_sched::Reason;
    let head = format!(
        "(service {service}) was unable to place a task because no container instance met all of its requirements."
    );
    let (reason, id) = match why {
        Unplaced::Refused(message) => return format!("{head} Reason: {message}"),
        Unplaced::Failure {
            reason,
            closest: None,
        } => return format!("{head} Reason: {}", reason.as_str()),
        Unplaced::Failure {
            reason,
            closest: Some(id),
        } => (reason, id),
    };
    let why = match reason {
        PlacementReason::Scheduler(Reason::Memory) => {
            "has insufficient memory available.".to_owned()
        }
        PlacementReason::Scheduler(Reason::Cpu) => {
            "has insufficient CPU units available.".to_owned()
        }
        PlacementReason::Scheduler(Reason::Ports) => {
            "is already using a port required by your task.".to_owned()
        }
        PlacementReason::Scheduler(Reason::Attribute | Reason::MemberOf) => {
            "is missing an attribute required by your task.".to_owned()
        }
        PlacementReason::Scheduler(Reason::DistinctInstance) => {
            "is already running a task of this group.".to_owned()
        }
        other => format!("encountered error \"{}\".", other.as_str()),
    };
    format!(
        "{head}{CLOSEST_MATCHING} (container-instance {id}) {why} For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
    )
}

/// Why the service scheduler stops a task. The task's `stoppedReason` is its
/// [`message`](Self::message); whether the stop counts as a failure of the task's deployment
/// is [`failed_health_checks`](Self::failed_health_checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Its containers failed their health checks past the grace period.
    ContainerHealthChecks,
    /// Its target failed this target group's health checks past the grace period.
    ElbHealthChecks {
        /// The ARN of the target group the task's target failed.
        target_group: String,
    },
    /// Scale-in, or a task of an older deployment that the new one replaces.
    Scaling {
        /// The id of the deployment that initiated it (the primary one).
        deployment: String,
    },
    /// Its container instance is DRAINING.
    InstanceDraining,
}

impl StopReason {
    /// The task's `stoppedReason`, as ECS writes it.
    pub fn message(&self) -> String {
        match self {
            Self::ContainerHealthChecks => "Task failed container health checks".to_owned(),
            Self::ElbHealthChecks { target_group } => {
                format!("Task failed ELB health checks in (target-group {target_group})")
            }
            Self::Scaling { deployment } => {
                format!("Scaling activity initiated by (deployment {deployment})")
            }
            Self::InstanceDraining => "Container instance is draining".to_owned(),
        }
    }

    /// Whether the task is stopped for failing its health checks, which counts as a failure
    /// of its deployment (recorded on the task as `Task::failed_health_checks`).
    pub fn failed_health_checks(&self) -> bool {
        matches!(
            self,
            Self::ContainerHealthChecks | Self::ElbHealthChecks { .. }
        )
    }
}

/// The rollout-state reason of a deployment that completed.
pub fn rollout_completed(deployment: &str) -> String {
    format!("ECS deployment {deployment} completed.")
}

/// The rollout-state reason of a deployment the circuit breaker failed.
pub const ROLLOUT_CIRCUIT_BREAKER: &str = "ECS deployment circuit breaker: tasks failed to start.";

/// The rollout-state reason of a rollback the circuit breaker started.
pub fn rollout_rolling_back(target: &str) -> String {
    format!("ECS deployment circuit breaker: rolling back to deploymentId {target}.")
}

/// The stopped reason of a task whose host was given up.
pub fn host_lost_reason(instance: &str, silent_secs: f64) -> String {
    format!(
        "Host lost: the agent of container instance {instance} has not been heard from for {silent_secs:.0} s"
    )
}
