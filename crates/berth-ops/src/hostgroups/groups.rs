//! CreateAutoScalingGroup, UpdateAutoScalingGroup, DescribeAutoScalingGroups,
//! SetDesiredCapacity, DeleteAutoScalingGroup.

use berth_model::hostgroup::{HostGroup, HostRecord, LaunchConfiguration};
use berth_model::lb::lenient::{list, opt_bool, opt_num};
use berth_model::{keys, ApiError, ErrorCode, Tag};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{arn, hosts_of, invalid, iso, load_group, page, validate_name};
use crate::{store_err, to_bytes, Ctx};

/// The tag naming a group's host provider (`process`, `docker`, `command`).
pub const PROVIDER_TAG: &str = "berth:provider";
/// The host providers a group may name.
pub const PROVIDERS: &[&str] = &["process", "docker", "command"];
/// The termination policies berth implements.
pub const TERMINATION_POLICIES: &[&str] = &[
    "Default",
    "OldestInstance",
    "NewestInstance",
    "OldestLaunchConfiguration",
    "ClosestToNextInstanceHour",
];
/// `Status` of a group being deleted with ForceDelete.
pub const DELETING: &str = "Delete in progress";

/// One tag of a request.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagIn {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default, deserialize_with = "opt_bool")]
    propagate_at_launch: Option<bool>,
    resource_id: Option<String>,
    resource_type: Option<String>,
}

/// The members of CreateAutoScalingGroup berth honours.
pub const CREATE_MEMBERS: &[&str] = &[
    "AutoScalingGroupName",
    "LaunchConfigurationName",
    "MinSize",
    "MaxSize",
    "DesiredCapacity",
    "DefaultCooldown",
    "AvailabilityZones",
    "HealthCheckType",
    "HealthCheckGracePeriod",
    "TerminationPolicies",
    "NewInstancesProtectedFromScaleIn",
    "Tags",
];

/// The request of `CreateAutoScalingGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    auto_scaling_group_name: String,
    launch_configuration_name: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    min_size: Option<u32>,
    #[serde(default, deserialize_with = "opt_num")]
    max_size: Option<u32>,
    #[serde(default, deserialize_with = "opt_num")]
    desired_capacity: Option<u32>,
    #[serde(default, deserialize_with = "opt_num")]
    default_cooldown: Option<u32>,
    #[serde(default, deserialize_with = "list")]
    availability_zones: Vec<String>,
    health_check_type: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    health_check_grace_period: Option<u32>,
    #[serde(default, deserialize_with = "list")]
    termination_policies: Vec<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    new_instances_protected_from_scale_in: Option<bool>,
    #[serde(default, deserialize_with = "list")]
    tags: Vec<TagIn>,
}

fn check_sizes(min: u32, max: u32, desired: u32) -> Result<(), ApiError> {
    if min > max {
        return Err(invalid(format!(
            "Max bound, {max}, must be greater than or equal to min bound, {min}"
        )));
    }
    if desired < min || desired > max {
        return Err(invalid(format!(
            "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
        )));
    }
    Ok(())
}

fn check_health_type(t: &str) -> Result<(), ApiError> {
    // ELB and VPC_LATTICE checks need a load balancer attachment berth does not make.
    if t != "EC2" {
        return Err(invalid(format!(
            "Invalid HealthCheckType {t:?}: berth supports EC2 (the host and its agent answer)."
        )));
    }
    Ok(())
}

fn check_policies(p: &[String]) -> Result<(), ApiError> {
    for x in p {
        if !TERMINATION_POLICIES.contains(&x.as_str()) {
            return Err(invalid(format!(
                "Termination policy {x} is not supported; valid: {}",
                TERMINATION_POLICIES.join(", ")
            )));
        }
    }
    Ok(())
}

/// The cluster hosts join: `ECS_CLUSTER=name` in the decoded user data, as the ECS agent reads
/// it from `/etc/ecs/ecs.config`; `default` otherwise.
pub fn cluster_from_user_data(user_data: Option<&str>) -> String {
    user_data
        .and_then(berth_control::hostgroup::decode_user_data)
        .and_then(|text| {
            text.lines().rev().find_map(|l| {
                let l = l
                    .trim()
                    .trim_start_matches("echo ")
                    .trim_matches(['"', '\'']);
                let (_, rest) = l.split_once("ECS_CLUSTER=")?;
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                    .collect();
                (!name.is_empty()).then_some(name)
            })
        })
        .unwrap_or_else(|| "default".to_owned())
}

