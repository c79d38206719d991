//! The process driver: containers as plain child processes, for hosts without Docker.
//!
//! # What runs
//! The image is ignored, except that an image which is an absolute path to an existing file
//! (`/usr/bin/python3`) stands in for a missing `entryPoint`. The command is `entryPoint ++
//! command`, executed directly (no shell: write `["sh", "-c", "..."]` for one); it must name
//! an executable (searched on the container's `PATH`), else `start` fails. The process gets a
//! fresh environment: `PATH` (the agent's, or a standard one) plus the spec's variables. It
//! runs in the spec's working directory, or in its own state directory when none is given,
//! as the spec's user when one is given (`uid[:gid]` or a name from `/etc/passwd`; needs
//! root), with the spec's portable ulimits (`nofile`, `core`, `cpu`, `data`, `fsize`,
//! `memlock`, `rss`, `stack`, set by the shell before the command runs). Mounts, privileges,
//! namespaces and the other Docker-only settings are refused (`DriverError::InvalidSpec`).
//!
//! # The supervisor and exit codes
//! Each container is started as `/bin/sh -c SUPERVISOR`, in a new process group whose id is
//! the supervisor's pid. The supervisor runs the command as its child, waits for it and
//! writes its exit status to the `exit` file in the container's state directory; it ignores
//! the SIGTERM that a stop sends to the whole group, so it lives to record the command's code
//! (143 for a command killed by SIGTERM, 0 for one that handled it and exited cleanly). Exit
//! codes therefore survive agent restarts. When the supervisor itself dies without writing
//! one (the SIGKILL of a stop timeout), the driver records 137 if it sent that SIGKILL, the
//! code from the wait status if it is the supervisor's parent, and -1 ("unknown") otherwise.
//!
//! # State and adoption
//! Everything lives in `STATE_DIR/containers/ID/` (see `record.rs`): a JSON record (pid and
//! the process start time from `/proc/PID/stat`, so a reused pid is never mistaken for the
//! container; the spec with its labels; log paths; the kill flag), the logs and the exit file.
//! A new `ProcessDriver` on the same state directory finds every container through
//! `list_owned`, running or exited, and can inspect, stop, wait for, log and remove it.
//!
//! # Ports, resources, logs
//! Processes bind their ports directly on the host, so a process cannot be remapped: it must
//! listen on the host port itself. A mapping with a host port is reported as given (and the
//! process should listen on it); a mapping with host port 0 (ECS's dynamic port, the default
//! in bridge mode) gets a free ephemeral port chosen at start, as Nomad does. Either way the
//! process learns its ports from its environment: `PORT_<containerPort>` for each mapping and
//! `PORT` for the first, so `sh -c 'exec httpd -p $PORT'` serves on the port berth reports.
//! None are reported in `none` network mode. cpu and memory limits are cgroup limits where the
//! host offers cgroups (see `isolate`); stats are summed over the process group from `/proc` (utime + stime + reaped children's
//! times; VmRSS). stdout and stderr go to files that are never rotated; log lines carry no
//! recorded time: lines already in the files are stamped with the file's modification time,
//! lines read while following with the time they were read, and the history gives all stdout
//! lines before all stderr lines.
//!
//! # Health checks
//! Run by the driver as Docker runs them: the first probe one interval after the start,
//! `CMD-SHELL` through `/bin/sh -c`, `CMD` executed directly, with the container's
//! environment, directory and user, killed after the timeout; a success makes the container
//! healthy; after the start period, `retries` consecutive failures make it unhealthy. Zero
//! interval or timeout take Docker's 30 s defaults. After an agent restart, probing resumes
//! when the new driver first sees the container (`list_owned` or `inspect`), from `Unknown`.
//!
//! # Off the async runtime
//! The driver's state is files, so most calls are file I/O, and some of it is slow: a start
//! fsyncs its record, `stats` walks all of `/proc`, `list_owned` reads every record. Done
//! inline, each would stall a runtime worker and whatever is queued on it (the agent's other
//! task runners, its poll of the server). So that work runs on Tokio's blocking pool
//! ([`blocking`]): record loads and saves, directory creation and the log files of a start,
//! the exit-file writes, `inspect`, `list_owned` and `stats`. The waiters' 20 ms polls stay
//! inline: for a child of this driver they read a channel, for an adopted container one
//! `/proc/PID/stat` (procfs is memory, never disk), and the exit file only once the process
//! is gone.
//!
//! # Layout
//! This file is the lifecycle (start, stop, remove, inspect, list, stats, wait) and the
//! `Driver` impl; beside it, each concern that the lifecycle only calls into: `command` (the
//! argv, environment, ports and user a spec resolves to), `health` (the probing tasks),
//! `logs` (the log files and the `logs` stream), `record` (the on-disk state) and `procfs`.

