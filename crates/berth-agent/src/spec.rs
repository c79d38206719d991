//! What a driver is asked to run and what it reports back: plain data, no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_model::TransportProtocol;
use serde::{Deserialize, Serialize};

/// One ECS `portMappings` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortSpec {
    /// Port the application listens on inside the container.
    pub container_port: u16,
    /// Host port to publish on; 0 asks for a dynamic (ephemeral) port.
    pub host_port: u16,
    /// TCP or UDP.
    pub protocol: TransportProtocol,
}

/// An ECS container `healthCheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckSpec {
    /// ECS form: `["CMD-SHELL", "curl -f http://localhost/"]` or `["CMD", "bin", "arg"]`
    /// (`["NONE"]` disables the check). A command without either prefix is run as `CMD`.
    pub command: Vec<String>,
    /// Time between two probes (the first probe runs one interval after the start).
    pub interval: Duration,
    /// A probe running longer than this counts as failed.
    pub timeout: Duration,
    /// Consecutive failures that make the container unhealthy (0 is treated as 1).
    pub retries: u32,
    /// Grace period after the start during which failures do not count.
    pub start_period: Duration,
}

/// How the container's network is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Docker's default bridge; ports are published through port mappings.
    #[default]
    Bridge,
    /// The host's network namespace; the container binds host ports directly.
    Host,
    /// Loopback only.
    None,
    /// The task's own network namespace (see `DockerOptions::network_container`); without
    /// one, treated as `Bridge`.
    Awsvpc,
}

/// Everything a driver needs to run one container of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Task id (the last part of the task ARN).
    pub task_id: String,
    /// Full task ARN.
    pub task_arn: String,
    /// Cluster name.
    pub cluster: String,
    /// The container definition's `name`.
    pub container_name: String,
    /// Image reference. The docker driver never pulls it; the process driver mostly ignores it
    /// (see the process driver's documentation).
    pub image: String,
    /// ECS `entryPoint`; `None` keeps the image's.
    pub entry_point: Option<Vec<String>>,
    /// ECS `command`; `None` keeps the image's.
    pub command: Option<Vec<String>>,
    /// Environment variables, in order (later entries win).
    pub environment: Vec<(String, String)>,
    /// Published ports.
    pub port_mappings: Vec<PortSpec>,
    /// ECS cpu units (1024 = one core); 0 = the runtime's default.
    pub cpu_shares: u64,
    /// Hard memory limit in MiB.
    pub memory_mib: Option<u64>,
    /// Soft memory limit in MiB.
    pub memory_reservation_mib: Option<u64>,
    /// Container health check.
    pub health_check: Option<HealthCheckSpec>,
    /// Time between SIGTERM and SIGKILL when the container is stopped (ECS default 30 s).
    pub stop_timeout: Duration,
    /// Network mode.
    pub network_mode: NetworkMode,
    /// ECS `dockerLabels`.
    pub labels: BTreeMap<String, String>,
    /// Working directory inside the container.
    pub working_directory: Option<String>,
    /// User (`name`, `uid` or `uid:gid`).
    pub user: Option<String>,
    /// ECS `ulimits`.
    #[serde(default)]
    pub ulimits: Vec<UlimitSpec>,
    /// What only a container runtime can honour (mounts, privileges, namespaces ...).
    #[serde(default)]
    pub docker: DockerOptions,
    /// Private registry credentials (`repositoryCredentials`, resolved by the server). The
    /// docker driver never pulls (see [`ContainerSpec::image`]), so nothing reads them yet;
    /// never written to disk (`Debug` redacts them).
    #[serde(skip)]
    pub registry_auth: Option<berth_model::secrets::RegistryAuth>,
    /// Log driver options taken from secrets (`logConfiguration.secretOptions`, resolved by
    /// the server), to merge with the log configuration's options; never written to disk.
    #[serde(skip)]
    pub log_secret_options: BTreeMap<String, String>,
    /// A Docker log driver and its options (`logConfiguration`, for drivers other than
    /// `awslogs`, which the agent itself ships); none keeps the runtime's default.
    pub log_driver: Option<(String, BTreeMap<String, String>)>,
}

/// One ECS `ulimits` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UlimitSpec {
    /// ECS's name (`nofile`, `nproc`, ...), which is Docker's.
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// Where a mount comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountSource {
    /// A host path (`host.sourcePath`).
    Bind(String),
    /// A Docker volume by name (task scratch space or `dockerVolumeConfiguration`).
    Volume(String),
}

