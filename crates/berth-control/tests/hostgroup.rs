//! The host group controller against the in-memory store and a fake provider: hosts launched
//! up to desired, put in service once their agent registers, replaced when the provider loses
//! them or when they never register, and adopted (never started twice) by a fresh controller
//! after a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_control::hostgroup::{
    HostError, HostGroupConfig, HostGroupController, HostProvider, HostSpec,
};
use berth_model::hostgroup::{HostGroup, HostRecord, LaunchConfiguration, ATTR_HOST_ID};
use berth_model::{keys, Clock, ContainerInstance};
use berth_store::{RedbStore, Store, StoreExt, Txn};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::json;

struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::SeqCst))
    }
}

impl TestClock {
    fn advance(&self, secs: f64) {
        self.0
            .store((self.now() + secs).to_bits(), Ordering::SeqCst);
    }
}

/// Hosts are entries in a map: handle -> (instance id, alive).
#[derive(Default)]
struct FakeProvider {
    hosts: Mutex<HashMap<String, (String, bool)>>,
    created: AtomicU64,
}

impl FakeProvider {
    fn live(&self) -> usize {
        let m = self.hosts.lock().expect("lock");
        m.values().filter(|(_, a)| *a).count()
    }
    fn kill(&self, instance_id: &str) {
        let mut m = self.hosts.lock().expect("lock");
        for (id, alive) in m.values_mut() {
            if id == instance_id {
                *alive = false;
            }
        }
    }
}

impl HostProvider for FakeProvider {
    fn create<'a>(&'a self, spec: &'a HostSpec) -> BoxFuture<'a, Result<String, HostError>> {
        async move {
            let n = self.created.fetch_add(1, Ordering::SeqCst);
            let handle = format!("fake-{n}");
            self.hosts
                .lock()
                .expect("lock")
                .insert(handle.clone(), (spec.instance_id.clone(), true));
            Ok(handle)
        }
        .boxed()
    }
    fn destroy<'a>(&'a self, handle: &'a str) -> BoxFuture<'a, Result<(), HostError>> {
        async move {
            self.hosts.lock().expect("lock").remove(handle);
            Ok(())
        }
        .boxed()
    }
    fn alive<'a>(&'a self, handle: &'a str) -> BoxFuture<'a, Result<bool, HostError>> {
        async move {
            Ok(self
                .hosts
                .lock()
                .expect("lock")
                .get(handle)
                .is_some_and(|(_, a)| *a))
        }
        .boxed()
    }
}

const T0: f64 = 1_700_000_000.0;

fn controller(
    store: &Arc<dyn Store>,
    clock: &Arc<TestClock>,
    provider: &Arc<FakeProvider>,
) -> HostGroupController {
    let mut providers: HashMap<String, Arc<dyn HostProvider>> = HashMap::new();
    providers.insert("fake".into(), provider.clone());
    HostGroupController::new(
        store.clone(),
        clock.clone(),
        providers,
        HostGroupConfig {
            default_provider: "fake".into(),
            server_url: "http://127.0.0.1:1".into(),
            join_token: Arc::new(|c: &str| format!("token-{c}")),
            period: Duration::from_millis(10),
            drain_timeout: 60.0,
            agent_timeout: 1000.0,
        },
    )
}

async fn put<T: serde::Serialize>(store: &Arc<dyn Store>, key: String, v: &T) {
    store
        .txn(Txn::new().put(key, serde_json::to_vec(v).expect("json")))
        .await
        .expect("store");
}

async fn hosts(store: &Arc<dyn Store>) -> Vec<HostRecord> {
    store
        .list_json::<HostRecord>(&keys::hg_hosts_of("g"))
        .await
        .expect("store")
        .into_iter()
        .map(|(_, h, _)| h)
        .collect()
}

