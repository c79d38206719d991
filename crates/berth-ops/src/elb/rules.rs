//! CreateRule, DescribeRules, ModifyRule, SetRulePriorities, DeleteRule.
//!
//! A listener's default rule is not stored: DescribeRules shows it from the listener (its
//! `default_rule_arn` and default actions), with priority `default`.

use std::collections::{BTreeMap, HashMap};

use berth_model::lb::lenient::{list, opt_num};
use berth_model::lb::{validate_conditions, validate_elb_tags, validate_priority, ElbTag};
use berth_model::{keys, ApiError, ElbAction, ErrorCode, Listener, ListenerRule, RuleCondition};
use berth_store::{StoreExt, Txn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::listeners::{check_actions, guard_target_groups};
use super::{commit, err, invalid, new_id, page, page_result, to_bytes, too_contended};
use crate::{store_err, Ctx};

/// At most this many rules (besides the default) on one listener.
const MAX_RULES: usize = 100;

fn not_found(arn: &str) -> ApiError {
    err(
        ErrorCode::ElbRuleNotFound,
        format!("Rule '{arn}' not found"),
    )
}

fn priority_in_use(p: u32) -> ApiError {
    err(
        ErrorCode::ElbPriorityInUse,
        format!("Priority '{p}' is currently in use"),
    )
}

fn default_rule_not_permitted() -> ApiError {
    err(
        ErrorCode::ElbOperationNotPermitted,
        "The default rule cannot be changed this way; use ModifyListener for its actions",
    )
}

/// A rule as found: a stored one, or a listener's default rule.
enum Found {
    Rule(ListenerRule, u64),
    Default(Listener),
}

/// The listener ARN a rule ARN belongs to (`listener-rule/app/LB/ID/LID/RID` -> `listener/...`).
fn listener_of(rule_arn: &str) -> Option<String> {
    let (head, _) = rule_arn.rsplit_once('/')?;
    let (prefix, res) = head.rsplit_once(':')?;
    Some(format!(
        "{prefix}:{}",
        res.replacen("listener-rule/", "listener/", 1)
    ))
}

async fn find(ctx: &Ctx, arn: &str) -> Result<Found, ApiError> {
    if let Some((r, rev)) = ctx
        .store()
        .get_json::<ListenerRule>(&keys::elb_rule(arn))
        .await
        .map_err(store_err)?
    {
        if r.arn == arn {
            return Ok(Found::Rule(r, rev));
        }
    }
    if let Some(l_arn) = listener_of(arn) {
        if let Ok((l, _)) = super::listeners::load(ctx, &l_arn).await {
            if l.default_rule_arn == arn {
                return Ok(Found::Default(l));
            }
        }
    }
    Err(not_found(arn))
}

fn wire(r: &ListenerRule) -> Value {
    json!({
        "RuleArn": r.arn,
        "Priority": r.priority.to_string(),
        "Conditions": r.conditions,
        "Actions": r.actions,
        "IsDefault": false,
    })
}

fn default_wire(l: &Listener) -> Value {
    json!({
        "RuleArn": l.default_rule_arn,
        "Priority": "default",
        "Conditions": Vec::<Value>::new(),
        "Actions": l.default_actions,
        "IsDefault": true,
    })
}

/// The request of `CreateRule`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    listener_arn: Option<String>,
    #[serde(default, deserialize_with = "list")]
    conditions: Vec<RuleCondition>,
    #[serde(default, deserialize_with = "opt_num")]
    priority: Option<i64>,
    #[serde(default, deserialize_with = "list")]
    actions: Vec<ElbAction>,
    #[serde(default, deserialize_with = "list")]
    tags: Vec<ElbTag>,
}

/// ELBv2 `CreateRule`.
pub async fn create(ctx: &Ctx, req: CreateRequest) -> Result<Value, ApiError> {
    let l_arn = req
        .listener_arn
        .ok_or_else(|| invalid("ListenerArn is required"))?;
    let priority = validate_priority(
        req.priority
            .ok_or_else(|| invalid("Priority is required"))?,
    )?;
    validate_conditions(&req.conditions)?;
    validate_elb_tags(&req.tags)?;
    super::listeners::load(ctx, &l_arn).await?;
    check_actions(ctx, &req.actions).await?;
    let l_res = l_arn
        .rsplit_once(":listener/")
        .map(|(_, r)| r.to_owned())
        .ok_or_else(|| super::listeners::not_found(&l_arn))?;
    let rule = ListenerRule {
        arn: ctx.elb_arn(&format!("listener-rule/{l_res}/{}", new_id())),
        listener_arn: l_arn.clone(),
        priority,
        conditions: req.conditions,
        actions: req.actions,
        created_at: ctx.now(),
        tags: req.tags,
    };
    let prio_key = keys::elb_priority(&l_arn, priority);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (l, l_rev) = super::listeners::load(ctx, &l_arn).await?;
        if ctx
            .store()
            .get(&prio_key)
            .await
            .map_err(store_err)?
            .is_some()
        {
            return Err(priority_in_use(priority));
        }
        let count = ctx
            .store()
            .list(&keys::elb_rules_of(&l_arn))
            .await
            .map_err(store_err)?
            .0
            .len();
        if count >= MAX_RULES {
            return Err(err(
                ErrorCode::ElbTooManyRules,
                format!("A listener has at most {MAX_RULES} rules"),
            ));
        }
        let key = keys::elb_rule(&rule.arn);
        // The listener is rewritten too, so a DeleteListener racing with this retries and
        // sees the new rule.
        let l_key = keys::elb_listener(&l_arn);
        let txn = Txn::new()
            .when_mod_revision(l_key.clone(), l_rev)
            .when_absent(prio_key.clone())
            .put(l_key, to_bytes(&l)?)
            .put(prio_key.clone(), to_bytes(&rule.arn)?)
            .put(key, to_bytes(&rule)?);
        let txn = guard_target_groups(ctx, &rule.actions, txn).await?;
        if commit(ctx, txn).await? {
            return Ok(json!({"Rules": [wire(&rule)]}));
        }
    }
    Err(too_contended())
}

