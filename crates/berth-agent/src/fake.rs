//! An in-memory driver for tests: instant, deterministic and scriptable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use crate::driver::{BoxFuture, BoxStream, Driver};
use crate::error::DriverError;
use crate::spec::{
    now_epoch, ContainerId, ContainerSpec, ContainerStatus, Health, LogLine, NetworkBinding,
    NetworkMode, OwnedContainer, RunState, Stats, Stream,
};

/// Exit code a fake container reports when [`Driver::stop`] ends it (death by SIGTERM).
pub const FAKE_STOP_EXIT_CODE: i64 = 143;

/// First host port handed out for dynamic port mappings.
const FIRST_DYNAMIC_PORT: u16 = 32768;

/// An in-memory [`Driver`]: containers "run" the moment they start and change only when the
/// test says so ([`FakeDriver::exit`], [`FakeDriver::set_health`], ...) or when they are
/// stopped (exit code [`FAKE_STOP_EXIT_CODE`]).
///
/// Clones share the same containers, so a test keeps one handle while the agent under test
/// holds another as `Arc<dyn Driver>`; handing a clone to a new agent simulates an agent
/// restart on the same host. Separate `FakeDriver::new()` instances are separate hosts.
#[derive(Debug, Clone, Default)]
pub struct FakeDriver {
    inner: Arc<Mutex<FakeState>>,
}

#[derive(Debug, Default)]
struct FakeState {
    next_id: u64,
    next_port: u16,
    containers: BTreeMap<String, FakeContainer>,
    failing_images: BTreeSet<String>,
    unavailable: bool,
    start_health: Health,
    starts: u64,
}

#[derive(Debug)]
struct FakeContainer {
    spec: ContainerSpec,
    status: ContainerStatus,
    stats: Stats,
    logs: Vec<LogLine>,
    /// Bumped whenever the status or the logs change; log and exit waiters watch it.
    changed: watch::Sender<u64>,
}

impl FakeContainer {
    fn touch(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn exited_code(&self) -> Option<i64> {
        match self.status.state {
            RunState::Exited { code } => Some(code),
            _ => None,
        }
    }
}

impl FakeDriver {
    /// An empty fake host.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panic while holding the lock can only come from a test assertion; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_container<T>(
        &self,
        id: &ContainerId,
        f: impl FnOnce(&mut FakeContainer) -> T,
    ) -> Result<T, DriverError> {
        let mut state = self.lock();
        let c = state
            .containers
            .get_mut(&id.0)
            .ok_or_else(|| DriverError::NotFound(id.0.clone()))?;
        let out = f(c);
        c.touch();
        Ok(out)
    }

    /// Makes later starts of `image` fail with [`DriverError::ImageNotFound`].
    pub fn fail_image(&self, image: &str) {
        self.lock().failing_images.insert(image.to_string());
    }

