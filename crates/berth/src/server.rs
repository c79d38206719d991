//! `berth up` and `berth server`: open the store, load the keys, serve the API until SIGTERM.
//!
//! The controllers and `berth up`'s local agent run under one [`Supervisor`], so a panic in
//! one is logged and the loop restarted rather than lost, and a shutdown stops them. SIGTERM
//! (or Ctrl-C) winds three things down at once, each within [`SHUTDOWN_GRACE`]: the API stops
//! accepting and finishes its requests, the supervised tasks stop, and the load balancer's
//! listeners close. The store is closed only after all three.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use std::time::Duration;

use berth_agent::{Agent, AgentConfig, AgentError};
use berth_api::{join_token, router, ApiState, KeyRing, Ops, OpsConfig};
use berth_control::autoscale::{Collector, MetricsHub};
use berth_control::hostgroup::HostGroupConfig;
use berth_control::{Balancing, CancellationToken, PlaneHealth, PlanePorts, Supervisor};
use berth_model::{SystemClock, DEFAULT_ACCOUNT_ID};

use crate::leading::LeaderLoops;
use crate::{creds, env, replica};

#[derive(Debug, Clone, clap::Args)]
pub struct ServerOpts {
    /// Where state is kept (default: the user's data directory, e.g. ~/.local/share/berth).
    #[arg(long, env = env::DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    /// The state store: `etcd://host:2379[,host2:2379...][/namespace]` for an etcd cluster
    /// (keys go under the namespace, default `berth/`), or a data dir / `.redb` file
    /// (default: the embedded store in the data dir). Keys and logs stay in the data dir.
    #[arg(long, env = env::STORE)]
    pub store: Option<String>,
    /// The 256-bit key that seals secret values in the store (32 raw bytes or 64 hex
    /// digits; keep it 0600). Default: `secrets.key` in the data dir, created on first start.
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
    /// This server's name among the replicas sharing a store (`GET /control-plane` shows
    /// it; default: this host's name and the API's port).
    #[arg(long, env = env::REPLICA_ID)]
    pub replica_id: Option<String>,
    /// Address the API listens on.
    #[arg(long, env = env::LISTEN, default_value = env::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Open API connections at most (default: three quarters of the open-file limit).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Open API connections from one client address at most (default: a quarter of
    /// `--max-connections`).
    #[arg(long)]
    pub max_connections_per_address: Option<usize>,
    /// Seconds a client has to send a request's headers.
    #[arg(long, default_value_t = 10.0)]
    pub header_read_timeout: f64,
    /// Seconds a kept-alive API connection may sit idle before it is closed.
    #[arg(long, default_value_t = 60.0)]
    pub idle_timeout: f64,
    /// AWS API requests a second each access key may make, sustained (0: no limit); over it
    /// requests are answered `ThrottlingException`, which the SDKs retry. Agents are exempt.
    #[arg(long, default_value_t = 100.0)]
    pub api_rate: f64,
    /// Requests an access key may make at once, above `--api-rate`.
    #[arg(long, default_value_t = 200.0)]
    pub api_burst: f64,
    /// Account id shown in ARNs.
    #[arg(long, env = env::ACCOUNT_ID, default_value = DEFAULT_ACCOUNT_ID)]
    pub account_id: String,
    /// Seconds without a poll after which an agent shows `agentConnected: false`.
    #[arg(long, default_value_t = 30.0)]
    pub agent_timeout: f64,
    /// Seconds a STOPPED task stays describable (ECS keeps them about an hour).
    #[arg(long, default_value_t = 3600.0)]
    pub task_retention: f64,
    /// Seconds a task role's temporary credentials live (ECS: 6 hours); refreshed at half.
    #[arg(long, default_value_t = 21600.0)]
    pub task_credentials_secs: f64,
    /// Seconds without a poll after which a host's tasks are given up and replaced
    /// (default: twice the agent timeout).
    #[arg(long)]
    pub host_lost_timeout: Option<f64>,
    /// Seconds a task launched through a capacity provider may wait in PROVISIONING for
    /// capacity before it stops with `TaskFailedToStart` (ECS: about 30 minutes).
    #[arg(long, default_value_t = 1800.0)]
    pub provisioning_timeout: f64,
    /// Seconds between passes of the capacity loop (PROVISIONING placement, managed scaling).
    #[arg(long, default_value_t = 1.0)]
    pub capacity_period: f64,
    /// `berth up` only: the local agent's driver.
    #[arg(long, value_enum, default_value_t = crate::agent::DriverKind::Auto)]
    pub driver: crate::agent::DriverKind,
    /// `berth up` only: whom the local agent's process tasks run as (see `berth agent`).
    #[arg(long, env = env::TASK_USER, default_value = berth_agent::DEFAULT_TASK_USER)]
    pub task_user: String,
    /// `berth up` only: do not run a local agent.
    #[arg(long)]
    pub no_agent: bool,
    /// The address every load-balancer listener binds on (and each load balancer's DNSName).
    #[arg(long, default_value = "127.0.0.1")]
    pub lb_host: std::net::IpAddr,
    /// Seconds between metric samples and autoscaling decisions.
    #[arg(long, default_value_t = 10.0)]
    pub autoscale_period: f64,
    /// Consecutive ten-second datapoints above a target tracking target before a scale-out.
    #[arg(long, default_value_t = 2)]
    pub autoscale_out_points: usize,
    /// Consecutive ten-second datapoints below 90% of the target before a scale-in.
    #[arg(long, default_value_t = 15)]
    pub autoscale_in_points: usize,
    /// Bytes of CloudWatch Logs events kept (in `logs.redb`, apart from the cluster state);
    /// past it the oldest events are evicted, and counted.
    #[arg(long, env = env::LOGS_MAX_BYTES, default_value_t = 256 * 1024 * 1024)]
    pub logs_max_bytes: u64,
    /// Seconds between sweeps that drop events older than their log group's retention.
    #[arg(long, default_value_t = 60.0)]
    pub logs_sweep_interval: f64,
    /// The default VPC's block, made once at the first start with a default subnet (`/20`)
    /// per zone; chosen clear of Docker's address pools (172.17-31.0.0/16, 192.168.0.0/16)
    /// and of common home and office networks. Later starts keep what the store has.
    #[arg(long, env = env::DEFAULT_VPC_CIDR, default_value = berth_model::vpc::DEFAULT_VPC_CIDR)]
    pub default_vpc_cidr: String,
    /// FARGATE capacity: how managed hosts are provided (`process`, `docker` or `command`;
    /// the host group controller starts them).
    #[arg(long, default_value = "process")]
    pub fargate_provider: String,
    /// Seconds an empty managed (FARGATE) host is kept before it goes.
    #[arg(long, default_value_t = 60.0)]
    pub fargate_idle_secs: f64,
    /// At most this many FARGATE hosts per cluster.
    #[arg(long, default_value_t = 20)]
    pub fargate_max_hosts: u32,
    /// At most this many FARGATE_SPOT hosts per cluster (the Spot capacity cap).
    #[arg(long, default_value_t = 10)]
    pub fargate_spot_max_hosts: u32,
    /// The host provider of host groups that name none (tag `berth:provider`): process,
    /// docker or command.
    #[arg(long, default_value = "process")]
    pub host_provider: String,
    /// The driver of `process` hosts' agents.
    #[arg(long, value_enum, default_value_t = crate::agent::DriverKind::Auto)]
    pub host_agent_driver: crate::agent::DriverKind,
    /// The `command` provider's scripts: `create=PATH,destroy=PATH,list=PATH`.
    #[arg(long)]
    pub host_provider_command: Option<String>,
    /// The URL hosts reach this server by, or several separated by commas (every replica's:
    /// hosts fail over between them). Default: the listen address; docker hosts: a
    /// forwarder on the Docker bridge gateway.
    #[arg(long)]
    pub host_server_url: Option<String>,
    /// Seconds a scale-in waits for a host's service tasks to move before terminating it.
    #[arg(long, default_value_t = 300.0)]
    pub host_drain_timeout: f64,
    /// Seconds a join token is good for (24 h, as kubeadm's bootstrap tokens). Registered
    /// agents do not need it again: they keep their instance credential.
    #[arg(long, default_value_t = berth_ops::identity::DEFAULT_TOKEN_TTL_SECS)]
    pub join_token_ttl: f64,
    /// Seconds join tokens issued before a `berth join-token rotate` keep working.
    #[arg(long, default_value_t = berth_ops::identity::DEFAULT_ROTATION_GRACE_SECS)]
    pub join_token_grace: f64,
    /// Join the control plane on `--store etcd://...` as a further replica, with the server
    /// token its first replica printed (`bst1.`...): its keys come from the store's sealed
    /// bootstrap bundle into this data dir.
    #[arg(long, env = env::JOIN, value_name = "SERVER_TOKEN")]
    pub join: Option<String>,
    /// HTTPS for the API and TLS for agents (`--tls`, `--tls-cert`, ...).
    #[command(flatten)]
    pub tls: crate::tls::TlsFlags,
}

