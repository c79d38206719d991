//! Keyed controllers, after kube-runtime: watches turn store changes into object keys, a
//! [`WorkQueue`] holds the keys, and a runner reconciles them with at most one reconcile per
//! key at a time.
//!
//! Why keys and not passes: a controller that re-reads the world on every change costs
//! O(everything) per change, and one record it cannot handle stops the pass for all the
//! others. Here a change to one service costs a reconcile of that service; a reconcile that
//! fails (a record that does not decode, a store hiccup) or panics is retried with that key's
//! own backoff while every other key goes on; and a reconcile says when it wants to look again
//! ([`Action::RequeueAfter`]) for timers that no write will announce. A periodic resync of
//! every key (the caller's, through [`Trigger`]) covers anything a watch could miss.

mod queue;

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_store::{Revision, Store, WatchEvent};
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use queue::{Action, Backoff, Outcome, WorkQueue};

/// Why a reconcile failed; logged, and the key is retried after its backoff.
pub type ReconcileError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed reconcile future.
pub type ReconcileFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Action, ReconcileError>> + Send + 'a>>;

/// The object-specific half of a controller.
pub trait Reconciler: Send + Sync + 'static {
    /// What names one object (a service, a target group, ...).
    type Key: Clone + Eq + Hash + Debug + Send + Sync + 'static;

    /// Brings the object named `key` towards its desired state, reading what it needs.
    fn reconcile<'a>(&'a self, key: &'a Self::Key) -> ReconcileFuture<'a>;
}

/// Queues keys for a running controller; cheap to clone, one per source.
#[derive(Debug)]
pub struct Trigger<K>(mpsc::UnboundedSender<K>);

impl<K> Clone for Trigger<K> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K> Trigger<K> {
    /// Queues `key` for a reconcile as soon as possible.
    pub fn send(&self, key: K) {
        // The controller is gone only at shutdown; nothing to do then.
        let _ = self.0.send(key);
    }
}

/// Counters of a controller, for tests, benchmarks and logs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Reconciles that ran to an end (ok or failed).
    pub reconciles: AtomicU64,
    /// Reconciles that failed or panicked.
    pub failures: AtomicU64,
}

/// A keyed controller: its reconciler, its queue and how many keys it works on at once.
pub struct Controller<R: Reconciler> {
    name: &'static str,
    reconciler: Arc<R>,
    rx: mpsc::UnboundedReceiver<R::Key>,
    tx: mpsc::UnboundedSender<R::Key>,
    concurrency: usize,
    backoff: Backoff,
    stats: Arc<Stats>,
}

impl<R: Reconciler> Controller<R> {
    /// A controller named `name` (in logs) around `reconciler`.
    pub fn new(name: &'static str, reconciler: Arc<R>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            name,
            reconciler,
            rx,
            tx,
            concurrency: 4,
            backoff: Backoff::default(),
            stats: Arc::default(),
        }
    }

    /// Reconciles up to `n` keys at once (distinct keys; one key never runs twice at once).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The backoff of failing keys.
    pub fn backoff(mut self, b: Backoff) -> Self {
        self.backoff = b;
        self
    }

    /// A handle that queues keys.
    pub fn trigger(&self) -> Trigger<R::Key> {
        Trigger(self.tx.clone())
    }

    /// The controller's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Runs until `stop` resolves; reconciles still running then are cancelled (each is a
    /// level-triggered step, so the next start takes over where it left off).
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let Self {
            name,
            reconciler,
            mut rx,
            tx,
            concurrency,
            backoff,
            stats,
        } = self;
        drop(tx);
        let mut queue = WorkQueue::new(backoff);
        let mut running: JoinSet<(R::Key, Outcome)> = JoinSet::new();
        let mut stop = std::pin::pin!(stop);
        let mut open = true;
        loop {
            let now = Instant::now();
            while running.len() < concurrency {
                let Some(key) = queue.pop_ready(now) else {
                    break;
                };
                let r = reconciler.clone();
                running.spawn(async move {
                    let result = AssertUnwindSafe(r.reconcile(&key)).catch_unwind().await;
                    let outcome = match result {
                        Ok(Ok(action)) => Outcome::Ok(action),
                        Ok(Err(e)) => {
                            tracing::warn!(controller = name, ?key, error = %e, "reconcile failed");
                            Outcome::Failed
                        }
                        Err(_) => {
                            tracing::error!(controller = name, ?key, "reconcile panicked");
                            Outcome::Failed
                        }
                    };
                    (key, outcome)
                });
            }
            let wake = queue
                .next_due()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = &mut stop => break,
                key = rx.recv(), if open => match key {
                    Some(k) => queue.add(k, Instant::now()),
                    None => open = false,
                },
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    if let Ok((key, outcome)) = joined {
                        stats.reconciles.fetch_add(1, Ordering::Relaxed);
                        if outcome == Outcome::Failed {
                            stats.failures.fetch_add(1, Ordering::Relaxed);
                        }
                        queue.done(key, outcome, Instant::now());
                    }
                }
                _ = tokio::time::sleep_until(wake), if running.len() < concurrency => {}
            }
        }
        running.shutdown().await;
    }
}

/// Follows every change under `prefix` after revision `from`, calling `on_event` for each;
/// when the watch breaks (history compacted, store restarted) it calls `on_gap` (the caller
/// resyncs every key) and watches again from the store's current revision. Returns when
/// `stop` resolves.
pub async fn follow(
    store: Arc<dyn Store>,
    prefix: &str,
    from: Revision,
    mut on_event: impl FnMut(&WatchEvent),
    mut on_gap: impl FnMut(),
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut rev = from;
    loop {
        let mut events = store.watch(prefix, rev);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                ev = events.next() => match ev {
                    Some(Ok(e)) => {
                        rev = e.revision();
                        on_event(&e);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(%prefix, error = %e, "watch broke; resyncing");
                        break;
                    }
                    None => break,
                },
            }
        }
        on_gap();
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        rev = store.revision().await.unwrap_or(rev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Counts reconciles per key; key "bad" always fails, "boom" panics once.
    #[derive(Default)]
    struct Counting {
        seen: Mutex<HashMap<String, u32>>,
    }

    impl Reconciler for Counting {
        type Key = String;
        fn reconcile<'a>(&'a self, key: &'a String) -> ReconcileFuture<'a> {
            Box::pin(async move {
                let n = {
                    let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                    let n = seen.entry(key.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                match key.as_str() {
                    "bad" => Err("cannot decode".into()),
                    "boom" if n == 1 => panic!("reconcile bug"),
                    _ => Ok(Action::Done),
                }
            })
        }
    }

    async fn eventually(mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(Instant::now() < deadline, "condition not met in time");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_failing_or_panicking_key_does_not_stop_the_others() {
        let r = Arc::new(Counting::default());
        let c = Controller::new("test", r.clone()).backoff(Backoff {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
        });
        let (t, stats) = (c.trigger(), c.stats());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(c.run(async {
            let _ = stop_rx.await;
        }));
        for k in ["bad", "boom", "a", "b", "a"] {
            t.send(k.to_owned());
        }
        let count = |k: &str| {
            r.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(k)
                .copied()
                .unwrap_or(0)
        };
        eventually(|| count("a") >= 1 && count("b") == 1 && count("boom") == 2).await;
        // The failing key is retried, with backoff, and keeps failing alone.
        eventually(|| count("bad") >= 3).await;
        assert!(stats.failures.load(Ordering::Relaxed) >= 4);
        let _ = stop_tx.send(());
        run.await.expect("runner ends at stop");
    }
}
