//! `berth agent`: run this host's agent for a cluster, with the docker or process driver.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_agent::{Agent, AgentConfig, DockerDriver, Driver, ProcessDriver};

use crate::env;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriverKind {
    /// Docker if the engine answers, else process.
    Auto,
    Docker,
    Process,
}

#[derive(Debug, Clone, clap::Args)]
pub struct AgentOpts {
    /// The berth server's URL, or several separated by commas (the replicas of one control
    /// plane): the agent uses one and moves to the next when it does not answer or answers
    /// 5xx, without registering again.
    #[arg(long, env = env::AGENT_SERVER, default_value = "http://127.0.0.1:9400")]
    pub server: String,
    /// The cluster to join.
    #[arg(long, env = env::AGENT_CLUSTER, default_value = "default")]
    pub cluster: String,
    /// The cluster's join token (`berth join-token CLUSTER` prints it).
    #[arg(long, env = env::JOIN_TOKEN)]
    pub token: String,
    /// Where the agent keeps its identity and the process driver its state.
    #[arg(long, env = env::AGENT_STATE_DIR)]
    pub state_dir: Option<PathBuf>,
    /// The container runtime.
    #[arg(long, value_enum, default_value_t = DriverKind::Auto)]
    pub driver: DriverKind,
    /// Process driver: the user task commands run as unless a container names its own
    /// (`nobody`'s uid by default; `root` to run them as the agent's user).
    #[arg(long, env = env::TASK_USER, default_value = berth_agent::DEFAULT_TASK_USER)]
    pub task_user: String,
    /// Extra attributes for placement constraints (`k=v` or `k`), repeatable.
    #[arg(long = "attribute")]
    pub attributes: Vec<String>,
    /// Seconds a poll waits for news (the heartbeat period).
    #[arg(long, default_value_t = 5.0)]
    pub poll_wait: f64,
    /// Override the detected cpu units (1024 per core).
    #[arg(long)]
    pub cpu: Option<u64>,
    /// Override the detected memory (MiB).
    #[arg(long)]
    pub memory: Option<u64>,
    /// Where to serve container logs for `berth logs` (port 0 = any free port). Loopback
    /// unless told otherwise: give this host's address for clients on other machines.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub logs_listen: std::net::SocketAddr,
    /// The name or address others reach this host by (default: its host name).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Docker driver: only containers labelled with this scope are this agent's (default: the
    /// absolute path of the state dir), so agents sharing one Docker daemon never adopt or
    /// stop each other's containers.
    #[arg(long)]
    pub scope: Option<String>,
    /// Where to serve the task metadata endpoint (`ECS_CONTAINER_METADATA_URI_V4`). The
    /// default, an unspecified address, means Docker's bridge gateway with the docker driver
    /// (reachable from bridge and host mode containers) and loopback with the process driver.
    #[arg(long, default_value = "0.0.0.0:0")]
    pub metadata_listen: std::net::SocketAddr,
    /// Serve no task metadata endpoint (containers get no metadata URI).
    #[arg(long)]
    pub no_metadata: bool,
    /// The CA bundle (PEM) to trust for an `https://` server: the cluster CA (`ca.pem` in the
    /// server's data dir, copied over). Only these certificates are trusted, never the
    /// system's roots.
    #[arg(long, env = env::CA_CERT)]
    pub ca_cert: Option<PathBuf>,
}

/// The docker scope of an agent keeping its state in `state_dir`: the directory's absolute
/// path, unique per agent on a host and stable across restarts (adoption needs both).
pub fn default_scope(state_dir: &std::path::Path) -> String {
    state_dir
        .canonicalize()
        .unwrap_or_else(|_| state_dir.to_path_buf())
        .display()
        .to_string()
}

/// Picks and connects the driver; a docker driver gets the state dir's default scope.
pub async fn driver(
    kind: DriverKind,
    state_dir: &std::path::Path,
    task_user: &str,
) -> Result<Arc<dyn Driver>> {
    Ok(connect(kind, state_dir, None, task_user).await?.0)
}

