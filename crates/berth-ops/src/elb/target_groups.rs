//! CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup, DescribeTargetGroupAttributes,
//! ModifyTargetGroupAttributes, DeleteTargetGroup.

use std::collections::{BTreeSet, HashMap};

use berth_model::lb::lenient::{list, opt_bool, opt_num};
use berth_model::lb::{validate_elb_name, validate_elb_port, validate_elb_tags, ElbTag};
use berth_model::{
    keys, ApiError, ErrorCode, Listener, ListenerRule, TargetGroup, TargetHealthCheck,
    TargetRegistration,
};
use berth_store::{StoreExt, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{commit, err, invalid, new_id, page, page_result, to_bytes, too_contended};
use crate::{store_err, Ctx};

pub(super) fn not_found(what: &str) -> ApiError {
    err(
        ErrorCode::ElbTargetGroupNotFound,
        format!("Target group '{what}' not found"),
    )
}

/// The target group `arn` names, with its revision, or TargetGroupNotFound.
pub async fn load(ctx: &Ctx, arn: &str) -> Result<(TargetGroup, u64), ApiError> {
    match ctx
        .store()
        .get_json::<TargetGroup>(&keys::elb_target_group(arn))
        .await
        .map_err(store_err)?
    {
        Some((tg, rev)) if tg.arn == arn => Ok((tg, rev)),
        _ => Err(not_found(arn)),
    }
}

/// Which load balancers send traffic to each target group, through listeners or rules.
pub async fn usage(ctx: &Ctx) -> Result<HashMap<String, BTreeSet<String>>, ApiError> {
    let listeners = ctx
        .store()
        .list_json::<Listener>(keys::ELB_LISTENERS)
        .await
        .map_err(store_err)?;
    let rules = ctx
        .store()
        .list_json::<ListenerRule>(keys::ELB_RULES)
        .await
        .map_err(store_err)?;
    let lb_of: HashMap<&str, &str> = listeners
        .iter()
        .map(|(_, l, _)| (l.arn.as_str(), l.load_balancer_arn.as_str()))
        .collect();
    let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (_, l, _) in &listeners {
        for a in &l.default_actions {
            for (tg, _) in a.forward_targets() {
                out.entry(tg)
                    .or_default()
                    .insert(l.load_balancer_arn.clone());
            }
        }
    }
    for (_, r, _) in &rules {
        let Some(lb) = lb_of.get(r.listener_arn.as_str()) else {
            continue;
        };
        for a in &r.actions {
            for (tg, _) in a.forward_targets() {
                out.entry(tg).or_default().insert((*lb).to_owned());
            }
        }
    }
    Ok(out)
}

pub(super) fn wire(tg: &TargetGroup, lbs: Option<&BTreeSet<String>>) -> Value {
    let h = &tg.health_check;
    json!({
        "TargetGroupArn": tg.arn,
        "TargetGroupName": tg.name,
        "Protocol": tg.protocol,
        "Port": tg.port,
        "VpcId": tg.vpc_id,
        "HealthCheckProtocol": h.protocol,
        "HealthCheckPort": h.port,
        "HealthCheckEnabled": h.enabled,
        "HealthCheckIntervalSeconds": h.interval_secs,
        "HealthCheckTimeoutSeconds": h.timeout_secs,
        "HealthyThresholdCount": h.healthy_threshold,
        "UnhealthyThresholdCount": h.unhealthy_threshold,
        "HealthCheckPath": h.path,
        "Matcher": {"HttpCode": h.matcher},
        "LoadBalancerArns": lbs.map(|s| s.iter().cloned().collect::<Vec<_>>()).unwrap_or_default(),
        "TargetType": tg.target_type,
        "ProtocolVersion": tg.protocol_version,
        "IpAddressType": tg.ip_address_type,
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Matcher {
    http_code: Option<String>,
}

/// The health check members CreateTargetGroup and ModifyTargetGroup share.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HealthParams {
    health_check_protocol: Option<String>,
    health_check_port: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    health_check_enabled: Option<bool>,
    health_check_path: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    health_check_interval_seconds: Option<u32>,
    #[serde(default, deserialize_with = "opt_num")]
    health_check_timeout_seconds: Option<u32>,
    #[serde(default, deserialize_with = "opt_num")]
    healthy_threshold_count: Option<u32>,
    #[serde(default, deserialize_with = "opt_num")]
    unhealthy_threshold_count: Option<u32>,
    matcher: Option<Matcher>,
}

impl HealthParams {
    fn apply(self, h: &mut TargetHealthCheck) -> Result<(), ApiError> {
        if let Some(v) = self.health_check_protocol {
            h.protocol = v;
        }
        if let Some(v) = self.health_check_port {
            h.port = v;
        }
        if let Some(v) = self.health_check_enabled {
            h.enabled = v;
        }
        if let Some(v) = self.health_check_path {
            h.path = v;
        }
        if let Some(v) = self.health_check_interval_seconds {
            h.interval_secs = v;
        }
        if let Some(v) = self.health_check_timeout_seconds {
            h.timeout_secs = v;
        }
        if let Some(v) = self.healthy_threshold_count {
            h.healthy_threshold = v;
        }
        if let Some(v) = self.unhealthy_threshold_count {
            h.unhealthy_threshold = v;
        }
        if let Some(m) = self.matcher {
            h.matcher = m
                .http_code
                .ok_or_else(|| invalid("Matcher needs an HttpCode"))?;
        }
        h.validate()
    }
}

/// The request of `CreateTargetGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    name: Option<String>,
    protocol: Option<String>,
    protocol_version: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    port: Option<i64>,
    vpc_id: Option<String>,
    target_type: Option<String>,
    #[serde(default, deserialize_with = "list")]
    tags: Vec<ElbTag>,
    ip_address_type: Option<String>,
    #[serde(flatten)]
    health: HealthParams,
}

/// ELBv2 `CreateTargetGroup`.
pub async fn create(ctx: &Ctx, req: CreateRequest) -> Result<Value, ApiError> {
    let name = req.name.ok_or_else(|| invalid("Name is required"))?;
    validate_elb_name("Target group", &name)?;
    validate_elb_tags(&req.tags)?;
    let protocol = req.protocol.unwrap_or_else(|| "HTTP".into());
    if protocol != "HTTP" {
        return Err(err(
            ErrorCode::ElbUnsupportedProtocol,
            format!("berth target groups support the HTTP protocol only; got '{protocol}'"),
        ));
    }
    let target_type = req.target_type.unwrap_or_else(|| "instance".into());
    if !matches!(target_type.as_str(), "instance" | "ip") {
        return Err(invalid(format!(
            "berth supports target types 'instance' and 'ip'; got '{target_type}'"
        )));
    }
    let port = validate_elb_port(
        req.port
            .ok_or_else(|| invalid("A port must be specified for this target type"))?,
    )?;
    let version = req.protocol_version.unwrap_or_else(|| "HTTP1".into());
    if !matches!(version.as_str(), "HTTP1" | "HTTP2") {
        return Err(invalid(format!("Unsupported ProtocolVersion '{version}'")));
    }
    let ip_type = req.ip_address_type.unwrap_or_else(|| "ipv4".into());
    if !matches!(ip_type.as_str(), "ipv4" | "ipv6") {
        return Err(invalid(format!("Invalid IpAddressType '{ip_type}'")));
    }
    let mut health = TargetHealthCheck::default();
    req.health.apply(&mut health)?;
    let id = new_id();
    let tg = TargetGroup {
        arn: ctx.elb_arn(&format!("targetgroup/{name}/{id}")),
        name: name.clone(),
        protocol,
        protocol_version: Some(version),
        port,
        vpc_id: req.vpc_id,
        target_type,
        ip_address_type: ip_type,
        health_check: health,
        attributes: TargetGroup::default_attributes(),
        created_at: ctx.now(),
        tags: req.tags,
    };
    let name_key = keys::elb_tg_name(&name);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        if let Some((arn, _)) = ctx
            .store()
            .get_json::<String>(&name_key)
            .await
            .map_err(store_err)?
        {
            if let Ok((old, _)) = load(ctx, &arn).await {
                // Idempotent for the same settings, as ELB is.
                if old.port == tg.port
                    && old.protocol == tg.protocol
                    && old.target_type == tg.target_type
                    && old.health_check == tg.health_check
                {
                    let usage = usage(ctx).await?;
                    return Ok(json!({"TargetGroups": [wire(&old, usage.get(&old.arn))]}));
                }
            }
            return Err(err(
                ErrorCode::ElbDuplicateTargetGroupName,
                format!("A target group with the same name '{name}' exists, but with different settings"),
            ));
        }
        let key = keys::elb_target_group(&tg.arn);
        let txn = Txn::new()
            .when_absent(name_key.clone())
            .when_absent(key.clone())
            .put(name_key.clone(), to_bytes(&tg.arn)?)
            .put(key, to_bytes(&tg)?);
        if commit(ctx, txn).await? {
            return Ok(json!({"TargetGroups": [wire(&tg, None)]}));
        }
    }
    Err(too_contended())
}

/// The request of `DescribeTargetGroups`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    load_balancer_arn: Option<String>,
    #[serde(default, deserialize_with = "list")]
    target_group_arns: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    names: Vec<String>,
    marker: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    page_size: Option<u32>,
}

