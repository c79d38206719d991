//! What a container runs, worked out from its spec before anything is spawned: the command
//! line, the environment (base `PATH`, the `PORT` variables), dynamic host ports, the user,
//! and whether the executable exists. Split from the driver because it is pure spec-to-argv
//! work (plus `/etc/passwd` lookups) that the start path calls and the tests exercise alone.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_model::TransportProtocol;

use super::io_err;
use crate::error::DriverError;
use crate::spec::{ContainerSpec, NetworkMode};

/// `PATH` given to processes when the agent has none.
pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The command a spec runs (see the module documentation).
pub(super) fn command_line(spec: &ContainerSpec) -> Result<Vec<String>, DriverError> {
    let mut argv = match &spec.entry_point {
        Some(ep) => ep.clone(),
        None if spec.image.starts_with('/') && Path::new(&spec.image).is_file() => {
            vec![spec.image.clone()]
        }
        None => Vec::new(),
    };
    argv.extend(spec.command.iter().flatten().cloned());
    if argv.first().is_none_or(|a| a.is_empty()) {
        return Err(DriverError::InvalidSpec(
            "the process driver needs an entryPoint or a command".into(),
        ));
    }
    Ok(argv)
}

/// The spec with every dynamic host port (0) replaced by a free ephemeral port of its
/// protocol, unless the task has no network.
pub(super) fn with_host_ports(spec: &ContainerSpec) -> Result<ContainerSpec, DriverError> {
    let mut spec = spec.clone();
    if spec.network_mode == NetworkMode::None {
        return Ok(spec);
    }
    for p in spec.port_mappings.iter_mut().filter(|p| p.host_port == 0) {
        let addr = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        let port = match p.protocol {
            TransportProtocol::Tcp => {
                std::net::TcpListener::bind(addr).and_then(|l| l.local_addr())
            }
            TransportProtocol::Udp => std::net::UdpSocket::bind(addr).and_then(|l| l.local_addr()),
        };
        p.host_port = port
            .map_err(|e| io_err("choosing a dynamic host port", e))?
            .port();
    }
    Ok(spec)
}

/// `PORT_<containerPort>` for each mapping and `PORT` for the first: where the process must
/// listen, since nothing remaps its ports.
pub(super) fn port_env(spec: &ContainerSpec) -> Vec<(String, String)> {
    if spec.network_mode == NetworkMode::None {
        return Vec::new();
    }
    let mut env: Vec<(String, String)> = spec
        .port_mappings
        .iter()
        .map(|p| {
            (
                format!("PORT_{}", p.container_port),
                p.host_port.to_string(),
            )
        })
        .collect();
    if let Some(p) = spec.port_mappings.first() {
        env.push(("PORT".into(), p.host_port.to_string()));
    }
    env
}

/// The environment every process starts from.
pub(super) fn base_env() -> Vec<(String, String)> {
    let path = std::env::var_os("PATH")
        .and_then(|p: OsString| p.into_string().ok())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.to_string());
    vec![("PATH".into(), path)]
}

/// Whether `program` names an executable file, as `execvp` would find it.
pub(super) fn is_executable(program: &str, path_var: &str, working_dir: &Path) -> bool {
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(&working_dir.join(program));
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .any(|d| executable(&Path::new(d).join(program)))
}

/// Resolves `uid[:gid]` or `name[:group]` through `/etc/passwd` and `/etc/group`.
pub(super) fn resolve_user(user: &str) -> Result<(u32, u32), DriverError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let lookup = |table: &str, name: &str, gid_field: Option<usize>| {
        table.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.first() == Some(&name) {
                let id = f.get(2)?.parse::<u32>().ok()?;
                let gid = gid_field.and_then(|i| f.get(i)?.parse::<u32>().ok());
                Some((id, gid))
            } else {
                None
            }
        })
    };
    let bad = || DriverError::InvalidSpec(format!("unknown user {user:?}"));
    let (uid, primary_gid) = match u.parse::<u32>() {
        Ok(uid) => {
            let gid = passwd.lines().find_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                (f.get(2)?.parse::<u32>().ok()? == uid).then(|| f.get(3)?.parse().ok())?
            });
            (uid, gid)
        }
        Err(_) => lookup(&passwd, u, Some(3)).ok_or_else(bad)?,
    };
    let gid = match g {
        None => primary_gid.unwrap_or(uid),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
                lookup(&groups, g, None).ok_or_else(bad)?.0
            }
        },
    };
    Ok((uid, gid))
}
