//! CreateListener, DescribeListeners, ModifyListener, DeleteListener.

use berth_model::lb::lenient::{list, opt_num};
use berth_model::lb::{validate_actions, validate_elb_port, validate_elb_tags, ElbTag};
use berth_model::{keys, ApiError, ElbAction, ErrorCode, Listener, ListenerRule};
use berth_store::{StoreExt, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{commit, err, invalid, new_id, page, page_result, to_bytes, too_contended};
use crate::{store_err, Ctx};

pub(super) fn not_found(arn: &str) -> ApiError {
    err(
        ErrorCode::ElbListenerNotFound,
        format!("Listener '{arn}' not found"),
    )
}

/// The listener `arn` names, with its revision, or ListenerNotFound.
pub async fn load(ctx: &Ctx, arn: &str) -> Result<(Listener, u64), ApiError> {
    match ctx
        .store()
        .get_json::<Listener>(&keys::elb_listener(arn))
        .await
        .map_err(store_err)?
    {
        Some((l, rev)) if l.arn == arn => Ok((l, rev)),
        _ => Err(not_found(arn)),
    }
}

pub(super) fn wire(l: &Listener) -> Value {
    json!({
        "ListenerArn": l.arn,
        "LoadBalancerArn": l.load_balancer_arn,
        "Port": l.port,
        "Protocol": l.protocol,
        "DefaultActions": l.default_actions,
    })
}

/// Checks actions, and that every target group they forward to exists.
pub async fn check_actions(ctx: &Ctx, actions: &[ElbAction]) -> Result<(), ApiError> {
    validate_actions(actions)?;
    for a in actions {
        for (tg, _) in a.forward_targets() {
            super::target_groups::load(ctx, &tg).await?;
        }
    }
    Ok(())
}

/// Adds to `txn` a rewrite (unchanged) of every target group `actions` forward to, guarded by
/// the revision read now. DeleteTargetGroup checks that no listener or rule uses the target
/// group and deletes it guarded by the same record: whichever of the two commits second
/// conflicts, so a DeleteTargetGroup that retries finds the target group in use, and a write
/// that retries finds it gone.
pub(super) async fn guard_target_groups(
    ctx: &Ctx,
    actions: &[ElbAction],
    mut txn: Txn,
) -> Result<Txn, ApiError> {
    let mut seen = std::collections::HashSet::new();
    for a in actions {
        for (arn, _) in a.forward_targets() {
            if !seen.insert(arn.clone()) {
                continue;
            }
            let (tg, rev) = super::target_groups::load(ctx, &arn).await?;
            let key = keys::elb_target_group(&arn);
            txn = txn
                .when_mod_revision(key.clone(), rev)
                .put(key, to_bytes(&tg)?);
        }
    }
    Ok(txn)
}

fn check_protocol(p: &str) -> Result<(), ApiError> {
    if p == "HTTP" {
        Ok(())
    } else {
        Err(err(
            ErrorCode::ElbUnsupportedProtocol,
            format!("berth listeners support the HTTP protocol only; got '{p}'"),
        ))
    }
}

/// Refuses a port the load-balancer host cannot bind (as ALB refuses a listener setting it
/// cannot honour), so a listener is never stored and then silently not served.
fn check_bindable(ctx: &Ctx, port: u16) -> Result<(), ApiError> {
    let Some(ports) = &ctx.state.listener_ports else {
        return Ok(());
    };
    ports.check_port(port).map_err(|reason| {
        err(
            ErrorCode::ElbInvalidConfigurationRequest,
            format!(
                "Port {port} cannot be used for a listener: it cannot be bound on the \
                 load-balancer host {}: {reason}",
                ctx.state.lb_host
            ),
        )
    })
}

fn duplicate(port: u16) -> ApiError {
    err(
        ErrorCode::ElbDuplicateListener,
        format!(
            "A listener already exists on port {port} (all listeners share the load-balancer host)"
        ),
    )
}

/// The request of `CreateListener`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    load_balancer_arn: Option<String>,
    protocol: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    port: Option<i64>,
    #[serde(default, deserialize_with = "list")]
    default_actions: Vec<ElbAction>,
    #[serde(default, deserialize_with = "list")]
    tags: Vec<ElbTag>,
}

