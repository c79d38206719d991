//! A group's hosts and history: DescribeAutoScalingInstances, SetInstanceProtection,
//! TerminateInstanceInAutoScalingGroup, DescribeScalingActivities.

use berth_model::hostgroup::{HostGroup, HostRecord, ScalingActivity};
use berth_model::lb::lenient::{list, opt_bool, opt_num};
use berth_model::{keys, ApiError};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{invalid, iso, load_group, page, validate_name};
use crate::{store_err, to_bytes, Ctx};

/// The lifecycle state of a host being taken out of service.
const TERMINATING: &str = "Terminating";

fn validate_instance_id(id: &str) -> Result<(), ApiError> {
    let ok = id.len() <= 19
        && id
            .strip_prefix("i-")
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("Invalid instance id: {id}")))
    }
}

/// Every visible host, by key.
pub(crate) async fn all_hosts(ctx: &Ctx) -> Result<Vec<(String, HostRecord, u64)>, ApiError> {
    let groups = ctx
        .store()
        .list_json::<HostGroup>(keys::HOST_GROUPS)
        .await
        .map_err(store_err)?;
    let hidden: Vec<String> = groups
        .into_iter()
        .filter(|(_, g, _)| g.managed_by.is_some())
        .map(|(_, g, _)| g.auto_scaling_group_name)
        .collect();
    Ok(ctx
        .store()
        .list_json::<HostRecord>(keys::HG_HOSTS)
        .await
        .map_err(store_err)?
        .into_iter()
        .filter(|(_, h, _)| !hidden.contains(&h.auto_scaling_group_name))
        .collect())
}

/// The request of `DescribeAutoScalingInstances`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstancesRequest {
    #[serde(default, deserialize_with = "list")]
    instance_ids: Vec<String>,
    next_token: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    max_records: Option<u32>,
}

/// The members of DescribeAutoScalingInstances.
pub const DESCRIBE_INSTANCES_MEMBERS: &[&str] = &["InstanceIds", "NextToken", "MaxRecords"];

/// `DescribeAutoScalingInstances`.
pub async fn describe_instances(
    ctx: &Ctx,
    req: DescribeInstancesRequest,
) -> Result<Value, ApiError> {
    for id in &req.instance_ids {
        validate_instance_id(id)?;
    }
    let items: Vec<(String, HostRecord)> = all_hosts(ctx)
        .await?
        .into_iter()
        .filter(|(_, h, _)| {
            req.instance_ids.is_empty() || req.instance_ids.contains(&h.instance_id)
        })
        .map(|(k, h, _)| (k, h))
        .collect();
    let (items, next) = page(items, req.next_token.as_deref(), req.max_records)?;
    let out: Vec<Value> = items
        .iter()
        .map(|h| {
            json!({
                "InstanceId": h.instance_id,
                "InstanceType": h.instance_type,
                "AutoScalingGroupName": h.auto_scaling_group_name,
                "AvailabilityZone": h.availability_zone,
                "LifecycleState": h.lifecycle_state,
                "HealthStatus": h.health_status.to_uppercase(),
                "LaunchConfigurationName": h.launch_configuration_name,
                "ProtectedFromScaleIn": h.protected_from_scale_in,
            })
        })
        .collect();
    Ok(json!({ "AutoScalingInstances": out, "NextToken": next }))
}

/// The request of `SetInstanceProtection`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProtectionRequest {
    #[serde(default, deserialize_with = "list")]
    instance_ids: Vec<String>,
    auto_scaling_group_name: String,
    #[serde(default, deserialize_with = "opt_bool")]
    protected_from_scale_in: Option<bool>,
}

