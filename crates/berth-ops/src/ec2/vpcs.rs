//! CreateVpc, DescribeVpcs, DeleteVpc, CreateSubnet, DescribeSubnets, DeleteSubnet, and the
//! default VPC (with a default subnet per zone and its `default` security group) made at
//! start-up.
//!
//! Writes that must see a VPC's other members (a subnet's CIDR against its siblings', a
//! group's name against the VPC's others, DeleteVpc against what is left in it) rewrite the
//! VPC record in the same transaction, compared on its revision: they are serialised per VPC.

use berth_model::vpc::{
    default_subnet_cidrs, ec2_error, Ipv4Net, SecurityGroup, Subnet, Vpc, ZONES,
};
use berth_model::{keys, ApiError};
use berth_store::{StoreExt, Txn};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    bad_value, check, commit, filters_match, list_all, new_id, page, tag_field, tags_for,
    tags_wire, too_contended, Filter, TagSpecification,
};
use crate::{store_err, to_bytes, Ctx, Ops};

fn lenient_list<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    berth_model::lb::lenient::list(d)
}

/// The VPC `id` names, with its revision, or EC2's not-found / malformed error.
pub async fn load_vpc(ctx: &Ctx, id: &str) -> Result<(Vpc, u64), ApiError> {
    if !berth_model::vpc::is_ec2_id("vpc", id) {
        return Err(ec2_error(
            "InvalidVpcID.Malformed",
            format!("Invalid id: \"{id}\""),
        ));
    }
    ctx.store()
        .get_json::<Vpc>(&keys::ec2_vpc(id))
        .await
        .map_err(store_err)?
        .ok_or_else(|| vpc_not_found(id))
}

fn vpc_not_found(id: &str) -> ApiError {
    ec2_error(
        "InvalidVpcID.NotFound",
        format!("The vpc ID '{id}' does not exist"),
    )
}

/// The subnet `id` names, or EC2's not-found / malformed error.
pub async fn load_subnet(ctx: &Ctx, id: &str) -> Result<(Subnet, u64), ApiError> {
    if !berth_model::vpc::is_ec2_id("subnet", id) {
        return Err(ec2_error(
            "InvalidSubnetID.Malformed",
            format!("Invalid id: \"{id}\""),
        ));
    }
    ctx.store()
        .get_json::<Subnet>(&keys::ec2_subnet(id))
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ec2_error(
                "InvalidSubnetID.NotFound",
                format!("The subnet ID '{id}' does not exist"),
            )
        })
}

/// The default VPC's id, if one was made.
pub async fn default_vpc_id(ctx: &Ctx) -> Result<Option<String>, ApiError> {
    Ok(ctx
        .store()
        .get_json::<String>(keys::EC2_DEFAULT_VPC)
        .await
        .map_err(store_err)?
        .map(|(id, _)| id))
}

fn vpc_wire(ctx: &Ctx, v: &Vpc) -> Value {
    json!({
        "vpcId": v.vpc_id,
        "ownerId": ctx.state.config.account_id,
        "state": "available",
        "cidrBlock": v.cidr_block,
        "dhcpOptionsId": "default",
        "instanceTenancy": "default",
        "isDefault": v.is_default,
        "cidrBlockAssociationSet": [{
            "associationId": format!("vpc-cidr-assoc-{}", &v.vpc_id[4..]),
            "cidrBlock": v.cidr_block,
            "cidrBlockState": {"state": "associated"},
        }],
        "tagSet": tags_wire(&v.tags),
    })
}

/// A subnet's zone as a client of `ctx`'s region sees it: records keep no region (one store
/// serves every region a client signs for), so the zone is the region and the stored letter.
fn zone(ctx: &Ctx, s: &Subnet) -> String {
    format!("{}{}", ctx.region, ZONES[zone_index(&s.availability_zone)])
}

