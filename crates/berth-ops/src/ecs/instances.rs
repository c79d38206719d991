//! RegisterContainerInstance, DeregisterContainerInstance, DescribeContainerInstances,
//! ListContainerInstances, UpdateContainerInstancesState, PutAttributes, DeleteAttributes,
//! ListAttributes.

use berth_control::{instance_views, is_connected, lifecycle, usage_of, ClusterSnapshot};
use berth_model::{
    keys, validate_id, validate_tags, ApiError, Arn, Attribute, ContainerInstance, ErrorCode,
    HostResources, InstanceStatus, InstanceUsage, ResourceKind, StopCode, Tag, Task,
    MAX_ATTRIBUTES,
};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::clusters::{cluster_name, load_active};
use crate::paging::{page_json, paginate};
use crate::{store_err, to_bytes, Ctx};

/// A container instance id from an id or an ARN (`container-instance/CLUSTER/ID` or the old
/// `container-instance/ID`).
pub(crate) fn instance_id(ident: &str) -> Result<String, ApiError> {
    let id = if Arn::looks_like_arn(ident) {
        match Arn::parse(ident) {
            Some(a) if a.kind == ResourceKind::ContainerInstance => {
                a.resource.rsplit('/').next().unwrap_or_default().to_owned()
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "Invalid container instance ARN: {ident}"
                )))
            }
        }
    } else {
        ident.to_owned()
    };
    validate_id("container instance", &id)?;
    Ok(id)
}

pub(crate) fn instance_arn(ctx: &Ctx, cluster: &str, id: &str) -> String {
    ctx.arn(ResourceKind::ContainerInstance, format!("{cluster}/{id}"))
}

fn wire(ctx: &Ctx, i: &ContainerInstance, usage: &InstanceUsage, with_tags: bool) -> Value {
    let connected = is_connected(i, ctx.now(), ctx.state.config.agent_timeout_secs);
    i.to_wire(
        &instance_arn(ctx, &i.cluster, &i.id),
        connected,
        usage,
        with_tags,
    )
}

/// An instance a user may see and act on: berth's managed (FARGATE) hosts are never shown,
/// so every user action finds them missing (agents still reach their own record).
async fn load_visible(
    ctx: &Ctx,
    cluster: &str,
    id: &str,
) -> Result<Option<(ContainerInstance, u64)>, ApiError> {
    Ok(load(ctx, cluster, id)
        .await?
        .filter(|(i, _)| !berth_model::fargate::is_managed_instance(i)))
}

async fn load(
    ctx: &Ctx,
    cluster: &str,
    id: &str,
) -> Result<Option<(ContainerInstance, u64)>, ApiError> {
    ctx.store()
        .get_json::<ContainerInstance>(&keys::instance(cluster, id))
        .await
        .map_err(store_err)
}

async fn save(ctx: &Ctx, i: &ContainerInstance, rev: u64) -> Result<bool, ApiError> {
    let key = keys::instance(&i.cluster, &i.id);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key, to_bytes(i)?);
    Ok(matches!(
        ctx.store().txn(txn).await.map_err(store_err)?,
        TxnResult::Committed { .. }
    ))
}

/// What a host brings when it registers (from RegisterContainerInstance or berth's agent).
pub(crate) struct Registration {
    pub cluster: String,
    pub instance_id: Option<String>,
    pub ec2_instance_id: Option<String>,
    pub resources: HostResources,
    pub attributes: Vec<Attribute>,
    pub version_info: Value,
    pub tags: Vec<Tag>,
    pub endpoint: Option<String>,
    /// The hash of a new agent credential for the instance (berth's agent registrations).
    pub credential_hash: Option<String>,
}

