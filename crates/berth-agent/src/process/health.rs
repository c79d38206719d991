//! Health checks of the process driver (the rules are in the driver's module docs): one
//! probing task per container, started when a driver instance first sees the container, and
//! the state it keeps. Split from the driver because it runs beside the containers' lifecycle,
//! reading the driver's state only through a weak reference.

use std::process::Stdio;
use std::sync::{Arc, Weak};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::task::JoinHandle;

use super::record::Record;
use super::{lock, Inner};
use crate::spec::{now_epoch, Health, HealthCheckSpec, HealthCommand};

/// Docker's default health-check interval and timeout, used for zero durations.
pub(super) const DEFAULT_HEALTH_PERIOD: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(super) struct HealthEntry {
    pub(super) health: Health,
    pub(super) failing_streak: u32,
    pub(super) task: JoinHandle<()>,
}

impl Inner {
    /// Starts probing the container's health check unless this instance already does.
    pub(super) fn ensure_health_monitor(self: &Arc<Self>, record: &Record) {
        let Some(check) = record.spec.health_check.clone() else {
            return;
        };
        let command = HealthCommand::parse(&check.command);
        if command == HealthCommand::Disabled {
            return;
        }
        let mut health = lock(&self.health);
        if health
            .get(&record.id)
            .is_some_and(|h| !h.task.is_finished())
        {
            return;
        }
        let previous = health.remove(&record.id);
        let task = tokio::spawn(health_loop(
            Arc::downgrade(self),
            record.clone(),
            check,
            command,
        ));
        health.insert(
            record.id.clone(),
            HealthEntry {
                health: previous.as_ref().map_or(Health::Unknown, |p| p.health),
                failing_streak: previous.map_or(0, |p| p.failing_streak),
                task,
            },
        );
    }
}

/// Probes a container's health until it exits or the driver is dropped.
pub(super) async fn health_loop(
    inner: Weak<Inner>,
    record: Record,
    check: HealthCheckSpec,
    command: HealthCommand,
) {
    let or_default = |d: Duration| {
        if d.is_zero() {
            DEFAULT_HEALTH_PERIOD
        } else {
            d
        }
    };
    let interval = or_default(check.interval);
    let timeout = or_default(check.timeout);
    let retries = check.retries.max(1);
    let dir = match inner.upgrade() {
        Some(i) => match i.dir(&record.id) {
            Ok(d) => d,
            Err(_) => return,
        },
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(driver) = inner.upgrade() else {
            return;
        };
        if driver.exit_of(&dir, &record).is_some() {
            return;
        }
        let ok = probe(&command, &record, timeout).await;
        let in_start_period = now_epoch() - record.started_at < check.start_period.as_secs_f64();
        let mut health = lock(&driver.health);
        let Some(entry) = health.get_mut(&record.id) else {
            return;
        };
        if ok {
            entry.health = Health::Healthy;
            entry.failing_streak = 0;
        } else if !in_start_period {
            entry.failing_streak += 1;
            if entry.failing_streak >= retries {
                entry.health = Health::Unhealthy;
            }
        }
    }
}

/// A command of `argv` (never empty: the probe's own argv is checked at parse).
fn command_of<'a>(mut argv: impl Iterator<Item = &'a String>) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(argv.next().map_or("/bin/false", |a| a.as_str()));
    c.args(argv);
    c
}

/// Runs one health probe; whether it succeeded within the timeout.
pub(super) async fn probe(command: &HealthCommand, record: &Record, timeout: Duration) -> bool {
    let mut cmd = match command {
        // As the task's user: through the same `setpriv` prefix as its command.
        HealthCommand::Shell(line) => {
            let argv = ["/bin/sh".to_string(), "-c".into(), line.clone()];
            command_of(record.exec_prefix.iter().chain(&argv))
        }
        HealthCommand::Exec(argv) => command_of(record.exec_prefix.iter().chain(argv)),
        HealthCommand::Disabled => return true,
    };
    cmd.env_clear()
        .envs(record.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&record.working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let (Some((uid, gid)), true) = (record.user, record.exec_prefix.is_empty()) {
        cmd.uid(uid).gid(gid);
    }
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    let pid = child.id().and_then(|p| i32::try_from(p).ok());
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status.success(),
        Ok(Err(_)) => false,
        Err(_) => {
            if let Some(pid) = pid {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.wait().await;
            false
        }
    }
}
