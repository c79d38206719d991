//! RunTask, StartTask, StopTask, DescribeTasks, ListTasks.

use berth_control::{lifecycle, LaunchSpec};
use berth_model::{
    keys, validate_tags, ApiError, Arn, DesiredStatus, ResourceKind, StopCode, Tag, Task,
    TaskDefinition, TaskOverride,
};
use berth_sched::{Constraint, Strategy};
use berth_store::StoreExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::clusters::{cluster_name, load_active};
use super::instances::{instance_arn, instance_id};
use crate::paging::{page_json, paginate};
use crate::{store_err, Ctx};

pub(crate) fn task_arn(ctx: &Ctx, t: &Task) -> String {
    ctx.arn(ResourceKind::Task, format!("{}/{}", t.cluster, t.id))
}

pub(crate) fn task_wire(ctx: &Ctx, t: &Task, with_tags: bool) -> Value {
    let instance = t
        .container_instance_id
        .as_deref()
        .map(|i| instance_arn(ctx, &t.cluster, i));
    let mut v = t.to_wire(
        &task_arn(ctx, t),
        &ctx.arn(ResourceKind::Cluster, &t.cluster),
        &ctx.arn(
            ResourceKind::TaskDefinition,
            format!("{}:{}", t.family, t.revision),
        ),
        instance.as_deref(),
        with_tags,
    );
    super::fargate::decorate(&mut v, t);
    v
}

/// A task id from an id or an ARN (`task/CLUSTER/ID` or the old `task/ID`).
pub(crate) fn task_id(ident: &str) -> Result<String, ApiError> {
    let id = if Arn::looks_like_arn(ident) {
        match Arn::parse(ident) {
            Some(a) if a.kind == ResourceKind::Task => {
                a.resource.rsplit('/').next().unwrap_or_default().to_owned()
            }
            _ => return Err(ApiError::invalid(format!("Invalid task ARN: {ident}"))),
        }
    } else {
        ident.to_owned()
    };
    berth_model::validate_id("task", &id)?;
    Ok(id)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WirePlacement {
    #[serde(rename = "type")]
    kind: Option<String>,
    field: Option<String>,
    expression: Option<String>,
}

fn strategies(list: &[WirePlacement]) -> Result<Vec<Strategy>, ApiError> {
    if list.len() > 5 {
        return Err(ApiError::invalid(
            "At most 5 placement strategies are allowed.",
        ));
    }
    list.iter()
        .map(|p| {
            Strategy::from_wire(p.kind.as_deref().unwrap_or_default(), p.field.as_deref())
                .map_err(|e| ApiError::invalid(e.to_string()))
        })
        .collect()
}

fn constraints(list: &[WirePlacement]) -> Result<Vec<Constraint>, ApiError> {
    if list.len() > 10 {
        return Err(ApiError::invalid(
            "At most 10 placement constraints are allowed.",
        ));
    }
    list.iter()
        .map(|p| {
            Constraint::from_wire(
                p.kind.as_deref().unwrap_or_default(),
                p.expression.as_deref(),
            )
            .map_err(|e| ApiError::invalid(e.to_string()))
        })
        .collect()
}

fn check_len(what: &str, v: &Option<String>, max: usize) -> Result<(), ApiError> {
    match v {
        Some(s) if s.is_empty() || s.chars().count() > max => Err(ApiError::invalid(format!(
            "{what} must be between 1 and {max} characters."
        ))),
        _ => Ok(()),
    }
}

/// A RunTask or StartTask task's tags: the request's, then the task definition's with
/// `propagateTags` TASK_DEFINITION, then ECS's managed `aws:ecs:clusterName` with
/// `enableECSManagedTags`.
fn task_tags(
    mut tags: Vec<Tag>,
    propagate: Option<&str>,
    managed: bool,
    cluster: &str,
    td: &TaskDefinition,
) -> Result<Vec<Tag>, ApiError> {
    match propagate {
        None | Some("NONE") => {}
        Some("TASK_DEFINITION") => {
            for t in &td.tags {
                if !tags.iter().any(|x| x.key == t.key) {
                    tags.push(t.clone());
                }
            }
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "propagateTags {other} is not valid for a task outside a service; use TASK_DEFINITION or NONE."
            )))
        }
    }
    if managed {
        tags.push(Tag {
            key: "aws:ecs:clusterName".into(),
            value: cluster.to_owned(),
        });
    }
    Ok(tags)
}

