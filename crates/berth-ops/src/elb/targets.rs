//! RegisterTargets, DeregisterTargets, DescribeTargetHealth.
//!
//! Registrations are records (one per target id and port); health is the data plane's, read
//! through the [`TargetHealthSource`](berth_model::TargetHealthSource) the server was built with.

use std::collections::HashSet;

use berth_model::lb::lenient::{list, opt_num};
use berth_model::lb::validate_elb_port;
use berth_model::{keys, ApiError, ErrorCode, TargetGroup, TargetHealthEntry, TargetRegistration};
use berth_store::{StoreExt, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{commit, err, invalid, to_bytes, too_contended};
use crate::{store_err, Ctx};

/// At most this many registrations in one target group.
pub(crate) const MAX_TARGETS: usize = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TargetDescription {
    id: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    port: Option<i64>,
    availability_zone: Option<String>,
}

/// The request of `RegisterTargets` and `DeregisterTargets`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetsRequest {
    target_group_arn: Option<String>,
    #[serde(default, deserialize_with = "list")]
    targets: Vec<TargetDescription>,
}

/// A checked target: (id, port or None, availability zone).
type Target = (String, Option<u16>, Option<String>);

fn check_target(tg: &TargetGroup, t: TargetDescription) -> Result<Target, ApiError> {
    let id =
        t.id.filter(|i| !i.is_empty())
            .ok_or_else(|| invalid("A target needs an Id"))?;
    if id.len() > 255 || id.contains('/') || id.chars().any(char::is_whitespace) {
        return Err(err(
            ErrorCode::ElbInvalidTarget,
            format!("The target '{id}' is not a valid target id"),
        ));
    }
    if tg.target_type == "ip" && id.parse::<std::net::IpAddr>().is_err() {
        return Err(err(
            ErrorCode::ElbInvalidTarget,
            format!("The IP address '{id}' is not a valid IPv4 or IPv6 address"),
        ));
    }
    let port = t
        .port
        .map(|p| {
            validate_elb_port(p).map_err(|_| {
                err(
                    ErrorCode::ElbInvalidTarget,
                    format!("The port {p} of target '{id}' is not between 1 and 65535"),
                )
            })
        })
        .transpose()?;
    Ok((id, port, t.availability_zone))
}

async fn prepare(ctx: &Ctx, req: TargetsRequest) -> Result<(String, Vec<Target>), ApiError> {
    let arn = req
        .target_group_arn
        .ok_or_else(|| invalid("TargetGroupArn is required"))?;
    let (tg, _) = super::target_groups::load(ctx, &arn).await?;
    let targets = req
        .targets
        .into_iter()
        .map(|t| check_target(&tg, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((arn, targets))
}

/// ELBv2 `RegisterTargets`.
pub async fn register(ctx: &Ctx, req: TargetsRequest) -> Result<Value, ApiError> {
    if req.targets.is_empty() {
        return Err(invalid("Targets is required"));
    }
    let (arn, targets) = prepare(ctx, req).await?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (tg, rev) = super::target_groups::load(ctx, &arn).await?;
        let existing: HashSet<String> = ctx
            .store()
            .list(&keys::elb_targets_of(&arn))
            .await
            .map_err(store_err)?
            .0
            .into_iter()
            .map(|kv| kv.key)
            .collect();
        // The target group record is rewritten (unchanged) with the new registrations, so
        // concurrent registrations conflict on it and the losers count again: the limit holds.
        let tg_key = keys::elb_target_group(&arn);
        let mut txn = Txn::new()
            .when_mod_revision(tg_key.clone(), rev)
            .put(tg_key, to_bytes(&tg)?);
        let mut added = HashSet::new();
        for (id, port, az) in &targets {
            let port = port.unwrap_or(tg.port);
            let key = keys::elb_target(&arn, id, port);
            // Registering again is a no-op: the first registration's record stays.
            if existing.contains(&key) || !added.insert(key.clone()) {
                continue;
            }
            let reg = TargetRegistration {
                target_group_arn: arn.clone(),
                id: id.clone(),
                port,
                availability_zone: az.clone(),
                registered_at: ctx.now(),
                owner: None,
            };
            txn = txn.when_absent(key.clone()).put(key, to_bytes(&reg)?);
        }
        if existing.len() + added.len() > MAX_TARGETS {
            return Err(err(
                ErrorCode::ElbTooManyTargets,
                format!("A target group has at most {MAX_TARGETS} targets"),
            ));
        }
        if added.is_empty() || commit(ctx, txn).await? {
            return Ok(json!({}));
        }
    }
    Err(too_contended())
}

/// ELBv2 `DeregisterTargets`.
pub async fn deregister(ctx: &Ctx, req: TargetsRequest) -> Result<Value, ApiError> {
    if req.targets.is_empty() {
        return Err(invalid("Targets is required"));
    }
    let (arn, targets) = prepare(ctx, req).await?;
    let (tg, _) = super::target_groups::load(ctx, &arn).await?;
    let regs = ctx
        .store()
        .list_json::<TargetRegistration>(&keys::elb_targets_of(&arn))
        .await
        .map_err(store_err)?;
    let mut txn = Txn::new();
    let mut missing = Vec::new();
    for (id, port, _) in &targets {
        let port = port.unwrap_or(tg.port);
        let key = keys::elb_target(&arn, id, port);
        if regs.iter().any(|(k, _, _)| *k == key) {
            txn = txn.delete(key);
        } else {
            missing.push(format!("Id={id},Port={port}"));
        }
    }
    if !missing.is_empty() {
        return Err(err(
            ErrorCode::ElbInvalidTarget,
            format!(
                "The following targets are not registered in target group '{arn}': {}",
                missing.join("; ")
            ),
        ));
    }
    // Deleting is idempotent, so a lost race with another deregistration is harmless.
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        if commit(ctx, txn.clone()).await? {
            return Ok(json!({}));
        }
    }
    Err(too_contended())
}

