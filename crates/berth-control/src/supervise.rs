//! Supervision of the control plane's long-running tasks: the controllers and the local agent.
//!
//! A bare `tokio::spawn` whose handle is dropped hides two failures: a panic kills the task
//! silently (the service controller would stop reconciling and nothing would say so), and a
//! shutdown cannot stop it, so it keeps writing to the store while the process winds down.
//! A [`Supervisor`] owns every such task instead:
//!
//! - Each task is built by a factory from a [`CancellationToken`] (a child of the
//!   supervisor's) and must return once that token is cancelled.
//! - A task that panics, or returns while not cancelled, is logged (`tracing::error!` with
//!   its name) and built anew after a pause: 100 ms, doubling up to 5 s, back to 100 ms once a
//!   run lasted 30 s (see [`restart_delay`]). The controllers are level-triggered, so a fresh
//!   run just reads the store again and carries on.
//! - [`Supervisor::shutdown`] cancels the token, waits up to a grace period for the tasks to
//!   return, then aborts the stragglers and names them.
//!
//! Panics are caught in the task itself (`catch_unwind` around the factory's future, as
//! tokio does for a spawned task), so each name is exactly one task in a [`JoinSet`] and
//! aborting it stops everything that runs under that name. Dropping the supervisor aborts
//! its tasks too.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The pause before the first restart.
const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// The longest pause between restarts.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// A run at least this long counts as healthy: the next restart pauses [`INITIAL_DELAY`].
const RESET_AFTER: Duration = Duration::from_secs(30);

/// The pause before a restart, given the pause before the previous one (`None`: this is the
/// first) and how long the run that just ended lasted.
pub(crate) fn restart_delay(previous: Option<Duration>, ran_for: Duration) -> Duration {
    match previous {
        Some(p) if ran_for < RESET_AFTER => (p * 2).min(MAX_DELAY),
        _ => INITIAL_DELAY,
    }
}

/// A named set of long-running tasks sharing one cancellation token; see the module docs.
pub struct Supervisor {
    token: CancellationToken,
    tasks: JoinSet<()>,
    names: HashMap<Id, String>,
}

impl Supervisor {
    /// A supervisor whose tasks stop when `token` is cancelled (by [`Supervisor::shutdown`]
    /// or by anyone holding a clone of it).
    pub fn new(token: CancellationToken) -> Self {
        Self {
            token,
            tasks: JoinSet::new(),
            names: HashMap::new(),
        }
    }

    /// The token every task's stop signal derives from.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Runs `factory(stop)` under `name` until `stop` is cancelled, building a fresh future
    /// whenever one panics or returns before that. Must be called inside a Tokio runtime.
    pub fn spawn<F, Fut>(&mut self, name: impl Into<String>, factory: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let handle = self
            .tasks
            .spawn(supervise(name.clone(), self.token.clone(), factory));
        self.names.insert(handle.id(), name);
    }

    /// Cancels the token and waits up to `grace` for every task to return; aborts the rest.
    /// Returns the names of the tasks that had to be aborted.
    pub async fn shutdown(mut self, grace: Duration) -> Vec<String> {
        self.token.cancel();
        let deadline = Instant::now() + grace;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(None) => return Vec::new(),
                Ok(Some(Ok((id, ())))) => {
                    self.names.remove(&id);
                }
                // The loop catches panics itself; a JoinError here means it was aborted.
                Ok(Some(Err(e))) => {
                    self.names.remove(&e.id());
                }
                Err(_) => break,
            }
        }
        self.tasks.shutdown().await;
        let mut stragglers: Vec<String> = self.names.drain().map(|(_, name)| name).collect();
        stragglers.sort();
        tracing::warn!(
            tasks = ?stragglers,
            "tasks still running {grace:?} after the shutdown signal; aborted"
        );
        stragglers
    }
}

