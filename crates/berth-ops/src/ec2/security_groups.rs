//! CreateSecurityGroup, DescribeSecurityGroups, AuthorizeSecurityGroupIngress,
//! RevokeSecurityGroupIngress, DeleteSecurityGroup.
//!
//! Rules are stored one per source ([`SgRule`]); the wire's `IpPermissions` group them by
//! protocol and ports. Egress is not modelled (tasks may send anywhere): groups show EC2's
//! default allow-all egress rule and AuthorizeSecurityGroupEgress is refused at the edge.

use std::collections::BTreeMap;

use berth_model::vpc::{ec2_error, is_ec2_id, normalise_protocol, Ipv4Net, SecurityGroup, SgRule};
use berth_model::{keys, ApiError};
use berth_store::{StoreExt, Txn};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::vpcs::{default_vpc_id, load_vpc};
use super::{
    bad_value, check, commit, filters_match, list_all, new_id, page, tag_field, tags_for,
    tags_wire, too_contended, Filter, TagSpecification,
};
use crate::{store_err, to_bytes, Ctx};

fn lenient_list<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    berth_model::lb::lenient::list(d)
}

fn group_not_found(what: &str) -> ApiError {
    ec2_error(
        "InvalidGroup.NotFound",
        format!("The security group '{what}' does not exist"),
    )
}

/// The security group `id` names, with its revision, or EC2's not-found / malformed error.
pub async fn load_group(ctx: &Ctx, id: &str) -> Result<(SecurityGroup, u64), ApiError> {
    if !is_ec2_id("sg", id) {
        return Err(ec2_error(
            "InvalidGroupId.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"sg-...\")"),
        ));
    }
    ctx.store()
        .get_json::<SecurityGroup>(&keys::ec2_security_group(id))
        .await
        .map_err(store_err)?
        .ok_or_else(|| group_not_found(id))
}