async fn load_lc(ctx: &Ctx, name: &str) -> Result<(LaunchConfiguration, u64), ApiError> {
    validate_name("launchConfigurationName", name)?;
    ctx.store()
        .get_json::<LaunchConfiguration>(&keys::hg_launch_config(name))
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            invalid(format!(
                "Launch configuration name not found - Launch configuration {name} not found"
            ))
        })
}

/// The group's zones: names in the request's region (berth has no subnets to place hosts in,
/// so `VPCZoneIdentifier` is refused by name).
fn zones(ctx: &Ctx, zones: Vec<String>) -> Result<Vec<String>, ApiError> {
    if zones.is_empty() {
        return Err(invalid(
            "At least one Availability Zone or VPC Subnet is required.",
        ));
    }
    for z in &zones {
        if !z.starts_with(&ctx.region) {
            return Err(invalid(format!("Invalid Availability Zone: {z}")));
        }
    }
    Ok(zones)
}

/// Names starting `berth-fargate-` are berth's managed (FARGATE) groups and their launch
/// configurations: a user's group or configuration of such a name would be taken for one.
pub(crate) fn reserved(name: &str) -> Result<(), ApiError> {
    if berth_model::fargate::is_managed_group_name(name) {
        return Err(invalid(format!(
            "The name {name} is reserved: names starting with '{}' are berth's FARGATE capacity.",
            berth_model::fargate::MANAGED_GROUP_PREFIX
        )));
    }
    Ok(())
}

