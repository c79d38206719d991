//! The host providers behind [`berth_control::hostgroup::HostProvider`]: `process`, `docker`
//! and `command`. They do I/O (processes, containers, the operator's scripts), so they live
//! in the binary; the host group controller only sees the trait.

pub mod command;
pub mod docker;
pub mod process;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use berth_control::hostgroup::HostProvider;

use crate::server::ServerOpts;

/// Every provider this server can use, by name: `process` and `docker` always, `command`
/// when its scripts are configured. With `ca` (the API serves TLS), `process` and `docker`
/// hosts' agents trust that CA bundle.
pub fn providers(
    opts: &ServerOpts,
    data_dir: &Path,
    addr: SocketAddr,
    ca: Option<&Path>,
) -> anyhow::Result<HashMap<String, Arc<dyn HostProvider>>> {
    let exe = std::env::current_exe()?;
    let mut out: HashMap<String, Arc<dyn HostProvider>> = HashMap::new();
    out.insert(
        "process".into(),
        Arc::new(
            process::ProcessProvider::new(exe, data_dir.join("hosts"), opts.host_agent_driver)
                .with_ca(ca.map(Path::to_path_buf)),
        ),
    );
    out.insert(
        "docker".into(),
        Arc::new(
            docker::DockerProvider::new(addr, opts.host_server_url.clone(), data_dir.to_path_buf())
                .with_ca(ca.map(Path::to_path_buf)),
        ),
    );
    if let Some(spec) = &opts.host_provider_command {
        out.insert(
            "command".into(),
            Arc::new(command::CommandProvider::parse(spec)?),
        );
    }
    if !out.contains_key(&opts.host_provider) {
        anyhow::bail!(
            "--host-provider {:?} is not available (process, docker, or command with --host-provider-command)",
            opts.host_provider
        );
    }
    Ok(out)
}
