//! What FARGATE means on berth, written down once: the rules Fargate applies to a task
//! (its cpu/memory combinations, platform versions, ephemeral storage, the members a
//! Fargate task may not use, with ECS's own error texts), and how berth provides the capacity
//! (a managed host group per built-in provider, hidden from the user, sized by a pure
//! decision).
//!
//! Why a module of its own: RegisterTaskDefinition, RunTask, CreateService, the launcher, the
//! instance listings and the sizing controller all ask "is this Fargate?" and "is this host
//! berth's own?"; one answer keeps them from drifting apart. Everything here is pure.

use serde::{Deserialize, Serialize};

use crate::capacity::{StrategyItem, FARGATE, FARGATE_SPOT};
use crate::hostgroup::ATTR_HOST_GROUP;
use crate::{ApiError, ContainerInstance, ErrorCode, TaskDefinition};

/// The managed host group behind the `FARGATE` provider (one per cluster: `berth-fargate-CLUSTER`
/// would collide with user names less, but a group joins one cluster, so the cluster is part of
/// the name; see [`managed_group_name`]).
pub const MANAGED_GROUP_PREFIX: &str = "berth-fargate-";
/// The managed host group behind `FARGATE_SPOT`.
pub const MANAGED_SPOT_GROUP_PREFIX: &str = "berth-fargate-spot-";
/// The instance type of managed hosts: large enough for Fargate's largest task (16 vCPU,
/// 120 GB), so any valid task fits an empty host; smaller tasks share a host.
pub const MANAGED_INSTANCE_TYPE: &str = "m5.8xlarge";
/// The platform version `LATEST` resolves to.
pub const LATEST_PLATFORM_VERSION: &str = "1.4.0";
/// The platform versions berth accepts (Linux; ECS retired the older ones).
pub const PLATFORM_VERSIONS: &[&str] = &["LATEST", "1.4.0", "1.3.0"];
/// `platformFamily` of every Fargate task berth runs.
pub const PLATFORM_FAMILY: &str = "Linux";
/// ECS's stopped reason for a reclaimed Spot task.
pub const SPOT_INTERRUPTION_REASON: &str = "Your Spot Task was interrupted.";
/// The ephemeral storage a Fargate task gets when it asks for none (GiB; ECS: 20).
pub const DEFAULT_EPHEMERAL_GIB: u32 = 20;

/// The managed host group of a built-in provider in a cluster; `None` for any other provider.
pub fn managed_group_name(provider: &str, cluster: &str) -> Option<String> {
    match provider {
        FARGATE => Some(format!("{MANAGED_GROUP_PREFIX}{cluster}")),
        FARGATE_SPOT => Some(format!("{MANAGED_SPOT_GROUP_PREFIX}{cluster}")),
        _ => None,
    }
}

/// Whether a host group name is reserved for berth's managed groups (the Auto Scaling API
/// must refuse to create such a name, so no user group is taken for a managed one).
pub fn is_managed_group_name(name: &str) -> bool {
    name.starts_with(MANAGED_GROUP_PREFIX)
}

/// The managed host group an instance belongs to, if it is one of berth's own.
pub fn managed_group_of(inst: &ContainerInstance) -> Option<&str> {
    inst.attributes
        .iter()
        .find(|a| a.name == ATTR_HOST_GROUP)
        .and_then(|a| a.value.as_deref())
        .filter(|g| is_managed_group_name(g))
}

/// Whether an instance is managed (FARGATE) capacity: no ECS answer shows it.
pub fn is_managed_instance(inst: &ContainerInstance) -> bool {
    managed_group_of(inst).is_some()
}

/// `launchType FARGATE` is the strategy `[{capacityProvider: FARGATE}]`: the one mapping the
/// capacity-provider code calls. `None` for the other launch types (no provider).
pub fn launch_type_strategy(launch_type: &str) -> Option<Vec<StrategyItem>> {
    (launch_type == "FARGATE").then(|| {
        vec![StrategyItem {
            capacity_provider: FARGATE.to_owned(),
            weight: 1,
            base: 0,
        }]
    })
}

/// Whether a provider name is one of berth's Fargate providers.
pub fn is_fargate_provider(name: &str) -> bool {
    name == FARGATE || name == FARGATE_SPOT
}