/// EC2's zone id (`use1-az1` for `us-east-1a`).
fn zone_id(ctx: &Ctx, s: &Subnet) -> String {
    let parts: Vec<&str> = ctx.region.split('-').collect();
    let short = match parts.as_slice() {
        [a, b, n] => format!("{}{}{n}", a.get(..2).unwrap_or(a), b.get(..1).unwrap_or(b)),
        _ => ctx.region.clone(),
    };
    format!("{short}-az{}", zone_index(&s.availability_zone) + 1)
}

fn subnet_wire(ctx: &Ctx, s: &Subnet, used: usize) -> Value {
    let avail =
        Ipv4Net::parse(&s.cidr_block, false).map_or(0, |n| n.usable().saturating_sub(used as u64));
    json!({
        "subnetId": s.subnet_id,
        "subnetArn": format!("arn:aws:ec2:{}:{}:subnet/{}", ctx.region, ctx.state.config.account_id, s.subnet_id),
        "vpcId": s.vpc_id,
        "ownerId": ctx.state.config.account_id,
        "state": "available",
        "cidrBlock": s.cidr_block,
        "availabilityZone": zone(ctx, s),
        "availabilityZoneId": zone_id(ctx, s),
        "availableIpAddressCount": avail,
        "defaultForAz": s.default_for_az,
        "mapPublicIpOnLaunch": false,
        "assignIpv6AddressOnCreation": false,
        "ipv6CidrBlockAssociationSet": [],
        "tagSet": tags_wire(&s.tags),
    })
}

fn zone_index(az: &str) -> usize {
    let letter = az.chars().last().map(String::from).unwrap_or_default();
    ZONES.iter().position(|z| *z == letter).unwrap_or(0)
}

/// The request of `CreateVpc`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateVpcRequest {
    cidr_block: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    tag_specification: Vec<TagSpecification>,
    #[serde(default, deserialize_with = "berth_model::lb::lenient::opt_bool")]
    dry_run: Option<bool>,
    instance_tenancy: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

fn parse_block(cidr: Option<&str>, what: &'static str) -> Result<Ipv4Net, ApiError> {
    let c = cidr.ok_or_else(|| {
        ec2_error(
            "MissingParameter",
            "The request must contain the parameter cidrBlock",
        )
    })?;
    let net = Ipv4Net::parse(c, false).ok_or_else(|| {
        bad_value(format!(
            "Value ({c}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
        ))
    })?;
    if !(16..=28).contains(&net.prefix) {
        return Err(ec2_error(what, format!("The CIDR '{c}' is invalid.")));
    }
    Ok(net)
}

/// EC2 `CreateVpc` (with its `default` security group, as EC2 makes one).
pub async fn create_vpc(ctx: &Ctx, req: CreateVpcRequest) -> Result<Value, ApiError> {
    if let Some(t) = req.instance_tenancy.as_deref().filter(|t| *t != "default") {
        return Err(ec2_error(
            "UnsupportedOperation",
            format!("berth has no dedicated hosts: InstanceTenancy '{t}' is not supported."),
        ));
    }
    check(req.dry_run, &req.rest)?;
    let net = parse_block(req.cidr_block.as_deref(), "InvalidVpc.Range")?;
    let vpc = Vpc {
        vpc_id: new_id("vpc"),
        cidr_block: net.to_string(),
        is_default: false,
        tags: tags_for(req.tag_specification, "vpc")?,
    };
    let sg = default_group(&vpc.vpc_id);
    let txn = Txn::new()
        .when_absent(keys::ec2_vpc(&vpc.vpc_id))
        .put(keys::ec2_vpc(&vpc.vpc_id), to_bytes(&vpc)?)
        .put(keys::ec2_security_group(&sg.group_id), to_bytes(&sg)?);
    if !commit(ctx, txn).await? {
        return Err(too_contended());
    }
    Ok(json!({"vpc": vpc_wire(ctx, &vpc)}))
}