/// A connected driver and the attributes it adds to the host's registration.
pub type Connected = (Arc<dyn Driver>, Vec<(String, Option<String>)>);

/// Picks and connects the driver; a docker driver only owns containers of `scope` (default:
/// [`default_scope`]). Also returns the attributes the driver adds to the host's
/// registration (for docker: its version and the negotiated remote API version).
pub async fn connect(
    kind: DriverKind,
    state_dir: &std::path::Path,
    scope: Option<&str>,
    task_user: &str,
) -> Result<Connected> {
    let scope = scope.map_or_else(|| default_scope(state_dir), str::to_owned);
    let docker = || async {
        let d = DockerDriver::connect().await?.with_scope(scope.clone());
        let attrs = docker_attributes(&d).await;
        Ok::<_, berth_agent::DriverError>((Arc::new(d) as Arc<dyn Driver>, attrs))
    };
    let process = || -> Result<Connected> {
        Ok((
            Arc::new(
                ProcessDriver::with_task_user(state_dir.join("process"), task_user)
                    .context("process driver")?,
            ),
            Vec::new(),
        ))
    };
    match kind {
        DriverKind::Process => process(),
        DriverKind::Docker => Ok(docker().await.context("docker driver")?),
        DriverKind::Auto => match docker().await {
            Ok(d) => Ok(d),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "Docker is not available: falling back to the PROCESS driver, which runs \
                     task commands directly on this host (as --task-user, in a cgroup where \
                     cgroup v2 allows), with no image, filesystem or network separation. Pass \
                     --driver docker to refuse to start without Docker, or --driver process \
                     to choose this knowingly."
                );
                eprintln!(
                    "berth agent: WARNING: Docker is not available ({e}); tasks run as plain \
                     processes on this host, unisolated (see --driver)"
                );
                process()
            }
        },
    }
}

/// `berth.docker-version` (the daemon's version, without build metadata, in the characters
/// ECS allows in attribute values) and `com.amazonaws.ecs.capability.docker-remote-api.X.Y`
/// for the API version the driver speaks, as the ECS agent advertises them.
async fn docker_attributes(d: &DockerDriver) -> Vec<(String, Option<String>)> {
    let (major, minor) = d.api_version();
    let mut attrs = vec![(
        format!("com.amazonaws.ecs.capability.docker-remote-api.{major}.{minor}"),
        None,
    )];
    match d.server_version().await {
        Ok(v) => {
            let v: String = v
                .split('+')
                .next()
                .unwrap_or_default()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '-'
                    }
                })
                .take(128)
                .collect();
            if !v.is_empty() {
                attrs.push(("berth.docker-version".into(), Some(v)));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the docker version"),
    }
    attrs
}

pub fn parse_attributes(list: &[String]) -> Result<Vec<(String, Option<String>)>> {
    list.iter()
        .map(|a| {
            let (k, v) = match a.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (a.as_str(), None),
            };
            if k.is_empty() {
                bail!("bad --attribute {a:?}: expected k=v or k");
            }
            // Refuse now what the server would refuse at every registration attempt.
            let attr = berth_model::Attribute {
                name: k.to_owned(),
                value: v.clone(),
                target_type: None,
                target_id: None,
            };
            if let Err(e) = attr.validate() {
                bail!("bad --attribute {a:?}: {}", e.message);
            }
            Ok((k.to_owned(), v))
        })
        .collect()
}