/// `SetInstanceProtection`: every id must be a host of the group.
pub async fn set_protection(ctx: &Ctx, req: ProtectionRequest) -> Result<Value, ApiError> {
    let protect = req
        .protected_from_scale_in
        .ok_or_else(|| invalid("ProtectedFromScaleIn is required."))?;
    if req.instance_ids.is_empty() || req.instance_ids.len() > 50 {
        return Err(invalid("InstanceIds must name between 1 and 50 instances."));
    }
    let group = req.auto_scaling_group_name;
    load_group(ctx, &group).await?;
    for id in &req.instance_ids {
        validate_instance_id(id)?;
    }
    let mut retry = berth_store::Retry::new();
    'attempt: while retry.next().await {
        let mut txn = Txn::new();
        for id in &req.instance_ids {
            let key = keys::hg_host(&group, id);
            let Some((mut h, rev)) = ctx
                .store()
                .get_json::<HostRecord>(&key)
                .await
                .map_err(store_err)?
            else {
                return Err(invalid(format!(
                    "The instance {id} is not part of Auto Scaling group {group}."
                )));
            };
            h.protected_from_scale_in = protect;
            txn = txn
                .when_mod_revision(key.clone(), rev)
                .put(key, to_bytes(&h)?);
        }
        match ctx.store().txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } => return Ok(json!({})),
            TxnResult::Conflict { .. } => continue 'attempt,
        }
    }
    Err(ApiError::server(
        "The instances changed concurrently; retry.",
    ))
}

/// The request of `TerminateInstanceInAutoScalingGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TerminateRequest {
    instance_id: Option<String>,
    #[serde(default, deserialize_with = "list")]
    instance_ids: Vec<String>,
    auto_scaling_group_name: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    should_decrement_desired_capacity: Option<bool>,
}

/// The members of TerminateInstanceInAutoScalingGroup.
pub const TERMINATE_MEMBERS: &[&str] = &[
    "InstanceId",
    "InstanceIds",
    "AutoScalingGroupName",
    "ShouldDecrementDesiredCapacity",
];

/// `TerminateInstanceInAutoScalingGroup`: the host goes `Terminating` (the controller drains
/// and destroys it); with ShouldDecrementDesiredCapacity the group shrinks by one, else the
/// controller starts a replacement.
pub async fn terminate(ctx: &Ctx, req: TerminateRequest) -> Result<Value, ApiError> {
    let decrement = req
        .should_decrement_desired_capacity
        .ok_or_else(|| invalid("ShouldDecrementDesiredCapacity is required."))?;
    let mut ids: Vec<String> = req.instance_id.into_iter().collect();
    ids.extend(req.instance_ids);
    if ids.is_empty() {
        return Err(invalid("InstanceId is required."));
    }
    let mut activities = Vec::new();
    for id in &ids {
        validate_instance_id(id)?;
        activities
            .push(terminate_one(ctx, id, req.auto_scaling_group_name.as_deref(), decrement).await?);
    }
    let first = activities.first().cloned();
    Ok(json!({ "Activity": first, "Activities": activities }))
}

async fn terminate_one(
    ctx: &Ctx,
    id: &str,
    group: Option<&str>,
    decrement: bool,
) -> Result<Value, ApiError> {
    if let Some(g) = group {
        validate_name("autoScalingGroupName", g)?;
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let Some((hkey, mut h, hrev)) = all_hosts(ctx).await?.into_iter().find(|(_, h, _)| {
            h.instance_id == id && group.is_none_or(|g| g == h.auto_scaling_group_name)
        }) else {
            return Err(invalid(format!(
                "Instance Id not found - No managed instance found for instance ID: {id}"
            )));
        };
        let (mut g, grev) = load_group(ctx, &h.auto_scaling_group_name).await?;
        let now = ctx.now();
        let was = g.desired_capacity;
        if h.lifecycle_state == TERMINATING {
            return Err(invalid(format!(
                "The instance {id} is already terminating."
            )));
        }
        let mut txn = Txn::new();
        let cause = if decrement {
            if g.desired_capacity <= g.min_size {
                return Err(invalid(format!(
                    "Currently, desiredSize equals minSize ({}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.",
                    g.min_size
                )));
            }
            g.desired_capacity -= 1;
            let gkey = keys::host_group(&g.auto_scaling_group_name);
            txn = txn
                .when_mod_revision(gkey.clone(), grev)
                .put(gkey, to_bytes(&g)?);
            format!(
                "At {} instance {id} was taken out of service in response to a user request, shrinking the capacity from {was} to {}.",
                iso(now), g.desired_capacity
            )
        } else {
            format!(
                "At {} instance {id} was taken out of service in response to a user request.",
                iso(now)
            )
        };
        let activity = ScalingActivity {
            activity_id: uuid::Uuid::new_v4().to_string(),
            auto_scaling_group_name: g.auto_scaling_group_name.clone(),
            description: format!("Terminating EC2 instance: {id}"),
            cause,
            start_time: now,
            end_time: None,
            status_code: "InProgress".into(),
            status_message: None,
            progress: 0,
        };
        h.lifecycle_state = TERMINATING.into();
        h.terminating_since = Some(now);
        h.activity_id = Some(activity.activity_id.clone());
        txn = txn
            .when_mod_revision(hkey.clone(), hrev)
            .put(hkey, to_bytes(&h)?)
            .put(
                keys::hg_activity(&g.auto_scaling_group_name, now, &activity.activity_id),
                to_bytes(&activity)?,
            );
        if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            return Ok(activity_wire(&activity, &g.auto_scaling_group_arn));
        }
    }
    Err(ApiError::server("The group changed concurrently; retry."))
}

