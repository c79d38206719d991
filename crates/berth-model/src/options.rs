//! The members of a `ContainerDefinition` that only a container runtime can honour (ulimits,
//! Linux parameters, privileges, DNS, restart policy, environment files ...), typed.
//!
//! They stay in the container's `extra` map in the store: a record written before they were
//! typed re-encodes byte-identically (`extra` is a sorted map), and registration, the server's
//! poll and the agent decode this typed view from it with [`ContainerDefinition::options`].
//! Which of them berth honours, refuses or needs a Docker host for is decided in `support.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ApiError, ContainerDefinition, ErrorCode};

/// ECS's `Ulimit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ulimit {
    /// The resource (`nofile`, `nproc`, ...; see [`ULIMIT_NAMES`]).
    pub name: String,
    /// The soft limit.
    pub soft_limit: i64,
    /// The hard limit.
    pub hard_limit: i64,
}

/// ECS's `UlimitName` values.
pub const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// The ulimits a host without Docker can apply too (the process driver sets them with the
/// POSIX shell's `ulimit` before it runs the command); a task using only these needs no
/// Docker host.
pub const PORTABLE_ULIMITS: &[&str] = &[
    "core", "cpu", "data", "fsize", "memlock", "nofile", "rss", "stack",
];

/// ECS's `KernelCapabilities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct KernelCapabilities {
    /// Capabilities added to Docker's default set.
    #[serde(default)]
    pub add: Vec<String>,
    /// Capabilities removed from it.
    #[serde(default)]
    pub drop: Vec<String>,
}

/// ECS's `Device`: a host device exposed in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The device on the host.
    #[serde(default)]
    pub host_path: String,
    /// Where it appears in the container (default: the host path).
    #[serde(default)]
    pub container_path: Option<String>,
    /// `read`, `write`, `mknod` (default: all three).
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// ECS's `Tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Tmpfs {
    /// Where it is mounted.
    #[serde(default)]
    pub container_path: String,
    /// Its size in MiB.
    #[serde(default)]
    pub size: i64,
    /// Mount options (`noexec`, `mode=1777`, ...).
    #[serde(default)]
    pub mount_options: Vec<String>,
}

/// ECS's `LinuxParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LinuxParameters {
    /// Capabilities to add and drop.
    #[serde(default)]
    pub capabilities: Option<KernelCapabilities>,
    /// Host devices.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Run an init process (Docker's `--init`) as PID 1.
    #[serde(default)]
    pub init_process_enabled: Option<bool>,
    /// `/dev/shm` size in MiB.
    #[serde(default)]
    pub shared_memory_size: Option<i64>,
    /// tmpfs mounts.
    #[serde(default)]
    pub tmpfs: Vec<Tmpfs>,
    /// Swap the container may use, in MiB (0: none).
    #[serde(default)]
    pub max_swap: Option<i64>,
    /// The kernel's swappiness for the container (0 to 100; 60 when `maxSwap` is set).
    #[serde(default)]
    pub swappiness: Option<i64>,
}

/// ECS's `HostEntry` (an `/etc/hosts` line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    /// The name.
    #[serde(default)]
    pub hostname: String,
    /// Its address.
    #[serde(default)]
    pub ip_address: String,
}

/// ECS's `SystemControl` (a namespaced kernel parameter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SystemControl {
    /// The parameter, e.g. `net.core.somaxconn`.
    #[serde(default)]
    pub namespace: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// ECS's `EnvironmentFile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentFile {
    /// Where the file is: berth reads `file:///abs/path` or `/abs/path` on the agent's host.
    #[serde(default)]
    pub value: String,
    /// Always `s3` in ECS's model.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl EnvironmentFile {
    /// The absolute local path the file names, if it names one.
    pub fn local_path(&self) -> Option<&str> {
        let p = self.value.strip_prefix("file://").unwrap_or(&self.value);
        p.starts_with('/').then_some(p)
    }
}

/// ECS's `ContainerRestartPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRestartPolicy {
    /// Whether the container is restarted when it exits.
    #[serde(default)]
    pub enabled: bool,
    /// Exit codes that do not restart it (at most 50).
    #[serde(default)]
    pub ignored_exit_codes: Vec<i64>,
    /// Seconds a container must have run before it may be restarted (60 to 1800; 300).
    #[serde(default)]
    pub restart_attempt_period: Option<i64>,
}

impl ContainerRestartPolicy {
    /// ECS's default `restartAttemptPeriod`.
    pub const DEFAULT_ATTEMPT_PERIOD: i64 = 300;

    /// Whether a container that exited with `code` after running `ran_secs` is restarted.
    pub fn restarts(&self, code: i64, ran_secs: f64) -> bool {
        let period = self
            .restart_attempt_period
            .unwrap_or(Self::DEFAULT_ATTEMPT_PERIOD);
        self.enabled && !self.ignored_exit_codes.contains(&code) && ran_secs >= period as f64
    }
}

