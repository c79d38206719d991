//! What isolation the process driver can give a task on this host: another user, and a cgroup.
//!
//! A process task shares the host's kernel, filesystem and network, so the driver does what
//! it can without a container runtime. **User**: commands run as an unprivileged user
//! (`nobody` unless `--task-user` says otherwise; a container's own `user` wins), so a task
//! cannot read the agent's keys or signal other tasks' processes. The supervisor stays the
//! agent's user (it writes the exit file in the agent's private state dir) and starts the
//! command through `setpriv` (util-linux), which sets the uid, gid and clears the
//! supplementary groups just before `exec`; the command starts in a `work` directory the user
//! owns (the container's state dir stays the agent's, so a task cannot rewrite its record).
//! When the agent is not root it cannot switch users: tasks run as the agent's user and the
//! driver says so. **cgroup v2**: when the unified hierarchy is mounted with the `memory`
//! and `cpu` controllers available and writable, each task gets its own cgroup under
//! `berth/` with `memory.max` (the container's `memory`, no swap beyond it) and `cpu.max`
//! (its cpu units as a hard ceiling, 1024 units = one CPU), and the supervisor joins it
//! before anything else runs; a command the kernel OOM-kills exits 137 and is reported with
//! ECS's reason. **cgroup v1**: on a host without a usable v2 hierarchy (older distributions,
//! and hybrid layouts whose unified mount holds no controllers) the same limits go into the
//! v1 `memory` hierarchy (`memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes` where
//! swap is accounted) and `cpu` hierarchy (`cpu.cfs_quota_us` over a 100 ms period), a task
//! cgroup of the same name under `berth/` in each, joined both. Without either (or without
//! permission) limits are not enforced, with a warning at start.

use std::path::{Path, PathBuf};

use super::command::resolve_user;
use crate::error::DriverError;

/// ECS's stopped reason for a container the kernel killed for its memory.
pub(super) const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// How the driver isolates the tasks it runs.
#[derive(Debug, Clone)]
pub(super) struct Isolation {
    /// The uid and gid tasks run as unless their spec names a user; `None`: the agent's own.
    pub default_user: Option<(u32, u32)>,
    /// Whether the agent runs as root (and so can switch users and manage cgroups).
    agent_is_root: bool,
    /// `setpriv`, when installed.
    setpriv: Option<PathBuf>,
    /// Where task cgroups go, when cgroups are usable.
    pub cgroups: Option<Cgroups>,
}

impl Isolation {
    /// Isolation on this host for tasks run as `task_user` (`root` or `0`: the agent's user).
    pub fn detect(task_user: &str) -> Result<Self, DriverError> {
        let agent_is_root = nix::unistd::geteuid().is_root();
        let setpriv = ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file());
        let wanted = match task_user {
            "root" | "0" | "0:0" => None,
            user => Some(resolve_user(user)?),
        };
        let default_user = match wanted {
            Some(_) if !agent_is_root => {
                tracing::warn!(
                    uid = nix::unistd::geteuid().as_raw(),
                    "the agent is not root: process tasks run as the agent's own user, not {task_user:?}"
                );
                None
            }
            Some(_) if setpriv.is_none() => {
                return Err(DriverError::Runtime(format!(
                    "running process tasks as {task_user:?} needs setpriv (util-linux); \
                     install it, or pass --task-user root to run them as root"
                )))
            }
            other => other,
        };
        if agent_is_root && default_user.is_none() {
            tracing::warn!("process tasks run as root (--task-user root)");
        }
        let cgroups = if agent_is_root {
            Cgroups::detect()
        } else {
            None
        };
        if cgroups.is_none() {
            tracing::warn!(
                "no cgroup hierarchy (v2, or v1 memory and cpu) is available to the agent: \
                 process tasks' cpu and memory limits are not enforced"
            );
        }
        Ok(Self {
            default_user,
            agent_is_root,
            setpriv,
            cgroups,
        })
    }

    /// What goes before a task's argv so it runs as `user` (nothing for the agent's own).
    pub fn exec_prefix(&self, user: Option<(u32, u32)>) -> Result<Vec<String>, DriverError> {
        let Some((uid, gid)) = user else {
            return Ok(Vec::new());
        };
        let me = nix::unistd::geteuid().as_raw();
        if uid == me && (uid != 0 || gid == 0) {
            return Ok(Vec::new());
        }
        if !self.agent_is_root {
            return Err(DriverError::InvalidSpec(format!(
                "user {uid}:{gid}: the agent runs as uid {me} and cannot switch users"
            )));
        }
        let setpriv = self.setpriv.as_ref().ok_or_else(|| {
            DriverError::Runtime("running a task as another user needs setpriv (util-linux)".into())
        })?;
        Ok(vec![
            setpriv.display().to_string(),
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
            "--".into(),
        ])
    }
}

