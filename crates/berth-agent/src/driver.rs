//! The `Driver` seam between the agent loop and a container runtime.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::DriverError;
use crate::spec::{
    ContainerId, ContainerSpec, ContainerStatus, LogLine, OwnedContainer, Stats, VolumeSpec,
};

/// A boxed, sendable future (what the object-safe [`Driver`] methods return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed, sendable stream.
pub type BoxStream<'a, T> = Pin<Box<dyn futures::Stream<Item = T> + Send + 'a>>;

/// A container runtime as the agent sees it. Object-safe: the agent holds `Arc<dyn Driver>`.
///
/// Every container a driver starts is marked as berth's (task id, task ARN, cluster and
/// container name), so [`Driver::list_owned`] finds it again after an agent restart; the agent
/// adopts what it finds instead of starting duplicates.
pub trait Driver: Send + Sync + 'static {
    /// `"docker"`, `"process"` or `"fake"`.
    fn name(&self) -> &'static str;

    /// Creates and starts a container. Never pulls: a missing image is
    /// [`DriverError::ImageNotFound`] at once.
    fn start(&self, spec: &ContainerSpec) -> BoxFuture<'_, Result<ContainerId, DriverError>>;

    /// Current state, health, port bindings and times.
    fn inspect(&self, id: &ContainerId) -> BoxFuture<'_, Result<ContainerStatus, DriverError>>;

    /// SIGTERM, then SIGKILL once `timeout` has passed; returns when the container has exited.
    /// Stopping an exited container is a no-op; an unknown id is [`DriverError::NotFound`].
    fn stop(&self, id: &ContainerId, timeout: Duration) -> BoxFuture<'_, Result<(), DriverError>>;

    /// Removes the container (killing it if it still runs) and what the driver kept for it.
    /// Removing an unknown id succeeds.
    fn remove(&self, id: &ContainerId) -> BoxFuture<'_, Result<(), DriverError>>;

    /// Every container this driver (or an earlier instance on the same runtime or state
    /// directory) started and that has not been removed, running or exited.
    fn list_owned(&self) -> BoxFuture<'_, Result<Vec<OwnedContainer>, DriverError>>;

    /// One resource-usage sample (zeros for a container that is not running).
    fn stats(&self, id: &ContainerId) -> BoxFuture<'_, Result<Stats, DriverError>>;

    /// The container's output so far, then, with `follow`, new lines until it exits.
    /// The stream owns what it needs and may outlive the borrow of the driver.
    fn logs(
        &self,
        id: &ContainerId,
        follow: bool,
    ) -> BoxStream<'static, Result<LogLine, DriverError>>;

    /// Resolves with the exit code once the container has exited (at once if it already has).
    fn wait_exit(&self, id: &ContainerId) -> BoxFuture<'_, Result<i64, DriverError>>;

    /// The ECS capability attributes this driver adds to the host's registration (what it can
    /// honour beyond what every driver does); the scheduler matches task definitions'
    /// `requiresAttributes` against them.
    fn capabilities(&self) -> Vec<String> {
        Vec::new()
    }

    /// Creates the Docker volumes a task needs (idempotent: an existing volume is kept), or
    /// fails when a shared volume that must exist does not. Drivers without volumes refuse
    /// any.
    fn prepare_volumes<'a>(
        &'a self,
        task_id: &'a str,
        volumes: &'a [VolumeSpec],
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        let _ = task_id;
        Box::pin(async move {
            match volumes.first() {
                None => Ok(()),
                Some(v) => Err(DriverError::InvalidSpec(format!(
                    "the {} driver cannot create volume {}",
                    self.name(),
                    v.name
                ))),
            }
        })
    }

    /// Removes the task-scoped volumes of a task whose containers were removed.
    fn remove_task_volumes<'a>(
        &'a self,
        task_id: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        let _ = task_id;
        Box::pin(async { Ok(()) })
    }

    /// Gives an awsvpc task its network namespace with its own address (the docker driver's
    /// pause container on the subnet's bridge) and returns what its containers join
    /// (`container:NAME`'s NAME). Drivers without per-task interfaces refuse.
    fn prepare_network<'a>(
        &'a self,
        task_id: &'a str,
        network: &'a berth_model::vpc::AgentNetwork,
    ) -> BoxFuture<'a, Result<String, DriverError>> {
        let _ = (task_id, network);
        Box::pin(async move {
            Err(DriverError::InvalidSpec(format!(
                "the {} driver cannot give a task its own network interface (awsvpc)",
                self.name()
            )))
        })
    }

    /// Enforces an awsvpc task's security groups (its ingress allowances), replacing what
    /// was enforced for it before.
    fn apply_ingress<'a>(
        &'a self,
        task_id: &'a str,
        network: &'a berth_model::vpc::AgentNetwork,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        let _ = (task_id, network);
        Box::pin(async move {
            Err(DriverError::InvalidSpec(format!(
                "the {} driver cannot enforce security groups",
                self.name()
            )))
        })
    }

    /// Removes what `prepare_network` and `apply_ingress` made for a task (idempotent).
    fn remove_task_network<'a>(
        &'a self,
        task_id: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        let _ = task_id;
        Box::pin(async { Ok(()) })
    }

    /// Starts an exited container again, in place (same id, mounts and logs): a restart
    /// policy's restart. Drivers that cannot refuse.
    fn restart(&self, id: &ContainerId) -> BoxFuture<'_, Result<(), DriverError>> {
        let id = id.clone();
        Box::pin(async move {
            Err(DriverError::InvalidSpec(format!(
                "the {} driver cannot restart container {id} in place",
                self.name()
            )))
        })
    }
}
