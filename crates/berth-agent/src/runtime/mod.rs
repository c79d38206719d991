//! The node agent: registers the host, long-polls the control plane for the full set of tasks
//! assigned to it, and reconciles its containers to that set (level-triggered).
//!
//! - Identity is kept in `state_dir/agent.json` (mode 0600): the instance id the server chose
//!   and the instance credential it issued, so a restarted agent re-registers as the same
//!   container instance (with its credential: no join token needed), and adopts the
//!   containers its driver already runs (no duplicates).
//! - Each task gets a [`task::Runner`]; runners send reports to one reporter, which coalesces
//!   them per task and retries until the server has them, so the last state is never lost.
//! - When the control plane is unreachable, tasks keep running; reconciliation resumes with
//!   the next successful poll. Nothing is stopped for lack of an answer.

mod awslogs;
mod client;
mod convert;
mod host;
mod logs;
mod metadata;
mod options;
mod task;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_model::agent::{AgentRegistration, DesiredSet, StatusReport, TaskReport};
use berth_model::{Attribute, DesiredStatus, TaskStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

pub use client::ClientError;
use client::ServerClient;

use crate::spec::OwnedContainer;
use crate::Driver;

/// How the agent is set up (flags of `berth agent`).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The control plane's URL, e.g. `http://127.0.0.1:9400`, or several separated by commas
    /// (the replicas of one control plane; see [`crate::failover`]).
    pub server: String,
    /// The name of the cluster to join.
    pub cluster: String,
    /// The cluster's join token (`berth join-token`), sent with every call to the server.
    pub join_token: String,
    /// Where the agent keeps its identity.
    pub state_dir: PathBuf,
    /// Extra attributes (`--attribute k=v`).
    pub attributes: Vec<(String, Option<String>)>,
    /// How long a poll waits for a change before it returns anyway (the heartbeat period).
    pub poll_wait: Duration,
    /// Exited containers of tasks the server has forgotten are removed after this long.
    pub cleanup_after: Duration,
    /// Override the detected resources (tests simulating hosts of a given size).
    pub cpu_units: Option<u64>,
    /// With `cpu_units`: the memory to offer, in MiB.
    pub memory_mib: Option<u64>,
    /// Where to serve container logs (`None`: no log endpoint).
    pub logs_listen: Option<std::net::SocketAddr>,
    /// The host name or address the server and CLI reach this agent by (default: the
    /// listen address when it is specific, else this host's name).
    pub advertise: Option<String>,
    /// Where to serve the task metadata endpoint (`None`: no endpoint, no
    /// `ECS_CONTAINER_METADATA_URI_V4`). An unspecified address (`0.0.0.0:0`) means Docker's
    /// bridge gateway with the docker driver, loopback otherwise.
    pub metadata_listen: Option<std::net::SocketAddr>,
    /// The CA bundle (PEM) trusted for an `https://` server: only these roots, never the
    /// system's, so only a server with a certificate from the cluster CA is talked to.
    pub ca_cert_pem: Option<Vec<u8>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    cluster: String,
    instance_id: String,
    /// Absent in an identity written before credentials existed: the agent then migrates,
    /// re-registering its id with the join token.
    #[serde(default)]
    credential: Option<String>,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The state dir could not be created, read or written.
    #[error("agent state dir: {0}")]
    State(#[from] std::io::Error),
    /// The server no longer knows this container instance; its tasks have been stopped.
    #[error("the container instance was deregistered from the cluster")]
    Deregistered,
    /// The server registered the instance without issuing a credential (an older server).
    #[error("the server issued no instance credential")]
    NoCredential,
}

struct Managed {
    desired: watch::Sender<DesiredStatus>,
    handle: tokio::task::JoinHandle<TaskReport>,
}

/// What the agent's loop keeps about this host's tasks between polls.
#[derive(Default)]
struct Local {
    /// A runner per task being run.
    managed: HashMap<String, Managed>,
    /// The last report of each runner that finished, while the server still lists its task.
    finished: HashMap<String, TaskReport>,
    /// Tasks no longer listed, and since when: `cleanup` removes their containers once
    /// `cleanup_after` has passed.
    forgotten: HashMap<String, tokio::time::Instant>,
    /// The containers the driver had when the agent started, by task, until a runner adopts
    /// them.
    adoptable: HashMap<String, Vec<OwnedContainer>>,
    /// The security-group allowances enforced for each awsvpc task, as last applied: an
    /// answer that changes them is applied at once (the runner applied the first).
    ingress: HashMap<String, Vec<berth_model::vpc::IngressAllow>>,
}

impl Local {
    /// Collects the runners that finished (their last report goes to `finished`).
    async fn reap(&mut self) {
        let done: Vec<String> = self
            .managed
            .iter()
            .filter(|(_, m)| m.handle.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        for id in done {
            if let Some(m) = self.managed.remove(&id) {
                match m.handle.await {
                    Ok(r) => {
                        self.finished.insert(id, r);
                    }
                    // Never silent: the next poll starts a new runner for the task.
                    Err(e) => tracing::error!(task = %id, error = %e, "task runner failed"),
                }
            }
        }
    }
}

/// The node agent of one host: joins a cluster and runs the tasks placed on it.
pub struct Agent {
    cfg: AgentConfig,
    driver: Arc<dyn Driver>,
    client: ServerClient,
    /// What callers of the logs endpoint present (the server issues it at registration).
    logs_token: Arc<std::sync::RwLock<String>>,
}

impl Agent {
    /// An agent with this configuration that runs containers with `driver`.
    pub fn new(cfg: AgentConfig, driver: Arc<dyn Driver>) -> Self {
        let client = ServerClient::new(&cfg.server, &cfg.join_token, cfg.ca_cert_pem.as_deref());
        Self {
            cfg,
            driver,
            client,
            logs_token: Arc::default(),
        }
    }

    /// An agent that talks to the server over `http`, a client (connection pool) it shares
    /// with other agents in the same process: `berth sim` runs thousands of agents, each a
    /// real [`Agent`] with a fake driver. `cfg.ca_cert_pem` is not applied: `http` carries
    /// whatever trust its maker gave it.
    pub fn with_http(cfg: AgentConfig, driver: Arc<dyn Driver>, http: reqwest::Client) -> Self {
        let client = ServerClient::with_http(http, &cfg.server, &cfg.join_token);
        Self {
            cfg,
            driver,
            client,
            logs_token: Arc::default(),
        }
    }

    fn identity_path(&self) -> PathBuf {
        self.cfg.state_dir.join("agent.json")
    }

    async fn load_identity(&self) -> Option<Identity> {
        let bytes = tokio::fs::read(self.identity_path()).await.ok()?;
        let id: Identity = serde_json::from_slice(&bytes).ok()?;
        (id.cluster == self.cfg.cluster).then_some(id)
    }

    /// Writes the identity, readable by the agent's user only (it holds the credential).
    async fn save_identity(&self, instance_id: &str, credential: &str) -> Result<(), AgentError> {
        tokio::fs::create_dir_all(&self.cfg.state_dir).await?;
        let tmp = self.identity_path().with_extension("tmp");
        let body = serde_json::to_vec(&Identity {
            cluster: self.cfg.cluster.clone(),
            instance_id: instance_id.to_owned(),
            credential: Some(credential.to_owned()),
        })
        .unwrap_or_default();
        let _ = tokio::fs::remove_file(&tmp).await;
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .await?;
        tokio::io::AsyncWriteExt::write_all(&mut f, &body).await?;
        f.sync_all().await?;
        drop(f);
        tokio::fs::rename(&tmp, self.identity_path()).await?;
        Ok(())
    }

    fn registration(
        &self,
        instance_id: Option<String>,
        endpoint: Option<String>,
    ) -> AgentRegistration {
        let (cpu, mem) = host::resources();
        let mut attributes = vec![
            attr("ecs.os-type", Some("linux")),
            attr("ecs.cpu-architecture", Some(host::arch())),
            attr("berth.driver", Some(self.driver.name())),
            attr("ecs.capability.container-health-check", None),
            attr("ecs.capability.container-ordering", None),
        ];
        for cap in self.driver.capabilities() {
            attributes.push(attr(&cap, None));
        }
        for (k, v) in &self.cfg.attributes {
            attributes.push(attr(k, v.as_deref()));
        }
        AgentRegistration {
            cluster: self.cfg.cluster.clone(),
            instance_id,
            hostname: host::hostname(),
            resources: berth_model::HostResources {
                cpu: self.cfg.cpu_units.unwrap_or(cpu),
                memory: self.cfg.memory_mib.unwrap_or(mem),
                ports: vec![22],
                ports_udp: vec![],
            },
            attributes,
            version_info: serde_json::json!({
                "agentVersion": env!("CARGO_PKG_VERSION"),
                "agentHash": "berth",
                "dockerVersion": self.driver.name(),
            }),
            endpoint,
        }
    }

    /// Registers (or re-registers) until the server answers.
    async fn register(&self, endpoint: Option<String>) -> Result<String, AgentError> {
        let mut backoff = Duration::from_millis(200);
        loop {
            let known = self.load_identity().await;
            if let Some(Identity {
                instance_id,
                credential: Some(c),
                ..
            }) = &known
            {
                self.client.set_identity(instance_id, c);
            }
            let reg = self.registration(known.map(|i| i.instance_id), endpoint.clone());
            match self.client.register(&reg).await {
                Ok(r) => {
                    let Some(credential) = r.credential.as_deref() else {
                        return Err(AgentError::NoCredential);
                    };
                    // Saved before it is used, so a crash never leaves the agent with a
                    // credential the server has and the disk lacks.
                    self.save_identity(&r.instance_id, credential).await?;
                    self.client.set_identity(&r.instance_id, credential);
                    if let (Some(t), Ok(mut mine)) = (&r.logs_token, self.logs_token.write()) {
                        mine.clone_from(t);
                    }
                    tracing::info!(instance = %r.instance_id, cluster = %self.cfg.cluster, "registered");
                    return Ok(r.instance_id);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "registration failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Runs until `shutdown` resolves (tasks keep running: an agent restart adopts them) or
    /// the instance is deregistered (then its tasks are stopped). The log endpoint ends with
    /// it, so an agent run again in the same process (supervised) does not leave one behind.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), AgentError> {
        let (endpoint, _log_endpoint) = self.serve_logs().await?;
        let (metadata, _metadata_endpoint) = self.serve_metadata().await?.unzip();
        let instance_id = self.register(endpoint).await?;
        let (tx, rx) = mpsc::unbounded_channel::<TaskReport>();
        let reporter = tokio::spawn(reporter(
            self.client.clone(),
            self.cfg.cluster.clone(),
            instance_id.clone(),
            rx,
        ));
        let mut local = Local {
            adoptable: self.adoptable().await,
            ..Local::default()
        };
        let mut since = String::new();
        let mut backoff = Duration::from_millis(200);
        tokio::pin!(shutdown);
        let result = loop {
            let poll =
                self.client
                    .poll(&self.cfg.cluster, &instance_id, &since, self.cfg.poll_wait);
            let set = tokio::select! {
                _ = &mut shutdown => break Ok(()),
                r = poll => r,
            };
            let set = match set {
                Ok(s) => {
                    backoff = Duration::from_millis(200);
                    s
                }
                Err(e) => {
                    tracing::warn!(error = %e, "poll failed; tasks keep running");
                    tokio::select! {
                        _ = &mut shutdown => break Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if !set.registered {
                self.stop_everything(&mut local).await;
                break Err(AgentError::Deregistered);
            }
            since = set.fingerprint.clone();
            local.reap().await;
            if let Some(m) = &metadata {
                m.update(&set.tasks);
            }
            self.reconcile(&set, &mut local, &tx, metadata.as_ref())
                .await;
        };
        // After a deregistration the runners are done: let the reporter deliver what they said
        // last, briefly. On a plain shutdown tasks keep running and there is nothing to wait for.
        drop(tx);
        let mut reporter = reporter;
        if result.is_err() {
            let _ = tokio::time::timeout(Duration::from_secs(3), &mut reporter).await;
        }
        reporter.abort();
        result
    }

    /// The containers the driver already runs (an earlier agent's), by task.
    async fn adoptable(&self) -> HashMap<String, Vec<OwnedContainer>> {
        let mut adoptable: HashMap<String, Vec<OwnedContainer>> = HashMap::new();
        match self.driver.list_owned().await {
            Ok(list) => {
                for c in list {
                    adoptable.entry(c.task_id.clone()).or_default().push(c);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list existing containers"),
        }
        adoptable
    }

    /// Deregistration is final: stop everything this host runs, and wait for it.
    async fn stop_everything(&self, local: &mut Local) {
        for m in local.managed.values() {
            let _ = m.desired.send(DesiredStatus::Stopped);
        }
        for c in local.adoptable.values().flatten() {
            let _ = self.driver.stop(&c.id, Duration::from_secs(30)).await;
        }
        let runners = futures::future::join_all(local.managed.drain().map(|(_, m)| m.handle));
        if tokio::time::timeout(Duration::from_secs(150), runners)
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop in time after deregistration");
        }
    }

    /// Brings this host's tasks to the set the server sent: runners for new tasks, desired
    /// status to running ones, stops for tasks and containers no longer listed.
    async fn reconcile(
        &self,
        set: &DesiredSet,
        local: &mut Local,
        tx: &mpsc::UnboundedSender<TaskReport>,
        metadata: Option<&metadata::Metadata>,
    ) {
        let wanted: HashSet<&str> = set.tasks.iter().map(|t| t.task_id.as_str()).collect();
        for t in &set.tasks {
            if let Some(m) = local.managed.get(&t.task_id) {
                m.desired.send_if_modified(|d| {
                    let changed = *d != t.desired_status;
                    *d = t.desired_status;
                    changed
                });
                self.update_ingress(t, &mut local.ingress).await;
                continue;
            }
            if let Some(r) = local.finished.get(&t.task_id) {
                // The server has not seen the end yet: say it again.
                if t.last_status != TaskStatus::Stopped {
                    let _ = tx.send(TaskReport {
                        stats_only: false,
                        ..r.clone()
                    });
                }
                continue;
            }
            if let Some(n) = &t.network {
                local.ingress.insert(t.task_id.clone(), n.ingress.clone());
            }
            let (dtx, drx) = watch::channel(t.desired_status);
            let runner = task::Runner {
                driver: self.driver.clone(),
                cluster: self.cfg.cluster.clone(),
                task: t.clone(),
                desired: drx,
                reports: tx.clone(),
                adopted: local.adoptable.remove(&t.task_id).unwrap_or_default(),
                metadata: metadata.cloned(),
                logs: Some(awslogs::LogShipping {
                    client: self.client.clone(),
                    driver: self.driver.clone(),
                    cluster: self.cfg.cluster.clone(),
                    running: Default::default(),
                }),
            };
            local.managed.insert(
                t.task_id.clone(),
                Managed {
                    desired: dtx,
                    handle: tokio::spawn(runner.run()),
                },
            );
        }
        // Runners of tasks the server no longer lists: stop them.
        for (id, m) in &local.managed {
            if !wanted.contains(id.as_str()) {
                let _ = m.desired.send(DesiredStatus::Stopped);
            }
        }
        let forgotten = &mut local.forgotten;
        local.finished.retain(|id, _| {
            wanted.contains(id.as_str()) || {
                forgotten
                    .entry(id.clone())
                    .or_insert_with(tokio::time::Instant::now);
                false
            }
        });
        // Containers nobody claims: stop the running ones now, remove exited ones later.
        for (task_id, containers) in local.adoptable.iter() {
            if wanted.contains(task_id.as_str()) {
                continue;
            }
            local
                .forgotten
                .entry(task_id.clone())
                .or_insert_with(tokio::time::Instant::now);
            for c in containers {
                if matches!(c.status.state, crate::spec::RunState::Running) {
                    tracing::info!(task = %task_id, container = %c.container_name, "stopping orphan container");
                    let _ = self.driver.stop(&c.id, Duration::from_secs(10)).await;
                }
            }
        }
        local.adoptable.retain(|id, _| wanted.contains(id.as_str()));
        local.ingress.retain(|id, _| wanted.contains(id.as_str()));
        self.cleanup(&mut local.forgotten, &local.managed).await;
    }

    /// Re-applies a running awsvpc task's security groups when the server's answer changed
    /// them (a rule authorized or revoked, a member of a source group started or stopped).
    async fn update_ingress(
        &self,
        t: &berth_model::agent::AgentTask,
        applied: &mut HashMap<String, Vec<berth_model::vpc::IngressAllow>>,
    ) {
        let Some(net) = &t.network else {
            return;
        };
        if applied.get(&t.task_id) == Some(&net.ingress) {
            return;
        }
        match self.driver.apply_ingress(&t.task_id, net).await {
            Ok(()) => {
                applied.insert(t.task_id.clone(), net.ingress.clone());
            }
            Err(e) => tracing::warn!(task = %t.task_id, error = %e, "cannot apply security groups"),
        }
    }

    /// Starts the log endpoint, if configured; returns the address to advertise and a guard
    /// that stops the endpoint when dropped.
    async fn serve_logs(&self) -> Result<(Option<String>, Option<AbortOnDrop>), AgentError> {
        let Some(addr) = self.cfg.logs_listen else {
            return Ok((None, None));
        };
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let app = logs::router(self.driver.clone(), self.logs_token.clone());
        let server = AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "log endpoint stopped");
            }
        }));
        let host = match &self.cfg.advertise {
            Some(h) => h.clone(),
            None if !bound.ip().is_unspecified() => bound.ip().to_string(),
            None => host::hostname(),
        };
        tracing::info!(%bound, "serving container logs");
        Ok((Some(format!("{host}:{}", bound.port())), Some(server)))
    }

    /// Starts the task metadata endpoint, if configured.
    async fn serve_metadata(
        &self,
    ) -> Result<Option<(metadata::Metadata, metadata::Serving)>, AgentError> {
        let Some(listen) = self.cfg.metadata_listen else {
            return Ok(None);
        };
        let zone = self
            .cfg
            .attributes
            .iter()
            .find(|(k, _)| k == metadata::ZONE_ATTRIBUTE)
            .and_then(|(_, v)| v.clone());
        let setup = metadata::Setup {
            listen,
            state_dir: &self.cfg.state_dir,
            cluster: &self.cfg.cluster,
            zone,
        };
        Ok(Some(
            metadata::Metadata::start(setup, self.driver.clone()).await?,
        ))
    }

    /// Removes the containers of tasks the server forgot, once `cleanup_after` has passed.
    async fn cleanup(
        &self,
        forgotten: &mut HashMap<String, tokio::time::Instant>,
        managed: &HashMap<String, Managed>,
    ) {
        let due: Vec<String> = forgotten
            .iter()
            .filter(|(id, at)| at.elapsed() >= self.cfg.cleanup_after && !managed.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        if let Ok(list) = self.driver.list_owned().await {
            for c in list.iter().filter(|c| due.contains(&c.task_id)) {
                let _ = self.driver.remove(&c.id).await;
            }
        }
        for id in &due {
            if let Err(e) = self.driver.remove_task_volumes(id).await {
                tracing::warn!(task = %id, error = %e, "cannot remove the task's volumes");
            }
            if let Err(e) = self.driver.remove_task_network(id).await {
                tracing::warn!(task = %id, error = %e, "cannot remove the task's network");
            }
        }
        for id in due {
            forgotten.remove(&id);
        }
    }
}

/// Aborts the task when dropped (also when the future holding it is dropped mid-way). Six
/// lines rather than tokio-util's `AbortOnDropHandle`, which needs a dependency and its `rt`
/// feature for this one use.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn attr(name: &str, value: Option<&str>) -> Attribute {
    Attribute {
        name: name.to_owned(),
        value: value.map(str::to_owned),
        target_type: None,
        target_id: None,
    }
}

/// Keeps the newest report of each task. A report that replaces one not yet delivered is
/// `stats_only` only if both were: the change the older one carried must still be written.
fn coalesce(pending: &mut HashMap<String, TaskReport>, mut r: TaskReport) {
    if let Some(old) = pending.get(&r.task_id) {
        r.stats_only &= old.stats_only;
    }
    pending.insert(r.task_id.clone(), r);
}

/// Sends reports to the server: the newest per task, batched, retried until accepted.
async fn reporter(
    client: ServerClient,
    cluster: String,
    instance_id: String,
    mut rx: mpsc::UnboundedReceiver<TaskReport>,
) {
    let mut pending: HashMap<String, TaskReport> = HashMap::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(r) => coalesce(&mut pending, r),
                None => return,
            }
        }
        while let Ok(r) = rx.try_recv() {
            coalesce(&mut pending, r);
        }
        let batch = StatusReport {
            cluster: cluster.clone(),
            instance_id: instance_id.clone(),
            tasks: pending.values().cloned().collect(),
        };
        match client.report(&batch).await {
            Ok(()) => {
                // Keep what arrived meanwhile; drop what was delivered unchanged.
                for r in batch.tasks {
                    if pending.get(&r.task_id) == Some(&r) {
                        pending.remove(&r.task_id);
                    }
                }
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                tracing::warn!(error = %e, "status report failed; will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
