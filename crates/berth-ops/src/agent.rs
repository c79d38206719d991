//! What node agents do: register, long-poll for the desired task set, and report status.
//! An agent joins with its cluster's join token and gets an instance credential back
//! ([`join`]); every later call ([`authenticate`]) names its instance and presents that
//! credential (see [`crate::identity`] for why). The functions below the checks ([`register`],
//! [`poll`], [`status`]) trust their caller. The HTTP endpoints (`/agent/v1/...`) are the
//! edge's.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use berth_control::autoscale::{MetricsHub, TaskSample};
use berth_control::lifecycle;
use berth_model::agent::{
    AgentRegistered, AgentRegistration, AgentTask, DesiredSet, StatusReport, TaskReport,
};
use berth_model::{
    keys, validate_cluster_name, validate_id, ApiError, ContainerInstance, DesiredStatus,
    InstanceStatus, StopCode, Task, TaskDefinition, TaskStatus,
};
use berth_store::{StoreExt, Txn};
use sha2::{Digest, Sha256};

use crate::ecs::{instance_arn_of, register_instance, task_arn_of, Registration};
use crate::identity;
use crate::{store_err, to_bytes, Ctx, Ops};

/// Agents do not sign for a region: the ARNs they see use the server's
/// ([`OpsConfig::region`](crate::OpsConfig::region)).
fn ctx(state: &Ops) -> Ctx {
    state.ctx(state.config.region.clone())
}

/// Checks the cluster and instance an agent names before they become store keys: an instance
/// id holding a `/` would sit inside another instance's assignments (`assign/ID/`).
fn check_ids(cluster: &str, instance_id: Option<&str>) -> Result<(), ApiError> {
    validate_cluster_name(cluster)?;
    if let Some(id) = instance_id {
        validate_id("container instance", id)?;
    }
    Ok(())
}

/// What an agent presented with its registration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presented<'a> {
    /// The join token (`x-berth-join-token`), if any.
    pub join_token: Option<&'a str>,
    /// The instance credential (`x-berth-instance-credential`), if any.
    pub credential: Option<&'a str>,
}

/// An agent's registration, authenticated. Three cases:
/// - it names an active instance and presents that instance's credential: re-registered as
///   it (no join token needed: rotation and expiry do not touch registered agents);
/// - it names an active instance registered before credentials existed (no credential kept):
///   a valid join token migrates it, keeping its id, and it gets its credential;
/// - otherwise a valid join token makes a new instance whose id the server chooses.
///
/// An active instance that has a credential is never taken over with a join token alone.
pub async fn join(
    state: &Ops,
    reg: &AgentRegistration,
    presented: Presented<'_>,
) -> Result<AgentRegistered, ApiError> {
    check_ids(&reg.cluster, reg.instance_id.as_deref())?;
    let token = presented.join_token.unwrap_or_default();
    let existing = match &reg.instance_id {
        Some(id) => ctx(state)
            .store()
            .get_json::<ContainerInstance>(&keys::instance(&reg.cluster, id))
            .await
            .map_err(store_err)?
            .filter(|(i, _)| i.status != InstanceStatus::Inactive),
        None => None,
    };
    let (keep_id, credential, hash) = match existing {
        Some((inst, _)) => match identity::stored_hash(state, &reg.cluster, &inst.id).await? {
            Some(h) if identity::holds(Some(&h), presented.credential) => {
                (Some(inst.id), presented.credential.map(str::to_owned), None)
            }
            Some(_) => return Err(identity::not_yours(&inst.id)),
            None => {
                identity::check_token(state, token, &reg.cluster).await?;
                let (c, h) = identity::new_credential();
                (Some(inst.id), Some(c), Some(h))
            }
        },
        None => {
            identity::check_token(state, token, &reg.cluster).await?;
            let (c, h) = identity::new_credential();
            (None, Some(c), Some(h))
        }
    };
    let reg = AgentRegistration {
        instance_id: keep_id,
        ..reg.clone()
    };
    let mut out = register_as(state, &reg, hash).await?;
    out.logs_token = Some(identity::logs_token(
        &state.config.join_secret,
        &reg.cluster,
        &out.instance_id,
    ));
    out.credential = credential;
    Ok(out)
}

