//! CreateLogGroup, DeleteLogGroup, DescribeLogGroups, PutRetentionPolicy,
//! DeleteRetentionPolicy.

use std::collections::BTreeMap;

use berth_model::logs::{validate_group_name, LogGroup, RETENTION_DAYS};
use berth_model::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{group_from_identifier, limit, logs_err, now_ms, refuse};
use crate::Ctx;

/// The request of `CreateLogGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    log_group_name: String,
    kms_key_id: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    log_group_class: Option<String>,
    deletion_protection_enabled: Option<bool>,
}

/// `CreateLogGroup`.
pub async fn create(ctx: &Ctx, req: CreateRequest) -> Result<Value, ApiError> {
    validate_group_name(&req.log_group_name)?;
    if req.kms_key_id.is_some() {
        return Err(refuse("kmsKeyId", "berth has no KMS"));
    }
    if req.deletion_protection_enabled == Some(true) {
        return Err(refuse(
            "deletionProtectionEnabled",
            "log groups can always be deleted",
        ));
    }
    if let Some(c) = req.log_group_class.as_deref().filter(|c| *c != "STANDARD") {
        return Err(refuse(
            "logGroupClass",
            &format!("only STANDARD log groups exist, not {c}"),
        ));
    }
    if req.tags.len() > 50 {
        return Err(ApiError::invalid("A log group can have at most 50 tags."));
    }
    let group = LogGroup {
        log_group_name: req.log_group_name,
        creation_time: now_ms(ctx),
        retention_in_days: None,
        tags: req.tags,
    };
    ctx.logs(move |s| s.create_group(&group).map_err(logs_err))
        .await?;
    Ok(json!({}))
}

/// The request of `DeleteLogGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRequest {
    log_group_name: String,
}

/// `DeleteLogGroup`: the group, its streams and their events.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    ctx.logs(move |s| s.delete_group(&req.log_group_name).map_err(logs_err))
        .await?;
    Ok(json!({}))
}

/// The request of `DescribeLogGroups`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    #[serde(default)]
    log_group_identifiers: Vec<String>,
    log_group_class: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    #[serde(default)]
    account_identifiers: Vec<String>,
    include_linked_accounts: Option<bool>,
}

/// `DescribeLogGroups`: by name, with a prefix, a (case-insensitive) substring or a list of
/// names or ARNs; up to 50 a page.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    if !req.account_identifiers.is_empty() || req.include_linked_accounts == Some(true) {
        return Err(refuse(
            "accountIdentifiers",
            "berth has one account and no linked accounts",
        ));
    }
    if req.log_group_name_prefix.is_some() && req.log_group_name_pattern.is_some() {
        return Err(ApiError::invalid(
            "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters.",
        ));
    }
    let size = limit(req.limit, 50, 50)?;
    let prefix = req.log_group_name_prefix.clone().unwrap_or_default();
    let groups = ctx
        .logs(move |s| s.groups(&prefix).map_err(logs_err))
        .await?;
    let pattern = req.log_group_name_pattern.map(|p| p.to_lowercase());
    let wanted: Vec<String> = req
        .log_group_identifiers
        .iter()
        .map(|i| group_from_identifier(i))
        .collect();
    let class = req.log_group_class;
    let after = req.next_token.filter(|t| !t.is_empty());
    let mut page = Vec::new();
    let mut more = false;
    for (g, bytes) in groups {
        let name = &g.log_group_name;
        if pattern
            .as_ref()
            .is_some_and(|p| !name.to_lowercase().contains(p.as_str()))
            || (!wanted.is_empty() && !wanted.contains(name))
            || class.as_ref().is_some_and(|c| c != "STANDARD")
            || after.as_ref().is_some_and(|a| name <= a)
        {
            continue;
        }
        if page.len() == size {
            more = true;
            break;
        }
        page.push(render(ctx, &g, bytes));
    }
    let mut out = json!({});
    if more {
        out["nextToken"] = page
            .last()
            .map(|g| g["logGroupName"].clone())
            .unwrap_or_default();
    }
    out["logGroups"] = Value::Array(page);
    Ok(out)
}

fn render(ctx: &Ctx, g: &LogGroup, bytes: i64) -> Value {
    let arn = ctx.log_group_arn(&g.log_group_name);
    json!({
        "logGroupName": g.log_group_name,
        "creationTime": g.creation_time,
        "retentionInDays": g.retention_in_days,
        "metricFilterCount": 0,
        "arn": format!("{arn}:*"),
        "logGroupArn": arn,
        "storedBytes": bytes,
        "logGroupClass": "STANDARD",
    })
}

/// The request of `PutRetentionPolicy`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRetentionRequest {
    log_group_name: String,
    retention_in_days: i32,
}

/// `PutRetentionPolicy`: events older than the retention are dropped by the next sweep and
/// refused by PutLogEvents (`expiredLogEventEndIndex`).
pub async fn put_retention(ctx: &Ctx, req: PutRetentionRequest) -> Result<Value, ApiError> {
    if !RETENTION_DAYS.contains(&req.retention_in_days) {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{}' at 'retentionInDays' failed to satisfy \
             constraint: Member must satisfy enum value set: {RETENTION_DAYS:?}",
            req.retention_in_days
        )));
    }
    set_retention(ctx, req.log_group_name, Some(req.retention_in_days)).await
}

/// The request of `DeleteRetentionPolicy`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRetentionRequest {
    log_group_name: String,
}

/// `DeleteRetentionPolicy`: events are kept until the store's byte cap evicts them.
pub async fn delete_retention(ctx: &Ctx, req: DeleteRetentionRequest) -> Result<Value, ApiError> {
    set_retention(ctx, req.log_group_name, None).await
}

async fn set_retention(ctx: &Ctx, name: String, days: Option<i32>) -> Result<Value, ApiError> {
    ctx.logs(move |s| {
        let Some((mut g, _)) = s.group(&name).map_err(logs_err)? else {
            return Err(logs_err(berth_logs::LogsError::GroupNotFound));
        };
        g.retention_in_days = days;
        s.update_group(&g).map_err(logs_err)
    })
    .await?;
    Ok(json!({}))
}
