//! `berth join-token [CLUSTER]` and `berth join-token rotate [CLUSTER]`.

use anyhow::Result;
use serde_json::json;

use super::Common;
use crate::client::Client;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct JoinTokenArgs {
    #[command(subcommand)]
    action: Option<JoinTokenAction>,
    /// The cluster agents will join.
    #[arg(default_value = "default")]
    cluster: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Subcommand)]
enum JoinTokenAction {
    /// Make a new join token. Tokens issued so far keep working for the grace period (the
    /// server's `--join-token-grace` unless `--grace` says), then are refused; registered
    /// agents are not affected.
    Rotate(RotateArgs),
}

#[derive(Debug, clap::Args)]
struct RotateArgs {
    /// The cluster whose token to rotate.
    #[arg(default_value = "default")]
    cluster: String,
    /// Seconds the tokens issued so far keep working.
    #[arg(long)]
    grace: Option<f64>,
    #[command(flatten)]
    common: Common,
}

pub async fn join_token(a: JoinTokenArgs) -> Result<()> {
    let (r, output) = match a.action {
        None => {
            let c = Client::from_env(&a.common.client)?;
            let r = c
                .berth("GetJoinToken", &json!({"cluster": a.cluster}))
                .await?;
            (r, a.common.output)
        }
        Some(JoinTokenAction::Rotate(r)) => {
            let c = Client::from_env(&r.common.client)?;
            let mut body = json!({"cluster": r.cluster});
            if let Some(g) = r.grace {
                body["gracePeriodSeconds"] = json!(g);
            }
            (c.berth("RotateJoinToken", &body).await?, r.common.output)
        }
    };
    match output {
        super::Output::Json => println!("{r}"),
        super::Output::Table => println!("{}", super::s(&r["token"])),
    }
    Ok(())
}