/// Checks an agent call for `instance` of `cluster` (the instance the call acts for) made with
/// `credential`. `Ok(false)`: no active instance has that id (a poll answers "register
/// again"); a refusal when the instance exists and the credential is not its own.
pub async fn authenticate(
    state: &Ops,
    cluster: &str,
    instance: &str,
    credential: Option<&str>,
) -> Result<bool, ApiError> {
    check_ids(cluster, Some(instance))?;
    let active = ctx(state)
        .store()
        .get_json::<ContainerInstance>(&keys::instance(cluster, instance))
        .await
        .map_err(store_err)?
        .is_some_and(|(i, _)| i.status != InstanceStatus::Inactive);
    if !active {
        return Ok(false);
    }
    let hash = identity::stored_hash(state, cluster, instance).await?;
    if identity::holds(hash.as_deref(), credential) {
        Ok(true)
    } else {
        Err(identity::not_yours(instance))
    }
}

/// Registers (or re-registers) the agent's host as a container instance, trusting the caller
/// (no token, no credential: [`join`] is the authenticated way in).
pub async fn register(state: &Ops, reg: &AgentRegistration) -> Result<AgentRegistered, ApiError> {
    register_as(state, reg, None).await
}

async fn register_as(
    state: &Ops,
    reg: &AgentRegistration,
    credential_hash: Option<String>,
) -> Result<AgentRegistered, ApiError> {
    check_ids(&reg.cluster, reg.instance_id.as_deref())?;
    let ctx = ctx(state);
    let inst = register_instance(
        &ctx,
        Registration {
            cluster: reg.cluster.clone(),
            instance_id: reg.instance_id.clone(),
            // A host group's host names its instance id (`berth.host-id`), as EC2 would.
            ec2_instance_id: reg
                .attributes
                .iter()
                .find(|a| a.name == berth_model::hostgroup::ATTR_HOST_ID)
                .and_then(|a| a.value.clone()),
            resources: reg.resources.clone(),
            attributes: reg.attributes.clone(),
            version_info: reg.version_info.clone(),
            tags: Vec::new(),
            endpoint: reg.endpoint.clone(),
            credential_hash,
        },
    )
    .await?;
    tracing::info!(cluster = %reg.cluster, instance = %inst.id, host = %reg.hostname, "agent registered");
    Ok(AgentRegistered {
        instance_arn: instance_arn_of(&ctx, &inst.cluster, &inst.id),
        instance_id: inst.id,
        credential: None,
        logs_token: None,
    })
}

/// An agent's long-poll: which instance asks, the fingerprint of the set it has, and how long
/// it is willing to wait for a change.
#[derive(Debug, serde::Deserialize)]
pub struct PollQuery {
    /// The instance's cluster.
    pub cluster: String,
    /// The instance id.
    pub instance: String,
    /// The fingerprint of the set the agent already has ("" for none).
    #[serde(default)]
    pub since: String,
    /// Seconds to hold the poll open while nothing changes.
    #[serde(default)]
    pub wait: f64,
}

/// Records that the agent is alive, at most a few times per timeout window.
async fn touch(ctx: &Ctx, inst: &ContainerInstance, rev: u64) -> Result<(), ApiError> {
    let now = ctx.now();
    if now - inst.last_seen < ctx.state.config.agent_timeout_secs / 4.0 {
        return Ok(());
    }
    let mut i = inst.clone();
    i.last_seen = now;
    let key = keys::instance(&i.cluster, &i.id);
    // A lost race means someone else just wrote the instance; the next poll touches again.
    ctx.store()
        .txn(
            Txn::new()
                .when_mod_revision(key.clone(), rev)
                .put(key, to_bytes(&i)?),
        )
        .await
        .map_err(store_err)?;
    Ok(())
}

/// The fingerprint of an assignment list: a digest of its entries (key, creation revision,
/// value = the desired status), so it changes whenever an entry is added, removed or given
/// another value, and only then. Every recorded task report rewrites its task's entry
/// unchanged; those writes no longer wake the agent's poll to send it the same set again.
fn fingerprint(kvs: &[berth_store::KeyValue]) -> String {
    let mut sorted: Vec<&berth_store::KeyValue> = kvs.iter().collect();
    sorted.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    let mut h = Sha256::new();
    for kv in sorted {
        h.update((kv.key.len() as u64).to_be_bytes());
        h.update(kv.key.as_bytes());
        h.update(kv.create_revision.to_be_bytes());
        h.update((kv.value.len() as u64).to_be_bytes());
        h.update(&kv.value);
    }
    format!("{}:{}", kvs.len(), hex::encode(&h.finalize()[..12]))
}

