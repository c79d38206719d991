//! Elastic Load Balancing (v2) records: load balancers, target groups, listeners, rules and
//! target registrations, as the ELBv2 API stores them and the data plane reads them.
//!
//! Records are pure data. Actions ([`ElbAction`]) and conditions ([`RuleCondition`]) use
//! ELBv2's own member names (`TargetGroupArn`, `ForwardConfig`, ...) so a request's structure
//! deserialises into them directly and they serialise back as the API answers them. Numbers in
//! them accept strings as well, because the Query protocol sends every scalar as text.
//!
//! Target health is measured by the data plane and read through [`TargetHealthSource`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use self::lenient::{list, opt_bool, opt_num};

use crate::{ApiError, ErrorCode};

/// A tag on an ELB resource (`Key`, `Value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ElbTag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// ELB allows this many tags per resource.
pub const MAX_ELB_TAGS: usize = 50;

/// An application load balancer. Every listener binds on the server's load-balancer host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    /// `application`.
    pub lb_type: String,
    /// `ipv4` or `dualstack`.
    pub ip_address_type: String,
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub vpc_id: Option<String>,
    pub created_at: f64,
    #[serde(default)]
    pub tags: Vec<ElbTag>,
}

/// How a target group checks its targets' health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealthCheck {
    pub enabled: bool,
    pub protocol: String,
    /// A port number, or `traffic-port` (the target's own port).
    pub port: String,
    pub path: String,
    pub interval_secs: u32,
    pub timeout_secs: u32,
    pub healthy_threshold: u32,
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
    RoundRobin,
    LeastOutstandingRequests,
}

pub const ATTR_DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
pub const ATTR_ALGORITHM: &str = "load_balancing.algorithm.type";
pub const ATTR_STICKINESS_ENABLED: &str = "stickiness.enabled";
pub const ATTR_STICKINESS_TYPE: &str = "stickiness.type";
pub const ATTR_STICKINESS_DURATION: &str = "stickiness.lb_cookie.duration_seconds";
pub const ATTR_SLOW_START: &str = "slow_start.duration_seconds";

/// A target group: where listeners and rules forward, and the targets registered in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    /// `HTTP`.
    pub protocol: String,
    #[serde(default)]
    pub protocol_version: Option<String>,
    pub port: u16,
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// `instance` or `ip`.
    pub target_type: String,
    pub ip_address_type: String,
    pub health_check: TargetHealthCheck,
    /// Every attribute, defaults included (see [`TargetGroup::default_attributes`]).
    pub attributes: BTreeMap<String, String>,
    pub created_at: f64,
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

    pub fn algorithm(&self) -> LbAlgorithm {
        match self.attributes.get(ATTR_ALGORITHM).map(String::as_str) {
            Some("least_outstanding_requests") => LbAlgorithm::LeastOutstandingRequests,
            _ => LbAlgorithm::RoundRobin,
        }
    }

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
    pub arn: String,
    pub load_balancer_arn: String,
    pub port: u16,
    /// `HTTP`.
    pub protocol: String,
    pub default_actions: Vec<ElbAction>,
    /// The ARN DescribeRules shows for the listener's default rule.
    pub default_rule_arn: String,
    pub created_at: f64,
    #[serde(default)]
    pub tags: Vec<ElbTag>,
}

/// A listener rule: when every condition matches, the actions apply. Lower priority first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerRule {
    pub arn: String,
    pub listener_arn: String,
    pub priority: u32,
    pub conditions: Vec<RuleCondition>,
    pub actions: Vec<ElbAction>,
    pub created_at: f64,
    #[serde(default)]
    pub tags: Vec<ElbTag>,
}

/// Rule priorities ELB accepts.
pub const MIN_RULE_PRIORITY: u32 = 1;
pub const MAX_RULE_PRIORITY: u32 = 50_000;

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
    pub target_group_arn: String,
    /// An instance id or an IP address, as the group's target type says.
    pub id: String,
    /// The request's port, or the target group's.
    pub port: u16,
    #[serde(default)]
    pub availability_zone: Option<String>,
    pub registered_at: f64,
    /// Who registered it: an ECS task ARN when ECS did; `None` when a user did.
    #[serde(default)]
    pub owner: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Actions and conditions, in ELBv2's member names.