/// The request of `DescribeRules`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    listener_arn: Option<String>,
    #[serde(default, deserialize_with = "list")]
    rule_arns: Vec<String>,
    marker: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    page_size: Option<u32>,
}

/// Sort key: rules by priority, the default rule last.
fn order_key(p: Option<u32>, arn: &str) -> String {
    match p {
        Some(p) => format!("{p:05}/{arn}"),
        None => format!("default/{arn}"),
    }
}

/// ELBv2 `DescribeRules`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let mut found: Vec<(String, Value)> = Vec::new();
    match (&req.listener_arn, req.rule_arns.is_empty()) {
        (Some(l_arn), true) => {
            let (l, _) = super::listeners::load(ctx, l_arn).await?;
            for (_, r, _) in ctx
                .store()
                .list_json::<ListenerRule>(&keys::elb_rules_of(l_arn))
                .await
                .map_err(store_err)?
            {
                found.push((order_key(Some(r.priority), &r.arn), wire(&r)));
            }
            found.push((order_key(None, &l.default_rule_arn), default_wire(&l)));
        }
        (None, false) => {
            for arn in &req.rule_arns {
                match find(ctx, arn).await? {
                    Found::Rule(r, _) => found.push((order_key(Some(r.priority), arn), wire(&r))),
                    Found::Default(l) => found.push((order_key(None, arn), default_wire(&l))),
                }
            }
        }
        _ => return Err(invalid("Specify either a listener ARN or rule ARNs")),
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    let (rules, next) = page(found, req.marker.as_deref(), req.page_size)?;
    Ok(page_result("Rules", rules, next))
}

/// The request of `ModifyRule`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyRequest {
    rule_arn: Option<String>,
    #[serde(default, deserialize_with = "list")]
    conditions: Vec<RuleCondition>,
    #[serde(default, deserialize_with = "list")]
    actions: Vec<ElbAction>,
}

/// ELBv2 `ModifyRule`.
pub async fn modify(ctx: &Ctx, req: ModifyRequest) -> Result<Value, ApiError> {
    let arn = req.rule_arn.ok_or_else(|| invalid("RuleArn is required"))?;
    if !req.conditions.is_empty() {
        validate_conditions(&req.conditions)?;
    }
    if !req.actions.is_empty() {
        check_actions(ctx, &req.actions).await?;
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut r, rev) = match find(ctx, &arn).await? {
            Found::Rule(r, rev) => (r, rev),
            Found::Default(_) => return Err(default_rule_not_permitted()),
        };
        if !req.conditions.is_empty() {
            r.conditions = req.conditions.clone();
        }
        if !req.actions.is_empty() {
            r.actions = req.actions.clone();
        }
        let key = keys::elb_rule(&arn);
        let mut txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .put(key, to_bytes(&r)?);
        if !req.actions.is_empty() {
            txn = guard_target_groups(ctx, &r.actions, txn).await?;
        }
        if commit(ctx, txn).await? {
            return Ok(json!({"Rules": [wire(&r)]}));
        }
    }
    Err(too_contended())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PriorityPair {
    rule_arn: Option<String>,
    #[serde(default, deserialize_with = "opt_num")]
    priority: Option<i64>,
}

/// The request of `SetRulePriorities`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetPrioritiesRequest {
    #[serde(default, deserialize_with = "list")]
    rule_priorities: Vec<PriorityPair>,
}

/// Checks a listener's priorities after a SetRulePriorities: `moves` maps rule ARN to its new
/// priority; `current` is every rule of the listener with its priority now. Returns the first
/// priority two rules would share.
pub(crate) fn clashing_priority(
    current: &[(String, u32)],
    moves: &HashMap<String, u32>,
) -> Option<u32> {
    let mut taken: BTreeMap<u32, &str> = BTreeMap::new();
    for (arn, p) in current {
        let p = moves.get(arn).copied().unwrap_or(*p);
        if taken.insert(p, arn).is_some() {
            return Some(p);
        }
    }
    None
}