/// Task cgroups under `ROOT/berth/`: on the cgroup v2 hierarchy, or on the v1 memory and cpu
/// hierarchies.
#[derive(Debug, Clone)]
pub(super) struct Cgroups {
    /// `<cgroup2 mount>/berth`, or on v1 `<memory mount>/berth`: where a task's cgroup (the
    /// path its record keeps) is made.
    parent: PathBuf,
    /// On v1, `<cpu mount>/berth`, where the task's cpu twin is made.
    v1_cpu: Option<PathBuf>,
}

impl Cgroups {
    /// The cgroup v2 mount if it offers memory and cpu and the agent can set them up, else the
    /// v1 memory and cpu mounts.
    fn detect() -> Option<Self> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        let mount = |fstype: &str, option: Option<&str>| {
            mounts.lines().find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let fits = f.get(2) == Some(&fstype)
                    && option
                        .is_none_or(|o| f.get(3).is_some_and(|os| os.split(',').any(|x| x == o)));
                fits.then(|| PathBuf::from(f.get(1).copied().unwrap_or_default()))
            })
        };
        if let Some(v2) = mount("cgroup2", None) {
            match Self::setup(&v2) {
                Ok(c) => return Some(c),
                Err(e) => tracing::info!(mount = %v2.display(), "cgroup v2 not usable: {e}"),
            }
        }
        let (memory, cpu) = (
            mount("cgroup", Some("memory"))?,
            mount("cgroup", Some("cpu"))?,
        );
        match Self::setup_v1(&memory, &cpu) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(mount = %memory.display(), "cgroup v1 not usable: {e}");
                None
            }
        }
    }

    /// Makes `berth/` in the v1 memory and cpu hierarchies. A task cgroup is found from its
    /// memory path alone (see `v1_cpu_twin`), so both mounts must sit side by side as
    /// `memory` and `cpu` (the layout systemd and Docker hosts have).
    pub fn setup_v1(memory: &Path, cpu: &Path) -> Result<Self, String> {
        let cpu_beside = memory.with_file_name("cpu");
        let same = |a: &Path, b: &Path| matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b);
        if memory.file_name() != Some("memory".as_ref()) || !same(&cpu_beside, cpu) {
            return Err(format!(
                "the memory and cpu hierarchies are not side by side as memory and cpu ({}, {})",
                memory.display(),
                cpu.display()
            ));
        }
        let cpu = cpu_beside;
        let (parent, v1_cpu) = (memory.join("berth"), cpu.join("berth"));
        for d in [&parent, &v1_cpu] {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        if !parent.join("memory.limit_in_bytes").exists()
            || !v1_cpu.join("cpu.cfs_quota_us").exists()
        {
            return Err("memory.limit_in_bytes or cpu.cfs_quota_us is missing".into());
        }
        Ok(Self {
            parent,
            v1_cpu: Some(v1_cpu),
        })
    }

    /// Makes `<mount>/berth` with the memory and cpu controllers enabled for its children.
    pub fn setup(mount: &Path) -> Result<Self, String> {
        let controllers = std::fs::read_to_string(mount.join("cgroup.controllers"))
            .map_err(|e| format!("reading cgroup.controllers: {e}"))?;
        let have: Vec<&str> = controllers.split_whitespace().collect();
        for c in ["memory", "cpu"] {
            if !have.contains(&c) {
                return Err(format!(
                    "the {c} controller is not available (have: {controllers:?})"
                ));
            }
        }
        let parent = mount.join("berth");
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        for dir in [mount, parent.as_path()] {
            write(&dir.join("cgroup.subtree_control"), "+memory +cpu")?;
        }
        Ok(Self {
            parent,
            v1_cpu: None,
        })
    }

    /// A new cgroup for container `id` with its limits; returns its path.
    pub fn create(
        &self,
        id: &str,
        memory_mib: Option<u64>,
        cpu_units: u64,
    ) -> Result<PathBuf, String> {
        let dir = self.parent.join(id);
        std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let bytes = memory_mib
            .filter(|m| *m > 0)
            .map(|m| (m * 1024 * 1024).to_string());
        let set = || -> Result<(), String> {
            let Some(cpu_dir) = &self.v1_cpu else {
                if let Some(bytes) = &bytes {
                    write(&dir.join("memory.max"), bytes)?;
                    // Swap would let a task exceed its memory on a host with swap on.
                    let _ = write(&dir.join("memory.swap.max"), "0");
                }
                if cpu_units > 0 {
                    write(&dir.join("cpu.max"), &cpu_max(cpu_units))?;
                }
                return Ok(());
            };
            let twin = cpu_dir.join(id);
            std::fs::create_dir(&twin).map_err(|e| format!("creating {}: {e}", twin.display()))?;
            if let Some(bytes) = &bytes {
                write(&dir.join("memory.limit_in_bytes"), bytes)?;
                // memory+swap, where swap is accounted: no swap beyond the limit.
                let _ = write(&dir.join("memory.memsw.limit_in_bytes"), bytes);
            }
            if cpu_units > 0 {
                let (quota, period) = cpu_max(cpu_units)
                    .split_once(' ')
                    .map(|(q, p)| (q.to_string(), p.to_string()))
                    .unwrap_or_default();
                write(&twin.join("cpu.cfs_period_us"), &period)?;
                write(&twin.join("cpu.cfs_quota_us"), &quota)?;
            }
            Ok(())
        };
        set().inspect_err(|_| remove(&dir))?;
        Ok(dir)
    }
}

