//! The task metadata endpoint (ECS's v4, and v3 on the same paths): every container gets
//! `ECS_CONTAINER_METADATA_URI_V4` (and `ECS_CONTAINER_METADATA_URI`) pointing here and reads
//! `${URI}`, `${URI}/task`, `${URI}/stats` and `${URI}/task/stats` as it would on ECS.
//!
//! - **Reachable from every kind of task.** With Docker the agent listens on the default
//!   bridge's gateway address, which bridge-mode containers route to the host by, and which
//!   host-mode containers and plain processes reach as a local address; without Docker it
//!   listens on loopback.
//! - **Only the caller's own task.** There is no peer address to trust (bridge containers of
//!   every task share one network, processes share the host), so each container's URI holds a
//!   token, `http://ADDR:PORT/v4/<token>`, that only that container is given: an HMAC of the
//!   task ARN and container name under a key kept in the agent's state dir. It is unguessable,
//!   and the same after an agent restart, so adopted containers keep a working URI. Any other
//!   path is a 404.
//! - **Bounded.** At most [`MAX_CONNECTIONS`] connections at once (more wait in the accept
//!   queue), a header read timeout and a whole-connection deadline, so a stuck client cannot
//!   pin the agent.

mod credentials;
mod dnat;
mod engine;
mod shape;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use berth_model::agent::{AgentTask, TaskCredentials};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use sha2::Sha256;

use self::shape::{Seen, TaskView};
use crate::runtime::convert::network_mode;
use crate::spec::ContainerSpec;
use crate::Driver;

/// The variable holding the v4 URI.
pub(crate) const URI_V4: &str = "ECS_CONTAINER_METADATA_URI_V4";
/// The variable holding the v3 URI (same server, same answers).
pub(crate) const URI_V3: &str = "ECS_CONTAINER_METADATA_URI";
/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a connection may live (a stats answer takes Docker about a second).
const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);
/// The attribute whose value is reported as `AvailabilityZone`.
pub(crate) const ZONE_ATTRIBUTE: &str = "ecs.availability-zone";

/// The running endpoint: hands out URIs and learns the host's tasks from each poll.
#[derive(Clone)]
pub(crate) struct Metadata {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    key: Vec<u8>,
    driver: Arc<dyn Driver>,
    docker: Option<bollard::Docker>,
    cluster: String,
    zone: Option<String>,
    known: RwLock<Known>,
}

#[derive(Default)]
struct Known {
    tasks: HashMap<String, AgentTask>,
    /// token → (task id, container name)
    tokens: HashMap<String, (String, String)>,
    /// credentials id → the task's current role credentials.
    credentials: HashMap<String, TaskCredentials>,
}

/// Where to listen: `listen` as given, or for an unspecified address (`0.0.0.0`), Docker's
/// bridge gateway when the driver is docker, else loopback.
async fn pick_address(
    listen: SocketAddr,
    driver: &dyn Driver,
    docker: Option<&bollard::Docker>,
) -> SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    let ip = match docker {
        Some(d) if driver.name() == "docker" => engine::bridge_gateway(d).await,
        _ => None,
    };
    SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)), listen.port())
}

/// The key tokens are derived from, created on first use in `state_dir/metadata.key`.
async fn load_key(state_dir: &Path) -> std::io::Result<Vec<u8>> {
    let path = state_dir.join("metadata.key");
    if let Ok(text) = tokio::fs::read_to_string(&path).await {
        if let Ok(key) = hex::decode(text.trim()) {
            if key.len() >= 32 {
                return Ok(key);
            }
        }
    }
    let key: [u8; 32] = rand::random();
    tokio::fs::create_dir_all(state_dir).await?;
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, hex::encode(key)).await?;
    tokio::fs::rename(&tmp, &path).await?;
    Ok(key.to_vec())
}

/// Aborts the server (and removes ECS's address toward it) when dropped.
pub(crate) struct Serving(tokio::task::JoinHandle<()>, Option<dnat::Dnat>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
        self.1.take();
    }
}

/// How the endpoint is set up.
pub(crate) struct Setup<'a> {
    /// Where to listen (see [`pick_address`]).
    pub listen: SocketAddr,
    /// The agent's state dir (the token key lives there).
    pub state_dir: &'a Path,
    /// The cluster's name.
    pub cluster: &'a str,
    /// The agent's `ecs.availability-zone` attribute, if set.
    pub zone: Option<String>,
}

