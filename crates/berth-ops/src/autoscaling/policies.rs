//! PutScalingPolicy, DescribeScalingPolicies, DeleteScalingPolicy.

use std::collections::HashMap;

use berth_model::autoscaling::{
    target_tracking_alarm_name, AlarmRef, MetricAlarm, ScalingPolicy, StepScalingConfig,
    TargetTrackingConfig, DEFAULT_COOLDOWN_SECS, STEP_SCALING, TARGET_TRACKING,
};
use berth_model::{keys, ApiError, ErrorCode};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{check_target, concurrent, load_target, new_uuid, page, page_json, validation};
use crate::{store_err, to_bytes, Ctx};

/// Scaling policies per scalable target.
const MAX_POLICIES: usize = 50;

/// The request of `PutScalingPolicy`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRequest {
    policy_name: String,
    service_namespace: String,
    resource_id: String,
    scalable_dimension: String,
    policy_type: Option<String>,
    step_scaling_policy_configuration: Option<StepScalingConfig>,
    target_tracking_scaling_policy_configuration: Option<TargetTrackingConfig>,
    predictive_scaling_policy_configuration: Option<Value>,
}

fn validate_policy_name(name: &str) -> Result<(), ApiError> {
    let n = name.chars().count();
    if !(1..=256).contains(&n) || name.chars().any(char::is_control) {
        return Err(validation(format!(
            "Invalid PolicyName {name:?}: 1 to 256 printable characters."
        )));
    }
    Ok(())
}

/// The policy's type and checked configuration, from a PutScalingPolicy request.
fn checked_config(
    req: &PutRequest,
) -> Result<
    (
        &'static str,
        Option<TargetTrackingConfig>,
        Option<StepScalingConfig>,
    ),
    ApiError,
> {
    if req.predictive_scaling_policy_configuration.is_some()
        || req.policy_type.as_deref() == Some("PredictiveScaling")
    {
        return Err(validation(
            "berth does not support PredictiveScaling policies.",
        ));
    }
    let ty = match req.policy_type.as_deref() {
        Some(TARGET_TRACKING) => TARGET_TRACKING,
        Some(STEP_SCALING) => STEP_SCALING,
        Some(other) => return Err(validation(format!("Invalid PolicyType {other:?}."))),
        None if req.target_tracking_scaling_policy_configuration.is_some() => TARGET_TRACKING,
        None => STEP_SCALING,
    };
    if ty == TARGET_TRACKING {
        if req.step_scaling_policy_configuration.is_some() {
            return Err(validation(
                "StepScalingPolicyConfiguration is not valid for a TargetTrackingScaling policy.",
            ));
        }
        let mut c = req
            .target_tracking_scaling_policy_configuration
            .clone()
            .ok_or_else(|| {
                validation(
                    "TargetTrackingScalingPolicyConfiguration is required for a \
                     TargetTrackingScaling policy.",
                )
            })?;
        c.validate(&req.resource_id)?;
        c.scale_in_cooldown.get_or_insert(DEFAULT_COOLDOWN_SECS);
        c.scale_out_cooldown.get_or_insert(DEFAULT_COOLDOWN_SECS);
        Ok((ty, Some(c), None))
    } else {
        if req.target_tracking_scaling_policy_configuration.is_some() {
            return Err(validation(
                "TargetTrackingScalingPolicyConfiguration is not valid for a StepScaling policy.",
            ));
        }
        let c = req
            .step_scaling_policy_configuration
            .clone()
            .ok_or_else(|| {
                validation("StepScalingPolicyConfiguration is required for a StepScaling policy.")
            })?;
        c.validate()?;
        Ok((ty, None, Some(c)))
    }
}

fn policy_arn(ctx: &Ctx, uuid: &str, resource_id: &str, name: &str) -> String {
    format!(
        "arn:aws:autoscaling:{}:{}:scalingPolicy:{uuid}:resource/ecs/{resource_id}:policyName/{name}",
        ctx.region,
        ctx.account()
    )
}