/// ELBv2 `SetRulePriorities`.
pub async fn set_priorities(ctx: &Ctx, req: SetPrioritiesRequest) -> Result<Value, ApiError> {
    if req.rule_priorities.is_empty() {
        return Err(invalid("RulePriorities is required"));
    }
    let mut moves: HashMap<String, u32> = HashMap::new();
    for p in &req.rule_priorities {
        let arn = p
            .rule_arn
            .clone()
            .ok_or_else(|| invalid("Each rule priority needs a RuleArn"))?;
        let prio = validate_priority(
            p.priority
                .ok_or_else(|| invalid("Each rule priority needs a Priority"))?,
        )?;
        if moves.insert(arn.clone(), prio).is_some() {
            return Err(invalid(format!("Rule '{arn}' is given more than once")));
        }
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let mut moved: Vec<(ListenerRule, u64)> = Vec::new();
        for arn in moves.keys() {
            match find(ctx, arn).await? {
                Found::Rule(r, rev) => moved.push((r, rev)),
                Found::Default(_) => return Err(default_rule_not_permitted()),
            }
        }
        let mut txn = Txn::new();
        let mut listeners: Vec<String> =
            moved.iter().map(|(r, _)| r.listener_arn.clone()).collect();
        listeners.sort();
        listeners.dedup();
        for l_arn in &listeners {
            let current: Vec<(String, u32)> = ctx
                .store()
                .list_json::<ListenerRule>(&keys::elb_rules_of(l_arn))
                .await
                .map_err(store_err)?
                .into_iter()
                .map(|(_, r, _)| (r.arn, r.priority))
                .collect();
            if let Some(p) = clashing_priority(&current, &moves) {
                return Err(priority_in_use(p));
            }
        }
        // Old priority keys go first, then the new ones are claimed; a key freed by another
        // move in this request may be claimed again, any other must be free.
        let freed: Vec<String> = moved
            .iter()
            .map(|(r, _)| keys::elb_priority(&r.listener_arn, r.priority))
            .collect();
        for (r, rev) in &moved {
            txn = txn
                .when_mod_revision(keys::elb_rule(&r.arn), *rev)
                .delete(keys::elb_priority(&r.listener_arn, r.priority));
        }
        let mut out = Vec::new();
        for (r, _) in &mut moved {
            r.priority = moves[&r.arn];
            let new_key = keys::elb_priority(&r.listener_arn, r.priority);
            if !freed.contains(&new_key) {
                txn = txn.when_absent(new_key.clone());
            }
            txn = txn
                .put(new_key, to_bytes(&r.arn)?)
                .put(keys::elb_rule(&r.arn), to_bytes(&*r)?);
            out.push((order_key(Some(r.priority), &r.arn), wire(r)));
        }
        if commit(ctx, txn).await? {
            out.sort_by(|a, b| a.0.cmp(&b.0));
            let rules: Vec<Value> = out.into_iter().map(|(_, v)| v).collect();
            return Ok(json!({ "Rules": rules }));
        }
    }
    Err(too_contended())
}

/// The request of `DeleteRule`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    rule_arn: Option<String>,
}

/// ELBv2 `DeleteRule`.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    let arn = req.rule_arn.ok_or_else(|| invalid("RuleArn is required"))?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (r, rev) = match find(ctx, &arn).await? {
            Found::Rule(r, rev) => (r, rev),
            Found::Default(_) => {
                return Err(err(
                    ErrorCode::ElbOperationNotPermitted,
                    "The default rule cannot be deleted",
                ))
            }
        };
        let key = keys::elb_rule(&arn);
        let txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .delete(key)
            .delete(keys::elb_priority(&r.listener_arn, r.priority));
        if commit(ctx, txn).await? {
            return Ok(json!({}));
        }
    }
    Err(too_contended())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swapping_priorities_is_allowed_but_collisions_are_not() {
        let current = vec![
            ("a".to_owned(), 1),
            ("b".to_owned(), 2),
            ("c".to_owned(), 3),
        ];
        let swap: HashMap<String, u32> = [("a".to_owned(), 2), ("b".to_owned(), 1)].into();
        assert_eq!(clashing_priority(&current, &swap), None);
        let clash: HashMap<String, u32> = [("a".to_owned(), 3)].into();
        assert_eq!(clashing_priority(&current, &clash), Some(3));
        let free: HashMap<String, u32> = [("a".to_owned(), 10)].into();
        assert_eq!(clashing_priority(&current, &free), None);
    }

    #[test]
    fn rule_arns_name_their_listener() {
        let r = "arn:aws:elasticloadbalancing:eu-west-1:0:listener-rule/app/web/aa/bb/cc";
        assert_eq!(
            listener_of(r).as_deref(),
            Some("arn:aws:elasticloadbalancing:eu-west-1:0:listener/app/web/aa/bb")
        );
    }
}
