//! PutScheduledAction, DescribeScheduledActions, DeleteScheduledAction.

use berth_model::autoscaling::{ScalableTargetAction, Schedule, MAX_CAPACITY};
use berth_model::{keys, ApiError, ErrorCode, ScheduledAction};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{check_target, concurrent, load_target, new_uuid, page, page_json, validation};
use crate::{store_err, to_bytes, Ctx};

/// Scheduled actions per scalable target.
const MAX_SCHEDULED: usize = 200;

/// The request of `PutScheduledAction`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRequest {
    service_namespace: String,
    schedule: Option<String>,
    timezone: Option<String>,
    scheduled_action_name: String,
    resource_id: String,
    scalable_dimension: String,
    start_time: Option<f64>,
    end_time: Option<f64>,
    scalable_target_action: Option<ScalableTargetAction>,
}

/// AWS's ScheduledActionName: 1 to 256 characters, no `:`, `/`, `|`, control characters, or
/// leading/trailing spaces.
fn validate_name(name: &str) -> Result<(), ApiError> {
    let n = name.chars().count();
    let ok = (1..=256).contains(&n)
        && !name.starts_with(' ')
        && !name.ends_with(' ')
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, ':' | '/' | '|'));
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "Invalid ScheduledActionName {name:?}: 1 to 256 characters, without : / | or \
             leading and trailing spaces."
        )))
    }
}

fn validate_timezone(tz: &str) -> Result<(), ApiError> {
    let ok = !tz.is_empty()
        && tz.len() <= 64
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if ok {
        Ok(())
    } else {
        Err(validation(format!("Invalid Timezone {tz:?}.")))
    }
}

fn validate_action(a: &ScalableTargetAction) -> Result<(), ApiError> {
    for c in [a.min_capacity, a.max_capacity].into_iter().flatten() {
        if c > MAX_CAPACITY {
            return Err(validation(format!(
                "Capacity must be between 0 and {MAX_CAPACITY}."
            )));
        }
    }
    if let (Some(min), Some(max)) = (a.min_capacity, a.max_capacity) {
        if min > max {
            return Err(validation(format!(
                "Minimum capacity ({min}) cannot be greater than maximum capacity ({max})."
            )));
        }
    }
    Ok(())
}

/// Application Auto Scaling `PutScheduledAction`: creates or updates a scheduled action.
pub async fn put(ctx: &Ctx, req: PutRequest) -> Result<Value, ApiError> {
    check_target(
        &req.service_namespace,
        &req.resource_id,
        &req.scalable_dimension,
    )?;
    validate_name(&req.scheduled_action_name)?;
    if let Some(s) = &req.schedule {
        Schedule::parse(s)?;
    }
    if let Some(tz) = &req.timezone {
        validate_timezone(tz)?;
    }
    if let Some(a) = &req.scalable_target_action {
        validate_action(a)?;
    }
    let rid = &req.resource_id;
    let key = keys::aas_scheduled(rid, &req.scheduled_action_name);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (target, target_rev) =
            load_target(ctx, &req.service_namespace, rid, &req.scalable_dimension).await?;
        let existing = ctx
            .store()
            .list_json::<ScheduledAction>(&keys::aas_scheduled_of(rid))
            .await
            .map_err(store_err)?;
        let found = existing.iter().find(|(k, _, _)| *k == key);
        let rev = found.map_or(0, |(_, _, r)| *r);
        let mut action = match found {
            Some((_, a, _)) => a.clone(),
            None => {
                if existing.len() >= MAX_SCHEDULED {
                    return Err(ApiError::new(
                        ErrorCode::LimitExceededException,
                        format!(
                            "A scalable target can have at most {MAX_SCHEDULED} scheduled actions."
                        ),
                    ));
                }
                let Some(schedule) = &req.schedule else {
                    return Err(validation(
                        "Schedule is required to create a scheduled action.",
                    ));
                };
                ScheduledAction {
                    scheduled_action_name: req.scheduled_action_name.clone(),
                    scheduled_action_arn: format!(
                        "arn:aws:autoscaling:{}:{}:scheduledAction:{}:resource/ecs/{rid}:scheduledActionName/{}",
                        ctx.region,
                        ctx.account(),
                        new_uuid(),
                        req.scheduled_action_name
                    ),
                    service_namespace: req.service_namespace.clone(),
                    schedule: schedule.clone(),
                    timezone: None,
                    resource_id: rid.clone(),
                    scalable_dimension: req.scalable_dimension.clone(),
                    start_time: None,
                    end_time: None,
                    scalable_target_action: None,
                    creation_time: ctx.now(),
                }
            }
        };
        // An update changes what it gives and keeps the rest.
        if let Some(s) = &req.schedule {
            action.schedule = s.clone();
        }
        if req.timezone.is_some() {
            action.timezone = req.timezone.clone();
        }
        if req.start_time.is_some() {
            action.start_time = req.start_time;
        }
        if req.end_time.is_some() {
            action.end_time = req.end_time;
        }
        if let Some(a) = req.scalable_target_action {
            action.scalable_target_action = Some(a);
        }
        if let (Some(s), Some(e)) = (action.start_time, action.end_time) {
            if s >= e {
                return Err(validation("StartTime must be before EndTime."));
            }
        }
        let target_key = keys::aas_target(rid);
        let mut txn = Txn::new()
            .when_mod_revision(&target_key, target_rev)
            .when_mod_revision(&key, rev)
            .put(&key, to_bytes(&action)?);
        if found.is_none() {
            // A new action rewrites the scalable target (unchanged), so concurrent puts of new
            // actions conflict on it and the losers count again: the limit holds.
            txn = txn.put(&target_key, to_bytes(&target)?);
        }
        match ctx.store().txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } => return Ok(json!({})),
            TxnResult::Conflict { .. } => continue,
        }
    }
    Err(concurrent())
}

