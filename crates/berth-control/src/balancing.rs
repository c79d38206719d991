//! Load-balancer sync: the ELBv2 records in the store become the data plane's configuration.
//!
//! Level-triggered like the other controllers: every pass reads all `elb/` records and the
//! container instances, derives the whole [`berth_lb::Config`] with the pure [`desired`]
//! function, and hands it to the data plane only when it differs from the last one applied.
//! A store watch wakes it; a slow periodic pass is the safety net. After a restart the first
//! pass rebuilds everything, so there is no state to recover.
//!
//! Only target groups that some listener or rule forwards to are configured: ELB checks the
//! health of no other (their targets are `unused`, which the API reports without us).
//!
//! Targets are resolved to socket addresses here, not in the data plane: an `ip` target is
//! its own address; an `instance` target names a container instance (by its EC2-style id or
//! berth's id) and goes to that host's advertised address, or loopback when the agent
//! advertises none. Unknown instances are left out until they appear.
//!
//! [`PlaneHealth`] serves the data plane's view of target health to the API and to the
//! service controller, through [`TargetHealthSource`].

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use berth_lb::{
    Action, Algorithm, Condition, Config, DataPlane, HealthCheckConfig, ListenerConfig, RuleConfig,
    TargetConfig, TargetGroupConfig,
};
use berth_model::lb::{
    ConditionMatch, ElbAction, LbAlgorithm, Listener, ListenerRule, TargetGroup, TargetHealthEntry,
    TargetHealthSource, TargetRegistration,
};
use berth_model::{keys, ContainerInstance, LoadBalancer};
use berth_store::{Store, StoreExt};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// Everything [`desired`] reads, as loaded from the store.
#[derive(Debug, Default, Clone)]
pub struct LbRecords {
    /// Every load balancer (for its attributes: the idle timeout).
    pub load_balancers: Vec<LoadBalancer>,
    /// Every ELBv2 listener.
    pub listeners: Vec<Listener>,
    /// Every listener rule.
    pub rules: Vec<ListenerRule>,
    /// Every target group.
    pub target_groups: Vec<TargetGroup>,
    /// Every target registration (the targets of all target groups).
    pub targets: Vec<TargetRegistration>,
    /// Every container instance, for the host address of each target.
    pub instances: Vec<ContainerInstance>,
}

impl LbRecords {
    /// Reads every listener, rule, target group, registration and container instance.
    pub async fn load(store: &dyn Store) -> Result<Self, berth_store::StoreError> {
        Ok(Self {
            load_balancers: values(
                store
                    .list_json::<LoadBalancer>(keys::ELB_LOAD_BALANCERS)
                    .await?,
            ),
            listeners: values(store.list_json::<Listener>(keys::ELB_LISTENERS).await?),
            rules: values(store.list_json::<ListenerRule>(keys::ELB_RULES).await?),
            target_groups: values(
                store
                    .list_json::<TargetGroup>(keys::ELB_TARGET_GROUPS)
                    .await?,
            ),
            targets: values(
                store
                    .list_json::<TargetRegistration>(keys::ELB_TARGETS)
                    .await?,
            ),
            instances: values(store.list_json::<ContainerInstance>("instances/").await?),
        })
    }
}

fn values<T>(v: Vec<(String, T, u64)>) -> Vec<T> {
    v.into_iter().map(|(_, t, _)| t).collect()
}

/// The data plane's key for a registered target: its id and port.
pub fn target_key(id: &str, port: u16) -> String {
    format!("{id}:{port}")
}

fn split_target_key(key: &str) -> Option<(&str, u16)> {
    let (id, port) = key.rsplit_once(':')?;
    Some((id, port.parse().ok()?))
}

fn action(a: &ElbAction) -> Action {
    match a.action_type.as_str() {
        "fixed-response" => {
            let c = a.fixed_response_config.as_ref();
            Action::FixedResponse {
                status: c.and_then(|c| c.status_code.parse().ok()).unwrap_or(200),
                content_type: c.and_then(|c| c.content_type.clone()),
                body: c.and_then(|c| c.message_body.clone()),
            }
        }
        "redirect" => {
            let c = a.redirect_config.clone();
            Action::Redirect {
                status: c
                    .as_ref()
                    .map(|c| {
                        if c.status_code.ends_with("301") {
                            301
                        } else {
                            302
                        }
                    })
                    .unwrap_or(302),
                protocol: c.as_ref().and_then(|c| c.protocol.clone()),
                host: c.as_ref().and_then(|c| c.host.clone()),
                port: c.as_ref().and_then(|c| c.port.clone()),
                path: c.as_ref().and_then(|c| c.path.clone()),
                query: c.as_ref().and_then(|c| c.query.clone()),
            }
        }
        _ => Action::Forward(a.forward_targets()),
    }
}