impl Metadata {
    /// Binds and starts serving; the endpoint stops when the returned guard is dropped.
    pub(crate) async fn start(
        setup: Setup<'_>,
        driver: Arc<dyn Driver>,
    ) -> std::io::Result<(Metadata, Serving)> {
        let docker = (driver.name() == "docker").then(engine::connect).flatten();
        let addr = pick_address(setup.listen, driver.as_ref(), docker.as_ref()).await;
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) if setup.listen.ip().is_unspecified() => {
                tracing::warn!(%addr, error = %e, "metadata endpoint: cannot bind; using loopback");
                tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, setup.listen.port())).await?
            }
            Err(e) => return Err(e),
        };
        let bound = listener.local_addr()?;
        let md = Metadata {
            inner: Arc::new(Inner {
                base: format!("http://{bound}"),
                key: load_key(setup.state_dir).await?,
                driver,
                docker,
                cluster: setup.cluster.to_owned(),
                zone: setup.zone,
                known: RwLock::new(Known::default()),
            }),
        };
        tracing::info!(%bound, "serving the task metadata endpoint");
        // Docker containers reach task credentials at ECS's address, as on ECS.
        let dnat = if md.inner.driver.name() == "docker" && !bound.ip().is_loopback() {
            let d = dnat::Dnat::install(bound);
            if d.is_none() {
                tracing::warn!(%bound, "cannot route {} to the metadata endpoint (iptables); \
                    containers' SDKs will not find task role credentials", dnat::ECS_ADDRESS);
            }
            d
        } else {
            None
        };
        let serving = Serving(tokio::spawn(serve(listener, md.clone())), dnat);
        Ok((md, serving))
    }

    /// The token of one container: HMAC-SHA256 of the task ARN and container name, in hex.
    fn token(&self, task_arn: &str, container: &str) -> String {
        token(&self.inner.key, task_arn, container)
    }

    /// Adds the metadata URIs (and, for a task with a role, the credentials URI) to a
    /// container's environment (after the definition's own variables, so they win, as the
    /// ECS agent's do).
    pub(crate) fn apply(&self, spec: &mut ContainerSpec, role: Option<&TaskCredentials>) {
        let token = self.token(&spec.task_arn, &spec.container_name);
        let base = &self.inner.base;
        spec.environment
            .push((URI_V4.into(), format!("{base}/v4/{token}")));
        spec.environment
            .push((URI_V3.into(), format!("{base}/v3/{token}")));
        if let Some(c) = role {
            let token = self.credentials_token(&c.credentials_id);
            spec.environment
                .extend(credentials::environment(base, &c.credentials_id, token));
        }
    }

    /// What a caller of a task's credentials must present: nothing for docker containers
    /// (ECS's relative URI carries no token), an HMAC of the id for processes.
    fn credentials_token(&self, credentials_id: &str) -> Option<String> {
        (self.inner.driver.name() != "docker")
            .then(|| token(&self.inner.key, "credentials", credentials_id))
    }

    /// A task's credentials, for the holder of its id (and token, where one is required).
    fn credentials(&self, path: &str, authorization: Option<&str>) -> Option<Value> {
        let id = path.strip_prefix(credentials::PATH_PREFIX)?;
        let known = self.inner.known.read().ok()?;
        let c = known.credentials.get(id)?;
        if let Some(want) = self.credentials_token(id) {
            if !credentials::authorized(authorization, &want) {
                return None;
            }
        }
        Some(credentials::body(c))
    }

    /// Learns the tasks assigned to this host (from each poll); forgets the others.
    pub(crate) fn update(&self, tasks: &[AgentTask]) {
        let mut known = Known::default();
        for t in tasks {
            for c in &t.containers {
                known.tokens.insert(
                    self.token(&t.task_arn, &c.name),
                    (t.task_id.clone(), c.name.clone()),
                );
            }
            if let Some(c) = &t.credentials {
                known
                    .credentials
                    .insert(c.credentials_id.clone(), c.clone());
            }
            known.tasks.insert(t.task_id.clone(), t.clone());
        }
        if let Ok(mut k) = self.inner.known.write() {
            *k = known;
        }
    }

    fn lookup(&self, token: &str) -> Option<(AgentTask, String)> {
        let known = self.inner.known.read().ok()?;
        let (task_id, name) = known.tokens.get(token)?;
        Some((known.tasks.get(task_id)?.clone(), name.clone()))
    }

    /// The zone reported for a task: the agent's attribute, else the task's region + `a`.
    fn zone(&self, task: &AgentTask) -> String {
        self.inner.zone.clone().unwrap_or_else(|| {
            let region = task.task_arn.split(':').nth(3).unwrap_or("us-east-1");
            format!("{region}a")
        })
    }

    /// What the driver (and the engine) say of the task's containers, by container name.
    async fn seen(&self, task: &AgentTask) -> BTreeMap<String, Seen> {
        let mut out = BTreeMap::new();
        let owned = self.inner.driver.list_owned().await.unwrap_or_default();
        for c in owned.into_iter().filter(|c| c.task_id == task.task_id) {
            let engine = match &self.inner.docker {
                Some(d) => engine::facts(d, &c.id.0).await,
                None => None,
            };
            out.insert(
                c.container_name.clone(),
                Seen {
                    id: c.id.0.clone(),
                    status: Some(c.status),
                    engine,
                },
            );
        }
        out
    }

    async fn stats_of(&self, id: &str, name: &str) -> Value {
        if let Some(d) = &self.inner.docker {
            if let Some(v) = engine::stats(d, id).await {
                return v;
            }
        }
        match self
            .inner
            .driver
            .stats(&crate::spec::ContainerId(id.to_owned()))
            .await
        {
            Ok(s) => shape::stats_from_sample(id, name, &s),
            Err(_) => Value::Null,
        }
    }

    /// Answers one request path.
    async fn answer(&self, path: &str) -> Option<Value> {
        let rest = path
            .strip_prefix("/v4/")
            .or_else(|| path.strip_prefix("/v3/"))?;
        let (token, what) = rest.split_once('/').unwrap_or((rest, ""));
        let (task, name) = self.lookup(token)?;
        let zone = self.zone(&task);
        let view = TaskView {
            task: &task,
            cluster: &self.inner.cluster,
            availability_zone: &zone,
            network_mode: network_mode(task.network_mode.as_deref()),
        };
        let seen = self.seen(&task).await;
        match what.trim_end_matches('/') {
            "" => {
                let def = task.containers.iter().find(|c| c.name == name)?;
                Some(shape::container(&view, def, seen.get(&name)))
            }
            "task" => Some(shape::task(&view, &seen)),
            "stats" => {
                let s = seen.get(&name)?;
                Some(self.stats_of(&s.id, &name).await)
            }
            "task/stats" => {
                let mut all = serde_json::Map::new();
                for (n, s) in &seen {
                    all.insert(s.id.clone(), self.stats_of(&s.id, n).await);
                }
                Some(Value::Object(all))
            }
            _ => None,
        }
    }
}

