//! One replica among the berth servers sharing a store: its id, its view of the election,
//! and the leader-only loops it runs while (and only while) it leads.
//!
//! Every replica serves the whole API and runs the load balancer's data plane, its health
//! checks and the metrics collector; agents may talk to any of them (their long polls wake
//! on store watches, so they see writes made through another replica). Only the leader runs
//! [`LeaderLoops`]. [`follow`] starts them under a supervisor of their own when this replica
//! wins a term, over the store fenced at that term, and cancels them the moment the election
//! says the term is over; if a write slips out in between, the fence refuses it.
//!
//! `GET /control-plane` (unauthenticated, like `/ping`) tells operators and tests who leads:
//! `{"replica": ID, "leader": ID or null, "isLeader": bool, "term": N}`; `/metrics` carries
//! the same as the gauges `berth_leader` and `berth_leader_term`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use berth_control::{CancellationToken, Supervisor};
use berth_store::{Fenced, Leadership, Store};
use tokio::sync::watch;

use crate::leading::LeaderLoops;

/// How long the leader loops of an ended term may take to return once cancelled.
const STEP_DOWN_GRACE: Duration = Duration::from_secs(3);

/// `--replica-id`, or this host's name and the API's port.
pub(crate) fn replica_id(flag: Option<&str>, addr: SocketAddr) -> String {
    match flag.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => id.to_owned(),
        None => format!(
            "{}:{}",
            crate::tls::hostname().unwrap_or_else(|| "localhost".into()),
            addr.port()
        ),
    }
}

/// The term whose leader loops should run now: this replica's, while it leads.
fn wanted_term(now: &Leadership) -> Option<u64> {
    now.is_leader.then_some(now.term)
}

/// The answer of `GET /control-plane`.
fn control_plane_json(now: &Leadership) -> serde_json::Value {
    serde_json::json!({
        "replica": now.replica,
        "leader": now.leader,
        "isLeader": now.is_leader,
        "term": now.term,
    })
}

/// The `/control-plane` route, to merge into the API's router.
pub(crate) fn routes(leadership: watch::Receiver<Leadership>) -> Router {
    async fn control_plane(
        State(leadership): State<watch::Receiver<Leadership>>,
    ) -> Json<serde_json::Value> {
        let now = leadership.borrow().clone();
        Json(control_plane_json(&now))
    }
    Router::new()
        .route("/control-plane", get(control_plane))
        .with_state(leadership)
}

/// The election's gauges, in Prometheus' text format.
pub(crate) fn render_metrics(now: &Leadership, out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP berth_leader Whether this replica leads the control plane (1) or not (0)."
    );
    let _ = writeln!(out, "# TYPE berth_leader gauge");
    let _ = writeln!(out, "berth_leader {}", u8::from(now.is_leader));
    let _ = writeln!(
        out,
        "# HELP berth_leader_term The current leader's term (its key's revision; 0: none)."
    );
    let _ = writeln!(out, "# TYPE berth_leader_term gauge");
    let _ = writeln!(out, "berth_leader_term {}", now.term);
}

/// Runs the leader loops for every term this replica leads, over `store` (fenced at the
/// term when `fencing`), until `stop`.
pub(crate) async fn follow(
    leadership: watch::Receiver<Leadership>,
    fencing: bool,
    store: Arc<dyn Store>,
    loops: Arc<LeaderLoops>,
    stop: CancellationToken,
) {
    follow_with(leadership, fencing, store, stop, |supervisor, store| {
        loops.spawn(supervisor, store)
    })
    .await
}