/// Registers a connected container instance for the host `instance_id`.
async fn register_agent(store: &Arc<dyn Store>, instance_id: &str, now: f64) {
    let id = format!("ci-{instance_id}");
    let ci: ContainerInstance = serde_json::from_value(json!({
        "id": id, "cluster": "default", "ec2InstanceId": instance_id, "status": "ACTIVE",
        "registered": {"cpu": 2048, "memory": 2048},
        "attributes": [{"name": ATTR_HOST_ID, "value": instance_id}],
        "registeredAt": now, "lastSeen": now, "version": 1,
    }))
    .expect("instance");
    put(store, keys::instance("default", &id), &ci).await;
}

async fn setup(store: &Arc<dyn Store>) {
    let lc = LaunchConfiguration {
        launch_configuration_name: "lc".into(),
        launch_configuration_arn: "arn:lc".into(),
        image_id: "berth-host".into(),
        instance_type: "t3.small".into(),
        user_data: None,
        created_time: T0,
    };
    put(store, keys::hg_launch_config("lc"), &lc).await;
    let group: HostGroup = serde_json::from_value(json!({
        "AutoScalingGroupName": "g", "AutoScalingGroupARN": "arn:g", "LaunchConfigurationName": "lc",
        "MinSize": 0, "MaxSize": 5, "DesiredCapacity": 2, "DefaultCooldown": 300,
        "HealthCheckGracePeriod": 60, "HealthCheckType": "EC2", "TerminationPolicies": ["Default"],
        "NewInstancesProtectedFromScaleIn": false, "AvailabilityZones": ["us-east-1a"],
        "Cluster": "default", "Provider": "", "CreatedTime": T0,
    }))
    .expect("group");
    put(store, keys::host_group("g"), &group).await;
}

#[tokio::test]
async fn hosts_launch_go_in_service_are_replaced_and_are_adopted_after_a_restart() {
    let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().expect("store"));
    let clock = Arc::new(TestClock(AtomicU64::new(T0.to_bits())));
    let provider = Arc::new(FakeProvider::default());
    setup(&store).await;

    let c = controller(&store, &clock, &provider);
    c.pass().await.expect("pass");
    let hs = hosts(&store).await;
    assert_eq!(hs.len(), 2);
    assert!(hs
        .iter()
        .all(|h| h.lifecycle_state == "Pending" && h.provider_handle.is_some()));
    assert_eq!(provider.live(), 2);

    for h in &hs {
        register_agent(&store, &h.instance_id, clock.now()).await;
    }
    c.pass().await.expect("pass");
    assert!(hosts(&store)
        .await
        .iter()
        .all(|h| h.lifecycle_state == "InService"));

    // A fresh controller (a restarted server) adopts them: nothing new is started.
    let c = controller(&store, &clock, &provider);
    c.pass().await.expect("pass");
    c.pass().await.expect("pass");
    assert_eq!(provider.created.load(Ordering::SeqCst), 2);

    // The provider loses one: it is taken out of service, destroyed and replaced, and its
    // container instance is deregistered.
    let victim = hs[0].instance_id.clone();
    provider.kill(&victim);
    c.pass().await.expect("pass");
    c.pass().await.expect("pass");
    let now_hosts = hosts(&store).await;
    assert_eq!(now_hosts.len(), 2);
    assert!(now_hosts.iter().all(|h| h.instance_id != victim));
    assert_eq!(provider.live(), 2);
    let victim_ci = store
        .get_json::<ContainerInstance>(&keys::instance("default", &format!("ci-{victim}")))
        .await
        .expect("store")
        .expect("instance")
        .0;
    assert_eq!(victim_ci.status, berth_model::InstanceStatus::Inactive);

    // The replacement never registers: past the grace period it is replaced in turn.
    let replacement = now_hosts
        .iter()
        .find(|h| h.lifecycle_state == "Pending")
        .expect("a pending replacement")
        .instance_id
        .clone();
    clock.advance(61.0);
    c.pass().await.expect("pass");
    c.pass().await.expect("pass");
    let last = hosts(&store).await;
    assert_eq!(last.len(), 2);
    assert!(last.iter().all(|h| h.instance_id != replacement));
    assert_eq!(provider.live(), 2);
}