/// One `mountPoints` entry, resolved against the task's volumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// What is mounted.
    pub source: MountSource,
    /// Where, in the container.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
}

/// A host device exposed in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// Path on the host.
    pub host_path: String,
    /// Path in the container.
    pub container_path: String,
    /// cgroup permissions, `rwm` or a subset.
    pub permissions: String,
}

/// The members of a container definition only the Docker driver honours. A driver that
/// cannot honour one refuses the spec (the scheduler keeps such tasks off its hosts through
/// `requiresAttributes`; this is the second line).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DockerOptions {
    /// An awsvpc task's pause container, whose network namespace the container joins
    /// (`network_mode: container:NAME`; it publishes no ports).
    #[serde(default)]
    pub network_container: Option<String>,
    /// Bind mounts and volumes.
    pub mounts: Vec<MountSpec>,
    /// `volumesFrom`, resolved: `CONTAINER_ID[:ro]`.
    pub volumes_from: Vec<String>,
    /// `links`, resolved: `CONTAINER_ID:alias`.
    pub links: Vec<String>,
    /// Privileged container.
    pub privileged: bool,
    /// Read-only root file system.
    pub readonly_rootfs: bool,
    /// Host name.
    pub hostname: Option<String>,
    /// No networking.
    pub network_disabled: bool,
    /// DNS servers.
    pub dns: Vec<String>,
    /// DNS search domains.
    pub dns_search: Vec<String>,
    /// `/etc/hosts` entries, `host:ip`.
    pub extra_hosts: Vec<String>,
    /// Security options.
    pub security_opt: Vec<String>,
    /// Namespaced kernel parameters.
    pub sysctls: BTreeMap<String, String>,
    /// Keep stdin open.
    pub open_stdin: bool,
    /// Allocate a TTY.
    pub tty: bool,
    /// Run an init process as PID 1.
    pub init: Option<bool>,
    /// Capabilities to add.
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    pub cap_drop: Vec<String>,
    /// Host devices.
    pub devices: Vec<DeviceSpec>,
    /// `/dev/shm` size in MiB.
    pub shm_size_mib: Option<u64>,
    /// tmpfs mounts: path to Docker's options (`size=16m,noexec`).
    pub tmpfs: BTreeMap<String, String>,
    /// Swap allowed beyond the memory limit, in MiB.
    pub max_swap_mib: Option<u64>,
    /// Swappiness (0 to 100).
    pub swappiness: Option<i64>,
    /// PID namespace: `host` or `container:ID`.
    pub pid_mode: Option<String>,
    /// IPC namespace: `host`, `none`, `shareable` or `container:ID`.
    pub ipc_mode: Option<String>,
}

/// A Docker volume a task needs before its containers start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// The Docker volume's name.
    pub name: String,
    /// The volume driver (`local`).
    pub driver: String,
    /// Options of the driver.
    pub driver_opts: BTreeMap<String, String>,
    /// Labels of the volume.
    pub labels: BTreeMap<String, String>,
    /// Removed with the task's containers (task scope and scratch space), else kept.
    pub task_scoped: bool,
    /// For a kept (shared) volume: create it when missing; otherwise a missing one fails
    /// the task.
    pub create_if_missing: bool,
}

impl ContainerSpec {
    /// A spec with the given identity and image and ECS defaults for everything else
    /// (no command override, bridge network, 30 s stop timeout).
    pub fn new(
        task_id: impl Into<String>,
        container_name: impl Into<String>,
        image: impl Into<String>,
    ) -> Self {
        ContainerSpec {
            task_id: task_id.into(),
            task_arn: String::new(),
            cluster: String::new(),
            container_name: container_name.into(),
            image: image.into(),
            entry_point: None,
            command: None,
            environment: Vec::new(),
            port_mappings: Vec::new(),
            cpu_shares: 0,
            memory_mib: None,
            memory_reservation_mib: None,
            health_check: None,
            stop_timeout: Duration::from_secs(30),
            network_mode: NetworkMode::Bridge,
            labels: BTreeMap::new(),
            working_directory: None,
            user: None,
            ulimits: Vec::new(),
            docker: DockerOptions::default(),
            registry_auth: None,
            log_secret_options: BTreeMap::new(),
            log_driver: None,
        }
    }
}

