//! `berth sim`: scale by simulation. Starts (or targets) a real berth server, runs N
//! simulated hosts in this process (real agents over the real agent protocol, fake
//! containers), creates services of 10–1,000 tasks until the total is reached, and measures
//! how long placement and RUNNING take, Describe/List latency during the load against the
//! same calls on the idle server before it, and memory.
//!
//! Why a simulation: the control plane's cost grows with hosts and tasks, not with what the
//! containers do; fake containers let one machine stand in for ten thousand hosts, so the
//! server's scheduler, store and agent endpoints are what is measured.
//!
//! The parts: [`target`] (the server), [`fleet`] (the agents), [`probe`] (the calls that
//! are timed and counted), [`report`] (the pure arithmetic and the output).

mod fleet;
mod probe;
mod report;
mod target;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use serde_json::json;

use crate::client::Client;
use report::{ActionLatency, Report};

#[derive(Debug, Clone, clap::Args)]
pub struct SimOpts {
    /// Simulated hosts (agents with the fake driver, in this process).
    #[arg(long, default_value_t = 100)]
    pub hosts: u64,
    /// Tasks in all, in services of `--min-service`..`--max-service` tasks.
    #[arg(long, default_value_t = 1000)]
    pub tasks: u64,
    /// Smallest service (tasks).
    #[arg(long, default_value_t = 10)]
    pub min_service: u64,
    /// Largest service (tasks).
    #[arg(long, default_value_t = 1000)]
    pub max_service: u64,
    /// Seed of the service sizes (same seed, same services).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run against this server instead of starting one (keys from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY; its connection caps and API rate must allow the load).
    #[arg(long)]
    pub server: Option<String>,
    /// With `--server`: its pid on this machine, to report its memory.
    #[arg(long, requires = "server")]
    pub server_pid: Option<u32>,
    /// Extra flags for the started server (repeatable, e.g. `--server-arg=--api-rate=0`).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
    /// The cluster the simulation creates and fills.
    #[arg(long, default_value = "sim")]
    pub cluster: String,
    /// Each host's cpu units.
    #[arg(long, default_value_t = 4096)]
    pub host_cpu: u64,
    /// Each host's memory (MiB).
    #[arg(long, default_value_t = 16384)]
    pub host_memory: u64,
    /// Each task's cpu units.
    #[arg(long, default_value_t = 128)]
    pub task_cpu: u64,
    /// Each task's memory (MiB).
    #[arg(long, default_value_t = 256)]
    pub task_memory: u64,
    /// Seconds an agent's long poll waits for news (as `berth agent --poll-wait`).
    #[arg(long, default_value_t = 10.0)]
    pub poll_wait: f64,
    /// Rounds of the sampled calls on the idle server (the baseline).
    #[arg(long, default_value_t = 30)]
    pub baseline_rounds: usize,
    /// Seconds to wait for every task to be RUNNING before reporting what was reached.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// CreateService calls in flight at once.
    #[arg(long, default_value_t = 8)]
    pub create_concurrency: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the simulation and prints its report; fails (after printing) when not every task
/// reached RUNNING in time.
pub async fn run(o: SimOpts) -> Result<()> {
    if o.hosts == 0 || o.tasks == 0 {
        bail!("--hosts and --tasks must be above 0");
    }
    if o.min_service == 0 || o.min_service > o.max_service {
        bail!("--min-service must be between 1 and --max-service");
    }
    let mut target = match &o.server {
        Some(url) => target::Target::existing(url, o.server_pid)?,
        None => {
            target::Target::start(&target::Launch {
                hosts: o.hosts,
                extra_args: &o.server_args,
                agent_timeout: (o.poll_wait * 3.0).max(30.0),
            })
            .await?
        }
    };
    let result = simulate(&o, &target).await;
    target.stop().await;
    let report = result?;
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.table());
    }
    if !report.complete {
        bail!(
            "{} of {} tasks RUNNING after {} s",
            report.running_tasks,
            report.tasks,
            o.timeout
        );
    }
    Ok(())
}

fn progress(msg: &str) {
    eprintln!("berth sim: {msg}");
}

async fn simulate(o: &SimOpts, target: &target::Target) -> Result<Report> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let client = Arc::new(Client::new(
        &target.endpoint,
        crate::env::DEFAULT_REGION,
        target.creds.clone(),
        http,
    ));
    let c = &*client;
    c.ecs("CreateCluster", &json!({"clusterName": o.cluster}))
        .await
        .context("CreateCluster")?;
    let token = c
        .berth("GetJoinToken", &json!({"cluster": o.cluster}))
        .await?["token"]
        .as_str()
        .context("GetJoinToken gave no token")?
        .to_owned();
    let shape = fleet::HostShape {
        cpu: o.host_cpu,
        memory: o.host_memory,
        poll_wait: Duration::from_secs_f64(o.poll_wait.clamp(0.5, 60.0)),
    };
    progress(&format!("starting {} simulated hosts", o.hosts));
    let started = Instant::now();
    let fleet = fleet::Fleet::start(&target.endpoint, &o.cluster, &token, o.hosts, &shape)?;
    let result = load(o, c, &client, started).await;
    let sim_memory = target::own_memory();
    let server_memory = target.memory();
    fleet.stop().await;
    let mut report = result?;
    report.sim_memory = sim_memory;
    report.server_memory = server_memory;
    Ok(report)
}