/// The desired set for the assignment entries `kvs` of one instance.
async fn desired_set(
    ctx: &Ctx,
    cluster: &str,
    kvs: &[berth_store::KeyValue],
    fp: String,
) -> Result<DesiredSet, ApiError> {
    let mut taskdefs: HashMap<(String, u32), Option<TaskDefinition>> = HashMap::new();
    let mut tasks = Vec::new();
    let mut holders = None;
    for kv in kvs {
        let Some(id) = kv.key.rsplit('/').next() else {
            continue;
        };
        let Some((t, _)) = ctx
            .store()
            .get_json::<Task>(&keys::task(cluster, id))
            .await
            .map_err(store_err)?
        else {
            continue;
        };
        let tdkey = (t.family.clone(), t.revision);
        if !taskdefs.contains_key(&tdkey) {
            let td = ctx
                .store()
                .get_json::<TaskDefinition>(&keys::taskdef(&t.family, t.revision))
                .await
                .map_err(store_err)?
                .map(|(td, _)| td);
            taskdefs.insert(tdkey.clone(), td);
        }
        let Some(Some(td)) = taskdefs.get(&tdkey) else {
            continue;
        };
        let td = t.overrides.apply(td)?;
        let Some(secrets) = task_secrets(ctx, &t, &td).await? else {
            continue;
        };
        let Some(credentials) = role_credentials(ctx, &t, &td).await? else {
            continue;
        };
        let network = match &t.eni {
            Some(eni) if t.last_status != TaskStatus::Stopped => {
                Some(crate::ec2::network::agent_network(ctx, eni, &mut holders).await?)
            }
            _ => None,
        };
        tasks.push(AgentTask {
            network,
            task_arn: task_arn_of(ctx, &t),
            task_id: t.id.clone(),
            family: t.family.clone(),
            revision: t.revision,
            desired_status: t.desired_status,
            last_status: t.last_status,
            network_mode: td.network_mode.clone(),
            volumes: td.volumes.clone(),
            pid_mode: td.pid_mode.clone(),
            ipc_mode: td.ipc_mode.clone(),
            containers: td.container_definitions,
            secrets,
            credentials,
        });
    }
    Ok(DesiredSet {
        fingerprint: fp,
        tasks,
        registered: true,
    })
}

/// The secret values of a task the agent must start (resolved now, for this answer only, as
/// its execution role), `Some(None)` when it needs none, or `None` when what it needs to start
/// cannot be had: its execution role cannot be assumed or may not read a secret or write its
/// `awslogs` streams, or a secret cannot be resolved. The task is then stopped
/// (TaskFailedToStart, ECS's ResourceInitializationError) before the agent sees it.
/// Only a task still starting (PROVISIONING / PENDING) gets values: an agent takes a task's
/// containers from the first answer that carries it, and one already running (or adopted
/// after an agent restart) keeps the containers it has, so values are sent once, at start.
async fn task_secrets(
    ctx: &Ctx,
    t: &Task,
    td: &TaskDefinition,
) -> Result<Option<Option<berth_model::secrets::ResolvedSecrets>>, ApiError> {
    let starting = matches!(
        t.last_status,
        TaskStatus::Provisioning | TaskStatus::Pending
    );
    if t.desired_status != DesiredStatus::Running || !starting {
        return Ok(Some(None));
    }
    let role = match td.execution_role_arn.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(arn) => match crate::iam::execution::assume(ctx, &t.id, arn).await? {
            Ok(role) => Some(role),
            Err(reason) => {
                return failed(ctx, t, "its execution role cannot be assumed", &reason).await
            }
        },
    };
    let resolved = match crate::secrets::resolve_task(ctx, td, role.as_ref()).await? {
        Ok(resolved) => resolved,
        Err(reason) => return failed(ctx, t, "a secret cannot be resolved", &reason).await,
    };
    if let Some(role) = &role {
        if let Err(reason) = role.check_awslogs(ctx, td, &t.id).await? {
            return failed(ctx, t, "its execution role may not write its logs", &reason).await;
        }
    }
    Ok(Some(resolved))
}

