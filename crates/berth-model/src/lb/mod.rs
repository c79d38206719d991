//! Elastic Load Balancing (v2) records: load balancers, target groups, listeners, rules and
//! target registrations, as the ELBv2 API stores them and the data plane reads them.
//!
//! Records are pure data. Actions ([`ElbAction`]) and conditions ([`RuleCondition`]) use
//! ELBv2's own member names (`TargetGroupArn`, `ForwardConfig`, ...) so a request's structure
//! deserialises into them directly and they serialise back as the API answers them. Numbers in
//! them accept strings as well, because the Query protocol sends every scalar as text.
//!
//! Target health is measured by the data plane and read through [`TargetHealthSource`].
//!
//! This file holds the records themselves; the request languages inside them live beside it
//! (`action`, `condition`), with the name, port and tag checks (`names`) and the Query
//! protocol's lenient scalars (`lenient`). Everything is re-exported here, so the paths are
//! `berth_model::lb::X` whichever file defines `X`.

mod action;
mod condition;
pub mod lenient;
mod names;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ApiError, ErrorCode};

pub use action::{
    validate_actions, ElbAction, FixedResponseConfig, ForwardConfig, RedirectConfig,
    StickinessConfig, WeightedTargetGroup, MAX_FORWARD_TARGET_GROUPS,
};
pub use condition::{
    validate_conditions, ConditionMatch, HttpHeaderConfig, QueryStringConfig, QueryStringPair,
    RuleCondition, ValuesConfig,
};
pub use names::{merge_elb_tags, validate_elb_name, validate_elb_port, validate_elb_tags};

/// A tag on an ELB resource (`Key`, `Value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ElbTag {
    /// The tag's key.
    pub key: String,
    /// The tag's value (absent: no value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// ELB allows this many tags per resource.
pub const MAX_ELB_TAGS: usize = 50;

/// An application load balancer. Every listener binds on the server's load-balancer host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancer {
    /// The load balancer's ARN.
    pub arn: String,
    /// The load balancer's name (unique in the region).
    pub name: String,
    /// The DNS name clients reach it by.
    pub dns_name: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    /// `application`.
    pub lb_type: String,
    /// `ipv4` or `dualstack`.
    pub ip_address_type: String,
    /// Subnets given at creation, echoed back.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// Security groups given at creation, echoed back.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// The VPC, echoed back.
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// When it was created, in epoch seconds.
    pub created_at: f64,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<ElbTag>,
    /// Attributes set by ModifyLoadBalancerAttributes (absent: the default, see
    /// [`LoadBalancer::attributes`]).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// The load balancer attribute for ALB's idle timeout, in seconds (1-4000, default 60).
pub const ATTR_IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";