/// The group given by id, or by name in the default VPC (as EC2 takes `GroupName`).
pub(crate) async fn load_by_id_or_name(
    ctx: &Ctx,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<(SecurityGroup, u64), ApiError> {
    if let Some(id) = id {
        return load_group(ctx, id).await;
    }
    let Some(name) = name else {
        return Err(ec2_error(
            "MissingParameter",
            "The request must contain the parameter groupName or groupId",
        ));
    };
    let vpc = default_vpc_id(ctx).await?.unwrap_or_default();
    list_all::<SecurityGroup>(ctx, keys::EC2_SECURITY_GROUPS)
        .await?
        .into_iter()
        .find(|(g, _)| g.vpc_id == vpc && g.group_name == name)
        .ok_or_else(|| {
            ec2_error(
                "InvalidGroup.NotFound",
                format!("The security group '{name}' does not exist in default VPC '{vpc}'"),
            )
        })
}

/// The `IpPermissions` shape of `rules`, grouped by protocol and ports.
fn permissions_wire(ctx: &Ctx, rules: &[SgRule]) -> Value {
    // (protocol, from, to) -> (ipRanges, groups)
    type Sources = (Vec<Value>, Vec<Value>);
    let mut by: BTreeMap<(String, i32, i32), Sources> = BTreeMap::new();
    for r in rules {
        let e = by
            .entry((r.ip_protocol.clone(), r.from_port, r.to_port))
            .or_default();
        if let Some(c) = &r.cidr_ip {
            e.0.push(json!({"cidrIp": c, "description": r.description}));
        }
        if let Some(g) = &r.source_group_id {
            e.1.push(json!({"groupId": g, "userId": ctx.state.config.account_id, "description": r.description}));
        }
    }
    Value::Array(
        by.into_iter()
            .map(|((p, from, to), (ranges, groups))| {
                let all = p == "-1";
                json!({
                    "ipProtocol": p,
                    "fromPort": (!all).then_some(from),
                    "toPort": (!all).then_some(to),
                    "ipRanges": ranges,
                    "groups": groups,
                    "ipv6Ranges": [],
                    "prefixListIds": [],
                })
            })
            .collect(),
    )
}

fn group_wire(ctx: &Ctx, g: &SecurityGroup) -> Value {
    json!({
        "groupId": g.group_id,
        "groupName": g.group_name,
        "groupDescription": g.description,
        "vpcId": g.vpc_id,
        "ownerId": ctx.state.config.account_id,
        "securityGroupArn": group_arn(ctx, &g.group_id),
        "ipPermissions": permissions_wire(ctx, &g.ingress),
        "ipPermissionsEgress": [{"ipProtocol": "-1", "ipRanges": [{"cidrIp": "0.0.0.0/0"}],
            "groups": [], "ipv6Ranges": [], "prefixListIds": []}],
        "tagSet": tags_wire(&g.tags),
    })
}

fn group_arn(ctx: &Ctx, id: &str) -> String {
    format!(
        "arn:aws:ec2:{}:{}:security-group/{id}",
        ctx.region, ctx.state.config.account_id
    )
}

/// The request of `CreateSecurityGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSecurityGroupRequest {
    group_name: Option<String>,
    group_description: Option<String>,
    vpc_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    tag_specification: Vec<TagSpecification>,
    #[serde(default, deserialize_with = "berth_model::lb::lenient::opt_bool")]
    dry_run: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// EC2 `CreateSecurityGroup` (in the default VPC unless `VpcId` says otherwise).
pub async fn create(ctx: &Ctx, req: CreateSecurityGroupRequest) -> Result<Value, ApiError> {
    check(req.dry_run, &req.rest)?;
    let missing = |m: &str| {
        ec2_error(
            "MissingParameter",
            format!("The request must contain the parameter {m}"),
        )
    };
    let name = req.group_name.ok_or_else(|| missing("groupName"))?;
    let description = req
        .group_description
        .ok_or_else(|| missing("groupDescription"))?;
    if name.is_empty() || name.len() > 255 || name.starts_with("sg-") {
        return Err(bad_value(format!(
            "Value ({name}) for parameter groupName is invalid. Group names may not be empty, longer than 255 characters, or begin with sg-."
        )));
    }
    if description.len() > 255 {
        return Err(bad_value(
            "Value for parameter groupDescription is invalid: longer than 255 characters.",
        ));
    }
    let vpc_id = match req.vpc_id {
        Some(v) => v,
        None => default_vpc_id(ctx)
            .await?
            .ok_or_else(|| ec2_error("VPCIdNotSpecified", "No default VPC for this user"))?,
    };
    let tags = tags_for(req.tag_specification, "security-group")?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (vpc, rev) = load_vpc(ctx, &vpc_id).await?;
        let taken = list_all::<SecurityGroup>(ctx, keys::EC2_SECURITY_GROUPS)
            .await?
            .iter()
            .any(|(g, _)| g.vpc_id == vpc.vpc_id && g.group_name == name);
        if taken {
            return Err(ec2_error(
                "InvalidGroup.Duplicate",
                format!(
                    "The security group '{name}' already exists for VPC '{}'",
                    vpc.vpc_id
                ),
            ));
        }
        let g = SecurityGroup {
            group_id: new_id("sg"),
            group_name: name.clone(),
            description: description.clone(),
            vpc_id: vpc.vpc_id.clone(),
            ingress: Vec::new(),
            tags: tags.clone(),
        };
        let txn = Txn::new()
            .when_mod_revision(keys::ec2_vpc(&vpc.vpc_id), rev)
            .put(keys::ec2_vpc(&vpc.vpc_id), to_bytes(&vpc)?)
            .put(keys::ec2_security_group(&g.group_id), to_bytes(&g)?);
        if commit(ctx, txn).await? {
            return Ok(json!({
                "groupId": g.group_id,
                "securityGroupArn": group_arn(ctx, &g.group_id),
                "tagSet": tags_wire(&g.tags),
            }));
        }
    }
    Err(too_contended())
}

/// The request of `DescribeSecurityGroups`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSecurityGroupsRequest {
    #[serde(default, deserialize_with = "lenient_list")]
    group_id: Vec<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    group_name: Vec<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    filter: Vec<Filter>,
    next_token: Option<String>,
    #[serde(default, deserialize_with = "berth_model::lb::lenient::opt_num")]
    max_results: Option<u32>,
    #[serde(default, deserialize_with = "berth_model::lb::lenient::opt_bool")]
    dry_run: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// EC2 `DescribeSecurityGroups`.
