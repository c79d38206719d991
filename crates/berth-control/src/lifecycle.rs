//! The task state machine.
//!
//! Agents report what their containers do; [`apply_report`] folds a report into the task
//! (status only moves forward, first timestamps stick, a stop reason set by the control plane
//! is kept). [`request_stop`] is the control plane's side: desiredStatus STOPPED with a code
//! and reason. The async wrappers load, decide and write with compare-and-swap, and keep the
//! assignment index in step: the index entry changes with desiredStatus (so the agent's poll
//! wakes) and disappears when the task is STOPPED.

use std::sync::Arc;

use berth_model::agent::TaskReport;
use berth_model::{keys, ApiError, DesiredStatus, StopCode, Task, TaskStatus};
use berth_store::{Store, StoreExt, Txn, TxnResult};

use crate::launch::assignment_bytes;
use crate::store_err;

/// Folds an agent's report into a task. Returns whether anything changed.
pub fn apply_report(task: &mut Task, r: &TaskReport, now: f64) -> bool {
    let before = task.clone();
    if r.last_status > task.last_status {
        task.last_status = r.last_status;
    }
    for cr in &r.containers {
        if let Some(c) = task.containers.iter_mut().find(|c| c.name == cr.name) {
            if cr.last_status >= c.last_status {
                c.last_status = cr.last_status;
            }
            if cr.exit_code.is_some() {
                c.exit_code = cr.exit_code;
            }
            if cr.reason.is_some() {
                c.reason = cr.reason.clone();
            }
            if !cr.network_bindings.is_empty() {
                c.network_bindings = cr.network_bindings.clone();
            }
            c.health_status = cr.health_status;
            if cr.runtime_id.is_some() {
                c.runtime_id = cr.runtime_id.clone();
            }
            if cr.restart_count.is_some() {
                c.restart_count = cr.restart_count;
            }
        }
    }
    task.health_status = r.health_status;
    task.started_at = task.started_at.or(r.started_at);
    task.pull_started_at = task.pull_started_at.or(r.pull_started_at);
    task.pull_stopped_at = task.pull_stopped_at.or(r.pull_stopped_at);
    if task.last_status == TaskStatus::Running && task.started_at.is_none() {
        task.started_at = Some(now);
    }
    if task.last_status >= TaskStatus::Deprovisioning && task.stopping_at.is_none() {
        task.stopping_at = Some(now);
    }
    if task.last_status == TaskStatus::Stopped {
        task.desired_status = DesiredStatus::Stopped;
        // What the control plane said first wins (a user's StopTask); otherwise the agent's.
        if task.stop_code.is_none() {
            task.stop_code = r.stop_code;
            task.stopped_reason = r.stopped_reason.clone();
        }
        task.stopped_at = task.stopped_at.or(r.stopped_at).or(Some(now));
        task.execution_stopped_at = task.execution_stopped_at.or(task.stopped_at);
        task.stopping_at = task.stopping_at.or(task.stopped_at);
        for c in &mut task.containers {
            c.last_status = TaskStatus::Stopped;
        }
    } else if r.stop_code.is_some() && task.stop_code.is_none() {
        // The agent is stopping the task on its own (an essential container exited).
        task.desired_status = DesiredStatus::Stopped;
        task.stop_code = r.stop_code;
        task.stopped_reason = r.stopped_reason.clone();
        task.stopping_at = task.stopping_at.or(Some(now));
    }
    let changed = *task != before;
    if changed {
        task.version += 1;
    }
    changed
}

/// The control plane asks a task to stop. Returns whether anything changed.
pub fn request_stop(task: &mut Task, code: StopCode, reason: &str, now: f64) -> bool {
    if task.desired_status == DesiredStatus::Stopped {
        return false;
    }
    task.desired_status = DesiredStatus::Stopped;
    task.stop_code = Some(code);
    task.stopped_reason = Some(reason.to_owned());
    task.stopping_at = Some(now);
    task.version += 1;
    true
}

/// Marks a task STOPPED without its agent (the host is gone or was deregistered).
pub fn force_stopped(task: &mut Task, code: StopCode, reason: &str, now: f64) {
    request_stop(task, code, reason, now);
    task.last_status = TaskStatus::Stopped;
    task.stopped_at = Some(now);
    task.execution_stopped_at = Some(now);
    for c in &mut task.containers {
        c.last_status = TaskStatus::Stopped;
    }
    task.version += 1;
}

/// Adds to `txn` the write of a changed task (guarded by the revision it was read at) and
/// keeps its assignment entry in step, so callers can change a task together with other
/// records in one transaction.
pub fn write_task(txn: Txn, t: &Task, rev: u64) -> Result<Txn, ApiError> {
    write(txn, t, rev)
}

/// Writes a changed task and keeps its assignment entry in step.
fn write(txn: Txn, t: &Task, rev: u64) -> Result<Txn, ApiError> {
    let key = keys::task(&t.cluster, &t.id);
    let bytes =
        serde_json::to_vec(t).map_err(|e| ApiError::server(format!("encoding task: {e}")))?;
    let mut txn = txn.when_mod_revision(key.clone(), rev).put(key, bytes);
    if let Some(inst) = &t.container_instance_id {
        let akey = keys::assignment(inst, &t.id);
        txn = if t.last_status == TaskStatus::Stopped {
            txn.delete(akey)
        } else {
            txn.put(akey, assignment_bytes(t.desired_status))
        };
    }
    Ok(txn)
}