mod command;
mod health;
mod honour;
mod isolate;
mod logs;
mod procfs;
mod record;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;

use crate::driver::{BoxFuture, BoxStream, Driver};
use crate::error::DriverError;
use crate::spec::{
    now_epoch, ContainerId, ContainerSpec, ContainerStatus, Health, LogLine, NetworkBinding,
    NetworkMode, OwnedContainer, RunState, Stats,
};
use command::{
    base_env, command_line, is_executable, port_env, resolve_user, with_host_ports, DEFAULT_PATH,
};
use health::HealthEntry;
use honour::{refuse_docker_only, ulimit_prelude};
use logs::{open_log, LogReader};
use record::{read_exit, write_exit_if_absent, ContainerDir, Record, RECORD_VERSION};

/// The supervisor run as `/bin/sh -c SUPERVISOR berth-supervisor EXIT_FILE CMD ARGS...`.
///
/// It traps (and so survives) TERM, INT and HUP; the command, started in the background,
/// gets the default TERM disposition back. `wait` returns early when a trapped signal
/// arrives; `kill -0` tells whether the command still exists (a zombie does), in which case
/// it waits again. The code is written with a single `echo`, newline-terminated, so a reader
/// never takes a partial write for a code.
///
/// A stop creates the `stopping` file next to the exit file before it signals the group. A
/// SIGTERM that lands before the command runs (the supervisor has not forked it yet, or the
/// fork still has the supervisor's trap) would be lost; the fork therefore looks for that
/// file once its traps are back to the defaults, and exits as a terminated command would
/// instead of starting one that would never hear of the stop.
const SUPERVISOR: &str = r#"exitfile=$1
shift
trap ':' TERM INT HUP
(
  trap - TERM INT HUP
  if [ -e "${exitfile%/*}/stopping" ]; then exit 143; fi
  exec "$@"
) &
child=$!
while :; do
  wait "$child"
  code=$?
  if ! kill -0 "$child" 2>/dev/null; then
    break
  fi
done
echo "$code" > "$exitfile"
"#;

/// How often waiters look at `/proc` and the exit file.
const POLL: Duration = Duration::from_millis(20);

/// Runs containers as local processes (see the module documentation for the rules).
#[derive(Debug, Clone)]
pub struct ProcessDriver {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `STATE_DIR/containers`.
    containers: PathBuf,
    /// Supervisors this driver instance spawned: `true` once reaped and the code recorded.
    children: Mutex<HashMap<String, watch::Receiver<bool>>>,
    /// Health-check state of the containers this instance probes.
    health: Mutex<HashMap<String, HealthEntry>>,
    next_id: AtomicU64,
    /// The user and cgroup tasks run under (see `isolate`).
    isolation: isolate::Isolation,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for entry in lock(&self.health).values() {
            entry.task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn io_err(what: impl std::fmt::Display, e: std::io::Error) -> DriverError {
    DriverError::Runtime(format!("{what}: {e}"))
}

/// Runs `f` (file or `/proc` work) on Tokio's blocking pool; see the module docs.
async fn blocking<T, F>(f: F) -> Result<T, DriverError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, DriverError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DriverError::Runtime(format!("process driver blocking task: {e}")))?
}

/// What a start makes ready on disk before it spawns anything.
struct Prepared {
    id: String,
    dir: ContainerDir,
    working_dir: PathBuf,
    stdout: std::fs::File,
    stderr: std::fs::File,
    user: Option<(u32, u32)>,
    /// `setpriv ...` when the command runs as another user than the supervisor's.
    exec_prefix: Vec<String>,
    cgroup: Option<PathBuf>,
}

