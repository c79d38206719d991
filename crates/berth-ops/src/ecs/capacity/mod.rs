//! CreateCapacityProvider, DescribeCapacityProviders, UpdateCapacityProvider,
//! DeleteCapacityProvider, PutClusterCapacityProviders.
//!
//! A provider made here is a stored record over an existing host group (one provider per
//! group, as ECS enforces); `FARGATE` and `FARGATE_SPOT` are built in, never stored, and
//! described as ECS describes them. What makes a provider take effect is elsewhere: the
//! launcher places a provider's tasks only on its group's hosts, and managed scaling
//! (`berth_control::capacity::ManagedScaling`) sizes the group.

pub(crate) mod launch;
pub(crate) mod strategy;

use berth_control::capacity::{group_name_of, is_builtin, load_provider};
use berth_model::capacity::{
    AutoScalingGroupProvider, CapacityProvider, ManagedScaling, FARGATE, FARGATE_SPOT,
};
use berth_model::hostgroup::HostGroup;
use berth_model::{keys, validate_tags, ApiError, ErrorCode, Service, ServiceStatus, Tag};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{store_err, to_bytes, Ctx};

/// A provider name from a name or an ARN (`capacity-provider/NAME`).
pub(crate) fn provider_name(ident: &str) -> Result<String, ApiError> {
    let name = match ident.split_once(":capacity-provider/") {
        Some((prefix, name)) if prefix.starts_with("arn:") => name,
        _ => ident,
    };
    if name.is_empty()
        || name.len() > 255
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ApiError::invalid(format!(
            "The specified capacity provider name is invalid: {ident:?}. Up to 255 characters \
             are allowed, including letters (upper and lowercase), numbers, underscores, and \
             hyphens."
        )));
    }
    Ok(name.to_owned())
}

/// ECS refuses new provider names starting with `aws`, `ecs` or `fargate` (any case).
fn check_new_name(name: &str) -> Result<(), ApiError> {
    let lower = name.to_ascii_lowercase();
    if ["aws", "ecs", "fargate"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Err(ApiError::invalid(
            "The specified capacity provider name is invalid. The name cannot be prefixed \
             with \"aws\", \"ecs\", or \"fargate\".",
        ));
    }
    Ok(())
}

fn builtin(ctx: &Ctx, name: &str) -> CapacityProvider {
    CapacityProvider {
        capacity_provider_arn: provider_arn(ctx, name),
        name: name.to_owned(),
        status: "ACTIVE".into(),
        auto_scaling_group_provider: None,
        kind: Some(name.to_owned()),
        update_status: None,
        update_status_reason: None,
        tags: Vec::new(),
    }
}

fn provider_arn(ctx: &Ctx, name: &str) -> String {
    format!(
        "arn:aws:ecs:{}:{}:capacity-provider/{name}",
        ctx.region, ctx.state.config.account_id
    )
}

fn wire(p: &CapacityProvider, with_tags: bool) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or_default();
    if !with_tags {
        if let Some(o) = v.as_object_mut() {
            o.remove("tags");
        }
    }
    v
}

fn not_found(name: &str) -> ApiError {
    ApiError::invalid(format!(
        "The specified capacity provider does not exist. Specify a valid name or ARN and try \
         again. ({name})"
    ))
}

/// Applies ECS's defaults and limits to `managedScaling`.
fn scaling_with_defaults(m: Option<ManagedScaling>) -> Result<ManagedScaling, ApiError> {
    use berth_sched::capacity::defaults as d;
    let m = m.unwrap_or(ManagedScaling {
        status: None,
        target_capacity: None,
        minimum_scaling_step_size: None,
        maximum_scaling_step_size: None,
        instance_warmup_period: None,
    });
    let status = m.status.unwrap_or_else(|| "DISABLED".into());
    if status != "ENABLED" && status != "DISABLED" {
        return Err(ApiError::invalid(format!(
            "managedScaling.status must be ENABLED or DISABLED; got {status:?}."
        )));
    }
    let check = |what: &str, v: u32, lo: u32, hi: u32| {
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(ApiError::invalid(format!(
                "managedScaling.{what} must be between {lo} and {hi}; got {v}."
            )))
        }
    };
    let target = check(
        "targetCapacity",
        m.target_capacity.unwrap_or(d::TARGET_CAPACITY),
        1,
        100,
    )?;
    let min = check(
        "minimumScalingStepSize",
        m.minimum_scaling_step_size.unwrap_or(d::MIN_STEP),
        1,
        10_000,
    )?;
    let max = check(
        "maximumScalingStepSize",
        m.maximum_scaling_step_size.unwrap_or(d::MAX_STEP),
        1,
        10_000,
    )?;
    if min > max {
        return Err(ApiError::invalid(
            "managedScaling.minimumScalingStepSize cannot be greater than \
             managedScaling.maximumScalingStepSize.",
        ));
    }
    let warmup = check(
        "instanceWarmupPeriod",
        m.instance_warmup_period.unwrap_or(d::WARMUP_SECS),
        0,
        10_000,
    )?;
    Ok(ManagedScaling {
        status: Some(status),
        target_capacity: Some(target),
        minimum_scaling_step_size: Some(min),
        maximum_scaling_step_size: Some(max),
        instance_warmup_period: Some(warmup),
    })
}