/// Registers a host, or re-registers a known one (same id; resources and attributes renewed).
pub(crate) async fn register_instance(
    ctx: &Ctx,
    reg: Registration,
) -> Result<ContainerInstance, ApiError> {
    load_active(ctx, &reg.cluster).await?;
    validate_tags(&reg.tags)?;
    for a in &reg.attributes {
        a.validate()?;
    }
    // The caller's id becomes a store key: ASCII letters, digits and '-' only (no '/', no
    // multibyte characters to slice through).
    if let Some(id) = &reg.instance_id {
        validate_id("container instance", id)?;
    }
    let now = ctx.now();
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        // Deregistration is final, as in ECS: a host whose instance was deregistered comes
        // back as a new container instance (its old containers are orphans its agent stops).
        let existing = match &reg.instance_id {
            Some(id) => load(ctx, &reg.cluster, id)
                .await?
                .filter(|(i, _)| i.status != InstanceStatus::Inactive),
            None => None,
        };
        let (inst, rev) = match existing {
            Some((mut i, rev)) => {
                i.registered = reg.resources.clone();
                for a in &reg.attributes {
                    i.put_attribute(a.clone());
                }
                i.version_info = reg.version_info.clone();
                i.last_seen = now;
                if reg.endpoint.is_some() {
                    i.agent_endpoint = reg.endpoint.clone();
                }
                i.version += 1;
                (i, rev)
            }
            None => {
                // A fresh id unless the caller names an instance never seen here (an agent
                // whose identity survived a wiped store keeps it).
                let id = match &reg.instance_id {
                    Some(id) if load(ctx, &reg.cluster, id).await?.is_none() => id.clone(),
                    _ => uuid::Uuid::new_v4().simple().to_string(),
                };
                let ec2 = reg
                    .ec2_instance_id
                    .clone()
                    .unwrap_or_else(|| format!("i-{}", &id[..17.min(id.len())]));
                let mut i = ContainerInstance {
                    id,
                    cluster: reg.cluster.clone(),
                    ec2_instance_id: ec2,
                    status: InstanceStatus::Active,
                    status_reason: None,
                    registered: reg.resources.clone(),
                    attributes: Vec::new(),
                    tags: reg.tags.clone(),
                    version_info: reg.version_info.clone(),
                    registered_at: now,
                    last_seen: now,
                    version: 1,
                    agent_endpoint: reg.endpoint.clone(),
                };
                for a in &reg.attributes {
                    i.put_attribute(a.clone());
                }
                (i, 0)
            }
        };
        // The cluster is rewritten (unchanged) with the instance, so a DeleteCluster racing
        // with this retries and sees the instance, or this retries and finds the cluster gone.
        let (c, c_rev) = load_active(ctx, &reg.cluster).await?;
        let c_key = keys::cluster(&reg.cluster);
        let key = keys::instance(&inst.cluster, &inst.id);
        let mut txn = Txn::new()
            .when_mod_revision(c_key.clone(), c_rev)
            .put(c_key, to_bytes(&c)?)
            .when_mod_revision(key.clone(), rev)
            .put(key, to_bytes(&inst)?);
        if let Some(hash) = &reg.credential_hash {
            txn = txn.put(
                keys::instance_credential(&inst.cluster, &inst.id),
                to_bytes(hash)?,
            );
        }
        if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            return Ok(inst);
        }
    }
    Err(ApiError::server(
        "Container instance changed concurrently; retry.",
    ))
}

/// The request of `RegisterContainerInstance`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    cluster: Option<String>,
    #[serde(default)]
    total_resources: Vec<Value>,
    #[serde(default)]
    version_info: Option<Value>,
    container_instance_arn: Option<String>,
    #[serde(default)]
    attributes: Vec<Attribute>,
    #[serde(default)]
    tags: Vec<Tag>,
    instance_identity_document: Option<String>,
}

/// ECS `RegisterContainerInstance`.
pub async fn register(ctx: &Ctx, req: RegisterRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    let ec2 = req
        .instance_identity_document
        .as_deref()
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .and_then(|d| d["instanceId"].as_str().map(str::to_owned));
    let inst = register_instance(
        ctx,
        Registration {
            cluster: cluster.clone(),
            instance_id: req
                .container_instance_arn
                .as_deref()
                .map(instance_id)
                .transpose()?,
            ec2_instance_id: ec2,
            resources: HostResources::from_wire(&req.total_resources)?,
            attributes: req.attributes,
            version_info: req.version_info.unwrap_or_else(|| json!({})),
            tags: req.tags,
            endpoint: None,
            credential_hash: None,
        },
    )
    .await?;
    let snap = ClusterSnapshot::load(ctx.store(), &cluster)
        .await
        .map_err(store_err)?;
    let usage = usage_of(&inst, snap.tasks.iter().map(|(t, _)| t));
    Ok(json!({ "containerInstance": wire(ctx, &inst, &usage, true) }))
}

