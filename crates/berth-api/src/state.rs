//! What the edge holds: the control layer, the access keys, and the shutdown signal.

use std::sync::Arc;

use berth_ops::Ops;

use crate::throttle::{RateLimit, Throttle};
use crate::KeyRing;

/// Shared state of the API server; cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) ops: Ops,
    pub(crate) keys: Arc<KeyRing>,
    /// Flips to true when the server begins to shut down: held polls return at once.
    pub(crate) closing: tokio::sync::watch::Receiver<bool>,
    closing_tx: Arc<tokio::sync::watch::Sender<bool>>,
    /// Appends more series to `/metrics` (the load balancer's).
    pub(crate) extra_metrics: Option<MetricsHook>,
    /// The bearer token `/metrics` requires (`None`: `/metrics` answers 401 to everyone).
    pub(crate) metrics_token: Option<Arc<str>>,
    /// Per-access-key request rate limits (none unless [`ApiState::with_rate_limit`]).
    pub(crate) throttle: Arc<Throttle>,
}

/// Something that appends Prometheus text to `/metrics`.
pub type MetricsHook = Arc<dyn Fn(&mut String) + Send + Sync>;

impl ApiState {
    /// The edge in front of `ops`, accepting requests signed with `keys`.
    pub fn new(ops: Ops, keys: KeyRing) -> Self {
        let (closing_tx, closing) = tokio::sync::watch::channel(false);
        Self {
            ops,
            keys: Arc::new(keys),
            closing,
            closing_tx: Arc::new(closing_tx),
            extra_metrics: None,
            metrics_token: None,
            throttle: Arc::new(Throttle::new(None)),
        }
    }

    /// Limits each access key's AWS API requests (not the agents'): over it, requests are
    /// answered `ThrottlingException`. `None`, or a rate of 0, disables the limit.
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.throttle = Arc::new(Throttle::new(limit));
        self
    }

    /// Appends `hook`'s series to every `/metrics` scrape.
    pub fn with_metrics(mut self, hook: MetricsHook) -> Self {
        self.extra_metrics = Some(hook);
        self
    }

    /// Lets scrapers that send `Authorization: Bearer TOKEN` read `/metrics`.
    pub fn with_metrics_token(mut self, token: impl Into<Arc<str>>) -> Self {
        self.metrics_token = Some(token.into());
        self
    }

    /// The control layer behind this edge.
    pub fn ops(&self) -> &Ops {
        &self.ops
    }

    /// Releases held long-polls so a graceful shutdown does not wait for them.
    pub fn begin_shutdown(&self) {
        let _ = self.closing_tx.send(true);
    }
}