/// The first action of a list that decides the response (ELB runs them in `Order`).
fn first_action(actions: &[ElbAction]) -> Option<Action> {
    actions
        .iter()
        .min_by_key(|a| a.order.unwrap_or(u32::MAX))
        .map(action)
}

fn condition(c: &berth_model::lb::RuleCondition) -> Option<Condition> {
    Some(match c.resolve().ok()? {
        ConditionMatch::PathPattern(v) => Condition::PathPattern(v),
        ConditionMatch::HostHeader(v) => Condition::HostHeader(v),
        ConditionMatch::HttpHeader { name, values } => Condition::HttpHeader { name, values },
        ConditionMatch::HttpRequestMethod(v) => Condition::Method(v),
        ConditionMatch::QueryString(v) => {
            Condition::QueryString(v.into_iter().map(|p| (p.key, p.value)).collect())
        }
        ConditionMatch::SourceIp(v) => Condition::SourceIp(v),
    })
}

/// Where an `instance` target's traffic goes: the host its agent advertises.
fn instance_host(inst: &ContainerInstance) -> IpAddr {
    inst.agent_endpoint
        .as_deref()
        .and_then(|e| e.parse::<SocketAddr>().ok())
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The data plane configuration the records describe. Listeners bind on `bind_ip`.
pub fn desired(records: &LbRecords, bind_ip: IpAddr) -> Config {
    let mut rules_of: BTreeMap<&str, Vec<&ListenerRule>> = BTreeMap::new();
    for r in &records.rules {
        rules_of.entry(r.listener_arn.as_str()).or_default().push(r);
    }
    let mut used: std::collections::BTreeSet<String> = Default::default();
    let idle_of: HashMap<&str, Duration> = records
        .load_balancers
        .iter()
        .map(|lb| (lb.arn.as_str(), Duration::from_secs(lb.idle_timeout_secs())))
        .collect();
    let mut listeners = Vec::new();
    for l in &records.listeners {
        let mut rules = Vec::new();
        for r in rules_of.get(l.arn.as_str()).into_iter().flatten() {
            let Some(a) = first_action(&r.actions) else {
                continue;
            };
            let conditions: Option<Vec<Condition>> = r.conditions.iter().map(condition).collect();
            let Some(conditions) = conditions else {
                continue;
            };
            used.extend(
                r.actions
                    .iter()
                    .flat_map(|a| a.forward_targets())
                    .map(|(t, _)| t),
            );
            rules.push(RuleConfig {
                priority: r.priority,
                conditions,
                action: a,
            });
        }
        let Some(default_action) = first_action(&l.default_actions) else {
            continue;
        };
        used.extend(
            l.default_actions
                .iter()
                .flat_map(|a| a.forward_targets())
                .map(|(t, _)| t),
        );
        listeners.push(ListenerConfig {
            id: l.arn.clone(),
            bind: SocketAddr::new(bind_ip, l.port),
            rules,
            default_action,
            idle_timeout: idle_of.get(l.load_balancer_arn.as_str()).copied(),
        });
    }
    let by_instance: HashMap<&str, &ContainerInstance> = records
        .instances
        .iter()
        .flat_map(|i| [(i.ec2_instance_id.as_str(), i), (i.id.as_str(), i)])
        .collect();
    let mut targets_of: BTreeMap<&str, Vec<&TargetRegistration>> = BTreeMap::new();
    for t in &records.targets {
        targets_of
            .entry(t.target_group_arn.as_str())
            .or_default()
            .push(t);
    }
    let target_groups = records
        .target_groups
        .iter()
        .filter(|tg| used.contains(&tg.arn))
        .map(|tg| {
            let hc = &tg.health_check;
            let targets = targets_of
                .get(tg.arn.as_str())
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    let ip = match t.id.parse::<IpAddr>() {
                        Ok(ip) => ip,
                        Err(_) => instance_host(by_instance.get(t.id.as_str())?),
                    };
                    Some(TargetConfig {
                        id: target_key(&t.id, t.port),
                        addr: SocketAddr::new(ip, t.port),
                    })
                })
                .collect();
            TargetGroupConfig {
                id: tg.arn.clone(),
                algorithm: match tg.algorithm() {
                    LbAlgorithm::RoundRobin => Algorithm::RoundRobin,
                    LbAlgorithm::LeastOutstandingRequests => Algorithm::LeastOutstandingRequests,
                },
                health: HealthCheckConfig {
                    enabled: hc.enabled,
                    path: hc.path.clone(),
                    port: hc.port.parse().ok(),
                    interval: Duration::from_secs(u64::from(hc.interval_secs.max(1))),
                    timeout: Duration::from_secs(u64::from(hc.timeout_secs.max(1))),
                    healthy_threshold: hc.healthy_threshold.max(1),
                    unhealthy_threshold: hc.unhealthy_threshold.max(1),
                    matcher: hc.matcher.clone(),
                },
                deregistration_delay: Duration::from_secs(tg.deregistration_delay_secs()),
                targets,
                http2_to_targets: tg.protocol_version.as_deref() == Some("HTTP2"),
            }
        })
        .collect();
    Config {
        listeners,
        target_groups,
    }
}