pub async fn describe(ctx: &Ctx, req: DescribeSecurityGroupsRequest) -> Result<Value, ApiError> {
    check(req.dry_run, &req.rest)?;
    let mut wanted = Vec::new();
    for id in &req.group_id {
        wanted.push(load_group(ctx, id).await?.0.group_id);
    }
    for n in &req.group_name {
        wanted.push(load_by_id_or_name(ctx, None, Some(n)).await?.0.group_id);
    }
    let mut out = Vec::new();
    for (g, _) in list_all::<SecurityGroup>(ctx, keys::EC2_SECURITY_GROUPS).await? {
        if !wanted.is_empty() && !wanted.contains(&g.group_id) {
            continue;
        }
        let ok = filters_match(&req.filter, |n| match n {
            "group-id" => Some(vec![g.group_id.clone()]),
            "group-name" => Some(vec![g.group_name.clone()]),
            "vpc-id" => Some(vec![g.vpc_id.clone()]),
            "description" => Some(vec![g.description.clone()]),
            "owner-id" => Some(vec![ctx.state.config.account_id.clone()]),
            "ip-permission.protocol" => {
                Some(g.ingress.iter().map(|r| r.ip_protocol.clone()).collect())
            }
            "ip-permission.cidr" => {
                Some(g.ingress.iter().filter_map(|r| r.cidr_ip.clone()).collect())
            }
            "ip-permission.group-id" => Some(
                g.ingress
                    .iter()
                    .filter_map(|r| r.source_group_id.clone())
                    .collect(),
            ),
            _ => tag_field(n, &g.tags),
        })?;
        if ok {
            out.push((g.group_id.clone(), group_wire(ctx, &g)));
        }
    }
    let (items, next) = page(out, req.next_token.as_deref(), req.max_results)?;
    Ok(json!({"securityGroupInfo": items, "nextToken": next}))
}