/// ELBv2 `DescribeTargetGroups`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let given = [
        req.load_balancer_arn.is_some(),
        !req.target_group_arns.is_empty(),
        !req.names.is_empty(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(invalid(
            "Specify at most one of LoadBalancerArn, TargetGroupArns and Names",
        ));
    }
    let usage = usage(ctx).await?;
    let mut found: Vec<(String, TargetGroup)> = Vec::new();
    if let Some(lb) = &req.load_balancer_arn {
        super::load_balancers::load(ctx, lb).await?;
        for (k, tg, _) in ctx
            .store()
            .list_json::<TargetGroup>(keys::ELB_TARGET_GROUPS)
            .await
            .map_err(store_err)?
        {
            if usage.get(&tg.arn).is_some_and(|s| s.contains(lb)) {
                found.push((k, tg));
            }
        }
    } else if !req.target_group_arns.is_empty() {
        for arn in &req.target_group_arns {
            let (tg, _) = load(ctx, arn).await?;
            found.push((keys::elb_target_group(arn), tg));
        }
    } else if !req.names.is_empty() {
        for name in &req.names {
            let arn = super::arn_by_name(ctx, &keys::elb_tg_name(name), || {
                err(
                    ErrorCode::ElbTargetGroupNotFound,
                    format!("One or more target groups not found: '{name}'"),
                )
            })
            .await?;
            let (tg, _) = load(ctx, &arn).await?;
            found.push((keys::elb_target_group(&arn), tg));
        }
    } else {
        found = ctx
            .store()
            .list_json::<TargetGroup>(keys::ELB_TARGET_GROUPS)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|(k, tg, _)| (k, tg))
            .collect();
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    let (tgs, next) = page(found, req.marker.as_deref(), req.page_size)?;
    let items = tgs.iter().map(|tg| wire(tg, usage.get(&tg.arn))).collect();
    Ok(page_result("TargetGroups", items, next))
}

