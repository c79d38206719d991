use super::*;
use berth_model::{keys, Attribute, DesiredStatus, HostResources, Task};
use berth_store::{KeyValue, RedbStore, Txn, TxnResult};

use crate::launch::instance_views;
use crate::snapshot::ClusterSnapshot;

const NOW: f64 = 100.0;
const TIMEOUT: f64 = 30.0;

fn arn_of(id: &str) -> String {
    format!("arn:aws:ecs:r:1:container-instance/c/{id}")
}

fn inst(id: &str, zone: &str) -> ContainerInstance {
    ContainerInstance {
        id: id.into(),
        cluster: "c".into(),
        ec2_instance_id: format!("h-{id}"),
        status: InstanceStatus::Active,
        status_reason: None,
        registered: HostResources {
            cpu: 4096,
            memory: 8192,
            ports: vec![22],
            ports_udp: vec![53],
        },
        attributes: vec![Attribute {
            name: "ecs.availability-zone".into(),
            value: Some(zone.into()),
            target_type: None,
            target_id: None,
        }],
        tags: vec![],
        version_info: serde_json::json!({"agentVersion": "1.0"}),
        registered_at: 1.0,
        last_seen: NOW,
        version: 1,
        agent_endpoint: None,
    }
}

fn task(id: &str, on: Option<&str>, status: TaskStatus, group: &str, port: Option<u16>) -> Task {
    Task {
        id: id.into(),
        cluster: "c".into(),
        family: "f".into(),
        revision: 1,
        container_instance_id: on.map(str::to_owned),
        last_status: status,
        desired_status: DesiredStatus::Running,
        launch_type: "EC2".into(),
        capacity_provider_name: None,
        cpu: 256,
        memory: 512,
        host_ports: port
            .map(|p| vec![(p, TransportProtocol::Tcp)])
            .unwrap_or_default(),
        containers: vec![],
        overrides: Default::default(),
        group: Some(group.into()),
        started_by: None,
        tags: vec![],
        created_at: 0.0,
        started_at: None,
        stopping_at: None,
        stopped_at: None,
        execution_stopped_at: None,
        pull_started_at: None,
        pull_stopped_at: None,
        stop_code: None,
        stopped_reason: None,
        health_status: Default::default(),
        version: 1,
        stats: None,
        stop_after_drain: None,
        failed_health_checks: false,
        eni: None,
        fargate: None,
    }
}

fn event(kind: EventKind, key: String, value: Vec<u8>, rev: Revision) -> WatchEvent {
    WatchEvent {
        kind,
        kv: KeyValue {
            key,
            value,
            create_revision: 1,
            mod_revision: rev,
        },
    }
}

/// The records a sequence of writes leaves, as the store would list them.
#[derive(Default)]
struct Records {
    instances: BTreeMap<String, (ContainerInstance, Revision)>,
    tasks: BTreeMap<String, (Task, Revision)>,
}

impl Records {
    fn snapshot(&self) -> ClusterSnapshot {
        ClusterSnapshot {
            instances: self.instances.values().cloned().collect(),
            tasks: self.tasks.values().cloned().collect(),
        }
    }
}

/// Applies a write to both the index and the records.
struct Both {
    index: Indexes,
    records: Records,
    rev: Revision,
}