/// One `IpPermissions.N`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WirePermission {
    ip_protocol: Option<String>,
    from_port: Option<String>,
    to_port: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    ip_ranges: Vec<WireRange>,
    #[serde(default, deserialize_with = "lenient_list")]
    groups: Vec<WirePair>,
    #[serde(default, deserialize_with = "lenient_list")]
    ipv6_ranges: Vec<Value>,
    #[serde(default, deserialize_with = "lenient_list")]
    prefix_list_ids: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireRange {
    cidr_ip: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WirePair {
    group_id: Option<String>,
    group_name: Option<String>,
    description: Option<String>,
}

/// The request of `AuthorizeSecurityGroupIngress` and `RevokeSecurityGroupIngress`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IngressRequest {
    group_id: Option<String>,
    group_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    ip_permissions: Vec<WirePermission>,
    ip_protocol: Option<String>,
    from_port: Option<String>,
    to_port: Option<String>,
    cidr_ip: Option<String>,
    source_security_group_name: Option<String>,
    source_security_group_owner_id: Option<String>,
    /// Revoke only: rules by id.
    #[serde(default, deserialize_with = "lenient_list")]
    security_group_rule_id: Vec<String>,
    #[serde(default, deserialize_with = "berth_model::lb::lenient::opt_bool")]
    dry_run: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

fn port(v: Option<&str>, what: &str) -> Result<Option<i32>, ApiError> {
    v.map(|s| {
        s.trim()
            .parse::<i32>()
            .map_err(|_| bad_value(format!("Invalid value '{s}' for {what}")))
    })
    .transpose()
}

/// The ports of a rule as EC2 checks them: TCP/UDP need 0..=65535 with from <= to; ICMP takes
/// a type and code (-1 for all); all protocols (`-1`) take none.
pub(crate) fn rule_ports(
    proto: &str,
    from: Option<i32>,
    to: Option<i32>,
) -> Result<(i32, i32), ApiError> {
    match proto {
        "-1" => Ok((-1, -1)),
        "icmp" => {
            let (f, t) = (from.unwrap_or(-1), to.unwrap_or(-1));
            if !(-1..=255).contains(&f) || !(-1..=255).contains(&t) {
                return Err(bad_value(format!(
                    "Invalid value for ICMP type/code: {f}/{t}"
                )));
            }
            Ok((f, t))
        }
        _ => {
            let (Some(f), Some(t)) = (from, to) else {
                return Err(ec2_error(
                    "InvalidParameterValue",
                    "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange",
                ));
            };
            if !(0..=65535).contains(&f) || !(0..=65535).contains(&t) || f > t {
                return Err(bad_value(format!(
                    "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange: {f}-{t}"
                )));
            }
            Ok((f, t))
        }
    }
}

/// The flat rules a request names (its `IpPermissions`, or the top-level shorthand the aws
/// CLI sends for `--protocol --port --cidr`), with source groups checked to exist.
async fn requested_rules(ctx: &Ctx, req: &IngressRequest) -> Result<Vec<SgRule>, ApiError> {
    let mut perms: Vec<WirePermission> = Vec::new();
    if req.ip_protocol.is_some()
        || req.cidr_ip.is_some()
        || req.source_security_group_name.is_some()
    {
        if !req.ip_permissions.is_empty() {
            return Err(bad_value(
                "The parameter 'ipPermissions' may not be used in combination with 'ipProtocol', 'cidrIp' or 'sourceSecurityGroupName'",
            ));
        }
        if req
            .source_security_group_owner_id
            .as_deref()
            .is_some_and(|o| o != ctx.state.config.account_id)
        {
            return Err(ec2_error(
                "UnsupportedOperation",
                "berth has one account: SourceSecurityGroupOwnerId must be it",
            ));
        }
        perms.push(WirePermission {
            ip_protocol: Some(req.ip_protocol.clone().unwrap_or_else(|| "-1".into())),
            from_port: req.from_port.clone(),
            to_port: req.to_port.clone(),
            ip_ranges: req
                .cidr_ip
                .iter()
                .map(|c| WireRange {
                    cidr_ip: Some(c.clone()),
                    description: None,
                })
                .collect(),
            groups: req
                .source_security_group_name
                .iter()
                .map(|n| WirePair {
                    group_id: None,
                    group_name: Some(n.clone()),
                    description: None,
                })
                .collect(),
            ..Default::default()
        });
    }
    perms.extend(req.ip_permissions.iter().map(|p| {
        WirePermission {
            ip_protocol: p.ip_protocol.clone(),
            from_port: p.from_port.clone(),
            to_port: p.to_port.clone(),
            ip_ranges: p
                .ip_ranges
                .iter()
                .map(|r| WireRange {
                    cidr_ip: r.cidr_ip.clone(),
                    description: r.description.clone(),
                })
                .collect(),
            groups: p
                .groups
                .iter()
                .map(|g| WirePair {
                    group_id: g.group_id.clone(),
                    group_name: g.group_name.clone(),
                    description: g.description.clone(),
                })
                .collect(),
            ipv6_ranges: p.ipv6_ranges.clone(),
            prefix_list_ids: p.prefix_list_ids.clone(),
        }
    }));
    let mut out = Vec::new();
    for p in perms {
        if !p.ipv6_ranges.is_empty() || !p.prefix_list_ids.is_empty() {
            return Err(ec2_error(
                "UnsupportedOperation",
                "berth has no IPv6 and no prefix lists: Ipv6Ranges and PrefixListIds are not supported",
            ));
        }
        let raw = p.ip_protocol.as_deref().unwrap_or_default();
        let proto = normalise_protocol(raw).ok_or_else(|| {
            ec2_error(
                "InvalidParameterValue",
                format!("Invalid value '{raw}' for IP protocol. Unknown protocol."),
            )
        })?;
        let (from, to) = rule_ports(
            proto,
            port(p.from_port.as_deref(), "fromPort")?,
            port(p.to_port.as_deref(), "toPort")?,
        )?;
        let rule = |cidr: Option<String>, sg: Option<String>, d: Option<String>| SgRule {
            rule_id: new_id("sgr"),
            ip_protocol: proto.to_owned(),
            from_port: from,
            to_port: to,
            cidr_ip: cidr,
            source_group_id: sg,
            description: d,
        };
        for r in p.ip_ranges {
            let c = r.cidr_ip.unwrap_or_default();
            let net = Ipv4Net::parse(&c, true)
                .ok_or_else(|| bad_value(format!("CIDR block {c} is malformed")))?;
            out.push(rule(Some(net.to_string()), None, r.description));
        }
        for g in p.groups {
            let (src, _) =
                load_by_id_or_name(ctx, g.group_id.as_deref(), g.group_name.as_deref()).await?;
            out.push(rule(None, Some(src.group_id), g.description));
        }
    }
    Ok(out)
}

fn rule_text(r: &SgRule) -> String {
    let peer = r
        .cidr_ip
        .clone()
        .or(r.source_group_id.clone())
        .unwrap_or_default();
    let proto = if r.ip_protocol == "-1" {
        "ALL".to_owned()
    } else {
        r.ip_protocol.to_uppercase()
    };
    format!(
        "peer: {peer}, {proto}, from port: {}, to port: {}, ALLOW",
        r.from_port, r.to_port
    )
}

fn rule_wire(ctx: &Ctx, g: &SecurityGroup, r: &SgRule) -> Value {
    json!({
        "securityGroupRuleId": r.rule_id,
        "groupId": g.group_id,
        "groupOwnerId": ctx.state.config.account_id,
        "isEgress": false,
        "ipProtocol": r.ip_protocol,
        "fromPort": r.from_port,
        "toPort": r.to_port,
        "cidrIpv4": r.cidr_ip,
        "referencedGroupInfo": r.source_group_id.as_ref().map(|s| json!({"groupId": s, "userId": ctx.state.config.account_id})),
        "description": r.description,
    })
}

/// EC2 `AuthorizeSecurityGroupIngress`: a rule already there is `InvalidPermission.Duplicate`.
pub async fn authorize(ctx: &Ctx, req: IngressRequest) -> Result<Value, ApiError> {
    check(req.dry_run, &req.rest)?;
    if !req.security_group_rule_id.is_empty() {
        return Err(bad_value(
            "SecurityGroupRuleIds is not a member of AuthorizeSecurityGroupIngress",
        ));
    }
    let rules = requested_rules(ctx, &req).await?;
    if rules.is_empty() {
        return Err(ec2_error(
            "MissingParameter",
            "No ip permissions were given",
        ));
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut g, rev) =
            load_by_id_or_name(ctx, req.group_id.as_deref(), req.group_name.as_deref()).await?;
        for r in &rules {
            if g.ingress.iter().any(|o| o.same_grant(r)) {
                return Err(ec2_error(
                    "InvalidPermission.Duplicate",
                    format!("the specified rule \"{}\" already exists", rule_text(r)),
                ));
            }
        }
        if g.ingress.len() + rules.len() > 60 {
            return Err(ec2_error(
                "RulesPerSecurityGroupLimitExceeded",
                "The maximum number of rules per security group has been reached.",
            ));
        }
        g.ingress.extend(rules.iter().cloned());
        let key = keys::ec2_security_group(&g.group_id);
        if commit(
            ctx,
            Txn::new()
                .when_mod_revision(&key, rev)
                .put(&key, to_bytes(&g)?),
        )
        .await?
        {
            let set: Vec<Value> = rules.iter().map(|r| rule_wire(ctx, &g, r)).collect();
            return Ok(json!({"return": true, "securityGroupRuleSet": set}));
        }
    }
    Err(too_contended())
}

