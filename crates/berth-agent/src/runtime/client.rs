//! The agent's side of the agent protocol: register, poll, report. Registration presents the
//! join token (and the instance credential, once the agent has one); every other call names
//! the instance and presents its credential.
//!
//! The server may be several URLs (the replicas of one control plane): each call goes
//! through [`crate::failover`]'s rule, so a dead or unhealthy replica costs one failed
//! attempt and the agent carries on with the next one, without registering again.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use berth_model::agent::{
    AgentRegistered, AgentRegistration, DesiredSet, StatusReport, CREDENTIAL_HEADER,
    INSTANCE_HEADER, JOIN_TOKEN_HEADER,
};
use serde::de::DeserializeOwned;

use crate::failover::{fails_over_status, Endpoints};

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request did not get an answer (connection, timeout, or an unreadable body).
    #[error("cannot reach the server: {}", with_causes(.0))]
    Transport(#[from] reqwest::Error),
    /// The server answered with an error status.
    #[error("server refused: {status}: {body}")]
    Refused {
        /// The HTTP status code.
        status: u16,
        /// The response body, as text (the server's error message).
        body: String,
    },
}

/// An error with its causes: reqwest's own message ("error sending request") hides why, and
/// the why (a certificate the cluster CA did not sign, a refused connection) is what an
/// operator needs in the agent's log.
fn with_causes(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[derive(Clone)]
pub(crate) struct ServerClient {
    http: reqwest::Client,
    servers: Endpoints,
    token: String,
    /// The instance id and its credential, once known.
    identity: Arc<RwLock<Option<(String, String)>>>,
}

impl ServerClient {
    /// A client of the server at `base` (one URL, or several separated by commas: the
    /// replicas of one control plane, failed over between). With `ca_pem`, TLS trusts only those certificates
    /// (the cluster CA) and plain HTTP is refused; a bundle that does not parse leaves no root
    /// at all, so every call fails verification rather than trusting anything else.
    pub(crate) fn new(base: &str, token: &str, ca_pem: Option<&[u8]>) -> Self {
        let mut b = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .tls_built_in_root_certs(false);
        if let Some(pem) = ca_pem {
            b = b.https_only(true);
            match reqwest::Certificate::from_pem_bundle(pem) {
                Ok(certs) => {
                    for c in certs {
                        b = b.add_root_certificate(c);
                    }
                }
                Err(e) => tracing::error!(error = %e, "the CA bundle does not parse"),
            }
        }
        Self::with_http(b.build().unwrap_or_default(), base, token)
    }

    /// A client of the server at `base` over `http`, a connection pool shared with other
    /// agents (`berth sim` runs thousands in one process; one pool each would hold thousands
    /// of idle connections).
    pub(crate) fn with_http(http: reqwest::Client, base: &str, token: &str) -> Self {
        Self {
            http,
            servers: Endpoints::parse(base),
            token: token.to_owned(),
            identity: Arc::default(),
        }
    }

    /// Sets the instance (and its credential) later calls are made as.
    pub(crate) fn set_identity(&self, instance_id: &str, credential: &str) {
        if let Ok(mut id) = self.identity.write() {
            *id = Some((instance_id.to_owned(), credential.to_owned()));
        }
    }

    /// Adds the instance and its credential to a request, when the agent has them.
    fn signed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let id = self.identity.read().ok().and_then(|g| g.clone());
        match id {
            Some((instance, credential)) => req
                .header(INSTANCE_HEADER, instance)
                .header(CREDENTIAL_HEADER, credential),
            None => req,
        }
    }

    async fn answer<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ClientError> {
        let status = resp.status();
        if !status.is_success() {
            return Err(ClientError::Refused {
                status: status.as_u16(),
                body: resp.text().await.unwrap_or_default(),
            });
        }
        Ok(resp.json().await?)
    }

    /// Sends one call to the current server, and on to the next ones while they do not
    /// answer or answer 5xx (see [`crate::failover`]). `build` makes the request for a base
    /// URL; the instance's credential is added to it.
    async fn send<T: DeserializeOwned>(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let order = self.servers.order();
        let mut k = 0;
        loop {
            let (i, base) = order[k];
            let result = match self.signed(build(base)).send().await {
                Ok(resp) => Self::answer(resp).await,
                Err(e) => Err(ClientError::Transport(e)),
            };
            let failed = match &result {
                Err(ClientError::Transport(_)) => true,
                Err(ClientError::Refused { status, .. }) => fails_over_status(*status),
                Ok(_) => false,
            };
            if !failed {
                self.servers.answered(i);
                return result;
            }
            if k == 0 {
                self.servers.failed(i);
            }
            k += 1;
            // `order` holds at least one URL (`Endpoints` keeps one).
            if k == order.len() {
                return result;
            }
            if let Err(e) = &result {
                tracing::warn!(server = base, error = %e, "server unavailable, trying the next");
            }
        }
    }

    pub(crate) async fn register(
        &self,
        reg: &AgentRegistration,
    ) -> Result<AgentRegistered, ClientError> {
        self.send(|base| {
            self.http
                .post(format!("{base}/agent/v1/register"))
                .header(JOIN_TOKEN_HEADER, &self.token)
                .timeout(Duration::from_secs(10))
                .json(reg)
        })
        .await
    }

    pub(crate) async fn poll(
        &self,
        cluster: &str,
        instance: &str,
        since: &str,
        wait: Duration,
    ) -> Result<DesiredSet, ClientError> {
        let wait_s = wait.as_secs_f64().to_string();
        self.send(|base| {
            self.http
                .get(format!("{base}/agent/v1/poll"))
                .query(&[
                    ("cluster", cluster),
                    ("instance", instance),
                    ("since", since),
                    ("wait", &wait_s),
                ])
                .timeout(wait + Duration::from_secs(10))
        })
        .await
    }

    pub(crate) async fn report(&self, report: &StatusReport) -> Result<(), ClientError> {
        self.send::<serde_json::Value>(|base| {
            self.http
                .post(format!("{base}/agent/v1/status"))
                .timeout(Duration::from_secs(10))
                .json(report)
        })
        .await
        .map(|_| ())
    }

    /// Ships a batch of an `awslogs` container's output (or opens its stream).
    pub(crate) async fn ship(
        &self,
        batch: &berth_model::logs::ShipBatch,
    ) -> Result<berth_model::logs::ShipAnswer, ClientError> {
        self.send(|base| {
            self.http
                .post(format!("{base}/agent/v1/logs"))
                .timeout(Duration::from_secs(10))
                .json(batch)
        })
        .await
    }
}
