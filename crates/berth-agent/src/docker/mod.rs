//! The docker driver: the Docker Engine API over the local unix socket, through `bollard`.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use berth_model::TransportProtocol;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerStatsResponse, HealthStatusEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StatsOptions, StopContainerOptions, WaitContainerOptions,
};
use bollard::{ClientVersion, Docker};
use futures::{Stream, StreamExt};

mod create;
pub mod firewall;
mod network;
mod pause;
mod volumes;

use create::{container_name, create_body};

use crate::driver::{BoxFuture, BoxStream, Driver};
use crate::error::DriverError;
use crate::spec::{
    labels, now_epoch, parse_rfc3339, ContainerId, ContainerSpec, ContainerStatus, Health,
    LineSplitter, LogLine, NetworkBinding, OwnedContainer, RunState, Stats, Stream as LogStream,
    VolumeSpec,
};

/// Label holding the optional scope of a [`DockerDriver`] (see [`DockerDriver::with_scope`]).
pub const SCOPE_LABEL: &str = "berth.scope";

/// Reason reported for a container the kernel's OOM killer ended (ECS's wording).
pub(crate) const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// Time allowed for ordinary API calls (stop and wait get their own).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Drives containers through the local Docker daemon.
///
/// [`DockerDriver::connect`] negotiates the API version with the daemon: bollard starts
/// from its own newest version and lowers it to the daemon's (`/version`'s `ApiVersion`, e.g.
/// 1.41 for Docker 20.10), so no request uses a newer API than the daemon speaks.
///
/// Images are never pulled: a missing image fails [`Driver::start`] at once with
/// [`DriverError::ImageNotFound`]. Containers carry the `berth.*` labels (plus the spec's
/// `dockerLabels`) and no restart policy; the agent decides what to restart.
#[derive(Debug, Clone)]
pub struct DockerDriver {
    docker: Docker,
    scope: Option<String>,
}

impl DockerDriver {
    /// Connects to the local daemon (`DOCKER_HOST` when it is a `unix://` address, else
    /// `/var/run/docker.sock`) and negotiates the API version.
    pub async fn connect() -> Result<Self, DriverError> {
        let docker = Docker::connect_with_unix_defaults().map_err(unavailable)?;
        Self::negotiate(docker).await
    }

    /// Connects to the daemon listening on the unix socket at `path`.
    pub async fn connect_with_socket(path: &str) -> Result<Self, DriverError> {
        let docker = Docker::connect_with_unix(
            path,
            REQUEST_TIMEOUT.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(unavailable)?;
        Self::negotiate(docker).await
    }

    async fn negotiate(docker: Docker) -> Result<Self, DriverError> {
        let docker = docker
            .with_timeout(REQUEST_TIMEOUT)
            .negotiate_version()
            .await
            .map_err(unavailable)?;
        tracing::debug!(api_version = %docker.client_version(), "connected to docker");
        Ok(DockerDriver {
            docker,
            scope: None,
        })
    }

    /// Restricts this driver to containers labelled `berth.scope=SCOPE`: it puts that label on
    /// what it starts and [`Driver::list_owned`] reports only containers carrying it. Lets
    /// several agents (or test runs) share one daemon without adopting each other's
    /// containers. Without a scope, every container labelled `berth.managed=true` is owned.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The daemon's version as it reports it (`docker version`'s Server Version, e.g.
    /// `20.10.24+dfsg1`).
    pub async fn server_version(&self) -> Result<String, DriverError> {
        let v = self
            .docker
            .version()
            .await
            .map_err(|e| map_err(e, "docker version"))?;
        v.version
            .ok_or_else(|| DriverError::Runtime("docker version: no version in the answer".into()))
    }

    /// The negotiated API version as (major, minor), e.g. (1, 41).
    pub fn api_version(&self) -> (usize, usize) {
        let v = self.docker.client_version();
        (v.major_version, v.minor_version)
    }

    fn supports(&self, major: usize, minor: usize) -> bool {
        self.docker.client_version()
            >= ClientVersion {
                major_version: major,
                minor_version: minor,
            }
    }

    async fn do_start(&self, spec: &ContainerSpec) -> Result<ContainerId, DriverError> {
        let body = create_body(spec, self.scope.as_deref());
        let options = CreateContainerOptions {
            name: Some(container_name(spec)),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| match e {
                BollardError::DockerResponseServerError {
                    status_code: 404,
                    message,
                } if message.to_ascii_lowercase().contains("image") => {
                    DriverError::ImageNotFound(format!("{}: {message}", spec.image))
                }
                // A malformed reference can never be found either (ECS reports both as
                // CannotPullContainerError).
                BollardError::DockerResponseServerError {
                    status_code: 400,
                    message,
                } if message.contains("invalid reference format") => {
                    DriverError::ImageNotFound(format!("{}: {message}", spec.image))
                }
                e => map_err(e, "create container"),
            })?;
        for warning in &created.warnings {
            tracing::warn!(container = %created.id, "docker: {warning}");
        }
        let id = ContainerId(created.id);
        if let Err(e) = self.docker.start_container(&id.0, None).await {
            let err = map_err(e, "start container");
            // Do not leave a created-but-never-started container behind.
            let _ = self.do_remove(&id).await;
            return Err(err);
        }
        Ok(id)
    }

    async fn do_inspect(&self, id: &ContainerId) -> Result<ContainerInspectResponse, DriverError> {
        self.docker
            .inspect_container(&id.0, None::<InspectContainerOptions>)
            .await
            .map_err(|e| map_err(e, "inspect container"))
    }

    async fn do_stop(&self, id: &ContainerId, timeout: Duration) -> Result<(), DriverError> {
        let secs = timeout_secs(timeout);
        let options = StopContainerOptions {
            t: Some(secs),
            signal: None,
        };
        // The daemon answers once the container is gone, which may take the whole timeout.
        let docker = self.docker.clone().with_timeout(timeout + REQUEST_TIMEOUT);
        match docker.stop_container(&id.0, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(map_err(e, "stop container")),
        }
    }

    async fn do_remove(&self, id: &ContainerId) -> Result<(), DriverError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self.docker.remove_container(&id.0, Some(options)).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            // 409 "removal already in progress".
            Err(BollardError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(e) => Err(map_err(e, "remove container")),
        }
    }

