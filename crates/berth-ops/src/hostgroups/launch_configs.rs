//! CreateLaunchConfiguration, DescribeLaunchConfigurations, DeleteLaunchConfiguration.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use berth_model::hostgroup::{instance_type_size, HostGroup, LaunchConfiguration};
use berth_model::lb::lenient::{list, opt_num};
use berth_model::{keys, ApiError, ErrorCode};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{arn, invalid, iso, page, validate_name};
use crate::{store_err, to_bytes, Ctx};

/// EC2's limit on user data: 16 KiB before base64 (21,847 characters after).
const MAX_USER_DATA: usize = 21_847;

/// The members of CreateLaunchConfiguration berth honours.
pub const CREATE_MEMBERS: &[&str] = &[
    "LaunchConfigurationName",
    "ImageId",
    "InstanceType",
    "UserData",
];

/// The request of `CreateLaunchConfiguration`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    launch_configuration_name: String,
    image_id: Option<String>,
    instance_type: Option<String>,
    user_data: Option<String>,
}

/// `CreateLaunchConfiguration`.
pub async fn create(ctx: &Ctx, req: CreateRequest) -> Result<Value, ApiError> {
    let name = req.launch_configuration_name;
    validate_name("launchConfigurationName", &name)?;
    super::groups::reserved(&name)?;
    let image_id = req.image_id.filter(|i| !i.is_empty()).ok_or_else(|| {
        invalid("Valid requests must contain either the ImageId or the InstanceId parameter.")
    })?;
    if image_id.len() > 255 || image_id.chars().any(char::is_control) {
        return Err(invalid(format!("Invalid image id: {image_id}")));
    }
    let instance_type = req.instance_type.filter(|t| !t.is_empty()).ok_or_else(|| {
        invalid("Valid requests must contain either the InstanceType or the InstanceId parameter.")
    })?;
    if instance_type_size(&instance_type).is_none() {
        return Err(invalid(format!(
            "The instance type '{instance_type}' is not supported. berth knows t2, t3, m5, c5 and r5 sizes."
        )));
    }
    if let Some(u) = &req.user_data {
        if u.len() > MAX_USER_DATA {
            return Err(invalid(format!(
                "1 validation error detected: Value at 'userData' failed to satisfy constraint: Member must have length less than or equal to {MAX_USER_DATA}"
            )));
        }
        if STANDARD.decode(u.trim()).is_err() {
            return Err(invalid("Invalid BASE64 encoding of user data."));
        }
    }
    let lc = LaunchConfiguration {
        launch_configuration_arn: arn(
            ctx,
            &format!(
                "launchConfiguration:{}:launchConfigurationName/{name}",
                uuid::Uuid::new_v4()
            ),
        ),
        launch_configuration_name: name.clone(),
        image_id,
        instance_type,
        user_data: req.user_data.filter(|u| !u.is_empty()),
        created_time: ctx.now(),
    };
    let key = keys::hg_launch_config(&name);
    let txn = Txn::new().when_absent(key.clone()).put(key, to_bytes(&lc)?);
    match ctx.store().txn(txn).await.map_err(store_err)? {
        TxnResult::Committed { .. } => Ok(json!({})),
        TxnResult::Conflict { .. } => Err(ApiError::new(
            ErrorCode::AsgAlreadyExists,
            format!("Launch Configuration by this name already exists - A launch configuration already exists with the name {name}"),
        )),
    }
}

/// The request of `DescribeLaunchConfigurations`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    #[serde(default, deserialize_with = "list")]
    launch_configuration_names: Vec<String>,
    next_token: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    max_records: Option<u32>,
}

/// The members of DescribeLaunchConfigurations.
pub const DESCRIBE_MEMBERS: &[&str] = &["LaunchConfigurationNames", "NextToken", "MaxRecords"];

/// A launch configuration in Auto Scaling's shape.
pub fn wire(lc: &LaunchConfiguration) -> Value {
    json!({
        "LaunchConfigurationName": lc.launch_configuration_name,
        "LaunchConfigurationARN": lc.launch_configuration_arn,
        "ImageId": lc.image_id,
        "InstanceType": lc.instance_type,
        "UserData": lc.user_data,
        "KeyName": "",
        "SecurityGroups": [],
        "ClassicLinkVPCSecurityGroups": [],
        "KernelId": "",
        "RamdiskId": "",
        "BlockDeviceMappings": [],
        "InstanceMonitoring": {"Enabled": false},
        "CreatedTime": iso(lc.created_time),
        "EbsOptimized": false,
    })
}

/// `DescribeLaunchConfigurations`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    for n in &req.launch_configuration_names {
        validate_name("launchConfigurationNames", n)?;
    }
    let all = ctx
        .store()
        .list_json::<LaunchConfiguration>(keys::HG_LAUNCH_CONFIGS)
        .await
        .map_err(store_err)?;
    let items: Vec<(String, LaunchConfiguration)> = all
        .into_iter()
        // The launch configurations of berth's FARGATE groups are berth's, never shown.
        .filter(|(_, lc, _)| {
            !berth_model::fargate::is_managed_group_name(&lc.launch_configuration_name)
        })
        .filter(|(_, lc, _)| {
            req.launch_configuration_names.is_empty()
                || req
                    .launch_configuration_names
                    .contains(&lc.launch_configuration_name)
        })
        .map(|(k, lc, _)| (k, lc))
        .collect();
    let (items, next) = page(items, req.next_token.as_deref(), req.max_records)?;
    Ok(json!({
        "LaunchConfigurations": items.iter().map(wire).collect::<Vec<_>>(),
        "NextToken": next,
    }))
}

/// The request of `DeleteLaunchConfiguration`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    launch_configuration_name: String,
}

/// `DeleteLaunchConfiguration`: refused while a group uses it.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    let name = req.launch_configuration_name;
    validate_name("launchConfigurationName", &name)?;
    super::groups::reserved(&name)?;
    let key = keys::hg_launch_config(&name);
    let Some((_, rev)) = ctx
        .store()
        .get_json::<LaunchConfiguration>(&key)
        .await
        .map_err(store_err)?
    else {
        return Err(invalid(format!(
            "Launch configuration name not found - Launch configuration {name} not found"
        )));
    };
    let groups = ctx
        .store()
        .list_json::<HostGroup>(keys::HOST_GROUPS)
        .await
        .map_err(store_err)?;
    if let Some((_, g, _)) = groups
        .iter()
        .find(|(_, g, _)| g.launch_configuration_name == name)
    {
        return Err(ApiError::new(
            ErrorCode::ElbResourceInUse,
            format!(
                "Cannot delete launch configuration {name} because it is attached to AutoScalingGroup {}",
                g.auto_scaling_group_name
            ),
        ));
    }
    // A group created meanwhile names it: the revision check makes that a retry for the caller.
    let txn = Txn::new().when_mod_revision(key.clone(), rev).delete(key);
    ctx.store().txn(txn).await.map_err(store_err)?;
    Ok(json!({}))
}