/// Whether Fargate accepts this task-level cpu (units) and memory (MiB) pair.
pub fn size_ok(cpu: u32, mem: u32) -> bool {
    let (lo, hi, step) = match cpu {
        256 => return matches!(mem, 512 | 1024 | 2048),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122_880, 8192),
        _ => return false,
    };
    (lo..=hi).contains(&mem) && (mem - lo).is_multiple_of(step)
}

/// Checks a Fargate task's task-level size, with ECS's ClientException texts.
pub fn check_size(cpu: Option<u32>, mem: Option<u32>) -> Result<(), ApiError> {
    let cpu = cpu.ok_or_else(|| {
        ApiError::client("Fargate requires that 'cpu' be defined at the task level.")
    })?;
    let mem = mem.ok_or_else(|| {
        ApiError::client("Fargate requires that 'memory' be defined at the task level.")
    })?;
    if size_ok(cpu, mem) {
        Ok(())
    } else {
        Err(ApiError::client(format!(
            "No Fargate configuration exists for given values: {cpu} CPU, {mem} memory. See the Amazon ECS documentation for the valid values."
        )))
    }
}

/// Resolves RunTask's / CreateService's `platformVersion` for a launch type: `LATEST` (or none)
/// is [`LATEST_PLATFORM_VERSION`] on Fargate; a version with EC2 or EXTERNAL is refused as ECS
/// refuses it, an unknown one with `PlatformUnknownException`.
pub fn platform_version(given: Option<&str>, fargate: bool) -> Result<Option<String>, ApiError> {
    match (given, fargate) {
        (None, false) => Ok(None),
        (Some(_), false) => Err(ApiError::invalid(
            "The platform version must be null when specifying an EC2 launch type.",
        )),
        (None | Some("LATEST"), true) => Ok(Some(LATEST_PLATFORM_VERSION.to_owned())),
        (Some(v), true) if PLATFORM_VERSIONS.contains(&v) => Ok(Some(v.to_owned())),
        (Some(v), true) => Err(ApiError::new(
            ErrorCode::PlatformUnknownException,
            format!("The specified platform does not exist: {v}."),
        )),
    }
}

/// A task definition's `ephemeralStorage.sizeInGiB`, checked (21..=200, as ECS).
pub fn ephemeral_storage(td: &TaskDefinition) -> Result<Option<u32>, ApiError> {
    let Some(v) = td.extra.get("ephemeralStorage") else {
        return Ok(None);
    };
    let size = v.get("sizeInGiB").and_then(serde_json::Value::as_i64);
    match size {
        Some(s) if (21..=200).contains(&s) => Ok(Some(s as u32)),
        _ => Err(ApiError::client(format!(
            "Invalid ephemeralStorage: sizeInGiB must be between 21 and 200; got {}.",
            size.map_or("none".to_owned(), |s| s.to_string())
        ))),
    }
}

/// The members a task on Fargate may not use (Fargate has no host to share or open up),
/// refused with ECS's ClientException wording.
pub fn check_fargate_members(td: &TaskDefinition) -> Result<(), ApiError> {
    let refuse = |what: &str| {
        ApiError::client(format!(
            "Tasks using the Fargate launch type do not support {what}."
        ))
    };
    if td.ipc_mode.is_some() {
        return Err(refuse("ipcMode"));
    }
    if td.pid_mode.as_deref() == Some("host") {
        return Err(refuse("pidMode 'host'"));
    }
    for v in &td.volumes {
        if v.docker_volume_configuration.is_some() {
            return Err(refuse("dockerVolumeConfiguration"));
        }
        if v.host.as_ref().is_some_and(|h| h.source_path.is_some()) {
            return Err(ApiError::client(
                "Fargate compatible task definitions do not support sourcePath",
            ));
        }
    }
    for c in &td.container_definitions {
        let o = c.options()?;
        if o.privileged == Some(true) {
            return Err(refuse("privileged containers"));
        }
        if !o.links.is_empty() {
            return Err(refuse("links"));
        }
        if let Some(lp) = &o.linux_parameters {
            if !lp.devices.is_empty() {
                return Err(refuse("devices"));
            }
            if lp.shared_memory_size.is_some() {
                return Err(refuse("sharedMemorySize"));
            }
            if !lp.tmpfs.is_empty() {
                return Err(refuse("tmpfs"));
            }
        }
        for (given, what) in [
            (
                !o.docker_security_options.is_empty(),
                "dockerSecurityOptions",
            ),
            (!o.extra_hosts.is_empty(), "extraHosts"),
            (!o.dns_servers.is_empty(), "dnsServers"),
            (!o.dns_search_domains.is_empty(), "dnsSearchDomains"),
        ] {
            if given {
                return Err(refuse(what));
            }
        }
    }
    Ok(())
}