/// A driver's handle on one container: the Docker container id for the docker driver, a
/// state-directory entry name for the process driver. Stable across agent restarts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContainerId(pub String);

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A published port as actually bound (ECS `networkBindings`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkBinding {
    /// Port inside the container.
    pub container_port: u16,
    /// Port on the host (the assigned one when the spec asked for a dynamic port).
    pub host_port: u16,
    /// TCP or UDP.
    pub protocol: TransportProtocol,
    /// Host address the port is bound on (`0.0.0.0` for all addresses).
    pub bind_ip: String,
}

/// Lifecycle state of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunState {
    /// Created but not (yet) started.
    Created,
    /// Running.
    Running,
    /// Exited, whether by itself, stopped, OOM-killed or killed
    /// ([`ContainerStatus::reason`] says why when the driver knows).
    Exited {
        /// Exit code; 128 + N for death by signal N; -1 when it cannot be known.
        code: i64,
    },
}

/// Health as decided by the container's health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Health {
    /// No health check, or not decided yet (Docker's `starting`).
    #[default]
    Unknown,
    /// The last probe succeeded.
    Healthy,
    /// `retries` consecutive probes failed after the start period.
    Unhealthy,
}

/// What [`Driver::inspect`](crate::Driver::inspect) reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerStatus {
    /// Lifecycle state.
    pub state: RunState,
    /// Health-check verdict.
    pub health: Health,
    /// Published ports as bound.
    pub bindings: Vec<NetworkBinding>,
    /// Start time, epoch seconds.
    pub started_at: Option<f64>,
    /// Exit time, epoch seconds.
    pub finished_at: Option<f64>,
    /// Why it exited when that is more than an exit code, e.g.
    /// `OutOfMemoryError: Container killed due to memory usage`.
    pub reason: Option<String>,
}

/// A container found by [`Driver::list_owned`](crate::Driver::list_owned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnedContainer {
    /// Driver handle.
    pub id: ContainerId,
    /// Task id it was started for.
    pub task_id: String,
    /// Container name within the task.
    pub container_name: String,
    /// Current status.
    pub status: ContainerStatus,
}

/// One resource-usage sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Cumulative CPU time in nanoseconds (two samples give a rate).
    pub cpu_total_ns: u64,
    /// Memory in use, bytes.
    pub memory_bytes: u64,
    /// When the sample was taken, epoch seconds.
    pub at: f64,
}

/// Output stream of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of container output (without its trailing newline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Which stream it came from.
    pub stream: Stream,
    /// The text, lossily decoded as UTF-8.
    pub line: String,
    /// When it was written, epoch seconds (see each driver for how exact this is).
    pub at: f64,
}

/// Labels every driver puts on what it starts, so `list_owned` can find it again.
pub mod labels {
    /// Marks a container as berth's: value `true`.
    pub const MANAGED: &str = "berth.managed";
    /// The task id.
    pub const TASK_ID: &str = "berth.task-id";
    /// The task ARN.
    pub const TASK_ARN: &str = "berth.task-arn";
    /// The cluster name.
    pub const CLUSTER: &str = "berth.cluster";
    /// The container name within the task.
    pub const CONTAINER_NAME: &str = "berth.container-name";
    /// On a Docker volume: removed with the task's containers (`task`) or kept (`shared`).
    pub const VOLUME_SCOPE: &str = "berth.volume-scope";
}

/// The ECS `dockerLabels` plus berth's own labels (berth's win on a clash).
pub(crate) fn owned_labels(spec: &ContainerSpec) -> BTreeMap<String, String> {
    let mut out = spec.labels.clone();
    out.insert(labels::MANAGED.into(), "true".into());
    out.insert(labels::TASK_ID.into(), spec.task_id.clone());
    out.insert(labels::TASK_ARN.into(), spec.task_arn.clone());
    out.insert(labels::CLUSTER.into(), spec.cluster.clone());
    out.insert(labels::CONTAINER_NAME.into(), spec.container_name.clone());
    out
}

/// The health-check command in a runnable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HealthCommand {
    /// `CMD-SHELL`: one shell command line.
    Shell(String),
    /// `CMD` (or no prefix): argv executed directly.
    Exec(Vec<String>),
    /// `NONE` or empty: no check.
    Disabled,
}

impl HealthCommand {
    /// Parses the ECS form. `CMD-SHELL` with several words joins them with spaces, as Docker
    /// does for the shell form.
    pub(crate) fn parse(command: &[String]) -> HealthCommand {
        match command.split_first() {
            None => HealthCommand::Disabled,
            Some((first, rest)) => match first.as_str() {
                "NONE" => HealthCommand::Disabled,
                "CMD-SHELL" if rest.is_empty() => HealthCommand::Disabled,
                "CMD-SHELL" => HealthCommand::Shell(rest.join(" ")),
                "CMD" if rest.is_empty() => HealthCommand::Disabled,
                "CMD" => HealthCommand::Exec(rest.to_vec()),
                _ => HealthCommand::Exec(command.to_vec()),
            },
        }
    }