    async fn do_list(&self) -> Result<Vec<OwnedContainer>, DriverError> {
        let mut label_filters = vec![format!("{}=true", labels::MANAGED)];
        if let Some(scope) = &self.scope {
            label_filters.push(format!("{SCOPE_LABEL}={scope}"));
        }
        let filters = HashMap::from([("label".to_string(), label_filters)]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| map_err(e, "list containers"))?;
        let mut owned = Vec::with_capacity(summaries.len());
        for summary in summaries {
            let Some(id) = summary.id else { continue };
            let id = ContainerId(id);
            let resp = match self.do_inspect(&id).await {
                Ok(resp) => resp,
                // Removed between the list and the inspect.
                Err(DriverError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let container_labels = resp
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            let label = |k: &str| container_labels.get(k).cloned().unwrap_or_default();
            owned.push(OwnedContainer {
                task_id: label(labels::TASK_ID),
                container_name: label(labels::CONTAINER_NAME),
                status: status_from_inspect(&resp),
                id,
            });
        }
        Ok(owned)
    }

    async fn do_stats(&self, id: &ContainerId) -> Result<Stats, DriverError> {
        let options = StatsOptions {
            stream: false,
            // `one-shot` (skip the second sample for precpu) exists from API 1.41 on.
            one_shot: self.supports(1, 41),
        };
        let mut stream = self.docker.stats(&id.0, Some(options));
        match stream.next().await {
            Some(Ok(s)) => Ok(stats_from_response(&s)),
            Some(Err(e)) => Err(map_err(e, "container stats")),
            None => Err(DriverError::Runtime(format!(
                "container stats: empty answer for {id}"
            ))),
        }
    }

    async fn do_wait(&self, id: &ContainerId) -> Result<i64, DriverError> {
        let options = WaitContainerOptions {
            condition: "not-running".into(),
        };
        // The daemon answers only when the container exits: no client timeout.
        let docker = self
            .docker
            .clone()
            .with_timeout(Duration::from_secs(u64::from(u32::MAX)));
        let mut stream = docker.wait_container(&id.0, Some(options));
        match stream.next().await {
            Some(Ok(resp)) => Ok(resp.status_code),
            // bollard turns a non-zero exit into this error; it is the exit code.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(map_err(e, "wait for container")),
            None => Err(DriverError::Runtime(format!(
                "wait for container: no answer for {id}"
            ))),
        }
    }
}

impl Driver for DockerDriver {
    fn name(&self) -> &'static str {
        "docker"
    }

    /// Every Docker remote API version up to the negotiated one (as ECS's agent registers
    /// them), privileged containers, the `local` volume driver, task pid/ipc namespaces and
    /// in-place restarts.
    fn capabilities(&self) -> Vec<String> {
        let (major, minor) = self.api_version();
        let minor = if major > 1 { 99 } else { minor };
        let mut caps: Vec<String> = (17..=minor)
            .map(|m| berth_model::docker_api(m as u32))
            .collect();
        caps.extend([
            berth_model::CAP_PRIVILEGED.to_owned(),
            format!("{}local", berth_model::CAP_DOCKER_PLUGIN_PREFIX),
            berth_model::CAP_PID_IPC.to_owned(),
            berth_model::CAP_RESTART_POLICY.to_owned(),
            berth_model::CAP_TASK_ENI.to_owned(),
        ]);
        caps
    }

    fn prepare_network<'a>(
        &'a self,
        task_id: &'a str,
        network: &'a berth_model::vpc::AgentNetwork,
    ) -> BoxFuture<'a, Result<String, DriverError>> {
        Box::pin(self.do_prepare_network(task_id, network))
    }

    fn apply_ingress<'a>(
        &'a self,
        task_id: &'a str,
        network: &'a berth_model::vpc::AgentNetwork,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(firewall::apply(task_id, network))
    }

    fn remove_task_network<'a>(
        &'a self,
        task_id: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            firewall::remove(task_id).await?;
            self.remove_pause(task_id).await
        })
    }

    fn start(&self, spec: &ContainerSpec) -> BoxFuture<'_, Result<ContainerId, DriverError>> {
        let spec = spec.clone();
        Box::pin(async move { self.do_start(&spec).await })
    }

    fn inspect(&self, id: &ContainerId) -> BoxFuture<'_, Result<ContainerStatus, DriverError>> {
        let id = id.clone();
        Box::pin(async move { Ok(status_from_inspect(&self.do_inspect(&id).await?)) })
    }

    fn stop(&self, id: &ContainerId, timeout: Duration) -> BoxFuture<'_, Result<(), DriverError>> {
        let id = id.clone();
        Box::pin(async move { self.do_stop(&id, timeout).await })
    }

    fn remove(&self, id: &ContainerId) -> BoxFuture<'_, Result<(), DriverError>> {
        let id = id.clone();
        Box::pin(async move { self.do_remove(&id).await })
    }

    fn list_owned(&self) -> BoxFuture<'_, Result<Vec<OwnedContainer>, DriverError>> {
        Box::pin(self.do_list())
    }

    fn stats(&self, id: &ContainerId) -> BoxFuture<'_, Result<Stats, DriverError>> {
        let id = id.clone();
        Box::pin(async move { self.do_stats(&id).await })
    }

    fn logs(
        &self,
        id: &ContainerId,
        follow: bool,
    ) -> BoxStream<'static, Result<LogLine, DriverError>> {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            timestamps: true,
            ..Default::default()
        };
        let frames = self.docker.logs(&id.0, Some(options));
        log_lines(frames).boxed()
    }

    fn wait_exit(&self, id: &ContainerId) -> BoxFuture<'_, Result<i64, DriverError>> {
        let id = id.clone();
        Box::pin(async move { self.do_wait(&id).await })
    }

    fn prepare_volumes<'a>(
        &'a self,
        task_id: &'a str,
        volumes: &'a [VolumeSpec],
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(self.do_prepare_volumes(task_id, volumes))
    }

    fn remove_task_volumes<'a>(
        &'a self,
        task_id: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(self.do_remove_task_volumes(task_id))
    }

    fn restart(&self, id: &ContainerId) -> BoxFuture<'_, Result<(), DriverError>> {
        let id = id.clone();
        Box::pin(async move {
            self.docker
                .start_container(&id.0, None)
                .await
                .map_err(|e| map_err(e, "restart container"))
        })
    }
}