fn enabled_flag(member: &str, v: Option<String>, default: &str) -> Result<String, ApiError> {
    let v = v.unwrap_or_else(|| default.to_owned());
    match v.as_str() {
        "ENABLED" | "DISABLED" => Ok(v),
        _ => Err(ApiError::invalid(format!(
            "{member} must be ENABLED or DISABLED; got {v:?}."
        ))),
    }
}

/// `managedDraining`: berth's host groups always drain a host's service tasks before they
/// terminate it, so only `ENABLED` (ECS's default) describes what happens.
fn draining(v: Option<String>) -> Result<String, ApiError> {
    let v = enabled_flag("managedDraining", v, "ENABLED")?;
    if v == "DISABLED" {
        return Err(ApiError::invalid(
            "managedDraining DISABLED is not supported: berth's host groups always drain a \
             host's service tasks before terminating it.",
        ));
    }
    Ok(v)
}

/// ECS's rule: managed termination protection needs managed scaling and a group whose new
/// instances are protected from scale-in.
fn check_termination_protection(
    asg: &AutoScalingGroupProvider,
    group: &HostGroup,
) -> Result<(), ApiError> {
    if asg.managed_termination_protection.as_deref() != Some("ENABLED") {
        return Ok(());
    }
    let scaling = asg
        .managed_scaling
        .as_ref()
        .and_then(|m| m.status.as_deref())
        == Some("ENABLED");
    if !scaling {
        return Err(ApiError::invalid(
            "The managed termination protection setting for the capacity provider is invalid. \
             To enable managed termination protection for a capacity provider, managed scaling \
             must also be enabled.",
        ));
    }
    if !group.new_instances_protected_from_scale_in {
        return Err(ApiError::invalid(
            "The managed termination protection setting for the capacity provider is invalid. \
             To enable managed termination protection for a capacity provider, the Auto \
             Scaling group must have instance protection from scale in enabled.",
        ));
    }
    Ok(())
}

/// The wire `autoScalingGroupProvider` of Create (Update's has no `autoScalingGroupArn`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireAsgProvider {
    auto_scaling_group_arn: Option<String>,
    managed_scaling: Option<ManagedScaling>,
    managed_termination_protection: Option<String>,
    managed_draining: Option<String>,
}

