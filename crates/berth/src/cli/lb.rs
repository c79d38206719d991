//! `berth lb create|ls|rm`, `berth lb tg create|ls`, `berth lb listen`, `berth lb health`:
//! the ELBv2 API through the Query protocol.

use anyhow::{anyhow, Result};
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
    /// Create an application load balancer.
    Create {
        name: String,
        /// Make it `internal` rather than `internet-facing`.
        #[arg(long)]
        internal: bool,
    },
    /// List load balancers.
    Ls,
    /// Delete a load balancer (and its listeners and rules).
    Rm { name: String },
    /// Target groups: create, ls.
    Tg {
        #[command(subcommand)]
        cmd: TgCmd,
    },
    /// Add a listener on PORT to a load balancer, forwarding to a target group.
    Listen {
        lb: String,
        #[arg(long)]
        port: u16,
        /// The target group (name or ARN) to forward to.
        #[arg(long)]
        forward: String,
    },
    /// Show the targets of a target group and their health.
    Health { target_group: String },
}

#[derive(Debug, clap::Subcommand)]
enum TgCmd {
    /// Create an HTTP target group.
    Create {
        name: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "/")]
        health_path: String,
        /// `instance` or `ip`.
        #[arg(long, default_value = "ip")]
        target_type: String,
    },
    /// List target groups.
    Ls,
}

fn p(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

/// A list member of an answer (an empty list arrives as empty text).
fn items(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

async fn lb_arn(c: &Client, name: &str) -> Result<String> {
    if name.starts_with("arn:") {
        return Ok(name.to_owned());
    }
    let r = c
        .elb("DescribeLoadBalancers", &[p("Names.member.1", name)])
        .await?;
    items(&r["LoadBalancers"])
        .first()
        .map(|l| s(&l["LoadBalancerArn"]))
        .ok_or_else(|| anyhow!("no load balancer named {name}"))
}

async fn tg_arn(c: &Client, name: &str) -> Result<String> {
    if name.starts_with("arn:") {
        return Ok(name.to_owned());
    }
    let r = c
        .elb("DescribeTargetGroups", &[p("Names.member.1", name)])
        .await?;
    items(&r["TargetGroups"])
        .first()
        .map(|t| s(&t["TargetGroupArn"]))
        .ok_or_else(|| anyhow!("no target group named {name}"))
}

const LB_HEADER: &[&str] = &["NAME", "DNS NAME", "SCHEME", "STATE", "ARN"];

fn lb_rows(lbs: &[Value]) -> Vec<Vec<String>> {
    lbs.iter()
        .map(|l| {
            vec![
                s(&l["LoadBalancerName"]),
                s(&l["DNSName"]),
                s(&l["Scheme"]),
                s(&l["State"]["Code"]),
                s(&l["LoadBalancerArn"]),
            ]
        })
        .collect()
}

const TG_HEADER: &[&str] = &[
    "NAME",
    "PORT",
    "TYPE",
    "HEALTH PATH",
    "LOAD BALANCERS",
    "ARN",
];

fn tg_rows(tgs: &[Value]) -> Vec<Vec<String>> {
    tgs.iter()
        .map(|t| {
            vec![
                s(&t["TargetGroupName"]),
                s(&t["Port"]),
                s(&t["TargetType"]),
                s(&t["HealthCheckPath"]),
                items(&t["LoadBalancerArns"]).len().to_string(),
                s(&t["TargetGroupArn"]),
            ]
        })
        .collect()
}

/// Every page of a Describe action's list.
async fn all(c: &Client, action: &str, field: &str) -> Result<Vec<Value>> {
    let (mut out, mut marker) = (Vec::new(), None::<String>);
    loop {
        let params: Vec<(String, String)> = marker.iter().map(|m| p("Marker", m)).collect();
        let r = c.elb(action, &params).await?;
        out.extend(items(&r[field]));
        match r["NextMarker"].as_str().filter(|m| !m.is_empty()) {
            Some(m) => marker = Some(m.to_owned()),
            None => return Ok(out),
        }
    }
}

pub async fn run(a: Args) -> Result<()> {
    let c = Client::from_env(&a.common.client)?;
    let out = a.common.output;
    match a.cmd {
        Cmd::Create { name, internal } => {
            let scheme = if internal {
                "internal"
            } else {
                "internet-facing"
            };
            let r = c
                .elb(
                    "CreateLoadBalancer",
                    &[p("Name", name), p("Scheme", scheme)],
                )
                .await?;
            let lbs = items(&r["LoadBalancers"]);
            print(out, &json!(lbs), LB_HEADER, lb_rows(&lbs));
        }
        Cmd::Ls => {
            let lbs = all(&c, "DescribeLoadBalancers", "LoadBalancers").await?;
            print(out, &json!(lbs), LB_HEADER, lb_rows(&lbs));
        }
        Cmd::Rm { name } => {
            let arn = lb_arn(&c, &name).await?;
            c.elb("DeleteLoadBalancer", &[p("LoadBalancerArn", &arn)])
                .await?;
            println!("deleted {arn}");
        }
        Cmd::Tg { cmd: TgCmd::Ls } => {
            let tgs = all(&c, "DescribeTargetGroups", "TargetGroups").await?;
            print(out, &json!(tgs), TG_HEADER, tg_rows(&tgs));
        }
        Cmd::Tg {
            cmd:
                TgCmd::Create {
                    name,
                    port,
                    health_path,
                    target_type,
                },
        } => {
            let r = c
                .elb(
                    "CreateTargetGroup",
                    &[
                        p("Name", name),
                        p("Protocol", "HTTP"),
                        p("Port", port.to_string()),
                        p("HealthCheckPath", health_path),
                        p("TargetType", target_type),
                    ],
                )
                .await?;
            let tgs = items(&r["TargetGroups"]);
            print(out, &json!(tgs), TG_HEADER, tg_rows(&tgs));
        }
        Cmd::Listen { lb, port, forward } => {
            let lb = lb_arn(&c, &lb).await?;
            let tg = tg_arn(&c, &forward).await?;
            let r = c
                .elb(
                    "CreateListener",
                    &[
                        p("LoadBalancerArn", lb),
                        p("Protocol", "HTTP"),
                        p("Port", port.to_string()),
                        p("DefaultActions.member.1.Type", "forward"),
                        p("DefaultActions.member.1.TargetGroupArn", tg),
                    ],
                )
                .await?;
            let ls = items(&r["Listeners"]);
            let rows = ls
                .iter()
                .map(|l| vec![s(&l["Port"]), s(&l["Protocol"]), s(&l["ListenerArn"])])
                .collect();
            print(out, &json!(ls), &["PORT", "PROTOCOL", "ARN"], rows);
        }
        Cmd::Health { target_group } => {
            let tg = tg_arn(&c, &target_group).await?;
            let r = c
                .elb("DescribeTargetHealth", &[p("TargetGroupArn", tg)])
                .await?;
            let hs = items(&r["TargetHealthDescriptions"]);
            let rows = hs
                .iter()
                .map(|h| {
                    vec![
                        s(&h["Target"]["Id"]),
                        s(&h["Target"]["Port"]),
                        s(&h["TargetHealth"]["State"]),
                        s(&h["TargetHealth"]["Reason"]),
                    ]
                })
                .collect();
            print(
                out,
                &json!(hs),
                &["TARGET", "PORT", "STATE", "REASON"],
                rows,
            );
        }
    }
    Ok(())
}
