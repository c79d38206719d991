//! The work queue under every keyed controller: which keys are due, and when.
//!
//! It is kube-runtime's scheduler and runner in one small, pure structure (no I/O, no clock of
//! its own: every call takes `now`, so it is tested with plain numbers):
//! - a key is queued at most once; queueing it again only brings its time forward;
//! - a key is reconciled by at most one worker at a time: queued while in flight, it is
//!   marked dirty and becomes due again the moment its reconcile ends;
//! - a reconcile that fails is retried after a per-key exponential backoff (reset by a
//!   success), so one failing object neither stops the others nor spins;
//! - a reconcile asks for its own next look ([`Action::RequeueAfter`]) or for none.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// What a reconcile asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until something changes (or the periodic resync).
    Done,
    /// Look again after this long even if nothing changes (timers, polling).
    RequeueAfter(Duration),
}

/// How a key's reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and asked for this.
    Ok(Action),
    /// It failed (or panicked): retried after the key's backoff.
    Failed,
}

/// Per-key backoff after failures: `first * 2^(n-1)`, capped.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The pause after the first failure.
    pub first: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The pause after `failures` consecutive failures (at least one).
    pub fn after(&self, failures: u32) -> Duration {
        let n = failures.saturating_sub(1).min(20);
        self.first.saturating_mul(1 << n).min(self.max)
    }
}

/// The keys waiting, their due times, the ones in flight, and each key's failure count.
#[derive(Debug)]
pub struct WorkQueue<K> {
    /// Due time of every queued key (the ones in flight are not here).
    due: HashMap<K, (Instant, u64)>,
    /// The same entries ordered by due time (ties in queueing order).
    order: BTreeMap<(Instant, u64), K>,
    in_flight: HashSet<K>,
    /// In-flight keys queued again meanwhile: due as soon as their reconcile ends.
    dirty: HashSet<K>,
    failures: HashMap<K, u32>,
    backoff: Backoff,
    seq: u64,
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    /// An empty queue with `backoff` for failing keys.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            due: HashMap::new(),
            order: BTreeMap::new(),
            in_flight: HashSet::new(),
            dirty: HashSet::new(),
            failures: HashMap::new(),
            backoff,
            seq: 0,
        }
    }

    /// Queues `key` to run at `at` (or earlier, if it is already queued earlier).
    pub fn add(&mut self, key: K, at: Instant) {
        if self.in_flight.contains(&key) {
            self.dirty.insert(key);
            return;
        }
        if let Some(&(when, seq)) = self.due.get(&key) {
            if when <= at {
                return;
            }
            self.order.remove(&(when, seq));
        }
        self.seq += 1;
        self.due.insert(key.clone(), (at, self.seq));
        self.order.insert((at, self.seq), key);
    }

    /// The earliest due key that is due at `now`, now marked in flight.
    pub fn pop_ready(&mut self, now: Instant) -> Option<K> {
        let (&(when, seq), _) = self.order.first_key_value()?;
        if when > now {
            return None;
        }
        let key = self.order.remove(&(when, seq))?;
        self.due.remove(&key);
        self.in_flight.insert(key.clone());
        Some(key)
    }

    /// When the earliest queued key is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.order.first_key_value().map(|((when, _), _)| *when)
    }

    /// Records the end of `key`'s reconcile at `now` and queues its next run, if any.
    pub fn done(&mut self, key: K, outcome: Outcome, now: Instant) {
        self.in_flight.remove(&key);
        let next = match outcome {
            Outcome::Ok(action) => {
                self.failures.remove(&key);
                match action {
                    Action::Done => None,
                    Action::RequeueAfter(d) => Some(now + d),
                }
            }
            Outcome::Failed => {
                let n = self.failures.entry(key.clone()).or_insert(0);
                *n = n.saturating_add(1);
                Some(now + self.backoff.after(*n))
            }
        };
        // Changed while it ran: it looks again at once, whatever it asked for (a failing key
        // keeps its backoff: a change does not make a broken record readable).
        let next = if self.dirty.remove(&key) && outcome != Outcome::Failed {
            Some(now)
        } else {
            next
        };
        if let Some(at) = next {
            self.add(key, at);
        }
    }

    /// How many keys are queued (not counting the ones in flight).
    pub fn len(&self) -> usize {
        self.due.len()
    }

    /// Whether no key is queued.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }

    /// How many keys are being reconciled.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Consecutive failures of `key`.
    pub fn failures(&self, key: &K) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_key_is_queued_once_at_its_earliest_time() {
        let t0 = Instant::now();
        let mut q = WorkQueue::new(Backoff::default());
        q.add("a", t0 + ms(50));
        q.add("a", t0 + ms(10));
        q.add("a", t0 + ms(90));
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_due(), Some(t0 + ms(10)));
        assert_eq!(q.pop_ready(t0), None, "not due yet");
        assert_eq!(q.pop_ready(t0 + ms(10)), Some("a"));
        assert!(q.is_empty());
    }

    #[test]
    fn due_keys_come_out_in_time_order() {
        let t0 = Instant::now();
        let mut q = WorkQueue::new(Backoff::default());
        q.add("late", t0 + ms(5));
        q.add("early", t0);
        q.add("mid", t0 + ms(1));
        let now = t0 + ms(10);
        let order: Vec<_> = std::iter::from_fn(|| q.pop_ready(now)).collect();
        assert_eq!(order, ["early", "mid", "late"]);
    }

    #[test]
    fn one_reconcile_per_key_and_a_change_meanwhile_runs_again() {
        let t0 = Instant::now();
        let mut q = WorkQueue::new(Backoff::default());
        q.add("a", t0);
        assert_eq!(q.pop_ready(t0), Some("a"));
        q.add("a", t0);
        assert_eq!(q.pop_ready(t0), None, "in flight: not handed out twice");
        assert_eq!(q.in_flight(), 1);
        q.done("a", Outcome::Ok(Action::Done), t0 + ms(3));
        assert_eq!(q.pop_ready(t0 + ms(3)), Some("a"), "dirty: due at once");
        q.done("a", Outcome::Ok(Action::Done), t0 + ms(4));
        assert!(q.is_empty());
    }

    #[test]
    fn failures_back_off_per_key_and_success_resets() {
        let t0 = Instant::now();
        let b = Backoff {
            first: ms(100),
            max: ms(350),
        };
        let mut q = WorkQueue::new(b);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..4 {
            q.add("bad", now);
            assert_eq!(q.pop_ready(now), Some("bad"));
            q.done("bad", Outcome::Failed, now);
            let due = q.next_due().expect("retried");
            waits.push(due - now);
            now = due;
        }
        assert_eq!(waits, [ms(100), ms(200), ms(350), ms(350)]);
        assert_eq!(q.failures(&"bad"), 4);
        // Another key is not held up by the failing one.
        q.add("good", t0);
        assert_eq!(q.pop_ready(t0), Some("good"));
        assert_eq!(q.pop_ready(now), Some("bad"));
        q.done("bad", Outcome::Ok(Action::Done), now);
        assert_eq!(q.failures(&"bad"), 0);
    }

    #[test]
    fn requeue_after_schedules_the_next_look() {
        let t0 = Instant::now();
        let mut q = WorkQueue::new(Backoff::default());
        q.add(1u32, t0);
        assert_eq!(q.pop_ready(t0), Some(1));
        q.done(1, Outcome::Ok(Action::RequeueAfter(ms(250))), t0);
        assert_eq!(q.next_due(), Some(t0 + ms(250)));
    }
}