/// The request of `DeregisterContainerInstance`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterRequest {
    cluster: Option<String>,
    container_instance: String,
    #[serde(default)]
    force: Option<bool>,
}

/// ECS `DeregisterContainerInstance`.
pub async fn deregister(ctx: &Ctx, req: DeregisterRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    load_active(ctx, &cluster).await?;
    let id = instance_id(&req.container_instance)?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut inst, rev) = load_visible(ctx, &cluster, &id)
            .await?
            .filter(|(i, _)| i.status != InstanceStatus::Inactive)
            .ok_or_else(|| ApiError::invalid("The referenced container instance was not found."))?;
        let snap = ClusterSnapshot::load(ctx.store(), &cluster)
            .await
            .map_err(store_err)?;
        let live: Vec<(Task, u64)> = snap
            .tasks
            .into_iter()
            .filter(|(t, _)| {
                t.container_instance_id.as_deref() == Some(id.as_str()) && t.holds_resources()
            })
            .collect();
        if !live.is_empty() && !req.force.unwrap_or(false) {
            return Err(ApiError::client(
                "Found running tasks on the instance. Use force to deregister it, or stop the tasks first.",
            ));
        }
        inst.status = InstanceStatus::Inactive;
        inst.version += 1;
        // Its tasks lose their host: they are stopped with it, in the same transaction (so no
        // live task is ever left on an INACTIVE instance), since no agent will report them;
        // the agent, told the instance is gone, stops their containers. The user asked for
        // it, so the stop is theirs, whatever state the task was in.
        let key = keys::instance(&inst.cluster, &inst.id);
        // Its agent's credential is revoked with it.
        let mut txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .put(key, to_bytes(&inst)?)
            .delete(keys::instance_credential(&inst.cluster, &inst.id));
        let now = ctx.now();
        for (mut t, trev) in live {
            lifecycle::force_stopped(
                &mut t,
                StopCode::UserInitiated,
                "Container instance deregistered",
                now,
            );
            txn = lifecycle::write_task(txn, &t, trev)?;
        }
        if let TxnResult::Conflict { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            continue;
        }
        let usage = usage_of(&inst, std::iter::empty());
        return Ok(json!({ "containerInstance": wire(ctx, &inst, &usage, false) }));
    }
    Err(ApiError::server(
        "Container instance changed concurrently; retry.",
    ))
}

/// The request of `DescribeContainerInstances`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    cluster: Option<String>,
    container_instances: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
}

/// ECS `DescribeContainerInstances`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    load_active(ctx, &cluster).await?;
    if req.container_instances.is_empty() || req.container_instances.len() > 100 {
        return Err(ApiError::invalid(
            "containerInstances must name between 1 and 100 instances.",
        ));
    }
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    let mut found = Vec::with_capacity(req.container_instances.len());
    for ident in &req.container_instances {
        let id = instance_id(ident)?;
        found.push((id.clone(), load_visible(ctx, &cluster, &id).await?));
    }
    // Each instance's usage from the task index's summaries of its own tasks: no task is
    // read, and no other instance's tasks are looked at.
    let usages: Vec<Option<InstanceUsage>> = ctx
        .state
        .task_index
        .read(&ctx.state.store, |tasks| {
            found
                .iter()
                .map(|(_, i)| {
                    let (i, _) = i.as_ref()?;
                    Some(crate::task_index::usage(i, tasks.on_instance(&i.id)))
                })
                .collect()
        })
        .await
        .map_err(store_err)?;
    let providers = super::capacity::providers_by_group(ctx).await?;
    let (mut out, mut failures) = (Vec::new(), Vec::new());
    for ((id, inst), usage) in found.iter().zip(usages) {
        match (inst, usage) {
            (Some((i, _)), Some(u)) => {
                let mut v = wire(ctx, i, &u, with_tags);
                // A host of a provider's group belongs to that provider, as ECS shows it.
                let group = berth_control::capacity::instance_group(i);
                if let Some(p) = group.and_then(|g| providers.get(g)) {
                    v["capacityProviderName"] = json!(p);
                }
                out.push(v);
            }
            _ => failures.push(json!({
                "arn": instance_arn(ctx, &cluster, id), "reason": "MISSING"})),
        }
    }
    Ok(json!({ "containerInstances": out, "failures": failures }))
}