/// A listener or rule action: forward, fixed-response or redirect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ElbAction {
    #[serde(rename = "Type")]
    pub action_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_config: Option<ForwardConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_response_config: Option<FixedResponseConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_config: Option<RedirectConfig>,
    #[serde(
        default,
        deserialize_with = "opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    pub order: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForwardConfig {
    #[serde(default, deserialize_with = "list")]
    pub target_groups: Vec<WeightedTargetGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_stickiness_config: Option<StickinessConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedTargetGroup {
    #[serde(rename = "TargetGroupArn")]
    pub arn: String,
    #[serde(
        rename = "Weight",
        default,
        deserialize_with = "opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StickinessConfig {
    #[serde(default, deserialize_with = "opt_bool")]
    pub enabled: Option<bool>,
    #[serde(
        default,
        deserialize_with = "opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FixedResponseConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
    pub status_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RedirectConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub status_code: String,
}

/// ELB's limit on target groups in one forward action.
pub const MAX_FORWARD_TARGET_GROUPS: usize = 5;

impl ElbAction {
    /// A plain forward to one target group.
    pub fn forward(target_group_arn: impl Into<String>) -> Self {
        Self {
            action_type: "forward".into(),
            target_group_arn: Some(target_group_arn.into()),
            forward_config: None,
            fixed_response_config: None,
            redirect_config: None,
            order: None,
        }
    }

    /// The target groups this action forwards to, with their weights (1 when not given).
    /// Empty for actions that do not forward.
    pub fn forward_targets(&self) -> Vec<(String, u32)> {
        if self.action_type != "forward" {
            return Vec::new();
        }
        match &self.forward_config {
            Some(fc) if !fc.target_groups.is_empty() => fc
                .target_groups
                .iter()
                .map(|t| (t.arn.clone(), t.weight.unwrap_or(1)))
                .collect(),
            _ => self
                .target_group_arn
                .iter()
                .map(|a| (a.clone(), 1))
                .collect(),
        }
    }