/// The request of `CreateCapacityProvider`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    name: String,
    auto_scaling_group_provider: Option<WireAsgProvider>,
    #[serde(default)]
    tags: Vec<Tag>,
    /// `cluster` and `managedInstancesProvider` (ECS Managed Instances): refused.
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// ECS `CreateCapacityProvider`.
pub async fn create(ctx: &Ctx, req: CreateRequest) -> Result<Value, ApiError> {
    if let Some((k, _)) = req.rest.iter().find(|(_, v)| !v.is_null()) {
        return Err(ApiError::invalid(format!(
            "{k} is not supported: berth has no ECS Managed Instances capacity providers; \
             use autoScalingGroupProvider over a host group."
        )));
    }
    let name = provider_name(&req.name)?;
    check_new_name(&name)?;
    validate_tags(&req.tags)?;
    let Some(wire_asg) = req.auto_scaling_group_provider else {
        return Err(ApiError::invalid(
            "autoScalingGroupProvider is required: berth's capacity providers are made over \
             host groups.",
        ));
    };
    let Some(asg_ident) = wire_asg.auto_scaling_group_arn.filter(|s| !s.is_empty()) else {
        return Err(ApiError::invalid(
            "autoScalingGroupProvider.autoScalingGroupArn is required.",
        ));
    };
    let group_name = group_name_of(&asg_ident).to_owned();
    let group = load_group(ctx, &group_name).await?;
    let asg = AutoScalingGroupProvider {
        auto_scaling_group_arn: group.auto_scaling_group_arn.clone(),
        managed_scaling: Some(scaling_with_defaults(wire_asg.managed_scaling)?),
        managed_termination_protection: Some(enabled_flag(
            "managedTerminationProtection",
            wire_asg.managed_termination_protection,
            "DISABLED",
        )?),
        managed_draining: Some(draining(wire_asg.managed_draining)?),
    };
    check_termination_protection(&asg, &group)?;
    let p = CapacityProvider {
        capacity_provider_arn: provider_arn(ctx, &name),
        name: name.clone(),
        status: "ACTIVE".into(),
        auto_scaling_group_provider: Some(asg),
        kind: Some("EC2_AUTOSCALING".into()),
        update_status: None,
        update_status_reason: None,
        tags: req.tags,
    };
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let all = ctx
            .store()
            .list_json::<CapacityProvider>(keys::CAPACITY_PROVIDERS)
            .await
            .map_err(store_err)?;
        let existing = all.iter().find(|(_, q, _)| q.name == name);
        if existing.is_some_and(|(_, q, _)| q.status == "ACTIVE") {
            return Err(ApiError::client(
                "The specified capacity provider already exists. To change the configuration \
                 of an existing capacity provider, update the capacity provider.",
            ));
        }
        let in_use = all.iter().find(|(_, q, _)| {
            q.status == "ACTIVE"
                && q.auto_scaling_group_provider
                    .as_ref()
                    .is_some_and(|a| group_name_of(&a.auto_scaling_group_arn) == group_name)
        });
        if let Some((_, q, _)) = in_use {
            return Err(ApiError::client(format!(
                "The specified Auto Scaling group is already in use by the capacity provider \
                 {}. An Auto Scaling group can be used by one capacity provider only.",
                q.name
            )));
        }
        let key = keys::capacity_provider(&name);
        let txn = Txn::new()
            .when_mod_revision(key.clone(), existing.map_or(0, |(_, _, rev)| *rev))
            .put(key, to_bytes(&p)?);
        if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            return Ok(json!({ "capacityProvider": wire(&p, true) }));
        }
    }
    Err(ApiError::server("Too many concurrent changes; retry."))
}

async fn load_group(ctx: &Ctx, name: &str) -> Result<HostGroup, ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && !name.contains('/')
        && !name.chars().any(char::is_control);
    let found = if valid {
        ctx.store()
            .get_json::<HostGroup>(&keys::host_group(name))
            .await
            .map_err(store_err)?
    } else {
        None
    };
    match found {
        Some((g, _)) if g.managed_by.is_none() => Ok(g),
        _ => Err(ApiError::invalid(format!(
            "The specified Auto Scaling group ARN or name is not valid or does not exist: \
             {name}. Specify a valid Auto Scaling group and try again."
        ))),
    }
}

/// The request of `DescribeCapacityProviders`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    capacity_providers: Option<Vec<String>>,
    #[serde(default)]
    include: Vec<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    /// Only the providers associated with this cluster.
    cluster: Option<String>,
}

/// ECS's page size of DescribeCapacityProviders (and its bound).
const DESCRIBE_PAGE: i64 = 10;

/// ECS `DescribeCapacityProviders`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let with_tags = match req.include.as_slice() {
        [] => false,
        [t] if t == "TAGS" => true,
        other => {
            return Err(ApiError::invalid(format!(
                "include may only contain TAGS; got {other:?}."
            )))
        }
    };
    if let Some(n) = req.max_results {
        if !(1..=DESCRIBE_PAGE).contains(&n) {
            return Err(ApiError::invalid(format!(
                "maxResults must be between 1 and {DESCRIBE_PAGE}; got {n}."
            )));
        }
    }
    let only: Option<Vec<String>> = match &req.cluster {
        Some(c) => {
            let name = super::clusters::cluster_name(Some(c))?;
            Some(
                super::clusters::load_active(ctx, &name)
                    .await?
                    .0
                    .capacity_providers,
            )
        }
        None => None,
    };
    let stored = ctx
        .store()
        .list_json::<CapacityProvider>(keys::CAPACITY_PROVIDERS)
        .await
        .map_err(store_err)?;
    let mut all: Vec<(String, CapacityProvider)> = vec![
        (format!(" 0{FARGATE}"), builtin(ctx, FARGATE)),
        (format!(" 1{FARGATE_SPOT}"), builtin(ctx, FARGATE_SPOT)),
    ];
    all.extend(stored.into_iter().map(|(k, p, _)| (k, p)));
    if let Some(only) = &only {
        all.retain(|(_, p)| only.contains(&p.name));
    }
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    match &req.capacity_providers {
        Some(names) if !names.is_empty() => {
            for ident in names {
                let name = provider_name(ident)?;
                match all.iter().find(|(_, p)| p.name == name) {
                    Some((k, p)) => found.push((k.clone(), p.clone())),
                    None => failures.push(json!({
                        "arn": provider_arn(ctx, &name), "reason": "MISSING"
                    })),
                }
            }
        }
        _ => {
            found = all
                .into_iter()
                .filter(|(_, p)| p.status == "ACTIVE")
                .collect()
        }
    }
    let (page, next) = crate::paging::paginate(
        found,
        Some(req.max_results.unwrap_or(DESCRIBE_PAGE)),
        req.next_token.as_deref(),
        false,
    )?;
    let mut out = json!({
        "capacityProviders": page.iter().map(|p| wire(p, with_tags)).collect::<Vec<_>>(),
        "failures": failures,
    });
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}

