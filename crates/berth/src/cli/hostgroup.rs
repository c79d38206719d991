//! `berth hostgroup create|list|describe|scale|delete`: host groups over berth's EC2 Auto
//! Scaling API. `create` makes the group's launch configuration (named after the group)
//! inline, with `ECS_CLUSTER` in its user data as AWS's ECS-optimised hosts read it.

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
    /// Create a host group (and its launch configuration, named after it).
    Create(CreateArgs),
    /// List host groups.
    List,
    /// A group and its hosts.
    Describe { name: String },
    /// Set the desired number of hosts.
    Scale { name: String, desired: u32 },
    /// Delete a group (`--force` terminates its hosts first).
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    name: String,
    /// EC2 instance type: sets each host's CPU and memory.
    #[arg(long, default_value = "t3.small")]
    instance_type: String,
    /// Host image: `berth-host` (berth's own) or a Docker image with `berth` on its PATH.
    #[arg(long, default_value = "berth-host")]
    image: String,
    #[arg(long, default_value_t = 0)]
    min: u32,
    #[arg(long, default_value_t = 1)]
    max: u32,
    /// Default: `--min`.
    #[arg(long)]
    desired: Option<u32>,
    /// The ECS cluster hosts join.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// process, docker or command (default: the server's `--host-provider`).
    #[arg(long)]
    provider: Option<String>,
    /// Seconds a new host has to register.
    #[arg(long)]
    grace: Option<u32>,
    /// Termination policies in order (OldestInstance, NewestInstance, ...).
    #[arg(long = "termination-policy")]
    termination_policies: Vec<String>,
}

fn p(k: &str, v: impl ToString) -> (String, String) {
    (k.to_owned(), v.to_string())
}

fn groups(r: &Value) -> Vec<Value> {
    match &r["AutoScalingGroups"] {
        Value::Array(a) => a.clone(),
        Value::Object(_) => vec![r["AutoScalingGroups"].clone()],
        _ => Vec::new(),
    }
}

fn list_of(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Null => Vec::new(),
        Value::String(x) if x.is_empty() => Vec::new(),
        other => vec![other.clone()],
    }
}

const HEADER: &[&str] = &["NAME", "MIN", "DESIRED", "MAX", "HOSTS", "STATUS"];

fn rows(gs: &[Value]) -> Vec<Vec<String>> {
    gs.iter()
        .map(|g| {
            vec![
                s(&g["AutoScalingGroupName"]),
                s(&g["MinSize"]),
                s(&g["DesiredCapacity"]),
                s(&g["MaxSize"]),
                list_of(&g["Instances"]).len().to_string(),
                s(&g["Status"]),
            ]
        })
        .collect()
}

async fn create(c: &Client, output: super::Output, args: CreateArgs) -> Result<()> {
    use base64::Engine;
    let CreateArgs {
        name,
        instance_type,
        image,
        min,
        max,
        desired,
        cluster,
        provider,
        grace,
        termination_policies,
    } = args;
    let user_data = base64::engine::general_purpose::STANDARD.encode(format!(
        "#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
    ));
    c.asg(
        "CreateLaunchConfiguration",
        &[
            p("LaunchConfigurationName", &name),
            p("ImageId", &image),
            p("InstanceType", &instance_type),
            p("UserData", user_data),
        ],
    )
    .await?;
    let mut params = vec![
        p("AutoScalingGroupName", &name),
        p("LaunchConfigurationName", &name),
        p("MinSize", min),
        p("MaxSize", max),
        p("DesiredCapacity", desired.unwrap_or(min)),
        p("AvailabilityZones.member.1", format!("{}a", c.region())),
    ];
    if let Some(g) = grace {
        params.push(p("HealthCheckGracePeriod", g));
    }
    for (i, t) in termination_policies.iter().enumerate() {
        params.push(p(&format!("TerminationPolicies.member.{}", i + 1), t));
    }
    if let Some(pr) = provider {
        params.push(p("Tags.member.1.Key", "berth:provider"));
        params.push(p("Tags.member.1.Value", pr));
    }
    if let Err(e) = c.asg("CreateAutoScalingGroup", &params).await {
        // Leave nothing half-made behind.
        let _ = c
            .asg(
                "DeleteLaunchConfiguration",
                &[p("LaunchConfigurationName", &name)],
            )
            .await;
        return Err(e);
    }
    let r = c
        .asg(
            "DescribeAutoScalingGroups",
            &[p("AutoScalingGroupNames.member.1", &name)],
        )
        .await?;
    let gs = groups(&r);
    print(output, &json!(gs), HEADER, rows(&gs));
    Ok(())
}

pub async fn run(a: Args) -> Result<()> {
    let c = Client::from_env(&a.common.client)?;
    match a.cmd {
        Cmd::Create(args) => create(&c, a.common.output, args).await?,
        Cmd::List => {
            let r = c.asg("DescribeAutoScalingGroups", &[]).await?;
            let gs = groups(&r);
            print(a.common.output, &json!(gs), HEADER, rows(&gs));
        }
        Cmd::Describe { name } => {
            let r = c
                .asg(
                    "DescribeAutoScalingGroups",
                    &[p("AutoScalingGroupNames.member.1", &name)],
                )
                .await?;
            let gs = groups(&r);
            let Some(g) = gs.first() else {
                anyhow::bail!("no host group {name}");
            };
            let hosts: Vec<Vec<String>> = list_of(&g["Instances"])
                .iter()
                .map(|h| {
                    vec![
                        s(&h["InstanceId"]),
                        s(&h["InstanceType"]),
                        s(&h["LifecycleState"]),
                        s(&h["HealthStatus"]),
                        s(&h["ProtectedFromScaleIn"]),
                    ]
                })
                .collect();
            print(
                a.common.output,
                g,
                &["HOST", "TYPE", "STATE", "HEALTH", "PROTECTED"],
                hosts,
            );
        }
        Cmd::Scale { name, desired } => {
            c.asg(
                "SetDesiredCapacity",
                &[
                    p("AutoScalingGroupName", &name),
                    p("DesiredCapacity", desired),
                ],
            )
            .await?;
            println!("{name}: desired capacity {desired}");
        }
        Cmd::Delete { name, force } => {
            let mut params = vec![p("AutoScalingGroupName", &name)];
            if force {
                params.push(p("ForceDelete", true));
            }
            c.asg("DeleteAutoScalingGroup", &params).await?;
            println!("{name}: deleting");
        }
    }
    Ok(())
}
