//! Per-access-key request rate limits, answered as AWS does: `ThrottlingException`, HTTP 400,
//! "Rate exceeded" (the SDKs retry it with backoff).
//!
//! One token bucket per access key and action class: `burst` tokens at most, refilled at
//! `rate` a second; a request takes one. AWS throttles per action in the same way (ECS's
//! "Request throttling" page: reads such as DescribeClusters have a larger bucket than task
//! launches), so a burst of RunTask cannot starve the Describe calls that watch it. The
//! classes ([`ActionClass`]) and their share of `--api-rate`/`--api-burst`:
//!
//! | class | actions | rate, burst |
//! |---|---|---|
//! | read | `Describe*`, `List*`, `Get*`, `FilterLogEvents` | the full rate and burst |
//! | write | every other action | half |
//! | launch | ECS `RunTask`, `StartTask` | a fifth |
//!
//! Buckets are keyed by the access key of a request whose signature has been verified, so the
//! table holds at most three buckets per key in the key ring, and an unsigned flood cannot
//! grow it. The agents' endpoints (join tokens, not access keys) are not
//! throttled here: they are bounded by their long-poll and by the connection caps.
//!
//! The bucket arithmetic is pure ([`Bucket::take`]); [`Throttle`] reads a monotonic clock that
//! tests replace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use berth_model::{ApiError, ErrorCode};

/// A request rate limit: `rate` requests a second sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub rate: f64,
    /// Tokens a bucket holds at most (and starts with).
    pub burst: f64,
}

/// One key's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date, in seconds of the throttle's clock.
    at: f64,
}

impl Bucket {
    fn full(limit: RateLimit, now: f64) -> Self {
        Self {
            tokens: limit.burst,
            at: now,
        }
    }

    /// Refills for the time since the last call, then takes a token if there is one.
    fn take(&mut self, limit: RateLimit, now: f64) -> bool {
        let elapsed = (now - self.at).max(0.0);
        self.tokens = (self.tokens + elapsed * limit.rate).min(limit.burst);
        self.at = self.at.max(now);
        // A hair under one token counts as one: refills are sums of float products.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            true
        } else {
            false
        }
    }
}

/// Which bucket of a key an action draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionClass {
    /// Calls that only read: the largest bucket.
    Read,
    /// Calls that change state.
    Write,
    /// Calls that start tasks: the smallest bucket.
    Launch,
}

impl ActionClass {
    /// The class of `<service prefix>:<action>`.
    pub fn of(prefix: &str, action: &str) -> Self {
        if prefix == "ecs" && matches!(action, "RunTask" | "StartTask") {
            Self::Launch
        } else if ["Describe", "List", "Get"]
            .iter()
            .any(|p| action.starts_with(p))
            || action == "FilterLogEvents"
        {
            Self::Read
        } else {
            Self::Write
        }
    }

    /// This class's share of the server's limit (a burst never below one request).
    pub fn limit(self, l: RateLimit) -> RateLimit {
        let share = match self {
            Self::Read => 1.0,
            Self::Write => 0.5,
            Self::Launch => 0.2,
        };
        RateLimit {
            rate: l.rate * share,
            burst: (l.burst * share).max(1.0),
        }
    }
}

/// A monotonic clock in seconds.
pub(crate) type Clock = Arc<dyn Fn() -> f64 + Send + Sync>;

/// The buckets of every access key, under one limit (`None`: no limit).
pub(crate) struct Throttle {
    limit: Option<RateLimit>,
    buckets: Mutex<HashMap<(String, ActionClass), Bucket>>,
    clock: Clock,
}

impl Throttle {
    /// A throttle on the process's monotonic clock.
    pub fn new(limit: Option<RateLimit>) -> Self {
        let start = Instant::now();
        Self::with_clock(limit, Arc::new(move || start.elapsed().as_secs_f64()))
    }