/// How long in-flight requests, then the supervised tasks, then the load balancer's requests
/// may run on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("berth")
}

/// What the server's parts share: the store, the clock, the load balancer's data plane,
/// the metrics hub and the control layer.
struct Core {
    store: Arc<dyn berth_store::Store>,
    clock: Arc<dyn berth_model::Clock>,
    plane: berth_lb::DataPlane,
    hub: Arc<MetricsHub>,
    health: Arc<dyn berth_model::lb::TargetHealthSource>,
    ops: Ops,
    agent_timeout: f64,
}

/// Opens (and migrates) the store and builds the control layer over it.
async fn open_core(
    opts: &ServerOpts,
    data_dir: &std::path::Path,
    key: &creds::RootKey,
) -> Result<Core> {
    let store = crate::admin::StoreSpec::or_data_dir(opts.store.as_deref(), data_dir)
        .open()
        .await?;
    // Stored state from an earlier release is brought up to this one's schema before anything
    // reads it.
    berth_control::migrate::migrate(&*store)
        .await
        .context("migrating the stored state")?;
    let clock: Arc<dyn berth_model::Clock> = Arc::new(SystemClock);
    let agent_timeout = opts.agent_timeout.max(1.0);
    // The load balancer's data plane runs in this process; its configuration follows the
    // ELBv2 records, and its target health feeds DescribeTargetHealth and the services.
    // One single-threaded runtime per core, each with its own descriptor of every listener's
    // exclusive socket and its own upstream pools: requests never hop between threads, and
    // the API's runtime is not the one serving the listeners' clients (see DESIGN.md).
    let plane = berth_lb::DataPlane::with_options(berth_lb::DataPlaneOptions {
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..Default::default()
    });
    let health: Arc<dyn berth_model::lb::TargetHealthSource> =
        Arc::new(PlaneHealth::new(plane.clone()));
    // Metrics flow from agents' reports and the load balancer into the time-series hub,
    // which the autoscaler, `/metrics` and the API read.
    let hub = Arc::new(MetricsHub::new());
    let ops = Ops::new(
        store.clone(),
        clock.clone(),
        OpsConfig {
            account_id: opts.account_id.clone(),
            agent_timeout_secs: agent_timeout,
            max_poll_wait_secs: (agent_timeout / 3.0).clamp(0.5, 20.0),
            join_secret: key.secret_access_key.clone(),
            join_token_ttl_secs: opts.join_token_ttl.max(1.0),
            join_token_grace_secs: opts.join_token_grace.max(0.0),
            region: env::DEFAULT_REGION.to_owned(),
            task_credentials_secs: opts.task_credentials_secs.max(2.0),
        },
    )
    .with_target_health(health.clone())
    .with_listener_ports(Arc::new(PlanePorts::new(plane.clone(), opts.lb_host)))
    .with_lb_host(opts.lb_host.to_string())
    .with_metrics_hub(hub.clone())
    .with_secrets_key(berth_ops::secrets::SecretsKey::from_bytes(
        creds::secrets_key(data_dir, opts.master_key_file.as_deref())?,
    ));
    // Log events live in their own file, bounded, so they never weigh on the cluster store.
    let logs_path = data_dir.join("logs.redb");
    berth_store::owner_only(&logs_path)
        .with_context(|| format!("securing {}", logs_path.display()))?;
    let logs = berth_logs::RedbLogStore::open(
        &logs_path,
        berth_logs::LogStoreConfig {
            max_bytes: opts.logs_max_bytes,
        },
    )
    .with_context(|| format!("opening log store {}", logs_path.display()))?;
    let ops = ops.with_logs(Arc::new(logs));
    // The default VPC, its subnets and `default` security group, as an AWS account has them.
    berth_ops::ec2::ensure_defaults(&ops, env::DEFAULT_REGION, &opts.default_vpc_cidr)
        .await
        .map_err(|e| anyhow::anyhow!("making the default VPC: {}", e.message))?;
    Ok(Core {
        store,
        clock,
        plane,
        hub,
        health,
        ops,
        agent_timeout,
    })
}