/// `CreateAutoScalingGroup`.
pub async fn create(ctx: &Ctx, req: CreateRequest) -> Result<Value, ApiError> {
    let name = req.auto_scaling_group_name;
    validate_name("autoScalingGroupName", &name)?;
    reserved(&name)?;
    let lc_name = req.launch_configuration_name.ok_or_else(|| {
        invalid("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
    })?;
    let (lc, lc_rev) = load_lc(ctx, &lc_name).await?;
    let (min, max) = match (req.min_size, req.max_size) {
        (Some(a), Some(b)) => (a, b),
        _ => return Err(invalid("MinSize and MaxSize are required.")),
    };
    let desired = req.desired_capacity.unwrap_or(min);
    check_sizes(min, max, desired)?;
    let health_check_type = req.health_check_type.unwrap_or_else(|| "EC2".into());
    check_health_type(&health_check_type)?;
    check_policies(&req.termination_policies)?;
    let zones = zones(ctx, req.availability_zones)?;
    let mut provider = String::new();
    let mut tags = Vec::new();
    for t in req.tags {
        if let Some(rt) = &t.resource_type {
            if rt != "auto-scaling-group" {
                return Err(invalid(format!(
                    "Invalid ResourceType {rt:?}: auto-scaling-group"
                )));
            }
        }
        if t.resource_id.as_deref().is_some_and(|r| r != name) {
            return Err(invalid("A tag's ResourceId must be the group's name."));
        }
        if t.propagate_at_launch == Some(true) {
            return Err(invalid(format!(
                "berth does not propagate tags to hosts: tag {} has PropagateAtLaunch=true",
                t.key
            )));
        }
        if t.key == PROVIDER_TAG {
            if !PROVIDERS.contains(&t.value.as_str()) {
                return Err(invalid(format!(
                    "Tag {PROVIDER_TAG} must name a host provider: {}",
                    PROVIDERS.join(", ")
                )));
            }
            provider = t.value.clone();
        }
        tags.push(Tag {
            key: t.key,
            value: t.value,
        });
    }
    berth_model::validate_tags(&tags)?;
    let group = HostGroup {
        auto_scaling_group_arn: arn(
            ctx,
            &format!(
                "autoScalingGroup:{}:autoScalingGroupName/{name}",
                uuid::Uuid::new_v4()
            ),
        ),
        auto_scaling_group_name: name.clone(),
        launch_configuration_name: lc_name.clone(),
        min_size: min,
        max_size: max,
        desired_capacity: desired,
        default_cooldown: req.default_cooldown.unwrap_or(300),
        health_check_grace_period: req.health_check_grace_period.unwrap_or(0),
        health_check_type,
        termination_policies: if req.termination_policies.is_empty() {
            vec!["Default".into()]
        } else {
            req.termination_policies
        },
        new_instances_protected_from_scale_in: req
            .new_instances_protected_from_scale_in
            .unwrap_or(false),
        availability_zones: zones,
        cluster: cluster_from_user_data(lc.user_data.as_deref()),
        provider,
        managed_by: None,
        status: None,
        tags,
        created_time: ctx.now(),
    };
    let key = keys::host_group(&name);
    let lc_key = keys::hg_launch_config(&lc_name);
    // Rewriting the launch configuration as read makes a concurrent delete of it lose its race.
    let txn = Txn::new()
        .when_absent(key.clone())
        .when_mod_revision(lc_key.clone(), lc_rev)
        .put(key.clone(), to_bytes(&group)?)
        .put(lc_key, to_bytes(&lc)?);
    match ctx.store().txn(txn).await.map_err(store_err)? {
        TxnResult::Committed { .. } => Ok(json!({})),
        TxnResult::Conflict { .. } => {
            if ctx.store().get(&key).await.map_err(store_err)?.is_some() {
                Err(ApiError::new(
                    ErrorCode::AsgAlreadyExists,
                    format!("AutoScalingGroup by this name already exists - A group with the name {name} already exists"),
                ))
            } else {
                Err(ApiError::server(
                    "The launch configuration changed meanwhile; retry.",
                ))
            }
        }
    }
}

/// The members of UpdateAutoScalingGroup berth honours.
pub const UPDATE_MEMBERS: &[&str] = &[
    "AutoScalingGroupName",
    "LaunchConfigurationName",
    "MinSize",
    "MaxSize",
    "DesiredCapacity",
    "DefaultCooldown",
    "AvailabilityZones",
    "HealthCheckType",
    "HealthCheckGracePeriod",
    "TerminationPolicies",
    "NewInstancesProtectedFromScaleIn",
];

/// The request of `UpdateAutoScalingGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateRequest {
    auto_scaling_group_name: String,
    launch_configuration_name: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    min_size: Option<u32>,
    #[serde(default, deserialize_with = "opt_num")]
    max_size: Option<u32>,
    #[serde(default, deserialize_with = "opt_num")]
    desired_capacity: Option<u32>,
    #[serde(default, deserialize_with = "opt_num")]
    default_cooldown: Option<u32>,
    #[serde(default, deserialize_with = "list")]
    availability_zones: Vec<String>,
    health_check_type: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    health_check_grace_period: Option<u32>,
    #[serde(default, deserialize_with = "list")]
    termination_policies: Vec<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    new_instances_protected_from_scale_in: Option<bool>,
}

/// `UpdateAutoScalingGroup`. A new MinSize above the desired capacity raises it, a new
/// MaxSize below it lowers it, as Auto Scaling does.
pub async fn update(ctx: &Ctx, req: UpdateRequest) -> Result<Value, ApiError> {
    let name = req.auto_scaling_group_name.clone();
    let lc = match &req.launch_configuration_name {
        Some(n) => Some(load_lc(ctx, n).await?),
        None => None,
    };
    if let Some(t) = &req.health_check_type {
        check_health_type(t)?;
    }
    check_policies(&req.termination_policies)?;
    let new_zones = if req.availability_zones.is_empty() {
        None
    } else {
        Some(zones(ctx, req.availability_zones.clone())?)
    };
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut g, rev) = load_group(ctx, &name).await?;
        if g.status.is_some() {
            return Err(ApiError::new(
                ErrorCode::AsgScalingActivityInProgress,
                "The Auto Scaling group is being deleted.",
            ));
        }
        let min = req.min_size.unwrap_or(g.min_size);
        let max = req.max_size.unwrap_or(g.max_size);
        let desired = req
            .desired_capacity
            .unwrap_or_else(|| g.desired_capacity.clamp(min, max.max(min)));
        check_sizes(min, max, desired)?;
        (g.min_size, g.max_size, g.desired_capacity) = (min, max, desired);
        if let Some((lc, _)) = &lc {
            g.launch_configuration_name = lc.launch_configuration_name.clone();
            g.cluster = cluster_from_user_data(lc.user_data.as_deref());
        }
        if let Some(c) = req.default_cooldown {
            g.default_cooldown = c;
        }
        if let Some(t) = &req.health_check_type {
            g.health_check_type = t.clone();
        }
        if let Some(p) = req.health_check_grace_period {
            g.health_check_grace_period = p;
        }
        if !req.termination_policies.is_empty() {
            g.termination_policies = req.termination_policies.clone();
        }
        if let Some(p) = req.new_instances_protected_from_scale_in {
            g.new_instances_protected_from_scale_in = p;
        }
        if let Some(z) = &new_zones {
            g.availability_zones = z.clone();
        }
        let key = keys::host_group(&name);
        let mut txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .put(key, to_bytes(&g)?);
        if let Some((lc, lc_rev)) = &lc {
            let k = keys::hg_launch_config(&lc.launch_configuration_name);
            txn = txn
                .when_mod_revision(k.clone(), *lc_rev)
                .put(k, to_bytes(lc)?);
        }
        if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            return Ok(json!({}));
        }
    }
    Err(ApiError::server("The group changed concurrently; retry."))
}