fn alarm_ref(ctx: &Ctx, name: String) -> AlarmRef {
    AlarmRef {
        alarm_arn: format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{name}",
            ctx.region,
            ctx.account()
        ),
        alarm_name: name,
    }
}

/// Application Auto Scaling `PutScalingPolicy`: creates or replaces a target tracking or step
/// scaling policy.
pub async fn put(ctx: &Ctx, req: PutRequest) -> Result<Value, ApiError> {
    check_target(
        &req.service_namespace,
        &req.resource_id,
        &req.scalable_dimension,
    )?;
    validate_policy_name(&req.policy_name)?;
    let (ty, tt, step) = checked_config(&req)?;
    let rid = &req.resource_id;
    let key = keys::aas_policy(rid, &req.policy_name);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (target, target_rev) =
            load_target(ctx, &req.service_namespace, rid, &req.scalable_dimension).await?;
        let existing = ctx
            .store()
            .list_json::<ScalingPolicy>(&keys::aas_policies_of(rid))
            .await
            .map_err(store_err)?;
        let found = existing.iter().find(|(k, _, _)| *k == key);
        if found.is_none() && existing.len() >= MAX_POLICIES {
            return Err(ApiError::new(
                ErrorCode::LimitExceededException,
                format!("A scalable target can have at most {MAX_POLICIES} scaling policies."),
            ));
        }
        let rev = found.map_or(0, |(_, _, r)| *r);
        // An update keeps the policy's ARN (and a target tracking policy's alarms).
        let (arn, alarms, created) = match found {
            Some((_, p, _)) if p.policy_type == ty => {
                (p.policy_arn.clone(), p.alarms.clone(), p.creation_time)
            }
            Some((_, p, _)) => {
                return Err(validation(format!(
                    "Policy {} is a {}; delete it to change its type.",
                    p.policy_name, p.policy_type
                )))
            }
            None => {
                let uuid = new_uuid();
                let alarms = if ty == TARGET_TRACKING {
                    [true, false]
                        .into_iter()
                        .map(|high| {
                            alarm_ref(ctx, target_tracking_alarm_name(rid, high, &new_uuid()))
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                (
                    policy_arn(ctx, &uuid, rid, &req.policy_name),
                    alarms,
                    ctx.now(),
                )
            }
        };
        let policy = ScalingPolicy {
            policy_arn: arn,
            policy_name: req.policy_name.clone(),
            service_namespace: req.service_namespace.clone(),
            resource_id: rid.clone(),
            scalable_dimension: req.scalable_dimension.clone(),
            policy_type: ty.to_owned(),
            target_tracking_scaling_policy_configuration: tt.clone(),
            step_scaling_policy_configuration: step.clone(),
            alarms,
            creation_time: created,
        };
        let target_key = keys::aas_target(rid);
        let mut txn = Txn::new()
            .when_mod_revision(&target_key, target_rev)
            .when_mod_revision(&key, rev)
            .put(&key, to_bytes(&policy)?);
        if found.is_none() {
            // A new policy rewrites the scalable target (unchanged), so concurrent puts of new
            // policies conflict on it and the losers count again: the limit holds.
            txn = txn.put(&target_key, to_bytes(&target)?);
        }
        match ctx.store().txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } => {
                let mut out = json!({"PolicyARN": policy.policy_arn});
                if ty == TARGET_TRACKING {
                    out["Alarms"] = json!(policy.alarms);
                }
                return Ok(out);
            }
            TxnResult::Conflict { .. } => continue,
        }
    }
    Err(concurrent())
}

/// The request of `DescribeScalingPolicies`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    service_namespace: String,
    #[serde(default)]
    policy_names: Vec<String>,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// Alarms naming each policy ARN in their actions.