/// Whom tasks run as unless told otherwise: `nobody`.
pub const DEFAULT_TASK_USER: &str = "65534";

impl ProcessDriver {
    /// A driver keeping its state under `state_dir` (created if missing). A new driver on the
    /// directory of an earlier one adopts that one's containers.
    pub fn new(state_dir: PathBuf) -> Result<Self, DriverError> {
        Self::with_task_user(state_dir, DEFAULT_TASK_USER)
    }

    /// [`ProcessDriver::new`], running tasks as `task_user` (a name or `uid[:gid]`; `root`
    /// for the agent's own user) unless a container names its own `user`.
    pub fn with_task_user(state_dir: PathBuf, task_user: &str) -> Result<Self, DriverError> {
        let isolation = isolate::Isolation::detect(task_user)?;
        let containers = state_dir.join("containers");
        std::fs::create_dir_all(&containers)
            .map_err(|e| io_err(format_args!("create {}", containers.display()), e))?;
        // The supervisor runs in another working directory: give it absolute paths.
        let containers = containers
            .canonicalize()
            .map_err(|e| io_err(format_args!("resolve {}", containers.display()), e))?;
        Ok(ProcessDriver {
            inner: Arc::new(Inner {
                containers,
                children: Mutex::new(HashMap::new()),
                health: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                isolation,
            }),
        })
    }

    /// The directory holding one container's files, for an id that came from this driver.
    fn dir(&self, id: &str) -> Result<ContainerDir, DriverError> {
        self.inner.dir(id)
    }

    fn load(&self, id: &ContainerId) -> Result<(ContainerDir, Record), DriverError> {
        let dir = self.dir(&id.0)?;
        let record = Record::load(&dir, &id.0)?;
        Ok((dir, record))
    }

    /// [`ProcessDriver::load`] on the blocking pool.
    async fn load_blocking(&self, id: &ContainerId) -> Result<(ContainerDir, Record), DriverError> {
        let (this, id) = (self.clone(), id.clone());
        blocking(move || this.load(&id)).await
    }

    async fn do_start(&self, spec: &ContainerSpec) -> Result<ContainerId, DriverError> {
        refuse_docker_only(spec)?;
        let argv = command_line(spec)?;
        let spec = with_host_ports(spec)?;
        let mut env = base_env();
        for (k, v) in port_env(&spec).iter().chain(&spec.environment) {
            env.retain(|(key, _)| key != k);
            env.push((k.clone(), v.clone()));
        }
        let (inner, s, a, e) = (self.inner.clone(), spec.clone(), argv.clone(), env.clone());
        let prepared = blocking(move || inner.prepare(&s, &a, &e)).await?;
        let dir = prepared.dir.clone();
        let result = self.spawn(&spec, prepared, argv, env).await;
        if result.is_err() {
            let _ = tokio::fs::remove_dir_all(&dir.dir).await;
        }
        result
    }