/// Starts the loops every replica runs, leader or not, under `supervisor`: the metrics
/// collector and the load balancer's sync (the leader-only ones are in `crate::leading`).
/// `shared`: this replica's id when other replicas may share the store (the collector then
/// shares its load balancer's request counts with them).
fn spawn_replica_loops(
    supervisor: &mut Supervisor,
    core: &Core,
    opts: &ServerOpts,
    shared: Option<&str>,
) {
    let (store, clock) = (&core.store, &core.clock);
    let period = opts.autoscale_period.clamp(1.0, 60.0);
    let mut collector = Collector::new(
        store.clone(),
        clock.clone(),
        core.hub.clone(),
        Some(core.plane.clone()),
        period,
    );
    if let Some(id) = shared {
        collector = collector.with_replica(id);
    }
    let collector = Arc::new(collector);
    supervisor.spawn("metrics collector", move |stop| collector.clone().run(stop));
    let balancing = Arc::new(Balancing::new(
        store.clone(),
        core.plane.clone(),
        opts.lb_host,
    ));
    supervisor.spawn("load balancer sync", move |stop| {
        balancing.clone().run(stop)
    });
}

/// What the leader-only loops need, the host group controller's providers and settings
/// included.
fn leader_loops(
    core: &Core,
    opts: &ServerOpts,
    data_dir: &std::path::Path,
    addr: SocketAddr,
    endpoint: &str,
    key: &creds::RootKey,
    ca: Option<&std::path::Path>,
) -> Result<LeaderLoops> {
    let providers = crate::hosts::providers(opts, data_dir, addr, ca)?;
    let secret = key.secret_access_key.clone();
    let (clock, ttl) = (core.clock.clone(), opts.join_token_ttl.max(1.0));
    let cfg = HostGroupConfig {
        default_provider: opts.host_provider.clone(),
        server_url: opts
            .host_server_url
            .clone()
            .unwrap_or_else(|| endpoint.to_owned()),
        // A host gets a token minted at its launch, so it is good for the full lifetime.
        join_token: Arc::new(move |cluster: &str| join_token(&secret, cluster, clock.now(), ttl)),
        period: Duration::from_millis(500),
        drain_timeout: opts.host_drain_timeout.max(0.0),
        agent_timeout: core.agent_timeout,
    };
    Ok(LeaderLoops {
        clock: core.clock.clone(),
        hub: core.hub.clone(),
        health: core.health.clone(),
        logs: core.ops.log_store(),
        opts: opts.clone(),
        agent_timeout: core.agent_timeout,
        host_groups: (providers, cfg),
    })
}

