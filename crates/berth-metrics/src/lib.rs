//! berth's metric memory: recent task and service metrics, kept in fixed-size rings.
//!
//! Service auto scaling needs "the average CPU of service `web` over the last few periods",
//! `DescribeServices`/CloudWatch-style reads need a short history, and neither justifies a
//! time-series database. This crate keeps, per series ([`SeriesKey`]), two rings of
//! aggregated buckets: 90 buckets of 10 seconds (15 minutes) and 60 buckets of one minute
//! (one hour). Each bucket holds count, sum, minimum and maximum, which answer every
//! [`Stat`] (Average, Sum, Minimum, Maximum, SampleCount) without keeping samples.
//!
//! **Start with [`MetricStore`]**: [`MetricStore::record`] samples in,
//! [`MetricStore::points`] / [`MetricStore::latest`] datapoints out.
//!
//! # Why it looks like this
//! - **Pure and synchronous.** No I/O, no clock: times are passed in (unix seconds, `f64`),
//!   so callers own locking and time, and tests replay recorded series.
//! - **Fixed memory per series.** Both rings are allocated once, when a series first
//!   appears (150 buckets of 40 bytes ≈ 6 KB); a slot is reused for a newer bucket by
//!   comparing the bucket index it holds, and reset when stale. Memory is bounded by the
//!   number of series, which [`MetricStore::remove_idle`] keeps in check.
//! - **Aligned buckets.** A bucket covers `[k·w, (k+1)·w)` for its width `w`, so every
//!   series and every replica agree on boundaries.
//! - **The ring's clock is its newest sample.** A ring covers the 90 (or 60) buckets ending
//!   with the newest bucket it has seen; a sample older than that is dropped, a sample
//!   inside it lands in its bucket even if it arrives out of order.
//! - **Restarts keep the hour.** [`MetricStore::encode_minutes`] writes the 1-minute buckets
//!   in a small versioned binary format; [`MetricStore::restore_minutes`] validates
//!   everything before changing anything, and returns [`DecodeError`] (never panics) on
//!   garbage. The 10-second ring is not persisted: it refills in minutes.

#![warn(missing_docs)]

mod codec;
mod key;
mod ring;
mod store;

pub use codec::DecodeError;
pub use key::SeriesKey;
pub use store::{MetricStore, Resolution, Stat};