fn default_group(vpc_id: &str) -> SecurityGroup {
    let me = new_id("sg");
    SecurityGroup {
        // EC2's default group lets its own members reach each other on everything.
        ingress: vec![berth_model::vpc::SgRule {
            rule_id: new_id("sgr"),
            ip_protocol: "-1".into(),
            from_port: -1,
            to_port: -1,
            cidr_ip: None,
            source_group_id: Some(me.clone()),
            description: None,
        }],
        group_id: me,
        group_name: "default".into(),
        description: "default VPC security group".into(),
        vpc_id: vpc_id.to_owned(),
        tags: Vec::new(),
    }
}

/// The request of `DescribeVpcs`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeVpcsRequest {
    #[serde(default, deserialize_with = "lenient_list")]
    vpc_id: Vec<String>,
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

/// EC2 `DescribeVpcs`.
pub async fn describe_vpcs(ctx: &Ctx, req: DescribeVpcsRequest) -> Result<Value, ApiError> {
    check(req.dry_run, &req.rest)?;
    let mut out = Vec::new();
    for id in &req.vpc_id {
        load_vpc(ctx, id).await?;
    }
    for (v, _) in list_all::<Vpc>(ctx, keys::EC2_VPCS).await? {
        if !req.vpc_id.is_empty() && !req.vpc_id.contains(&v.vpc_id) {
            continue;
        }
        let ok = filters_match(&req.filter, |n| match n {
            "vpc-id" => Some(vec![v.vpc_id.clone()]),
            "cidr" | "cidr-block-association.cidr-block" => Some(vec![v.cidr_block.clone()]),
            "is-default" => Some(vec![v.is_default.to_string()]),
            "state" => Some(vec!["available".into()]),
            "owner-id" => Some(vec![ctx.state.config.account_id.clone()]),
            _ => tag_field(n, &v.tags),
        })?;
        if ok {
            out.push((v.vpc_id.clone(), vpc_wire(ctx, &v)));
        }
    }
    let (items, next) = page(out, req.next_token.as_deref(), req.max_results)?;
    Ok(json!({"vpcSet": items, "nextToken": next}))
}

/// The request of `DeleteVpc`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteVpcRequest {
    vpc_id: String,
    #[serde(default, deserialize_with = "berth_model::lb::lenient::opt_bool")]
    dry_run: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// EC2 `DeleteVpc`: only once it holds no subnets and no security group but its `default`.
pub async fn delete_vpc(ctx: &Ctx, req: DeleteVpcRequest) -> Result<Value, ApiError> {
    check(req.dry_run, &req.rest)?;
    let (vpc, rev) = load_vpc(ctx, &req.vpc_id).await?;
    let subnets = list_all::<Subnet>(ctx, keys::EC2_SUBNETS).await?;
    let groups = list_all::<SecurityGroup>(ctx, keys::EC2_SECURITY_GROUPS).await?;
    let busy = subnets.iter().any(|(s, _)| s.vpc_id == vpc.vpc_id)
        || groups
            .iter()
            .any(|(g, _)| g.vpc_id == vpc.vpc_id && g.group_name != "default");
    if busy {
        return Err(ec2_error(
            "DependencyViolation",
            format!(
                "The vpc '{}' has dependencies and cannot be deleted.",
                vpc.vpc_id
            ),
        ));
    }
    let mut txn = Txn::new()
        .when_mod_revision(keys::ec2_vpc(&vpc.vpc_id), rev)
        .delete(keys::ec2_vpc(&vpc.vpc_id));
    for (g, grev) in groups.iter().filter(|(g, _)| g.vpc_id == vpc.vpc_id) {
        txn = txn
            .when_mod_revision(keys::ec2_security_group(&g.group_id), *grev)
            .delete(keys::ec2_security_group(&g.group_id));
    }
    if vpc.is_default {
        txn = txn.delete(keys::EC2_DEFAULT_VPC);
    }
    if !commit(ctx, txn).await? {
        return Err(too_contended());
    }
    Ok(json!({"return": true}))
}

/// The request of `CreateSubnet`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSubnetRequest {
    vpc_id: Option<String>,
    cidr_block: Option<String>,
    availability_zone: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    tag_specification: Vec<TagSpecification>,
    #[serde(default, deserialize_with = "berth_model::lb::lenient::opt_bool")]
    dry_run: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// EC2 `CreateSubnet`: inside its VPC's block, overlapping none of its siblings.