pub async fn alarms_by_policy(ctx: &Ctx) -> Result<HashMap<String, Vec<AlarmRef>>, ApiError> {
    let alarms = ctx
        .store()
        .list_json::<MetricAlarm>(keys::AAS_ALARMS)
        .await
        .map_err(store_err)?;
    let mut out: HashMap<String, Vec<AlarmRef>> = HashMap::new();
    for (_, a, _) in alarms {
        for action in &a.alarm_actions {
            out.entry(action.clone()).or_default().push(AlarmRef {
                alarm_name: a.alarm_name.clone(),
                alarm_arn: a.alarm_arn.clone(),
            });
        }
    }
    Ok(out)
}

/// Application Auto Scaling `DescribeScalingPolicies`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let sel = super::Selection {
        namespace: &req.service_namespace,
        resource_id: req.resource_id.as_deref(),
        dimension: req.scalable_dimension.as_deref(),
    };
    let mut items =
        super::records::<ScalingPolicy>(ctx, sel, keys::aas_policies_of, keys::AAS_POLICIES, |p| {
            &p.scalable_dimension
        })
        .await?;
    items.retain(|(_, p)| req.policy_names.is_empty() || req.policy_names.contains(&p.policy_name));
    let (mut items, next) = page(items, req.max_results, req.next_token.as_deref(), false)?;
    if items.iter().any(|p| p.policy_type == STEP_SCALING) {
        let by_policy = alarms_by_policy(ctx).await?;
        for p in items.iter_mut().filter(|p| p.policy_type == STEP_SCALING) {
            p.alarms = by_policy.get(&p.policy_arn).cloned().unwrap_or_default();
        }
    }
    Ok(page_json("ScalingPolicies", items, next))
}

/// The request of `DeleteScalingPolicy`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    policy_name: String,
    service_namespace: String,
    resource_id: String,
    scalable_dimension: String,
}

/// Application Auto Scaling `DeleteScalingPolicy`.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    check_target(
        &req.service_namespace,
        &req.resource_id,
        &req.scalable_dimension,
    )?;
    let key = keys::aas_policy(&req.resource_id, &req.policy_name);
    super::delete_record(ctx, &key, || {
        format!(
            "No scaling policy found for service namespace: {}, resource ID: {}, scalable \
             dimension: {}, policy name: {}",
            req.service_namespace, req.resource_id, req.scalable_dimension, req.policy_name
        )
    })
    .await
}

/// Whether a policy with this ARN exists (for alarm actions).
pub async fn policy_exists(ctx: &Ctx, arn: &str) -> Result<bool, ApiError> {
    let all = ctx
        .store()
        .list_json::<ScalingPolicy>(keys::AAS_POLICIES)
        .await
        .map_err(store_err)?;
    Ok(all.iter().any(|(_, p, _)| p.policy_arn == arn))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> PutRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn configs_are_checked_and_defaulted() {
        let base = json!({"PolicyName": "p", "ServiceNamespace": "ecs",
            "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount"});
        let mut tt = base.clone();
        tt["PolicyType"] = json!("TargetTrackingScaling");
        tt["TargetTrackingScalingPolicyConfiguration"] = json!({"TargetValue": 50.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}});
        let (ty, c, s) = checked_config(&req(tt.clone())).unwrap();
        assert_eq!(ty, TARGET_TRACKING);
        assert!(s.is_none());
        let c = c.unwrap();
        assert_eq!(
            (c.scale_in_cooldown, c.scale_out_cooldown),
            (Some(300), Some(300))
        );

        let mut no_cfg = base.clone();
        no_cfg["PolicyType"] = json!("TargetTrackingScaling");
        assert!(checked_config(&req(no_cfg)).is_err());

        let mut step = base.clone();
        step["StepScalingPolicyConfiguration"] = json!({"AdjustmentType": "ChangeInCapacity",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}]});
        assert_eq!(checked_config(&req(step)).unwrap().0, STEP_SCALING);

        let mut predictive = base;
        predictive["PolicyType"] = json!("PredictiveScaling");
        assert_eq!(
            checked_config(&req(predictive)).unwrap_err().code,
            ErrorCode::ValidationException
        );
        assert!(validate_policy_name("").is_err());
    }
}