impl LoadBalancer {
    /// Every attribute berth honours, with its value (set or default). Other ALB attributes
    /// (access logs, deletion protection, ...) are refused by
    /// [`LoadBalancer::validate_attribute`] rather than stored and ignored.
    pub fn attributes(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = [(ATTR_IDLE_TIMEOUT, "60")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        out.extend(self.attributes.clone());
        out
    }

    /// Checks one attribute as ModifyLoadBalancerAttributes receives it.
    pub fn validate_attribute(key: &str, value: &str) -> Result<(), ApiError> {
        match key {
            ATTR_IDLE_TIMEOUT => match value.parse::<u64>() {
                Ok(1..=4000) => Ok(()),
                _ => Err(validation(format!(
                    "'{value}' is not a valid value for load balancer attribute '{key}'; \
                     it must be an integer from 1 to 4000"
                ))),
            },
            _ => Err(validation(format!(
                "Load balancer attribute key '{key}' is not recognized (berth supports \
                 '{ATTR_IDLE_TIMEOUT}' only)"
            ))),
        }
    }

    /// ALB's idle timeout for this load balancer's connections, in seconds.
    pub fn idle_timeout_secs(&self) -> u64 {
        self.attributes
            .get(ATTR_IDLE_TIMEOUT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(60)
    }
}

/// How a target group checks its targets' health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealthCheck {
    /// Whether targets are checked at all.
    pub enabled: bool,
    /// `HTTP` (the only protocol berth checks with).
    pub protocol: String,
    /// A port number, or `traffic-port` (the target's own port).
    pub port: String,
    /// The HTTP path requested.
    pub path: String,
    /// Seconds between checks of one target (5 to 300).
    pub interval_secs: u32,
    /// Seconds a check may take before it counts as failed (2 to 120, less than the interval).
    pub timeout_secs: u32,
    /// Consecutive successes before an unhealthy target is healthy (2 to 10).
    pub healthy_threshold: u32,
    /// Consecutive failures before a healthy target is unhealthy (2 to 10).
    pub unhealthy_threshold: u32,
    /// HTTP codes counted as healthy: `200`, `200,202`, `200-299`.
    pub matcher: String,
}

impl Default for TargetHealthCheck {
    /// ELB's defaults for an HTTP target group.
    fn default() -> Self {
        Self {
            enabled: true,
            protocol: "HTTP".into(),
            port: "traffic-port".into(),
            path: "/".into(),
            interval_secs: 30,
            timeout_secs: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: "200".into(),
        }
    }
}

impl TargetHealthCheck {
    /// Checks the settings against ELB's bounds (and berth's: HTTP only).
    pub fn validate(&self) -> Result<(), ApiError> {
        if !(5..=300).contains(&self.interval_secs) {
            return Err(validation(
                "Health check interval must be between 5 and 300 seconds",
            ));
        }
        if !(2..=120).contains(&self.timeout_secs) {
            return Err(validation(
                "Health check timeout must be between 2 and 120 seconds",
            ));
        }
        if self.timeout_secs >= self.interval_secs {
            return Err(ApiError::new(
                ErrorCode::ElbInvalidConfigurationRequest,
                "Health check interval must be greater than the timeout.",
            ));
        }
        for t in [self.healthy_threshold, self.unhealthy_threshold] {
            if !(2..=10).contains(&t) {
                return Err(validation(
                    "Health check threshold counts must be between 2 and 10",
                ));
            }
        }
        if self.protocol != "HTTP" {
            return Err(validation(
                "berth health checks support the HTTP protocol only",
            ));
        }
        if !self.path.starts_with('/') || self.path.len() > 1024 {
            return Err(validation(
                "Health check path must start with '/' and be at most 1024 characters",
            ));
        }
        if self.port != "traffic-port" {
            parse_port(&self.port)
                .ok_or_else(|| validation("Health check port must be 'traffic-port' or 1-65535"))?;
        }
        if parse_matcher(&self.matcher).is_none() {
            return Err(validation(format!(
                "Invalid health check matcher '{}': use codes 200-499 like '200', '200,202' or '200-299'",
                self.matcher
            )));
        }
        Ok(())
    }

    /// Whether `status` counts as healthy under this check's matcher.
    pub fn matches(&self, status: u16) -> bool {
        parse_matcher(&self.matcher)
            .is_some_and(|ranges| ranges.iter().any(|(a, b)| (*a..=*b).contains(&status)))
    }
}

/// `200`, `200,202`, `200-299` as inclusive ranges.
fn parse_matcher(m: &str) -> Option<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    for part in m.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let c = part.trim().parse().ok()?;
                (c, c)
            }
        };
        if !(200..=499).contains(&a) || !(200..=499).contains(&b) || a > b {
            return None;
        }
        out.push((a, b));
    }
    Some(out)
}

fn parse_port(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|p| *p >= 1)
}

/// How a target group picks a target for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbAlgorithm {
    /// Each target in turn (`round_robin`).
    RoundRobin,
    /// The target with the fewest requests in flight (`least_outstanding_requests`).
    LeastOutstandingRequests,
}

