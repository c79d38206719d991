//! What the simulation asks the server while it works: the Describe/List calls whose
//! latency it reports (one client, one call at a time, as an operator's dashboard would),
//! and the service counts that say when every task is placed and RUNNING.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::client::Client;

/// The actions whose latency is sampled.
pub const ACTIONS: [&str; 4] = [
    "DescribeServices",
    "ListTasks",
    "DescribeTasks",
    "DescribeContainerInstances",
];

/// Latency samples per action, in milliseconds.
pub type Samples = BTreeMap<&'static str, Vec<f64>>;

/// Issues the sampled calls against one cluster.
pub struct Sampler {
    pub client: Arc<Client>,
    pub cluster: String,
    /// Services to describe (ten at most per call, as ECS allows).
    pub services: Vec<String>,
    /// Container instances to describe (up to 100).
    pub instances: Vec<Value>,
}

async fn timed(c: &Client, action: &'static str, body: &Value, out: &mut Samples) -> Result<Value> {
    let t = Instant::now();
    let r = c.ecs(action, body).await?;
    out.entry(action)
        .or_default()
        .push(t.elapsed().as_secs_f64() * 1000.0);
    Ok(r)
}

impl Sampler {
    /// One call of each action; `round` picks which services to describe.
    pub async fn round(&self, round: usize, out: &mut Samples) -> Result<()> {
        let c = &*self.client;
        let names: Vec<&String> = if self.services.is_empty() {
            Vec::new()
        } else {
            let start = (round * 10) % self.services.len();
            self.services
                .iter()
                .cycle()
                .skip(start)
                .take(10.min(self.services.len()))
                .collect()
        };
        let body = json!({"cluster": self.cluster, "services": names});
        timed(c, "DescribeServices", &body, out).await?;
        let body = json!({"cluster": self.cluster, "maxResults": 100});
        let tasks = timed(c, "ListTasks", &body, out).await?;
        let arns = tasks["taskArns"].as_array().cloned().unwrap_or_default();
        if !arns.is_empty() {
            let body = json!({"cluster": self.cluster, "tasks": arns});
            timed(c, "DescribeTasks", &body, out).await?;
        }
        let body = json!({"cluster": self.cluster, "containerInstances": self.instances});
        timed(c, "DescribeContainerInstances", &body, out).await?;
        Ok(())
    }

    /// Rounds, `pause` apart, until `stop` says so; the samples come back at the end.
    pub async fn run_until(
        self,
        pause: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Samples {
        let mut out = Samples::new();
        let mut round = 0;
        while !*stop.borrow() {
            if let Err(e) = self.round(round, &mut out).await {
                tracing::warn!(error = %e, "a sampled call failed");
            }
            round += 1;
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
        out
    }
}

/// Tasks of a set of services, as DescribeServices counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired: u64,
    pub pending: u64,
    pub running: u64,
}

/// Sums the counts of `services` (ten per DescribeServices call).
pub async fn counts(c: &Client, cluster: &str, services: &[String]) -> Result<Counts> {
    let mut sum = Counts::default();
    for chunk in services.chunks(10) {
        let r = c
            .ecs(
                "DescribeServices",
                &json!({"cluster": cluster, "services": chunk}),
            )
            .await?;
        for s in r["services"].as_array().into_iter().flatten() {
            let n = |k: &str| s[k].as_u64().unwrap_or(0);
            sum.desired += n("desiredCount");
            sum.pending += n("pendingCount");
            sum.running += n("runningCount");
        }
    }
    Ok(sum)
}