/// One supervised name: build, run, and rebuild after a pause until `token` is cancelled.
async fn supervise<F, Fut>(name: String, token: CancellationToken, factory: F)
where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut delay = None;
    loop {
        let started = Instant::now();
        let outcome = AssertUnwindSafe(factory(token.child_token()))
            .catch_unwind()
            .await;
        if let Err(panic) = &outcome {
            tracing::error!(task = %name, panic = panic_message(&**panic), "supervised task panicked");
        }
        if token.is_cancelled() {
            tracing::debug!(task = %name, "supervised task stopped");
            return;
        }
        let pause = restart_delay(delay, started.elapsed());
        delay = Some(pause);
        if outcome.is_ok() {
            tracing::error!(task = %name, "supervised task returned before shutdown");
        }
        tracing::info!(task = %name, "restarting in {pause:?}");
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn restart_delay_doubles_to_the_cap_and_resets_after_a_healthy_run() {
        let short = Duration::from_millis(1);
        let mut d = restart_delay(None, short);
        assert_eq!(d, INITIAL_DELAY);
        let mut seen = vec![d];
        for _ in 0..10 {
            d = restart_delay(Some(d), short);
            seen.push(d);
        }
        assert_eq!(seen[1], INITIAL_DELAY * 2);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*seen.last().unwrap(), MAX_DELAY);
        assert_eq!(restart_delay(Some(MAX_DELAY), RESET_AFTER), INITIAL_DELAY);
    }

    /// Waits (in paused time, so instantly) until `cond` holds, or fails after `limit`.
    async fn wait_for(limit: Duration, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + limit;
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "condition not met within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_restarted_until_it_runs() {
        let runs = Arc::new(AtomicUsize::new(0));
        let mut sup = Supervisor::new(CancellationToken::new());
        let r = runs.clone();
        sup.spawn("flaky", move |stop| {
            let n = r.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                assert!(n > 3, "run {n} fails");
                stop.cancelled().await;
            }
        });
        // Three panics: restarts after 100 ms, 200 ms and 400 ms.
        wait_for(Duration::from_secs(2), || runs.load(Ordering::SeqCst) == 4).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            4,
            "a healthy run is left alone"
        );
        assert!(sup.shutdown(Duration::from_secs(1)).await.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_returns_early_is_restarted() {
        let runs = Arc::new(AtomicUsize::new(0));
        let mut sup = Supervisor::new(CancellationToken::new());
        let r = runs.clone();
        sup.spawn("quitter", move |_stop| {
            r.fetch_add(1, Ordering::SeqCst);
            async {}
        });
        wait_for(Duration::from_secs(10), || runs.load(Ordering::SeqCst) >= 5).await;
        assert!(sup.shutdown(Duration::from_secs(1)).await.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_tasks_that_listen() {
        let (runs, stopped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let token = CancellationToken::new();
        let mut sup = Supervisor::new(token.clone());
        for name in ["a", "b"] {
            let (r, s) = (runs.clone(), stopped.clone());
            sup.spawn(name, move |stop| {
                r.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                async move {
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                    s.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        wait_for(Duration::from_secs(1), || runs.load(Ordering::SeqCst) == 2).await;
        let started = Instant::now();
        assert!(sup.shutdown(Duration::from_secs(30)).await.is_empty());
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(token.is_cancelled());
        assert_eq!(stopped.load(Ordering::SeqCst), 2);
        assert_eq!(runs.load(Ordering::SeqCst), 2, "no restart after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_aborts_a_task_that_ignores_cancellation_after_the_grace() {
        struct Dropped(Arc<AtomicUsize>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut sup = Supervisor::new(CancellationToken::new());
        let d = dropped.clone();
        sup.spawn("stubborn", move |_stop| {
            let guard = Dropped(d.clone());
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }
        });
        sup.spawn("polite", |stop| async move { stop.cancelled().await });
        tokio::task::yield_now().await;
        let grace = Duration::from_secs(3);
        let started = Instant::now();
        assert_eq!(sup.shutdown(grace).await, vec!["stubborn".to_owned()]);
        assert!(started.elapsed() >= grace && started.elapsed() < grace * 2);
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the straggler was dropped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_the_token_during_a_backoff_ends_the_loop() {
        let mut sup = Supervisor::new(CancellationToken::new());
        sup.spawn("crasher", |_stop| async { panic!("always") });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        assert!(sup.shutdown(Duration::from_secs(10)).await.is_empty());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