/// Re-reads the target group, applies `f`, and writes it back if no one else wrote meanwhile.
async fn update(
    ctx: &Ctx,
    arn: &str,
    f: impl Fn(&mut TargetGroup) -> Result<(), ApiError>,
) -> Result<TargetGroup, ApiError> {
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut tg, rev) = load(ctx, arn).await?;
        f(&mut tg)?;
        let key = keys::elb_target_group(arn);
        let txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .put(key, to_bytes(&tg)?);
        if commit(ctx, txn).await? {
            return Ok(tg);
        }
    }
    Err(too_contended())
}

/// The request of `ModifyTargetGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyRequest {
    target_group_arn: Option<String>,
    #[serde(flatten)]
    health: serde_json::Map<String, Value>,
}

/// ELBv2 `ModifyTargetGroup`.
pub async fn modify(ctx: &Ctx, req: ModifyRequest) -> Result<Value, ApiError> {
    let arn = req
        .target_group_arn
        .ok_or_else(|| invalid("TargetGroupArn is required"))?;
    let params = Value::Object(req.health);
    let tg = update(ctx, &arn, |tg| {
        let hp: HealthParams = super::parse(params.clone())?;
        hp.apply(&mut tg.health_check)
    })
    .await?;
    let usage = usage(ctx).await?;
    Ok(json!({"TargetGroups": [wire(&tg, usage.get(&tg.arn))]}))
}