/// Waits until `cond` holds, checking every `every`, or fails after `secs`.
async fn wait_until<F, Fut>(what: &str, secs: f64, every: Duration, mut cond: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        match cond().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "{what}: not yet"),
        }
        if Instant::now() >= deadline {
            bail!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Registration, the baseline, then the load and its measurements.
async fn load(o: &SimOpts, c: &Client, client: &Arc<Client>, started: Instant) -> Result<Report> {
    let cluster = o.cluster.clone();
    wait_until(
        "every host to register",
        o.timeout,
        Duration::from_millis(200),
        || async {
            let r = c
                .ecs("DescribeClusters", &json!({"clusters": [cluster]}))
                .await?;
            Ok(r["clusters"][0]["registeredContainerInstancesCount"].as_u64() >= Some(o.hosts))
        },
    )
    .await?;
    let register_secs = started.elapsed().as_secs_f64();
    progress(&format!(
        "{} hosts registered in {register_secs:.1} s",
        o.hosts
    ));
    c.ecs(
        "RegisterTaskDefinition",
        &json!({"family": "sim", "containerDefinitions": [{
            "name": "app", "image": "berth-sim/app", "essential": true,
            "cpu": o.task_cpu, "memory": o.task_memory,
        }]}),
    )
    .await
    .context("RegisterTaskDefinition")?;
    // A small service first, so the baseline describes real tasks and services.
    let probe_service = vec!["sim-probe".to_owned()];
    create_service(c, &o.cluster, "sim-probe", 10.min(o.tasks)).await?;
    wait_until(
        "the probe service to run",
        o.timeout,
        Duration::from_millis(100),
        || async {
            let n = probe::counts(c, &o.cluster, &probe_service).await?;
            Ok(n.running >= n.desired)
        },
    )
    .await?;
    let instances = c
        .ecs(
            "ListContainerInstances",
            &json!({"cluster": o.cluster, "maxResults": 100}),
        )
        .await?["containerInstanceArns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sizes = report::service_sizes(o.tasks, o.min_service, o.max_service, o.seed);
    let names: Vec<String> = (0..sizes.len()).map(|i| format!("sim-{i}")).collect();
    let sampler = |services: Vec<String>| probe::Sampler {
        client: client.clone(),
        cluster: o.cluster.clone(),
        services,
        instances: instances.clone(),
    };
    progress(&format!(
        "baseline: {} rounds on the idle server",
        o.baseline_rounds
    ));
    let mut baseline = probe::Samples::new();
    let idle = sampler(probe_service.clone());
    for round in 0..o.baseline_rounds {
        idle.round(round, &mut baseline).await?;
    }
    progress(&format!(
        "creating {} services, {} tasks",
        sizes.len(),
        o.tasks
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let during =
        tokio::spawn(sampler(names.clone()).run_until(Duration::from_millis(100), stop_rx));
    let t0 = Instant::now();
    let creating = futures::stream::iter(names.iter().zip(&sizes))
        .map(|(name, &n)| create_service(c, &o.cluster, name, n))
        .buffer_unordered(o.create_concurrency.max(1))
        .collect::<Vec<_>>();
    let watching = watch_counts(c, &o.cluster, &names, o.tasks, o.timeout, t0);
    let (created, (placed_secs, running_secs, running_tasks)) = tokio::join!(creating, watching);
    let _ = stop_tx.send(true);
    let during = during.await.unwrap_or_default();
    created.into_iter().collect::<Result<Vec<()>>>()?;
    let latency: BTreeMap<String, ActionLatency> = probe::ACTIONS
        .iter()
        .map(|a| {
            let none = Vec::new();
            let b = baseline.get(a).unwrap_or(&none);
            let d = during.get(a).unwrap_or(&none);
            ((*a).to_owned(), ActionLatency::new(b, d))
        })
        .collect();
    Ok(Report {
        hosts: o.hosts,
        tasks: o.tasks,
        services: sizes.len(),
        register_secs,
        placed_secs,
        running_secs,
        running_tasks,
        complete: running_secs.is_some(),
        latency,
        server_memory: None,
        sim_memory: None,
    })
}

async fn create_service(c: &Client, cluster: &str, name: &str, desired: u64) -> Result<()> {
    c.ecs(
        "CreateService",
        &json!({"cluster": cluster, "serviceName": name, "taskDefinition": "sim",
                "desiredCount": desired, "launchType": "EC2"}),
    )
    .await
    .with_context(|| format!("CreateService {name}"))?;
    Ok(())
}

/// Counts the services' tasks every half second until all `total` run or `timeout` passes:
/// (seconds until all placed, seconds until all RUNNING, RUNNING at the end).
async fn watch_counts(
    c: &Client,
    cluster: &str,
    names: &[String],
    total: u64,
    timeout: f64,
    t0: Instant,
) -> (Option<f64>, Option<f64>, u64) {
    let deadline = t0 + Duration::from_secs_f64(timeout);
    let mut placed = None;
    let mut last = probe::Counts::default();
    let mut reported = Instant::now();
    loop {
        match probe::counts(c, cluster, names).await {
            Ok(n) => last = n,
            Err(e) => tracing::warn!(error = %e, "counting tasks failed"),
        }
        let at = t0.elapsed().as_secs_f64();
        if placed.is_none() && last.pending + last.running >= total {
            placed = Some(at);
        }
        if last.running >= total {
            return (placed, Some(at), last.running);
        }
        if reported.elapsed() >= Duration::from_secs(5) {
            progress(&format!(
                "{at:.0} s: {} pending, {} RUNNING of {total}",
                last.pending, last.running
            ));
            reported = Instant::now();
        }
        if Instant::now() >= deadline {
            return (placed, None, last.running);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
