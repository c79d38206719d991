//! `berth join-token`.

use anyhow::Result;
use serde_json::json;

use super::Common;
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub struct JoinTokenArgs {
    /// The cluster agents will join.
    #[arg(default_value = "default")]
    cluster: String,
    #[command(flatten)]
    common: Common,
}

pub async fn join_token(a: JoinTokenArgs) -> Result<()> {
    let c = Client::from_env(&a.common.client)?;
    let r = c
        .berth("GetJoinToken", &json!({"cluster": a.cluster}))
        .await?;
    match a.common.output {
        super::Output::Json => println!("{r}"),
        super::Output::Table => println!("{}", super::s(&r["token"])),
    }
    Ok(())
}
