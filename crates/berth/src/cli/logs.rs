//! `berth logs TASK [--container NAME] [--follow]`: a task's container output, read from the
//! agent that runs it (the server says where, and hands out the token the agent accepts).

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::{s, Common};
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Task id or ARN.
    task: String,
    /// The container (default: the first by name).
    #[arg(long)]
    container: Option<String>,
    /// Keep printing new lines until the container exits.
    #[arg(long, short)]
    follow: bool,
    #[arg(long, default_value = "default")]
    cluster: String,
    #[command(flatten)]
    common: Common,
}

pub async fn run(a: Args) -> Result<()> {
    let c = Client::from_env(&a.common.client)?;
    let ep = c
        .berth(
            "GetTaskLogsEndpoint",
            &json!({"cluster": a.cluster, "task": a.task}),
        )
        .await?;
    let url = format!("http://{}/v1/logs", s(&ep["endpoint"]));
    let mut query = vec![("task", s(&ep["taskId"])), ("follow", a.follow.to_string())];
    if let Some(name) = &a.container {
        query.push(("container", name.clone()));
    }
    let mut resp = reqwest::Client::new()
        .get(&url)
        .header(berth_model::agent::JOIN_TOKEN_HEADER, s(&ep["token"]))
        .query(&query)
        .send()
        .await
        .with_context(|| format!("cannot reach the agent at {url}"))?;
    if !resp.status().is_success() {
        bail!(
            "{}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    use std::io::Write;
    let mut out = std::io::stdout();
    while let Some(chunk) = resp.chunk().await? {
        out.write_all(&chunk)?;
        out.flush()?;
    }
    Ok(())
}
