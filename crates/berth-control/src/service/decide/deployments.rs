//! Deployments: the service's deployments move on once the tasks have.
//!
//! Why a phase of its own, and after the task phases: a deployment's state follows from
//! what this pass leaves running. An older deployment with no live task left ends
//! (INACTIVE). The PRIMARY's rollout completes when it runs all its desired tasks healthy and
//! nothing else runs; it fails when the circuit breaker counts [`failure_threshold`] recent
//! failures (the count `backoff` keeps), which also cancels this pass's launches, and with
//! `rollback` a new PRIMARY restores the last COMPLETED deployment (a failed rollback is not
//! rolled back again). Ended deployments are kept, up to [`DEPLOYMENT_HISTORY`], as rollback
//! targets and for ListServiceDeployments.

use std::collections::BTreeSet;

use berth_model::{Deployment, DeploymentStatus, RolloutState};

use super::events;
use super::state::Work;

/// How many ended deployments a service keeps (for rollback and ListServiceDeployments).
const DEPLOYMENT_HISTORY: usize = 20;

/// The circuit breaker's threshold for a desired count.
pub fn failure_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

/// Ends drained deployments, completes or fails the primary, and trims the history.
pub(super) fn advance(w: &mut Work) {
    let mut deployments = w.svc.deployments.clone();
    end_drained(w, &mut deployments);
    if deployments[0].rollout_state == RolloutState::InProgress {
        let others_live = deployments
            .iter()
            .skip(1)
            .any(|d| d.status == DeploymentStatus::Active);
        let threshold = failure_threshold(w.desired.max(1));
        let breaker = w.svc.deployment_configuration.deployment_circuit_breaker;
        if w.keep_healthy() == w.desired as usize && !others_live && w.retire.is_empty() {
            complete(w, &mut deployments[0]);
        } else if breaker.enable && w.recent_failures.len() as u32 >= threshold {
            fail(w, &mut deployments[0]);
            if breaker.rollback && deployments[0].rollback_of.is_none() {
                roll_back(w, &mut deployments);
            }
        }
    }
    trim_history(&mut deployments);
    if deployments != w.svc.deployments {
        w.svc.deployments = deployments;
        w.changed = true;
    }
}

/// Older deployments without a live task left (after this pass's stops) end.
fn end_drained(w: &mut Work, deployments: &mut [Deployment]) {
    let live: BTreeSet<&str> = w
        .live
        .iter()
        .filter(|t| !w.stopping.contains(&t.id))
        .filter_map(|t| t.started_by.as_deref())
        .collect();
    for d in deployments.iter_mut().skip(1) {
        if d.status == DeploymentStatus::Active && !live.contains(d.id.as_str()) {
            d.status = DeploymentStatus::Inactive;
            d.updated_at = w.now;
            w.changed = true;
        }
    }
}

fn complete(w: &mut Work, primary: &mut Deployment) {
    primary.rollout_state = RolloutState::Completed;
    primary.rollout_state_reason = Some(events::rollout_completed(&primary.id));
    primary.updated_at = w.now;
    w.changed = true;
    let event = events::deployment_completed(&w.svc.name, &primary.id);
    w.tell(event);
}

/// The circuit breaker fails the primary: no more launches for it.
fn fail(w: &mut Work, primary: &mut Deployment) {
    primary.rollout_state = RolloutState::Failed;
    primary.rollout_state_reason = Some(events::ROLLOUT_CIRCUIT_BREAKER.to_owned());
    primary.updated_at = w.now;
    w.changed = true;
    let event = events::deployment_failed(&w.svc.name, &primary.id);
    w.tell(event);
    w.plan.launch.clear();
}

/// A new PRIMARY with the last COMPLETED deployment's task definition, if there is one; the
/// failed deployment stays ACTIVE until its tasks are gone.
fn roll_back(w: &mut Work, deployments: &mut Vec<Deployment>) {
    let Some(target) = deployments
        .iter()
        .skip(1)
        .find(|d| d.rollout_state == RolloutState::Completed)
        .cloned()
    else {
        return;
    };
    let failed_id = deployments[0].id.clone();
    let new_id = (w.input.new_deployment_id)();
    deployments[0].status = DeploymentStatus::Active;
    deployments.insert(
        0,
        Deployment {
            id: new_id.clone(),
            status: DeploymentStatus::Primary,
            family: target.family.clone(),
            revision: target.revision,
            created_at: w.now,
            updated_at: w.now,
            rollout_state: RolloutState::InProgress,
            rollout_state_reason: Some(events::rollout_rolling_back(&target.id)),
            rollback_of: Some(failed_id),
        },
    );
    let event = events::rolling_back(&w.svc.name, &new_id, &target.id);
    w.tell(event);
}

/// Keeps the newest [`DEPLOYMENT_HISTORY`] ended deployments (they are not shown in
/// DescribeServices).
fn trim_history(deployments: &mut Vec<Deployment>) {
    let mut inactive = 0;
    deployments.retain(|d| {
        if d.status == DeploymentStatus::Inactive {
            inactive += 1;
            inactive <= DEPLOYMENT_HISTORY
        } else {
            true
        }
    });
}