    /// Checks the action's shape (not whether its target groups exist).
    pub fn validate(&self) -> Result<(), ApiError> {
        let invalid = |m: String| ApiError::new(ErrorCode::ElbValidationError, m);
        match self.action_type.as_str() {
            "forward" => {
                let fc_groups = self.forward_config.as_ref().map(|f| &f.target_groups);
                match (&self.target_group_arn, fc_groups) {
                    (None, None) => {
                        return Err(invalid(
                            "A forward action needs a TargetGroupArn or a ForwardConfig".into(),
                        ))
                    }
                    (None, Some(g)) if g.is_empty() => {
                        return Err(invalid(
                            "A forward action's ForwardConfig needs at least one target group"
                                .into(),
                        ))
                    }
                    (Some(arn), Some(g)) if !g.is_empty() && (g.len() != 1 || &g[0].arn != arn) => {
                        return Err(invalid(
                            "TargetGroupArn and ForwardConfig must name the same single target group"
                                .into(),
                        ));
                    }
                    _ => {}
                }
                if let Some(g) = fc_groups {
                    if g.len() > MAX_FORWARD_TARGET_GROUPS {
                        return Err(ApiError::new(
                            ErrorCode::ElbTooManyTargetGroups,
                            format!(
                                "A forward action can name at most {MAX_FORWARD_TARGET_GROUPS} target groups"
                            ),
                        ));
                    }
                    let mut seen = std::collections::HashSet::new();
                    for t in g {
                        if t.weight.is_some_and(|w| w > 999) {
                            return Err(invalid("Target group weights must be 0-999".into()));
                        }
                        if !seen.insert(&t.arn) {
                            return Err(invalid(format!(
                                "Target group '{}' is named more than once",
                                t.arn
                            )));
                        }
                    }
                }
            }
            "fixed-response" => {
                let Some(f) = &self.fixed_response_config else {
                    return Err(invalid(
                        "A fixed-response action needs a FixedResponseConfig".into(),
                    ));
                };
                let ok = f.status_code.len() == 3
                    && matches!(f.status_code.as_bytes()[0], b'2' | b'4' | b'5')
                    && f.status_code.bytes().all(|b| b.is_ascii_digit());
                if !ok {
                    return Err(invalid(format!(
                        "Fixed-response status code '{}' must be 2XX, 4XX or 5XX",
                        f.status_code
                    )));
                }
                if f.message_body.as_ref().is_some_and(|b| b.len() > 1024) {
                    return Err(invalid(
                        "A fixed-response message body is at most 1024 characters".into(),
                    ));
                }
                if let Some(ct) = &f.content_type {
                    if !matches!(
                        ct.as_str(),
                        "text/plain"
                            | "text/css"
                            | "text/html"
                            | "application/javascript"
                            | "application/json"
                    ) {
                        return Err(invalid(format!("Unsupported content type '{ct}'")));
                    }
                }
            }
            "redirect" => {
                let Some(r) = &self.redirect_config else {
                    return Err(invalid("A redirect action needs a RedirectConfig".into()));
                };
                if !matches!(r.status_code.as_str(), "HTTP_301" | "HTTP_302") {
                    return Err(invalid(format!(
                        "Redirect status code '{}' must be HTTP_301 or HTTP_302",
                        r.status_code
                    )));
                }
                if let Some(p) = &r.protocol {
                    if !matches!(p.as_str(), "HTTP" | "HTTPS" | "#{protocol}") {
                        return Err(invalid(format!("Invalid redirect protocol '{p}'")));
                    }
                }
                if let Some(p) = &r.port {
                    if p != "#{port}" && parse_port(p).is_none() {
                        return Err(invalid(format!("Invalid redirect port '{p}'")));
                    }
                }
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::ElbInvalidLoadBalancerAction,
                    format!("berth does not support the action type '{other}'"),
                ))
            }
        }
        Ok(())
    }
}

/// Checks a list of actions: at least one, orders unique, exactly one terminal action (last).
pub fn validate_actions(actions: &[ElbAction]) -> Result<(), ApiError> {
    if actions.is_empty() {
        return Err(validation("At least one action is required"));
    }
    if actions.len() > 5 {
        return Err(ApiError::new(
            ErrorCode::ElbTooManyActions,
            "At most 5 actions are allowed",
        ));
    }
    for a in actions {
        a.validate()?;
    }
    if actions.len() > 1 {
        // Only one terminal action: berth has no authenticate actions, so only one action.
        return Err(ApiError::new(
            ErrorCode::ElbInvalidLoadBalancerAction,
            "Only one forward, fixed-response or redirect action is allowed",
        ));
    }
    Ok(())
}

/// A rule condition: the legacy `Field` + `Values` form or a `*Config` form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleCondition {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_header_config: Option<ValuesConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_pattern_config: Option<ValuesConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_header_config: Option<HttpHeaderConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string_config: Option<QueryStringConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_request_method_config: Option<ValuesConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip_config: Option<ValuesConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValuesConfig {
    #[serde(default, deserialize_with = "list")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpHeaderConfig {
    #[serde(default)]
    pub http_header_name: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryStringConfig {
    #[serde(default, deserialize_with = "list")]
    pub values: Vec<QueryStringPair>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryStringPair {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: String,
}

/// What a condition tests, with its values, whichever form the client used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionMatch {
    PathPattern(Vec<String>),
    HostHeader(Vec<String>),
    HttpHeader { name: String, values: Vec<String> },
    HttpRequestMethod(Vec<String>),
    QueryString(Vec<QueryStringPair>),
    SourceIp(Vec<String>),
}

