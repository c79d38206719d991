//! What one service change costs the service controller, before and after keyed reconcilers.
//!
//! ```sh
//! cargo run --release -p berth-control --example reconcile_cost [-- --services 1000 --instances 10]
//! ```
//!
//! The store (in memory) holds one cluster with `--instances` hosts and `--services` services
//! of one RUNNING task each, all steady. The store is wrapped so every record read is counted
//! (`get` that finds a record: 1; `list`: each record returned).
//!
//! - **before**: the read pattern of the controller before this change, replayed: every
//!   store change ran a pass that listed every service and instance, loaded the cluster's
//!   snapshot (all its instances and tasks), and decided every service.
//! - **after, one reconcile**: the keyed reconcile of the one service that changed.
//! - **after, live**: the real controller running; one service record is rewritten (what
//!   UpdateService does) and everything the controller reads until it is quiet again is
//!   counted, with the reconciles it ran.
//!
//! Records read is the figure that travels (it does not depend on the machine); times are
//! medians over `--rounds` and given as a ratio to the "before" pass measured in the same run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_control::runtime::{Reconciler, Stats};
use berth_control::service::{decide, Input, Key, LbHealth};
use berth_control::{ClusterSnapshot, ControllerConfig, Launcher, ServiceController};
use berth_model::{keys, Clock, ContainerInstance, Service, SystemClock, Task, TaskDefinition};
use berth_store::{
    BoxFuture, BoxStream, KeyValue, RedbStore, Revision, Store, StoreError, StoreExt, Txn,
    TxnResult, WatchEvent,
};
use serde_json::json;

/// A store that counts what is read through it.
struct Counting {
    inner: Arc<dyn Store>,
    records: AtomicU64,
    calls: AtomicU64,
}

impl Counting {
    fn take(&self) -> (u64, u64) {
        (
            self.records.swap(0, Ordering::Relaxed),
            self.calls.swap(0, Ordering::Relaxed),
        )
    }
}

impl Store for Counting {
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>, StoreError>> {
        let key = key.to_owned();
        Box::pin(async move {
            let r = self.inner.get(&key).await?;
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.records
                .fetch_add(u64::from(r.is_some()), Ordering::Relaxed);
            Ok(r)
        })
    }
    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>> {
        let prefix = prefix.to_owned();
        Box::pin(async move {
            let r = self.inner.list(&prefix).await?;
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.records.fetch_add(r.0.len() as u64, Ordering::Relaxed);
            Ok(r)
        })
    }
    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResult, StoreError>> {
        self.inner.txn(txn)
    }
    fn revision(&self) -> BoxFuture<'_, Result<Revision, StoreError>> {
        self.inner.revision()
    }
    fn watch(&self, prefix: &str, after: Revision) -> BoxStream<Result<WatchEvent, StoreError>> {
        self.inner.watch(prefix, after)
    }
}

struct Args {
    services: usize,
    instances: usize,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args {
        services: 1000,
        instances: 10,
        rounds: 20,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), v) {
            ("--services", Some(n)) => a.services = n,
            ("--instances", Some(n)) => a.instances = n,
            ("--rounds", Some(n)) => a.rounds = n,
            _ => {
                eprintln!("usage: reconcile_cost [--services N] [--instances N] [--rounds N]");
                std::process::exit(2);
            }
        }
    }
    a
}

fn enc(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap_or_default()
}

fn service_record(name: &str, now: f64, version: u64) -> Vec<u8> {
    enc(json!({
        "name": name, "cluster": "c", "status": "ACTIVE", "desiredCount": 1,
        "launchType": "EC2",
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": false, "rollback": false},
            "maximumPercent": 200, "minimumHealthyPercent": 100
        },
        "deployments": [{
            "id": format!("ecs-svc/{name}"), "status": "PRIMARY", "family": "web", "revision": 1,
            "createdAt": now, "updatedAt": now, "rolloutState": "COMPLETED"
        }],
        "events": [{"id": "e", "createdAt": now, "message": format!("(service {name}) has reached a steady state.")}],
        "createdAt": now, "createdBy": "bench", "steady": true, "version": version
    }))
}

async fn seed(store: &dyn Store, a: &Args, now: f64) -> Result<(), StoreError> {
    let td = json!({
        "family": "web", "revision": 1, "status": "ACTIVE",
        "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 16}]
    });
    store
        .txn(Txn::new().put(keys::taskdef("web", 1), enc(td)))
        .await?;
    for i in 0..a.instances {
        let id = format!("i{i}");
        let inst = json!({
            "id": id, "cluster": "c", "ec2InstanceId": id, "status": "ACTIVE",
            "registered": {"cpu": 1_000_000, "memory": 1_000_000}, "attributes": [], "tags": [],
            "versionInfo": null, "registeredAt": now, "lastSeen": now + 3600.0, "version": 1
        });
        store
            .txn(Txn::new().put(keys::instance("c", &id), enc(inst)))
            .await?;
    }
    for s in 0..a.services {
        let name = format!("s{s:05}");
        let tid = format!("t{s:05}");
        let inst = format!("i{}", s % a.instances.max(1));
        let task = json!({
            "id": tid, "cluster": "c", "family": "web", "revision": 1,
            "containerInstanceId": inst, "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
            "launchType": "EC2", "cpu": 0, "memory": 16,
            "containers": [], "group": format!("service:{name}"),
            "startedBy": format!("ecs-svc/{name}"), "createdAt": now - 60.0,
            "startedAt": now - 60.0, "version": 3
        });
        let txn = Txn::new()
            .put(keys::service("c", &name), service_record(&name, now, 1))
            .put(keys::task("c", &tid), enc(task))
            .put(keys::assignment(&inst, &tid), b"RUNNING".to_vec())
            .put(keys::service_task("c", &name, &tid), Vec::new());
        store.txn(txn).await?;
    }
    Ok(())
}

