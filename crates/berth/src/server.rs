//! `berth up` and `berth server`: open the store, load the keys, serve the API until SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use berth_api::{router, ApiConfig, ApiState, KeyRing};
use berth_model::{SystemClock, DEFAULT_ACCOUNT_ID};
use berth_store::RedbStore;
use serde_json::json;

use crate::{client, creds, env};

#[derive(Debug, Clone, clap::Args)]
pub struct ServerOpts {
    /// Where state is kept (default: the user's data directory, e.g. ~/.local/share/berth).
    #[arg(long, env = env::DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    /// Address the API listens on.
    #[arg(long, env = env::LISTEN, default_value = env::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Account id shown in ARNs.
    #[arg(long, env = env::ACCOUNT_ID, default_value = DEFAULT_ACCOUNT_ID)]
    pub account_id: String,
}

pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("berth")
}

/// Runs the control plane. With `up`, also prepares the newcomer's example (the `default`
/// cluster) and prints the environment to paste.
pub async fn run(opts: ServerOpts, up: bool) -> Result<()> {
    let data_dir = opts.data_dir.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let key = creds::load_or_create(&data_dir)?;
    let db = data_dir.join("berth.redb");
    let store = RedbStore::open(&db).with_context(|| format!("opening store {}", db.display()))?;
    let state = ApiState::new(
        Arc::new(store),
        Arc::new(SystemClock),
        KeyRing::new().with_key(&key.access_key_id, &key.secret_access_key),
        ApiConfig {
            account_id: opts.account_id.clone(),
        },
    );
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %data_dir.display(), "berth API listening");
    let serve = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown_signal());
    let server = tokio::spawn(async move { serve.await });

    let endpoint = format!("http://{addr}");
    if up {
        let c = client::Client::with_key(&endpoint, env::DEFAULT_REGION, &key);
        c.ecs("CreateCluster", &json!({"clusterName": "default"}))
            .await
            .context("creating the default cluster")?;
    }
    println!(
        "berth is up: API at {endpoint}, state in {}",
        data_dir.display()
    );
    println!("# paste into your shell to use the aws CLI or any SDK against berth:");
    println!("export AWS_ACCESS_KEY_ID={}", key.access_key_id);
    println!("export AWS_SECRET_ACCESS_KEY={}", key.secret_access_key);
    println!("export AWS_DEFAULT_REGION={}", env::DEFAULT_REGION);
    println!("export AWS_ENDPOINT_URL_ECS={endpoint}");
    println!("# then: aws ecs list-clusters");

    server.await?.context("API server failed")?;
    tracing::info!("berth stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