impl RuleCondition {
    /// The condition in one normalised form, or why it is invalid.
    pub fn resolve(&self) -> Result<ConditionMatch, ApiError> {
        let field = self.field.as_deref().unwrap_or("");
        let pick = |cfg: Option<&ValuesConfig>| -> Result<Vec<String>, ApiError> {
            match cfg {
                Some(c) if !self.values.is_empty() => Err(validation(format!(
                    "Condition '{field}' cannot have both Values and a config with values: {:?}",
                    c.values
                ))),
                Some(c) => Ok(c.values.clone()),
                None => Ok(self.values.clone()),
            }
        };
        let m = match field {
            "path-pattern" => ConditionMatch::PathPattern(pick(self.path_pattern_config.as_ref())?),
            "host-header" => ConditionMatch::HostHeader(pick(self.host_header_config.as_ref())?),
            "http-request-method" => ConditionMatch::HttpRequestMethod(pick(
                self.http_request_method_config.as_ref(),
            )?),
            "source-ip" => ConditionMatch::SourceIp(pick(self.source_ip_config.as_ref())?),
            "http-header" => {
                let c = self.http_header_config.as_ref().ok_or_else(|| {
                    validation("An http-header condition needs an HttpHeaderConfig")
                })?;
                let name = c.http_header_name.clone().unwrap_or_default();
                if name.is_empty() || name.len() > 40 {
                    return Err(validation(
                        "An http-header condition needs an HttpHeaderName of 1-40 characters",
                    ));
                }
                ConditionMatch::HttpHeader {
                    name,
                    values: c.values.clone(),
                }
            }
            "query-string" => ConditionMatch::QueryString(
                self.query_string_config
                    .as_ref()
                    .ok_or_else(|| validation("A query-string condition needs a QueryStringConfig"))?
                    .values
                    .clone(),
            ),
            "" => return Err(validation("A condition needs a Field")),
            other => {
                return Err(validation(format!(
                    "Condition field '{other}' must be one of [path-pattern, host-header, http-header, http-request-method, query-string, source-ip]"
                )))
            }
        };
        Ok(m)
    }

    pub fn validate(&self) -> Result<(), ApiError> {
        let m = self.resolve()?;
        let n = match &m {
            ConditionMatch::PathPattern(v)
            | ConditionMatch::HostHeader(v)
            | ConditionMatch::HttpRequestMethod(v)
            | ConditionMatch::SourceIp(v) => v.len(),
            ConditionMatch::HttpHeader { values, .. } => values.len(),
            ConditionMatch::QueryString(v) => v.len(),
        };
        if n == 0 {
            return Err(validation("A condition needs at least one value"));
        }
        if n > 5 {
            return Err(validation("A condition has at most 5 values"));
        }
        match &m {
            ConditionMatch::PathPattern(v) | ConditionMatch::HostHeader(v) => {
                if v.iter().any(|s| s.is_empty() || s.len() > 128) {
                    return Err(validation("Condition values are 1-128 characters"));
                }
            }
            ConditionMatch::HttpRequestMethod(v) => {
                let ok = |s: &String| {
                    !s.is_empty()
                        && s.len() <= 40
                        && s.bytes()
                            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
                };
                if !v.iter().all(ok) {
                    return Err(validation(
                        "HTTP request methods are upper-case letters, '-' and '_'",
                    ));
                }
            }
            ConditionMatch::SourceIp(v) => {
                if !v.iter().all(|s| is_cidr(s)) {
                    return Err(validation("source-ip values must be CIDR blocks"));
                }
            }
            ConditionMatch::HttpHeader { .. } | ConditionMatch::QueryString(_) => {}
        }
        Ok(())
    }
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, len)) = s.split_once('/') else {
        return false;
    };
    let Ok(len) = len.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => len <= 32,
        Ok(std::net::IpAddr::V6(_)) => len <= 128,
        Err(_) => false,
    }
}