/// The request of `DescribeTargetHealth`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthRequest {
    target_group_arn: Option<String>,
    #[serde(default, deserialize_with = "list")]
    targets: Vec<TargetDescription>,
}

fn health_wire(
    tg: &TargetGroup,
    id: &str,
    port: u16,
    az: Option<&str>,
    h: &TargetHealthEntry,
) -> Value {
    json!({
        "Target": {"Id": id, "Port": port, "AvailabilityZone": az},
        "HealthCheckPort": tg.health_check_port(port).to_string(),
        "TargetHealth": {
            "State": h.state,
            "Reason": h.reason,
            "Description": h.description,
        },
    })
}

fn entry(state: &str, reason: &str, description: &str) -> TargetHealthEntry {
    TargetHealthEntry {
        id: String::new(),
        port: 0,
        state: state.into(),
        reason: Some(reason.into()),
        description: Some(description.into()),
    }
}

/// The health rows of a target group: every registration with the data plane's view of it,
/// then targets the data plane is still draining. Pure, so tests can call it with plain data.
pub(crate) fn health_rows(
    regs: &[TargetRegistration],
    reported: &[TargetHealthEntry],
    in_use: bool,
) -> Vec<(String, u16, Option<String>, TargetHealthEntry)> {
    let mut out = Vec::new();
    for r in regs {
        let h = reported
            .iter()
            .find(|e| e.id == r.id && e.port == r.port)
            .cloned()
            .unwrap_or_else(|| {
                if in_use {
                    entry(
                        "initial",
                        "Elb.RegistrationInProgress",
                        "Target registration is in progress",
                    )
                } else {
                    entry(
                        "unused",
                        "Target.NotInUse",
                        "Target group is not configured to receive traffic from the load balancer",
                    )
                }
            });
        out.push((r.id.clone(), r.port, r.availability_zone.clone(), h));
    }
    for e in reported {
        if e.state == "draining" && !regs.iter().any(|r| r.id == e.id && r.port == e.port) {
            let mut h = e.clone();
            h.reason
                .get_or_insert_with(|| "Target.DeregistrationInProgress".into());
            h.description
                .get_or_insert_with(|| "Target deregistration is in progress".into());
            out.push((e.id.clone(), e.port, None, h));
        }
    }
    out
}

/// ELBv2 `DescribeTargetHealth`.
pub async fn describe_health(ctx: &Ctx, req: HealthRequest) -> Result<Value, ApiError> {
    let arn = req
        .target_group_arn
        .ok_or_else(|| invalid("TargetGroupArn is required"))?;
    let (tg, _) = super::target_groups::load(ctx, &arn).await?;
    let filter = req
        .targets
        .into_iter()
        .map(|t| check_target(&tg, t))
        .collect::<Result<Vec<_>, _>>()?;
    let regs: Vec<TargetRegistration> = ctx
        .store()
        .list_json::<TargetRegistration>(&keys::elb_targets_of(&arn))
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|(_, r, _)| r)
        .collect();
    let in_use = super::target_groups::usage(ctx).await?.contains_key(&arn);
    let reported = ctx
        .state
        .target_health
        .as_ref()
        .map(|s| s.target_health(&arn))
        .unwrap_or_default();
    let rows = health_rows(&regs, &reported, in_use);
    let mut out = Vec::new();
    if filter.is_empty() {
        for (id, port, az, h) in &rows {
            out.push(health_wire(&tg, id, *port, az.as_deref(), h));
        }
    } else {
        for (id, port, _) in &filter {
            let matching: Vec<_> = rows
                .iter()
                .filter(|(rid, rport, _, _)| rid == id && port.is_none_or(|p| p == *rport))
                .collect();
            if matching.is_empty() {
                let port = port.unwrap_or(tg.port);
                let h = entry(
                    "unused",
                    "Target.NotRegistered",
                    "Target is not registered to the target group",
                );
                out.push(health_wire(&tg, id, port, None, &h));
            }
            for (rid, rport, az, h) in matching {
                out.push(health_wire(&tg, rid, *rport, az.as_deref(), h));
            }
        }
    }
    Ok(json!({ "TargetHealthDescriptions": out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(id: &str, port: u16) -> TargetRegistration {
        TargetRegistration {
            target_group_arn: "tg".into(),
            id: id.into(),
            port,
            availability_zone: None,
            registered_at: 0.0,
            owner: None,
        }
    }

    fn reported(id: &str, port: u16, state: &str) -> TargetHealthEntry {
        TargetHealthEntry {
            id: id.into(),
            port,
            state: state.into(),
            reason: None,
            description: None,
        }
    }

    #[test]
    fn health_states_without_and_with_the_data_plane() {
        let regs = [reg("10.0.0.1", 80)];
        let rows = health_rows(&regs, &[], false);
        assert_eq!(rows[0].3.state, "unused");
        assert_eq!(rows[0].3.reason.as_deref(), Some("Target.NotInUse"));
        let rows = health_rows(&regs, &[], true);
        assert_eq!(rows[0].3.state, "initial");
        let rep = [
            reported("10.0.0.1", 80, "healthy"),
            reported("10.0.0.2", 80, "draining"),
            reported("10.0.0.3", 80, "healthy"),
        ];
        let rows = health_rows(&regs, &rep, true);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].3.state, "healthy");
        assert_eq!(rows[1].0, "10.0.0.2");
        assert_eq!(
            rows[1].3.reason.as_deref(),
            Some("Target.DeregistrationInProgress")
        );
    }
}