impl Both {
    fn new() -> Self {
        Self {
            index: Indexes::default(),
            records: Records::default(),
            rev: 0,
        }
    }
    fn put_instance(&mut self, i: ContainerInstance) {
        self.rev += 1;
        let bytes = serde_json::to_vec(&i).unwrap();
        let key = keys::instance("c", &i.id);
        self.index
            .apply(&event(EventKind::Put, key, bytes, self.rev));
        self.records.instances.insert(i.id.clone(), (i, self.rev));
    }
    fn delete_instance(&mut self, id: &str) {
        self.rev += 1;
        let key = keys::instance("c", id);
        self.index
            .apply(&event(EventKind::Delete, key, vec![], self.rev));
        self.records.instances.remove(id);
    }
    fn put_task(&mut self, t: Task) {
        self.rev += 1;
        let bytes = serde_json::to_vec(&t).unwrap();
        let key = keys::task("c", &t.id);
        self.index
            .apply(&event(EventKind::Put, key, bytes, self.rev));
        self.records.tasks.insert(t.id.clone(), (t, self.rev));
    }
    fn delete_task(&mut self, id: &str) {
        self.rev += 1;
        let key = keys::task("c", id);
        self.index
            .apply(&event(EventKind::Delete, key, vec![], self.rev));
        self.records.tasks.remove(id);
    }
    /// The index's views equal those built from the records.
    fn check(&mut self) {
        let want = instance_views(&self.records.snapshot(), NOW, TIMEOUT, &arn_of);
        let got = self
            .index
            .cluster("c")
            .views(NOW, TIMEOUT, &arn_of)
            .to_vec();
        assert_eq!(got, want);
    }
}

#[test]
fn views_follow_task_stop_start_and_host_removal() {
    let mut b = Both::new();
    b.put_instance(inst("i1", "a"));
    b.put_instance(inst("i2", "b"));
    b.check();
    b.put_task(task(
        "t1",
        Some("i1"),
        TaskStatus::Pending,
        "service:web",
        Some(80),
    ));
    b.put_task(task(
        "t2",
        Some("i1"),
        TaskStatus::Running,
        "service:web",
        None,
    ));
    b.put_task(task(
        "t3",
        Some("i2"),
        TaskStatus::Provisioning,
        "service:db",
        Some(80),
    ));
    b.put_task(task(
        "t4",
        None,
        TaskStatus::Provisioning,
        "service:db",
        None,
    ));
    b.check();
    let v = b.index.cluster("c").views(NOW, TIMEOUT, &arn_of)[0].clone();
    assert_eq!(v.remaining, Resources::new(4096 - 512, 8192 - 1024));
    assert_eq!(v.task_groups.get("service:web"), Some(&2));
    assert_eq!((v.running_tasks, v.pending_tasks), (1, 1));
    // A task starts, then stops: its share comes back.
    b.put_task(task(
        "t1",
        Some("i1"),
        TaskStatus::Running,
        "service:web",
        Some(80),
    ));
    b.check();
    b.put_task(task(
        "t1",
        Some("i1"),
        TaskStatus::Stopped,
        "service:web",
        Some(80),
    ));
    b.check();
    let v = b.index.cluster("c").views(NOW, TIMEOUT, &arn_of)[0].clone();
    assert!(!v.ports_in_use.contains(&(80, TransportProtocol::Tcp)));
    assert_eq!(v.task_groups.get("service:web"), Some(&1));
    // A waiting task is placed; a stopped one is reaped.
    b.put_task(task(
        "t4",
        Some("i1"),
        TaskStatus::Pending,
        "service:db",
        None,
    ));
    b.delete_task("t1");
    b.check();
    // The host is deregistered (INACTIVE: no view), its tasks stop, then it is removed.
    let mut gone = inst("i2", "b");
    gone.status = InstanceStatus::Inactive;
    b.put_instance(gone);
    b.check();
    b.put_task(task(
        "t3",
        Some("i2"),
        TaskStatus::Stopped,
        "service:db",
        Some(80),
    ));
    b.delete_instance("i2");
    b.check();
    assert_eq!(b.index.cluster("c").views(NOW, TIMEOUT, &arn_of).len(), 1);
    // A draining host keeps its view (not active); an agent gone quiet is not connected.
    let mut draining = inst("i1", "a");
    draining.status = InstanceStatus::Draining;
    draining.last_seen = NOW - 2.0 * TIMEOUT;
    b.put_instance(draining);
    b.check();
    let v = &b.index.cluster("c").views(NOW, TIMEOUT, &arn_of)[0];
    assert!(!v.active && !v.connected);
}