/// Checks a rule's conditions: 1-5 of them, each valid, each field at most once (except
/// http-header and query-string, which may repeat).
pub fn validate_conditions(conds: &[RuleCondition]) -> Result<(), ApiError> {
    if conds.is_empty() {
        return Err(validation("A rule needs at least one condition"));
    }
    let mut seen = std::collections::HashSet::new();
    for c in conds {
        c.validate()?;
        let f = c.field.as_deref().unwrap_or("");
        if !matches!(f, "http-header" | "query-string") && !seen.insert(f) {
            return Err(validation(format!(
                "A rule can have at most one '{f}' condition"
            )));
        }
    }
    if conds.len() > 5 {
        return Err(validation("A rule has at most 5 conditions"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Names.

/// Load balancer and target group names: 1-32 ASCII letters, digits or hyphens, not beginning
/// or ending with a hyphen. Load balancer names may not begin with `internal-`.
pub fn validate_elb_name(kind: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(validation(format!(
            "{kind} name '{name}' is invalid: use 1-32 letters, digits or hyphens, not beginning or ending with a hyphen"
        )));
    }
    if kind == "Load balancer" && name.starts_with("internal-") {
        return Err(validation(
            "Load balancer names cannot begin with 'internal-'",
        ));
    }
    Ok(())
}

pub fn validate_elb_port(port: i64) -> Result<u16, ApiError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| validation(format!("Port {port} is not between 1 and 65535")))
}

pub fn validate_elb_tags(tags: &[ElbTag]) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        if t.key.is_empty() || t.key.len() > 128 {
            return Err(validation("Tag keys are 1-128 characters"));
        }
        if t.key.starts_with("aws:") {
            return Err(validation("Tag keys cannot begin with 'aws:'"));
        }
        if t.value.as_ref().is_some_and(|v| v.len() > 256) {
            return Err(validation("Tag values are at most 256 characters"));
        }
        if !seen.insert(&t.key) {
            return Err(ApiError::new(
                ErrorCode::ElbDuplicateTagKeys,
                format!("Tag key '{}' is given more than once", t.key),
            ));
        }
    }
    if tags.len() > MAX_ELB_TAGS {
        return Err(ApiError::new(
            ErrorCode::ElbTooManyTags,
            format!("A resource has at most {MAX_ELB_TAGS} tags"),
        ));
    }
    Ok(())
}

/// Adds or replaces `new` tags in `tags`.
pub fn merge_elb_tags(tags: &mut Vec<ElbTag>, new: &[ElbTag]) {
    for t in new {
        match tags.iter_mut().find(|x| x.key == t.key) {
            Some(x) => x.value = t.value.clone(),
            None => tags.push(t.clone()),
        }
    }
}

fn validation(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ElbValidationError, m)
}

// ---------------------------------------------------------------------------------------------
// Target health, measured by the data plane.

/// One target's health as the data plane sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealthEntry {
    pub id: String,
    pub port: u16,
    /// `initial`, `healthy`, `unhealthy`, `unused`, `draining` or `unavailable`.
    pub state: String,
    /// An ELB reason code such as `Target.FailedHealthChecks`.
    pub reason: Option<String>,
    pub description: Option<String>,
}

/// Where DescribeTargetHealth reads health from (the data plane, or a fake in tests).
pub trait TargetHealthSource: Send + Sync {
    fn target_health(&self, target_group_arn: &str) -> Vec<TargetHealthEntry>;
}

// ---------------------------------------------------------------------------------------------
// Lenient scalars: the Query protocol sends every scalar as a string; stored JSON has numbers.

