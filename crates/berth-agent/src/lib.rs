//! The container runtime layer of the berth node agent.
//!
//! The agent loop (elsewhere) decides what should run on its host; this crate runs it. It
//! offers one seam, the object-safe [`Driver`] trait (the agent holds `Arc<dyn Driver>`), and
//! three implementations:
//!
//! - [`DockerDriver`]: the local Docker daemon through `bollard`, over the unix socket, with
//!   the API version negotiated at connect time (works with Docker 20.10's API 1.41). Maps the
//!   ECS container definition to Docker: command and entry point, environment, working
//!   directory, user, port mappings (dynamic host ports read back after the start), cpu
//!   shares, memory limit and reservation, health check, network mode, and the members of
//!   issue 12 (volumes and mounts through Docker's volume API, volumesFrom, links, ulimits,
//!   linuxParameters, privileges, DNS, sysctls, tty, pid/ipc namespaces). Never pulls images.
//! - [`ProcessDriver`]: for hosts without Docker. Each container is a process group under a
//!   tiny `sh` supervisor that records the exit code in a state directory; the driver runs
//!   health checks and reads stats from `/proc`. See its documentation for the exact rules.
//! - [`FakeDriver`]: in memory, instant and scriptable, so a test can simulate many hosts in
//!   one process.
//!
//! # Adoption guarantee
//! Every container a driver starts is marked as berth's (labels `berth.managed`,
//! `berth.task-id`, `berth.task-arn`, `berth.cluster`, `berth.container-name`; for the
//! process driver the same data in a JSON record in its state directory). A new driver
//! instance on the same Docker daemon or state directory, e.g. after an agent restart, finds
//! each of them through [`Driver::list_owned`], running or exited, with its task id and
//! container name, and can inspect, stop, wait for, read the logs of and remove it. An agent
//! that adopts what `list_owned` returns before starting anything neither duplicates nor
//! orphans containers. Exit codes survive the restart too (Docker keeps them; the process
//! driver's supervisor writes them to a file).
//!
//! # Errors
//! Every call returns [`DriverError`]; [`DriverError::ImageNotFound`] is what the agent turns
//! into `CannotPullContainerError`, [`DriverError::Unavailable`] means the runtime is down.

#![warn(missing_docs)]

mod docker;
mod driver;
mod error;
pub mod failover;
mod fake;
mod process;
mod runtime;
mod spec;

pub use crate::docker::{DockerDriver, SCOPE_LABEL};
pub use crate::driver::{BoxFuture, BoxStream, Driver};
pub use crate::error::DriverError;
pub use crate::fake::{FakeDriver, FAKE_STOP_EXIT_CODE};
pub use crate::process::{ProcessDriver, DEFAULT_TASK_USER};
pub use crate::runtime::{Agent, AgentConfig, AgentError, ClientError};
pub use crate::spec::{
    labels, ContainerId, ContainerSpec, ContainerStatus, Health, HealthCheckSpec, LogLine,
    NetworkBinding, NetworkMode, OwnedContainer, PortSpec, RunState, Stats, Stream,
};