pub async fn create_subnet(ctx: &Ctx, req: CreateSubnetRequest) -> Result<Value, ApiError> {
    check(req.dry_run, &req.rest)?;
    let vpc_id = req.vpc_id.as_deref().ok_or_else(|| {
        ec2_error(
            "MissingParameter",
            "The request must contain the parameter vpcId",
        )
    })?;
    let net = parse_block(req.cidr_block.as_deref(), "InvalidSubnet.Range")?;
    let zones: Vec<String> = ZONES.iter().map(|z| format!("{}{z}", ctx.region)).collect();
    let az = match req.availability_zone {
        None => zones[0].clone(),
        Some(a) if zones.contains(&a) => a,
        Some(a) => {
            return Err(bad_value(format!(
                "Value ({a}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
                zones.join(", ")
            )))
        }
    };
    let tags = tags_for(req.tag_specification, "subnet")?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (vpc, rev) = load_vpc(ctx, vpc_id).await?;
        let vnet = Ipv4Net::parse(&vpc.cidr_block, false)
            .ok_or_else(|| ApiError::server("stored VPC has a bad CIDR"))?;
        if !vnet.covers(net) {
            return Err(ec2_error(
                "InvalidSubnet.Range",
                format!("The CIDR '{net}' is invalid."),
            ));
        }
        let siblings = list_all::<Subnet>(ctx, keys::EC2_SUBNETS).await?;
        let clash = siblings.iter().any(|(s, _)| {
            s.vpc_id == vpc.vpc_id
                && Ipv4Net::parse(&s.cidr_block, false).is_some_and(|n| n.overlaps(net))
        });
        if clash {
            return Err(ec2_error(
                "InvalidSubnet.Conflict",
                format!("The CIDR '{net}' conflicts with another subnet"),
            ));
        }
        let s = Subnet {
            subnet_id: new_id("subnet"),
            vpc_id: vpc.vpc_id.clone(),
            cidr_block: net.to_string(),
            availability_zone: az.clone(),
            default_for_az: false,
            tags: tags.clone(),
        };
        let txn = Txn::new()
            .when_mod_revision(keys::ec2_vpc(&vpc.vpc_id), rev)
            .put(keys::ec2_vpc(&vpc.vpc_id), to_bytes(&vpc)?)
            .put(keys::ec2_subnet(&s.subnet_id), to_bytes(&s)?);
        if commit(ctx, txn).await? {
            return Ok(json!({"subnet": subnet_wire(ctx, &s, 0)}));
        }
    }
    Err(too_contended())
}

/// The request of `DescribeSubnets`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSubnetsRequest {
    #[serde(default, deserialize_with = "lenient_list")]
    subnet_id: Vec<String>,
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

/// How many addresses are given out in a subnet.
async fn used_addresses(ctx: &Ctx, subnet_id: &str) -> Result<usize, ApiError> {
    Ok(ctx
        .store()
        .list(&keys::ec2_addresses_of(subnet_id))
        .await
        .map_err(store_err)?
        .0
        .len())
}