/// The attribute: seconds a deregistered target keeps its in-flight requests (0 to 3600).
pub const ATTR_DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
/// The attribute: `round_robin` or `least_outstanding_requests`.
pub const ATTR_ALGORITHM: &str = "load_balancing.algorithm.type";
/// The attribute: whether a client sticks to one target (by cookie).
pub const ATTR_STICKINESS_ENABLED: &str = "stickiness.enabled";
/// The attribute: how stickiness works (`lb_cookie` only).
pub const ATTR_STICKINESS_TYPE: &str = "stickiness.type";
/// The attribute: how long the stickiness cookie lasts, in seconds.
pub const ATTR_STICKINESS_DURATION: &str = "stickiness.lb_cookie.duration_seconds";
/// The attribute: seconds over which a new target's share of requests ramps up (0: none).
pub const ATTR_SLOW_START: &str = "slow_start.duration_seconds";

/// A target group: where listeners and rules forward, and the targets registered in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetGroup {
    /// The target group's ARN.
    pub arn: String,
    /// The target group's name (unique in the region).
    pub name: String,
    /// `HTTP`.
    pub protocol: String,
    /// `HTTP1`, `HTTP2` or `GRPC`, echoed back.
    #[serde(default)]
    pub protocol_version: Option<String>,
    /// The port targets receive traffic on unless they are registered with their own.
    pub port: u16,
    /// The VPC, echoed back.
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// `instance` or `ip`.
    pub target_type: String,
    /// `ipv4` or `ipv6`, echoed back.
    pub ip_address_type: String,
    /// How targets' health is checked.
    pub health_check: TargetHealthCheck,
    /// Every attribute, defaults included (see [`TargetGroup::default_attributes`]).
    pub attributes: BTreeMap<String, String>,
    /// When it was created, in epoch seconds.
    pub created_at: f64,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<ElbTag>,
}