/// Update's `autoScalingGroupProvider` (no group: a provider stays on its group).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireAsgUpdate {
    managed_scaling: Option<ManagedScaling>,
    managed_termination_protection: Option<String>,
    managed_draining: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// The request of `UpdateCapacityProvider`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRequest {
    name: String,
    auto_scaling_group_provider: Option<WireAsgUpdate>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// ECS `UpdateCapacityProvider`.
pub async fn update(ctx: &Ctx, req: UpdateRequest) -> Result<Value, ApiError> {
    if let Some((k, _)) = req.rest.iter().find(|(_, v)| !v.is_null()) {
        return Err(ApiError::invalid(format!(
            "{k} is not supported: berth has no ECS Managed Instances capacity providers."
        )));
    }
    let name = provider_name(&req.name)?;
    if is_builtin(&name) {
        return Err(ApiError::invalid(format!(
            "The capacity provider {name} is managed by berth and cannot be updated."
        )));
    }
    let Some(upd) = req.auto_scaling_group_provider else {
        return Err(ApiError::invalid(
            "autoScalingGroupProvider is required for a capacity provider over a host group.",
        ));
    };
    if let Some((k, _)) = upd.rest.iter().next() {
        return Err(ApiError::invalid(format!(
            "autoScalingGroupProvider.{k} cannot be updated: a capacity provider stays on its \
             Auto Scaling group."
        )));
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let Some((mut p, rev)) = load_provider(ctx.store(), &name).await? else {
            return Err(not_found(&name));
        };
        let Some(asg) = p.auto_scaling_group_provider.as_mut() else {
            return Err(not_found(&name));
        };
        if let Some(m) = upd.managed_scaling.clone() {
            // Members left out keep ECS's defaults, as a new provider's do.
            asg.managed_scaling = Some(scaling_with_defaults(Some(m))?);
        }
        if let Some(t) = upd.managed_termination_protection.clone() {
            asg.managed_termination_protection =
                Some(enabled_flag("managedTerminationProtection", Some(t), "")?);
        }
        if let Some(d) = upd.managed_draining.clone() {
            asg.managed_draining = Some(draining(Some(d))?);
        }
        let group = load_group(ctx, group_name_of(&asg.auto_scaling_group_arn)).await?;
        check_termination_protection(asg, &group)?;
        p.update_status = Some("UPDATE_COMPLETE".into());
        let key = keys::capacity_provider(&name);
        let txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .put(key, to_bytes(&p)?);
        if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            return Ok(json!({ "capacityProvider": wire(&p, false) }));
        }
    }
    Err(ApiError::server("Too many concurrent changes; retry."))
}

/// The clusters that list provider `name`, and the services whose strategy names it.
async fn users(ctx: &Ctx, name: &str) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let clusters = ctx
        .store()
        .list_json::<berth_model::Cluster>(keys::CLUSTERS)
        .await
        .map_err(store_err)?
        .into_iter()
        .filter(|(_, c, _)| {
            c.status == berth_model::ClusterStatus::Active
                && c.capacity_providers.iter().any(|p| p == name)
        })
        .map(|(_, c, _)| c.cluster_name)
        .collect();
    let services = ctx
        .store()
        .list_json::<Service>("services/")
        .await
        .map_err(store_err)?
        .into_iter()
        .filter(|(_, s, _)| s.status != ServiceStatus::Inactive && service_uses(s, name))
        .map(|(_, s, _)| s.name)
        .collect();
    Ok((clusters, services))
}

/// Whether a service's strategy names provider `name`.
pub(crate) fn service_uses(s: &Service, name: &str) -> bool {
    s.capacity_provider_strategy
        .iter()
        .any(|i| i.capacity_provider == name)
}

/// The request of `DeleteCapacityProvider`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRequest {
    capacity_provider: String,
    cluster: Option<String>,
}