    /// Docker's `Healthcheck.Test` form.
    pub(crate) fn docker_test(&self) -> Vec<String> {
        match self {
            HealthCommand::Shell(line) => vec!["CMD-SHELL".into(), line.clone()],
            HealthCommand::Exec(argv) => {
                let mut test = vec!["CMD".to_string()];
                test.extend(argv.iter().cloned());
                test
            }
            HealthCommand::Disabled => vec!["NONE".into()],
        }
    }
}

/// The current time as epoch seconds.
pub(crate) fn now_epoch() -> f64 {
    system_time_epoch(SystemTime::now())
}

/// A `SystemTime` as epoch seconds (times before 1970 become 0).
pub(crate) fn system_time_epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Parses an RFC 3339 UTC timestamp as Docker writes it (`2024-05-01T12:34:56.123456789Z`,
/// also with a `+hh:mm` offset) into epoch seconds. Docker's zero time (year 1) and anything
/// unparsable give `None`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Split off the zone: `Z`, `+hh:mm` or `-hh:mm`.
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0i64)
    } else {
        let pos = time.rfind(['+', '-'])?;
        let (c, zone) = time.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone.get(1..)?.split_once(':')?;
        let h: i64 = h.parse().ok()?;
        let m: i64 = m.parse().ok()?;
        (c, sign * (h * 3600 + m * 60))
    };
    let mut t = clock.splitn(3, ':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let sec_str = t.next()?;
    let (whole, frac) = match sec_str.split_once('.') {
        Some((w, f)) => (w, f),
        None => (sec_str, ""),
    };
    let second: i64 = whole.parse().ok()?;
    let fraction = if frac.is_empty() {
        0.0
    } else {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("0.{frac}").parse::<f64>().ok()?
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs as f64 + fraction)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let d = i64::from(d);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Splits a byte buffer into complete lines, keeping an unfinished tail in `pending`.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; returns every line completed by them (without `\n` or a trailing `\r`).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
            let rest = self.pending.split_off(pos + 1);
            let mut line = std::mem::replace(&mut self.pending, rest);
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        lines
    }

    /// The unfinished last line, if any (call when the stream ends).
    pub(crate) fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            None
        } else {
            let line = std::mem::take(&mut self.pending);
            Some(String::from_utf8_lossy(&line).into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_docker_timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        let t = parse_rfc3339("2024-05-01T12:34:56.5Z").unwrap_or_default();
        assert!((t - 1_714_566_896.5).abs() < 1e-6, "{t}");
        let t = parse_rfc3339("2024-05-01T14:34:56.123456789+02:00").unwrap_or_default();
        assert!((t - 1_714_566_896.123_457).abs() < 1e-5, "{t}");
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn health_command_forms() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            HealthCommand::parse(&v(&["CMD-SHELL", "curl -f x || exit 1"])),
            HealthCommand::Shell("curl -f x || exit 1".into())
        );
        assert_eq!(
            HealthCommand::parse(&v(&["CMD", "true"])),
            HealthCommand::Exec(v(&["true"]))
        );
        assert_eq!(
            HealthCommand::parse(&v(&["true", "x"])),
            HealthCommand::Exec(v(&["true", "x"]))
        );
        assert_eq!(HealthCommand::parse(&v(&["NONE"])), HealthCommand::Disabled);
        assert_eq!(
            HealthCommand::Shell("a b".into()).docker_test(),
            v(&["CMD-SHELL", "a b"])
        );
    }

    #[test]
    fn line_splitter_keeps_partial_lines() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"a\nb"), vec!["a".to_string()]);
        assert_eq!(s.push(b"c\r\n\n"), vec!["bc".to_string(), String::new()]);
        assert_eq!(s.push(b"tail"), Vec::<String>::new());
        assert_eq!(s.finish(), Some("tail".into()));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn owned_labels_win_over_docker_labels() {
        let mut spec = ContainerSpec::new("t1", "web", "img");
        spec.labels.insert(labels::TASK_ID.into(), "forged".into());
        spec.labels.insert("team".into(), "a".into());
        let l = owned_labels(&spec);
        assert_eq!(l.get(labels::TASK_ID).map(String::as_str), Some("t1"));
        assert_eq!(l.get("team").map(String::as_str), Some("a"));
        assert_eq!(l.get(labels::MANAGED).map(String::as_str), Some("true"));
    }
}
