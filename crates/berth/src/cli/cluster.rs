//! `berth cluster ls|create|rm`.

use anyhow::Result;
use serde_json::{json, Value};

use super::{print, s, Common};
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// List clusters with their counts.
    Ls,
    /// Create a cluster (idempotent).
    Create { name: String },
    /// Delete a cluster (it must hold no services, instances or tasks).
    Rm { name: String },
}

fn rows(clusters: &Value) -> Vec<Vec<String>> {
    clusters
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            vec![
                s(&c["clusterName"]),
                s(&c["status"]),
                s(&c["registeredContainerInstancesCount"]),
                s(&c["activeServicesCount"]),
                s(&c["runningTasksCount"]),
                s(&c["pendingTasksCount"]),
            ]
        })
        .collect()
}

const HEADER: &[&str] = &[
    "NAME",
    "STATUS",
    "INSTANCES",
    "SERVICES",
    "RUNNING",
    "PENDING",
];

pub async fn run(a: Args) -> Result<()> {
    let c = Client::from_env(&a.common.client)?;
    match a.cmd {
        Cmd::Ls => {
            let mut arns = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = c.ecs("ListClusters", &json!({"nextToken": token})).await?;
                arns.extend(page["clusterArns"].as_array().cloned().unwrap_or_default());
                token = page["nextToken"].as_str().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            let mut clusters = Vec::new();
            for chunk in arns.chunks(100) {
                let d = c
                    .ecs(
                        "DescribeClusters",
                        &json!({"clusters": chunk, "include": ["TAGS"]}),
                    )
                    .await?;
                clusters.extend(d["clusters"].as_array().cloned().unwrap_or_default());
            }
            let all = Value::Array(clusters);
            print(a.common.output, &all, HEADER, rows(&all));
        }
        Cmd::Create { name } => {
            let r = c
                .ecs("CreateCluster", &json!({"clusterName": name}))
                .await?;
            print(a.common.output, &r, HEADER, rows(&json!([r["cluster"]])));
        }
        Cmd::Rm { name } => {
            let r = c.ecs("DeleteCluster", &json!({"cluster": name})).await?;
            print(a.common.output, &r, HEADER, rows(&json!([r["cluster"]])));
        }
    }
    Ok(())
}