#[test]
fn views_match_the_snapshot_over_random_writes() {
    let mut b = Both::new();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut draw = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let statuses = [
        TaskStatus::Provisioning,
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::Stopped,
    ];
    for step in 0..2000 {
        let host = format!("i{}", draw(6));
        match draw(10) {
            0 => {
                let mut i = inst(&host, if draw(2) == 0 { "a" } else { "b" });
                if draw(4) == 0 {
                    i.status = InstanceStatus::Inactive;
                }
                b.put_instance(i);
            }
            1 => b.delete_instance(&host),
            2 => b.delete_task(&format!("t{}", draw(40))),
            _ => {
                let on = (draw(5) != 0).then_some(host.as_str());
                let status = statuses[draw(4) as usize];
                let group = format!("service:s{}", draw(3));
                let port = (draw(3) == 0).then_some(8000 + draw(3) as u16);
                b.put_task(task(&format!("t{}", draw(40)), on, status, &group, port));
            }
        }
        if step % 50 == 0 {
            b.check();
        }
    }
    b.check();
}

#[test]
fn an_older_write_replayed_after_the_list_changes_nothing() {
    let mut c = ClusterIndex::default();
    let t = |status| serde_json::to_vec(&task("t", Some("i"), status, "g", None)).unwrap();
    c.put_instance(5, inst("i", "a"));
    c.put_task("tasks/c/t", 9, &t(TaskStatus::Running));
    c.put_task("tasks/c/t", 7, &t(TaskStatus::Stopped));
    c.delete_task("t", 8);
    c.delete_instance("i", 4);
    let v = &c.views(NOW, TIMEOUT, &arn_of)[0];
    assert_eq!(v.running_tasks, 1);
    assert_eq!(split_key("tasks/c/t"), Some(("tasks", "c", "t")));
    assert_eq!(split_key("taskdefs/f/1"), None);
    assert_eq!(split_key("placement/c"), None);
}

#[tokio::test]
async fn the_index_follows_the_store() {
    let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().expect("store"));
    let write = |key: String, value: Vec<u8>| {
        let store = Arc::clone(&store);
        async move {
            match store.txn(Txn::new().put(key, value)).await.expect("txn") {
                TxnResult::Committed { revision } => revision,
                TxnResult::Conflict { .. } => panic!("conflict"),
            }
        }
    };
    // Written before the index starts: it is built from the list.
    write(keys::instance("c", "i1"), json(&inst("i1", "a"))).await;
    let t1 = task("t1", Some("i1"), TaskStatus::Running, "g", Some(80));
    write(keys::task("c", "t1"), json(&t1)).await;
    let index = Arc::new(PlacementIndex::default());
    index.start(&store);
    let compare = |rev: Revision| {
        let store = Arc::clone(&store);
        let index = Arc::clone(&index);
        async move {
            let got = index
                .read("c", rev, |c| c.views(NOW, TIMEOUT, &arn_of).to_vec())
                .await
                .expect("caught up");
            let snap = ClusterSnapshot::load(&*store, "c").await.expect("snapshot");
            assert_eq!(got, instance_views(&snap, NOW, TIMEOUT, &arn_of));
            got
        }
    };
    let rev = store.revision().await.expect("revision");
    assert_eq!(compare(rev).await[0].running_tasks, 1);
    // Written after: followed through the watch.
    write(keys::instance("c", "i2"), json(&inst("i2", "b"))).await;
    let mut stopped = t1.clone();
    stopped.last_status = TaskStatus::Stopped;
    write(keys::task("c", "t1"), json(&stopped)).await;
    let t2 = task("t2", Some("i2"), TaskStatus::Pending, "g", Some(80));
    let rev = write(keys::task("c", "t2"), json(&t2)).await;
    let views = compare(rev).await;
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].running_tasks, 0);
    assert_eq!(views[1].pending_tasks, 1);
    store
        .txn(Txn::new().delete(keys::instance("c", "i1")))
        .await
        .expect("txn");
    let rev = store.revision().await.expect("revision");
    assert_eq!(compare(rev).await.len(), 1);
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("encodes")
}
