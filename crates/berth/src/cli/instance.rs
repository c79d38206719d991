//! `berth instance ls|drain|activate|rm`.

use anyhow::Result;
use serde_json::{json, Value};

use super::{print, s, Common};
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
    /// List container instances with their resources.
    Ls {
        /// A cluster query language filter, e.g. `attribute:ecs.os-type == linux`.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Set instances to DRAINING.
    Drain { instances: Vec<String> },
    /// Set instances back to ACTIVE.
    Activate { instances: Vec<String> },
    /// Deregister an instance.
    Rm {
        instance: String,
        #[arg(long)]
        force: bool,
    },
}

const HEADER: &[&str] = &[
    "INSTANCE",
    "STATUS",
    "CONNECTED",
    "RUNNING",
    "PENDING",
    "CPU FREE/TOTAL",
    "MEM FREE/TOTAL",
];

fn res(list: &Value, name: &str) -> String {
    list.as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == name)
        .map(|r| s(&r["integerValue"]))
        .unwrap_or_default()
}

fn rows(list: &Value) -> Vec<Vec<String>> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let arn = s(&i["containerInstanceArn"]);
            vec![
                arn.rsplit('/').next().unwrap_or(&arn).to_owned(),
                s(&i["status"]),
                s(&i["agentConnected"]),
                s(&i["runningTasksCount"]),
                s(&i["pendingTasksCount"]),
                format!(
                    "{}/{}",
                    res(&i["remainingResources"], "CPU"),
                    res(&i["registeredResources"], "CPU")
                ),
                format!(
                    "{}/{}",
                    res(&i["remainingResources"], "MEMORY"),
                    res(&i["registeredResources"], "MEMORY")
                ),
            ]
        })
        .collect()
}

pub async fn run(a: Args) -> Result<()> {
    let c = Client::from_env(&a.common.client)?;
    let out = a.common.output;
    match a.cmd {
        Cmd::Ls { filter } => {
            let l = c
                .ecs(
                    "ListContainerInstances",
                    &json!({"cluster": a.cluster, "filter": filter}),
                )
                .await?;
            let arns = l["containerInstanceArns"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let all = if arns.is_empty() {
                json!([])
            } else {
                c.ecs(
                    "DescribeContainerInstances",
                    &json!({"cluster": a.cluster, "containerInstances": arns}),
                )
                .await?["containerInstances"]
                    .clone()
            };
            print(out, &all, HEADER, rows(&all));
        }
        Cmd::Drain { instances } => {
            let r = c
                .ecs(
                    "UpdateContainerInstancesState",
                    &json!({"cluster": a.cluster,
                    "containerInstances": instances, "status": "DRAINING"}),
                )
                .await?;
            print(out, &r, HEADER, rows(&r["containerInstances"]));
        }
        Cmd::Activate { instances } => {
            let r = c
                .ecs(
                    "UpdateContainerInstancesState",
                    &json!({"cluster": a.cluster,
                    "containerInstances": instances, "status": "ACTIVE"}),
                )
                .await?;
            print(out, &r, HEADER, rows(&r["containerInstances"]));
        }
        Cmd::Rm { instance, force } => {
            let r = c
                .ecs(
                    "DeregisterContainerInstance",
                    &json!({"cluster": a.cluster,
                    "containerInstance": instance, "force": force}),
                )
                .await?;
            print(out, &r, HEADER, rows(&json!([r["containerInstance"]])));
        }
    }
    Ok(())
}