/// Fails task `t` to start with `reason` (`why` for berth's own log); `Ok(None)` for
/// [`task_secrets`].
async fn failed<T>(ctx: &Ctx, t: &Task, why: &str, reason: &str) -> Result<Option<T>, ApiError> {
    tracing::info!(task = %t.id, "task failed to start: {why}");
    fail_to_start(ctx, t, reason).await?;
    Ok(None)
}

/// Stops a task that has not started yet with TaskFailedToStart and `reason`, as ECS does when
/// what it needs to start (a secret, its role) cannot be had; one that already runs is left.
async fn fail_to_start(ctx: &Ctx, t: &Task, reason: &str) -> Result<(), ApiError> {
    let now = ctx.now();
    lifecycle::update_task(&ctx.state.store, &t.cluster, &t.id, |task| {
        if !matches!(
            task.last_status,
            TaskStatus::Provisioning | TaskStatus::Pending
        ) {
            return false;
        }
        lifecycle::force_stopped(task, StopCode::TaskFailedToStart, reason, now);
        true
    })
    .await?;
    Ok(())
}

/// The task role's current credentials for a task that has not stopped (`Some(None)`: no
/// role, or stopped), refreshed when due. A role that can no longer be assumed fails a task
/// still starting (`None`: stopped with TaskFailedToStart, as ECS does); a running task keeps
/// the credentials it holds until they expire.
async fn role_credentials(
    ctx: &Ctx,
    t: &Task,
    td: &TaskDefinition,
) -> Result<Option<Option<berth_model::agent::TaskCredentials>>, ApiError> {
    let Some(role) = td.task_role_arn.as_deref().filter(|r| !r.is_empty()) else {
        return Ok(Some(None));
    };
    if t.last_status == TaskStatus::Stopped {
        return Ok(Some(None));
    }
    match crate::iam::sessions::task_credentials(ctx, t, role).await? {
        Ok(c) => Ok(Some(Some(c))),
        Err(reason)
            if matches!(
                t.last_status,
                TaskStatus::Provisioning | TaskStatus::Pending
            ) =>
        {
            tracing::info!(task = %t.id, "task failed to start: its role cannot be assumed");
            fail_to_start(ctx, t, &reason).await?;
            Ok(None)
        }
        Err(reason) => {
            tracing::warn!(task = %t.id, %reason, "task role credentials not refreshed");
            Ok(Some(None))
        }
    }
}

/// The instance's desired task set, once it differs from `q.since` or the wait is over (or
/// `closing` resolves: the server is shutting down). Every poll also marks the agent alive.
pub async fn poll(
    state: &Ops,
    q: &PollQuery,
    closing: impl Future<Output = ()>,
) -> Result<DesiredSet, ApiError> {
    check_ids(&q.cluster, Some(&q.instance))?;
    let ctx = ctx(state);
    let inst = ctx
        .store()
        .get_json::<ContainerInstance>(&keys::instance(&q.cluster, &q.instance))
        .await
        .map_err(store_err)?;
    let Some((inst, irev)) = inst.filter(|(i, _)| i.status != InstanceStatus::Inactive) else {
        return Ok(DesiredSet {
            fingerprint: String::new(),
            tasks: Vec::new(),
            registered: false,
        });
    };
    touch(&ctx, &inst, irev).await?;
    let wait = q.wait.clamp(0.0, state.config.max_poll_wait_secs);
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(wait);
    let prefix = keys::assignments_of(&q.instance);
    let mut closing = std::pin::pin!(closing);
    // Only the assignment list is read while waiting; the tasks and their definitions are
    // loaded once, for the answer.
    // Subscribed before the list, so a change committed after it wakes this poll. Security
    // groups and the addresses their members hold (`ec2/`) change what an awsvpc task's agent
    // enforces without changing its assignments: they wake it too, and it answers at once.
    let mut wake = state.poll_hub.subscribe(&state.store, &q.instance);
    let (kvs, fp) = loop {
        let (kvs, _) = ctx.store().list(&prefix).await.map_err(store_err)?;
        let fp = fingerprint(&kvs);
        if fp != q.since || tokio::time::Instant::now() >= deadline {
            break (kvs, fp);
        }
        let network = *wake.all.borrow();
        tokio::select! {
            r = tokio::time::timeout_at(deadline, wake.changed()) => {
                if r.is_err() {
                    break (kvs, fp);
                }
                if *wake.all.borrow() != network {
                    break (kvs, fp);
                }
            }
            _ = &mut closing => break (kvs, fp),
        }
    };
    desired_set(&ctx, &q.cluster, &kvs, fp).await
}

