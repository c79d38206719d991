//! Compare-and-swap under contention: [`Retry`] paces the attempts of a read-modify-write, and
//! [`update_json`] is the one read-decide-write helper built on it.
//!
//! Why a deadline and not a count: a fixed number of immediate retries is exhausted by a burst
//! of writers on one hot key (eight concurrent `TagResource` calls on one cluster did it), and
//! the client then sees a server error for what is only contention. ECS never answers that. So
//! a writer that loses a race waits a short, jittered, exponentially growing pause and tries
//! again, until a deadline far beyond any real burst; the jitter spreads the losers out so
//! each round has a winner and the herd drains.

use std::time::{Duration, Instant};

use rand::Rng;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::StoreError;
use crate::store::Store;
use crate::types::{Revision, Txn, TxnResult};

/// How long a read-modify-write keeps retrying a lost compare-and-swap before giving up.
pub const CONTENTION_DEADLINE: Duration = Duration::from_secs(30);

/// The first pause after a lost race; each further loss doubles it, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_micros(500);
/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// Paces the attempts of one compare-and-swap loop:
///
/// ```
/// # async fn demo() {
/// let mut retry = berth_store::Retry::new();
/// while retry.next().await {
///     // read, decide, write with compare-and-swap; `break` or `return` when it commits
/// #   break;
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Retry {
    attempts: u32,
    deadline: Instant,
}

impl Default for Retry {
    fn default() -> Self {
        Self::new()
    }
}

impl Retry {
    /// A loop that retries until [`CONTENTION_DEADLINE`].
    pub fn new() -> Self {
        Self::with_deadline(CONTENTION_DEADLINE)
    }

    /// A loop that retries for at most `within`.
    pub fn with_deadline(within: Duration) -> Self {
        Self {
            attempts: 0,
            deadline: Instant::now() + within,
        }
    }

    /// How many attempts have been allowed so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Allows the next attempt: at once for the first, after a jittered backoff for the
    /// others. `false` once the deadline has passed (the first attempt is always allowed).
    pub async fn next(&mut self) -> bool {
        if self.attempts > 0 {
            let now = Instant::now();
            if now >= self.deadline {
                return false;
            }
            let pause = pause(self.attempts).min(self.deadline - now);
            tokio::time::sleep(pause).await;
        }
        self.attempts = self.attempts.saturating_add(1);
        true
    }
}

/// Full jitter over an exponential ceiling: uniformly in `[0, min(MAX, FIRST * 2^(n-1))]`.
fn pause(lost: u32) -> Duration {
    let ceiling = FIRST_PAUSE
        .saturating_mul(1u32 << (lost - 1).min(16))
        .min(MAX_PAUSE);
    let micros = ceiling.as_micros() as u64;
    Duration::from_micros(rand::thread_rng().gen_range(0..=micros))
}

/// What an [`update_json`] closure decided about the record it was shown.
#[derive(Debug)]
pub enum Update<T> {
    /// Write this value in place of the one read.
    Put(T),
    /// Remove the record.
    Delete,
    /// Write nothing.
    Keep,
}

/// Why an [`update_json`] did not commit.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    /// The closure refused (a validation or not-found error of the caller's).
    #[error(transparent)]
    Rejected(E),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other writers kept winning the race until [`CONTENTION_DEADLINE`].
    #[error("{key} is contended: {attempts} attempts lost the race")]
    Contended {
        /// The record's key.
        key: String,
        /// How many attempts were made.
        attempts: u32,
    },
}

/// Reads `key`, lets `decide` turn it into an [`Update`], and writes that with a
/// compare-and-swap on the revision read; a lost race reads and decides again (paced by
/// [`Retry`]), so `decide` may run more than once and must not have side effects.
///
/// Returns the value now stored (`None` if absent or deleted) and the revision of the write
/// (or of the read, for [`Update::Keep`]).
pub async fn update_json<T, E, F>(
    store: &dyn Store,
    key: &str,
    mut decide: F,
) -> Result<(Option<T>, Revision), UpdateError<E>>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> Result<Update<T>, E>,
{
    let mut retry = Retry::new();
    while retry.next().await {
        let current = store.get(key).await?;
        let read_rev = current.as_ref().map_or(0, |kv| kv.mod_revision);
        let value = match &current {
            None => None,
            Some(kv) => Some(serde_json::from_slice::<T>(&kv.value).map_err(|source| {
                StoreError::Decode {
                    key: key.to_owned(),
                    source,
                }
            })?),
        };
        let (txn, after) = match decide(value).map_err(UpdateError::Rejected)? {
            Update::Keep => {
                let kept = match current {
                    None => None,
                    Some(kv) => serde_json::from_slice(&kv.value).ok(),
                };
                return Ok((kept, read_rev));
            }
            Update::Delete => (
                Txn::new().when_mod_revision(key, read_rev).delete(key),
                None,
            ),
            Update::Put(v) => {
                let bytes = serde_json::to_vec(&v)
                    .map_err(|e| StoreError::Backend(format!("encoding {key}: {e}")))?;
                (
                    Txn::new().when_mod_revision(key, read_rev).put(key, bytes),
                    Some(v),
                )
            }
        };
        if let TxnResult::Committed { revision } = store.txn(txn).await? {
            return Ok((after, revision));
        }
    }
    Err(UpdateError::Contended {
        key: key.to_owned(),
        attempts: retry.attempts(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_and_are_capped() {
        for lost in 1..40 {
            let ceiling = FIRST_PAUSE
                .saturating_mul(1u32 << (lost - 1).min(16))
                .min(MAX_PAUSE);
            for _ in 0..20 {
                assert!(pause(lost) <= ceiling);
            }
        }
        assert_eq!(
            FIRST_PAUSE.saturating_mul(1 << 16).min(MAX_PAUSE),
            MAX_PAUSE
        );
    }

    #[tokio::test]
    async fn first_attempt_is_always_allowed_and_the_deadline_ends_the_loop() {
        let mut r = Retry::with_deadline(Duration::ZERO);
        assert!(r.next().await);
        assert!(!r.next().await);
        assert_eq!(r.attempts(), 1);
    }
}