impl TargetGroup {
    /// The attributes a new target group starts with.
    pub fn default_attributes() -> BTreeMap<String, String> {
        [
            (ATTR_DEREGISTRATION_DELAY, "300"),
            (ATTR_ALGORITHM, "round_robin"),
            (ATTR_STICKINESS_ENABLED, "false"),
            (ATTR_STICKINESS_TYPE, "lb_cookie"),
            (ATTR_STICKINESS_DURATION, "86400"),
            (ATTR_SLOW_START, "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Checks one attribute as ModifyTargetGroupAttributes receives it.
    pub fn validate_attribute(key: &str, value: &str) -> Result<(), ApiError> {
        let bad = || {
            validation(format!(
                "'{value}' is not a valid value for target group attribute '{key}'"
            ))
        };
        let int_in = |lo: u64, hi: u64| match value.parse::<u64>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(()),
            _ => Err(bad()),
        };
        match key {
            ATTR_DEREGISTRATION_DELAY => int_in(0, 3600),
            ATTR_ALGORITHM => match value {
                "round_robin" | "least_outstanding_requests" => Ok(()),
                _ => Err(bad()),
            },
            ATTR_STICKINESS_ENABLED => match value {
                "true" | "false" => Ok(()),
                _ => Err(bad()),
            },
            ATTR_STICKINESS_TYPE => match value {
                "lb_cookie" => Ok(()),
                _ => Err(bad()),
            },
            ATTR_STICKINESS_DURATION => int_in(1, 604_800),
            ATTR_SLOW_START => match value.parse::<u64>() {
                Ok(0) | Ok(30..=900) => Ok(()),
                _ => Err(bad()),
            },
            _ => Err(validation(format!(
                "Target group attribute key '{key}' is not recognized"
            ))),
        }
    }

    /// How long a deregistered target keeps its in-flight requests (`deregistration_delay`).
    pub fn deregistration_delay_secs(&self) -> u64 {
        self.attributes
            .get(ATTR_DEREGISTRATION_DELAY)
            .and_then(|v| v.parse().ok())
            .unwrap_or(300)
    }

    /// How a target is picked for a request (the `load_balancing.algorithm.type` attribute).
    pub fn algorithm(&self) -> LbAlgorithm {
        match self.attributes.get(ATTR_ALGORITHM).map(String::as_str) {
            Some("least_outstanding_requests") => LbAlgorithm::LeastOutstandingRequests,
            _ => LbAlgorithm::RoundRobin,
        }
    }

    /// Whether clients stick to one target (the `stickiness.enabled` attribute).
    pub fn stickiness_enabled(&self) -> bool {
        self.attributes
            .get(ATTR_STICKINESS_ENABLED)
            .is_some_and(|v| v == "true")
    }

    /// The port health checks go to for a target registered on `target_port`.
    pub fn health_check_port(&self, target_port: u16) -> u16 {
        parse_port(&self.health_check.port).unwrap_or(target_port)
    }
}

/// A listener: a port on the load-balancer host, and what to do with requests no rule matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    /// The listener's ARN.
    pub arn: String,
    /// The ARN of its load balancer.
    pub load_balancer_arn: String,
    /// The port it binds on the load-balancer host (unique: one listener per port).
    pub port: u16,
    /// `HTTP`.
    pub protocol: String,
    /// What requests that no rule matches get.
    pub default_actions: Vec<ElbAction>,
    /// The ARN DescribeRules shows for the listener's default rule.
    pub default_rule_arn: String,
    /// When it was created, in epoch seconds.
    pub created_at: f64,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<ElbTag>,
}

/// A listener rule: when every condition matches, the actions apply. Lower priority first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerRule {
    /// The rule's ARN.
    pub arn: String,
    /// The ARN of its listener.
    pub listener_arn: String,
    /// Its priority, unique within the listener (lower is evaluated first).
    pub priority: u32,
    /// What a request must match; all must hold.
    pub conditions: Vec<RuleCondition>,
    /// What happens to a matching request.
    pub actions: Vec<ElbAction>,
    /// When it was created, in epoch seconds.
    pub created_at: f64,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<ElbTag>,
}

/// Rule priorities ELB accepts.
pub const MIN_RULE_PRIORITY: u32 = 1;
/// The highest rule priority (the lowest precedence).
pub const MAX_RULE_PRIORITY: u32 = 50_000;

/// Checks a rule priority ([`MIN_RULE_PRIORITY`] to [`MAX_RULE_PRIORITY`]).
pub fn validate_priority(p: i64) -> Result<u32, ApiError> {
    if (i64::from(MIN_RULE_PRIORITY)..=i64::from(MAX_RULE_PRIORITY)).contains(&p) {
        Ok(p as u32)
    } else {
        Err(validation(format!(
            "Priority must be between {MIN_RULE_PRIORITY} and {MAX_RULE_PRIORITY}; got {p}"
        )))
    }
}

/// A target registered in a target group (one per id and port).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRegistration {
    /// The ARN of the target group.
    pub target_group_arn: String,
    /// An instance id or an IP address, as the group's target type says.
    pub id: String,
    /// The request's port, or the target group's.
    pub port: u16,
    /// The target's Availability Zone, if given.
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// When it was registered, in epoch seconds.
    pub registered_at: f64,
    /// Who registered it: an ECS task ARN when ECS did; `None` when a user did.
    #[serde(default)]
    pub owner: Option<String>,
}

fn validation(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ElbValidationError, m)
}

// ---------------------------------------------------------------------------------------------
// Target health, measured by the data plane.

/// One target's health as the data plane sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealthEntry {
    /// The target's id (instance id or IP address).
    pub id: String,
    /// The target's port.
    pub port: u16,
    /// `initial`, `healthy`, `unhealthy`, `unused`, `draining` or `unavailable`.
    pub state: String,
    /// An ELB reason code such as `Target.FailedHealthChecks`.
    pub reason: Option<String>,
    /// Text about the state, for people.
    pub description: Option<String>,
}

