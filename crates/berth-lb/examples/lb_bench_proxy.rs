//! A stand-alone berth load balancer for benchmarks: one listener forwarding to the given
//! backends (round robin, health checks every 5 s on `/`).
//!
//! `cargo run --release -p berth-lb --example lb_bench_proxy -- 127.0.0.1:18090 127.0.0.1:18081 127.0.0.1:18082`

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use berth_lb::{
    Action, Config, DataPlane, DataPlaneOptions, HealthCheckConfig, ListenerConfig, TargetConfig,
    TargetGroupConfig,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // Serving threads: LB_WORKERS, else one per core.
    let workers = std::env::var("LB_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    run(workers).await
}

async fn run(workers: usize) -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .context("usage: lb_bench_proxy LISTEN BACKEND...")?
        .parse()
        .context("LISTEN must be host:port")?;
    let targets = args
        .map(|a| {
            Ok(TargetConfig {
                id: a.clone(),
                addr: a.parse().with_context(|| format!("bad backend {a}"))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if targets.is_empty() {
        bail!("give at least one backend");
    }
    let dp = DataPlane::with_options(DataPlaneOptions {
        workers,
        ..DataPlaneOptions::default()
    });
    let errs = dp
        .apply(Config {
            listeners: vec![ListenerConfig {
                id: "bench".into(),
                bind: listen,
                rules: vec![],
                // LB_FIXED=1: answer from the load balancer itself (its HTTP serving cost alone).
                default_action: if std::env::var_os("LB_FIXED").is_some() {
                    Action::FixedResponse {
                        status: 200,
                        content_type: Some("text/plain".into()),
                        body: Some("hello from berth\n".into()),
                    }
                } else {
                    Action::Forward(vec![("tg".into(), 1)])
                },
                idle_timeout: None,
            }],
            target_groups: vec![TargetGroupConfig {
                id: "tg".into(),
                health: HealthCheckConfig {
                    interval: Duration::from_secs(5),
                    healthy_threshold: 2,
                    ..HealthCheckConfig::default()
                },
                targets,
                ..TargetGroupConfig::default()
            }],
        })
        .await;
    if !errs.is_empty() {
        bail!("apply failed: {errs:?}");
    }
    eprintln!("berth-lb listening on {listen}");
    tokio::signal::ctrl_c().await?;
    dp.shutdown().await;
    Ok(())
}