/// Loads a task, applies `change`, and writes it back if it changed; retries on conflict.
pub async fn update_task(
    store: &Arc<dyn Store>,
    cluster: &str,
    id: &str,
    change: impl Fn(&mut Task) -> bool,
) -> Result<Option<Task>, ApiError> {
    let key = keys::task(cluster, id);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let Some((mut t, rev)) = store.get_json::<Task>(&key).await.map_err(store_err)? else {
            return Ok(None);
        };
        if !change(&mut t) {
            return Ok(Some(t));
        }
        let txn = write(Txn::new(), &t, rev)?;
        if let TxnResult::Committed { .. } = store.txn(txn).await.map_err(store_err)? {
            return Ok(Some(t));
        }
    }
    Err(ApiError::server("Task changed concurrently; retry."))
}

/// Records an agent's reports. Reports for tasks the agent does not own are ignored.
pub async fn record_reports(
    store: &Arc<dyn Store>,
    cluster: &str,
    instance_id: &str,
    reports: &[TaskReport],
    now: f64,
) -> Result<(), ApiError> {
    // One transaction for the whole batch (one fsync however many tasks changed); if another
    // writer touched one of the tasks meanwhile, re-read and try again, and as a last resort
    // fall back to one transaction per task.
    for _ in 0..4 {
        let mut txn = Txn::new();
        let mut writes = 0;
        for r in reports {
            let Some((mut t, rev)) = store
                .get_json::<Task>(&keys::task(cluster, &r.task_id))
                .await
                .map_err(store_err)?
            else {
                continue;
            };
            if t.container_instance_id.as_deref() == Some(instance_id)
                && apply_report(&mut t, r, now)
            {
                txn = write(txn, &t, rev)?;
                writes += 1;
            }
        }
        if writes == 0 {
            return Ok(());
        }
        if let TxnResult::Committed { .. } = store.txn(txn).await.map_err(store_err)? {
            return Ok(());
        }
    }
    for r in reports {
        update_task(store, cluster, &r.task_id, |t| {
            t.container_instance_id.as_deref() == Some(instance_id) && apply_report(t, r, now)
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::agent::ContainerReport;
    use berth_model::{Container, HealthStatus};

    fn task() -> Task {
        serde_json::from_value(serde_json::json!({
            "id": "t", "cluster": "c", "family": "f", "revision": 1, "containerInstanceId": "i",
            "lastStatus": "PROVISIONING", "desiredStatus": "RUNNING", "launchType": "EC2",
            "cpu": 0, "memory": 8, "createdAt": 1.0,
            "containers": [Container {
                name: "app".into(), image: "img".into(), last_status: TaskStatus::Pending,
                exit_code: None, reason: None, network_bindings: vec![],
                health_status: HealthStatus::Unknown, runtime_id: None, cpu: 0,
                memory: Some(8), memory_reservation: None, essential: true, restart_count: None }]
        }))
        .unwrap()
    }

    fn report(status: TaskStatus) -> TaskReport {
        TaskReport {
            task_id: "t".into(),
            last_status: status,
            containers: vec![ContainerReport {
                name: "app".into(),
                last_status: status,
                exit_code: (status == TaskStatus::Stopped).then_some(3),
                reason: None,
                network_bindings: vec![],
                health_status: HealthStatus::Unknown,
                runtime_id: Some("abc".into()),
                restart_count: None,
            }],
            health_status: HealthStatus::Unknown,
            started_at: None,
            stopped_at: None,
            pull_started_at: None,
            pull_stopped_at: None,
            stop_code: (status == TaskStatus::Stopped)
                .then_some(StopCode::EssentialContainerExited),
            stopped_reason: (status == TaskStatus::Stopped)
                .then(|| "Essential container in task exited".to_owned()),
            stats: None,
            stats_only: false,
        }
    }

    #[test]
    fn lifecycle_moves_forward_only() {
        let mut t = task();
        assert!(apply_report(&mut t, &report(TaskStatus::Running), 5.0));
        assert_eq!(t.last_status, TaskStatus::Running);
        assert_eq!(t.started_at, Some(5.0));
        assert!(
            !apply_report(&mut t, &report(TaskStatus::Pending), 6.0)
                || t.last_status == TaskStatus::Running
        );
        assert_eq!(t.last_status, TaskStatus::Running);
        assert!(apply_report(&mut t, &report(TaskStatus::Stopped), 7.0));
        assert_eq!(t.desired_status, DesiredStatus::Stopped);
        assert_eq!(t.stop_code, Some(StopCode::EssentialContainerExited));
        assert_eq!(t.containers[0].exit_code, Some(3));
        assert_eq!(t.stopped_at, Some(7.0));
    }

    #[test]
    fn a_user_stop_keeps_its_code() {
        let mut t = task();
        assert!(request_stop(&mut t, StopCode::UserInitiated, "bye", 2.0));
        assert!(!request_stop(&mut t, StopCode::UserInitiated, "again", 3.0));
        apply_report(&mut t, &report(TaskStatus::Stopped), 4.0);
        assert_eq!(t.stop_code, Some(StopCode::UserInitiated));
        assert_eq!(t.stopped_reason.as_deref(), Some("bye"));
    }
}