/// Keeps the data plane configured as the store says.
pub struct Balancing {
    store: Arc<dyn Store>,
    plane: DataPlane,
    bind_ip: IpAddr,
}

impl Balancing {
    /// A balancer that configures `plane` from `store`; listeners bind to `bind_ip`.
    pub fn new(store: Arc<dyn Store>, plane: DataPlane, bind_ip: IpAddr) -> Self {
        Self {
            store,
            plane,
            bind_ip,
        }
    }

    /// Runs passes until `stop` is cancelled (a pass under way completes).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut last: Option<Config> = None;
        let mut changes = self
            .store
            .watch(keys::ELB, self.store.revision().await.unwrap_or(0));
        loop {
            match LbRecords::load(&*self.store).await {
                Ok(records) => {
                    let cfg = desired(&records, self.bind_ip);
                    if last.as_ref() != Some(&cfg) {
                        for (listener, error) in self.plane.apply(cfg.clone()).await {
                            tracing::warn!(%listener, %error, "load balancer listener not applied");
                        }
                        last = Some(cfg);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "load balancer sync pass failed"),
            }
            // Instances change (addresses) far more rarely than they heartbeat, so they are
            // picked up by the periodic pass rather than a watch on every poll.
            let tick = tokio::time::sleep(Duration::from_secs(2));
            tokio::select! {
                () = stop.cancelled() => return,
                ev = changes.next() => {
                    if ev.is_none() || matches!(ev, Some(Err(_))) {
                        let rev = self.store.revision().await.unwrap_or(0);
                        changes = self.store.watch(keys::ELB, rev);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    while let Some(Some(_)) = futures::FutureExt::now_or_never(changes.next()) {}
                }
                _ = tick => {}
            }
        }
    }
}

/// Tries listener ports on the data plane's host, for CreateListener and ModifyListener.
#[derive(Clone)]
pub struct PlanePorts {
    plane: DataPlane,
    bind_ip: IpAddr,
}

impl PlanePorts {
    /// Ports of `bind_ip`, as `plane`'s listeners bind them.
    pub fn new(plane: DataPlane, bind_ip: IpAddr) -> Self {
        Self { plane, bind_ip }
    }
}

impl berth_model::lb::ListenerPorts for PlanePorts {
    fn check_port(&self, port: u16) -> Result<(), String> {
        self.plane
            .check_bindable(SocketAddr::new(self.bind_ip, port))
            .map_err(|e| match e {
                berth_lb::ListenerError::Bind { source, .. } => source.to_string(),
                other => other.to_string(),
            })
    }
}

/// The data plane's target health, keyed back to ELB's (id, port).
#[derive(Clone)]
pub struct PlaneHealth {
    plane: DataPlane,
}

impl PlaneHealth {
    /// The health source of the targets served by `plane`.
    pub fn new(plane: DataPlane) -> Self {
        Self { plane }
    }
}

impl TargetHealthSource for PlaneHealth {
    fn target_health(&self, target_group_arn: &str) -> Vec<TargetHealthEntry> {
        self.plane
            .health()
            .remove(target_group_arn)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|h| {
                let (id, port) = split_target_key(&h.id)?;
                Some(TargetHealthEntry {
                    id: id.to_owned(),
                    port,
                    state: h.state.as_str().to_owned(),
                    reason: h.reason.map(str::to_owned),
                    description: h.description,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tg(arn: &str) -> TargetGroup {
        serde_json::from_value(json!({
            "arn": arn, "name": "web", "protocol": "HTTP", "port": 80, "target_type": "instance",
            "ip_address_type": "ipv4",
            "health_check": {"enabled": true, "protocol": "HTTP", "port": "traffic-port",
                "path": "/health", "interval_secs": 5, "timeout_secs": 2,
                "healthy_threshold": 2, "unhealthy_threshold": 2, "matcher": "200-299"},
            "attributes": {"deregistration_delay.timeout_seconds": "7",
                "load_balancing.algorithm.type": "least_outstanding_requests"},
            "created_at": 0.0
        }))
        .expect("a target group")
    }

    fn listener(arn: &str, port: u16, tg: &str) -> Listener {
        Listener {
            arn: arn.into(),
            load_balancer_arn: "lb".into(),
            port,
            protocol: "HTTP".into(),
            default_actions: vec![ElbAction::forward(tg)],
            default_rule_arn: "r0".into(),
            created_at: 0.0,
            tags: vec![],
        }
    }

    fn reg(tg: &str, id: &str, port: u16) -> TargetRegistration {
        TargetRegistration {
            target_group_arn: tg.into(),
            id: id.into(),
            port,
            availability_zone: None,
            registered_at: 0.0,
            owner: None,
        }
    }

    fn instance(id: &str, ec2: &str, endpoint: Option<&str>) -> ContainerInstance {
        serde_json::from_value(json!({
            "id": id, "cluster": "default", "ec2InstanceId": ec2, "status": "ACTIVE",
            "registered": {"cpu": 1024, "memory": 1024},
            "registeredAt": 0.0, "agentEndpoint": endpoint
        }))
        .expect("an instance")
    }

    #[test]
    fn records_become_listeners_groups_and_resolved_targets() {
        let mut lb: LoadBalancer = serde_json::from_value(json!({
            "arn": "lb", "name": "n", "dns_name": "d", "scheme": "internal",
            "lb_type": "application", "ip_address_type": "ipv4", "created_at": 0.0,
        }))
        .expect("a load balancer");
        lb.attributes
            .insert("idle_timeout.timeout_seconds".into(), "7".into());
        let records = LbRecords {
            load_balancers: vec![lb],
            listeners: vec![listener("l1", 8080, "tg1")],
            rules: vec![ListenerRule {
                arn: "r1".into(),
                listener_arn: "l1".into(),
                priority: 5,
                conditions: vec![serde_json::from_value(
                    json!({"Field": "path-pattern", "Values": ["/api/*"]}),
                )
                .expect("a condition")],
                actions: vec![ElbAction::forward("tg2")],
                created_at: 0.0,
                tags: vec![],
            }],
            target_groups: vec![tg("tg1"), tg("tg2"), tg("unused")],
            targets: vec![
                reg("tg1", "10.1.2.3", 81),
                reg("tg1", "i-abc", 82),
                reg("tg2", "inst2", 83),
                reg("tg2", "i-missing", 84),
                reg("unused", "10.0.0.9", 85),
            ],
            instances: vec![
                instance("inst1", "i-abc", Some("192.168.1.7:9500")),
                instance("inst2", "i-def", None),
            ],
        };
        let cfg = desired(&records, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let [l] = cfg.listeners.as_slice() else {
            panic!("one listener: {cfg:?}")
        };
        assert_eq!(l.bind, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(
            l.idle_timeout,
            Some(Duration::from_secs(7)),
            "the LB attribute"
        );
        assert_eq!(l.default_action, Action::Forward(vec![("tg1".into(), 1)]));
        assert_eq!(l.rules[0].priority, 5);
        assert_eq!(
            l.rules[0].conditions,
            vec![Condition::PathPattern(vec!["/api/*".into()])]
        );
        let ids: Vec<&str> = cfg.target_groups.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["tg1", "tg2"], "unused groups are not configured");
        let g1 = &cfg.target_groups[0];
        assert_eq!(g1.algorithm, Algorithm::LeastOutstandingRequests);
        assert_eq!(g1.deregistration_delay, Duration::from_secs(7));
        assert_eq!(g1.health.path, "/health");
        assert_eq!(g1.health.port, None);
        let addrs: Vec<String> = g1.targets.iter().map(|t| t.addr.to_string()).collect();
        assert_eq!(addrs, ["10.1.2.3:81", "192.168.1.7:82"]);
        let g2 = &cfg.target_groups[1];
        assert_eq!(g2.targets.len(), 1, "unknown instances wait");
        assert_eq!(g2.targets[0].addr.to_string(), "127.0.0.1:83");
        assert_eq!(g2.targets[0].id, "inst2:83");
        assert_eq!(split_target_key("inst2:83"), Some(("inst2", 83)));
        assert_eq!(split_target_key("::1:83"), Some(("::1", 83)));
    }
}
