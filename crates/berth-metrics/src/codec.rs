//! The persistence format of the 1-minute buckets.
//!
//! ```text
//! magic  "BMTS"            4 bytes
//! version 1                u8
//! series count             u32 LE
//! per series, keys strictly ascending:
//!   key length             u16 LE, then that many bytes of UTF-8
//!   bucket count           u16 LE (at most the ring length, 60)
//!   per bucket, strictly ascending bucket index:
//!     index                i64 LE   (bucket start / 60)
//!     count                u64 LE   (> 0)
//!     sum, min, max        f64 LE   (finite, min <= max)
//! ```
//! Hand-written rather than serde + a binary format crate: it is forty lines, has no
//! dependency, and every field is validated as it is read.

use thiserror::Error;

use crate::key::SeriesKey;
use crate::ring::{Bucket, MAX_TIME};

const MAGIC: &[u8; 4] = b"BMTS";
const VERSION: u8 = 1;

/// Why [`MetricStore::restore_minutes`](crate::MetricStore::restore_minutes) refused its input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input does not start with the `BMTS` magic: not a snapshot at all.
    #[error("not a berth metrics snapshot (bad magic)")]
    BadMagic,
    /// A format version this build cannot read (only version 1 exists).
    #[error("unsupported metrics snapshot version {0}")]
    UnsupportedVersion(u8),
    /// The input ends in the middle of a field.
    #[error("metrics snapshot truncated")]
    Truncated,
    /// A series key is not valid UTF-8.
    #[error("metrics snapshot has a series key that is not UTF-8")]
    InvalidKey,
    /// Series keys are out of order or repeated; the writer emits them strictly ascending.
    #[error("metrics snapshot series keys are not strictly ascending")]
    UnorderedKeys,
    /// A series claims more buckets (the count given) than the 60-bucket ring holds.
    #[error("metrics snapshot series has {0} buckets, more than the ring holds")]
    TooManyBuckets(u16),
    /// A bucket fails validation: time out of range, not ascending, empty, or non-finite
    /// or inconsistent values; the text says which.
    #[error("metrics snapshot has an invalid bucket: {0}")]
    InvalidBucket(&'static str),
    /// Bytes (this many) left over after the last series.
    #[error("metrics snapshot has {0} trailing bytes")]
    TrailingBytes(usize),
}

pub(crate) fn encode<'a>(series: impl Iterator<Item = (&'a SeriesKey, Vec<Bucket>)>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut n: u32 = 0;
    for (key, buckets) in series {
        // Keys longer than u16::MAX bytes cannot be written; such names are not produced by
        // `SeriesKey::new` from ECS names, so they are skipped rather than failing the lot.
        let Ok(len) = u16::try_from(key.0.len()) else {
            continue;
        };
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(key.0.as_bytes());
        // A ring holds at most 60 buckets.
        out.extend_from_slice(&(buckets.len() as u16).to_le_bytes());
        for b in buckets {
            out.extend_from_slice(&b.idx.to_le_bytes());
            out.extend_from_slice(&b.count.to_le_bytes());
            out.extend_from_slice(&b.sum.to_le_bytes());
            out.extend_from_slice(&b.min.to_le_bytes());
            out.extend_from_slice(&b.max.to_le_bytes());
        }
        n += 1;
    }
    out[5..9].copy_from_slice(&n.to_le_bytes());
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
}

/// Decodes and validates a whole snapshot; nothing is returned unless all of it is valid.
pub(crate) fn decode(
    bytes: &[u8],
    max_buckets: usize,
) -> Result<Vec<(SeriesKey, Vec<Bucket>)>, DecodeError> {
    let mut r = Reader(bytes);
    if r.take(4).map_err(|_| DecodeError::BadMagic)? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = r.array::<1>()?[0];
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let n = r.u32()?;
    // No `with_capacity(n)`: `n` is untrusted.
    let mut out: Vec<(SeriesKey, Vec<Bucket>)> = Vec::new();
    for _ in 0..n {
        let len = r.u16()? as usize;
        let key = std::str::from_utf8(r.take(len)?).map_err(|_| DecodeError::InvalidKey)?;
        if out.last().is_some_and(|(k, _)| k.0.as_str() >= key) {
            return Err(DecodeError::UnorderedKeys);
        }
        let count = r.u16()?;
        if count as usize > max_buckets {
            return Err(DecodeError::TooManyBuckets(count));
        }
        let mut buckets: Vec<Bucket> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let b = Bucket {
                idx: r.i64()?,
                count: r.u64()?,
                sum: r.f64()?,
                min: r.f64()?,
                max: r.f64()?,
            };
            if b.idx < 0 || b.idx as f64 >= MAX_TIME / 60.0 {
                return Err(DecodeError::InvalidBucket("time out of range"));
            }
            if buckets.last().is_some_and(|p| p.idx >= b.idx) {
                return Err(DecodeError::InvalidBucket("buckets not ascending"));
            }
            if b.count == 0 {
                return Err(DecodeError::InvalidBucket("empty"));
            }
            if !(b.sum.is_finite() && b.min.is_finite() && b.max.is_finite()) || b.min > b.max {
                return Err(DecodeError::InvalidBucket("bad values"));
            }
            buckets.push(b);
        }
        out.push((SeriesKey(key.to_owned()), buckets));
    }
    if !r.0.is_empty() {
        return Err(DecodeError::TrailingBytes(r.0.len()));
    }
    Ok(out)
}