/// Starts `berth up`'s local agent, in the `default` cluster, under `supervisor`.
async fn start_local_agent(
    supervisor: &mut Supervisor,
    opts: &ServerOpts,
    data_dir: &std::path::Path,
    endpoint: &str,
    token: &str,
    agent_timeout: f64,
    ca: Option<&std::path::Path>,
) -> Result<()> {
    let ca_cert_pem = ca
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let agent_dir = data_dir.join("agent");
    private_dir(&agent_dir)?;
    let driver = crate::agent::driver(opts.driver, &agent_dir, &opts.task_user).await?;
    let cfg = AgentConfig {
        server: endpoint.to_owned(),
        cluster: "default".into(),
        join_token: token.to_owned(),
        state_dir: agent_dir,
        attributes: vec![("berth.managed".into(), Some("true".into()))],
        poll_wait: Duration::from_secs_f64((agent_timeout / 4.0).clamp(0.5, 20.0)),
        cleanup_after: Duration::from_secs(600),
        cpu_units: None,
        memory_mib: None,
        logs_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        advertise: None,
        metadata_listen: Some(std::net::SocketAddr::from(([0, 0, 0, 0], 0))),
        ca_cert_pem,
    };
    tracing::info!(driver = driver.name(), "starting the local agent");
    supervisor.spawn("local agent", move |stop| {
        let agent = Agent::new(cfg.clone(), driver.clone());
        async move {
            match agent.run(stop.clone().cancelled_owned()).await {
                Ok(()) => {}
                // Final, as for `berth agent`: stay down (no restart) until shutdown.
                Err(e @ AgentError::Deregistered) => {
                    tracing::error!(error = %e, "local agent stopped");
                    stop.cancelled().await;
                }
                // Anything else: the supervisor logs the return and restarts it.
                Err(e) => tracing::error!(error = %e, "local agent failed"),
            }
        }
    });
    Ok(())
}