/// ECS `DeleteCapacityProvider`: refused while a cluster or a service uses the provider.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    if req.cluster.as_deref().is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::invalid(
            "cluster is not supported: berth has no cluster-scoped (Managed Instances) \
             capacity providers.",
        ));
    }
    let name = provider_name(&req.capacity_provider)?;
    if is_builtin(&name) {
        return Err(ApiError::invalid(format!(
            "The capacity provider {name} is reserved and cannot be deleted."
        )));
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let Some((mut p, rev)) = load_provider(ctx.store(), &name).await? else {
            return Err(not_found(&name));
        };
        let (clusters, services) = users(ctx, &name).await?;
        if !services.is_empty() {
            return Err(ApiError::new(
                ErrorCode::ClientException,
                format!(
                    "The capacity provider cannot be deleted because it is in use by \
                     services: {}. Update the services to use a different capacity provider \
                     strategy and try again.",
                    services.join(", ")
                ),
            ));
        }
        if !clusters.is_empty() {
            return Err(ApiError::new(
                ErrorCode::ClientException,
                format!(
                    "The capacity provider cannot be deleted because it is associated with \
                     clusters: {}. Remove it with PutClusterCapacityProviders and try again.",
                    clusters.join(", ")
                ),
            ));
        }
        p.status = "INACTIVE".into();
        p.update_status = Some("DELETE_COMPLETE".into());
        let key = keys::capacity_provider(&name);
        let txn = Txn::new().when_mod_revision(key.clone(), rev).delete(key);
        if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            return Ok(json!({ "capacityProvider": wire(&p, false) }));
        }
    }
    Err(ApiError::server("Too many concurrent changes; retry."))
}

/// Checks that every provider of `names` exists (stored and ACTIVE, or built in); returns the
/// names normalised.
pub(crate) async fn existing(ctx: &Ctx, names: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for ident in names {
        let name = provider_name(ident)?;
        if !is_builtin(&name) && load_provider(ctx.store(), &name).await?.is_none() {
            return Err(not_found(&name));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Host group name → the name of the (ACTIVE) provider over it.
pub(crate) async fn providers_by_group(
    ctx: &Ctx,
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    Ok(ctx
        .store()
        .list_json::<CapacityProvider>(keys::CAPACITY_PROVIDERS)
        .await
        .map_err(store_err)?
        .into_iter()
        .filter(|(_, p, _)| p.status == "ACTIVE")
        .filter_map(|(_, p, _)| {
            let asg = p.auto_scaling_group_provider?;
            Some((
                group_name_of(&asg.auto_scaling_group_arn).to_owned(),
                p.name,
            ))
        })
        .collect())
}

/// The request of `PutClusterCapacityProviders`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutClusterRequest {
    cluster: String,
    capacity_providers: Vec<String>,
    default_capacity_provider_strategy: Vec<strategy::WireItem>,
}

/// ECS `PutClusterCapacityProviders`: replaces a cluster's providers and default strategy;
/// refused for a provider a service of the cluster still uses.
pub async fn put_cluster(ctx: &Ctx, req: PutClusterRequest) -> Result<Value, ApiError> {
    let name = super::clusters::cluster_name(Some(&req.cluster))?;
    let providers = existing(ctx, &req.capacity_providers).await?;
    let default = strategy::parse(
        "defaultCapacityProviderStrategy",
        &req.default_capacity_provider_strategy,
    )?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut c, rev) = super::clusters::load_active(ctx, &name).await?;
        c.capacity_providers = providers.clone();
        strategy::check_associated("defaultCapacityProviderStrategy", &c, &default)?;
        let services = ctx
            .store()
            .list_json::<Service>(&keys::services_of(&name))
            .await
            .map_err(store_err)?;
        for (_, s, _) in services
            .iter()
            .filter(|(_, s, _)| s.status != ServiceStatus::Inactive)
        {
            if let Some(i) = s
                .capacity_provider_strategy
                .iter()
                .find(|i| !providers.contains(&i.capacity_provider))
            {
                return Err(ApiError::new(
                    ErrorCode::ResourceInUseException,
                    format!(
                        "The specified capacity provider is in use and cannot be removed. \
                         ({} is used by service {})",
                        i.capacity_provider, s.name
                    ),
                ));
            }
        }
        c.default_capacity_provider_strategy = strategy::to_values(&default);
        if super::clusters::put_cluster(ctx, &c, rev).await? {
            return super::clusters::answer(ctx, &c).await;
        }
    }
    Err(ApiError::server("Too many concurrent changes; retry."))
}
