//! The log store's errors.

use thiserror::Error;

/// What a [`crate::LogStore`] call can fail with.
#[derive(Debug, Error)]
pub enum LogsError {
    /// The log group does not exist.
    #[error("The specified log group does not exist.")]
    GroupNotFound,
    /// The log stream does not exist.
    #[error("The specified log stream does not exist.")]
    StreamNotFound,
    /// The group or stream exists already.
    #[error("The specified resource already exists.")]
    AlreadyExists,
    /// A stored record does not decode.
    #[error("corrupt log store record: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("log store: {0}")]
    Db(#[source] Box<redb::Error>),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for LogsError {
            fn from(e: $t) -> Self {
                Self::Db(Box::new(e.into()))
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
