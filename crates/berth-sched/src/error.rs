//! The one error type of the crate: everything a caller can get wrong before placement starts.

use thiserror::Error;

/// Why a request could not be placed at all, or a strategy, constraint or expression is
/// invalid. The API maps every variant except [`SchedError::NoInstances`] to ECS's
/// `InvalidParameterException`; `NoInstances` is what ECS answers RunTask with on a cluster
/// without container instances (also an `InvalidParameterException`, with this message).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SchedError {
    /// The cluster snapshot holds no container instance.
    #[error("No Container Instances were found in your cluster.")]
    NoInstances,
    /// A placement strategy with an unknown type or an invalid field.
    #[error("Invalid placement strategy: {0}")]
    InvalidStrategy(String),
    /// A placement constraint with an unknown type or a missing / superfluous expression.
    #[error("Invalid placement constraint: {0}")]
    InvalidConstraint(String),
    /// A cluster query language expression that does not parse. `position` is the byte
    /// offset in the expression where the problem was found.
    #[error("Invalid expression at position {position}: {message}")]
    InvalidExpression {
        /// What is wrong, in words a user can act on.
        message: String,
        /// Byte offset into the expression.
        position: usize,
    },
    /// More than [`crate::MAX_STRATEGIES`] placement strategies.
    #[error("Too many placement strategies: {count} given, at most {max} are allowed.")]
    TooManyStrategies {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`crate::MAX_CONSTRAINTS`] placement constraints.
    #[error("Too many placement constraints: {count} given, at most {max} are allowed.")]
    TooManyConstraints {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl SchedError {
    pub(crate) fn expr(message: impl Into<String>, position: usize) -> Self {
        SchedError::InvalidExpression {
            message: message.into(),
            position,
        }
    }
}