/// The request of `DescribeScheduledActions`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    #[serde(default)]
    scheduled_action_names: Vec<String>,
    service_namespace: String,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// Application Auto Scaling `DescribeScheduledActions`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let sel = super::Selection {
        namespace: &req.service_namespace,
        resource_id: req.resource_id.as_deref(),
        dimension: req.scalable_dimension.as_deref(),
    };
    let mut items = super::records::<ScheduledAction>(
        ctx,
        sel,
        keys::aas_scheduled_of,
        keys::AAS_SCHEDULED,
        |a| &a.scalable_dimension,
    )
    .await?;
    items.retain(|(_, a)| {
        req.scheduled_action_names.is_empty()
            || req
                .scheduled_action_names
                .contains(&a.scheduled_action_name)
    });
    let (items, next) = page(items, req.max_results, req.next_token.as_deref(), false)?;
    Ok(page_json("ScheduledActions", items, next))
}

/// The request of `DeleteScheduledAction`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    service_namespace: String,
    scheduled_action_name: String,
    resource_id: String,
    scalable_dimension: String,
}

/// Application Auto Scaling `DeleteScheduledAction`.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    check_target(
        &req.service_namespace,
        &req.resource_id,
        &req.scalable_dimension,
    )?;
    let key = keys::aas_scheduled(&req.resource_id, &req.scheduled_action_name);
    super::delete_record(ctx, &key, || {
        format!(
            "No scheduled action found for service namespace: {}, resource ID: {}, scalable \
             dimension: {}, scheduled action name: {}",
            req.service_namespace,
            req.resource_id,
            req.scalable_dimension,
            req.scheduled_action_name
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_timezones_and_actions_validate() {
        assert!(validate_name("scale-up at 9").is_ok());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name(" lead").is_err());
        assert!(validate_timezone("America/New_York").is_ok());
        assert!(validate_timezone("Etc/GMT+5").is_ok());
        assert!(validate_timezone("bad zone").is_err());
        let a = |min, max| ScalableTargetAction {
            min_capacity: min,
            max_capacity: max,
        };
        assert!(validate_action(&a(Some(1), Some(2))).is_ok());
        assert!(validate_action(&a(Some(3), Some(2))).is_err());
        assert!(validate_action(&a(None, Some(10_001))).is_err());
    }
}
