//! `berth service create|ls|show|scale|deploy|rm`, and `deploy --wait` with live progress.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::{print, s, Common, Output};
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
    /// The cluster.
    #[arg(long, global = true, default_value = "default")]
    cluster: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Create a service running COUNT copies of a task definition.
    Create {
        name: String,
        task_definition: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Run one task on every instance instead (DAEMON).
        #[arg(long)]
        daemon: bool,
        /// Roll back automatically when a deployment's tasks keep failing.
        #[arg(long)]
        circuit_breaker: bool,
        #[arg(long)]
        min_healthy_percent: Option<u32>,
        #[arg(long)]
        max_percent: Option<u32>,
        #[arg(long)]
        grace_period: Option<u32>,
    },
    /// List services with their counts.
    Ls,
    /// Show a service, its deployments and latest events.
    Show {
        name: String,
        #[arg(long, default_value_t = 10)]
        events: usize,
    },
    /// Change the desired count.
    Scale { name: String, count: u32 },
    /// Deploy a task definition (or redeploy the current one with --force).
    Deploy {
        name: String,
        task_definition: Option<String>,
        #[arg(long)]
        force: bool,
        /// Follow the rollout until it completes or fails.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Delete a service (scaling it to zero first with --force).
    Rm {
        name: String,
        #[arg(long)]
        force: bool,
    },
}

const HEADER: &[&str] = &[
    "SERVICE",
    "STATUS",
    "DESIRED",
    "RUNNING",
    "PENDING",
    "TASK DEFINITION",
    "ROLLOUT",
];

fn short(v: &Value) -> String {
    let a = s(v);
    a.rsplit('/').next().unwrap_or(&a).to_owned()
}

fn rows(list: &Value) -> Vec<Vec<String>> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            vec![
                s(&v["serviceName"]),
                s(&v["status"]),
                s(&v["desiredCount"]),
                s(&v["runningCount"]),
                s(&v["pendingCount"]),
                short(&v["taskDefinition"]),
                s(&v["deployments"][0]["rolloutState"]),
            ]
        })
        .collect()
}

async fn describe(c: &Client, cluster: &str, name: &str) -> Result<Value> {
    let d = c
        .ecs(
            "DescribeServices",
            &json!({"cluster": cluster, "services": [name]}),
        )
        .await?;
    if let Some(f) = d["failures"].as_array().and_then(|f| f.first()) {
        bail!("{}: {}", s(&f["arn"]), s(&f["reason"]));
    }
    Ok(d["services"][0].clone())
}

fn show_detail(svc: &Value, events: usize) {
    println!(
        "{} ({}) desired {} running {} pending {}",
        s(&svc["serviceName"]),
        s(&svc["status"]),
        s(&svc["desiredCount"]),
        s(&svc["runningCount"]),
        s(&svc["pendingCount"])
    );
    for d in svc["deployments"].as_array().into_iter().flatten() {
        println!(
            "  {:8} {:28} {:14} desired {} running {} pending {} failed {} {}",
            s(&d["status"]),
            s(&d["id"]),
            short(&d["taskDefinition"]),
            s(&d["desiredCount"]),
            s(&d["runningCount"]),
            s(&d["pendingCount"]),
            s(&d["failedTasks"]),
            s(&d["rolloutState"]),
        );
    }
    for e in svc["events"].as_array().into_iter().flatten().take(events) {
        println!("  - {}", s(&e["message"]));
    }
}

