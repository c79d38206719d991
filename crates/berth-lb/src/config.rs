//! The declarative configuration the control plane hands to [`crate::DataPlane::apply`].
//!
//! The shapes mirror ELBv2 (listeners, rules, actions, target groups) so the control plane
//! can translate `CreateRule` / `RegisterTargets` calls one to one. Defaults are ELB's.

use std::net::SocketAddr;
use std::time::Duration;

/// The whole desired state of the data plane. `apply` replaces the previous one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Every listener that should exist; listeners missing here are closed.
    pub listeners: Vec<ListenerConfig>,
    /// Every target group that should exist, with its full target list.
    pub target_groups: Vec<TargetGroupConfig>,
}

/// One HTTP listener (cleartext HTTP/1.1 and prior-knowledge h2c on the same port).
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    /// Opaque id (a listener ARN in practice), used verbatim in errors and metric labels.
    pub id: String,
    /// Address to listen on; port 0 picks an ephemeral port (see
    /// [`DataPlane::local_addr`](crate::DataPlane::local_addr)).
    pub bind: SocketAddr,
    /// Any order; evaluated by ascending priority, first match wins.
    pub rules: Vec<RuleConfig>,
    /// Used when no rule matches.
    pub default_action: Action,
    /// The load balancer's `idle_timeout.timeout_seconds`: a client connection with no new
    /// request for this long is closed, and a target's response must begin within it.
    /// `None`: [`DataPlaneOptions::idle_timeout`].
    pub idle_timeout: Option<Duration>,
}

/// A listener rule: all conditions must match.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    /// ELB rule priority; lower is evaluated first.
    pub priority: u32,
    /// Conditions that must all match the request.
    pub conditions: Vec<Condition>,
    /// What to do with a request that matches.
    pub action: Action,
}

/// ELB rule conditions. Every list is "any of".
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// ELB wildcards (`*` any run of characters, `?` one character); case-sensitive;
    /// matched against the path only.
    PathPattern(Vec<String>),
    /// Case-insensitive, wildcards, the `:port` of the Host header is ignored.
    HostHeader(Vec<String>),
    /// Header name case-insensitive; values are case-insensitive wildcards.
    HttpHeader {
        /// The header to look at.
        name: String,
        /// Patterns, any of which the header's value must match.
        values: Vec<String>,
    },
    /// Exact, case-sensitive.
    Method(Vec<String>),
    /// Key/value pairs, key `None` = any key; wildcards; percent-decoded; case-insensitive.
    QueryString(Vec<(Option<String>, String)>),
    /// CIDRs (IPv4 and IPv6) the client address must fall in.
    SourceIp(Vec<String>),
}

/// What a listener does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Weighted random pick of the target group; weight 0 is never picked.
    Forward(Vec<(String, u32)>),
    /// Answer directly, without a target.
    FixedResponse {
        /// HTTP status code (an invalid one answers 200).
        status: u16,
        /// `Content-Type` header; `None` sends `text/plain; charset=utf-8`.
        content_type: Option<String>,
        /// Response body; `None` is empty.
        body: Option<String>,
    },
    /// Fields take ELB's `#{protocol}` `#{host}` `#{port}` `#{path}` `#{query}` placeholders;
    /// `None` keeps the original component. `status` is 301 or 302.
    Redirect {
        /// Scheme of the `Location`, e.g. `HTTPS` or `#{protocol}`.
        protocol: Option<String>,
        /// Host of the `Location`.
        host: Option<String>,
        /// Port of the `Location`.
        port: Option<String>,
        /// Path of the `Location`.
        path: Option<String>,
        /// Query of the `Location`, without the `?`.
        query: Option<String>,
        /// 301 (`HTTP_301`); anything else is sent as 302 (`HTTP_302`).
        status: u16,
    },
}

/// How a target is chosen within a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// `round_robin` (ELB's default): routable targets in turn.
    #[default]
    RoundRobin,
    /// `least_outstanding_requests`: the routable target with the fewest in-flight requests.
    LeastOutstandingRequests,
}

/// A set of targets that receive forwarded requests.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroupConfig {
    /// Opaque id (a target group ARN in practice).
    pub id: String,
    /// `load_balancing.algorithm.type`: how a request picks its target.
    pub algorithm: Algorithm,
    /// The group's health check, run against every registered target.
    pub health: HealthCheckConfig,
    /// How long a removed target may keep serving its in-flight requests (ELB: 300 s).
    pub deregistration_delay: Duration,
    /// Every registered target; a target left out starts draining.
    pub targets: Vec<TargetConfig>,
    /// ProtocolVersion HTTP2: speak prior-knowledge h2c to the targets.
    pub http2_to_targets: bool,
}

