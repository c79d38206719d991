//! `berth service create|ls|show|scale|deploy|rm|autoscale`, and `deploy --wait` with live progress.

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
    /// Scale a service automatically between MIN and MAX tasks, tracking target metrics.
    Autoscale(AutoscaleArgs),
    /// Recent CPU, memory and request series of a service, as terminal sparklines.
    Metrics {
        name: String,
        /// How far back, in minutes (up to 60).
        #[arg(long, default_value_t = 15)]
        minutes: u32,
    },
}

/// A one-line chart of `points`' values, scaled between their min and max.
fn sparkline(points: &[Value]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let vals: Vec<f64> = points.iter().filter_map(|p| p[1].as_f64()).collect();
    let (lo, hi) = vals
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    vals.iter()
        .map(|v| {
            let i = if hi > lo {
                ((v - lo) / (hi - lo) * 7.0).round() as usize
            } else {
                0
            };
            BARS[i.min(7)]
        })
        .collect()
}

async fn metrics(c: &Client, cluster: &str, name: &str, minutes: u32, out: Output) -> Result<()> {
    let r = c
        .berth(
            "GetServiceMetrics",
            &json!({"cluster": cluster, "service": name, "minutes": minutes}),
        )
        .await?;
    if let Output::Json = out {
        println!("{r}");
        return Ok(());
    }
    let mut rows: Vec<(String, &Value)> = vec![
        ("CPUUtilization %".into(), &r["CPUUtilization"]),
        ("MemoryUtilization %".into(), &r["MemoryUtilization"]),
    ];
    for tg in r["targetGroups"].as_array().into_iter().flatten() {
        let short = tg["targetGroupArn"]
            .as_str()
            .unwrap_or("")
            .rsplit(':')
            .next()
            .unwrap_or("");
        rows.push((
            format!("RequestCountPerTarget {short}"),
            &tg["RequestCountPerTarget"],
        ));
    }
    println!(
        "service {name}: last {minutes} min, one point per {} s",
        r["resolutionSeconds"]
    );
    for (label, series) in rows {
        let pts = series.as_array().cloned().unwrap_or_default();
        let vals: Vec<f64> = pts.iter().filter_map(|p| p[1].as_f64()).collect();
        match vals.last() {
            None => println!("{label:<40} (no data yet)"),
            Some(last) => {
                let max = vals.iter().copied().fold(f64::MIN, f64::max);
                println!(
                    "{label:<40} {}  now {last:.1}  max {max:.1}",
                    sparkline(&pts)
                );
            }
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
struct AutoscaleArgs {
    name: String,
    /// The fewest tasks.
    #[arg(long)]
    min: u32,
    /// The most tasks.
    #[arg(long)]
    max: u32,
    /// Keep average CPU utilisation at this percentage.
    #[arg(long)]
    cpu: Option<f64>,
    /// Keep average memory utilisation at this percentage.
    #[arg(long)]
    memory: Option<f64>,
    /// Keep requests per task (per target of --target-group) at this count.
    #[arg(long, requires = "target_group")]
    requests: Option<f64>,
    /// The target group (ARN) whose requests --requests counts.
    #[arg(long, requires = "requests")]
    target_group: Option<String>,
    /// Seconds between scale-in steps.
    #[arg(long)]
    scale_in_cooldown: Option<u32>,
    /// Seconds between scale-out steps.
    #[arg(long)]
    scale_out_cooldown: Option<u32>,
}

/// The ALB resource label (`app/LB/ID/targetgroup/TG/ID`) of a target group: from its load
/// balancer, which ELB's DescribeTargetGroups names.
async fn resource_label(c: &Client, tg_arn: &str) -> Result<String> {
    let tg_part = tg_arn
        .rsplit_once(':')
        .map(|(_, r)| r)
        .filter(|r| r.starts_with("targetgroup/"))
        .ok_or_else(|| anyhow::anyhow!("{tg_arn} is not a target group ARN"))?;
    let d = c
        .elb(
            "DescribeTargetGroups",
            &[("TargetGroupArns.member.1".to_owned(), tg_arn.to_owned())],
        )
        .await?;
    let lbs = &d["TargetGroups"][0]["LoadBalancerArns"];
    let lb = lbs
        .as_array()
        .and_then(|a| a.first())
        .map(s)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!("target group {tg_arn} is not attached to a load balancer")
        })?;
    let lb_part = lb
        .rsplit_once(":loadbalancer/")
        .map(|(_, r)| r.to_owned())
        .ok_or_else(|| anyhow::anyhow!("unexpected load balancer ARN {lb}"))?;
    Ok(format!("{lb_part}/{tg_part}"))
}

async fn autoscale(c: &Client, cluster: &str, a: AutoscaleArgs, out: Output) -> Result<()> {
    if a.cpu.is_none() && a.memory.is_none() && a.requests.is_none() {
        bail!("give at least one of --cpu, --memory or --requests");
    }
    let resource_id = format!("service/{cluster}/{}", a.name);
    let target = json!({
        "ServiceNamespace": "ecs",
        "ResourceId": resource_id,
        "ScalableDimension": "ecs:service:DesiredCount",
    });
    let mut reg = target.clone();
    reg["MinCapacity"] = json!(a.min);
    reg["MaxCapacity"] = json!(a.max);
    let r = c.autoscaling("RegisterScalableTarget", &reg).await?;
    let mut metrics = Vec::new();
    if let Some(v) = a.cpu {
        metrics.push((
            "cpu-target",
            v,
            json!({"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}),
        ));
    }
    if let Some(v) = a.memory {
        metrics.push((
            "memory-target",
            v,
            json!({"PredefinedMetricType": "ECSServiceAverageMemoryUtilization"}),
        ));
    }
    if let (Some(v), Some(tg)) = (a.requests, &a.target_group) {
        let label = resource_label(c, tg).await?;
        metrics.push((
            "requests-target",
            v,
            json!({"PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": label}),
        ));
    }
    let mut policies = Vec::new();
    for (name, value, spec) in metrics {
        let mut cfg = json!({"TargetValue": value, "PredefinedMetricSpecification": spec});
        if let Some(s) = a.scale_in_cooldown {
            cfg["ScaleInCooldown"] = json!(s);
        }
        if let Some(s) = a.scale_out_cooldown {
            cfg["ScaleOutCooldown"] = json!(s);
        }
        let mut body = target.clone();
        body["PolicyName"] = json!(name);
        body["PolicyType"] = json!("TargetTrackingScaling");
        body["TargetTrackingScalingPolicyConfiguration"] = cfg;
        let p = c.autoscaling("PutScalingPolicy", &body).await?;
        policies
            .push(json!({"PolicyName": name, "TargetValue": value, "PolicyARN": p["PolicyARN"]}));
    }
    match out {
        Output::Json => print(
            out,
            &json!({"ScalableTargetARN": r["ScalableTargetARN"], "ResourceId": resource_id,
                "MinCapacity": a.min, "MaxCapacity": a.max, "Policies": policies}),
            &[],
            vec![],
        ),
        Output::Table => {
            println!(
                "{resource_id}: autoscaling between {} and {} tasks",
                a.min, a.max
            );
            for p in &policies {
                println!("  {} target {}", s(&p["PolicyName"]), s(&p["TargetValue"]));
            }
        }
    }
    Ok(())
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
        Cmd::Autoscale(args) => autoscale(&c, &cluster, args, out).await?,
        Cmd::Metrics { name, minutes } => metrics(&c, &cluster, &name, minutes, out).await?,
    }
    Ok(())
}