/// `cpu.max` for `units` (1024 per CPU) over a 100 ms period.
pub(super) fn cpu_max(units: u64) -> String {
    let quota = (units * 100_000 / 1024).max(1_000);
    format!("{quota} 100000")
}

/// On cgroup v1, the cpu hierarchy's twin of the task cgroup at `dir`
/// (`<root>/memory/berth/<id>` has `<root>/cpu/berth/<id>`); `None` on v2.
fn v1_cpu_twin(dir: &Path) -> Option<PathBuf> {
    let id = dir.file_name()?;
    let berth = dir.parent()?;
    let memory = berth.parent()?;
    (berth.file_name()? == "berth" && memory.file_name()? == "memory")
        .then(|| memory.with_file_name("cpu").join("berth").join(id))
}

/// Every cgroup directory of the task cgroup at `dir`: itself, and its v1 cpu twin.
fn task_dirs(dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::iter::once(dir.to_path_buf()).chain(v1_cpu_twin(dir))
}

/// The supervisor's first line: join the cgroup at `dir` before anything else runs.
pub(super) fn join_prelude(dir: Option<&Path>) -> String {
    dir.map(task_dirs)
        .into_iter()
        .flatten()
        .map(|d| format!("echo $$ > '{}/cgroup.procs' || exit 125\n", d.display()))
        .collect()
}