/// The lines a newcomer pastes into a shell.
fn print_exports(
    endpoint: &str,
    data_dir: &std::path::Path,
    key: &creds::RootKey,
    token: &str,
    ca: Option<&std::path::Path>,
) {
    println!(
        "berth is up: API at {endpoint}, state in {}",
        data_dir.display()
    );
    println!("# paste into your shell to use the aws CLI or any SDK against berth:");
    println!("export AWS_ACCESS_KEY_ID={}", key.access_key_id);
    println!("export AWS_SECRET_ACCESS_KEY={}", key.secret_access_key);
    println!("export AWS_DEFAULT_REGION={}", env::DEFAULT_REGION);
    println!("export AWS_ENDPOINT_URL_ECS={endpoint}");
    println!("export AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2={endpoint}");
    println!("export AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING={endpoint}");
    println!("export AWS_ENDPOINT_URL_SSM={endpoint}");
    println!("export AWS_ENDPOINT_URL_SECRETS_MANAGER={endpoint}");
    println!("export AWS_ENDPOINT_URL_CLOUDWATCH_LOGS={endpoint}");
    println!("export AWS_ENDPOINT_URL_EC2={endpoint}");
    println!("export AWS_ENDPOINT_URL_AUTO_SCALING={endpoint}");
    println!("export AWS_ENDPOINT_URL_IAM={endpoint}");
    let ca_flag = match ca {
        Some(ca) => {
            // The aws CLI, boto3 and the berth CLI all read it.
            println!("export AWS_CA_BUNDLE={}", ca.display());
            if let Ok(hash) = std::fs::read_to_string(ca)
                .map_err(|e| e.to_string())
                .and_then(|pem| crate::tls::cert_hash(&pem).map_err(|e| e.to_string()))
            {
                println!("# the cluster CA's hash (compare it on other hosts): {hash}");
            }
            format!(" --ca-cert {}", ca.display())
        }
        None => String::new(),
    };
    println!("# agents on other hosts join the default cluster with (copy the CA file over):");
    println!("#   berth agent --server {endpoint} --cluster default --token {token}{ca_flag}");
    println!(
        "# Prometheus reads {endpoint}/metrics with the bearer token in metrics.token (data dir)"
    );
    println!("# then: aws ecs list-clusters");
}

/// The API listener's limits: sized from the descriptor limit, overridden by the flags.
fn api_limits(opts: &ServerOpts) -> Result<crate::listen::Limits> {
    let mut l = crate::listen::Limits::from_fd_limit();
    if let Some(n) = opts.max_connections {
        anyhow::ensure!(n > 0, "--max-connections must be at least 1");
        l.max_connections = n;
        l.max_per_address = l.max_per_address.min(n);
    }
    if let Some(n) = opts.max_connections_per_address {
        anyhow::ensure!(n > 0, "--max-connections-per-address must be at least 1");
        l.max_per_address = n.min(l.max_connections);
    }
    let secs = |name: &str, v: f64| -> Result<Duration> {
        anyhow::ensure!(
            v.is_finite() && v > 0.0,
            "--{name} must be a positive number of seconds"
        );
        Ok(Duration::from_secs_f64(v))
    };
    l.header_read_timeout = secs("header-read-timeout", opts.header_read_timeout)?;
    l.idle_timeout = secs("idle-timeout", opts.idle_timeout)?;
    Ok(l)
}

/// The API's TLS, if on: the certificate is issued for loopback, this host's name, the listen
/// address, `--tls-san`, the host of `--host-server-url`, and the Docker bridge gateway (docker
/// hosts dial the server there) when Docker answers.
async fn api_tls(
    opts: &ServerOpts,
    data_dir: &std::path::Path,
    addr: SocketAddr,
) -> Result<Option<crate::tls::Tls>> {
    if !opts.tls.on() {
        return Ok(crate::tls::setup(&opts.tls, data_dir, &[])?);
    }
    let mut extra = opts.tls.sans.clone();
    let host_urls =
        berth_agent::failover::split_urls(opts.host_server_url.as_deref().unwrap_or(""));
    extra.extend(
        host_urls
            .iter()
            .filter_map(|u| reqwest::Url::parse(u).ok())
            .filter_map(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned())),
    );
    if opts.tls.cert.is_none() {
        if let Ok(Some(gw)) = tokio::time::timeout(
            Duration::from_secs(5),
            crate::hosts::docker::bridge_gateway(),
        )
        .await
        {
            extra.push(gw.to_string());
        }
    }
    let names = crate::tls::server_names(addr.ip(), crate::tls::hostname().as_deref(), &extra);
    Ok(crate::tls::setup(&opts.tls, data_dir, &names)?)
}

