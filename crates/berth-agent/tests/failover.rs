//! An agent given two server URLs: when the one it uses dies (its listener gone) or answers
//! 503 (an unhealthy store), the agent carries on with the other without registering again.
//! The servers are two small fakes of the agent protocol that count the calls they answer.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_agent::{Agent, AgentConfig, FakeDriver};
use berth_model::agent::{AgentRegistered, DesiredSet};

/// One fake replica: how many registrations and polls it answered, and whether it answers
/// 503 (as a replica whose store is unhealthy does).
#[derive(Default)]
struct Replica {
    registers: AtomicUsize,
    polls: AtomicUsize,
    unhealthy: AtomicBool,
}

async fn register(State(r): State<Arc<Replica>>) -> Result<Json<AgentRegistered>, StatusCode> {
    if r.unhealthy.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    r.registers.fetch_add(1, Ordering::SeqCst);
    Ok(Json(AgentRegistered {
        instance_id: "i-1".into(),
        instance_arn: "arn:aws:ecs:us-east-1:0:container-instance/default/i-1".into(),
        credential: Some("cred".into()),
        logs_token: None,
    }))
}

async fn poll(
    State(r): State<Arc<Replica>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<DesiredSet>, StatusCode> {
    if r.unhealthy.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    r.polls.fetch_add(1, Ordering::SeqCst);
    // A long poll with nothing new: answer after the wait asked for (capped).
    let wait: f64 = q.get("wait").and_then(|w| w.parse().ok()).unwrap_or(0.1);
    tokio::time::sleep(Duration::from_secs_f64(wait.min(0.2))).await;
    Ok(Json(DesiredSet {
        fingerprint: "f".into(),
        tasks: vec![],
        registered: true,
    }))
}

/// A fake replica served on a free loopback port by a runtime of its own, so that killing
/// it drops every connection too (as `kill -9` does), not only the accept loop.
struct Served {
    url: String,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    fn start(r: Arc<Replica>) -> Self {
        let app = Router::new()
            .route("/agent/v1/register", post(register))
            .route("/agent/v1/poll", get(poll))
            .route(
                "/agent/v1/status",
                post(|| async { Json(serde_json::json!({})) }),
            )
            .with_state(r);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let _ = axum::serve(listener, app).await;
            });
            // Runs the server until killed, then drops the runtime and every connection.
            let _ = rt.block_on(async { tokio::task::spawn_blocking(move || killed.recv()).await });
            rt.shutdown_background();
        });
        Self {
            url,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    fn kill(&mut self) {
        self.kill.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config(server: String, dir: &std::path::Path) -> AgentConfig {
    AgentConfig {
        server,
        cluster: "default".into(),
        join_token: "token".into(),
        state_dir: dir.to_path_buf(),
        attributes: vec![],
        poll_wait: Duration::from_millis(100),
        cleanup_after: Duration::from_secs(600),
        cpu_units: Some(1024),
        memory_mib: Some(1024),
        logs_listen: None,
        advertise: None,
        metadata_listen: None,
        ca_cert_pem: None,
    }
}

/// Waits (at most 10 s) until `cond` holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs an agent with both URLs until the returned sender fires.
fn run_agent(
    servers: String,
    dir: &std::path::Path,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), berth_agent::AgentError>>,
) {
    let agent = Agent::new(config(servers, dir), Arc::new(FakeDriver::new()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(async move {
        agent
            .run(async move {
                let _ = rx.await;
            })
            .await
    });
    (tx, run)
}

async fn stop(
    tx: tokio::sync::oneshot::Sender<()>,
    run: tokio::task::JoinHandle<Result<(), berth_agent::AgentError>>,
) {
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the agent stops")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_moves_to_the_next_server_when_its_server_dies() {
    let (a, b) = (Arc::new(Replica::default()), Arc::new(Replica::default()));
    let mut server_a = Served::start(a.clone());
    let server_b = Served::start(b.clone());
    let dir = tempfile::tempdir().unwrap();
    let (tx, run) = run_agent(format!("{},{}", server_a.url, server_b.url), dir.path());

    // The first URL answers: the agent registers there and stays (sticky).
    until("polls reach A", || a.polls.load(Ordering::SeqCst) >= 3).await;
    assert_eq!(
        b.polls.load(Ordering::SeqCst),
        0,
        "B is unused while A answers"
    );

    // A dies, connections and all: polls carry on at B, without a new registration.
    server_a.kill();
    let killed = std::time::Instant::now();
    until("a poll reaches B", || b.polls.load(Ordering::SeqCst) >= 1).await;
    // A figure, not a check: how long the move took, against the poll wait.
    println!(
        "failover: first poll at B {:?} after A died (poll wait {:?})",
        killed.elapsed(),
        Duration::from_millis(100)
    );
    until("polls reach B", || b.polls.load(Ordering::SeqCst) >= 3).await;
    let registers = a.registers.load(Ordering::SeqCst) + b.registers.load(Ordering::SeqCst);
    assert_eq!(registers, 1, "registered once, at A");
    assert!(!run.is_finished(), "the agent keeps running");
    stop(tx, run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_moves_to_the_next_server_when_its_server_answers_503() {
    let (a, b) = (Arc::new(Replica::default()), Arc::new(Replica::default()));
    let server_a = Served::start(a.clone());
    let server_b = Served::start(b.clone());
    let dir = tempfile::tempdir().unwrap();
    let (tx, run) = run_agent(format!("{},{}", server_a.url, server_b.url), dir.path());
    until("polls reach A", || a.polls.load(Ordering::SeqCst) >= 3).await;

    // A's store turns unhealthy: it answers 503, and the agent moves to B and sticks there.
    a.unhealthy.store(true, Ordering::SeqCst);
    until("polls reach B", || b.polls.load(Ordering::SeqCst) >= 3).await;
    a.unhealthy.store(false, Ordering::SeqCst);
    let at_a = a.polls.load(Ordering::SeqCst);
    let at_b = b.polls.load(Ordering::SeqCst);
    until("more polls at B", || {
        b.polls.load(Ordering::SeqCst) >= at_b + 3
    })
    .await;
    assert_eq!(
        a.polls.load(Ordering::SeqCst),
        at_a,
        "B stays in use while it answers"
    );
    assert_eq!(b.registers.load(Ordering::SeqCst), 0, "no new registration");
    stop(tx, run).await;
}