/// Follows a deployment until it completes (Ok) or fails (Err), printing each change: the
/// deployments' counts when they move, and the service's events from `since` on.
async fn follow(
    c: &Client,
    cluster: &str,
    name: &str,
    deployment: &str,
    since: f64,
    timeout: Duration,
) -> Result<()> {
    let start = Instant::now();
    let mut last = String::new();
    let mut seen_events = std::collections::HashSet::new();
    loop {
        let svc = describe(c, cluster, name).await?;
        let events = svc["events"].as_array().cloned().unwrap_or_default();
        for e in events.iter().rev() {
            if e["createdAt"].as_f64().unwrap_or(0.0) >= since && seen_events.insert(s(&e["id"])) {
                println!("  event: {}", s(&e["message"]));
            }
        }
        let deps = svc["deployments"].as_array().cloned().unwrap_or_default();
        let line = deps
            .iter()
            .map(|d| {
                format!(
                    "{} {} {}/{} running{}",
                    s(&d["status"]),
                    short(&d["taskDefinition"]),
                    s(&d["runningCount"]),
                    s(&d["desiredCount"]),
                    match d["pendingCount"].as_u64() {
                        Some(p) if p > 0 => format!(", {p} pending"),
                        _ => String::new(),
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(" | ");
        if line != last {
            println!("[{:>5.1}s] {line}", start.elapsed().as_secs_f64());
            last = line;
        }
        let mine = deps.iter().find(|d| s(&d["id"]) == deployment);
        let state = mine.map(|d| s(&d["rolloutState"]));
        if state.as_deref() == Some("COMPLETED") && deps.len() == 1 {
            println!("deployment {deployment} completed");
            return Ok(());
        }
        if mine.is_none() || state.as_deref() == Some("FAILED") {
            // Failed (the circuit breaker), perhaps rolled back; or replaced by another one.
            let reason = mine
                .map(|d| s(&d["rolloutStateReason"]))
                .filter(|r| !r.is_empty())
                .or_else(|| {
                    events.iter().find_map(|e| {
                        let m = s(&e["message"]);
                        m.contains(&format!("(deployment {deployment}) deployment failed: "))
                            .then(|| {
                                m.rsplit("deployment failed: ")
                                    .next()
                                    .unwrap_or("")
                                    .to_owned()
                            })
                    })
                });
            let other = deps
                .iter()
                .find(|d| s(&d["status"]) == "PRIMARY" && s(&d["id"]) != deployment)
                .map(|d| format!("{} ({})", s(&d["id"]), short(&d["taskDefinition"])));
            match (reason, other) {
                (Some(why), Some(now)) => {
                    bail!("deployment {deployment} failed: {why} The service rolled back to {now}.")
                }
                (Some(why), None) => bail!("deployment {deployment} failed: {why}"),
                (None, Some(now)) => bail!("deployment {deployment} was replaced by {now}"),
                (None, None) => bail!("deployment {deployment} is gone"),
            }
        }
        if start.elapsed() > timeout {
            bail!("timed out waiting for deployment {deployment}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn run(a: Args) -> Result<()> {
    let c = Client::from_env(&a.common.client)?;
    let out = a.common.output;
    let cluster = a.cluster.clone();
    match a.cmd {
        Cmd::Create {
            name,
            task_definition,
            count,
            daemon,
            circuit_breaker,
            min_healthy_percent,
            max_percent,
            grace_period,
        } => {
            let mut body =
                json!({"cluster": cluster, "serviceName": name, "taskDefinition": task_definition});
            if daemon {
                body["schedulingStrategy"] = json!("DAEMON");
            } else {
                body["desiredCount"] = json!(count);
            }
            let mut cfg = json!({});
            if circuit_breaker {
                cfg["deploymentCircuitBreaker"] = json!({"enable": true, "rollback": true});
            }
            if let Some(m) = min_healthy_percent {
                cfg["minimumHealthyPercent"] = json!(m);
            }
            if let Some(m) = max_percent {
                cfg["maximumPercent"] = json!(m);
            }
            body["deploymentConfiguration"] = cfg;
            if let Some(g) = grace_period {
                body["healthCheckGracePeriodSeconds"] = json!(g);
            }
            let r = c.ecs("CreateService", &body).await?;
            print(out, &r, HEADER, rows(&json!([r["service"]])));
        }
        Cmd::Ls => {
            let l = c.ecs("ListServices", &json!({"cluster": cluster})).await?;
            let arns = l["serviceArns"].as_array().cloned().unwrap_or_default();
            let mut all = Vec::new();
            for chunk in arns.chunks(10) {
                let d = c
                    .ecs(
                        "DescribeServices",
                        &json!({"cluster": cluster, "services": chunk}),
                    )
                    .await?;
                all.extend(d["services"].as_array().cloned().unwrap_or_default());
            }
            let all = Value::Array(all);
            print(out, &all, HEADER, rows(&all));
        }
        Cmd::Show { name, events } => {
            let svc = describe(&c, &cluster, &name).await?;
            match out {
                Output::Json => print(out, &svc, HEADER, vec![]),
                Output::Table => show_detail(&svc, events),
            }
        }
        Cmd::Scale { name, count } => {
            let r = c
                .ecs(
                    "UpdateService",
                    &json!({"cluster": cluster, "service": name, "desiredCount": count}),
                )
                .await?;
            print(out, &r, HEADER, rows(&json!([r["service"]])));
        }
        Cmd::Deploy {
            name,
            task_definition,
            force,
            wait,
            timeout,
        } => {
            let mut body = json!({"cluster": cluster, "service": name, "forceNewDeployment": force || task_definition.is_none()});
            if let Some(t) = task_definition {
                body["taskDefinition"] = json!(t);
            }
            let r = c.ecs("UpdateService", &body).await?;
            let dep = s(&r["service"]["deployments"][0]["id"]);
            let since = r["service"]["deployments"][0]["createdAt"]
                .as_f64()
                .unwrap_or(0.0);
            print(out, &r, HEADER, rows(&json!([r["service"]])));
            if wait {
                follow(
                    &c,
                    &cluster,
                    &name,
                    &dep,
                    since,
                    Duration::from_secs(timeout),
                )
                .await?;
            }
        }
        Cmd::Rm { name, force } => {
            let r = c
                .ecs(
                    "DeleteService",
                    &json!({"cluster": cluster, "service": name, "force": force}),
                )
                .await?;
            print(out, &r, HEADER, rows(&json!([r["service"]])));
        }
    }
    Ok(())
}
