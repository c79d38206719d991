//! berth's control logic, apart from HTTP: everything here reads and writes the store and
//! decides, and the API edge only calls in.
//!
//! - [`Launcher`]: places tasks with the scheduler and creates them (RunTask, StartTask, and
//!   later the service controller), serialised per cluster and guarded by compare-and-swap.
//! - [`lifecycle`]: the task state machine: agent reports merged into tasks, stop requests.
//! - [`ClusterSnapshot`]: a consistent read of a cluster's instances and tasks, with the
//!   derived usage (remaining resources, task counts) of each instance.
//! - [`ServiceController`]: keeps services at their desired count, rolls out deployments
//!   (with the circuit breaker and rollback), replaces tasks of lost hosts.
//! - [`capacity`]: capacity providers at run time: the host group behind a provider,
//!   PROVISIONING tasks placed when capacity appears, and managed scaling.
//! - [`Reaper`]: removes STOPPED tasks once ECS would have forgotten them.
//! - [`FargateCapacity`]: holds FARGATE tasks in PROVISIONING until managed capacity has room
//!   and sizes berth's managed host groups to them.
//! - [`autoscale`]: the metrics pipeline and the autoscaler (Application Auto Scaling).
//! - [`Balancing`]: keeps the load balancer's data plane configured from the ELBv2 records;
//!   [`PlaneHealth`] reads its target health back for the API and the service controller.
//! - [`hostgroup`]: the host group controller (Auto Scaling groups' analogue) and the
//!   [`hostgroup::HostProvider`] trait hosts are made through.
//! - [`Supervisor`]: runs the long-lived loops above (each `run` takes a
//!   [`CancellationToken`]), restarts one that panics, and stops them all at shutdown.
//!
//! Decisions are pure functions over plain data (tested as such); the async functions around
//! them load, decide, and write in one transaction, retrying on conflict.

#![warn(missing_docs)]

pub mod autoscale;
mod balancing;
pub mod capacity;
mod eni;
pub mod fargate;
pub mod hostgroup;
mod launch;
pub mod lifecycle;
pub mod migrate;
mod reaper;
pub mod runtime;
pub mod service;
mod snapshot;
mod supervise;

pub use balancing::{
    desired as lb_config, target_key, Balancing, LbRecords, PlaneHealth, PlanePorts,
};
pub use fargate::{FargateCapacity, FargateConfig};
pub use launch::{
    instance_views, LaunchOutcome, LaunchSpec, Launcher, PlacementFailure, PlacementReason,
    ProviderTarget,
};
pub use reaper::Reaper;
pub use service::{deployment_id, ControllerConfig, ServiceController};
pub use snapshot::{host, is_connected, usage_of, ClusterSnapshot};
pub use supervise::Supervisor;
pub use tokio_util::sync::CancellationToken;

use berth_model::ApiError;
use berth_store::StoreError;

/// A store failure is the server's fault, never the client's.
pub fn store_err(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store failure");
    ApiError::server(format!("internal store error: {e}"))
}
