//! berth's CloudWatch Logs storage, and the pure logic the Logs API needs.
//!
//! Log events are kept apart from the cluster state: in their own redb file, bounded in bytes
//! (oldest evicted first, counted) and by each group's retention ([`RedbLogStore`], behind the
//! [`LogStore`] trait so the control layer's tests use an in-memory one). The pure modules
//! hold what is easy to get subtly wrong and cheap to unit-test: CloudWatch's text filter
//! patterns ([`FilterPattern`]) and the positions and paging tokens of GetLogEvents and
//! FilterLogEvents ([`token`]).
//!
//! Start with [`LogStore`].

#![warn(missing_docs)]

mod error;
mod pattern;
mod store;
#[cfg(test)]
mod store_tests;
pub mod token;

pub use error::LogsError;
pub use pattern::{FilterPattern, PatternError};
pub use store::{Appended, LogStats, LogStore, LogStoreConfig, RedbLogStore};