    pub fn with_clock(limit: Option<RateLimit>, clock: Clock) -> Self {
        let limit = limit.filter(|l| l.rate > 0.0 && l.burst >= 1.0);
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Lets one request of `access_key` for `prefix:action` through, or answers
    /// `ThrottlingException`.
    pub fn check(&self, access_key: &str, prefix: &str, action: &str) -> Result<(), ApiError> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let class = ActionClass::of(prefix, action);
        let limit = class.limit(limit);
        let now = (self.clock)();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let ok = match buckets.get_mut(&(access_key.to_owned(), class)) {
            Some(b) => b.take(limit, now),
            None => {
                let mut b = Bucket::full(limit, now);
                let ok = b.take(limit, now);
                buckets.insert((access_key.to_owned(), class), b);
                ok
            }
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::ThrottlingException,
                "Rate exceeded",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    const LIMIT: RateLimit = RateLimit {
        rate: 10.0,
        burst: 3.0,
    };

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut b = Bucket::full(LIMIT, 0.0);
        assert!((0..3).all(|_| b.take(LIMIT, 0.0)), "the burst");
        assert!(!b.take(LIMIT, 0.0), "then empty");
        assert!(!b.take(LIMIT, 0.05), "half a token later");
        assert!(b.take(LIMIT, 0.1), "a token every 1/rate seconds");
        assert!(!b.take(LIMIT, 0.1));
        // A long pause refills to the burst, no more.
        assert_eq!((0..10).filter(|_| b.take(LIMIT, 100.0)).count(), 3);
        // A clock that steps back neither refills nor breaks the bucket.
        assert!(!b.take(LIMIT, 50.0));
        assert!(b.take(LIMIT, 100.1));
    }

    #[test]
    fn keys_have_their_own_buckets_and_the_error_is_aws_shaped() {
        let now = Arc::new(AtomicU64::new(0));
        let clock_now = now.clone();
        let t = Throttle::with_clock(
            Some(LIMIT),
            Arc::new(move || clock_now.load(Ordering::Relaxed) as f64 / 1000.0),
        );
        for _ in 0..3 {
            t.check("AKIA1", "ecs", "ListClusters").unwrap();
        }
        let e = t.check("AKIA1", "ecs", "ListClusters").unwrap_err();
        assert_eq!(e.code, ErrorCode::ThrottlingException);
        assert_eq!(e.code.as_str(), "ThrottlingException");
        assert_eq!(e.code.status(), 400);
        assert_eq!(e.code.query_str(), "Throttling");
        assert_eq!(e.message, "Rate exceeded");
        t.check("AKIA2", "ecs", "ListClusters").unwrap();
        now.store(100, Ordering::Relaxed); // 0.1 s: one token back
        t.check("AKIA1", "ecs", "ListClusters").unwrap();
        assert!(t.check("AKIA1", "ecs", "ListClusters").is_err());
    }

    #[test]
    fn no_limit_or_a_zero_rate_lets_everything_through() {
        for limit in [
            None,
            Some(RateLimit {
                rate: 0.0,
                burst: 5.0,
            }),
        ] {
            let t = Throttle::with_clock(limit, Arc::new(|| 0.0));
            assert!((0..1000).all(|_| t.check("AKIA1", "ecs", "ListClusters").is_ok()));
        }
    }

    #[test]
    fn actions_are_classed_as_aws_buckets_them() {
        use ActionClass::*;
        let table = [
            ("ecs", "RunTask", Launch),
            ("ecs", "StartTask", Launch),
            ("ecs", "DescribeClusters", Read),
            ("ecs", "ListTasks", Read),
            ("ssm", "GetParameter", Read),
            ("logs", "FilterLogEvents", Read),
            ("ecs", "CreateService", Write),
            ("elasticloadbalancing", "RegisterTargets", Write),
            ("ssm", "RunTask", Write),
        ];
        for (prefix, action, want) in table {
            assert_eq!(ActionClass::of(prefix, action), want, "{prefix}:{action}");
        }
        let l = RateLimit {
            rate: 100.0,
            burst: 200.0,
        };
        assert_eq!(Read.limit(l), l);
        assert_eq!(
            Write.limit(l),
            RateLimit {
                rate: 50.0,
                burst: 100.0
            }
        );
        assert_eq!(
            Launch.limit(l),
            RateLimit {
                rate: 20.0,
                burst: 40.0
            }
        );
        let tiny = RateLimit {
            rate: 1.0,
            burst: 2.0,
        };
        assert_eq!(Launch.limit(tiny).burst, 1.0, "a burst never below one");
    }

    #[test]
    fn a_burst_of_run_task_does_not_starve_describe() {
        let t = Throttle::with_clock(Some(LIMIT), Arc::new(|| 0.0));
        // LIMIT's burst is 3: launches get max(0.6, 1) = 1, reads the full 3.
        t.check("AKIA1", "ecs", "RunTask").unwrap();
        let e = t.check("AKIA1", "ecs", "RunTask").unwrap_err();
        assert_eq!(e.code, ErrorCode::ThrottlingException);
        for _ in 0..3 {
            t.check("AKIA1", "ecs", "DescribeClusters").unwrap();
        }
        assert!(t.check("AKIA1", "ecs", "DescribeClusters").is_err());
        t.check("AKIA1", "ecs", "CreateCluster").unwrap();
    }
}