/// Seconds for Docker's `t` parameter: rounded up, at least 0.
fn timeout_secs(timeout: Duration) -> i32 {
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// Maps Docker's inspect answer to the driver's status.
fn status_from_inspect(resp: &ContainerInspectResponse) -> ContainerStatus {
    let st = resp.state.clone().unwrap_or_default();
    let exit_code = st.exit_code.unwrap_or(0);
    let state = match st.status {
        Some(ContainerStateStatusEnum::CREATED) => RunState::Created,
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::RESTARTING,
        ) => RunState::Running,
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD)
        | Some(ContainerStateStatusEnum::REMOVING) => RunState::Exited { code: exit_code },
        _ if st.running == Some(true) => RunState::Running,
        _ => RunState::Exited { code: exit_code },
    };
    let health = match st.health.as_ref().and_then(|h| h.status) {
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        _ => Health::Unknown,
    };
    let reason = if st.oom_killed == Some(true) {
        Some(OOM_REASON.to_string())
    } else {
        st.error.clone().filter(|e| !e.is_empty())
    };
    ContainerStatus {
        state,
        health,
        bindings: bindings_from_inspect(resp),
        started_at: st.started_at.as_deref().and_then(parse_rfc3339),
        finished_at: match state {
            RunState::Exited { .. } => st.finished_at.as_deref().and_then(parse_rfc3339),
            _ => None,
        },
        reason,
    }
}