/// [`follow`], with `spawn` starting a term's loops under its supervisor.
async fn follow_with(
    mut leadership: watch::Receiver<Leadership>,
    fencing: bool,
    store: Arc<dyn Store>,
    stop: CancellationToken,
    spawn: impl Fn(&mut Supervisor, &Arc<dyn Store>),
) {
    let mut running: Option<(u64, Supervisor)> = None;
    loop {
        let want = wanted_term(&leadership.borrow_and_update());
        if running.as_ref().map(|(term, _)| *term) != want {
            if let Some((term, supervisor)) = running.take() {
                tracing::warn!(term, "stopping the leader loops");
                supervisor.shutdown(STEP_DOWN_GRACE).await;
            }
            if let Some(term) = want {
                // A refused write means the term is over even if the election has not said so
                // yet: the term's loops stop at once.
                let token = stop.child_token();
                let store: Arc<dyn Store> = if fencing {
                    let fenced = token.clone();
                    Arc::new(Fenced::new(store.clone(), term).on_fenced(move || {
                        if !fenced.is_cancelled() {
                            tracing::warn!(term, "a write was fenced: stopping the leader loops");
                            fenced.cancel();
                        }
                    }))
                } else {
                    store.clone()
                };
                let mut supervisor = Supervisor::new(token);
                spawn(&mut supervisor, &store);
                tracing::info!(term, "leader loops started");
                running = Some((term, supervisor));
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = leadership.changed() => if changed.is_err() {
                // The election ended (a sole replica's never changes): what is, stays.
                stop.cancelled().await;
                break;
            },
        }
    }
    if let Some((_, supervisor)) = running {
        supervisor.shutdown(STEP_DOWN_GRACE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(is_leader: bool, term: u64) -> Leadership {
        Leadership {
            replica: "a".into(),
            leader: Some(if is_leader { "a" } else { "b" }.into()),
            is_leader,
            term,
        }
    }

    /// The loops a term started, and whether each is still running.
    #[derive(Default)]
    struct Terms(std::sync::Mutex<Vec<(u64, Arc<std::sync::atomic::AtomicBool>)>>);

    impl Terms {
        fn spawn(&self, supervisor: &mut Supervisor, store: &Arc<dyn Store>, term: u64) {
            let live = Arc::new(std::sync::atomic::AtomicBool::new(true));
            self.0.lock().unwrap().push((term, live.clone()));
            let _ = store;
            supervisor.spawn("loop", move |stop| {
                let live = live.clone();
                async move {
                    stop.cancelled().await;
                    live.store(false, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }

        fn live(&self) -> Vec<u64> {
            let terms = self.0.lock().unwrap();
            terms
                .iter()
                .filter(|(_, l)| l.load(std::sync::atomic::Ordering::SeqCst))
                .map(|(t, _)| *t)
                .collect()
        }

        fn started(&self) -> Vec<u64> {
            self.0.lock().unwrap().iter().map(|(t, _)| *t).collect()
        }
    }

    async fn until(cond: impl Fn() -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !cond() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the condition within 10 s");
    }

    fn store() -> Arc<dyn Store> {
        Arc::new(berth_store::RedbStore::in_memory().unwrap())
    }

    /// A sole replica's election never changes: its loops start once and run until shutdown.
    #[tokio::test]
    async fn a_sole_replica_runs_its_loops_once_until_stopped() {
        let election = store().elect("solo");
        let terms = Arc::new(Terms::default());
        let stop = CancellationToken::new();
        let t = terms.clone();
        let run = tokio::spawn(follow_with(
            election.subscribe(),
            election.fencing(),
            store(),
            stop.clone(),
            move |sup, store| t.spawn(sup, store, 1),
        ));
        until(|| terms.live() == vec![1]).await;
        drop(election);
        tokio::task::yield_now().await;
        assert!(!run.is_finished());
        assert_eq!(terms.started(), vec![1]);
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("returns once stopped")
            .unwrap();
        assert!(terms.live().is_empty());
    }

    /// Losing leadership stops the term's loops at once; a new term starts fresh ones.
    #[tokio::test]
    async fn loops_stop_with_their_term_and_restart_with_the_next() {
        let (tx, rx) = watch::channel(Leadership::none("a"));
        let terms = Arc::new(Terms::default());
        let stop = CancellationToken::new();
        let t = terms.clone();
        let run = tokio::spawn(follow_with(
            rx,
            true,
            store(),
            stop.clone(),
            move |sup, _| t.spawn(sup, &store(), 0),
        ));
        tx.send_replace(at(true, 4));
        until(|| terms.live().len() == 1).await;
        tx.send_replace(at(false, 6));
        until(|| terms.live().is_empty()).await;
        tx.send_replace(at(true, 8));
        until(|| terms.live().len() == 1 && terms.started().len() == 2).await;
        stop.cancel();
        run.await.unwrap();
        assert!(terms.live().is_empty());
    }

    /// A fenced write stops the term's loops even while the election still says "leader".
    #[tokio::test]
    async fn a_fenced_write_stops_the_terms_loops() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (tx, rx) = watch::channel(Leadership::none("a"));
        // Runs started, and runs that saw their write refused and then their stop signal.
        let (started, stopped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let stop = CancellationToken::new();
        let (s1, s2) = (started.clone(), stopped.clone());
        // No leader key at term 5 in this store: every fenced write is refused.
        let run = tokio::spawn(follow_with(
            rx,
            true,
            store(),
            stop.clone(),
            move |sup, store| {
                let (s1, s2, store) = (s1.clone(), s2.clone(), store.clone());
                sup.spawn("writer", move |stop| {
                    let (s1, s2, store) = (s1.clone(), s2.clone(), store.clone());
                    async move {
                        s1.fetch_add(1, Ordering::SeqCst);
                        let put = berth_store::Txn::new().put("x", b"1".to_vec());
                        let refused = store.txn(put).await;
                        assert!(matches!(
                            refused,
                            Err(berth_store::StoreError::Fenced { .. })
                        ));
                        stop.cancelled().await;
                        s2.fetch_add(1, Ordering::SeqCst);
                    }
                });
            },
        ));
        tx.send_replace(at(true, 5));
        until(|| stopped.load(Ordering::SeqCst) == 1).await;
        // Stopped for good (not restarted by its supervisor), though still "leader".
        assert_eq!(started.load(Ordering::SeqCst), 1);
        assert!(tx.borrow().is_leader);
        stop.cancel();
        run.await.unwrap();
        assert_eq!(started.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn loops_run_for_this_replicas_terms_only() {
        assert_eq!(wanted_term(&at(true, 7)), Some(7));
        assert_eq!(wanted_term(&at(false, 7)), None);
        assert_eq!(wanted_term(&Leadership::none("a")), None);
    }

    #[test]
    fn the_control_plane_answer_has_the_shared_shape() {
        let v = control_plane_json(&at(false, 9));
        assert_eq!(
            v,
            serde_json::json!({"replica": "a", "leader": "b", "isLeader": false, "term": 9})
        );
        let v = control_plane_json(&Leadership::none("a"));
        assert_eq!(v["leader"], serde_json::Value::Null);
    }

    #[test]
    fn an_explicit_replica_id_wins_over_the_host_name() {
        let addr: SocketAddr = "127.0.0.1:9400".parse().unwrap();
        assert_eq!(replica_id(Some("r1"), addr), "r1");
        assert!(replica_id(None, addr).ends_with(":9400"));
        assert!(replica_id(Some("  "), addr).ends_with(":9400"));
    }

    #[test]
    fn the_gauges_say_who_leads() {
        let mut out = String::new();
        render_metrics(&at(true, 12), &mut out);
        assert!(out.contains("\nberth_leader 1\n"));
        assert!(out.contains("\nberth_leader_term 12\n"));
    }
}