/// An activity in Auto Scaling's shape.
pub fn activity_wire(a: &ScalingActivity, group_arn: &str) -> Value {
    json!({
        "ActivityId": a.activity_id,
        "AutoScalingGroupName": a.auto_scaling_group_name,
        "AutoScalingGroupARN": group_arn,
        "Description": a.description,
        "Cause": a.cause,
        "StartTime": iso(a.start_time),
        "EndTime": a.end_time.map(iso),
        "StatusCode": a.status_code,
        "StatusMessage": a.status_message,
        "Progress": a.progress,
        "Details": "{}",
    })
}

/// The request of `DescribeScalingActivities`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActivitiesRequest {
    #[serde(default, deserialize_with = "list")]
    activity_ids: Vec<String>,
    auto_scaling_group_name: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    include_deleted_groups: Option<bool>,
    next_token: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    max_records: Option<u32>,
}

/// The members of DescribeScalingActivities berth honours.
pub const ACTIVITIES_MEMBERS: &[&str] = &[
    "ActivityIds",
    "AutoScalingGroupName",
    "IncludeDeletedGroups",
    "NextToken",
    "MaxRecords",
];

/// `DescribeScalingActivities`: newest first, of one group or of all.
pub async fn describe_activities(ctx: &Ctx, req: ActivitiesRequest) -> Result<Value, ApiError> {
    if req.include_deleted_groups == Some(true) {
        return Err(invalid(
            "berth does not support IncludeDeletedGroups=true: a deleted group's activities are deleted with it.",
        ));
    }
    let groups: Vec<HostGroup> = match &req.auto_scaling_group_name {
        Some(n) => vec![load_group(ctx, n).await?.0],
        None => ctx
            .store()
            .list_json::<HostGroup>(keys::HOST_GROUPS)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|(_, g, _)| g)
            .filter(|g| g.managed_by.is_none())
            .collect(),
    };
    let mut items: Vec<(String, Value)> = Vec::new();
    for g in &groups {
        let acts = ctx
            .store()
            .list_json::<ScalingActivity>(&keys::hg_activities_of(&g.auto_scaling_group_name))
            .await
            .map_err(store_err)?;
        for (_, a, _) in acts {
            if req.activity_ids.is_empty() || req.activity_ids.contains(&a.activity_id) {
                // Newest first: the sort key counts down from the far future.
                let micros = (a.start_time.max(0.0) * 1e6) as u64;
                let key = format!("{:020}/{}", u64::MAX - micros, a.activity_id);
                items.push((key, activity_wire(&a, &g.auto_scaling_group_arn)));
            }
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let (items, next) = page(items, req.next_token.as_deref(), req.max_records)?;
    Ok(json!({ "Activities": items, "NextToken": next }))
}