impl Default for TargetGroupConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            algorithm: Algorithm::RoundRobin,
            health: HealthCheckConfig::default(),
            deregistration_delay: Duration::from_secs(300),
            targets: Vec::new(),
            http2_to_targets: false,
        }
    }
}

/// ELB's target group health check settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckConfig {
    /// `HealthCheckEnabled`. Disabled: targets are `unused` and all receive traffic.
    pub enabled: bool,
    /// `HealthCheckPath`: the path of the probe's `GET`.
    pub path: String,
    /// `None` = the target's traffic port.
    pub port: Option<u16>,
    /// `HealthCheckIntervalSeconds`: time between probes of one target (ELB: 30 s).
    pub interval: Duration,
    /// `HealthCheckTimeoutSeconds`: a probe with no response by then fails (ELB: 5 s).
    pub timeout: Duration,
    /// `HealthyThresholdCount`: consecutive successes that make a target healthy (ELB: 5).
    pub healthy_threshold: u32,
    /// `UnhealthyThresholdCount`: consecutive failures that make it unhealthy (ELB: 2).
    pub unhealthy_threshold: u32,
    /// ELB matcher syntax: `"200"`, `"200,202"`, `"200-299"`.
    pub matcher: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "/".to_owned(),
            port: None,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: "200".to_owned(),
        }
    }
}

/// One registered target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    /// Stable key, e.g. `"i-123:8080"`.
    pub id: String,
    /// Where requests and health checks go (the task's traffic port).
    pub addr: SocketAddr,
}

/// ELB's `TargetHealthDescription`, as `health()` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    /// The target's [`TargetConfig::id`].
    pub id: String,
    /// The target's [`TargetConfig::addr`].
    pub addr: SocketAddr,
    /// `TargetHealth.State`.
    pub state: TargetState,
    /// `TargetHealth.Reason`, e.g. `Target.Timeout`; `None` when healthy.
    pub reason: Option<&'static str>,
    /// `TargetHealth.Description`, the human-readable reason.
    pub description: Option<String>,
}

/// ELB's target health states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetState {
    /// `initial`: registered, health checks not yet conclusive.
    Initial,
    /// `healthy`: passed `healthy_threshold` checks in a row; receives traffic.
    Healthy,
    /// `unhealthy`: failed `unhealthy_threshold` checks in a row; no traffic while any
    /// target in the group is healthy (with none healthy, all take traffic: fail open).
    Unhealthy,
    /// `draining`: deregistered, finishing in-flight requests until the deregistration delay
    /// ends.
    Draining,
    /// `unused`: health checks are disabled for the group.
    Unused,
}

impl TargetState {
    /// ELB's wire spelling (`TargetHealth.State`).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Initial => "initial",
            TargetState::Healthy => "healthy",
            TargetState::Unhealthy => "unhealthy",
            TargetState::Draining => "draining",
            TargetState::Unused => "unused",
        }
    }
}

/// Process-level settings of the data plane that ELB does not expose per listener.
/// Tests shrink them; production keeps the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPlaneOptions {
    /// ALB's idle timeout: client keep-alive idle limit and the upstream response timeout.
    pub idle_timeout: Duration,
    /// Time allowed to open a connection to a target (ALB: 10 s) before answering 504.
    pub connect_timeout: Duration,
    /// How long an idle pooled upstream connection is kept.
    pub upstream_pool_idle: Duration,
    /// How long `shutdown` (or removing a listener) waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// Dedicated single-threaded serving runtimes (thread-per-core, like nginx workers),
    /// each accepting on its own descriptor of a listener's socket, with its own upstream pools. 0 = serve on the runtime
    /// that calls `apply`.
    pub workers: usize,
    /// A new connection's first request must have all its headers within this, or the
    /// connection is closed (slow-loris); later requests are bounded by the idle timeout.
    pub header_read_timeout: Duration,
    /// Client connections open at once over all listeners, in total and per client address;
    /// `None`: a quarter of the process's open-file limit ([`crate::fd_share`]).
    pub connection_caps: Option<crate::ConnectionCaps>,
}

/// ALB's default idle timeout.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The time a new connection has for its first request's headers (as the API's listener).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for DataPlaneOptions {
    fn default() -> Self {
        Self {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            connect_timeout: Duration::from_secs(10),
            upstream_pool_idle: Duration::from_secs(55),
            shutdown_timeout: Duration::from_secs(30),
            workers: 0,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            connection_caps: None,
        }
    }
}