    async fn spawn(
        &self,
        spec: &ContainerSpec,
        prepared: Prepared,
        argv: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Result<ContainerId, DriverError> {
        let Prepared {
            id,
            dir,
            working_dir,
            stdout,
            stderr,
            user,
            exec_prefix,
            cgroup,
        } = prepared;
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!(
                "{}{}{SUPERVISOR}",
                isolate::join_prelude(cgroup.as_deref()),
                ulimit_prelude(spec)
            ))
            .arg("berth-supervisor")
            .arg(dir.exit())
            .args(exec_prefix.iter().chain(&argv))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&working_dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| io_err(format_args!("spawn {}", argv[0]), e))?;
        let started_at = now_epoch();
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| DriverError::Runtime("spawned process has no pid".into()))?;
        // Not reaped yet (only the task below waits), so /proc/PID exists even if it exited.
        let start_ticks = procfs::stat(pid).map(|s| s.start_ticks).unwrap_or(0);
        let record = Record {
            version: RECORD_VERSION,
            id: id.clone(),
            spec: spec.clone(),
            argv,
            env,
            working_dir,
            user,
            pid,
            start_ticks,
            started_at,
            stdout_path: dir.stdout(),
            stderr_path: dir.stderr(),
            exit_path: dir.exit(),
            kill_sent: false,
            exit_reason: None,
            exec_prefix,
            cgroup,
        };
        if let Err(e) = save(&record, &dir).await {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = child.wait().await;
            return Err(e);
        }
        // Reap the supervisor; if it died without recording a code, record its wait status.
        let (tx, rx) = watch::channel(false);
        lock(&self.inner.children).insert(id.clone(), rx);
        let exit_path = dir.exit();
        tokio::spawn(async move {
            match child.wait().await {
                Ok(status) => {
                    let code = status_code(status);
                    if let Err(e) = blocking(move || write_exit_if_absent(&exit_path, code)).await {
                        tracing::warn!("process driver: {e}");
                    }
                }
                Err(e) => tracing::warn!("process driver: wait for supervisor {pid}: {e}"),
            }
            let _ = tx.send(true);
        });
        self.inner.ensure_health_monitor(&record);
        Ok(ContainerId(id))
    }

    async fn do_stop(&self, id: &ContainerId, timeout: Duration) -> Result<(), DriverError> {
        let (dir, mut record) = self.load_blocking(id).await?;
        if self.inner.exit_of(&dir, &record).is_some() {
            return Ok(());
        }
        // Mark the stop first: a command not started yet when the SIGTERM lands sees it.
        if let Err(e) = tokio::fs::write(dir.stopping(), b"").await {
            tracing::warn!("process driver: mark {} stopping: {e}", record.id);
        }
        signal_group(&record, Signal::SIGTERM);
        if self.inner.wait_exited(&dir, &record, timeout).await {
            return Ok(());
        }
        record.kill_sent = true;
        record.exit_reason = Some(format!(
            "killed with SIGKILL after the {}s stop timeout",
            timeout.as_secs_f64()
        ));
        save(&record, &dir).await?;
        signal_group(&record, Signal::SIGKILL);
        if self
            .inner
            .wait_exited(&dir, &record, Duration::from_secs(10))
            .await
        {
            Ok(())
        } else {
            Err(DriverError::Runtime(format!(
                "process group {} survived SIGKILL",
                record.pid
            )))
        }
    }

    async fn do_remove(&self, id: &ContainerId) -> Result<(), DriverError> {
        let (dir, mut record) = match self.load_blocking(id).await {
            Ok(found) => found,
            Err(DriverError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if self.inner.exit_of(&dir, &record).is_none() {
            record.kill_sent = true;
            record.exit_reason = Some("killed with SIGKILL by remove".into());
            save(&record, &dir).await?;
            signal_group(&record, Signal::SIGKILL);
            if !self
                .inner
                .wait_exited(&dir, &record, Duration::from_secs(10))
                .await
            {
                return Err(DriverError::Runtime(format!(
                    "process group {} survived SIGKILL",
                    record.pid
                )));
            }
        }
        if let Some(entry) = lock(&self.inner.health).remove(&id.0) {
            entry.task.abort();
        }
        lock(&self.inner.children).remove(&id.0);
        if let Some(cg) = &record.cgroup {
            isolate::remove(cg);
        }
        match tokio::fs::remove_dir_all(&dir.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(format_args!("remove {}", dir.dir.display()), e)),
        }
    }

    fn do_list(&self) -> Result<Vec<OwnedContainer>, DriverError> {
        let entries = std::fs::read_dir(&self.inner.containers)
            .map_err(|e| io_err(format_args!("read {}", self.inner.containers.display()), e))?;
        let mut owned = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let dir = ContainerDir::new(entry.path());
            let record = match Record::load(&dir, &name) {
                Ok(r) => r,
                // A directory whose start never completed.
                Err(DriverError::NotFound(_)) => continue,
                Err(e) => {
                    tracing::warn!("process driver: skipping {name}: {e}");
                    continue;
                }
            };
            let status = self.inner.status(&dir, &record);
            if status.state == RunState::Running {
                self.inner.ensure_health_monitor(&record);
            }
            owned.push(OwnedContainer {
                id: ContainerId(name),
                task_id: record.spec.task_id.clone(),
                container_name: record.spec.container_name.clone(),
                status,
            });
        }
        owned.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(owned)
    }

    fn do_inspect(&self, id: &ContainerId) -> Result<ContainerStatus, DriverError> {
        let (dir, record) = self.load(id)?;
        let status = self.inner.status(&dir, &record);
        if status.state == RunState::Running {
            self.inner.ensure_health_monitor(&record);
        }
        Ok(status)
    }

    fn do_stats(&self, id: &ContainerId) -> Result<Stats, DriverError> {
        let (dir, record) = self.load(id)?;
        let at = now_epoch();
        if self.inner.exit_of(&dir, &record).is_some() {
            return Ok(Stats {
                cpu_total_ns: 0,
                memory_bytes: 0,
                at,
            });
        }
        let (cpu_total_ns, memory_bytes) = procfs::group_usage(record.pid);
        Ok(Stats {
            cpu_total_ns,
            memory_bytes,
            at,
        })
    }

    async fn do_wait(&self, id: &ContainerId) -> Result<i64, DriverError> {
        let (dir, record) = self.load_blocking(id).await?;
        loop {
            if let Some((code, _)) = self.inner.exit_of(&dir, &record) {
                return Ok(code);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Inner {
    fn dir(&self, id: &str) -> Result<ContainerDir, DriverError> {
        let valid = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !id.starts_with('.');
        if !valid {
            return Err(DriverError::NotFound(id.to_string()));
        }
        Ok(ContainerDir::new(self.containers.join(id)))
    }

    /// Makes a fresh container directory: `NAME-TIMEHEX-N`.
    fn create_dir(&self, container_name: &str) -> Result<(String, ContainerDir), DriverError> {
        let mut name: String = container_name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        if name.is_empty() {
            name.push('c');
        }
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let n = self.next_id.fetch_add(1, Ordering::Relaxed);
            let id = format!("{name}-{nanos:x}-{n}");
            let dir = self.dir(&id)?;
            // The agent's: a task running as another user only has its `work` inside.
            let made =
                std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
                    .create(&dir.dir);
            match made {
                Ok(()) => return Ok((id, dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(format_args!("create {}", dir.dir.display()), e)),
            }
        }
    }

    /// The blocking part of a start: resolves the user, makes the container's directory and
    /// checks the working directory and the executable, opens the log files (owned by the
    /// user). On error nothing is left behind.
    fn prepare(
        &self,
        spec: &ContainerSpec,
        argv: &[String],
        env: &[(String, String)],
    ) -> Result<Prepared, DriverError> {
        let user = spec.user.as_deref().map(resolve_user).transpose()?;
        let user = user.or(self.isolation.default_user);
        let exec_prefix = self.isolation.exec_prefix(user)?;
        let (id, dir) = self.create_dir(&spec.container_name)?;
        let mut cgroup = None;
        let mut files = || -> Result<Prepared, DriverError> {
            let working_dir = match (&spec.working_directory, user) {
                (Some(wd), _) => PathBuf::from(wd),
                // The task's own directory: the state dir itself stays the agent's.
                (None, Some((uid, gid))) if !exec_prefix.is_empty() => {
                    let work = dir.dir.join("work");
                    std::fs::create_dir(&work)
                        .and_then(|()| std::os::unix::fs::chown(&work, Some(uid), Some(gid)))
                        .map_err(|e| io_err(format_args!("create {}", work.display()), e))?;
                    work
                }
                (None, _) => dir.dir.clone(),
            };
            if !working_dir.is_dir() {
                return Err(DriverError::InvalidSpec(format!(
                    "working directory {} does not exist",
                    working_dir.display()
                )));
            }
            let path_var = env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| DEFAULT_PATH.to_string());
            if !is_executable(&argv[0], &path_var, &working_dir) {
                return Err(DriverError::Runtime(format!(
                    "executable file not found in $PATH: {}",
                    argv[0]
                )));
            }
            let stdout = open_log(&dir.stdout())?;
            let stderr = open_log(&dir.stderr())?;
            if let Some(cgroups) = &self.isolation.cgroups {
                let made = cgroups.create(&id, spec.memory_mib, spec.cpu_shares);
                cgroup = Some(made.map_err(DriverError::Runtime)?);
            }
            Ok(Prepared {
                id: id.clone(),
                dir: dir.clone(),
                working_dir,
                stdout,
                stderr,
                user,
                exec_prefix: exec_prefix.clone(),
                cgroup: cgroup.clone(),
            })
        };
        files().inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&dir.dir);
            if let Some(cg) = &cgroup {
                isolate::remove(cg);
            }
        })
    }

    /// The exit code and time, once the container has exited; `None` while it runs.
    fn exit_of(&self, dir: &ContainerDir, record: &Record) -> Option<(i64, f64)> {
        let reaped = lock(&self.children).get(&record.id).map(|rx| *rx.borrow());
        match reaped {
            // Our own child: its reaper records the code before flagging it.
            Some(false) => return None,
            Some(true) => {}
            None => {
                if procfs::is_alive(record.pid, record.start_ticks) {
                    return None;
                }
            }
        }
        // The supervisor is gone, so its code, if it wrote one, is complete.
        if let Some(exit) = read_exit(&dir.exit()) {
            return Some(exit);
        }
        // It died without writing one (not our child, killed): 137 if we killed it.
        let code = if record.kill_sent { 137 } else { -1 };
        if let Err(e) = write_exit_if_absent(&dir.exit(), code) {
            tracing::warn!("process driver: {e}");
        }
        Some(read_exit(&dir.exit()).unwrap_or((code, now_epoch())))
    }

    /// Waits up to `timeout` for the container to exit; whether it did.
    async fn wait_exited(&self, dir: &ContainerDir, record: &Record, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.exit_of(dir, record).is_some() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    fn status(&self, dir: &ContainerDir, record: &Record) -> ContainerStatus {
        let exit = self.exit_of(dir, record);
        let health = if record.spec.health_check.is_some() {
            lock(&self.health)
                .get(&record.id)
                .map_or(Health::Unknown, |h| h.health)
        } else {
            Health::Unknown
        };
        let bindings = if record.spec.network_mode == NetworkMode::None {
            Vec::new()
        } else {
            record
                .spec
                .port_mappings
                .iter()
                .map(|p| NetworkBinding {
                    container_port: p.container_port,
                    host_port: if p.host_port == 0 {
                        p.container_port
                    } else {
                        p.host_port
                    },
                    protocol: p.protocol,
                    bind_ip: "0.0.0.0".into(),
                })
                .collect()
        };
        let (state, finished_at, reason) = match exit {
            None => (RunState::Running, None, None),
            Some((code, at)) => (
                RunState::Exited { code },
                Some(at),
                match (code, &record.exit_reason) {
                    (_, Some(r)) if record.kill_sent && code == 137 => Some(r.clone()),
                    (137, _) if record.cgroup.as_deref().is_some_and(isolate::oom_killed) => {
                        Some(isolate::OOM_REASON.into())
                    }
                    (-1, _) => Some("exit code unknown: the supervisor ended without one".into()),
                    _ => None,
                },
            ),
        };
        ContainerStatus {
            state,
            health,
            bindings,
            started_at: Some(record.started_at),
            finished_at,
            reason,
        }
    }
}

