//! CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer.

use berth_model::lb::lenient::{list, opt_num};
use berth_model::lb::{validate_elb_name, validate_elb_tags, ElbTag, Listener, ListenerRule};
use berth_model::{keys, ApiError, ErrorCode, LoadBalancer};
use berth_store::{StoreExt, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{commit, err, invalid, iso, new_id, page, page_result, to_bytes, too_contended};
use crate::{store_err, Ctx};

pub(super) fn not_found(arn: &str) -> ApiError {
    err(
        ErrorCode::ElbLoadBalancerNotFound,
        format!("Load balancer '{arn}' not found"),
    )
}

/// The load balancer `arn` names, with its revision, or LoadBalancerNotFound.
pub async fn load(ctx: &Ctx, arn: &str) -> Result<(LoadBalancer, u64), ApiError> {
    match ctx
        .store()
        .get_json::<LoadBalancer>(&keys::elb_load_balancer(arn))
        .await
        .map_err(store_err)?
    {
        Some((lb, rev)) if lb.arn == arn => Ok((lb, rev)),
        _ => Err(not_found(arn)),
    }
}

pub(super) fn wire(ctx: &Ctx, lb: &LoadBalancer) -> Value {
    let zones: Vec<Value> = lb
        .subnets
        .iter()
        .map(|s| json!({"ZoneName": format!("{}a", ctx.region), "SubnetId": s}))
        .collect();
    json!({
        "LoadBalancerArn": lb.arn,
        "DNSName": lb.dns_name,
        "CreatedTime": iso(lb.created_at),
        "LoadBalancerName": lb.name,
        "Scheme": lb.scheme,
        "VpcId": lb.vpc_id,
        "State": {"Code": "active"},
        "Type": lb.lb_type,
        "AvailabilityZones": zones,
        "SecurityGroups": lb.security_groups,
        "IpAddressType": lb.ip_address_type,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SubnetMapping {
    subnet_id: Option<String>,
}

/// The request of `CreateLoadBalancer`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    name: Option<String>,
    #[serde(default, deserialize_with = "list")]
    subnets: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    subnet_mappings: Vec<SubnetMapping>,
    #[serde(default, deserialize_with = "list")]
    security_groups: Vec<String>,
    scheme: Option<String>,
    #[serde(default, deserialize_with = "list")]
    tags: Vec<ElbTag>,
    #[serde(rename = "Type")]
    lb_type: Option<String>,
    ip_address_type: Option<String>,
}

/// ELBv2 `CreateLoadBalancer`.
pub async fn create(ctx: &Ctx, req: CreateRequest) -> Result<Value, ApiError> {
    let name = req.name.ok_or_else(|| invalid("Name is required"))?;
    validate_elb_name("Load balancer", &name)?;
    validate_elb_tags(&req.tags)?;
    let scheme = req.scheme.unwrap_or_else(|| "internet-facing".into());
    if !matches!(scheme.as_str(), "internet-facing" | "internal") {
        return Err(invalid(format!(
            "Scheme must be 'internet-facing' or 'internal'; got '{scheme}'"
        )));
    }
    let lb_type = req.lb_type.unwrap_or_else(|| "application".into());
    if lb_type != "application" {
        return Err(invalid(format!(
            "berth runs application load balancers only; got Type '{lb_type}'"
        )));
    }
    let ip_type = req.ip_address_type.unwrap_or_else(|| "ipv4".into());
    if !matches!(ip_type.as_str(), "ipv4" | "dualstack") {
        return Err(invalid(format!("Invalid IpAddressType '{ip_type}'")));
    }
    let mut subnets = req.subnets;
    subnets.extend(req.subnet_mappings.into_iter().filter_map(|m| m.subnet_id));
    let id = new_id();
    let lb = LoadBalancer {
        arn: ctx.elb_arn(&format!("loadbalancer/app/{name}/{id}")),
        name: name.clone(),
        dns_name: ctx.state.lb_host.to_string(),
        scheme,
        lb_type,
        ip_address_type: ip_type,
        subnets,
        security_groups: req.security_groups,
        vpc_id: None,
        created_at: ctx.now(),
        tags: req.tags,
        attributes: Default::default(),
    };
    let name_key = keys::elb_lb_name(&name);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        if let Some((arn, _)) = ctx
            .store()
            .get_json::<String>(&name_key)
            .await
            .map_err(store_err)?
        {
            // Idempotent, as ELB is: the same settings again return the load balancer.
            if let Ok((old, _)) = load(ctx, &arn).await {
                if old.scheme == lb.scheme && old.lb_type == lb.lb_type {
                    return Ok(json!({"LoadBalancers": [wire(ctx, &old)]}));
                }
            }
            return Err(err(
                ErrorCode::ElbDuplicateLoadBalancerName,
                format!("A load balancer with the name '{name}' already exists"),
            ));
        }
        let key = keys::elb_load_balancer(&lb.arn);
        let txn = Txn::new()
            .when_absent(name_key.clone())
            .when_absent(key.clone())
            .put(name_key.clone(), to_bytes(&lb.arn)?)
            .put(key, to_bytes(&lb)?);
        if commit(ctx, txn).await? {
            return Ok(json!({"LoadBalancers": [wire(ctx, &lb)]}));
        }
    }
    Err(too_contended())
}

/// The request of `DescribeLoadBalancers`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    #[serde(default, deserialize_with = "list")]
    load_balancer_arns: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    names: Vec<String>,
    marker: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    page_size: Option<u32>,
}

/// ELBv2 `DescribeLoadBalancers`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    if !req.load_balancer_arns.is_empty() && !req.names.is_empty() {
        return Err(invalid(
            "Specify either load balancer ARNs or names, not both",
        ));
    }
    if req.load_balancer_arns.len() > 20 || req.names.len() > 20 {
        return Err(invalid(
            "At most 20 load balancers can be described at once",
        ));
    }
    let mut found: Vec<(String, LoadBalancer)> = Vec::new();
    if !req.names.is_empty() {
        for name in &req.names {
            let arn = super::arn_by_name(ctx, &keys::elb_lb_name(name), || {
                err(
                    ErrorCode::ElbLoadBalancerNotFound,
                    format!("Load balancers '[{name}]' not found"),
                )
            })
            .await?;
            let (lb, _) = load(ctx, &arn).await?;
            found.push((keys::elb_load_balancer(&arn), lb));
        }
    } else if !req.load_balancer_arns.is_empty() {
        for arn in &req.load_balancer_arns {
            let (lb, _) = load(ctx, arn).await?;
            found.push((keys::elb_load_balancer(arn), lb));
        }
    } else {
        found = ctx
            .store()
            .list_json::<LoadBalancer>(keys::ELB_LOAD_BALANCERS)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|(k, lb, _)| (k, lb))
            .collect();
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    let (lbs, next) = page(found, req.marker.as_deref(), req.page_size)?;
    let items = lbs.iter().map(|lb| wire(ctx, lb)).collect();
    Ok(page_result("LoadBalancers", items, next))
}

