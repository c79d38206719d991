//! The server under test: a `berth server` child process the sim starts on a fresh data dir
//! and a free port (with root keys it chose, no rate limit for its own key and connection
//! caps lifted for its thousands of agents), or one it is pointed at with `--server`.
//!
//! A started server is a child process so its memory is its own (`/proc/<pid>/status`) and
//! the measured API path is the real one, sockets and all. It is killed when the [`Target`]
//! is dropped, whatever happened, and its data dir removed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::report::{parse_status, Memory};
use crate::env;

/// The server the simulation runs against.
pub struct Target {
    pub endpoint: String,
    pub creds: berth_sigv4::Credentials,
    /// Its pid, when known (started here, or `--server-pid`).
    pub pid: Option<u32>,
    child: Option<tokio::process::Child>,
    data_dir: Option<PathBuf>,
}

/// How to start the server (`berth sim` flags).
pub struct Launch<'a> {
    pub hosts: u64,
    pub extra_args: &'a [String],
    pub agent_timeout: f64,
}

fn random_key(n: usize, alphabet: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// Where the sim keeps scratch files (its server's data dir, agents' identities): memory
/// when the machine has `/dev/shm`, so ten thousand identity files cost no disk syncs.
pub fn scratch_root() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// A fresh private directory under [`scratch_root`].
pub fn scratch_dir(what: &str) -> Result<PathBuf> {
    let dir = scratch_root().join(format!(
        "berth-sim-{what}-{}-{}",
        std::process::id(),
        random_key(8, b"abcdefghijklmnopqrstuvwxyz0123456789")
    ));
    crate::server::private_dir(&dir)?;
    Ok(dir)
}

impl Target {
    /// An already running server: keys from the environment, as for the CLI.
    pub fn existing(endpoint: &str, pid: Option<u32>) -> Result<Self> {
        let c = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| format!("--server needs {name} (the server's access key)"))
        };
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            creds: berth_sigv4::Credentials {
                access_key_id: c(env::AWS_ACCESS_KEY_ID)?,
                secret_access_key: c(env::AWS_SECRET_ACCESS_KEY)?,
            },
            pid,
            child: None,
            data_dir: None,
        })
    }

    /// Starts `berth server` (this very binary) and waits until it answers `/ping`.
    pub async fn start(l: &Launch<'_>) -> Result<Self> {
        let data_dir = scratch_dir("server")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let creds = berth_sigv4::Credentials {
            access_key_id: format!(
                "AKIA{}",
                random_key(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
            ),
            secret_access_key: random_key(
                40,
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            ),
        };
        let log = std::fs::File::create(data_dir.join("server.log"))?;
        // Every agent holds one long-poll open, plus a report now and then: room for two
        // connections per host, all from this one address.
        let conns = (l.hosts * 2 + 256).to_string();
        let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
        cmd.arg("server")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--api-rate", "0"])
            .args(["--max-connections", &conns])
            .args(["--max-connections-per-address", &conns])
            .args(["--agent-timeout", &l.agent_timeout.to_string()])
            .args(l.extra_args)
            .env(env::ROOT_ACCESS_KEY_ID, &creds.access_key_id)
            .env(env::ROOT_SECRET_ACCESS_KEY, &creds.secret_access_key)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("warn".into()),
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        let child = cmd.spawn().context("starting berth server")?;
        let mut t = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            creds,
            pid: child.id(),
            child: Some(child),
            data_dir: Some(data_dir),
        };
        t.wait_ready().await?;
        Ok(t)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!("berth server exited with {status}: {}", self.log_tail());
                }
            }
            let ping = http
                .get(format!("{}/ping", self.endpoint))
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if matches!(&ping, Ok(r) if r.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("berth server did not answer /ping within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The end of the started server's log (for an error message).
    pub fn log_tail(&self) -> String {
        let Some(dir) = &self.data_dir else {
            return String::new();
        };
        let text = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The server's memory now, if its pid is known and on this machine.
    pub fn memory(&self) -> Option<Memory> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        parse_status(&text)
    }

    /// Stops a started server (SIGTERM, then SIGKILL after a grace) and removes its data dir.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = c.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            if tokio::time::timeout(Duration::from_secs(10), c.wait())
                .await
                .is_err()
            {
                let _ = c.kill().await;
            }
        }
        if let Some(dir) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // The child is killed by `kill_on_drop`; its data dir goes with it.
        if let Some(dir) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// This process's own memory.
pub fn own_memory() -> Option<Memory> {
    parse_status(&std::fs::read_to_string("/proc/self/status").ok()?)
}