/// Lenient scalar deserialisers, for request types here and at the API edge.
pub mod lenient {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(u64),
        Str(String),
    }

    pub fn opt_num<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        let v: Option<NumOrStr> = Option::deserialize(d)?;
        let n = match v {
            None => return Ok(None),
            Some(NumOrStr::Num(n)) => n,
            Some(NumOrStr::Str(s)) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| serde::de::Error::custom(format!("'{s}' is not a whole number")))?,
        };
        T::try_from(n)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{n} is out of range")))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrStr {
        Bool(bool),
        Str(String),
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Option::<BoolOrStr>::deserialize(d)? {
            None => Ok(None),
            Some(BoolOrStr::Bool(b)) => Ok(Some(b)),
            Some(BoolOrStr::Str(s)) => match s.as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(serde::de::Error::custom(format!("'{s}' is not a boolean"))),
            },
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrEmpty<T> {
        List(Vec<T>),
        Empty(String),
    }

    /// A list, where the Query protocol's empty list (`Name=`) arrives as an empty string.
    pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        match Option::<ListOrEmpty<T>>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(ListOrEmpty::List(v)) => Ok(v),
            Some(ListOrEmpty::Empty(s)) if s.is_empty() => Ok(Vec::new()),
            Some(ListOrEmpty::Empty(_)) => Err(serde::de::Error::custom("expected a list")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        for ok in ["a", "web-1", "A1", &"x".repeat(32)] {
            assert!(validate_elb_name("Target group", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a.b", &"x".repeat(33)] {
            let e = validate_elb_name("Target group", bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::ElbValidationError, "{bad}");
        }
        assert!(validate_elb_name("Load balancer", "internal-x").is_err());
    }

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
    fn actions_parse_from_query_strings_and_resolve_forwards() {
        let a: ElbAction = serde_json::from_value(json!({
            "Type": "forward",
            "Order": "1",
            "ForwardConfig": {"TargetGroups": [
                {"TargetGroupArn": "a", "Weight": "3"},
                {"TargetGroupArn": "b"}
            ]}
        }))
        .unwrap();
        a.validate().unwrap();
        assert_eq!(a.order, Some(1));
        assert_eq!(a.forward_targets(), vec![("a".into(), 3), ("b".into(), 1)]);
        let b = ElbAction::forward("tg");
        assert_eq!(b.forward_targets(), vec![("tg".into(), 1)]);
        // Stored form round-trips.
        let back: ElbAction = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn invalid_actions() {
        let fixed = |code: &str| ElbAction {
            action_type: "fixed-response".into(),
            target_group_arn: None,
            forward_config: None,
            fixed_response_config: Some(FixedResponseConfig {
                message_body: None,
                status_code: code.into(),
                content_type: None,
            }),
            redirect_config: None,
            order: None,
        };
        assert!(fixed("404").validate().is_ok());
        assert!(fixed("302").validate().is_err());
        let mut f = ElbAction::forward("a");
        f.target_group_arn = None;
        assert!(f.validate().is_err());
        let mut x = ElbAction::forward("a");
        x.action_type = "authenticate-oidc".into();
        assert_eq!(
            x.validate().unwrap_err().code,
            ErrorCode::ElbInvalidLoadBalancerAction
        );
        assert!(validate_actions(&[]).is_err());
    }

    #[test]
    fn conditions_in_both_forms() {
        let legacy: RuleCondition =
            serde_json::from_value(json!({"Field": "path-pattern", "Values": ["/api/*"]})).unwrap();
        assert_eq!(
            legacy.resolve().unwrap(),
            ConditionMatch::PathPattern(vec!["/api/*".into()])
        );
        let cfg: RuleCondition = serde_json::from_value(json!({
            "Field": "http-header",
            "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["blue"]}
        }))
        .unwrap();
        validate_conditions(&[legacy.clone(), cfg]).unwrap();
        assert!(validate_conditions(&[legacy.clone(), legacy]).is_err());
        let ip: RuleCondition = serde_json::from_value(
            json!({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}),
        )
        .unwrap();
        ip.validate().unwrap();
        let bad: RuleCondition = serde_json::from_value(
            json!({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0"]}}),
        )
        .unwrap();
        assert!(bad.validate().is_err());
        let unknown: RuleCondition =
            serde_json::from_value(json!({"Field": "cookie", "Values": ["x"]})).unwrap();
        assert!(unknown.validate().is_err());
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