/// The request of `DeleteLoadBalancer`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    load_balancer_arn: Option<String>,
}

/// ELBv2 `DeleteLoadBalancer`.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    let arn = req
        .load_balancer_arn
        .ok_or_else(|| invalid("LoadBalancerArn is required"))?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (lb, rev) = load(ctx, &arn).await?;
        let listeners = ctx
            .store()
            .list_json::<Listener>(&keys::elb_listeners_of(&arn))
            .await
            .map_err(store_err)?;
        let rules = ctx
            .store()
            .list_json::<ListenerRule>(&keys::elb_rules_of_lb(&arn))
            .await
            .map_err(store_err)?;
        let lb_key = keys::elb_load_balancer(&arn);
        let mut txn = Txn::new()
            .when_mod_revision(lb_key.clone(), rev)
            .delete(lb_key)
            .delete(keys::elb_lb_name(&lb.name));
        for (k, l, r) in &listeners {
            txn = txn
                .when_mod_revision(k.clone(), *r)
                .delete(k.clone())
                .delete(keys::elb_port(l.port));
        }
        for (k, rule, _) in &rules {
            txn = txn
                .delete(k.clone())
                .delete(keys::elb_priority(&rule.listener_arn, rule.priority));
        }
        if commit(ctx, txn).await? {
            return Ok(json!({}));
        }
    }
    Err(too_contended())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Attribute {
    key: Option<String>,
    value: Option<String>,
}

/// The request of `DescribeLoadBalancerAttributes`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAttributesRequest {
    load_balancer_arn: Option<String>,
}

/// ELBv2 `DescribeLoadBalancerAttributes`: the attributes berth honours, defaults included.
pub async fn describe_attributes(
    ctx: &Ctx,
    req: DescribeAttributesRequest,
) -> Result<Value, ApiError> {
    let arn = req
        .load_balancer_arn
        .ok_or_else(|| invalid("LoadBalancerArn is required"))?;
    let (lb, _) = load(ctx, &arn).await?;
    Ok(super::attributes_wire(&lb.attributes()))
}

/// The request of `ModifyLoadBalancerAttributes`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyAttributesRequest {
    load_balancer_arn: Option<String>,
    #[serde(default, deserialize_with = "list")]
    attributes: Vec<Attribute>,
}

/// ELBv2 `ModifyLoadBalancerAttributes`. The load-balancer sync applies a new idle timeout to
/// the listeners' connections.
pub async fn modify_attributes(ctx: &Ctx, req: ModifyAttributesRequest) -> Result<Value, ApiError> {
    let arn = req
        .load_balancer_arn
        .ok_or_else(|| invalid("LoadBalancerArn is required"))?;
    if req.attributes.is_empty() {
        return Err(invalid("At least one attribute is required"));
    }
    let mut changes = Vec::new();
    for a in req.attributes {
        let key = a.key.ok_or_else(|| invalid("An attribute needs a Key"))?;
        let value = a.value.unwrap_or_default();
        LoadBalancer::validate_attribute(&key, &value)?;
        changes.push((key, value));
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut lb, rev) = load(ctx, &arn).await?;
        for (k, v) in &changes {
            lb.attributes.insert(k.clone(), v.clone());
        }
        let key = keys::elb_load_balancer(&arn);
        let txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .put(key, to_bytes(&lb)?);
        if commit(ctx, txn).await? {
            return Ok(super::attributes_wire(&lb.attributes()));
        }
    }
    Err(too_contended())
}