fn token(key: &[u8], task_arn: &str, container: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(task_arn.as_bytes());
    mac.update(b"\n");
    mac.update(container.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(md: Metadata, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, b"{}".to_vec());
    }
    let path = req.uri().path();
    let answer = if path.starts_with(credentials::PATH_PREFIX) {
        let auth = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        md.credentials(path, auth)
    } else {
        md.answer(path).await
    };
    match answer {
        Some(v) => reply(StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default()),
        None => reply(StatusCode::NOT_FOUND, br#"{"error":"not found"}"#.to_vec()),
    }
}

/// The accept loop: one permit per connection, each connection under a deadline.
async fn serve(listener: tokio::net::TcpListener, md: Metadata) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metadata endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let md = md.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let md = md.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(md, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, conn).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeDriver;
    use berth_model::{DesiredStatus, TaskStatus};
    use serde_json::json;

    fn task(id: &str) -> AgentTask {
        AgentTask {
            credentials: None,
            task_id: id.into(),
            task_arn: format!("arn:aws:ecs:eu-west-1:000000000000:task/c/{id}"),
            family: "f".into(),
            revision: 2,
            desired_status: DesiredStatus::Running,
            last_status: TaskStatus::Running,
            network_mode: None,
            containers: serde_json::from_value(json!([{"name": "app", "image": "i"}])).unwrap(),
            volumes: Vec::new(),
            pid_mode: None,
            ipc_mode: None,
            secrets: None,
            network: None,
        }
    }

    async fn endpoint(dir: &Path) -> (Metadata, Serving) {
        let setup = Setup {
            listen: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir,
            cluster: "c",
            zone: None,
        };
        Metadata::start(setup, Arc::new(FakeDriver::new()))
            .await
            .unwrap()
    }

    fn uri_of(md: &Metadata, t: &AgentTask) -> String {
        let mut spec = ContainerSpec::new(&t.task_id, "app", "i");
        spec.task_arn = t.task_arn.clone();
        md.apply(&mut spec, None);
        let (_, v) = spec.environment.iter().find(|(k, _)| k == URI_V4).unwrap();
        v.clone()
    }

    #[tokio::test]
    async fn answers_only_the_holder_of_a_container_token() {
        let dir = tempfile::tempdir().unwrap();
        let (md, _serving) = endpoint(dir.path()).await;
        let (a, b) = (task("a"), task("b"));
        md.update(&[a.clone(), b.clone()]);
        let uri = uri_of(&md, &a);
        let path = uri
            .split_once("/v4/")
            .map(|(_, p)| format!("/v4/{p}"))
            .unwrap();
        let v = md.answer(&format!("{path}/task")).await.unwrap();
        assert_eq!(v["TaskARN"], a.task_arn);
        assert_eq!(v["AvailabilityZone"], "eu-west-1a");
        assert_eq!(md.answer(&path).await.unwrap()["Name"], "app");
        assert!(md.answer("/v4/deadbeef/task").await.is_none());
        assert!(md.answer("/v4/").await.is_none());
        assert!(md.answer(&format!("{path}/other")).await.is_none());
        // A task the server no longer lists is forgotten.
        md.update(&[b]);
        assert!(md.answer(&path).await.is_none());
    }

    #[tokio::test]
    async fn tokens_survive_a_restart_and_differ_per_container() {
        let dir = tempfile::tempdir().unwrap();
        let t = task("a");
        let first = {
            let (md, _s) = endpoint(dir.path()).await;
            md.token(&t.task_arn, "app")
        };
        let (md, _s) = endpoint(dir.path()).await;
        assert_eq!(md.token(&t.task_arn, "app"), first);
        assert_ne!(md.token(&t.task_arn, "side"), first);
        assert_eq!(first.len(), 64);
    }

    #[tokio::test]
    async fn serves_a_task_its_role_credentials_only_with_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let (md, _serving) = endpoint(dir.path()).await;
        let mut a = task("a");
        a.credentials = Some(TaskCredentials {
            credentials_id: "0b7c-id".into(),
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "s".into(),
            token: "t".into(),
            expiration: "2030-01-01T00:00:00Z".into(),
            role_arn: "arn:aws:iam::000000000000:role/app".into(),
        });
        md.update(std::slice::from_ref(&a));
        let mut spec = ContainerSpec::new(&a.task_id, "app", "i");
        spec.task_arn = a.task_arn.clone();
        md.apply(&mut spec, a.credentials.as_ref());
        let env: HashMap<_, _> = spec.environment.iter().cloned().collect();
        let uri = &env[credentials::FULL_URI];
        assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
        let path = uri
            .split_once("/v2/")
            .map(|(_, p)| format!("/v2/{p}"))
            .unwrap();
        assert_eq!(path, "/v2/credentials/0b7c-id");
        let token = env[credentials::AUTHORIZATION_TOKEN].as_str();
        let v = md.credentials(&path, Some(token)).unwrap();
        assert_eq!(v["AccessKeyId"], "ASIAEXAMPLE");
        assert_eq!(v["RoleArn"], "arn:aws:iam::000000000000:role/app");
        assert!(md.credentials(&path, None).is_none());
        assert!(md.credentials(&path, Some("wrong")).is_none());
        assert!(md
            .credentials("/v2/credentials/other", Some(token))
            .is_none());
        // Gone with the task.
        md.update(&[]);
        assert!(md.credentials(&path, Some(token)).is_none());
    }
}
