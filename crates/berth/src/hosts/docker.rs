//! The `docker` host provider: each host is a container (its own network namespace, cgroup
//! CPU and memory limits from the instance type) running `berth agent` with the process
//! driver inside, so killing the container kills the host and its tasks together.
//!
//! No image can be pulled, so berth builds its host image itself, once per binary:
//! `berth-host:VERSION-ID` (ID names the binary) is `docker import` of a tarball holding the running `berth` binary
//! (`/proc/self/exe`), the shared libraries `ldd` lists for it, and busybox when the machine
//! has a static one (`/bin/busybox`, Debian's busybox-static) so tasks can run shell commands.
//! ImageId `berth-host`, empty or `ami-...` means this image; any other ImageId is an image
//! the operator provides (with `berth` on its PATH).
//!
//! The agent inside must reach the server. A server listening on loopback is not reachable
//! from a container's own network namespace, so unless the provider is given a URL
//! (`--host-server-url`), it forwards a port on the Docker bridge's gateway address to the
//! server's address, and hosts use that.
//!
//! It drives the `docker` CLI: `docker import` of a tar stream has no simpler form, and the
//! few calls (run, inspect, rm) are one line each.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use berth_control::hostgroup::{HostError, HostProvider, HostSpec};
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::OnceCell;

/// The label every host container carries (its group's name).
pub const GROUP_LABEL: &str = "berth.hostgroup";
/// The label holding the host's instance id.
pub const HOST_LABEL: &str = "berth.host-id";
/// Where a docker host finds the cluster CA (mounted read-only) when the API serves TLS.
const HOST_CA: &str = "/etc/berth/ca.pem";

/// See the module docs.
pub struct DockerProvider {
    /// The server's own address (what the forwarder connects to).
    server_addr: SocketAddr,
    /// A URL hosts use instead of the forwarder.
    server_url: Option<String>,
    /// Built once: the host image's tag.
    image: OnceCell<String>,
    /// Started once: the URL hosts reach the server by.
    url: OnceCell<String>,
    /// Where the image's staging directory goes.
    work: PathBuf,
    /// The CA bundle hosts' agents trust when the API serves TLS (mounted read-only).
    ca: Option<PathBuf>,
}

fn err(m: impl Into<String>) -> HostError {
    HostError(m.into())
}

async fn docker(args: &[&str]) -> Result<String, HostError> {
    let out = tokio::process::Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| err(format!("running docker: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "docker {} failed: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl DockerProvider {
    /// A provider for a server at `server_addr` (or reachable at `server_url`).
    pub fn new(server_addr: SocketAddr, server_url: Option<String>, work: PathBuf) -> Self {
        Self {
            server_addr,
            server_url,
            image: OnceCell::new(),
            url: OnceCell::new(),
            work,
            ca: None,
        }
    }

    /// Hosts' agents trust `ca` (the API serves TLS; the forwarder then carries TLS).
    pub fn with_ca(mut self, ca: Option<PathBuf>) -> Self {
        self.ca = ca;
        self
    }

    /// The URL hosts reach the server by: the configured one, or a forwarder on the bridge's
    /// gateway address.
    async fn server_url(&self) -> Result<String, HostError> {
        self.url
            .get_or_try_init(|| async {
                if let Some(u) = &self.server_url {
                    return Ok(u.clone());
                }
                let gw = bridge_gateway_or_err().await?;
                let listener = tokio::net::TcpListener::bind((gw, 0))
                    .await
                    .map_err(|e| err(format!("binding {gw}: {e}")))?;
                let port = listener.local_addr().map_err(|e| err(e.to_string()))?.port();
                let target = self.server_addr;
                tokio::spawn(forward(listener, target));
                tracing::info!(%gw, port, "docker hosts reach the server through the bridge gateway");
                let scheme = if self.ca.is_some() { "https" } else { "http" };
                Ok(format!("{scheme}://{gw}:{port}"))
            })
            .await
            .cloned()
    }

    /// The image for `image_id`, building berth's own when asked for it.
    async fn image(&self, image_id: &str) -> Result<String, HostError> {
        if !(image_id.is_empty() || image_id == "berth-host" || image_id.starts_with("ami-")) {
            return Ok(image_id.to_owned());
        }
        self.image
            .get_or_try_init(|| async {
                let tag = image_tag()?;
                // Built once per binary: a server restart reuses it, a new build makes its own.
                if docker(&["image", "inspect", "-f", "{{.Id}}", &tag])
                    .await
                    .is_err()
                {
                    build_image(&self.work, &tag).await?;
                }
                Ok(tag)
            })
            .await
            .cloned()
    }
}

/// The Docker bridge's gateway address (where docker hosts reach the server).
async fn bridge_gateway_or_err() -> Result<std::net::IpAddr, HostError> {
    let cfg = docker(&[
        "network",
        "inspect",
        "bridge",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}",
    ])
    .await?;
    gateway_of(&cfg).ok_or_else(|| {
        err(format!(
            "no gateway in the docker bridge's IPAM config {cfg:?}"
        ))
    })
}

/// The Docker bridge's gateway, if Docker answers (the API's certificate names it).
pub async fn bridge_gateway() -> Option<std::net::IpAddr> {
    bridge_gateway_or_err().await.ok()
}

/// The bridge's gateway from `GATEWAY SUBNET` (docker leaves the gateway out when it picked
/// the default: the subnet's first address).
fn gateway_of(cfg: &str) -> Option<std::net::IpAddr> {
    let mut parts = cfg.split_whitespace();
    let first = parts.next()?;
    if let Ok(ip) = first.parse() {
        return Some(ip);
    }
    let net: std::net::Ipv4Addr = first.split('/').next()?.parse().ok()?;
    Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
        u32::from(net) + 1,
    )))
}

