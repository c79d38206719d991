//! What every handler can reach: the store, the clock, the keys, and the configuration.

use std::sync::Arc;

use berth_control::Launcher;
use berth_model::{ApiError, Arn, Clock, ResourceKind, TargetHealthSource, DEFAULT_ACCOUNT_ID};
use berth_store::Store;

use crate::KeyRing;

/// Settings of the API edge.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The account id shown in ARNs.
    pub account_id: String,
    /// An agent that has not polled for this long shows `agentConnected: false`.
    pub agent_timeout_secs: f64,
    /// The longest an agent's poll is held open waiting for a change.
    pub max_poll_wait_secs: f64,
    /// The secret that join tokens are derived from (one token per cluster).
    pub join_secret: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            agent_timeout_secs: 30.0,
            max_poll_wait_secs: 10.0,
            join_secret: String::new(),
        }
    }
}

/// Shared state of the API server; cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) config: Arc<ApiConfig>,
    pub(crate) launcher: Arc<Launcher>,
    /// Flips to true when the server begins to shut down: held polls return at once.
    pub(crate) closing: tokio::sync::watch::Receiver<bool>,
    closing_tx: Arc<tokio::sync::watch::Sender<bool>>,
    /// Where ELB's DescribeTargetHealth reads health from (the load balancer's data plane).
    pub(crate) target_health: Option<Arc<dyn TargetHealthSource>>,
    /// The host every ELB listener binds on; load balancers show it as their `DNSName`.
    pub(crate) lb_host: Arc<str>,
    /// Appends more series to `/metrics` (the load balancer's).
    pub(crate) extra_metrics: Option<MetricsHook>,
    /// The metrics time series (service CPU, memory, requests), for `GetServiceMetrics`.
    pub(crate) metrics_hub: Option<Arc<berth_control::autoscale::MetricsHub>>,
}

/// Something that appends Prometheus text to `/metrics`.
pub type MetricsHook = Arc<dyn Fn(&mut String) + Send + Sync>;

impl ApiState {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: KeyRing,
        config: ApiConfig,
    ) -> Self {
        let launcher = Arc::new(Launcher::new(store.clone(), config.agent_timeout_secs));
        let (closing_tx, closing) = tokio::sync::watch::channel(false);
        Self {
            closing,
            closing_tx: Arc::new(closing_tx),
            store,
            clock,
            keys: Arc::new(keys),
            config: Arc::new(config),
            launcher,
            target_health: None,
            lb_host: Arc::from(DEFAULT_LB_HOST),
            extra_metrics: None,
            metrics_hub: None,
        }
    }

    /// Reads ELB target health from `src` (the load balancer's data plane).
    pub fn with_target_health(mut self, src: Arc<dyn TargetHealthSource>) -> Self {
        self.target_health = Some(src);
        self
    }

    /// Serves `BerthV1.GetServiceMetrics` from `hub`.
    pub fn with_metrics_hub(mut self, hub: Arc<berth_control::autoscale::MetricsHub>) -> Self {
        self.metrics_hub = Some(hub);
        self
    }

    /// Appends `hook`'s series to every `/metrics` scrape.
    pub fn with_metrics(mut self, hook: MetricsHook) -> Self {
        self.extra_metrics = Some(hook);
        self
    }

    /// The host ELB listeners bind on, shown as every load balancer's `DNSName`.
    pub fn with_lb_host(mut self, host: impl Into<String>) -> Self {
        self.lb_host = Arc::from(host.into());
        self
    }
}

/// The host ELB listeners bind on unless told otherwise.
pub const DEFAULT_LB_HOST: &str = "127.0.0.1";

impl ApiState {
    /// The launcher the API uses; controllers in the same process share it, so placements
    /// in one cluster are serialised between them.
    pub fn launcher(&self) -> Arc<Launcher> {
        self.launcher.clone()
    }

    /// Releases held long-polls so a graceful shutdown does not wait for them.
    pub fn begin_shutdown(&self) {
        let _ = self.closing_tx.send(true);
    }
}

/// One authenticated request's view: the state plus who asked and for which region.
pub(crate) struct Ctx {
    pub state: ApiState,
    pub region: String,
}

impl Ctx {
    pub fn store(&self) -> &dyn Store {
        &*self.state.store
    }
    pub fn now(&self) -> f64 {
        self.state.clock.now()
    }
    pub fn arn(&self, kind: ResourceKind, resource: impl Into<String>) -> String {
        Arn::new(&self.region, &self.state.config.account_id, kind, resource).to_string()
    }
    /// The principal ECS shows as `registeredBy`.
    pub fn principal_arn(&self) -> String {
        format!("arn:aws:iam::{}:root", self.state.config.account_id)
    }
}

pub(crate) use berth_control::store_err;

/// Encodes a record for the store.
pub(crate) fn to_bytes<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::server(format!("encoding record: {e}")))
}
