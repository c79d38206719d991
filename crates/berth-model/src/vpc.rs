//! VPCs, subnets and security groups: the EC2 records awsvpc tasks are placed into.
//!
//! berth serves a small subset of the EC2 API so that the `subnets` and `securityGroups` of an
//! ECS `networkConfiguration` name things that exist, as on AWS. A subnet stands for a
//! berth-managed Docker bridge network with the subnet's CIDR on each host; a security group's
//! ingress rules become the host's packet filter for the tasks in it. The records are kept
//! flat (one [`SgRule`] per source) because that is how they are matched and revoked; the EC2
//! wire shape (`IpPermissions` grouping sources by protocol and ports) is built from them.
//!
//! Address plan: the default VPC is [`DEFAULT_VPC_CIDR`] (`10.247.0.0/16`), not AWS's own
//! `172.31.0.0/16`, because Docker's default address pools hand out `172.17.0.0/16` to
//! `172.31.0.0/16` and `192.168.0.0/16`, and typical home and office networks use
//! `192.168.x.0/24` and `10.0.x.0/24`/`10.1.x.0/24`; `10.247/16` is rarely used by either.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::{ApiError, ErrorCode};

/// The default VPC's CIDR block (see the module docs for why this one).
pub const DEFAULT_VPC_CIDR: &str = "10.247.0.0/16";
/// The availability zones berth reports in a region: one default subnet each.
pub const ZONES: [&str; 2] = ["a", "b"];
/// The prefix length of each default subnet (AWS makes `/20`s).
pub const DEFAULT_SUBNET_PREFIX: u8 = 20;
/// ECS's limits on `awsvpcConfiguration`.
pub const MAX_TASK_SUBNETS: usize = 16;
/// ECS's limit on `awsvpcConfiguration.securityGroups`.
pub const MAX_TASK_SECURITY_GROUPS: usize = 5;

/// An EC2 error with its own code (`InvalidSubnetID.NotFound` ...).
pub fn ec2_error(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Ec2(code), message)
}

/// An IPv4 network: an address and a prefix length, host bits clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    /// The network address.
    pub addr: u32,
    /// The prefix length (0..=32).
    pub prefix: u8,
}

impl Ipv4Net {
    /// Parses `a.b.c.d/n`; host bits must be clear unless `lenient` (a rule's source CIDR,
    /// which EC2 normalises).
    pub fn parse(s: &str, lenient: bool) -> Option<Self> {
        let (a, p) = s.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok().filter(|p| *p <= 32)?;
        let n = Self {
            addr: u32::from(addr),
            prefix,
        };
        let masked = n.addr & n.mask();
        (lenient || masked == n.addr).then_some(Self {
            addr: masked,
            prefix,
        })
    }
    /// The netmask.
    pub fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }
    /// The number of addresses.
    pub fn size(self) -> u64 {
        1u64 << (32 - self.prefix)
    }
    /// Whether `ip` is inside.
    pub fn contains(self, ip: u32) -> bool {
        ip & self.mask() == self.addr
    }
    /// Whether `other` lies wholly inside.
    pub fn covers(self, other: Ipv4Net) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
    /// Whether the two share an address.
    pub fn overlaps(self, other: Ipv4Net) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }
    /// The gateway (the Docker bridge's address): the first host address.
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr + 1)
    }
    /// How many addresses tasks can get: AWS reserves the first four and the last.
    pub fn usable(self) -> u64 {
        self.size().saturating_sub(5)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.prefix)
    }
}

/// The first free task address in `net` (the network address, the gateway and the two after
/// it, and the broadcast address are reserved, as AWS reserves them), or none when full.
pub fn allocate_ip(net: Ipv4Net, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    if net.prefix > 28 {
        return None;
    }
    let first = net.addr + 4;
    let last = net.addr + (net.size() as u32 - 2);
    (first..=last)
        .map(Ipv4Addr::from)
        .find(|ip| !used.contains(ip))
}

/// The MAC address of a task's interface: locally administered, derived from its address
/// exactly as Docker derives an endpoint's (`02:42:` and the IPv4 octets), so the address the
/// API shows is the one the interface has on Docker API 1.41, which takes no MAC per network
/// endpoint (from 1.44 the driver also asks for it explicitly).
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// An EC2-style id from random bits: `prefix-` and 17 hex digits (the caller draws them; the
/// model does no I/O).
pub fn ec2_id(prefix: &str, random: u128) -> String {
    format!("{prefix}-{:017x}", random & ((1u128 << 68) - 1))
}