/// The pass the controller ran on every change before keyed reconcilers: the same reads, and
/// a decision for every service.
async fn legacy_pass(store: &dyn Store, now: f64) -> Result<usize, StoreError> {
    let services = store.list_json::<Service>(keys::SERVICES).await?;
    let _instances = store.list_json::<ContainerInstance>("instances/").await?;
    let snap = ClusterSnapshot::load(store, "c").await?;
    let instances: Vec<ContainerInstance> = snap.instances.iter().map(|(i, _)| i.clone()).collect();
    let mut taskdefs: HashMap<(String, u32), Option<TaskDefinition>> = HashMap::new();
    let mut decided = 0;
    for (_, svc, _) in &services {
        for d in &svc.deployments {
            if let std::collections::hash_map::Entry::Vacant(e) =
                taskdefs.entry((d.family.clone(), d.revision))
            {
                let td = store
                    .get_json::<TaskDefinition>(&keys::taskdef(&d.family, d.revision))
                    .await?
                    .map(|(td, _)| td);
                e.insert(td);
            }
        }
        let group = svc.group();
        let tasks: Vec<&Task> = snap
            .tasks
            .iter()
            .map(|(t, _)| t)
            .filter(|t| t.group.as_deref() == Some(group.as_str()))
            .collect();
        let (mut ids, mut dids) = (|| "e".to_owned(), || "ecs-svc/x".to_owned());
        let plan = decide(Input {
            service: svc,
            tasks,
            instances: &instances,
            daemon_instances: Vec::new(),
            health_checked: &|_| false,
            lb_health: &|_| LbHealth::NotBalanced,
            now,
            new_id: &mut ids,
            new_deployment_id: &mut dids,
        });
        decided += usize::from(plan.launch.is_empty());
    }
    Ok(decided)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn controller(store: Arc<dyn Store>) -> Arc<ServiceController> {
    Arc::new(ServiceController::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(Launcher::new(store, 7200.0)),
        ControllerConfig {
            region: "us-east-1".into(),
            account_id: berth_model::DEFAULT_ACCOUNT_ID.into(),
            agent_timeout_secs: 7200.0,
            host_lost_secs: 14400.0,
        },
    ))
}

/// Waits until the controller has run no reconcile for `quiet`.
async fn settle(stats: &Stats, quiet: Duration) -> u64 {
    let mut last = stats.reconciles.load(Ordering::Relaxed);
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = stats.reconciles.load(Ordering::Relaxed);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return now;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args();
    let now = SystemClock.now();
    let counting = Arc::new(Counting {
        inner: Arc::new(RedbStore::in_memory()?),
        records: AtomicU64::new(0),
        calls: AtomicU64::new(0),
    });
    let store: Arc<dyn Store> = counting.clone();
    seed(&*store, &a, now).await?;
    println!(
        "reconcile_cost: {} services of one task, {} instances, {} rounds; load average {}",
        a.services,
        a.instances,
        a.rounds,
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );

    counting.take();
    let mut before = Vec::new();
    for _ in 0..a.rounds {
        let t = Instant::now();
        legacy_pass(&*store, now).await?;
        before.push(t.elapsed());
    }
    let (records, calls) = counting.take();
    let (b_records, b_calls) = (records / a.rounds as u64, calls / a.rounds as u64);

    let c = controller(store.clone());
    let key = Key::service("c", &format!("s{:05}", a.services / 2));
    let mut after = Vec::new();
    for _ in 0..a.rounds {
        let t = Instant::now();
        c.reconcile(&key).await.map_err(|e| e.to_string())?;
        after.push(t.elapsed());
    }
    let (records, calls) = counting.take();
    let (a_records, a_calls) = (records / a.rounds as u64, calls / a.rounds as u64);

    // Live: the real controller, one service record rewritten.
    let stop = tokio_util::sync::CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = tokio::spawn(c.clone().run_with_stats(stop.clone(), move |s| {
        let _ = tx.send(s);
    }));
    let stats = rx.await?;
    settle(&stats, Duration::from_millis(300)).await;
    counting.take();
    let start = stats.reconciles.load(Ordering::Relaxed);
    let name = format!("s{:05}", a.services / 3);
    store
        .txn(Txn::new().put(keys::service("c", &name), service_record(&name, now, 2)))
        .await?;
    let end = settle(&stats, Duration::from_millis(300)).await;
    let (l_records, l_calls) = counting.take();
    stop.cancel();
    let _ = run.await;

    let (tb, ta) = (median(before), median(after));
    println!(
        "| per service change | records read | store calls | time (median) | time vs before |"
    );
    println!("|---|---|---|---|---|");
    println!("| before: a pass over every service | {b_records} | {b_calls} | {tb:?} | 1.00x |");
    println!(
        "| after: one keyed reconcile | {a_records} | {a_calls} | {ta:?} | {:.4}x |",
        ta.as_secs_f64() / tb.as_secs_f64().max(1e-9)
    );
    println!(
        "| after, live controller: one service rewritten | {l_records} ({} reconciles) | {l_calls} | | |",
        end - start
    );
    println!(
        "records read per change: {:.1}x fewer",
        b_records as f64 / a_records.max(1) as f64
    );
    Ok(())
}