fn launch_answer(ctx: &Ctx, out: berth_control::LaunchOutcome) -> Value {
    let tasks: Vec<Value> = out.tasks.iter().map(|t| task_wire(ctx, t, true)).collect();
    let failures: Vec<Value> = out
        .failures
        .iter()
        .map(|f| {
            let mut v = json!({ "reason": f.reason.as_str() });
            if let Some(a) = &f.arn {
                v["arn"] = json!(a);
            }
            if let Some(d) = &f.detail {
                v["detail"] = json!(d);
            }
            v
        })
        .collect();
    json!({ "tasks": tasks, "failures": failures })
}

/// The request of `RunTask`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskRequest {
    cluster: Option<String>,
    task_definition: String,
    count: Option<i64>,
    group: Option<String>,
    started_by: Option<String>,
    #[serde(default)]
    overrides: TaskOverride,
    #[serde(default)]
    placement_strategy: Vec<WirePlacement>,
    #[serde(default)]
    placement_constraints: Vec<WirePlacement>,
    launch_type: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    client_token: Option<String>,
    propagate_tags: Option<String>,
    #[serde(default, rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: bool,
    network_configuration: Option<Value>,
    capacity_provider_strategy: Option<Vec<super::capacity::strategy::WireItem>>,
    /// Members berth does not implement (`platformVersion`, `enableExecuteCommand` true
    /// ...): refused unless neutral.
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// A launch's `networkConfiguration` checked against the definition's network mode and the
/// EC2 records, and completed (see `ec2::network::resolve`).
async fn network(
    ctx: &Ctx,
    td: &berth_model::TaskDefinition,
    given: Option<&Value>,
) -> Result<Option<berth_model::NetworkConfiguration>, ApiError> {
    let given = given
        .map(berth_model::NetworkConfiguration::from_request)
        .transpose()?;
    crate::ec2::network::resolve(ctx, td.network_mode.as_deref(), given.as_ref()).await
}

/// A typed strategy back as its wire JSON, for the Fargate check.
pub(crate) fn strategy_json(
    items: Option<&[super::capacity::strategy::WireItem]>,
) -> Option<Value> {
    items.and_then(|i| serde_json::to_value(i).ok())
}

/// ECS `RunTask`.
pub async fn run(ctx: &Ctx, mut req: RunTaskRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    let count = req.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid("count must be between 1 and 10."));
    }
    check_len("group", &req.group, 255)?;
    check_len("startedBy", &req.started_by, 128)?;
    check_len("clientToken", &req.client_token, 64)?;
    validate_tags(&req.tags)?;
    let taken = super::fargate::take(
        req.launch_type.as_deref(),
        strategy_json(req.capacity_provider_strategy.as_deref()),
        &mut req.rest,
    )?;
    super::unsupported::refuse("", &req.rest)?;
    super::unsupported::refuse_overrides(&req.overrides)?;
    super::unsupported::check_role_override(ctx, &req.overrides).await?;
    let strategies = strategies(&req.placement_strategy)?;
    let constraints = constraints(&req.placement_constraints)?;
    let (c, _) = load_active(ctx, &cluster).await?;
    // A Fargate launch is placed on berth's managed capacity (`spec.fargate`); any other
    // strategy goes through the capacity providers.
    let plan = super::capacity::strategy::resolve(
        &c,
        req.launch_type.as_deref(),
        req.capacity_provider_strategy.as_deref(),
    )?;
    let taken = super::fargate::take_default(taken, &plan)?;
    let plan = plan.filter(|_| !taken.is_fargate());
    let td = super::taskdefs::runnable(ctx, &req.task_definition).await?;
    let resolved = super::fargate::resolve(taken, &td, &req.overrides)?;
    let network = network(ctx, &td, req.network_configuration.as_ref()).await?;
    let tags = task_tags(
        req.tags,
        req.propagate_tags.as_deref(),
        req.enable_ecs_managed_tags,
        &cluster,
        &td,
    )?;
    let spec = LaunchSpec {
        cluster: cluster.clone(),
        launch_type: resolved.launch_type,
        group: Some(req.group.unwrap_or_else(|| format!("family:{}", td.family))),
        taskdef: td,
        overrides: req.overrides,
        count: count as usize,
        started_by: req.started_by,
        tags,
        strategies,
        constraints,
        on_instances: None,
        client_token: req.client_token,
        network,
        capacity_provider: None,
        fargate: resolved.fargate,
    };
    let arn_of = |id: &str| instance_arn(ctx, &cluster, id);
    let out = match plan {
        None => ctx.state.launcher.launch(&spec, ctx.now(), &arn_of).await?,
        Some(items) => super::capacity::launch::through(ctx, spec, &items, &arn_of).await?,
    };
    Ok(launch_answer(ctx, out))
}