/// The CA bundle to trust, read and checked now rather than at every call: `--ca-cert` goes
/// with an `https://` server, and an `https://` server needs it.
fn ca_cert(o: &AgentOpts) -> Result<Option<Vec<u8>>> {
    let urls = berth_agent::failover::split_urls(&o.server);
    let https = urls.iter().any(|u| u.starts_with("https://"));
    if https && !urls.iter().all(|u| u.starts_with("https://")) {
        bail!(
            "--server {}: mixes https:// and http:// URLs; give the replicas one scheme",
            o.server
        );
    }
    let Some(path) = &o.ca_cert else {
        if https {
            bail!(
                "--server {} is https: pass the cluster CA with --ca-cert FILE",
                o.server
            );
        }
        return Ok(None);
    };
    if !https {
        bail!("--ca-cert is for an https:// server, not {}", o.server);
    }
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(Some(pem)),
        Ok(_) => bail!("--ca-cert {}: no certificate in it", path.display()),
        Err(e) => bail!("--ca-cert {}: {e}", path.display()),
    }
}

pub fn config(o: &AgentOpts, state_dir: PathBuf) -> Result<AgentConfig> {
    Ok(AgentConfig {
        ca_cert_pem: ca_cert(o)?,
        server: o.server.clone(),
        cluster: o.cluster.clone(),
        join_token: o.token.clone(),
        state_dir,
        attributes: parse_attributes(&o.attributes)?,
        poll_wait: Duration::from_secs_f64(o.poll_wait.clamp(0.5, 60.0)),
        cleanup_after: Duration::from_secs(600),
        cpu_units: o.cpu,
        memory_mib: o.memory,
        logs_listen: Some(o.logs_listen),
        advertise: o.advertise.clone(),
        metadata_listen: (!o.no_metadata).then_some(o.metadata_listen),
    })
}

pub async fn run(o: AgentOpts) -> Result<()> {
    let state_dir = o
        .state_dir
        .clone()
        .unwrap_or_else(|| crate::server::default_data_dir().join("agent"));
    crate::server::private_dir(&state_dir)?;
    let (driver, driver_attributes) =
        connect(o.driver, &state_dir, o.scope.as_deref(), &o.task_user).await?;
    tracing::info!(driver = driver.name(), server = %o.server, cluster = %o.cluster, "agent starting");
    let mut cfg = config(&o, state_dir)?;
    // The user's --attribute wins over what the driver says.
    for (k, v) in driver_attributes {
        if !cfg.attributes.iter().any(|(name, _)| *name == k) {
            cfg.attributes.push((k, v));
        }
    }
    let agent = Agent::new(cfg, driver);
    agent.run(crate::server::shutdown_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        o: AgentOpts,
    }

    fn opts(args: &[&str]) -> AgentOpts {
        Cmd::parse_from(std::iter::once("agent").chain(args.iter().copied())).o
    }

    #[test]
    fn a_host_group_host_gets_every_server_url() {
        // What the process and docker providers start hosts with, for `--host-server-url a,b`.
        let spec = berth_control::hostgroup::HostSpec {
            instance_id: "i-1".into(),
            group: "g".into(),
            cluster: "default".into(),
            server_url: "http://10.0.0.1:9400,http://10.0.0.2:9400".into(),
            join_token: "t".into(),
            instance_type: "t3.small".into(),
            image_id: "berth-host".into(),
            cpu: 1024,
            memory: 1024,
            attributes: vec![],
            user_data: None,
        };
        let mut args = crate::hosts::process::agent_args(&spec, "/tmp/s", "process");
        args.extend(["--token".into(), "t".into()]);
        let o = Cmd::parse_from(args).o;
        let cfg = config(&o, "/tmp/s".into()).unwrap();
        assert_eq!(
            berth_agent::failover::Endpoints::parse(&cfg.server).urls(),
            ["http://10.0.0.1:9400", "http://10.0.0.2:9400"]
        );
    }

    #[test]
    fn mixed_schemes_are_refused() {
        let o = opts(&["--server", "https://a:9400,http://b:9400", "--token", "t"]);
        let err = ca_cert(&o).unwrap_err().to_string();
        assert!(err.contains("mixes https:// and http://"), "{err}");
        let o = opts(&["--server", "https://a:9400,https://b:9400", "--token", "t"]);
        assert!(ca_cert(&o).unwrap_err().to_string().contains("--ca-cert"));
    }
}
