//! What node agents do: register, long-poll for the desired task set, and report status.
//! Agents authenticate with their cluster's join token, derived from the server's join secret
//! (HMAC-SHA256 of the cluster name), so tokens need no storage and a token for one cluster is
//! worthless for another. The HTTP endpoints (`/agent/v1/...`) are the edge's.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use berth_control::lifecycle;
use berth_model::agent::{AgentRegistered, AgentRegistration, AgentTask, DesiredSet, StatusReport};
use berth_model::{
    keys, validate_cluster_name, validate_id, ApiError, ContainerInstance, DesiredStatus,
    ErrorCode, InstanceStatus, StopCode, Task, TaskDefinition, TaskStatus,
};
use berth_store::{StoreExt, Txn};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::ecs::{instance_arn_of, register_instance, task_arn_of, Registration};
use crate::{store_err, to_bytes, Ctx, Ops};

/// The join token of `cluster` under `secret`.
pub fn join_token(secret: &str, cluster: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(b"berth-join-token/v1/");
    mac.update(cluster.as_bytes());
    format!("bjt1.{}", hex::encode(&mac.finalize().into_bytes()[..20]))
}

/// Checks the join token an agent presented for `cluster`.
pub fn check_token(state: &Ops, given: &str, cluster: &str) -> Result<(), ApiError> {
    let want = join_token(&state.config.join_secret, cluster);
    // Constant-time comparison: the token is a secret.
    let same = given.len() == want.len()
        && given
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if state.config.join_secret.is_empty() || !same {
        return Err(ApiError::new(
            ErrorCode::UnrecognizedClientException,
            "The join token is not valid for this cluster.",
        ));
    }
    Ok(())
}

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

/// Registers (or re-registers) the agent's host as a container instance.
pub async fn register(state: &Ops, reg: &AgentRegistration) -> Result<AgentRegistered, ApiError> {
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
        },
    )
    .await?;
    tracing::info!(cluster = %reg.cluster, instance = %inst.id, host = %reg.hostname, "agent registered");
    Ok(AgentRegistered {
        instance_arn: instance_arn_of(&ctx, &inst.cluster, &inst.id),
        instance_id: inst.id,
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
        tasks.push(AgentTask {
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
        });
    }
    Ok(DesiredSet {
        fingerprint: fp,
        tasks,
        registered: true,
    })
}

/// The secret values of a task the agent must start (resolved now, for this answer only),
/// `Some(None)` when it needs none, or `None` when one cannot be resolved: the task is then
/// stopped (TaskFailedToStart, ECS's ResourceInitializationError) before the agent sees it.
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
    match crate::secrets::resolve_task(ctx, td).await? {
        Ok(resolved) => Ok(Some(resolved)),
        Err(reason) => {
            tracing::info!(task = %t.id, "task failed to start: a secret cannot be resolved");
            let now = ctx.now();
            lifecycle::update_task(&ctx.state.store, &t.cluster, &t.id, |task| {
                if !matches!(
                    task.last_status,
                    TaskStatus::Provisioning | TaskStatus::Pending
                ) {
                    return false;
                }
                lifecycle::force_stopped(task, StopCode::TaskFailedToStart, &reason, now);
                true
            })
            .await?;
            Ok(None)
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
    let (kvs, fp) = loop {
        let (kvs, rev) = ctx.store().list(&prefix).await.map_err(store_err)?;
        let fp = fingerprint(&kvs);
        if fp != q.since || tokio::time::Instant::now() >= deadline {
            break (kvs, fp);
        }
        let mut changes = ctx.state.store.watch(&prefix, rev);
        tokio::select! {
            r = tokio::time::timeout_at(deadline, changes.next()) => {
                if r.is_err() {
                    break (kvs, fp);
                }
            }
            _ = &mut closing => break (kvs, fp),
        }
    };
    desired_set(&ctx, &q.cluster, &kvs, fp).await
}

/// Merges an agent's batch of task reports into the tasks.
pub async fn status(state: &Ops, report: &StatusReport) -> Result<(), ApiError> {
    check_ids(&report.cluster, Some(&report.instance_id))?;
    for t in &report.tasks {
        validate_id("task", &t.task_id)?;
    }
    lifecycle::record_reports(
        &state.store,
        &report.cluster,
        &report.instance_id,
        &report.tasks,
        state.now(),
    )
    .await
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

    #[test]
    fn tokens_differ_per_cluster_and_secret() {
        let a = join_token("s", "web");
        assert!(a.starts_with("bjt1."));
        assert_eq!(a, join_token("s", "web"));
        assert_ne!(a, join_token("s", "api"));
        assert_ne!(a, join_token("t", "web"));
    }
}