/// The request of `DescribeTargetGroupAttributes`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAttributesRequest {
    target_group_arn: Option<String>,
}

/// ELBv2 `DescribeTargetGroupAttributes`.
pub async fn describe_attributes(
    ctx: &Ctx,
    req: DescribeAttributesRequest,
) -> Result<Value, ApiError> {
    let arn = req
        .target_group_arn
        .ok_or_else(|| invalid("TargetGroupArn is required"))?;
    let (tg, _) = load(ctx, &arn).await?;
    Ok(super::attributes_wire(&tg.attributes))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Attribute {
    key: Option<String>,
    value: Option<String>,
}

/// The request of `ModifyTargetGroupAttributes`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyAttributesRequest {
    target_group_arn: Option<String>,
    #[serde(default, deserialize_with = "list")]
    attributes: Vec<Attribute>,
}

/// ELBv2 `ModifyTargetGroupAttributes`.
pub async fn modify_attributes(ctx: &Ctx, req: ModifyAttributesRequest) -> Result<Value, ApiError> {
    let arn = req
        .target_group_arn
        .ok_or_else(|| invalid("TargetGroupArn is required"))?;
    if req.attributes.is_empty() {
        return Err(invalid("At least one attribute is required"));
    }
    let mut changes = Vec::new();
    for a in req.attributes {
        let key = a.key.ok_or_else(|| invalid("An attribute needs a Key"))?;
        let value = a.value.unwrap_or_default();
        TargetGroup::validate_attribute(&key, &value)?;
        changes.push((key, value));
    }
    let tg = update(ctx, &arn, |tg| {
        for (k, v) in &changes {
            tg.attributes.insert(k.clone(), v.clone());
        }
        Ok(())
    })
    .await?;
    Ok(super::attributes_wire(&tg.attributes))
}

/// The request of `DeleteTargetGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    target_group_arn: Option<String>,
}

/// ELBv2 `DeleteTargetGroup`.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    let arn = req
        .target_group_arn
        .ok_or_else(|| invalid("TargetGroupArn is required"))?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        // Deleting a target group that does not exist succeeds, as in ELB.
        let Ok((tg, rev)) = load(ctx, &arn).await else {
            return Ok(json!({}));
        };
        if usage(ctx).await?.contains_key(&arn) {
            return Err(err(
                ErrorCode::ElbResourceInUse,
                format!("Target group '{arn}' is currently in use by a listener or a rule"),
            ));
        }
        let targets = ctx
            .store()
            .list_json::<TargetRegistration>(&keys::elb_targets_of(&arn))
            .await
            .map_err(store_err)?;
        let key = keys::elb_target_group(&arn);
        let mut txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .delete(key)
            .delete(keys::elb_tg_name(&tg.name));
        for (k, _, _) in targets {
            txn = txn.delete(k);
        }
        if commit(ctx, txn).await? {
            return Ok(json!({}));
        }
    }
    Err(too_contended())
}