/// EC2 `RevokeSecurityGroupIngress`: by rule ids or by the rules' contents; one that does not
/// exist is `InvalidPermission.NotFound`, as EC2 answers for VPC groups.
pub async fn revoke(ctx: &Ctx, req: IngressRequest) -> Result<Value, ApiError> {
    check(req.dry_run, &req.rest)?;
    let rules = requested_rules(ctx, &req).await?;
    if rules.is_empty() && req.security_group_rule_id.is_empty() {
        return Err(ec2_error(
            "MissingParameter",
            "No ip permissions were given",
        ));
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut g, rev) =
            load_by_id_or_name(ctx, req.group_id.as_deref(), req.group_name.as_deref()).await?;
        let mut gone = Vec::new();
        for r in &rules {
            let Some(i) = g.ingress.iter().position(|o| o.same_grant(r)) else {
                return Err(ec2_error(
                    "InvalidPermission.NotFound",
                    "The specified rule does not exist in this security group.",
                ));
            };
            gone.push(g.ingress.remove(i));
        }
        for id in &req.security_group_rule_id {
            let Some(i) = g.ingress.iter().position(|o| &o.rule_id == id) else {
                return Err(ec2_error(
                    "InvalidSecurityGroupRuleId.NotFound",
                    format!("The security group rule ID '{id}' does not exist"),
                ));
            };
            gone.push(g.ingress.remove(i));
        }
        let key = keys::ec2_security_group(&g.group_id);
        if commit(
            ctx,
            Txn::new()
                .when_mod_revision(&key, rev)
                .put(&key, to_bytes(&g)?),
        )
        .await?
        {
            let set: Vec<Value> = gone
                .iter()
                .map(|r| {
                    json!({
                        "securityGroupRuleId": r.rule_id, "groupId": g.group_id, "isEgress": false,
                        "ipProtocol": r.ip_protocol, "fromPort": r.from_port, "toPort": r.to_port,
                        "cidrIpv4": r.cidr_ip, "referencedSecurityGroupId": r.source_group_id,
                    })
                })
                .collect();
            return Ok(json!({"return": true, "revokedSecurityGroupRuleSet": set}));
        }
    }
    Err(too_contended())
}