/// Sends `signal` to the container's process group if its supervisor is still the process
/// recorded (never to a reused pid).
fn signal_group(record: &Record, signal: Signal) {
    // A zombie supervisor still matches; a reused pid does not.
    if procfs::stat(record.pid).is_some_and(|s| s.start_ticks == record.start_ticks) {
        if let Err(e) = killpg(Pid::from_raw(record.pid), signal) {
            if e != nix::errno::Errno::ESRCH {
                tracing::warn!("process driver: {signal} to group {}: {e}", record.pid);
            }
        }
    }
}

/// [`Record::save`] (which fsyncs) on the blocking pool.
async fn save(record: &Record, dir: &ContainerDir) -> Result<(), DriverError> {
    let (record, dir) = (record.clone(), dir.clone());
    blocking(move || record.save(&dir)).await
}

/// Exit code from a wait status: the code, or 128 + the signal.
fn status_code(status: ExitStatus) -> i64 {
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(sig)) => 128 + i64::from(sig),
        (None, None) => -1,
    }
}

impl Driver for ProcessDriver {
    fn name(&self) -> &'static str {
        "process"
    }

    fn start(&self, spec: &ContainerSpec) -> BoxFuture<'_, Result<ContainerId, DriverError>> {
        if let Some((driver, _)) = &spec.log_driver {
            // Docker log drivers need Docker; `awslogs` is shipped by the agent itself.
            let e = DriverError::InvalidSpec(format!(
                "logConfiguration.logDriver {driver} needs the docker driver (the process \
                 driver keeps output in its own files; use awslogs to ship it)"
            ));
            return Box::pin(async move { Err(e) });
        }
        let spec = spec.clone();
        Box::pin(async move { self.do_start(&spec).await })
    }

    fn inspect(&self, id: &ContainerId) -> BoxFuture<'_, Result<ContainerStatus, DriverError>> {
        let (this, id) = (self.clone(), id.clone());
        Box::pin(blocking(move || this.do_inspect(&id)))
    }

    fn stop(&self, id: &ContainerId, timeout: Duration) -> BoxFuture<'_, Result<(), DriverError>> {
        let id = id.clone();
        Box::pin(async move { self.do_stop(&id, timeout).await })
    }

    fn remove(&self, id: &ContainerId) -> BoxFuture<'_, Result<(), DriverError>> {
        let id = id.clone();
        Box::pin(async move { self.do_remove(&id).await })
    }

    fn list_owned(&self) -> BoxFuture<'_, Result<Vec<OwnedContainer>, DriverError>> {
        let this = self.clone();
        Box::pin(blocking(move || this.do_list()))
    }

    fn stats(&self, id: &ContainerId) -> BoxFuture<'_, Result<Stats, DriverError>> {
        let (this, id) = (self.clone(), id.clone());
        Box::pin(blocking(move || this.do_stats(&id)))
    }

    fn logs(
        &self,
        id: &ContainerId,
        follow: bool,
    ) -> BoxStream<'static, Result<LogLine, DriverError>> {
        let (driver, id) = (self.clone(), id.clone());
        futures::stream::once(async move {
            match driver.load_blocking(&id).await {
                Ok((dir, record)) => LogReader::new(driver, dir, record, follow).lines(),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    fn wait_exit(&self, id: &ContainerId) -> BoxFuture<'_, Result<i64, DriverError>> {
        let id = id.clone();
        Box::pin(async move { self.do_wait(&id).await })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use berth_model::TransportProtocol;

    use super::*;

    #[test]
    fn command_line_rules() {
        let mut spec = ContainerSpec::new("t", "c", "busybox");
        assert!(matches!(
            command_line(&spec),
            Err(DriverError::InvalidSpec(_))
        ));
        spec.command = Some(vec!["echo".into(), "hi".into()]);
        assert_eq!(command_line(&spec).unwrap(), vec!["echo", "hi"]);
        spec.entry_point = Some(vec!["sh".into(), "-c".into()]);
        spec.command = Some(vec!["echo hi".into()]);
        assert_eq!(command_line(&spec).unwrap(), vec!["sh", "-c", "echo hi"]);
        let mut spec = ContainerSpec::new("t", "c", "/bin/sh");
        spec.command = Some(vec!["-c".into(), "true".into()]);
        assert_eq!(command_line(&spec).unwrap(), vec!["/bin/sh", "-c", "true"]);
    }

    /// A stop right after the start must not lose its SIGTERM (the supervisor may not have
    /// forked the command yet, or the fork may still carry the supervisor's trap): every
    /// command ends at once with 143, never with the SIGKILL of the stop timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_immediate_stop_is_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ProcessDriver::new(dir.path().to_path_buf()).unwrap();
        for round in 0..8 {
            let mut stops = Vec::new();
            for i in 0..8 {
                let driver = driver.clone();
                stops.push(tokio::spawn(async move {
                    let mut spec = ContainerSpec::new(format!("t{round}-{i}"), "app", "x");
                    spec.entry_point = Some(vec!["sh".into(), "-c".into()]);
                    spec.command = Some(vec!["sleep 300".into()]);
                    let id = driver.start(&spec).await.unwrap();
                    driver.stop(&id, Duration::from_secs(20)).await.unwrap();
                    driver.wait_exit(&id).await.unwrap()
                }));
            }
            for s in stops {
                let code = tokio::time::timeout(Duration::from_secs(10), s)
                    .await
                    .expect("a stop waited for the SIGKILL: its SIGTERM was lost")
                    .unwrap();
                assert_eq!(code, 143);
            }
        }
    }

    /// A dynamic host port is a real free port, reported in the bindings and handed to the
    /// process in `PORT` and `PORT_<containerPort>`; a fixed one is passed through.
    #[tokio::test]
    async fn dynamic_host_ports_reach_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ProcessDriver::new(dir.path().to_path_buf()).unwrap();
        let mut spec = ContainerSpec::new("t", "app", "x");
        spec.entry_point = Some(vec!["sh".into(), "-c".into()]);
        spec.command = Some(vec!["echo $PORT $PORT_80 $PORT_81".into()]);
        spec.port_mappings = vec![
            crate::spec::PortSpec {
                container_port: 80,
                host_port: 0,
                protocol: TransportProtocol::Tcp,
            },
            crate::spec::PortSpec {
                container_port: 81,
                host_port: 4567,
                protocol: TransportProtocol::Tcp,
            },
        ];
        let id = driver.start(&spec).await.unwrap();
        assert_eq!(driver.wait_exit(&id).await.unwrap(), 0);
        let status = driver.inspect(&id).await.unwrap();
        let dynamic = status
            .bindings
            .iter()
            .find(|b| b.container_port == 80)
            .expect("a binding for port 80")
            .host_port;
        assert_ne!(dynamic, 0);
        assert_ne!(dynamic, 80);
        let (dir, _) = driver.load(&id).unwrap();
        let out = std::fs::read_to_string(dir.stdout()).unwrap();
        assert_eq!(out.trim(), format!("{dynamic} {dynamic} 4567"));
    }

    /// Portable ulimits reach the process; the others, and Docker-only settings, are refused.
    #[tokio::test]
    async fn ulimits_reach_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let driver = ProcessDriver::new(dir.path().to_path_buf()).unwrap();
        let mut spec = ContainerSpec::new("t", "app", "x");
        spec.entry_point = Some(vec!["sh".into(), "-c".into()]);
        spec.command = Some(vec!["echo $(ulimit -Sn) $(ulimit -Hn) $(ulimit -Sc)".into()]);
        spec.ulimits = vec![
            crate::spec::UlimitSpec {
                name: "nofile".into(),
                soft: 64,
                hard: 128,
            },
            crate::spec::UlimitSpec {
                name: "core".into(),
                soft: 0,
                hard: 0,
            },
        ];
        let id = driver.start(&spec).await.unwrap();
        assert_eq!(driver.wait_exit(&id).await.unwrap(), 0);
        let (d, _) = driver.load(&id).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.stdout()).unwrap().trim(),
            "64 128 0"
        );

        let mut other = spec.clone();
        other.ulimits[0].name = "nproc".into();
        assert!(matches!(
            driver.start(&other).await,
            Err(DriverError::InvalidSpec(_))
        ));
        let mut docker_only = spec.clone();
        docker_only.docker.privileged = true;
        assert!(matches!(
            driver.start(&docker_only).await,
            Err(DriverError::InvalidSpec(_))
        ));
    }

    #[test]
    fn users_resolve() {
        assert_eq!(resolve_user("0").unwrap(), (0, 0));
        assert_eq!(resolve_user("root").unwrap(), (0, 0));
        assert_eq!(resolve_user("1234:55").unwrap(), (1234, 55));
        assert!(resolve_user("no-such-user-here").is_err());
    }

    #[test]
    fn executables_are_found_on_path() {
        let wd = Path::new("/");
        assert!(is_executable("sh", DEFAULT_PATH, wd));
        assert!(is_executable("/bin/sh", DEFAULT_PATH, wd));
        assert!(!is_executable("no-such-program-xyz", DEFAULT_PATH, wd));
        assert!(!is_executable("sh", "", wd));
    }
}
