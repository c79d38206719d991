//! What secrets add to a task's start: the time from RunTask's record to the agent's poll
//! answer carrying the task, for a task definition with two secrets (an SSM SecureString and a
//! JSON key of a Secrets Manager secret, both decrypted) against the same one without, on a
//! durable (fsynced) store, alternated in one run so both see the same machine.
//!
//! `cargo run --release -p berth-ops --example secrets_start [-- ROUNDS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_model::agent::{AgentRegistration, StatusReport};
use berth_model::{HostResources, SystemClock};
use berth_ops::agent::{self, PollQuery};
use berth_ops::ecs::{clusters, taskdefs, tasks};
use berth_ops::secrets::{secretsmanager as sm, ssm};
use berth_ops::{parse_body, Ops, OpsConfig};
use serde_json::{json, Value};

fn req<T: serde::de::DeserializeOwned>(v: Value) -> anyhow::Result<T> {
    Ok(parse_body(&serde_json::to_vec(&v)?)?)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A control layer on a durable store in `dir`, with a cluster `c`, one host, an SSM
/// SecureString, a Secrets Manager secret, and the task definitions `plain` and `secret`.
async fn setup(dir: &std::path::Path) -> anyhow::Result<(Ops, String)> {
    let store: Arc<dyn berth_store::Store> =
        Arc::new(berth_store::RedbStore::open(&dir.join("berth.redb"))?);
    let ops = Ops::new(
        store,
        Arc::new(SystemClock),
        OpsConfig {
            join_secret: "bench".into(),
            ..OpsConfig::default()
        },
    );
    let ctx = ops.ctx("us-east-1");
    clusters::create(&ctx, req(json!({"clusterName": "c"}))?).await?;
    let host = agent::register(
        &ops,
        &AgentRegistration {
            cluster: "c".into(),
            instance_id: None,
            hostname: "bench".into(),
            resources: HostResources {
                cpu: 1 << 20,
                memory: 1 << 20,
                ports: vec![],
                ports_udp: vec![],
            },
            attributes: vec![],
            version_info: json!({}),
            endpoint: None,
        },
    )
    .await?;
    ssm::put(
        &ctx,
        req(json!({"Name": "/bench/db/password", "Value": "pw", "Type": "SecureString"}))?,
    )
    .await?;
    let arn = sm::create(
        &ctx,
        req(json!({"Name": "bench/api", "SecretString": "{\"key\":\"k\"}"}))?,
    )
    .await?["ARN"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for (family, secrets) in [
        ("plain", json!([])),
        (
            "secret",
            json!([
                {"name": "DB_PASSWORD", "valueFrom": "/bench/db/password"},
                {"name": "API_KEY", "valueFrom": format!("{arn}:key::")},
            ]),
        ),
    ] {
        let body = json!({"family": family, "containerDefinitions": [{
            "name": "app", "image": "busybox", "memory": 8, "secrets": secrets}]});
        taskdefs::register(&ctx, body.to_string().as_bytes()).await?;
    }
    Ok((ops, host.instance_id))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir()?;
    let (ops, instance) = setup(dir.path()).await?;
    let ctx = ops.ctx("us-east-1");
    let (mut plain, mut secret) = (Vec::new(), Vec::new());
    for i in 0..rounds * 2 {
        let family = if i % 2 == 0 { "plain" } else { "secret" };
        let t0 = Instant::now();
        let out = tasks::run(
            &ctx,
            req(json!({"cluster": "c", "taskDefinition": family}))?,
        )
        .await?;
        let id = out["tasks"][0]["taskArn"]
            .as_str()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or_default()
            .to_owned();
        let q = PollQuery {
            cluster: "c".into(),
            instance: instance.clone(),
            since: String::new(),
            wait: 0.0,
        };
        let set = agent::poll(&ops, &q, std::future::pending()).await?;
        let took = t0.elapsed();
        anyhow::ensure!(
            set.tasks.len() == 1 && (family == "plain") == set.tasks[0].secrets.is_none(),
            "unexpected poll answer"
        );
        if family == "plain" {
            plain.push(took)
        } else {
            secret.push(took)
        }
        // The task stops at once, so every round's poll carries one task.
        let report: StatusReport = serde_json::from_value(json!({
            "cluster": "c", "instanceId": instance,
            "tasks": [{"taskId": id, "lastStatus": "STOPPED",
                       "containers": [{"name": "app", "lastStatus": "STOPPED", "exitCode": 0}]}]}))?;
        agent::status(&ops, &report).await?;
    }
    let (p50, s50) = (pct(&mut plain, 0.5), pct(&mut secret, 0.5));
    let (p99, s99) = (pct(&mut plain, 0.99), pct(&mut secret, 0.99));
    println!("RunTask -> agent poll answer, {rounds} tasks each, durable store");
    println!("  without secrets:  p50 {p50:>10.3?}  p99 {p99:>10.3?}   (baseline)");
    println!("  with two secrets: p50 {s50:>10.3?}  p99 {s99:>10.3?}");
    println!(
        "  added by resolving two secrets: p50 {:.3?}, p99 {:.3?} (target < 20 ms)",
        s50.saturating_sub(p50),
        s99.saturating_sub(p99)
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "  load average: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}