/// Merges an agent's batch of task reports into the tasks. Their stats go to the metrics
/// hub, not the records; a report that carries nothing else (`statsOnly`) costs no store
/// read or write.
pub async fn status(state: &Ops, report: &StatusReport) -> Result<(), ApiError> {
    check_ids(&report.cluster, Some(&report.instance_id))?;
    for t in &report.tasks {
        validate_id("task", &t.task_id)?;
    }
    if let Some(hub) = &state.metrics_hub {
        note_samples(state, hub, report).await?;
    }
    let changed: Vec<TaskReport> = report
        .tasks
        .iter()
        .filter(|r| !r.stats_only)
        .cloned()
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    lifecycle::record_reports(
        &state.store,
        &report.cluster,
        &report.instance_id,
        &changed,
        state.now(),
    )
    .await
}

/// Keeps the stats of each RUNNING task of the batch in `hub`, with the reservations they are
/// measured against (from the task index: tasks this instance holds only), and forgets the
/// tasks that are ending.
async fn note_samples(
    state: &Ops,
    hub: &MetricsHub,
    report: &StatusReport,
) -> Result<(), ApiError> {
    let cluster = &report.cluster;
    for r in report
        .tasks
        .iter()
        .filter(|r| r.last_status > TaskStatus::Running)
    {
        hub.note_task(cluster, &r.task_id, None);
    }
    let sampled: Vec<&TaskReport> = report
        .tasks
        .iter()
        .filter(|r| r.stats.is_some() && r.last_status == TaskStatus::Running)
        .collect();
    if sampled.is_empty() {
        return Ok(());
    }
    let samples: Vec<(String, TaskSample)> = state
        .task_index
        .read(&state.store, |tasks| {
            sampled
                .iter()
                .filter_map(|r| {
                    let t = tasks.get(&keys::task(cluster, &r.task_id))?;
                    if t.container_instance_id.as_deref() != Some(report.instance_id.as_str()) {
                        return None;
                    }
                    let sample = TaskSample {
                        cluster: cluster.clone(),
                        family: t.family.clone(),
                        group: t.group.clone(),
                        cpu: t.cpu,
                        memory: t.memory,
                        stats: r.stats?,
                    };
                    Some((r.task_id.clone(), sample))
                })
                .collect()
        })
        .await
        .map_err(store_err)?;
    for (id, sample) in samples {
        hub.note_task(cluster, &id, Some(sample));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &[u8], create: u64, modified: u64) -> berth_store::KeyValue {
        berth_store::KeyValue {
            key: key.to_owned(),
            value: value.to_vec(),
            create_revision: create,
            mod_revision: modified,
        }
    }

    #[test]
    fn fingerprints_change_with_the_set_only() {
        let set = [kv("a/t1", b"RUNNING", 3, 3), kv("a/t2", b"RUNNING", 5, 5)];
        let fp = fingerprint(&set);
        // A report rewrote t1's entry unchanged: same set, same fingerprint (in any order).
        let rewritten = [kv("a/t2", b"RUNNING", 5, 5), kv("a/t1", b"RUNNING", 3, 9)];
        assert_eq!(fingerprint(&rewritten), fp);
        // A new desired status, an entry more or less, or one recreated: another fingerprint.
        let stopping = [kv("a/t1", b"STOPPED", 3, 9), kv("a/t2", b"RUNNING", 5, 5)];
        assert_ne!(fingerprint(&stopping), fp);
        assert_ne!(fingerprint(&set[..1]), fp);
        let more = [set[0].clone(), set[1].clone(), kv("a/t3", b"RUNNING", 7, 7)];
        assert_ne!(fingerprint(&more), fp);
        let recreated = [kv("a/t1", b"RUNNING", 8, 8), kv("a/t2", b"RUNNING", 5, 5)];
        assert_ne!(fingerprint(&recreated), fp);
        assert_ne!(fingerprint(&[]), fp);
        assert_ne!(
            fingerprint(&[]),
            "",
            "an agent's first poll (since = \"\") always answers"
        );
    }
}