/// The request of `StartTask`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTaskRequest {
    cluster: Option<String>,
    task_definition: String,
    container_instances: Vec<String>,
    group: Option<String>,
    started_by: Option<String>,
    #[serde(default)]
    overrides: TaskOverride,
    #[serde(default)]
    tags: Vec<Tag>,
    propagate_tags: Option<String>,
    #[serde(default, rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: bool,
    network_configuration: Option<Value>,
    /// Members berth does not implement (`capacityProviderStrategy`,
    /// `platformVersion`, `enableExecuteCommand` true ...): refused unless neutral.
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// ECS `StartTask`.
pub async fn start(ctx: &Ctx, req: StartTaskRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    if req.container_instances.is_empty() || req.container_instances.len() > 10 {
        return Err(ApiError::invalid(
            "containerInstances must name between 1 and 10 instances.",
        ));
    }
    check_len("group", &req.group, 255)?;
    check_len("startedBy", &req.started_by, 128)?;
    validate_tags(&req.tags)?;
    super::unsupported::refuse("", &req.rest)?;
    super::unsupported::refuse_overrides(&req.overrides)?;
    super::unsupported::check_role_override(ctx, &req.overrides).await?;
    let ids = req
        .container_instances
        .iter()
        .map(|i| instance_id(i))
        .collect::<Result<Vec<_>, _>>()?;
    load_active(ctx, &cluster).await?;
    let td = super::taskdefs::runnable(ctx, &req.task_definition).await?;
    let network = network(ctx, &td, req.network_configuration.as_ref()).await?;
    let tags = task_tags(
        req.tags,
        req.propagate_tags.as_deref(),
        req.enable_ecs_managed_tags,
        &cluster,
        &td,
    )?;
    let spec = LaunchSpec {
        cluster: cluster.clone(),
        launch_type: "EC2".into(),
        group: Some(req.group.unwrap_or_else(|| format!("family:{}", td.family))),
        taskdef: td,
        overrides: req.overrides,
        count: ids.len(),
        started_by: req.started_by,
        tags,
        strategies: Vec::new(),
        constraints: Vec::new(),
        on_instances: Some(ids),
        capacity_provider: None,
        client_token: None,
        network,
        fargate: None,
    };
    let arn_of = |id: &str| instance_arn(ctx, &cluster, id);
    let out = ctx.state.launcher.launch(&spec, ctx.now(), &arn_of).await?;
    Ok(launch_answer(ctx, out))
}

/// The request of `StopTask`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskRequest {
    cluster: Option<String>,
    task: String,
    reason: Option<String>,
}

/// ECS `StopTask`.
pub async fn stop(ctx: &Ctx, req: StopTaskRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    let id = task_id(&req.task)?;
    if req.reason.as_ref().is_some_and(|r| r.chars().count() > 255) {
        return Err(ApiError::invalid("reason can be at most 255 characters."));
    }
    load_active(ctx, &cluster).await?;
    let reason = req
        .reason
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "Task stopped by user".to_owned());
    let now = ctx.now();
    let t = lifecycle::update_task(&ctx.state.store, &cluster, &id, |t| {
        lifecycle::request_stop(t, StopCode::UserInitiated, &reason, now)
    })
    .await?
    .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    Ok(json!({ "task": task_wire(ctx, &t, false) }))
}

