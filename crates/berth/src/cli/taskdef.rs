//! `berth taskdef register FILE.json|ls|show|rm`.

use std::path::PathBuf;

use anyhow::{Context, Result};
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
    /// Register a task definition from a JSON file (the RegisterTaskDefinition input, as
    /// `aws ecs register-task-definition --cli-input-json` takes it).
    Register { file: PathBuf },
    /// List task definitions (ACTIVE by default).
    Ls {
        /// Only this family.
        #[arg(long)]
        family: Option<String>,
        /// ACTIVE, INACTIVE or DELETE_IN_PROGRESS.
        #[arg(long, default_value = "ACTIVE")]
        status: String,
    },
    /// Show one task definition (`family`, `family:rev` or ARN).
    Show { task_definition: String },
    /// Deregister a revision (`family:rev`); with --delete, also delete it.
    Rm {
        task_definition: String,
        #[arg(long)]
        delete: bool,
    },
}

const HEADER: &[&str] = &[
    "FAMILY",
    "REVISION",
    "STATUS",
    "CPU",
    "MEMORY",
    "CONTAINERS",
];

fn row(td: &Value) -> Vec<String> {
    let containers: Vec<String> = td["containerDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} ({})", s(&c["name"]), s(&c["image"])))
        .collect();
    vec![
        s(&td["family"]),
        s(&td["revision"]),
        s(&td["status"]),
        s(&td["cpu"]),
        s(&td["memory"]),
        containers.join(", "),
    ]
}

pub async fn run(a: Args) -> Result<()> {
    let c = Client::from_env(&a.common.client)?;
    let out = a.common.output;
    match a.cmd {
        Cmd::Register { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let body: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let r = c.ecs("RegisterTaskDefinition", &body).await?;
            print(out, &r, HEADER, vec![row(&r["taskDefinition"])]);
        }
        Cmd::Ls { family, status } => {
            let mut arns = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = c
                    .ecs(
                        "ListTaskDefinitions",
                        &json!({"familyPrefix": family, "status": status, "nextToken": token}),
                    )
                    .await?;
                arns.extend(
                    page["taskDefinitionArns"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
                token = page["nextToken"].as_str().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            let rows = arns
                .iter()
                .map(|arn| {
                    let name = s(arn);
                    let short = name.rsplit('/').next().unwrap_or(&name).to_owned();
                    let (fam, rev) = short.split_once(':').unwrap_or((&short, ""));
                    vec![fam.to_owned(), rev.to_owned(), status.clone(), name.clone()]
                })
                .collect();
            print(
                out,
                &Value::Array(arns),
                &["FAMILY", "REVISION", "STATUS", "ARN"],
                rows,
            );
        }
        Cmd::Show { task_definition } => {
            let r = c
                .ecs(
                    "DescribeTaskDefinition",
                    &json!({"taskDefinition": task_definition, "include": ["TAGS"]}),
                )
                .await?;
            match out {
                super::Output::Json => print(out, &r, HEADER, vec![]),
                super::Output::Table => {
                    print(out, &r, HEADER, vec![row(&r["taskDefinition"])]);
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&r["taskDefinition"]["containerDefinitions"])?
                    );
                }
            }
        }
        Cmd::Rm {
            task_definition,
            delete,
        } => {
            let r = c
                .ecs(
                    "DeregisterTaskDefinition",
                    &json!({"taskDefinition": task_definition}),
                )
                .await?;
            let mut td = r["taskDefinition"].clone();
            if delete {
                let d = c
                    .ecs(
                        "DeleteTaskDefinitions",
                        &json!({"taskDefinitions": [task_definition]}),
                    )
                    .await?;
                if let Some(f) = d["failures"].as_array().and_then(|f| f.first()) {
                    anyhow::bail!("{}: {}", s(&f["arn"]), s(&f["reason"]));
                }
                td = d["taskDefinitions"][0].clone();
            }
            print(out, &td, HEADER, vec![row(&td)]);
        }
    }
    Ok(())
}