/// Where DescribeTargetHealth reads health from (the data plane, or a fake in tests).
pub trait TargetHealthSource: Send + Sync {
    /// The health of every target registered in a target group.
    fn target_health(&self, target_group_arn: &str) -> Vec<TargetHealthEntry>;
}

/// Whether a listener's port can be served: CreateListener and ModifyListener ask before
/// they answer, so a port that cannot be bound is refused rather than stored and never served.
pub trait ListenerPorts: Send + Sync {
    /// `Err(reason)` when `port` on the load-balancer host cannot be bound (another process,
    /// the API itself, no permission).
    fn check_port(&self, port: u16) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_priorities() {
        assert_eq!(validate_elb_port(80).unwrap(), 80);
        assert!(validate_elb_port(0).is_err());
        assert!(validate_elb_port(65536).is_err());
        assert_eq!(validate_priority(1).unwrap(), 1);
        assert_eq!(validate_priority(50_000).unwrap(), 50_000);
        assert!(validate_priority(0).is_err());
        assert!(validate_priority(50_001).is_err());
    }

    #[test]
    fn load_balancer_attributes() {
        let mut lb: LoadBalancer = serde_json::from_value(serde_json::json!({
            "arn": "a", "name": "n", "dns_name": "d", "scheme": "internal",
            "lb_type": "application", "ip_address_type": "ipv4", "created_at": 0.0,
        }))
        .unwrap();
        assert_eq!(
            lb.idle_timeout_secs(),
            60,
            "records from before attributes read"
        );
        assert_eq!(lb.attributes()[ATTR_IDLE_TIMEOUT], "60");
        assert!(LoadBalancer::validate_attribute(ATTR_IDLE_TIMEOUT, "4000").is_ok());
        for bad in ["0", "4001", "x", ""] {
            assert!(LoadBalancer::validate_attribute(ATTR_IDLE_TIMEOUT, bad).is_err());
        }
        assert!(LoadBalancer::validate_attribute("deletion_protection.enabled", "true").is_err());
        lb.attributes.insert(ATTR_IDLE_TIMEOUT.into(), "5".into());
        assert_eq!(lb.idle_timeout_secs(), 5);
    }

    #[test]
    fn target_group_attributes() {
        let a = TargetGroup::default_attributes();
        assert_eq!(a[ATTR_DEREGISTRATION_DELAY], "300");
        for (k, v) in [
            (ATTR_DEREGISTRATION_DELAY, "0"),
            (ATTR_ALGORITHM, "least_outstanding_requests"),
            (ATTR_STICKINESS_ENABLED, "true"),
        ] {
            TargetGroup::validate_attribute(k, v).unwrap();
        }
        for (k, v) in [
            (ATTR_DEREGISTRATION_DELAY, "3601"),
            (ATTR_ALGORITHM, "random"),
            (ATTR_STICKINESS_ENABLED, "yes"),
            ("bogus.key", "1"),
        ] {
            assert!(TargetGroup::validate_attribute(k, v).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn health_check_defaults_and_matcher() {
        let h = TargetHealthCheck::default();
        h.validate().unwrap();
        assert!(h.matches(200) && !h.matches(204));
        let h = TargetHealthCheck {
            matcher: "200-299,404".into(),
            ..TargetHealthCheck::default()
        };
        assert!(h.matches(204) && h.matches(404) && !h.matches(500));
        let bad = TargetHealthCheck {
            timeout_secs: 30,
            ..TargetHealthCheck::default()
        };
        assert!(bad.validate().is_err());
        assert!(TargetHealthCheck {
            matcher: "abc".into(),
            ..TargetHealthCheck::default()
        }
        .validate()
        .is_err());
    }
}