/// Whether the kernel OOM-killed a process in the cgroup at `dir` (v2 counts kills in
/// `memory.events`, v1 in `memory.oom_control`).
pub(super) fn oom_killed(dir: &Path) -> bool {
    ["memory.events", "memory.oom_control"].iter().any(|f| {
        std::fs::read_to_string(dir.join(f)).is_ok_and(|events| {
            events.lines().any(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    })
}

/// Removes a task's cgroup (once its processes are gone); a cgroup still busy stays.
pub(super) fn remove(dir: &Path) {
    for d in task_dirs(dir) {
        if let Err(e) = std::fs::remove_dir(&d) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(cgroup = %d.display(), "removing a task cgroup: {e}");
            }
        }
    }
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("writing {value:?} to {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_units_become_a_quota() {
        assert_eq!(cpu_max(1024), "100000 100000");
        assert_eq!(cpu_max(512), "50000 100000");
        assert_eq!(cpu_max(2048), "200000 100000");
        assert_eq!(cpu_max(2), "1000 100000", "a floor the kernel accepts");
    }

    #[test]
    fn limits_are_written_into_the_task_cgroup() {
        // A directory standing in for the cgroup2 mount: the files are plain files here.
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let cg = Cgroups::setup(root.path()).unwrap();
        let dir = cg.create("c-1", Some(64), 256).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), (64 * 1024 * 1024).to_string());
        assert_eq!(read("cpu.max"), "25000 100000");
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(
            std::fs::read_to_string(root.path().join("berth/cgroup.subtree_control")).unwrap(),
            "+memory +cpu"
        );
        assert!(!oom_killed(&dir));
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(oom_killed(&dir));
        assert_eq!(
            join_prelude(Some(&dir)),
            format!("echo $$ > '{}/cgroup.procs' || exit 125\n", dir.display())
        );
    }

    #[test]
    fn on_v1_limits_go_into_the_memory_and_cpu_hierarchies() {
        // Directories standing in for the v1 mounts, with the files the kernel would make.
        let root = tempfile::tempdir().unwrap();
        let (memory, cpu) = (root.path().join("memory"), root.path().join("cpu"));
        for (d, f) in [
            (&memory, "memory.limit_in_bytes"),
            (&cpu, "cpu.cfs_quota_us"),
        ] {
            std::fs::create_dir_all(d.join("berth")).unwrap();
            std::fs::write(d.join("berth").join(f), "").unwrap();
        }
        let cg = Cgroups::setup_v1(&memory, &cpu).unwrap();
        let dir = cg.create("c-1", Some(64), 256).unwrap();
        assert_eq!(dir, memory.join("berth/c-1"));
        let twin = cpu.join("berth/c-1");
        let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(
            read(&dir, "memory.limit_in_bytes"),
            (64 * 1024 * 1024).to_string()
        );
        assert_eq!(read(&twin, "cpu.cfs_quota_us"), "25000");
        assert_eq!(read(&twin, "cpu.cfs_period_us"), "100000");
        assert_eq!(
            join_prelude(Some(&dir)),
            format!(
                "echo $$ > '{}/cgroup.procs' || exit 125\necho $$ > '{}/cgroup.procs' || exit 125\n",
                dir.display(),
                twin.display()
            )
        );
        assert!(!oom_killed(&dir));
        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        assert!(oom_killed(&dir));
        for d in [&dir, &twin] {
            for f in std::fs::read_dir(d).unwrap() {
                std::fs::remove_file(f.unwrap().path()).unwrap();
            }
        }
        remove(&dir);
        assert!(!dir.exists() && !twin.exists());
    }

    #[test]
    fn without_the_controllers_there_is_no_cgroup() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "hugetlb\n").unwrap();
        let e = Cgroups::setup(root.path()).unwrap_err();
        assert!(e.contains("memory"), "{e}");
    }
}