/// The request of `DescribeTasks`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasksRequest {
    cluster: Option<String>,
    tasks: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
}

/// ECS `DescribeTasks`.
pub async fn describe(ctx: &Ctx, req: DescribeTasksRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    if req.tasks.is_empty() || req.tasks.len() > 100 {
        return Err(ApiError::invalid(
            "tasks must name between 1 and 100 tasks.",
        ));
    }
    load_active(ctx, &cluster).await?;
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    let (mut out, mut failures) = (Vec::new(), Vec::new());
    for ident in &req.tasks {
        let id = task_id(ident)?;
        match ctx
            .store()
            .get_json::<Task>(&keys::task(&cluster, &id))
            .await
            .map_err(store_err)?
        {
            Some((t, _)) => out.push(task_wire(ctx, &t, with_tags)),
            None => failures.push(json!({
                "arn": ctx.arn(ResourceKind::Task, format!("{cluster}/{id}")),
                "reason": "MISSING",
            })),
        }
    }
    Ok(json!({ "tasks": out, "failures": failures }))
}

/// The request of `ListTasks`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksRequest {
    cluster: Option<String>,
    container_instance: Option<String>,
    family: Option<String>,
    started_by: Option<String>,
    service_name: Option<String>,
    desired_status: Option<String>,
    launch_type: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ECS `ListTasks`.
pub async fn list(ctx: &Ctx, req: ListTasksRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    load_active(ctx, &cluster).await?;
    let desired = DesiredStatus::parse_filter(req.desired_status.as_deref().unwrap_or("RUNNING"))?;
    let instance = req
        .container_instance
        .as_deref()
        .map(instance_id)
        .transpose()?;
    let group = req.service_name.as_ref().map(|s| format!("service:{s}"));
    // The task index's summaries (no task is read or decoded); an ARN is made for the page only.
    let items: Vec<(String, String)> = ctx
        .state
        .task_index
        .read(&ctx.state.store, |tasks| {
            tasks
                .of_cluster(&cluster)
                .filter(|(_, t)| t.desired_status == desired)
                .filter(|(_, t)| instance.is_none() || t.container_instance_id == instance)
                .filter(|(_, t)| req.family.as_ref().is_none_or(|f| *f == t.family))
                .filter(|(_, t)| req.started_by.is_none() || t.started_by == req.started_by)
                .filter(|(_, t)| group.is_none() || t.group == group)
                .filter(|(_, t)| req.launch_type.as_ref().is_none_or(|l| *l == t.launch_type))
                .map(|(k, t)| (k.clone(), t.id.clone()))
                .collect()
        })
        .await
        .map_err(store_err)?;
    let (ids, next) = paginate(items, req.max_results, req.next_token.as_deref(), false)?;
    let arns: Vec<String> = ids
        .iter()
        .map(|id| ctx.arn(ResourceKind::Task, format!("{cluster}/{id}")))
        .collect();
    Ok(page_json("taskArns", arns, next))
}

/// The request of `GetTaskLogsEndpoint`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsEndpointRequest {
    cluster: Option<String>,
    task: String,
}

/// Where a task's logs can be read: its agent's log endpoint and the token it accepts.
pub async fn logs_endpoint(ctx: &Ctx, req: LogsEndpointRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    let id = task_id(&req.task)?;
    load_active(ctx, &cluster).await?;
    let (t, _) = ctx
        .store()
        .get_json::<Task>(&keys::task(&cluster, &id))
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    let instance = match &t.container_instance_id {
        Some(i) => ctx
            .store()
            .get_json::<berth_model::ContainerInstance>(&keys::instance(&cluster, i))
            .await
            .map_err(store_err)?
            .map(|(i, _)| i),
        None => None,
    };
    let (instance_id, endpoint) = instance
        .and_then(|i| Some((i.id, i.agent_endpoint?)))
        .ok_or_else(|| ApiError::client("The task's host does not serve logs."))?;
    Ok(json!({
        "endpoint": endpoint,
        "token": crate::identity::logs_token(&ctx.state.config.join_secret, &cluster, &instance_id),
        "taskId": t.id,
        "containers": t.containers.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
    }))
}