/// The request of `SetDesiredCapacity`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetDesiredRequest {
    auto_scaling_group_name: String,
    #[serde(deserialize_with = "opt_num")]
    desired_capacity: Option<u32>,
    #[serde(default, deserialize_with = "opt_bool")]
    honor_cooldown: Option<bool>,
}

/// `SetDesiredCapacity`: within MinSize..=MaxSize.
pub async fn set_desired(ctx: &Ctx, req: SetDesiredRequest) -> Result<Value, ApiError> {
    let desired = req
        .desired_capacity
        .ok_or_else(|| invalid("DesiredCapacity is required."))?;
    if req.honor_cooldown == Some(true) {
        return Err(invalid(
            "berth does not support HonorCooldown=true: it keeps no cooldown between scaling activities.",
        ));
    }
    let name = req.auto_scaling_group_name;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut g, rev) = load_group(ctx, &name).await?;
        if g.status.is_some() {
            return Err(ApiError::new(
                ErrorCode::AsgScalingActivityInProgress,
                "The Auto Scaling group is being deleted.",
            ));
        }
        if desired > g.max_size {
            return Err(invalid(format!(
                "New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.",
                g.max_size
            )));
        }
        if desired < g.min_size {
            return Err(invalid(format!(
                "New SetDesiredCapacity value {desired} is below min value {} for the AutoScalingGroup.",
                g.min_size
            )));
        }
        if g.desired_capacity == desired {
            return Ok(json!({}));
        }
        g.desired_capacity = desired;
        let key = keys::host_group(&name);
        let txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .put(key, to_bytes(&g)?);
        if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            return Ok(json!({}));
        }
    }
    Err(ApiError::server("The group changed concurrently; retry."))
}

/// A host as a group's `Instances` member shows it.
pub fn instance_wire(h: &HostRecord) -> Value {
    json!({
        "InstanceId": h.instance_id,
        "InstanceType": h.instance_type,
        "AvailabilityZone": h.availability_zone,
        "LifecycleState": h.lifecycle_state,
        "HealthStatus": h.health_status,
        "LaunchConfigurationName": h.launch_configuration_name,
        "ProtectedFromScaleIn": h.protected_from_scale_in,
    })
}

