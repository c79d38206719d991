//! The berth binary: `berth up` (all-in-one), `berth server` (control plane) and the CLI
//! client (`berth cluster ...`, `berth taskdef ...`).

mod admin;
mod agent;
mod bootstrap;
mod cli;
mod client;
mod creds;
mod env;
mod hosts;
mod leading;
mod listen;
mod replica;
mod server;
mod sim;
mod tls;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A self-hosted container orchestrator that speaks the ECS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start berth on this machine (API + embedded store) with a `default` cluster, and print
    /// the environment for the aws CLI.
    Up(server::ServerOpts),
    /// Start the control plane only.
    Server(server::ServerOpts),
    /// Run this host's agent: join a cluster and run the tasks placed on it.
    Agent(agent::AgentOpts),
    /// Print the join token agents of a cluster use (`rotate`: make a new one).
    JoinToken(cli::misc::JoinTokenArgs),
    /// Services: create, ls, show, scale, deploy [--wait], rm.
    Service(cli::service::Args),
    /// Tasks: run, ls, show, stop.
    Task(cli::task::Args),
    /// Print a task's container output (`--follow` to keep reading).
    Logs(cli::logs::Args),
    /// Container instances: ls, show, drain, activate, rm.
    Instance(cli::instance::Args),
    /// Clusters: ls, create, rm.
    Cluster(cli::cluster::Args),
    /// Task definitions: register, ls, show, rm.
    Taskdef(cli::taskdef::Args),
    /// Load balancers (ELBv2): create, ls, rm, tg create|ls, listen, health.
    Lb(cli::lb::Args),
    /// Host groups (Auto Scaling groups): create, list, describe, scale, delete.
    Hostgroup(cli::hostgroup::Args),
    /// The state store: migrate between redb and etcd, snapshot, restore.
    Admin(admin::Args),
    /// Scale by simulation: N simulated hosts (fake containers) against a real server, services
    /// until the task total is reached; reports placement and RUNNING times, API latency
    /// against an idle baseline, and memory.
    Sim(sim::SimOpts),
    /// IAM users: create, ls, rm (their keys: `berth key`).
    User(cli::iam::UserArgs),
    /// A user's access keys: create (prints the secret once), ls, rotate, delete.
    Key(cli::iam::KeyArgs),
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    // `berth sim` runs thousands of agents: their per-host info lines would drown its own.
    let default_level = match cli.command {
        Command::Sim(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Up(o) => server::run(o, true).await,
            Command::Server(o) => server::run(o, false).await,
            Command::Agent(o) => agent::run(o).await,
            Command::JoinToken(a) => cli::misc::join_token(a).await,
            Command::Service(a) => cli::service::run(a).await,
            Command::Task(a) => cli::task::run(a).await,
            Command::Instance(a) => cli::instance::run(a).await,
            Command::Logs(a) => cli::logs::run(a).await,
            Command::Cluster(a) => cli::cluster::run(a).await,
            Command::Taskdef(a) => cli::taskdef::run(a).await,
            Command::Lb(a) => cli::lb::run(a).await,
            Command::Hostgroup(a) => cli::hostgroup::run(a).await,
            Command::Admin(a) => admin::run(a).await,
            Command::Sim(o) => sim::run(o).await,
            Command::User(a) => cli::iam::user(a).await,
            Command::Key(a) => cli::iam::key(a).await,
        }
    })
}