fn parse_port_key(key: &str) -> Option<(u16, TransportProtocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    // Docker spells protocols as ECS does; it also knows sctp, which ECS does not.
    Some((port.parse().ok()?, proto.parse().ok()?))
}

/// Published ports from inspect: one binding per (container port, protocol, host port), the
/// IPv4 entry preferred when Docker lists IPv4 and IPv6 separately. In host mode the exposed
/// ports are bound directly on the host.
fn bindings_from_inspect(resp: &ContainerInspectResponse) -> Vec<NetworkBinding> {
    let host_mode = resp
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.as_deref())
        == Some("host");
    let mut out: Vec<NetworkBinding> = Vec::new();
    if host_mode {
        for key in resp
            .config
            .as_ref()
            .and_then(|c| c.exposed_ports.clone())
            .unwrap_or_default()
        {
            if let Some((port, protocol)) = parse_port_key(&key) {
                out.push(NetworkBinding {
                    container_port: port,
                    host_port: port,
                    protocol,
                    bind_ip: "0.0.0.0".into(),
                });
            }
        }
    } else if let Some(ports) = resp
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref())
    {
        for (key, bindings) in ports {
            let Some((container_port, protocol)) = parse_port_key(key) else {
                continue;
            };
            for b in bindings.iter().flatten() {
                let Some(host_port) = b.host_port.as_deref().and_then(|p| p.parse().ok()) else {
                    continue;
                };
                let ip = b.host_ip.clone().unwrap_or_default();
                let ip = if ip.is_empty() {
                    "0.0.0.0".to_string()
                } else {
                    ip
                };
                let same = out.iter_mut().find(|o| {
                    o.container_port == container_port
                        && o.protocol == protocol
                        && o.host_port == host_port
                });
                match same {
                    Some(existing) => {
                        if existing.bind_ip.contains(':') && !ip.contains(':') {
                            existing.bind_ip = ip;
                        }
                    }
                    None => out.push(NetworkBinding {
                        container_port,
                        host_port,
                        protocol,
                        bind_ip: ip,
                    }),
                }
            }
        }
    }
    // Docker publishes a dynamic port twice, on IPv4 and IPv6, sometimes with different host
    // ports (seen with Docker 20.10). The IPv4 one is the binding ECS reports.
    let v4: Vec<(u16, TransportProtocol)> = out
        .iter()
        .filter(|b| !b.bind_ip.contains(':'))
        .map(|b| (b.container_port, b.protocol))
        .collect();
    out.retain(|b| !b.bind_ip.contains(':') || !v4.contains(&(b.container_port, b.protocol)));
    out.sort_by_key(|b| (b.container_port, b.protocol.as_str(), b.host_port));
    out
}

/// CPU and memory as the docker CLI computes them: memory is usage less the inactive page
/// cache (`inactive_file` on cgroup v2, `total_inactive_file` on v1).
fn stats_from_response(s: &ContainerStatsResponse) -> Stats {
    let cpu_total_ns = s
        .cpu_stats
        .as_ref()
        .and_then(|c| c.cpu_usage.as_ref())
        .and_then(|u| u.total_usage)
        .unwrap_or(0);
    let memory_bytes = s
        .memory_stats
        .as_ref()
        .map(|m| {
            let usage = m.usage.unwrap_or(0);
            let inactive = m
                .stats
                .as_ref()
                .and_then(|st| {
                    st.get("inactive_file")
                        .or_else(|| st.get("total_inactive_file"))
                })
                .copied()
                .unwrap_or(0);
            if inactive < usage {
                usage - inactive
            } else {
                usage
            }
        })
        .unwrap_or(0);
    let at = s
        .read
        .as_deref()
        .and_then(parse_rfc3339)
        .unwrap_or_else(now_epoch);
    Stats {
        cpu_total_ns,
        memory_bytes,
        at,
    }
}