/// What a Fargate task records beyond an EC2 task (rendered by DescribeTasks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FargateTask {
    /// `FARGATE` or `FARGATE_SPOT`.
    pub capacity_provider_name: String,
    /// The resolved platform version (`1.4.0` ...).
    pub platform_version: String,
    /// `Linux`.
    pub platform_family: String,
    /// The ephemeral storage the task was given (GiB).
    pub ephemeral_storage_gib: u32,
    /// The availability zone of its managed host.
    pub availability_zone: String,
}

/// One managed host as the sizing decision sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedHost {
    /// Its instance id (`i-...`).
    pub id: String,
    /// Cpu units and MiB not yet held by tasks (a host not yet registered: all of them).
    pub free: (u64, u64),
    /// Tasks holding resources on it.
    pub tasks: usize,
    /// Since when it has held no task (epoch seconds), `None` while it holds one.
    pub idle_since: Option<f64>,
    /// Kept from scale-in.
    pub protected: bool,
}

/// What a managed group should look like now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sizing {
    /// The group's desired capacity.
    pub desired: u32,
    /// Hosts to release from scale-in protection (idle past the idle time), so the group's
    /// scale-in takes them and nothing else.
    pub release: Vec<String>,
    /// Hosts to protect again (they hold tasks, or pending tasks will land on them).
    pub protect: Vec<String>,
}

/// The sizing decision of a managed group: enough hosts that every waiting task (`pending`:
/// cpu units and MiB each) fits, first-fit on the hosts' free room and then on new empty hosts
/// of `host_size`; hosts idle for `idle_secs` or more with nothing waiting go (released from
/// protection, one less desired each); never past `max`.
pub fn size_group(
    hosts: &[ManagedHost],
    pending: &[(u64, u64)],
    host_size: (u64, u64),
    max: u32,
    now: f64,
    idle_secs: f64,
) -> Sizing {
    let mut free: Vec<(u64, u64)> = hosts.iter().map(|h| h.free).collect();
    let mut used = vec![false; hosts.len()];
    let expired = |h: &ManagedHost| {
        h.tasks == 0 && h.idle_since.is_some_and(|since| now - since >= idle_secs)
    };
    // Waiting tasks fill hosts that stay first, so hosts idle past the idle time can go.
    let mut order: Vec<usize> = (0..hosts.len()).collect();
    order.sort_by_key(|&i| expired(&hosts[i]));
    let mut new_hosts: Vec<(u64, u64)> = Vec::new();
    let mut asks = pending.to_vec();
    asks.sort_by(|a, b| b.cmp(a));
    for (cpu, mem) in asks {
        if cpu > host_size.0 || mem > host_size.1 {
            continue; // can never fit a managed host; validation keeps such tasks out
        }
        if let Some(&i) = order
            .iter()
            .find(|&&i| free[i].0 >= cpu && free[i].1 >= mem)
        {
            free[i].0 -= cpu;
            free[i].1 -= mem;
            used[i] = true;
        } else if let Some(n) = new_hosts.iter_mut().find(|f| f.0 >= cpu && f.1 >= mem) {
            n.0 -= cpu;
            n.1 -= mem;
        } else {
            new_hosts.push((host_size.0 - cpu, host_size.1 - mem));
        }
    }
    let mut out = Sizing::default();
    let mut keep = 0u32;
    for (h, used) in hosts.iter().zip(used) {
        if expired(h) && !used {
            if h.protected {
                out.release.push(h.id.clone());
            }
        } else {
            keep += 1;
            if !h.protected {
                out.protect.push(h.id.clone());
            }
        }
    }
    out.desired = (keep + new_hosts.len() as u32).min(max);
    out
}

#[cfg(test)]
mod tests;