    /// Simulates the runtime going away (`true`): every call fails with
    /// [`DriverError::Unavailable`] until it is set back to `false`.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.lock().unavailable = unavailable;
    }

    /// Health that containers with a health check get when they start (default `Unknown`).
    pub fn set_start_health(&self, health: Health) {
        self.lock().start_health = health;
    }

    /// Ends a running container with `code`.
    pub fn exit(&self, id: &ContainerId, code: i64) -> Result<(), DriverError> {
        self.with_container(id, |c| finish(c, code, None))
    }

    /// Ends a running container as the kernel's OOM killer would (code 137 and ECS's reason).
    pub fn oom_kill(&self, id: &ContainerId) -> Result<(), DriverError> {
        self.with_container(id, |c| {
            finish(
                c,
                137,
                Some("OutOfMemoryError: Container killed due to memory usage".into()),
            )
        })
    }

    /// Sets the health-check verdict.
    pub fn set_health(&self, id: &ContainerId, health: Health) -> Result<(), DriverError> {
        self.with_container(id, |c| c.status.health = health)
    }

    /// Sets what [`Driver::stats`] returns (cumulative CPU ns and memory bytes).
    pub fn set_stats(
        &self,
        id: &ContainerId,
        cpu_total_ns: u64,
        memory_bytes: u64,
    ) -> Result<(), DriverError> {
        self.with_container(id, |c| {
            c.stats.cpu_total_ns = cpu_total_ns;
            c.stats.memory_bytes = memory_bytes;
        })
    }

    /// Appends a line of output.
    pub fn push_log(
        &self,
        id: &ContainerId,
        stream: Stream,
        line: &str,
    ) -> Result<(), DriverError> {
        self.with_container(id, |c| {
            c.logs.push(LogLine {
                stream,
                line: line.to_string(),
                at: now_epoch(),
            })
        })
    }

    /// The spec a container was started with.
    pub fn spec(&self, id: &ContainerId) -> Option<ContainerSpec> {
        self.lock().containers.get(&id.0).map(|c| c.spec.clone())
    }

    /// Ids of the containers currently running.
    pub fn running(&self) -> Vec<ContainerId> {
        self.lock()
            .containers
            .iter()
            .filter(|(_, c)| c.status.state == RunState::Running)
            .map(|(id, _)| ContainerId(id.clone()))
            .collect()
    }

    /// How many starts succeeded since this fake host was made.
    pub fn start_count(&self) -> u64 {
        self.lock().starts
    }

    fn check_available(&self) -> Result<(), DriverError> {
        if self.lock().unavailable {
            Err(DriverError::Unavailable(
                "fake runtime set unavailable".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn do_start(&self, spec: &ContainerSpec) -> Result<ContainerId, DriverError> {
        let mut state = self.lock();
        if state.unavailable {
            return Err(DriverError::Unavailable(
                "fake runtime set unavailable".into(),
            ));
        }
        if state.failing_images.contains(&spec.image) {
            return Err(DriverError::ImageNotFound(spec.image.clone()));
        }
        state.next_id += 1;
        let id = format!("fake-{:06}", state.next_id);
        let mut bindings = Vec::new();
        if spec.network_mode != NetworkMode::None {
            for p in &spec.port_mappings {
                let host_port = if spec.network_mode == NetworkMode::Host {
                    p.container_port
                } else if p.host_port != 0 {
                    p.host_port
                } else {
                    if state.next_port < FIRST_DYNAMIC_PORT {
                        state.next_port = FIRST_DYNAMIC_PORT;
                    }
                    let port = state.next_port;
                    state.next_port = state.next_port.checked_add(1).unwrap_or(FIRST_DYNAMIC_PORT);
                    port
                };
                bindings.push(NetworkBinding {
                    container_port: p.container_port,
                    host_port,
                    protocol: p.protocol,
                    bind_ip: "0.0.0.0".into(),
                });
            }
        }
        let health = if spec.health_check.is_some() {
            state.start_health
        } else {
            Health::Unknown
        };
        let now = now_epoch();
        let (changed, _) = watch::channel(0);
        state.containers.insert(
            id.clone(),
            FakeContainer {
                spec: spec.clone(),
                status: ContainerStatus {
                    state: RunState::Running,
                    health,
                    bindings,
                    started_at: Some(now),
                    finished_at: None,
                    reason: None,
                },
                stats: Stats {
                    cpu_total_ns: 0,
                    memory_bytes: 0,
                    at: now,
                },
                logs: Vec::new(),
                changed,
            },
        );
        state.starts += 1;
        Ok(ContainerId(id))
    }
}

fn finish(c: &mut FakeContainer, code: i64, reason: Option<String>) {
    if c.exited_code().is_some() {
        return;
    }
    c.status.state = RunState::Exited { code };
    c.status.finished_at = Some(now_epoch());
    c.status.reason = reason;
}

impl Driver for FakeDriver {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn start(&self, spec: &ContainerSpec) -> BoxFuture<'_, Result<ContainerId, DriverError>> {
        let result = self.do_start(spec);
        Box::pin(async move { result })
    }

    fn inspect(&self, id: &ContainerId) -> BoxFuture<'_, Result<ContainerStatus, DriverError>> {
        let result = self.check_available().and_then(|()| {
            self.lock()
                .containers
                .get(&id.0)
                .map(|c| c.status.clone())
                .ok_or_else(|| DriverError::NotFound(id.0.clone()))
        });
        Box::pin(async move { result })
    }

    fn stop(&self, id: &ContainerId, _timeout: Duration) -> BoxFuture<'_, Result<(), DriverError>> {
        let result = self
            .check_available()
            .and_then(|()| self.with_container(id, |c| finish(c, FAKE_STOP_EXIT_CODE, None)));
        Box::pin(async move { result })
    }

    fn remove(&self, id: &ContainerId) -> BoxFuture<'_, Result<(), DriverError>> {
        let result = self.check_available().map(|()| {
            if let Some(c) = self.lock().containers.remove(&id.0) {
                // Wake log followers and exit waiters: the container is gone.
                c.touch();
            }
        });
        Box::pin(async move { result })
    }

    fn list_owned(&self) -> BoxFuture<'_, Result<Vec<OwnedContainer>, DriverError>> {
        let result = self.check_available().map(|()| {
            self.lock()
                .containers
                .iter()
                .map(|(id, c)| OwnedContainer {
                    id: ContainerId(id.clone()),
                    task_id: c.spec.task_id.clone(),
                    container_name: c.spec.container_name.clone(),
                    status: c.status.clone(),
                })
                .collect()
        });
        Box::pin(async move { result })
    }

    fn stats(&self, id: &ContainerId) -> BoxFuture<'_, Result<Stats, DriverError>> {
        let result = self.check_available().and_then(|()| {
            self.lock()
                .containers
                .get(&id.0)
                .map(|c| Stats {
                    at: now_epoch(),
                    ..c.stats
                })
                .ok_or_else(|| DriverError::NotFound(id.0.clone()))
        });
        Box::pin(async move { result })
    }

    fn logs(
        &self,
        id: &ContainerId,
        follow: bool,
    ) -> BoxStream<'static, Result<LogLine, DriverError>> {
        let rx = match self.lock().containers.get(&id.0) {
            Some(c) => c.changed.subscribe(),
            None => {
                let err = DriverError::NotFound(id.0.clone());
                return futures::stream::once(async move { Err(err) }).boxed();
            }
        };
        let driver = self.clone();
        let id = id.0.clone();
        // State: (driver, id, index of the next line, change receiver, done).
        futures::stream::unfold(
            (driver, id, 0usize, rx, false),
            move |(driver, id, next, mut rx, done)| async move {
                if done {
                    return None;
                }
                loop {
                    let (line, exited) = {
                        let state = driver.lock();
                        match state.containers.get(&id) {
                            None => (None, true),
                            Some(c) => (c.logs.get(next).cloned(), c.exited_code().is_some()),
                        }
                    };
                    if let Some(line) = line {
                        return Some((Ok(line), (driver, id, next + 1, rx, false)));
                    }
                    if !follow || exited || rx.changed().await.is_err() {
                        return None;
                    }
                }
            },
        )
        .boxed()
    }

    fn wait_exit(&self, id: &ContainerId) -> BoxFuture<'_, Result<i64, DriverError>> {
        let id = id.0.clone();
        Box::pin(async move {
            let mut rx = match self.lock().containers.get(&id) {
                Some(c) => c.changed.subscribe(),
                None => return Err(DriverError::NotFound(id)),
            };
            loop {
                match self.lock().containers.get(&id) {
                    None => return Err(DriverError::NotFound(id)),
                    Some(c) => {
                        if let Some(code) = c.exited_code() {
                            return Ok(code);
                        }
                    }
                }
                if rx.changed().await.is_err() {
                    return Err(DriverError::NotFound(id));
                }
            }
        })
    }
}