/// Turns Docker's log frames (each prefixed with an RFC 3339 timestamp) into lines, one
/// splitter per stream so a line Docker split into partial frames is joined again.
fn log_lines(
    frames: impl Stream<Item = Result<LogOutput, BollardError>> + Send + Unpin + 'static,
) -> impl Stream<Item = Result<LogLine, DriverError>> + Send + 'static {
    struct State<S> {
        frames: S,
        out: LineSplitter,
        err: LineSplitter,
        last_at: f64,
        ready: VecDeque<Result<LogLine, DriverError>>,
        done: bool,
    }
    let state = State {
        frames,
        out: LineSplitter::default(),
        err: LineSplitter::default(),
        last_at: 0.0,
        ready: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.ready.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            match st.frames.next().await {
                Some(Ok(frame)) => {
                    let (stream, bytes) = match frame {
                        LogOutput::StdOut { message } | LogOutput::Console { message } => {
                            (LogStream::Stdout, message)
                        }
                        LogOutput::StdErr { message } => (LogStream::Stderr, message),
                        LogOutput::StdIn { .. } => continue,
                    };
                    let (at, text) = split_timestamp(&bytes);
                    st.last_at = at.unwrap_or_else(now_epoch);
                    let splitter = match stream {
                        LogStream::Stdout => &mut st.out,
                        LogStream::Stderr => &mut st.err,
                    };
                    for line in splitter.push(text) {
                        st.ready.push_back(Ok(LogLine {
                            stream,
                            line,
                            at: st.last_at,
                        }));
                    }
                }
                Some(Err(e)) => {
                    st.ready.push_back(Err(map_err(e, "container logs")));
                    st.done = true;
                }
                None => {
                    st.done = true;
                    for (stream, splitter) in [
                        (LogStream::Stdout, &mut st.out),
                        (LogStream::Stderr, &mut st.err),
                    ] {
                        if let Some(line) = splitter.finish() {
                            st.ready.push_back(Ok(LogLine {
                                stream,
                                line,
                                at: st.last_at,
                            }));
                        }
                    }
                }
            }
        }
    })
}

/// Splits `2024-05-01T12:34:56.123456789Z text` into the time and the text.
fn split_timestamp(frame: &[u8]) -> (Option<f64>, &[u8]) {
    if let Some(pos) = frame.iter().position(|&b| b == b' ') {
        if let Some(at) = std::str::from_utf8(&frame[..pos])
            .ok()
            .and_then(parse_rfc3339)
        {
            return (Some(at), &frame[pos + 1..]);
        }
    }
    (None, frame)
}

fn unavailable(e: BollardError) -> DriverError {
    DriverError::Unavailable(e.to_string())
}

/// Classifies a bollard error: transport failures mean the daemon is unavailable, 404 means
/// no such container, anything else is a runtime error.
fn map_err(e: BollardError, what: &str) -> DriverError {
    match e {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => DriverError::NotFound(message),
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => DriverError::Runtime(format!("{what}: docker answered {status_code}: {message}")),
        e @ (BollardError::IOError { .. }
        | BollardError::HyperLegacyError { .. }
        | BollardError::HyperResponseError { .. }
        | BollardError::SocketNotFoundError(_)
        | BollardError::RequestTimeoutError) => DriverError::Unavailable(format!("{what}: {e}")),
        e => DriverError::Runtime(format!("{what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_split_from_frames() {
        let (at, text) = split_timestamp(b"2024-05-01T12:34:56.5Z hello world\n");
        assert_eq!(text, b"hello world\n");
        assert!((at.unwrap_or_default() - 1_714_566_896.5).abs() < 1e-6);
        let (at, text) = split_timestamp(b"no timestamp here");
        assert_eq!(at, None);
        assert_eq!(text, b"no timestamp here");
    }

    #[test]
    fn stop_timeout_rounds_up() {
        assert_eq!(timeout_secs(Duration::from_millis(1500)), 2);
        assert_eq!(timeout_secs(Duration::from_secs(30)), 30);
        assert_eq!(timeout_secs(Duration::ZERO), 0);
    }
}
