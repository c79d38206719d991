//! The read paths at scale: DescribeServices, ListTasks and DescribeContainerInstances answer
//! from the task index (kept from a store watch), never by listing the cluster's tasks, and
//! their answers follow every write at once, also after a restart.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use berth_model::keys;
use berth_ops::ecs::{instances, services, tasks};
use berth_ops::Ctx;
use berth_store::{
    BoxFuture, BoxStream, KeyValue, Revision, Store, StoreError, Txn, TxnResult, WatchEvent,
};
use serde_json::{json, Value};
use support::{agent, cluster, env_on, ok, req, service, taskdef};

/// A store that counts the lists of task records.
struct Counting {
    inner: Arc<dyn Store>,
    task_lists: AtomicUsize,
}

impl Store for Counting {
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>, StoreError>> {
        self.inner.get(key)
    }
    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>> {
        if prefix.starts_with(keys::TASKS) {
            self.task_lists.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.list(prefix)
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

/// Writes a task of service `s`'s deployment `d` on `instance`, as the controller would.
async fn put_task(store: &dyn Store, id: &str, d: &str, instance: &str, last: &str, want: &str) {
    let t = json!({
        "id": id, "cluster": "c", "family": "web", "revision": 1,
        "containerInstanceId": instance, "lastStatus": last, "desiredStatus": want,
        "launchType": "EC2", "cpu": 128, "memory": 256, "createdAt": 1.0, "containers": [],
        "group": "service:s", "startedBy": d,
    });
    let bytes = serde_json::to_vec(&t).expect("encodes");
    store
        .txn(Txn::new().put(keys::task("c", id), bytes))
        .await
        .expect("a write");
}

async fn counts(ctx: &Ctx) -> (i64, i64) {
    let out = ok(services::describe(ctx, req(json!({"cluster": "c", "services": ["s"]}))).await);
    let s = &out["services"][0];
    (
        s["runningCount"].as_i64().expect("a count"),
        s["pendingCount"].as_i64().expect("a count"),
    )
}

async fn listed(ctx: &Ctx, desired: &str) -> usize {
    let out = ok(tasks::list(ctx, req(json!({"cluster": "c", "desiredStatus": desired}))).await);
    out["taskArns"].as_array().map_or(0, Vec::len)
}

async fn instance(ctx: &Ctx, id: &str) -> Value {
    let out = ok(instances::describe(
        ctx,
        req(json!({"cluster": "c", "containerInstances": [id]})),
    )
    .await);
    out["containerInstances"][0].clone()
}

#[tokio::test]
async fn describe_and_list_follow_writes_without_listing_tasks() {
    let inner: Arc<dyn Store> =
        Arc::new(berth_store::RedbStore::in_memory().expect("an in-memory store"));
    let store = Arc::new(Counting {
        inner: inner.clone(),
        task_lists: AtomicUsize::new(0),
    });
    let env = env_on(store.clone(), |ops| ops);
    cluster(&env.ctx, "c").await;
    let host = agent(&env, "c").await.instance_id;
    let td = taskdef(&env.ctx, "web").await;
    let svc = service(&env.ctx, "c", "s", &td, 3).await;
    let d = svc["service"]["deployments"][0]["id"]
        .as_str()
        .expect("a deployment")
        .to_owned();
    for (id, last) in [("t1", "RUNNING"), ("t2", "RUNNING"), ("t3", "PENDING")] {
        put_task(&*inner, id, &d, &host, last, "RUNNING").await;
    }
    assert_eq!(counts(&env.ctx).await, (2, 1));
    let lists = store.task_lists.load(Ordering::SeqCst);
    assert_eq!(listed(&env.ctx, "RUNNING").await, 3);
    let i = instance(&env.ctx, &host).await;
    assert_eq!(
        (
            i["runningTasksCount"].as_i64(),
            i["pendingTasksCount"].as_i64()
        ),
        (Some(2), Some(1))
    );
    // Each answer follows the last write, with no wait.
    put_task(&*inner, "t1", &d, &host, "RUNNING", "STOPPED").await;
    put_task(&*inner, "t3", &d, &host, "RUNNING", "RUNNING").await;
    assert_eq!(counts(&env.ctx).await, (2, 0));
    assert_eq!(listed(&env.ctx, "STOPPED").await, 1);
    put_task(&*inner, "t1", &d, &host, "STOPPED", "STOPPED").await;
    let i = instance(&env.ctx, &host).await;
    assert_eq!(i["runningTasksCount"].as_i64(), Some(2));
    assert_eq!(
        store.task_lists.load(Ordering::SeqCst),
        lists,
        "a read path listed the tasks"
    );
    // A restarted server (a new control layer over the same store) finds the same counts.
    let again = env_on(store.clone(), |ops| ops);
    assert_eq!(counts(&again.ctx).await, (2, 0));
    assert_eq!(listed(&again.ctx, "RUNNING").await, 2);
}