/// The request of `DeleteSecurityGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecurityGroupRequest {
    group_id: Option<String>,
    group_name: Option<String>,
    #[serde(default, deserialize_with = "berth_model::lb::lenient::opt_bool")]
    dry_run: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Whether a task that is not STOPPED has an interface in group `id` (as EC2 refuses to delete
/// a group a network interface is in).
async fn in_use(ctx: &Ctx, id: &str) -> Result<bool, ApiError> {
    let holders = list_all::<berth_model::vpc::AddressHolder>(ctx, keys::EC2_ADDRESSES).await?;
    for (h, _) in holders
        .iter()
        .filter(|(h, _)| h.security_groups.iter().any(|g| g == id))
    {
        let task = ctx
            .store()
            .get_json::<berth_model::Task>(&keys::task(&h.cluster, &h.task_id))
            .await
            .map_err(store_err)?;
        if task.is_some_and(|(t, _)| t.last_status != berth_model::TaskStatus::Stopped) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// EC2 `DeleteSecurityGroup`: never a VPC's `default`, nor a group another group's rules name
/// or a running task's interface is in.
pub async fn delete(ctx: &Ctx, req: DeleteSecurityGroupRequest) -> Result<Value, ApiError> {
    check(req.dry_run, &req.rest)?;
    let (g, rev) =
        load_by_id_or_name(ctx, req.group_id.as_deref(), req.group_name.as_deref()).await?;
    if g.group_name == "default" {
        return Err(ec2_error(
            "CannotDelete",
            format!(
                "the specified group: \"{}\" name: \"default\" cannot be deleted by a user",
                g.group_id
            ),
        ));
    }
    let referenced = list_all::<SecurityGroup>(ctx, keys::EC2_SECURITY_GROUPS)
        .await?
        .iter()
        .any(|(o, _)| {
            o.group_id != g.group_id
                && o.ingress
                    .iter()
                    .any(|r| r.source_group_id.as_deref() == Some(&g.group_id))
        });
    if referenced || in_use(ctx, &g.group_id).await? {
        return Err(ec2_error(
            "DependencyViolation",
            format!("resource {} has a dependent object", g.group_id),
        ));
    }
    let key = keys::ec2_security_group(&g.group_id);
    if !commit(ctx, Txn::new().when_mod_revision(&key, rev).delete(&key)).await? {
        return Err(too_contended());
    }
    Ok(json!({"return": true, "groupId": g.group_id}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_checked_per_protocol() {
        assert_eq!(rule_ports("-1", Some(5), None).unwrap(), (-1, -1));
        assert_eq!(rule_ports("tcp", Some(80), Some(80)).unwrap(), (80, 80));
        assert!(rule_ports("tcp", Some(81), Some(80)).is_err());
        assert!(rule_ports("udp", Some(1), None).is_err());
        assert!(rule_ports("tcp", Some(0), Some(70000)).is_err());
        assert_eq!(rule_ports("icmp", None, None).unwrap(), (-1, -1));
        assert!(rule_ports("icmp", Some(300), Some(0)).is_err());
    }
}
