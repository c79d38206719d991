//! `berth task run|ls|show|stop`.

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
    /// Run tasks from a task definition (`family`, `family:rev` or ARN).
    Run {
        task_definition: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Override the first container's command (as a shell-split list).
        #[arg(long, num_args = 1.., allow_hyphen_values = true)]
        command: Option<Vec<String>>,
        #[arg(long)]
        started_by: Option<String>,
    },
    /// List tasks (RUNNING by default).
    Ls {
        #[arg(long, default_value = "RUNNING")]
        desired_status: String,
        #[arg(long)]
        family: Option<String>,
    },
    /// Show tasks.
    Show { tasks: Vec<String> },
    /// Stop a task.
    Stop {
        task: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

const HEADER: &[&str] = &[
    "TASK",
    "DEFINITION",
    "LAST",
    "DESIRED",
    "HEALTH",
    "INSTANCE",
    "STOPPED REASON",
];

fn short(arn: &Value) -> String {
    let a = s(arn);
    a.rsplit('/').next().unwrap_or(&a).to_owned()
}

fn rows(tasks: &Value) -> Vec<Vec<String>> {
    tasks
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            vec![
                short(&t["taskArn"]),
                short(&t["taskDefinitionArn"]),
                s(&t["lastStatus"]),
                s(&t["desiredStatus"]),
                s(&t["healthStatus"]),
                short(&t["containerInstanceArn"]),
                s(&t["stoppedReason"]),
            ]
        })
        .collect()
}

pub async fn run(a: Args) -> Result<()> {
    let c = Client::from_env(&a.common.client)?;
    let out = a.common.output;
    match a.cmd {
        Cmd::Run {
            task_definition,
            count,
            command,
            started_by,
        } => {
            let mut body = json!({"cluster": a.cluster, "taskDefinition": task_definition,
                "count": count, "startedBy": started_by});
            if let Some(cmd) = command {
                let td = c
                    .ecs(
                        "DescribeTaskDefinition",
                        &json!({"taskDefinition": task_definition}),
                    )
                    .await?;
                let name = s(&td["taskDefinition"]["containerDefinitions"][0]["name"]);
                body["overrides"] = json!({"containerOverrides": [{"name": name, "command": cmd}]});
            }
            let r = c.ecs("RunTask", &body).await?;
            print(out, &r, HEADER, rows(&r["tasks"]));
            if let Some(f) = r["failures"].as_array().filter(|f| !f.is_empty()) {
                for f in f {
                    eprintln!("not placed: {} {}", s(&f["reason"]), s(&f["detail"]));
                }
                anyhow::bail!("{} task(s) could not be placed", f.len());
            }
        }
        Cmd::Ls {
            desired_status,
            family,
        } => {
            let mut arns = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = c
                    .ecs(
                        "ListTasks",
                        &json!({"cluster": a.cluster, "desiredStatus": desired_status,
                            "family": family, "nextToken": token}),
                    )
                    .await?;
                arns.extend(page["taskArns"].as_array().cloned().unwrap_or_default());
                token = page["nextToken"].as_str().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            let mut tasks = Vec::new();
            for chunk in arns.chunks(100) {
                let d = c
                    .ecs(
                        "DescribeTasks",
                        &json!({"cluster": a.cluster, "tasks": chunk}),
                    )
                    .await?;
                tasks.extend(d["tasks"].as_array().cloned().unwrap_or_default());
            }
            let all = Value::Array(tasks);
            print(out, &all, HEADER, rows(&all));
        }
        Cmd::Show { tasks } => {
            let d = c
                .ecs(
                    "DescribeTasks",
                    &json!({"cluster": a.cluster, "tasks": tasks, "include": ["TAGS"]}),
                )
                .await?;
            print(out, &d, HEADER, rows(&d["tasks"]));
        }
        Cmd::Stop { task, reason } => {
            let r = c
                .ecs(
                    "StopTask",
                    &json!({"cluster": a.cluster, "task": task, "reason": reason}),
                )
                .await?;
            print(out, &r, HEADER, rows(&json!([r["task"]])));
        }
    }
    Ok(())
}
