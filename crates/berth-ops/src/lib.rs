//! berth's control layer: every ECS, ELBv2 and Application Auto Scaling operation, apart from
//! HTTP.
//!
//! Each action is one typed function: it takes a [`Ctx`] (who asks, in which region) and the
//! action's typed request, loads what it needs from the store, validates, mutates and commits
//! (compare-and-swap, retried with [`berth_store::Retry`] so that contention never reaches the
//! client as an error), and returns the action's answer. The HTTP edge (`berth-api`) only
//! authenticates, parses the body into the request type, calls in, and renders: it never sees
//! the store. That split is why the rules here are unit-tested in Rust against the in-memory
//! store, action by action, and not only through the HTTP suite.
//!
//! - [`ecs`]: clusters, task definitions, container instances and attributes, tasks,
//!   services and their deployments, tags, and berth's own actions (join tokens, logs, metrics).
//! - [`elb`]: load balancers, listeners, rules, target groups, targets, tags (ELBv2).
//! - [`autoscaling`]: scalable targets, scaling policies, scheduled actions, activities and
//!   berth's metric alarms (Application Auto Scaling).
//! - [`hostgroups`]: launch configurations, Auto Scaling groups (berth's host groups), their
//!   instances and scaling activities (EC2 Auto Scaling).
//! - [`secrets`]: SSM Parameter Store and Secrets Manager, and the resolution of tasks'
//!   `secrets` for their agents.
//! - [`logs`]: the CloudWatch Logs subset (log groups, streams, events, retention) and the
//!   agent's shipping of `awslogs` output, over a separate log store (`berth-logs`).
//! - [`ec2`]: the EC2 subset awsvpc tasks need (VPCs, subnets, security groups) and the
//!   default VPC made at start-up.
//! - [`iam`]: IAM users, access keys, user and role policies, and what the edge needs to
//!   authenticate a user's key and authorize its requests.
//! - [`agent`]: what node agents do: register, long-poll their desired tasks, report status.
//! - [`identity`]: join tokens (expiry, rotation) and the per-instance agent credentials.

#![warn(missing_docs)]

pub mod agent;
pub mod autoscaling;
pub mod ec2;
pub mod ecs;
pub mod elb;
pub mod hostgroups;
pub mod iam;
pub mod identity;
pub mod logs;
mod paging;
mod poll_hub;
pub mod secrets;
mod task_index;

use std::sync::Arc;

use berth_control::Launcher;
use berth_model::{ApiError, Arn, Clock, ErrorCode, ResourceKind, TargetHealthSource};
use berth_store::Store;

pub use berth_control::store_err;
pub use identity::{join_token, logs_token};

/// Settings of the control layer.
#[derive(Debug, Clone)]
pub struct OpsConfig {
    /// The account id shown in ARNs.
    pub account_id: String,
    /// An agent that has not polled for this long shows `agentConnected: false`.
    pub agent_timeout_secs: f64,
    /// The longest an agent's poll is held open waiting for a change.
    pub max_poll_wait_secs: f64,
    /// The secret that join tokens are derived from (one token per cluster).
    pub join_secret: String,
    /// How long a join token is good for after it is issued (`--join-token-ttl`).
    pub join_token_ttl_secs: f64,
    /// How long tokens issued before a rotation keep working (`--join-token-grace`).
    pub join_token_grace_secs: f64,
    /// The region in the ARNs agents are shown (agents do not sign for one, so their requests
    /// carry none); clients' requests use the region they signed for.
    pub region: String,
    /// How long a task role's temporary credentials live (`--task-credentials-secs`; ECS's
    /// 6 h by default); they are refreshed at half their life.
    pub task_credentials_secs: f64,
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self {
            account_id: berth_model::DEFAULT_ACCOUNT_ID.to_owned(),
            agent_timeout_secs: 30.0,
            max_poll_wait_secs: 10.0,
            join_secret: String::new(),
            join_token_ttl_secs: identity::DEFAULT_TOKEN_TTL_SECS,
            join_token_grace_secs: identity::DEFAULT_ROTATION_GRACE_SECS,
            region: DEFAULT_REGION.to_owned(),
            task_credentials_secs: iam::sessions::DEFAULT_LIFETIME_SECS,
        }
    }
}

/// The control layer: the store, the clock and what the operations share; cheap to clone.
#[derive(Clone)]
pub struct Ops {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Arc<OpsConfig>,
    pub(crate) launcher: Arc<Launcher>,
    /// Where ELB's DescribeTargetHealth reads health from (the load balancer's data plane).
    pub(crate) target_health: Option<Arc<dyn TargetHealthSource>>,
    /// The host every ELB listener binds on; load balancers show it as their `DNSName`.
    pub(crate) lb_host: Arc<str>,
    /// Tries a listener's port before CreateListener / ModifyListener answer (none: not tried).
    pub(crate) listener_ports: Option<Arc<dyn berth_model::lb::ListenerPorts>>,
    /// The metrics time series (service CPU, memory, requests), for `GetServiceMetrics`.
    pub(crate) metrics_hub: Option<Arc<berth_control::autoscale::MetricsHub>>,
    /// The key SecureString parameters and secret values are sealed with.
    pub(crate) secrets_key: Arc<secrets::SecretsKey>,
    /// Where CloudWatch Logs keeps groups, streams and events (none: Logs is not served).
    pub(crate) logs: Option<Arc<dyn berth_logs::LogStore>>,
    /// Wakes agents' waiting polls (one store watch for all of them).
    pub(crate) poll_hub: Arc<poll_hub::PollHub>,
    /// Every task's summary and each deployment's counts, for the read paths (one store watch).
    pub(crate) task_index: Arc<task_index::TaskIndex>,
}

