//! The one source of time. Controllers and handlers take a `Clock` so tests can fix time.

use std::time::{SystemTime, UNIX_EPOCH};

/// The time of day, as seen by a controller or handler.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch, with fractions (the AWS JSON timestamp).
    fn now(&self) -> f64;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}
