//! What the process driver can apply of a container's spec: ulimits through the shell's
//! `ulimit`, and a refusal for everything only a container runtime can do.

use crate::error::DriverError;
use crate::spec::ContainerSpec;

/// The process driver honours a spec's command, entry point, environment (with environment
/// files), user, working directory, ports through `$PORT`, stop timeout and health check;
/// what only a container runtime can do is refused here (the scheduler keeps such tasks off
/// process-driver hosts through `requiresAttributes`; this is the second line).
pub(super) fn refuse_docker_only(spec: &ContainerSpec) -> Result<(), DriverError> {
    if let Some(u) = spec.ulimits.iter().find(|u| ulimit_flag(&u.name).is_none()) {
        return Err(DriverError::InvalidSpec(format!(
            "the process driver cannot apply the {} ulimit",
            u.name
        )));
    }
    if spec.docker != crate::spec::DockerOptions::default() {
        return Err(DriverError::InvalidSpec(
            "the process driver cannot apply mounts, privileges, namespaces, devices or other Docker-only settings".into(),
        ));
    }
    Ok(())
}

/// The POSIX shell's `ulimit` flag for an ECS ulimit name (see
/// `berth_model::PORTABLE_ULIMITS`).
pub(super) fn ulimit_flag(name: &str) -> Option<char> {
    Some(match name {
        "core" => 'c',
        "cpu" => 't',
        "data" => 'd',
        "fsize" => 'f',
        "memlock" => 'l',
        "nofile" => 'n',
        "rss" => 'm',
        "stack" => 's',
        _ => return None,
    })
}

/// Shell lines run before the supervisor that set the spec's ulimits on it, and so on the
/// command it runs (the workspace forbids the `unsafe` that `setrlimit` in `pre_exec` needs;
/// the shell's `ulimit` is that same call). The soft limit is lowered first so a lower hard
/// limit is never below it; a limit that cannot be set ends the supervisor with 125 (written
/// as the exit code) before the command runs.
pub(super) fn ulimit_prelude(spec: &ContainerSpec) -> String {
    let value = |v: i64| {
        if v < 0 {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    spec.ulimits
        .iter()
        .filter_map(|u| {
            let f = ulimit_flag(&u.name)?;
            let (soft, hard) = (value(u.soft), value(u.hard));
            Some(format!(
                "ulimit -S -{f} {soft} 2>/dev/null; {{ ulimit -H -{f} {hard} && ulimit -S -{f} {soft}; }} || {{ echo 125 > \"$1\"; exit 125; }}\n"
            ))
        })
        .collect()
}
