//! berth's metric alarms (`BerthV1.PutMetricAlarm`, `DescribeAlarms`, `DeleteAlarms`):
//! CloudWatch's alarm fields in JSON, for the metrics berth measures. An alarm's actions name
//! step scaling policies; the autoscaler controller evaluates alarms and runs their policies.

use berth_model::autoscaling::{MetricDimension, ALARM_INSUFFICIENT_DATA};
use berth_model::{keys, ApiError, ErrorCode, MetricAlarm};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{concurrent, validation};
use crate::{store_err, to_bytes, Ctx};

/// CloudWatch allows five actions per alarm state.
const MAX_ACTIONS: usize = 5;

/// The request of `PutMetricAlarm`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRequest {
    alarm_name: String,
    namespace: String,
    metric_name: String,
    #[serde(default)]
    dimensions: Vec<MetricDimension>,
    statistic: String,
    period: u32,
    evaluation_periods: u32,
    threshold: f64,
    comparison_operator: String,
    #[serde(default)]
    alarm_actions: Vec<String>,
}

/// `PutMetricAlarm`: creates or replaces an alarm (its state is kept across a replace).
pub async fn put(ctx: &Ctx, req: PutRequest) -> Result<Value, ApiError> {
    let key = keys::aas_alarm(&req.alarm_name);
    let mut alarm = MetricAlarm {
        alarm_arn: format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{}",
            ctx.region,
            ctx.account(),
            req.alarm_name
        ),
        alarm_name: req.alarm_name,
        namespace: req.namespace,
        metric_name: req.metric_name,
        dimensions: req.dimensions,
        statistic: req.statistic,
        period: req.period,
        evaluation_periods: req.evaluation_periods,
        threshold: req.threshold,
        comparison_operator: req.comparison_operator,
        alarm_actions: req.alarm_actions,
        state_value: ALARM_INSUFFICIENT_DATA.to_owned(),
        state_reason: "Unchecked: Initial alarm creation".to_owned(),
        state_updated_timestamp: ctx.now(),
    };
    alarm.validate()?;
    if alarm.alarm_actions.len() > MAX_ACTIONS {
        return Err(validation(format!(
            "An alarm can have at most {MAX_ACTIONS} actions."
        )));
    }
    for a in &alarm.alarm_actions {
        if !super::policies::policy_exists(ctx, a).await? {
            return Err(validation(format!(
                "Alarm action {a:?} is not the ARN of a scaling policy."
            )));
        }
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let existing = ctx
            .store()
            .get_json::<MetricAlarm>(&key)
            .await
            .map_err(store_err)?;
        let rev = existing.as_ref().map_or(0, |(_, r)| *r);
        if let Some((old, _)) = &existing {
            // An update keeps the state the controller last evaluated.
            alarm.state_value = old.state_value.clone();
            alarm.state_reason = old.state_reason.clone();
            alarm.state_updated_timestamp = old.state_updated_timestamp;
        }
        let txn = Txn::new()
            .when_mod_revision(&key, rev)
            .put(&key, to_bytes(&alarm)?);
        match ctx.store().txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } => return Ok(json!({})),
            TxnResult::Conflict { .. } => continue,
        }
    }
    Err(concurrent())
}

/// The request of `DescribeAlarms`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    alarm_names: Option<Vec<String>>,
}

/// `DescribeAlarms`: the alarms, with their current state.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let all = ctx
        .store()
        .list_json::<MetricAlarm>(keys::AAS_ALARMS)
        .await
        .map_err(store_err)?;
    let alarms: Vec<MetricAlarm> = all
        .into_iter()
        .map(|(_, a, _)| a)
        .filter(|a| {
            req.alarm_names
                .as_ref()
                .is_none_or(|n| n.contains(&a.alarm_name))
        })
        .collect();
    Ok(json!({ "MetricAlarms": alarms }))
}

/// The request of `DeleteAlarms`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    alarm_names: Vec<String>,
}

/// `DeleteAlarms`: deletes the named alarms.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    let mut txn = Txn::new();
    for name in &req.alarm_names {
        let key = keys::aas_alarm(name);
        let Some(kv) = ctx.store().get(&key).await.map_err(store_err)? else {
            return Err(ApiError::new(
                ErrorCode::ResourceNotFoundException,
                format!("Alarm not found: {name}"),
            ));
        };
        txn = txn.when_mod_revision(&key, kv.mod_revision).delete(key);
    }
    match ctx.store().txn(txn).await.map_err(store_err)? {
        TxnResult::Committed { .. } => Ok(json!({})),
        TxnResult::Conflict { .. } => Err(concurrent()),
    }
}