/// EC2 `DescribeSubnets`.
pub async fn describe_subnets(ctx: &Ctx, req: DescribeSubnetsRequest) -> Result<Value, ApiError> {
    check(req.dry_run, &req.rest)?;
    for id in &req.subnet_id {
        load_subnet(ctx, id).await?;
    }
    let mut out = Vec::new();
    for (s, _) in list_all::<Subnet>(ctx, keys::EC2_SUBNETS).await? {
        if !req.subnet_id.is_empty() && !req.subnet_id.contains(&s.subnet_id) {
            continue;
        }
        let ok = filters_match(&req.filter, |n| match n {
            "subnet-id" => Some(vec![s.subnet_id.clone()]),
            "vpc-id" => Some(vec![s.vpc_id.clone()]),
            "cidr" | "cidr-block" | "cidrBlock" => Some(vec![s.cidr_block.clone()]),
            "availability-zone" | "availabilityZone" => Some(vec![zone(ctx, &s)]),
            "default-for-az" | "defaultForAz" => Some(vec![s.default_for_az.to_string()]),
            "state" => Some(vec!["available".into()]),
            "owner-id" => Some(vec![ctx.state.config.account_id.clone()]),
            _ => tag_field(n, &s.tags),
        })?;
        if ok {
            let used = used_addresses(ctx, &s.subnet_id).await?;
            out.push((s.subnet_id.clone(), subnet_wire(ctx, &s, used)));
        }
    }
    let (items, next) = page(out, req.next_token.as_deref(), req.max_results)?;
    Ok(json!({"subnetSet": items, "nextToken": next}))
}

/// The request of `DeleteSubnet`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSubnetRequest {
    subnet_id: String,
    #[serde(default, deserialize_with = "berth_model::lb::lenient::opt_bool")]
    dry_run: Option<bool>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// EC2 `DeleteSubnet`: refused while a task holds an address in it.
pub async fn delete_subnet(ctx: &Ctx, req: DeleteSubnetRequest) -> Result<Value, ApiError> {
    check(req.dry_run, &req.rest)?;
    let (s, rev) = load_subnet(ctx, &req.subnet_id).await?;
    if used_addresses(ctx, &s.subnet_id).await? > 0 {
        return Err(ec2_error(
            "DependencyViolation",
            format!(
                "The subnet '{}' has dependencies and cannot be deleted.",
                s.subnet_id
            ),
        ));
    }
    let txn = Txn::new()
        .when_mod_revision(keys::ec2_subnet(&s.subnet_id), rev)
        .delete(keys::ec2_subnet(&s.subnet_id));
    if !commit(ctx, txn).await? {
        return Err(too_contended());
    }
    Ok(json!({}))
}

/// Makes the default VPC (block `cidr`), a default subnet per zone and its `default` security
/// group, once: a store that has them is left alone (idempotent across restarts). Returns the
/// default VPC's id.
pub async fn ensure_defaults(ops: &Ops, region: &str, cidr: &str) -> Result<String, ApiError> {
    let ctx = ops.ctx(region);
    if let Some(id) = default_vpc_id(&ctx).await? {
        return Ok(id);
    }
    let net = Ipv4Net::parse(cidr, false)
        .filter(|n| (16..=20).contains(&n.prefix))
        .ok_or_else(|| {
            ApiError::server(format!(
                "the default VPC block {cidr:?} must be a CIDR block from /16 to /20"
            ))
        })?;
    let vpc = Vpc {
        vpc_id: new_id("vpc"),
        cidr_block: net.to_string(),
        is_default: true,
        tags: Vec::new(),
    };
    let sg = default_group(&vpc.vpc_id);
    let mut txn = Txn::new()
        .when_absent(keys::EC2_DEFAULT_VPC)
        .put(keys::EC2_DEFAULT_VPC, to_bytes(&vpc.vpc_id)?)
        .put(keys::ec2_vpc(&vpc.vpc_id), to_bytes(&vpc)?)
        .put(keys::ec2_security_group(&sg.group_id), to_bytes(&sg)?);
    for (zone, sub) in ZONES.iter().zip(default_subnet_cidrs(net)) {
        let s = Subnet {
            subnet_id: new_id("subnet"),
            vpc_id: vpc.vpc_id.clone(),
            cidr_block: sub.to_string(),
            availability_zone: format!("{region}{zone}"),
            default_for_az: true,
            tags: Vec::new(),
        };
        txn = txn.put(keys::ec2_subnet(&s.subnet_id), to_bytes(&s)?);
    }
    if commit(&ctx, txn).await? {
        return Ok(vpc.vpc_id);
    }
    // Another start-up made them first.
    default_vpc_id(&ctx)
        .await?
        .ok_or_else(|| ApiError::server("the default VPC vanished while being made"))
}
