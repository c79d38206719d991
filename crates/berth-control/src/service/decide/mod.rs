//! The service scheduler's decisions, as a pure function of one service, its tasks and the
//! cluster's instances. The runner (`super`) applies a [`Plan`] and calls again: everything
//! here is derived from stored state, so a restart at any moment loses nothing.
//!
//! Rules, as ECS defines them:
//! - The PRIMARY deployment wants `desiredCount` tasks on usable instances ("keep" tasks).
//!   Every other live task (older deployments, tasks on DRAINING instances) is "retired".
//! - At most `floor(desired × maximumPercent / 100)` tasks are live (RUNNING or PENDING), so
//!   new tasks start before old ones stop whenever that limit leaves room.
//! - At least `ceil(desired × minimumHealthyPercent / 100)` tasks stay RUNNING and healthy:
//!   retired tasks are stopped only as far as that allows (unhealthy ones any time).
//! - A task is healthy when RUNNING and, if its containers have health checks, HEALTHY.
//!   Unhealthy tasks past the grace period are replaced.
//! - The circuit breaker fails a deployment after `clamp(ceil(desired / 2), 3, 200)` failed
//!   tasks, and with `rollback` restores the last COMPLETED deployment.
//! - Repeated failures back off: after three in a row, new launches wait 1, 2, 4 ... 30 s.
//!
//! [`decide`] runs these rules as phases, in this order, over one working state
//! ([`state::Work`]); each phase reads what the earlier ones decided:
//! 1. [`classify`]: what every task is (live, healthy, still settling, a failure).
//! 2. [`replace`]: unhealthy tasks past their grace period stop (so they are replaced).
//! 3. [`roles`]: the desired count, and which live tasks the primary keeps or retires.
//! 4. [`scale_in`]: surplus primary tasks stop, keeping the rest balanced.
//! 5. [`retire`]: older deployments' tasks stop as far as minimum healthy allows.
//! 6. [`backoff`]: repeated failures pause launches.
//! 7. [`launch`]: what the primary lacks starts, within maximum percent.
//! 8. [`deployments`]: drained deployments end; the primary completes, or fails and rolls back.
//! 9. [`steady_state`]: the steady-state event, and a deleted service's end.
//!
//! Every text written (events, stopped reasons, rollout reasons) comes from [`events`].

mod backoff;
mod classify;
mod deployments;
pub(super) mod events;
mod launch;
mod replace;
mod retire;
mod roles;
mod scale_in;
mod state;
mod steady_state;
#[cfg(test)]
mod tests;

use berth_model::{ContainerInstance, Deployment, Service, Task};

pub use classify::{counts, failed, host_lost};
pub use deployments::failure_threshold;
pub use events::{is_repeat, placement_event, StopReason};

/// What the runner must do for one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// New tasks: (deployment id, count, on these instances only — DAEMON).
    pub launch: Vec<Launch>,
    /// Tasks to stop, with the reason.
    pub stop: Vec<(String, StopReason)>,
    /// The service record, if it changed (deployments, events, status).
    pub service: Option<Service>,
    /// Call again after this many seconds even if nothing changes (backoff, grace periods).
    pub requeue_after: Option<f64>,
}

/// A batch of tasks to launch for one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The deployment the tasks belong to.
    pub deployment_id: String,
    /// How many tasks to launch.
    pub count: usize,
    /// DAEMON services: exactly one task on each of these instances.
    pub on_instances: Option<Vec<String>>,
}

/// Everything the decision looks at.
pub struct Input<'a> {
    /// The service being decided on.
    pub service: &'a Service,
    /// Every task of the service's group (live and stopped).
    pub tasks: Vec<&'a Task>,
    /// The cluster's container instances.
    pub instances: &'a [ContainerInstance],
    /// For DAEMON services: the instances the service should run on.
    pub daemon_instances: Vec<String>,
    /// Whether each deployment's task definition has container health checks.
    pub health_checked: &'a dyn Fn(&Deployment) -> bool,
    /// How a task's load-balancer targets are doing (services with `loadBalancers`).
    pub lb_health: &'a dyn Fn(&Task) -> LbHealth,
    /// The current time, in seconds since the epoch.
    pub now: f64,
    /// A new unique id (events).
    pub new_id: &'a mut dyn FnMut() -> String,
    /// A new deployment id (`ecs-svc/...`).
    pub new_deployment_id: &'a mut dyn FnMut() -> String,
}

/// A task's standing in its service's load balancers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbHealth {
    /// The service has no load balancers: container health alone decides.
    NotBalanced,
    /// Not registered yet, or registered and still `initial`.
    Pending,
    /// Healthy in every target group of the service.
    Healthy,
    /// Unhealthy in this target group.
    Unhealthy(String),
}

/// What the runner must do for the service of `input`, and its record's changes.
pub fn decide(input: Input<'_>) -> Plan {
    let Some(mut w) = classify::tasks(input) else {
        return Plan::default();
    };
    replace::unhealthy(&mut w);
    roles::assign(&mut w);
    scale_in::surplus(&mut w);
    retire::older(&mut w);
    w.tell_stops();
    backoff::pace(&mut w);
    launch::missing(&mut w);
    deployments::advance(&mut w);
    steady_state::settle(&mut w);
    w.finish()
}