/// The runtime members of one container definition (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOptions {
    /// Legacy links to other containers of the task (`name[:alias]`, bridge mode only).
    #[serde(default)]
    pub links: Vec<String>,
    /// The container's host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The user to run as (`user`, `uid`, `uid:gid`, `user:group`).
    #[serde(default)]
    pub user: Option<String>,
    /// The working directory.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// No networking at all.
    #[serde(default)]
    pub disable_networking: Option<bool>,
    /// Root on the host.
    #[serde(default)]
    pub privileged: Option<bool>,
    /// A read-only root file system.
    #[serde(default)]
    pub readonly_root_filesystem: Option<bool>,
    /// DNS servers.
    #[serde(default)]
    pub dns_servers: Vec<String>,
    /// DNS search domains.
    #[serde(default)]
    pub dns_search_domains: Vec<String>,
    /// `/etc/hosts` additions.
    #[serde(default)]
    pub extra_hosts: Vec<HostEntry>,
    /// SELinux / AppArmor / seccomp / no-new-privileges options.
    #[serde(default)]
    pub docker_security_options: Vec<String>,
    /// Keep stdin open.
    #[serde(default)]
    pub interactive: Option<bool>,
    /// Allocate a TTY.
    #[serde(default)]
    pub pseudo_terminal: Option<bool>,
    /// Resource limits.
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// Linux-specific settings.
    #[serde(default)]
    pub linux_parameters: Option<LinuxParameters>,
    /// Namespaced kernel parameters.
    #[serde(default)]
    pub system_controls: Vec<SystemControl>,
    /// Files of variables added to the environment (`environment` wins over them).
    #[serde(default)]
    pub environment_files: Vec<EnvironmentFile>,
    /// Restart in place when the container exits.
    #[serde(default)]
    pub restart_policy: Option<ContainerRestartPolicy>,
    /// Whether ECS pins the image tag to a digest (`enabled` / `disabled`).
    #[serde(default)]
    pub version_consistency: Option<String>,
}

impl ContainerOptions {
    /// Whether the container asks for a restart policy that is enabled.
    pub fn restart_enabled(&self) -> bool {
        self.restart_policy.as_ref().is_some_and(|r| r.enabled)
    }
}

impl ContainerDefinition {
    /// The typed view of its runtime members (see the module documentation). A member of the
    /// wrong JSON type is the client's `SerializationException`, naming it.
    pub fn options(&self) -> Result<ContainerOptions, ApiError> {
        let known: serde_json::Map<String, Value> = self
            .extra
            .iter()
            .filter(|(k, _)| OPTION_MEMBERS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        serde_json::from_value(Value::Object(known)).map_err(|e| {
            ApiError::new(
                ErrorCode::SerializationException,
                format!("Could not parse container '{}' definition: {e}", self.name),
            )
        })
    }
}

/// The wire names of [`ContainerOptions`]' members.
pub const OPTION_MEMBERS: &[&str] = &[
    "links",
    "hostname",
    "user",
    "workingDirectory",
    "disableNetworking",
    "privileged",
    "readonlyRootFilesystem",
    "dnsServers",
    "dnsSearchDomains",
    "extraHosts",
    "dockerSecurityOptions",
    "interactive",
    "pseudoTerminal",
    "ulimits",
    "linuxParameters",
    "systemControls",
    "environmentFiles",
    "restartPolicy",
    "versionConsistency",
];

/// A parsed environment file: `KEY=VALUE` lines; blank lines and `#` comments skipped, as
/// ECS reads them (no quoting, no expansion; the value is everything after the first `=`).
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_decode_from_the_extra_members() {
        let c: ContainerDefinition = serde_json::from_value(json!({
            "name": "a", "image": "i", "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
            "linuxParameters": {"capabilities": {"add": ["NET_ADMIN"]}, "initProcessEnabled": true,
                "tmpfs": [{"containerPath": "/t", "size": 16}]},
            "restartPolicy": {"enabled": true, "ignoredExitCodes": [3]},
            "user": "1000", "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.2"}]
        }))
        .unwrap();
        let o = c.options().unwrap();
        assert_eq!(o.ulimits[0].soft_limit, 1024);
        let lp = o.linux_parameters.unwrap();
        assert_eq!(lp.capabilities.unwrap().add, vec!["NET_ADMIN"]);
        assert_eq!(lp.tmpfs[0].size, 16);
        assert_eq!(o.user.as_deref(), Some("1000"));
        assert_eq!(o.extra_hosts[0].ip_address, "10.0.0.2");
        let r = o.restart_policy.unwrap();
        assert!(r.restarts(1, 301.0));
        assert!(!r.restarts(3, 301.0), "an ignored exit code");
        assert!(!r.restarts(1, 10.0), "ran less than the attempt period");
        let bad: ContainerDefinition =
            serde_json::from_value(json!({"name": "a", "image": "i", "ulimits": "x"})).unwrap();
        assert_eq!(
            bad.options().unwrap_err().code,
            ErrorCode::SerializationException
        );
    }

    #[test]
    fn env_files_parse_as_ecs_reads_them() {
        let m = parse_env_file("# c\nA=1\n\nB = two=2\nnoequals\n");
        assert_eq!(m.get("A").map(String::as_str), Some("1"));
        assert_eq!(m.get("B").map(String::as_str), Some(" two=2"));
        assert_eq!(m.len(), 2);
        let f = EnvironmentFile {
            value: "file:///etc/app.env".into(),
            kind: Some("s3".into()),
        };
        assert_eq!(f.local_path(), Some("/etc/app.env"));
    }
}
