//! The EC2 Auto Scaling actions berth serves (its host groups): launch configurations, groups,
//! their instances (hosts) and scaling activities.
//!
//! The records are [`berth_model::hostgroup`]'s; the host group controller (in
//! `berth-control`) makes the hosts. These actions only write what the user asked for —
//! a group's desired capacity, a host's protection, a host to terminate — and show the
//! records in Auto Scaling's shapes, as the Query protocol's JSON tree the edge writes out as
//! XML. Groups berth owns (`managed_by`, FARGATE's capacity) are invisible here.
//!
//! Every request member an action accepts takes effect; the members of the Auto Scaling API
//! berth does not implement are refused by name ([`refuse_unknown`]).

pub mod groups;
pub mod hosts;
pub mod launch_configs;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use berth_model::hostgroup::{HostGroup, HostRecord};
use berth_model::{keys, ApiError, ErrorCode};
use berth_store::StoreExt;
use serde_json::Value;

use crate::{store_err, Ctx};

/// The Auto Scaling `ValidationError`.
pub(crate) fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ElbValidationError, m)
}

/// A Query request's parameters as the action's typed request, after refusing the members
/// `allowed` does not list.
pub fn parse<T: serde::de::DeserializeOwned>(
    action: &str,
    p: Value,
    allowed: &[&str],
) -> Result<T, ApiError> {
    refuse_unknown(action, &p, allowed)?;
    serde_json::from_value(p).map_err(|e| invalid(format!("Invalid request parameters: {e}")))
}

/// Refuses every member of `p` that `allowed` does not name: berth does not implement it, and
/// accepting it silently would pretend it took effect.
pub fn refuse_unknown(action: &str, p: &Value, allowed: &[&str]) -> Result<(), ApiError> {
    if let Some(m) = p.as_object() {
        if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(invalid(format!(
                "berth does not support the parameter {k} of {action}."
            )));
        }
    }
    Ok(())
}

/// Auto Scaling names (launch configurations, groups): 1 to 255 characters, no control
/// characters; berth also refuses `/`, which would reach into other records' keys.
pub(crate) fn validate_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(invalid(format!(
            "1 validation error detected: Value '{name}' at '{what}' failed to satisfy constraint: Member must have length between 1 and 255"
        )));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "Value '{name}' at '{what}' failed to satisfy constraint: berth names hold no '/' or control characters"
        )));
    }
    Ok(())
}

pub(crate) fn group_not_found(name: &str) -> ApiError {
    invalid(format!(
        "AutoScalingGroup name not found - AutoScalingGroup {name} not found"
    ))
}

/// The group named `name` that the Auto Scaling API may see (not berth's own), with its
/// revision.
pub(crate) async fn load_group(ctx: &Ctx, name: &str) -> Result<(HostGroup, u64), ApiError> {
    validate_name("autoScalingGroupName", name)?;
    match ctx
        .store()
        .get_json::<HostGroup>(&keys::host_group(name))
        .await
        .map_err(store_err)?
    {
        Some((g, rev)) if g.managed_by.is_none() => Ok((g, rev)),
        _ => Err(group_not_found(name)),
    }
}

/// Every host of `group`.
pub(crate) async fn hosts_of(ctx: &Ctx, group: &str) -> Result<Vec<HostRecord>, ApiError> {
    Ok(ctx
        .store()
        .list_json::<HostRecord>(&keys::hg_hosts_of(group))
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|(_, h, _)| h)
        .collect())
}

/// A time as Auto Scaling shows it (ISO 8601, UTC).
pub(crate) fn iso(t: f64) -> String {
    crate::elb::iso(t)
}

/// One page of key-sorted `items` after `token`, at most `max` (Auto Scaling's `MaxRecords`:
/// 1 to 100, default 50): `(items, NextToken)`.
pub(crate) fn page<T>(
    items: Vec<(String, T)>,
    token: Option<&str>,
    max: Option<u32>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match max {
        None => 50,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(n) => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{n}' at 'maxRecords' failed to satisfy constraint: Member must have value between 1 and 100"
            )))
        }
    };
    let after = match token.filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidNextToken, "The token is invalid.")
                })?,
        ),
    };
    let mut rest: Vec<(String, T)> = match &after {
        Some(a) => items.into_iter().filter(|(k, _)| k > a).collect(),
        None => items,
    };
    let next = (rest.len() > size).then(|| URL_SAFE_NO_PAD.encode(rest[size - 1].0.as_bytes()));
    rest.truncate(size);
    Ok((rest.into_iter().map(|(_, v)| v).collect(), next))
}

/// An Auto Scaling ARN for `resource` (`autoScalingGroup:UUID:autoScalingGroupName/NAME`).
pub(crate) fn arn(ctx: &Ctx, resource: &str) -> String {
    format!(
        "arn:aws:autoscaling:{}:{}:{resource}",
        ctx.region, ctx.state.config.account_id
    )
}