/// `berth-host:VERSION-ID`, where ID names the running binary (its size and modification
/// time), so each build of berth gets its own image and a restart finds the one it made.
fn image_tag() -> Result<String, HostError> {
    let meta = std::fs::metadata("/proc/self/exe")
        .map_err(|e| err(format!("reading the berth binary: {e}")))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Ok(format!(
        "berth-host:{}-{:x}{:x}",
        env!("CARGO_PKG_VERSION"),
        meta.len(),
        mtime
    ))
}

/// Copies bytes between each accepted connection and `target`.
async fn forward(listener: tokio::net::TcpListener, target: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// Stages the binary, its libraries and busybox in `work`, and imports them as `tag`.
async fn build_image(work: &Path, tag: &str) -> Result<(), HostError> {
    let root = work.join("host-image");
    let _ = std::fs::remove_dir_all(&root);
    let io = |e: std::io::Error| err(format!("staging the host image: {e}"));
    for d in ["bin", "tmp", "var/lib/berth", "etc"] {
        std::fs::create_dir_all(root.join(d)).map_err(io)?;
    }
    let exe = std::fs::read_link("/proc/self/exe").map_err(io)?;
    std::fs::copy(&exe, root.join("bin/berth")).map_err(io)?;
    let ldd = tokio::process::Command::new("ldd")
        .arg(&exe)
        .output()
        .await
        .map_err(|e| err(format!("running ldd: {e}")))?;
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux... (0x...)`
        let path = line
            .split("=>")
            .last()
            .and_then(|p| p.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(p) = path {
            let dest = root.join(p.trim_start_matches('/'));
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            // Follow symlinks: the library's real bytes under the name the loader asks for.
            std::fs::copy(p, &dest).map_err(io)?;
        }
    }
    if Path::new("/bin/busybox").exists() {
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).map_err(io)?;
        for applet in [
            "sh", "sleep", "httpd", "echo", "cat", "ls", "wget", "kill", "ps", "env", "true",
            "false", "mkdir", "rm", "nc", "grep", "date", "hostname",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).map_err(io)?;
        }
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").map_err(io)?;
    std::fs::write(root.join("etc/group"), "root:x:0:\n").map_err(io)?;
    let script = format!(
        "tar -C {} -c . | docker import -c 'ENV PATH=/bin' - {tag}",
        shell_quote(&root.display().to_string())
    );
    let out = tokio::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .await
        .map_err(|e| err(format!("importing the host image: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "importing the host image: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let _ = std::fs::remove_dir_all(&root);
    tracing::info!(%tag, "built the docker host image");
    Ok(())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl HostProvider for DockerProvider {
    fn create<'a>(&'a self, spec: &'a HostSpec) -> BoxFuture<'a, Result<String, HostError>> {
        async move {
            let image = self.image(&spec.image_id).await?;
            let url = self.server_url().await?;
            let mut s = spec.clone();
            s.server_url = url;
            let name = format!("berth-host-{}", spec.instance_id);
            let cpus = format!("{:.3}", spec.cpu as f64 / 1024.0);
            let memory = format!("{}m", spec.memory);
            let group_label = format!("{GROUP_LABEL}={}", spec.group);
            let host_label = format!("{HOST_LABEL}={}", spec.instance_id);
            let token = format!("{}={}", crate::env::JOIN_TOKEN, spec.join_token);
            let user_data = format!(
                "{}={}",
                crate::env::USER_DATA,
                spec.user_data.as_deref().unwrap_or("")
            );
            let mut args: Vec<&str> = vec![
                "run",
                "-d",
                "--name",
                &name,
                "--hostname",
                &spec.instance_id,
                "--label",
                &group_label,
                "--label",
                &host_label,
                "--cpus",
                &cpus,
                "--memory",
                &memory,
                "-e",
                &token,
                "-e",
                &user_data,
            ];
            let ca_mount = self
                .ca
                .as_ref()
                .map(|ca| format!("{}:{HOST_CA}:ro", ca.display()));
            let ca_env = format!("{}={HOST_CA}", crate::env::CA_CERT);
            if let Some(m) = &ca_mount {
                args.extend(["-v", m, "-e", &ca_env]);
            }
            args.extend([image.as_str(), "berth"]);
            let agent = crate::hosts::process::agent_args(&s, "/var/lib/berth", "process");
            args.extend(agent.iter().map(String::as_str));
            // The agent's own loopback is the container's: serve logs on its network address.
            args.extend(["--logs-listen", "0.0.0.0:0"]);
            // The host container is the tasks' isolation boundary (its own namespaces and
            // cgroup, the instance type's limits); its image has no `setpriv` to drop to
            // another user inside it, so the agent runs them as the container's root.
            args.extend(["--task-user", "root"]);
            docker(&args).await
        }
        .boxed()
    }

    fn destroy<'a>(&'a self, handle: &'a str) -> BoxFuture<'a, Result<(), HostError>> {
        async move {
            match docker(&["rm", "-f", handle]).await {
                Ok(_) => Ok(()),
                Err(e) if e.0.contains("No such container") => Ok(()),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn alive<'a>(&'a self, handle: &'a str) -> BoxFuture<'a, Result<bool, HostError>> {
        async move {
            match docker(&["inspect", "-f", "{{.State.Running}}", handle]).await {
                Ok(s) => Ok(s == "true"),
                Err(e) if e.0.contains("No such") => Ok(false),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_from_ipam_config() {
        assert_eq!(
            gateway_of("172.17.0.1 172.17.0.0/16").unwrap().to_string(),
            "172.17.0.1"
        );
        assert_eq!(
            gateway_of(" 172.18.0.0/16").unwrap().to_string(),
            "172.18.0.1"
        );
        assert!(gateway_of("").is_none());
    }
}