/// The per-access-key rate limit the flags ask for (`None`: off).
fn rate_limit(opts: &ServerOpts) -> Result<Option<berth_api::RateLimit>> {
    anyhow::ensure!(
        opts.api_rate.is_finite() && opts.api_rate >= 0.0,
        "--api-rate must be a number of requests a second, 0 for no limit"
    );
    anyhow::ensure!(
        opts.api_burst.is_finite() && opts.api_burst >= 1.0,
        "--api-burst must be at least 1"
    );
    Ok((opts.api_rate > 0.0).then_some(berth_api::RateLimit {
        rate: opts.api_rate,
        burst: opts.api_burst,
    }))
}

/// Creates a directory readable by its owner only (0700), or tightens an existing one: the
/// data dir holds the store, the secrets key and the access key.
pub(crate) fn private_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("securing {}", dir.display()))?;
    }
    Ok(())
}

/// The API's state: the root key, `/metrics` behind its token, the per-key rate limit.
fn api_state(
    opts: &ServerOpts,
    core: &Core,
    key: &creds::RootKey,
    data_dir: &std::path::Path,
    leadership: tokio::sync::watch::Receiver<berth_store::Leadership>,
) -> Result<ApiState> {
    let (metrics_plane, metrics_hub) = (core.plane.clone(), core.hub.clone());
    Ok(ApiState::new(
        core.ops.clone(),
        KeyRing::new().with_key(&key.access_key_id, &key.secret_access_key),
    )
    .with_metrics(Arc::new(move |out: &mut String| {
        metrics_plane.render_metrics(out);
        metrics_hub.render(out);
        replica::render_metrics(&leadership.borrow(), out);
    }))
    .with_metrics_token(creds::metrics_token(data_dir)?)
    .with_rate_limit(rate_limit(opts)?))
}

/// The URL clients and agents use: https when TLS is on, and loopback rather than the
/// unspecified address (the certificate names loopback).
fn endpoint_url(addr: SocketAddr, tls: bool) -> String {
    match (tls, addr.ip().is_unspecified()) {
        (false, _) => format!("http://{addr}"),
        (true, true) => format!("https://127.0.0.1:{}", addr.port()),
        (true, false) => format!("https://{addr}"),
    }
}

