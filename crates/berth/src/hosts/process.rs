//! The `process` host provider: each host is `berth agent` as a child process of the server,
//! with its own state dir under `DATA_DIR/hosts/INSTANCE_ID`.
//!
//! The handle is `PID:START_TICKS` (the start time from `/proc/PID/stat` guards against pid
//! reuse), so after a server restart the controller finds the same agents alive and adopts
//! them instead of starting duplicates. Agents run in their own session, so a Ctrl-C on the
//! server's terminal does not take the hosts down with it (as with real machines); destroying
//! a host kills the agent and every process below it (its tasks).

use std::path::PathBuf;
use std::process::Stdio;

use berth_control::hostgroup::{HostError, HostProvider, HostSpec};
use futures::future::BoxFuture;
use futures::FutureExt;

use crate::agent::DriverKind;

/// See the module docs.
pub struct ProcessProvider {
    exe: PathBuf,
    root: PathBuf,
    driver: DriverKind,
    /// The CA bundle hosts' agents trust when the API serves TLS.
    ca: Option<PathBuf>,
}

impl ProcessProvider {
    /// Hosts run `exe agent` with `driver`, keeping state under `root`.
    pub fn new(exe: PathBuf, root: PathBuf, driver: DriverKind) -> Self {
        Self {
            exe,
            root,
            driver,
            ca: None,
        }
    }

    /// Hosts' agents trust `ca` (the API serves TLS).
    pub fn with_ca(mut self, ca: Option<PathBuf>) -> Self {
        self.ca = ca;
        self
    }
}

/// `(state, ppid, start_ticks)` from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(char, i32, u64)> {
    let content = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &content[content.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((
        f.first()?.chars().next()?,
        f.get(1)?.parse().ok()?,
        f.get(19)?.parse().ok()?,
    ))
}

fn parse_handle(handle: &str) -> Option<(i32, u64)> {
    let (p, t) = handle.split_once(':')?;
    Some((p.parse().ok()?, t.parse().ok()?))
}

/// Whether the process of `handle` still runs.
pub fn handle_alive(handle: &str) -> bool {
    parse_handle(handle).is_some_and(|(pid, ticks)| {
        stat(pid).is_some_and(|(state, _, t)| t == ticks && !matches!(state, 'Z' | 'X' | 'x'))
    })
}

/// Every live descendant of `root` (children first found, by walking parent ids).
fn descendants(root: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let procs: Vec<(i32, i32)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?.1)))
        .collect();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            procs
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out.remove(0);
    out
}

fn kill(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

/// The `berth agent` arguments for `spec`, shared with the docker provider.
pub fn agent_args(spec: &HostSpec, state_dir: &str, driver: &str) -> Vec<String> {
    let mut args = vec![
        "agent".to_owned(),
        "--server".into(),
        spec.server_url.clone(),
        "--cluster".into(),
        spec.cluster.clone(),
        "--state-dir".into(),
        state_dir.to_owned(),
        "--driver".into(),
        driver.to_owned(),
        "--cpu".into(),
        spec.cpu.to_string(),
        "--memory".into(),
        spec.memory.to_string(),
        "--poll-wait".into(),
        "2".into(),
    ];
    for (k, v) in &spec.attributes {
        args.push("--attribute".into());
        args.push(format!("{k}={v}"));
    }
    args
}

/// The `--state-dir` a host's agent was started with, from its command line.
fn state_dir_of(pid: i32) -> Option<PathBuf> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    let i = args.iter().position(|a| *a == b"--state-dir")?;
    let dir = String::from_utf8_lossy(args.get(i + 1)?).into_owned();
    Some(PathBuf::from(dir))
}

/// A destroyed host's containers go with it. A process host's agent with the Docker driver ran
/// them on this machine's Docker, labelled with its scope (its state dir): killing the agent
/// leaves them, so they are removed here, with their task networks. Without Docker (or with
/// the process driver) there is nothing to remove.
async fn remove_host_containers(dir: &std::path::Path) {
    use berth_agent::Driver;
    let Ok(docker) = berth_agent::DockerDriver::connect().await else {
        return;
    };
    let docker = docker.with_scope(crate::agent::default_scope(dir));
    let Ok(owned) = docker.list_owned().await else {
        return;
    };
    let mut tasks = std::collections::BTreeSet::new();
    for c in owned {
        if let Err(e) = docker.remove(&c.id).await {
            tracing::warn!(error = %e, task = %c.task_id, "removing a destroyed host's container");
        }
        tasks.insert(c.task_id);
    }
    for t in tasks {
        let _ = docker.remove_task_network(&t).await;
    }
}

impl HostProvider for ProcessProvider {
    fn create<'a>(&'a self, spec: &'a HostSpec) -> BoxFuture<'a, Result<String, HostError>> {
        async move {
            let dir = self.root.join(&spec.instance_id);
            std::fs::create_dir_all(&dir)
                .map_err(|e| HostError(format!("creating {}: {e}", dir.display())))?;
            if let Some(u) = &spec.user_data {
                std::fs::write(dir.join("user-data"), u)
                    .map_err(|e| HostError(format!("writing user data: {e}")))?;
            }
            let log = std::fs::File::create(dir.join("agent.log"))
                .map_err(|e| HostError(format!("creating the agent log: {e}")))?;
            let log2 = log
                .try_clone()
                .map_err(|e| HostError(format!("agent log: {e}")))?;
            let driver = match self.driver {
                DriverKind::Auto => "auto",
                DriverKind::Docker => "docker",
                DriverKind::Process => "process",
            };
            let mut cmd = tokio::process::Command::new(&self.exe);
            cmd.args(agent_args(spec, &dir.display().to_string(), driver))
                .env(crate::env::JOIN_TOKEN, &spec.join_token)
                .env(
                    crate::env::USER_DATA,
                    spec.user_data.as_deref().unwrap_or(""),
                )
                .env_remove(crate::env::AGENT_CLUSTER)
                .env_remove(crate::env::CA_CERT)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .process_group(0);
            if let Some(ca) = &self.ca {
                cmd.env(crate::env::CA_CERT, ca);
            }
            let mut child = cmd
                .spawn()
                .map_err(|e| HostError(format!("starting {}: {e}", self.exe.display())))?;
            let pid = child
                .id()
                .ok_or_else(|| HostError("the agent exited at once".into()))?
                as i32;
            let ticks = stat(pid)
                .map(|s| s.2)
                .ok_or_else(|| HostError("the agent exited at once".into()))?;
            // Reap it whenever it exits, so it never lingers as a zombie.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            Ok(format!("{pid}:{ticks}"))
        }
        .boxed()
    }

    fn destroy<'a>(&'a self, handle: &'a str) -> BoxFuture<'a, Result<(), HostError>> {
        async move {
            let Some((pid, _)) = parse_handle(handle) else {
                return Ok(());
            };
            if !handle_alive(handle) {
                return Ok(());
            }
            use nix::sys::signal::Signal;
            let state_dir = state_dir_of(pid);
            // The agent first (so it starts nothing new), then everything it started.
            let below = descendants(pid);
            kill(pid, Signal::SIGKILL);
            for p in below {
                kill(p, Signal::SIGKILL);
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while handle_alive(handle) && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            if let Some(dir) = state_dir {
                remove_host_containers(&dir).await;
            }
            Ok(())
        }
        .boxed()
    }

    fn alive<'a>(&'a self, handle: &'a str) -> BoxFuture<'a, Result<bool, HostError>> {
        async move { Ok(handle_alive(handle)) }.boxed()
    }
}
