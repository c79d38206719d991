//! What the integration tests of `berth-ops` share: a control layer over a fresh in-memory
//! store with a clock the test moves, request builders for the three protocols' JSON, and
//! the few fixtures (a cluster, a task definition, an agent's host, a service) most tests
//! start from.

#![allow(dead_code)] // each test crate uses its own part of this module

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use berth_model::agent::{AgentRegistered, AgentRegistration};
use berth_model::{ApiError, Attribute, Clock, ErrorCode, HostResources};
use berth_ops::{Ctx, Ops, OpsConfig};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";
/// Where every test's clock starts (2023-11-14T22:13:20Z).
pub const T0: f64 = 1_700_000_000.0;
/// The join secret every test server has.
pub const SECRET: &str = "test-join-secret";

/// A clock that only moves when the test says so.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(t: f64) -> Self {
        Self(AtomicU64::new(t.to_bits()))
    }

    pub fn advance(&self, secs: f64) {
        let now = self.now();
        self.0.store((now + secs).to_bits(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::SeqCst))
    }
}

/// One test's control layer: its own store, its own clock.
pub struct Env {
    pub ops: Ops,
    /// The store under `ops`, for seeding what only controllers write.
    pub store: Arc<dyn berth_store::Store>,
    pub ctx: Ctx,
    pub clock: Arc<ManualClock>,
}

impl Env {
    /// A second view of the same control layer (for concurrent callers).
    pub fn ctx(&self) -> Ctx {
        self.ops.ctx(REGION)
    }
}

/// A control layer over a fresh in-memory store, its clock at [`T0`].
pub fn env() -> Env {
    env_with(|ops| ops)
}

/// Like [`env`], with the control layer adjusted by `f` (a health source, a metrics hub).
pub fn env_with(f: impl FnOnce(Ops) -> Ops) -> Env {
    let store: Arc<dyn berth_store::Store> =
        Arc::new(berth_store::RedbStore::in_memory().expect("an in-memory store"));
    env_on(store, f)
}

/// Like [`env_with`], over `store` (a wrapped store; the same store again, as a restart).
#[allow(dead_code)] // not every test binary restarts
pub fn env_on(store: Arc<dyn berth_store::Store>, f: impl FnOnce(Ops) -> Ops) -> Env {
    let clock = Arc::new(ManualClock::new(T0));
    let config = OpsConfig {
        join_secret: SECRET.to_owned(),
        ..OpsConfig::default()
    };
    let ops = f(Ops::new(store.clone(), clock.clone(), config));
    let ctx = ops.ctx(REGION);
    Env {
        ops,
        store,
        ctx,
        clock,
    }
}

/// An ECS or Application Auto Scaling request from its JSON body, as the edge parses it.
pub fn req<T: DeserializeOwned>(body: Value) -> T {
    let bytes = serde_json::to_vec(&body).expect("JSON encodes");
    berth_ops::parse_body(&bytes).expect("the request parses")
}

/// An ELBv2 request from the JSON tree the edge makes of a Query form (lists are arrays,
/// scalars are strings).
pub fn elb<T: DeserializeOwned>(params: Value) -> T {
    berth_ops::elb::parse(params).expect("the request parses")
}

/// The error code of a call that must fail.
#[track_caller]
pub fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code,
    }
}

/// The answer of a call that must succeed.
#[track_caller]
pub fn ok<T>(r: Result<T, ApiError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("expected success, got {e}"),
    }
}

pub fn cluster_arn(name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}")
}

pub fn taskdef_arn(family: &str, revision: u32) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}")
}

pub fn service_arn(cluster: &str, name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}")
}

/// Creates an ACTIVE cluster.
pub async fn cluster(ctx: &Ctx, name: &str) {
    ok(berth_ops::ecs::clusters::create(ctx, req(json!({ "clusterName": name }))).await);
}

/// A RegisterTaskDefinition body: one container with `memory` MiB and a port mapping to 80.
pub fn taskdef_body(family: &str, memory: u64) -> Vec<u8> {
    json!({
        "family": family,
        "containerDefinitions": [{
            "name": "app", "image": "busybox", "memory": memory, "cpu": 128,
            "portMappings": [{"containerPort": 80}],
        }],
    })
    .to_string()
    .into_bytes()
}

/// Registers a revision of `family` (64 MiB); answers its ARN.
pub async fn taskdef(ctx: &Ctx, family: &str) -> String {
    let out = ok(berth_ops::ecs::taskdefs::register(ctx, &taskdef_body(family, 64)).await);
    out["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .expect("an ARN")
        .to_owned()
}

/// A host's registration as its agent sends it: 2 vCPU, 4 GiB, the attributes given.
pub fn host(cluster: &str, attributes: &[(&str, &str)]) -> AgentRegistration {
    AgentRegistration {
        cluster: cluster.to_owned(),
        instance_id: None,
        hostname: "host".to_owned(),
        resources: HostResources {
            cpu: 2048,
            memory: 4096,
            ports: vec![22],
            ports_udp: Vec::new(),
        },
        attributes: attributes
            .iter()
            .map(|(n, v)| Attribute {
                name: (*n).to_owned(),
                value: Some((*v).to_owned()),
                target_type: None,
                target_id: None,
            })
            .collect(),
        version_info: json!({"agentVersion": "test"}),
        endpoint: Some("127.0.0.1:9999".to_owned()),
    }
}

/// Registers a host in `cluster` through the agent protocol.
pub async fn agent(env: &Env, cluster: &str) -> AgentRegistered {
    ok(berth_ops::agent::register(&env.ops, &host(cluster, &[])).await)
}

/// Creates a REPLICA service of `taskdef` with `desired` tasks.
pub async fn service(ctx: &Ctx, cluster: &str, name: &str, taskdef: &str, desired: i64) -> Value {
    ok(berth_ops::ecs::services::create(
        ctx,
        req(json!({
            "cluster": cluster, "serviceName": name, "taskDefinition": taskdef,
            "desiredCount": desired,
        })),
    )
    .await)
}

/// Runs one task of `taskdef` in `cluster`; answers the task as RunTask shows it.
pub async fn run_task(ctx: &Ctx, cluster: &str, taskdef: &str) -> Value {
    let out = ok(berth_ops::ecs::tasks::run(
        ctx,
        req(json!({"cluster": cluster, "taskDefinition": taskdef})),
    )
    .await);
    assert_eq!(out["failures"], json!([]), "{out}");
    out["tasks"][0].clone()
}

/// The strings of a JSON array.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}
