//! The keyed controller end to end over an in-memory store: services converge, each alone.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use berth_model::{keys, Clock, SystemClock};
use berth_store::{RedbStore, Store, Txn};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{ControllerConfig, ServiceController};
use crate::launch::Launcher;
use crate::runtime::Stats;

fn controller(store: Arc<dyn Store>) -> Arc<ServiceController> {
    Arc::new(ServiceController::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(Launcher::new(store, 3600.0)),
        ControllerConfig {
            region: "us-east-1".into(),
            account_id: berth_model::DEFAULT_ACCOUNT_ID.into(),
            agent_timeout_secs: 3600.0,
            host_lost_secs: 7200.0,
        },
    ))
}

fn service(name: &str, desired: u32, now: f64) -> Vec<u8> {
    let v = json!({
        "name": name, "cluster": "c", "status": "ACTIVE", "desiredCount": desired,
        "launchType": "EC2",
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": false, "rollback": false},
            "maximumPercent": 200, "minimumHealthyPercent": 100
        },
        "deployments": [{
            "id": format!("ecs-svc/{name}"), "status": "PRIMARY", "family": "web", "revision": 1,
            "createdAt": now, "updatedAt": now, "rolloutState": "IN_PROGRESS"
        }],
        "createdAt": now, "createdBy": "test"
    });
    serde_json::to_vec(&v).expect("json")
}

async fn seed(store: &dyn Store, services: &[&str], now: f64) {
    let instance = json!({
        "id": "i1", "cluster": "c", "ec2InstanceId": "i1", "status": "ACTIVE",
        "registered": {"cpu": 100000, "memory": 100000}, "attributes": [], "tags": [],
        "versionInfo": null, "registeredAt": now, "lastSeen": now, "version": 1
    });
    let td = json!({
        "family": "web", "revision": 1, "status": "ACTIVE",
        "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 16}]
    });
    let mut txn = Txn::new()
        .put(
            keys::instance("c", "i1"),
            serde_json::to_vec(&instance).expect("json"),
        )
        .put(
            keys::taskdef("web", 1),
            serde_json::to_vec(&td).expect("json"),
        );
    for s in services {
        txn = txn.put(keys::service("c", s), service(s, 2, now));
    }
    store.txn(txn).await.expect("seeded");
}

async fn tasks_of(store: &dyn Store, name: &str) -> usize {
    store
        .list(&keys::service_tasks_of("c", name))
        .await
        .expect("lists")
        .0
        .len()
}

async fn eventually<F: std::future::Future<Output = bool>>(mut ok: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ok().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not converged in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_service_record_does_not_stop_the_others() {
    let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().expect("store"));
    let now = SystemClock.now();
    seed(&*store, &["a", "b", "c"], now).await;
    // A record that does not decode, between the good ones (keys sort `a` < `broken` < `c`).
    store
        .txn(Txn::new().put(keys::service("c", "broken"), b"{not json".to_vec()))
        .await
        .expect("written");
    let stop = CancellationToken::new();
    let (stats_tx, stats_rx) = tokio::sync::oneshot::channel::<Arc<Stats>>();
    let run = tokio::spawn(controller(store.clone()).run_with_stats(stop.clone(), |s| {
        let _ = stats_tx.send(s);
    }));
    let stats = stats_rx.await.expect("stats");
    for name in ["a", "b", "c"] {
        eventually(|| {
            let store = store.clone();
            async move { tasks_of(&*store, name).await == 2 }
        })
        .await;
    }
    // A service created after the start converges too, and the broken one keeps failing
    // on its own (retried with backoff), without tasks.
    store
        .txn(Txn::new().put(keys::service("c", "d"), service("d", 1, now)))
        .await
        .expect("written");
    eventually(|| {
        let store = store.clone();
        async move { tasks_of(&*store, "d").await == 1 }
    })
    .await;
    assert!(stats.failures.load(Ordering::Relaxed) >= 1);
    assert_eq!(tasks_of(&*store, "broken").await, 0);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("run returns once stopped")
        .expect("no panic");
}

#[tokio::test]
async fn run_returns_once_stopped() {
    let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().expect("store"));
    let stop = CancellationToken::new();
    let run = tokio::spawn(controller(store).run(stop.clone()));
    tokio::task::yield_now().await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("run returns once stopped")
        .expect("no panic");
}