/// The API's listening socket and the address it got.
async fn bind(listen: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Creates the `default` cluster (a no-op if it exists).
async fn create_default_cluster(core: &Core) -> Result<()> {
    let req = berth_ops::parse_body(br#"{"clusterName": "default"}"#)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    berth_ops::ecs::clusters::create(&core.ops.ctx(env::DEFAULT_REGION), req)
        .await
        .map_err(|e| anyhow::anyhow!("creating the default cluster: {}", e.message))?;
    Ok(())
}

/// Runs `loops` under `supervisor` for every term `election` gives this replica.
fn start_leadership(
    supervisor: &mut Supervisor,
    election: &berth_store::Election,
    core: &Core,
    loops: LeaderLoops,
) {
    let loops = Arc::new(loops);
    let (leadership, fencing, store) =
        (election.subscribe(), election.fencing(), core.store.clone());
    supervisor.spawn("leadership", move |stop| {
        replica::follow(
            leadership.clone(),
            fencing,
            store.clone(),
            loops.clone(),
            stop,
        )
    });
}

/// A join token for the `default` cluster, good for `--join-token-ttl` from now.
fn default_join_token(key: &creds::RootKey, core: &Core, opts: &ServerOpts) -> String {
    join_token(
        &key.secret_access_key,
        "default",
        core.clock.now(),
        opts.join_token_ttl.max(1.0),
    )
}

/// Runs the control plane. With `up`, also prepares the newcomer's example (the `default`
/// cluster and a local agent) and prints the environment to paste.
pub async fn run(opts: ServerOpts, up: bool) -> Result<()> {
    let data_dir = opts.data_dir.clone().unwrap_or_else(default_data_dir);
    private_dir(&data_dir)?;
    crate::bootstrap::join(&opts, &data_dir).await?;
    let key = creds::load_or_create(&data_dir)?;
    // Bound first: the replica's default id names the API's port.
    let (listener, addr) = bind(opts.listen).await?;
    let core = open_core(&opts, &data_dir, &key).await?;
    let replica_id = replica::replica_id(opts.replica_id.as_deref(), addr);
    let election = core.store.elect(&replica_id);
    let state = api_state(&opts, &core, &key, &data_dir, election.subscribe())?;
    let server_token = crate::bootstrap::publish(&opts, &core.store, &data_dir, &key).await?;
    let mut supervisor = Supervisor::new(CancellationToken::new());
    let shared = election.fencing().then_some(replica_id.as_str());
    spawn_replica_loops(&mut supervisor, &core, &opts, shared);
    if up {
        // The example cluster exists before the API answers, so a client that sees the API
        // up also sees `default` (CreateCluster of an existing cluster is a no-op).
        create_default_cluster(&core).await?;
    }
    let tls = api_tls(&opts, &data_dir, addr).await?;
    let ca = tls.as_ref().map(|t| t.ca_bundle.clone());
    tracing::info!(%addr, replica = %replica_id, data_dir = %data_dir.display(), tls = tls.is_some(), "berth API listening");
    let closing = state.clone();
    let (signalled_tx, mut signalled) = tokio::sync::watch::channel(false);
    let limits = api_limits(&opts)?;
    tracing::info!(?limits, "API connection limits");
    let serve = crate::listen::serve(
        listener,
        router(state).merge(replica::routes(election.subscribe())),
        limits,
        tls,
        async move {
            shutdown_signal().await;
            closing.begin_shutdown();
            let _ = signalled_tx.send(true);
        },
    );
    let mut server = tokio::spawn(serve);

    let endpoint = endpoint_url(addr, ca.is_some());
    let token = default_join_token(&key, &core, &opts);
    if up && !opts.no_agent {
        let timeout = core.agent_timeout;
        start_local_agent(
            &mut supervisor,
            &opts,
            &data_dir,
            &endpoint,
            &token,
            timeout,
            ca.as_deref(),
        )
        .await?;
    }
    let loops = leader_loops(
        &core,
        &opts,
        &data_dir,
        addr,
        &endpoint,
        &key,
        ca.as_deref(),
    )?;
    start_leadership(&mut supervisor, &election, &core, loops);
    print_exports(&endpoint, &data_dir, &key, &token, ca.as_deref());
    if let Some(t) = &server_token {
        crate::bootstrap::print_join_line(&opts, t);
    }

    // After SIGTERM three things wind down at once, each within SHUTDOWN_GRACE: the API's
    // in-flight requests (a stalled client cannot hold the server up for longer), the
    // controllers and the local agent (they finish their pass; stragglers are aborted and
    // named in the log), and the load balancer's listeners with their in-flight requests. None
    // waits for another, so a stalled client never adds to the others' time: every record they
    // work from is in the store, and the next start reconciles from there.
    let mut others_signalled = signalled.clone();
    let api = async {
        tokio::select! {
            r = &mut server => r?.context("API server failed"),
            _ = async {
                let _ = signalled.wait_for(|s| *s).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                tracing::warn!("requests still open after {SHUTDOWN_GRACE:?}; exiting anyway");
                Ok(())
            }
        }
    };
    let plane = core.plane.clone();
    let others = async move {
        // The sender goes without a signal only when the API server itself ended (an error,
        // returned below): nothing to wind down then.
        if others_signalled.wait_for(|s| *s).await.is_err() {
            return;
        }
        let lb = async {
            if tokio::time::timeout(SHUTDOWN_GRACE, plane.shutdown())
                .await
                .is_err()
            {
                tracing::warn!(
                    "load balancer requests still open after {SHUTDOWN_GRACE:?}; exiting anyway"
                );
            }
        };
        // The loops first, then leadership: another replica takes over at once instead of
        // waiting out the lease.
        let handover = async {
            supervisor.shutdown(SHUTDOWN_GRACE).await;
            election.resign(Duration::from_secs(1)).await;
        };
        tokio::join!(handover, lb);
    };
    let (served, ()) = tokio::join!(api, others);
    served?;
    tracing::info!("berth stopped");
    Ok(())
}

pub async fn shutdown_signal() {
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
