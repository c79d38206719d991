//! The one error type every driver returns.

/// Why a driver call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The image is not present locally (drivers never pull). The agent reports it as
    /// `CannotPullContainerError: ...`.
    #[error("image not found: {0}")]
    ImageNotFound(String),
    /// No container with this id.
    #[error("no such container: {0}")]
    NotFound(String),
    /// The runtime cannot be reached (Docker daemon down, socket missing).
    #[error("container runtime unavailable: {0}")]
    Unavailable(String),
    /// The spec cannot be run by this driver (e.g. the process driver without a command).
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    /// Anything else the runtime or the operating system refused.
    #[error("container runtime error: {0}")]
    Runtime(String),
}