/// Whether `id` is shaped as EC2's ids of this kind: `prefix-` and 8 or 17 hex digits.
pub fn is_ec2_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|h| matches!(h.len(), 8 | 17) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An EC2 tag (`key`/`value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Tag {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// A VPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vpc {
    /// `vpc-` and 17 hex digits.
    pub vpc_id: String,
    /// Its IPv4 block.
    pub cidr_block: String,
    /// Whether it is the region's default VPC (made at start-up).
    pub is_default: bool,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<Ec2Tag>,
}

/// A subnet: on each host, a berth-managed Docker bridge network with this CIDR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    /// `subnet-` and 17 hex digits.
    pub subnet_id: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Its IPv4 block (inside its VPC's).
    pub cidr_block: String,
    /// Its zone (`REGION` + `a`/`b`).
    pub availability_zone: String,
    /// Whether it is its zone's default subnet.
    pub default_for_az: bool,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<Ec2Tag>,
}

/// One ingress rule of a security group: a protocol, a port range and one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SgRule {
    /// `sgr-` and 17 hex digits.
    pub rule_id: String,
    /// `tcp`, `udp`, `icmp` or `-1` (all).
    pub ip_protocol: String,
    /// The first port (`-1` for all protocols / all ICMP types).
    pub from_port: i32,
    /// The last port.
    pub to_port: i32,
    /// An IPv4 source block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_ip: Option<String>,
    /// A source security group (its members' addresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_group_id: Option<String>,
    /// The rule's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl SgRule {
    /// Whether two rules allow the same thing (what Authorize refuses as a duplicate and
    /// Revoke matches).
    pub fn same_grant(&self, o: &SgRule) -> bool {
        self.ip_protocol == o.ip_protocol
            && self.from_port == o.from_port
            && self.to_port == o.to_port
            && self.cidr_ip == o.cidr_ip
            && self.source_group_id == o.source_group_id
    }
}

/// A security group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    /// `sg-` and 17 hex digits.
    pub group_id: String,
    /// Its name, unique in its VPC (`default` for the VPC's own).
    pub group_name: String,
    /// Its description.
    pub description: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Its ingress rules. Egress is not modelled: every task may send anywhere.
    #[serde(default)]
    pub ingress: Vec<SgRule>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<Ec2Tag>,
}

/// Normalises a rule's protocol as EC2 does: names or numbers; `-1`/`all` is every protocol.
pub fn normalise_protocol(p: &str) -> Option<&'static str> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" | "6" => Some("tcp"),
        "udp" | "17" => Some("udp"),
        "icmp" | "1" => Some("icmp"),
        "-1" | "all" => Some("-1"),
        _ => None,
    }
}

/// The default subnets of a default VPC: one `/20` per zone, from the VPC's start.
pub fn default_subnet_cidrs(vpc: Ipv4Net) -> Vec<Ipv4Net> {
    let step = 1u32 << (32 - DEFAULT_SUBNET_PREFIX.max(vpc.prefix));
    (0..ZONES.len() as u32)
        .map(|i| Ipv4Net {
            addr: vpc.addr + i * step,
            prefix: DEFAULT_SUBNET_PREFIX.max(vpc.prefix),
        })
        .filter(|n| vpc.covers(*n))
        .collect()
}

/// A task's elastic network interface: its own address in one of its subnets, given at
/// placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEni {
    /// The attachment's id (a UUID, as ECS's).
    pub attachment_id: String,
    /// `eni-` and 17 hex digits.
    pub eni_id: String,
    /// The subnet the address is in.
    pub subnet_id: String,
    /// The subnet's CIDR block.
    pub subnet_cidr: String,
    /// The task's private IPv4 address.
    pub ip: String,
    /// The subnet's gateway (the bridge's own address on each host).
    pub gateway: String,
    /// The interface's MAC address.
    pub mac: String,
    /// The security groups whose ingress rules apply.
    pub security_groups: Vec<String>,
}

impl TaskEni {
    /// The EC2-style private DNS name of the address (`ip-10-247-0-4.ec2.internal`).
    pub fn private_dns_name(&self) -> String {
        format!("ip-{}.ec2.internal", self.ip.replace('.', "-"))
    }
    /// The subnet's prefix length.
    pub fn prefix_len(&self) -> u8 {
        Ipv4Net::parse(&self.subnet_cidr, false).map_or(32, |n| n.prefix)
    }
}

/// The record behind an address index key (`ec2/ip/SUBNET/IP`): who holds the address and in
/// which groups, so source-group rules resolve to addresses from one prefix read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressHolder {
    /// The task's cluster.
    pub cluster: String,
    /// The task's id.
    pub task_id: String,
    /// The address.
    pub ip: String,
    /// The task's security groups.
    pub security_groups: Vec<String>,
}

/// What an agent needs to give an awsvpc task its interface and enforce its security groups
/// (in `AgentTask`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentNetwork {
    /// The interface: address, subnet block, gateway, MAC.
    pub eni: TaskEni,
    /// The ingress the task's security groups allow, resolved to source blocks when the poll
    /// answer was built (a source group's members as of then: a member that starts later is
    /// let in at the next answer that changes, which its own start causes).
    pub ingress: Vec<IngressAllow>,
}

/// One ingress allowance an agent enforces: protocol, port range and an IPv4 source block.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressAllow {
    /// `tcp`, `udp`, `icmp` or `-1` (all).
    pub protocol: String,
    /// The first port (or ICMP type; -1 for all).
    pub from_port: i32,
    /// The last port (or ICMP code; -1 for all).
    pub to_port: i32,
    /// The source block (`a.b.c.d/n`).
    pub cidr: String,
}

/// The ingress a task with `groups` allows, resolved to source blocks: a CIDR rule as it is,
/// a source-group rule as the `/32` of each address held by a member of that group (as of
/// `holders`, read when the agent's poll answer is built). Sorted and deduplicated, so an
/// unchanged answer compares equal.
pub fn resolve_ingress(groups: &[SecurityGroup], holders: &[AddressHolder]) -> Vec<IngressAllow> {
    let mut out = BTreeSet::new();
    for g in groups {
        for r in &g.ingress {
            let allow = |cidr: String| IngressAllow {
                protocol: r.ip_protocol.clone(),
                from_port: r.from_port,
                to_port: r.to_port,
                cidr,
            };
            if let Some(c) = &r.cidr_ip {
                out.insert(allow(c.clone()));
            }
            if let Some(src) = &r.source_group_id {
                for h in holders.iter().filter(|h| h.security_groups.contains(src)) {
                    out.insert(allow(format!("{}/32", h.ip)));
                }
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_relate() {
        let vpc = Ipv4Net::parse(DEFAULT_VPC_CIDR, false).unwrap();
        assert_eq!(vpc.to_string(), "10.247.0.0/16");
        assert!(Ipv4Net::parse("10.247.0.1/16", false).is_none());
        assert_eq!(
            Ipv4Net::parse("10.247.0.1/16", true).unwrap().to_string(),
            "10.247.0.0/16"
        );
        assert!(Ipv4Net::parse("10.0.0.0/33", false).is_none());
        assert!(Ipv4Net::parse("nope", false).is_none());
        let subs = default_subnet_cidrs(vpc);
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[1].to_string(), "10.247.16.0/20");
        assert!(vpc.covers(subs[0]) && !subs[0].overlaps(subs[1]));
        assert_eq!(subs[0].gateway(), Ipv4Addr::new(10, 247, 0, 1));
        assert_eq!(subs[0].usable(), 4091);
        let docker = Ipv4Net::parse("172.17.0.0/16", false).unwrap();
        assert!(!vpc.overlaps(docker));
    }

    #[test]
    fn allocation_skips_reserved_and_used() {
        let net = Ipv4Net::parse("10.0.0.0/28", false).unwrap();
        let mut used = BTreeSet::new();
        let mut got = Vec::new();
        while let Some(ip) = allocate_ip(net, &used) {
            used.insert(ip);
            got.push(ip);
        }
        assert_eq!(got.len() as u64, net.usable());
        assert_eq!(got[0], Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(*got.last().unwrap(), Ipv4Addr::new(10, 0, 0, 14));
        used.remove(&Ipv4Addr::new(10, 0, 0, 7));
        assert_eq!(allocate_ip(net, &used), Some(Ipv4Addr::new(10, 0, 0, 7)));
        assert_eq!(mac_for(Ipv4Addr::new(10, 0, 0, 7)), "02:42:0a:00:00:07");
    }

    #[test]
    fn source_groups_resolve_to_member_addresses() {
        let rule = |cidr: Option<&str>, sg: Option<&str>| SgRule {
            rule_id: "sgr-1".into(),
            ip_protocol: "tcp".into(),
            from_port: 80,
            to_port: 80,
            cidr_ip: cidr.map(Into::into),
            source_group_id: sg.map(Into::into),
            description: None,
        };
        let g = SecurityGroup {
            group_id: "sg-a".into(),
            group_name: "a".into(),
            description: String::new(),
            vpc_id: "vpc-1".into(),
            ingress: vec![rule(Some("10.0.0.0/8"), None), rule(None, Some("sg-b"))],
            tags: Vec::new(),
        };
        let holder = |ip: &str, sg: &str| AddressHolder {
            cluster: "c".into(),
            task_id: ip.into(),
            ip: ip.into(),
            security_groups: vec![sg.into()],
        };
        let got = resolve_ingress(
            &[g.clone(), g],
            &[holder("10.247.0.4", "sg-b"), holder("10.247.0.5", "sg-c")],
        );
        let cidrs: Vec<&str> = got.iter().map(|a| a.cidr.as_str()).collect();
        assert_eq!(cidrs, ["10.0.0.0/8", "10.247.0.4/32"]);
    }

    #[test]
    fn ids_have_ec2_shapes() {
        let id = ec2_id("subnet", u128::MAX);
        assert_eq!(id.len(), "subnet-".len() + 17);
        assert!(is_ec2_id("subnet", &id));
        assert!(is_ec2_id("sg", "sg-0123abcd"));
        assert!(!is_ec2_id("sg", "sg-0123abc"));
        assert!(!is_ec2_id("sg", "subnet-0123abcd"));
        assert!(!is_ec2_id("sg", "sg-0123abcz"));
        assert_eq!(normalise_protocol("TCP"), Some("tcp"));
        assert_eq!(normalise_protocol("all"), Some("-1"));
        assert_eq!(normalise_protocol("gre"), None);
    }
}