/// The request of `ListContainerInstances`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRequest {
    cluster: Option<String>,
    filter: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ECS `ListContainerInstances`.
pub async fn list(ctx: &Ctx, req: ListRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    load_active(ctx, &cluster).await?;
    let status = req
        .status
        .as_deref()
        .map(InstanceStatus::parse)
        .transpose()?;
    let expr = match req.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(f) => Some(berth_sched::Expr::parse(f).map_err(|e| ApiError::invalid(e.to_string()))?),
        None => None,
    };
    let snap = ClusterSnapshot::load(ctx.store(), &cluster)
        .await
        .map_err(store_err)?;
    let arn_of = |id: &str| instance_arn(ctx, &cluster, id);
    let views = instance_views(
        &snap,
        ctx.now(),
        ctx.state.config.agent_timeout_secs,
        &arn_of,
    );
    let items = snap
        .instances
        .iter()
        .filter(|(i, _)| !berth_model::fargate::is_managed_instance(i))
        .filter(|(i, _)| match status {
            Some(s) => i.status == s,
            None => i.status != InstanceStatus::Inactive,
        })
        .filter(|(i, _)| match &expr {
            Some(e) => views
                .iter()
                .find(|v| v.id == i.id)
                .is_some_and(|v| e.matches(v)),
            None => true,
        })
        .map(|(i, _)| (i.id.clone(), instance_arn(ctx, &cluster, &i.id)))
        .collect();
    let (arns, next) = paginate(items, req.max_results, req.next_token.as_deref(), false)?;
    Ok(page_json("containerInstanceArns", arns, next))
}

/// The request of `UpdateContainerInstancesState`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStateRequest {
    cluster: Option<String>,
    container_instances: Vec<String>,
    status: String,
}

/// ECS `UpdateContainerInstancesState` (ACTIVE or DRAINING).
pub async fn update_state(ctx: &Ctx, req: UpdateStateRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    load_active(ctx, &cluster).await?;
    let status = match InstanceStatus::parse(&req.status)? {
        InstanceStatus::Inactive => {
            return Err(ApiError::invalid(
                "Container instances can only be set to ACTIVE or DRAINING.",
            ))
        }
        s => s,
    };
    if req.container_instances.is_empty() || req.container_instances.len() > 10 {
        return Err(ApiError::invalid(
            "containerInstances must name between 1 and 10 instances.",
        ));
    }
    let (mut changed, mut failures) = (Vec::new(), Vec::new());
    for ident in &req.container_instances {
        let id = instance_id(ident)?;
        let mut done = None;
        let mut retry = berth_store::Retry::new();
        while retry.next().await {
            let Some((mut i, rev)) = load_visible(ctx, &cluster, &id)
                .await?
                .filter(|(i, _)| i.status != InstanceStatus::Inactive)
            else {
                break;
            };
            if i.status != status {
                i.status = status;
                i.version += 1;
                if !save(ctx, &i, rev).await? {
                    continue;
                }
            }
            done = Some(i);
            break;
        }
        match done {
            Some(i) => changed.push(i),
            None => failures.push(json!({
                "arn": instance_arn(ctx, &cluster, &id), "reason": "MISSING"})),
        }
    }
    let snap = ClusterSnapshot::load(ctx.store(), &cluster)
        .await
        .map_err(store_err)?;
    let usages = snap.usages();
    let out: Vec<Value> = changed
        .iter()
        .map(|i| {
            wire(
                ctx,
                i,
                &usages.get(&i.id).cloned().unwrap_or_default(),
                false,
            )
        })
        .collect();
    Ok(json!({ "containerInstances": out, "failures": failures }))
}

/// The request of `PutAttributes` and `DeleteAttributes`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributesRequest {
    cluster: Option<String>,
    attributes: Vec<Attribute>,
}