/// A group in Auto Scaling's shape.
pub fn wire(g: &HostGroup, hosts: &[HostRecord]) -> Value {
    json!({
        "AutoScalingGroupName": g.auto_scaling_group_name,
        "AutoScalingGroupARN": g.auto_scaling_group_arn,
        "LaunchConfigurationName": g.launch_configuration_name,
        "MinSize": g.min_size,
        "MaxSize": g.max_size,
        "DesiredCapacity": g.desired_capacity,
        "DefaultCooldown": g.default_cooldown,
        "AvailabilityZones": g.availability_zones,
        "LoadBalancerNames": [],
        "TargetGroupARNs": [],
        "HealthCheckType": g.health_check_type,
        "HealthCheckGracePeriod": g.health_check_grace_period,
        "Instances": hosts.iter().map(instance_wire).collect::<Vec<_>>(),
        "CreatedTime": iso(g.created_time),
        "SuspendedProcesses": [],
        "EnabledMetrics": [],
        "Status": g.status,
        "Tags": g.tags.iter().map(|t| json!({
            "ResourceId": g.auto_scaling_group_name,
            "ResourceType": "auto-scaling-group",
            "Key": t.key,
            "Value": t.value,
            "PropagateAtLaunch": false,
        })).collect::<Vec<_>>(),
        "TerminationPolicies": g.termination_policies,
        "NewInstancesProtectedFromScaleIn": g.new_instances_protected_from_scale_in,
    })
}

/// The members of DescribeAutoScalingGroups berth honours.
pub const DESCRIBE_MEMBERS: &[&str] = &[
    "AutoScalingGroupNames",
    "IncludeInstances",
    "NextToken",
    "MaxRecords",
];

/// The request of `DescribeAutoScalingGroups`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    #[serde(default, deserialize_with = "list")]
    auto_scaling_group_names: Vec<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    include_instances: Option<bool>,
    next_token: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    max_records: Option<u32>,
}

/// `DescribeAutoScalingGroups` (with each group's instances unless `IncludeInstances=false`).
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    for n in &req.auto_scaling_group_names {
        validate_name("autoScalingGroupNames", n)?;
    }
    let all = ctx
        .store()
        .list_json::<HostGroup>(keys::HOST_GROUPS)
        .await
        .map_err(store_err)?;
    let items: Vec<(String, HostGroup)> = all
        .into_iter()
        .filter(|(_, g, _)| g.managed_by.is_none())
        .filter(|(_, g, _)| {
            req.auto_scaling_group_names.is_empty()
                || req
                    .auto_scaling_group_names
                    .contains(&g.auto_scaling_group_name)
        })
        .map(|(k, g, _)| (k, g))
        .collect();
    let (items, next) = page(items, req.next_token.as_deref(), req.max_records)?;
    let mut out = Vec::new();
    for g in &items {
        let hosts = if req.include_instances == Some(false) {
            Vec::new()
        } else {
            hosts_of(ctx, &g.auto_scaling_group_name).await?
        };
        out.push(wire(g, &hosts));
    }
    Ok(json!({ "AutoScalingGroups": out, "NextToken": next }))
}

/// The request of `DeleteAutoScalingGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    auto_scaling_group_name: String,
    #[serde(default, deserialize_with = "opt_bool")]
    force_delete: Option<bool>,
}

/// `DeleteAutoScalingGroup`: an empty group goes at once; one with hosts only with
/// ForceDelete, which sets it `Delete in progress` for the controller to terminate its hosts
/// and then delete it.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    let name = req.auto_scaling_group_name;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut g, rev) = load_group(ctx, &name).await?;
        let hosts = hosts_of(ctx, &name).await?;
        let key = keys::host_group(&name);
        let txn = if hosts.is_empty() && g.status.is_none() && g.desired_capacity == 0 {
            let (acts, _) = ctx
                .store()
                .list(&keys::hg_activities_of(&name))
                .await
                .map_err(store_err)?;
            let mut txn = Txn::new().when_mod_revision(key.clone(), rev).delete(key);
            for kv in acts {
                txn = txn.delete(kv.key);
            }
            txn
        } else if req.force_delete == Some(true) {
            if g.status.is_some() {
                return Ok(json!({}));
            }
            g.status = Some(DELETING.into());
            g.desired_capacity = 0;
            g.min_size = 0;
            Txn::new()
                .when_mod_revision(key.clone(), rev)
                .put(key, to_bytes(&g)?)
        } else if g.status.is_some() {
            return Err(ApiError::new(
                ErrorCode::AsgScalingActivityInProgress,
                "An AutoScalingGroup is being deleted; its instances are terminating.",
            ));
        } else {
            return Err(ApiError::new(
                ErrorCode::ElbResourceInUse,
                "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.",
            ));
        };
        if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            return Ok(json!({}));
        }
    }
    Err(ApiError::server("The group changed concurrently; retry."))
}