/// ELBv2 `CreateListener`.
pub async fn create(ctx: &Ctx, req: CreateRequest) -> Result<Value, ApiError> {
    let lb_arn = req
        .load_balancer_arn
        .ok_or_else(|| invalid("LoadBalancerArn is required"))?;
    let protocol = req.protocol.unwrap_or_else(|| "HTTP".into());
    check_protocol(&protocol)?;
    let port = validate_elb_port(req.port.ok_or_else(|| invalid("Port is required"))?)?;
    validate_elb_tags(&req.tags)?;
    let (lb, _) = super::load_balancers::load(ctx, &lb_arn).await?;
    check_actions(ctx, &req.default_actions).await?;
    let lb_res = format!(
        "app/{}/{}",
        lb.name,
        lb_arn.rsplit('/').next().unwrap_or("")
    );
    let id = new_id();
    let l = Listener {
        arn: ctx.elb_arn(&format!("listener/{lb_res}/{id}")),
        load_balancer_arn: lb_arn.clone(),
        port,
        protocol,
        default_actions: req.default_actions,
        default_rule_arn: ctx.elb_arn(&format!("listener-rule/{lb_res}/{id}/{}", new_id())),
        created_at: ctx.now(),
        tags: req.tags,
    };
    let port_key = keys::elb_port(port);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        if let Some((holder, _)) = ctx
            .store()
            .get_json::<String>(&port_key)
            .await
            .map_err(store_err)?
        {
            // Idempotent for the same settings on the same load balancer, as ELB is.
            if let Ok((old, _)) = load(ctx, &holder).await {
                if old.load_balancer_arn == lb_arn
                    && old.protocol == l.protocol
                    && old.default_actions == l.default_actions
                {
                    return Ok(json!({"Listeners": [wire(&old)]}));
                }
            }
            return Err(duplicate(port));
        }
        check_bindable(ctx, port)?;
        let (lb, lb_rev) = super::load_balancers::load(ctx, &lb_arn).await?;
        let key = keys::elb_listener(&l.arn);
        // The load balancer is rewritten too (unchanged), so a DeleteLoadBalancer racing with
        // this retries and sees the new listener.
        let lb_key = keys::elb_load_balancer(&lb_arn);
        let txn = Txn::new()
            .when_mod_revision(lb_key.clone(), lb_rev)
            .put(lb_key, to_bytes(&lb)?)
            .when_absent(port_key.clone())
            .when_absent(key.clone())
            .put(port_key.clone(), to_bytes(&l.arn)?)
            .put(key, to_bytes(&l)?);
        let txn = guard_target_groups(ctx, &l.default_actions, txn).await?;
        if commit(ctx, txn).await? {
            return Ok(json!({"Listeners": [wire(&l)]}));
        }
    }
    Err(too_contended())
}

/// The request of `DescribeListeners`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    load_balancer_arn: Option<String>,
    #[serde(default, deserialize_with = "list")]
    listener_arns: Vec<String>,
    marker: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    page_size: Option<u32>,
}

/// ELBv2 `DescribeListeners`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let mut found: Vec<(String, Listener)> = Vec::new();
    match (&req.load_balancer_arn, req.listener_arns.is_empty()) {
        (Some(lb), true) => {
            super::load_balancers::load(ctx, lb).await?;
            found = ctx
                .store()
                .list_json::<Listener>(&keys::elb_listeners_of(lb))
                .await
                .map_err(store_err)?
                .into_iter()
                .map(|(k, l, _)| (k, l))
                .collect();
        }
        (None, false) => {
            for arn in &req.listener_arns {
                let (l, _) = load(ctx, arn).await?;
                found.push((keys::elb_listener(arn), l));
            }
        }
        _ => {
            return Err(invalid(
                "Specify either a load balancer ARN or listener ARNs",
            ))
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    let (ls, next) = page(found, req.marker.as_deref(), req.page_size)?;
    Ok(page_result(
        "Listeners",
        ls.iter().map(wire).collect(),
        next,
    ))
}

/// The request of `ModifyListener`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyRequest {
    listener_arn: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    port: Option<i64>,
    protocol: Option<String>,
    #[serde(default, deserialize_with = "list")]
    default_actions: Vec<ElbAction>,
}

/// ELBv2 `ModifyListener`.
pub async fn modify(ctx: &Ctx, req: ModifyRequest) -> Result<Value, ApiError> {
    let arn = req
        .listener_arn
        .ok_or_else(|| invalid("ListenerArn is required"))?;
    let port = req.port.map(validate_elb_port).transpose()?;
    if let Some(p) = &req.protocol {
        check_protocol(p)?;
    }
    if !req.default_actions.is_empty() {
        check_actions(ctx, &req.default_actions).await?;
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut l, rev) = load(ctx, &arn).await?;
        let key = keys::elb_listener(&arn);
        let mut txn = Txn::new().when_mod_revision(key.clone(), rev);
        if let Some(p) = port.filter(|p| *p != l.port) {
            let new_key = keys::elb_port(p);
            if ctx
                .store()
                .get(&new_key)
                .await
                .map_err(store_err)?
                .is_some()
            {
                return Err(duplicate(p));
            }
            check_bindable(ctx, p)?;
            txn = txn
                .when_absent(new_key.clone())
                .delete(keys::elb_port(l.port))
                .put(new_key, to_bytes(&arn)?);
            l.port = p;
        }
        if let Some(p) = &req.protocol {
            l.protocol = p.clone();
        }
        if !req.default_actions.is_empty() {
            l.default_actions = req.default_actions.clone();
            txn = guard_target_groups(ctx, &l.default_actions, txn).await?;
        }
        if commit(ctx, txn.put(key, to_bytes(&l)?)).await? {
            return Ok(json!({"Listeners": [wire(&l)]}));
        }
    }
    Err(too_contended())
}

/// The request of `DeleteListener`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    listener_arn: Option<String>,
}

/// ELBv2 `DeleteListener`.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    let arn = req
        .listener_arn
        .ok_or_else(|| invalid("ListenerArn is required"))?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (l, rev) = load(ctx, &arn).await?;
        let rules = ctx
            .store()
            .list_json::<ListenerRule>(&keys::elb_rules_of(&arn))
            .await
            .map_err(store_err)?;
        let key = keys::elb_listener(&arn);
        let mut txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .delete(key)
            .delete(keys::elb_port(l.port));
        for (k, r, _) in rules {
            txn = txn.delete(k).delete(keys::elb_priority(&arn, r.priority));
        }
        if commit(ctx, txn).await? {
            return Ok(json!({}));
        }
    }
    Err(too_contended())
}