fn target_of(a: &Attribute) -> Result<String, ApiError> {
    if let Some(t) = &a.target_type {
        if t != "container-instance" {
            return Err(ApiError::invalid(format!(
                "Invalid targetType {t:?}; valid: container-instance"
            )));
        }
    }
    let id = a
        .target_id
        .as_deref()
        .ok_or_else(|| ApiError::invalid(format!("Attribute {} needs a targetId.", a.name)))?;
    instance_id(id)
}

/// Applies `change` to each attribute's target instance.
async fn change_attributes(
    ctx: &Ctx,
    req: AttributesRequest,
    put: bool,
) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    load_active(ctx, &cluster).await?;
    if req.attributes.is_empty() || req.attributes.len() > 10 {
        return Err(ApiError::invalid(
            "attributes must hold between 1 and 10 attributes.",
        ));
    }
    for a in &req.attributes {
        if put {
            a.validate()?;
        }
        let id = target_of(a)?;
        let mut ok = false;
        let mut retry = berth_store::Retry::new();
        while retry.next().await {
            let Some((mut i, rev)) = load_visible(ctx, &cluster, &id)
                .await?
                .filter(|(i, _)| i.status != InstanceStatus::Inactive)
            else {
                return Err(ApiError::new(
                    ErrorCode::TargetNotFoundException,
                    format!(
                        "Could not find {}.",
                        a.target_id.as_deref().unwrap_or_default()
                    ),
                ));
            };
            if put {
                i.put_attribute(a.clone());
                let custom = i
                    .attributes
                    .iter()
                    .filter(|a| {
                        !a.name.starts_with("ecs.") && !a.name.starts_with("com.amazonaws.ecs.")
                    })
                    .count();
                if custom > MAX_ATTRIBUTES {
                    return Err(ApiError::new(
                        ErrorCode::AttributeLimitExceededException,
                        format!(
                            "You can apply up to {MAX_ATTRIBUTES} custom attributes per resource."
                        ),
                    ));
                }
            } else {
                i.attributes.retain(|e| e.name != a.name);
            }
            i.version += 1;
            if save(ctx, &i, rev).await? {
                ok = true;
                break;
            }
        }
        if !ok {
            return Err(ApiError::server(
                "Container instance changed concurrently; retry.",
            ));
        }
    }
    Ok(json!({ "attributes": req.attributes }))
}

/// ECS `PutAttributes` (on container instances).
pub async fn put_attributes(ctx: &Ctx, req: AttributesRequest) -> Result<Value, ApiError> {
    change_attributes(ctx, req, true).await
}

/// ECS `DeleteAttributes` (from container instances).
pub async fn delete_attributes(ctx: &Ctx, req: AttributesRequest) -> Result<Value, ApiError> {
    change_attributes(ctx, req, false).await
}

/// The request of `ListAttributes`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttributesRequest {
    cluster: Option<String>,
    target_type: String,
    attribute_name: Option<String>,
    attribute_value: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ECS `ListAttributes`.
pub async fn list_attributes(ctx: &Ctx, req: ListAttributesRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    load_active(ctx, &cluster).await?;
    if req.target_type != "container-instance" {
        return Err(ApiError::invalid(
            "Invalid targetType; valid: container-instance",
        ));
    }
    if req.attribute_value.is_some() && req.attribute_name.is_none() {
        return Err(ApiError::invalid(
            "attributeValue can only be given with attributeName.",
        ));
    }
    let snap = ClusterSnapshot::load(ctx.store(), &cluster)
        .await
        .map_err(store_err)?;
    let mut items = Vec::new();
    for (i, _) in snap
        .instances
        .iter()
        .filter(|(i, _)| i.status != InstanceStatus::Inactive)
        .filter(|(i, _)| !berth_model::fargate::is_managed_instance(i))
    {
        for a in &i.attributes {
            if req.attribute_name.as_ref().is_some_and(|n| *n != a.name)
                || req
                    .attribute_value
                    .as_ref()
                    .is_some_and(|v| a.value.as_ref() != Some(v))
            {
                continue;
            }
            let mut out = a.clone();
            out.target_type = Some("container-instance".into());
            out.target_id = Some(instance_arn(ctx, &cluster, &i.id));
            items.push((format!("{}/{}", i.id, a.name), out));
        }
    }
    let (attrs, next) = paginate(items, req.max_results, req.next_token.as_deref(), false)?;
    Ok(page_json("attributes", attrs, next))
}