/// The region agents are shown unless told otherwise.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The host ELB listeners bind on unless told otherwise.
pub const DEFAULT_LB_HOST: &str = "127.0.0.1";

impl Ops {
    /// The control layer over `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: OpsConfig) -> Self {
        let launcher = Arc::new(Launcher::new(store.clone(), config.agent_timeout_secs));
        Self {
            store,
            clock,
            config: Arc::new(config),
            launcher,
            target_health: None,
            lb_host: Arc::from(DEFAULT_LB_HOST),
            listener_ports: None,
            metrics_hub: None,
            // A key of this process only, until the server sets the data dir's.
            secrets_key: Arc::new(secrets::SecretsKey::generate()),
            logs: None,
            poll_hub: Arc::default(),
            task_index: Arc::default(),
        }
    }

    /// Seals SecureString parameters and secret values with `key` (the data dir's).
    pub fn with_secrets_key(mut self, key: secrets::SecretsKey) -> Self {
        self.secrets_key = Arc::new(key);
        self
    }

    /// Reads ELB target health from `src` (the load balancer's data plane).
    pub fn with_target_health(mut self, src: Arc<dyn TargetHealthSource>) -> Self {
        self.target_health = Some(src);
        self
    }

    /// Refuses listener ports that `ports` says cannot be bound (the load balancer's data plane).
    pub fn with_listener_ports(mut self, ports: Arc<dyn berth_model::lb::ListenerPorts>) -> Self {
        self.listener_ports = Some(ports);
        self
    }

    /// Serves `BerthV1.GetServiceMetrics` from `hub`.
    pub fn with_metrics_hub(mut self, hub: Arc<berth_control::autoscale::MetricsHub>) -> Self {
        self.metrics_hub = Some(hub);
        self
    }

    /// Each running task's latest resource use as its agent reported it to this replica
    /// (empty without a metrics hub), by task id.
    pub fn task_samples(&self) -> Vec<(String, berth_control::autoscale::TaskSample)> {
        // The collector forgets the stale ones each period.
        self.metrics_hub
            .as_ref()
            .map(|h| h.task_samples(self.now(), f64::INFINITY))
            .unwrap_or_default()
    }

    /// Serves CloudWatch Logs from `store`.
    pub fn with_logs(mut self, store: Arc<dyn berth_logs::LogStore>) -> Self {
        self.logs = Some(store);
        self
    }

    /// The log store, for the retention sweep.
    pub fn log_store(&self) -> Option<Arc<dyn berth_logs::LogStore>> {
        self.logs.clone()
    }

    /// The host ELB listeners bind on, shown as every load balancer's `DNSName`.
    pub fn with_lb_host(mut self, host: impl Into<String>) -> Self {
        self.lb_host = Arc::from(host.into());
        self
    }

    /// The launcher the operations use; controllers in the same process share it, so
    /// placements in one cluster are serialised between them.
    pub fn launcher(&self) -> Arc<Launcher> {
        self.launcher.clone()
    }

    /// The settings.
    pub fn config(&self) -> &OpsConfig {
        &self.config
    }

    /// The clock.
    pub fn now(&self) -> f64 {
        self.clock.now()
    }

    /// Whether the store takes writes now (false after a storage fault, until it recovers).
    pub fn store_healthy(&self) -> bool {
        self.store.healthy()
    }

    /// One caller's view, for requests signed for `region`.
    pub fn ctx(&self, region: impl Into<String>) -> Ctx {
        Ctx {
            state: self.clone(),
            region: region.into(),
        }
    }
}

/// One authenticated request's view: the control layer plus the region it was signed for.
pub struct Ctx {
    pub(crate) state: Ops,
    pub(crate) region: String,
}

impl Ctx {
    pub(crate) fn store(&self) -> &dyn Store {
        &*self.state.store
    }
    pub(crate) fn now(&self) -> f64 {
        self.state.clock.now()
    }
    pub(crate) fn arn(&self, kind: ResourceKind, resource: impl Into<String>) -> String {
        Arn::new(&self.region, &self.state.config.account_id, kind, resource).to_string()
    }
    /// The principal ECS shows as `registeredBy`.
    pub(crate) fn principal_arn(&self) -> String {
        format!("arn:aws:iam::{}:root", self.state.config.account_id)
    }
}

/// Encodes a record for the store.
pub(crate) fn to_bytes<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::server(format!("encoding record: {e}")))
}

/// Parses an action's JSON body into its typed request. An empty body is `{}`; a body that
/// does not fit is the client's mistake (`SerializationException`).
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::SerializationException,
            format!("Could not parse request body: {e}"),
        )
    })
}

/// Every task and container instance, for `/metrics`.
pub struct Fleet {
    /// Every task the control plane knows (stopped ones until reaped).
    pub tasks: Vec<berth_model::Task>,
    /// Every container instance, with whether its agent counts as connected now.
    pub instances: Vec<(berth_model::ContainerInstance, bool)>,
}

impl Ops {
    /// Reads the whole fleet (one list of tasks, one of instances).
    pub async fn fleet(&self) -> Result<Fleet, ApiError> {
        use berth_store::StoreExt;
        let tasks = self
            .store
            .list_json::<berth_model::Task>("tasks/")
            .await
            .map_err(store_err)?;
        let instances = self
            .store
            .list_json::<berth_model::ContainerInstance>("instances/")
            .await
            .map_err(store_err)?;
        let now = self.now();
        Ok(Fleet {
            tasks: tasks.into_iter().map(|(_, t, _)| t).collect(),
            instances: instances
                .into_iter()
                .map(|(_, i, _)| {
                    let c = berth_control::is_connected(&i, now, self.config.agent_timeout_secs);
                    (i, c)
                })
                .collect(),
        })
    }
}
