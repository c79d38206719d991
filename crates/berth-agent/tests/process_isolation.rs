//! The process driver's isolation against real processes: tasks run as an unprivileged user
//! (when the test runs as root), inside a cgroup v2 with the task's memory as `memory.max`
//! (where cgroup v2 with the memory controller is usable; skipped otherwise), and a task that
//! outgrows its memory is OOM-killed and reported with ECS's reason.

use std::time::Duration;

use berth_agent::{ContainerId, ContainerSpec, Driver, LogLine, ProcessDriver, RunState, Stream};
use futures::StreamExt;

const SOON: Duration = Duration::from_secs(20);

fn shell(task: &str, script: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(task, "app", "ignored-image");
    spec.task_arn = format!("arn:aws:ecs:us-east-1:000000000000:task/test/{task}");
    spec.cluster = "test".into();
    spec.entry_point = Some(vec!["sh".into(), "-c".into()]);
    spec.command = Some(vec![script.into()]);
    spec
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

async fn wait(driver: &dyn Driver, id: &ContainerId) -> i64 {
    tokio::time::timeout(SOON, driver.wait_exit(id))
        .await
        .expect("container did not exit in time")
        .expect("wait_exit failed")
}

async fn stdout(driver: &dyn Driver, id: &ContainerId) -> Vec<String> {
    let logs: Vec<LogLine> = tokio::time::timeout(SOON, driver.logs(id, false).collect::<Vec<_>>())
        .await
        .expect("log stream did not end")
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("logs");
    logs.into_iter()
        .filter(|l| l.stream == Stream::Stdout)
        .map(|l| l.line)
        .collect()
}

/// The task's cgroup directory, from `/proc/PID/cgroup` of a process that prints its own.
fn cgroup_dir(line: &str) -> Option<std::path::PathBuf> {
    let rel = line.strip_prefix("0::")?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let mount = mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup2")).then(|| f[1].to_owned())
    })?;
    Some(std::path::Path::new(&mount).join(rel.trim_start_matches('/')))
}

#[tokio::test]
async fn a_task_runs_as_nobody_and_can_write_its_own_directory() {
    if !is_root() {
        eprintln!("skipped: the agent is not root, so tasks run as its own user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let driver = ProcessDriver::new(dir.path().to_path_buf()).unwrap();
    let id = driver
        .start(&shell("t-user", "id -u; id -G; echo hi > mine && cat mine"))
        .await
        .unwrap();
    assert_eq!(wait(&driver, &id).await, 0);
    let out = stdout(&driver, &id).await;
    assert_eq!(
        out,
        ["65534", "65534", "hi"],
        "uid, groups, a file in its cwd"
    );
    // The agent's own files in the state dir stay out of the task's reach.
    let id2 = driver
        .start(&shell("t-peek", "ls .. 2>/dev/null && echo LEAK; exit 0"))
        .await
        .unwrap();
    assert_eq!(wait(&driver, &id2).await, 0);
    assert!(!stdout(&driver, &id2).await.contains(&"LEAK".to_string()));
    for id in [id, id2] {
        driver.remove(&id).await.unwrap();
    }

    // `root` opts out.
    let dir = tempfile::tempdir().unwrap();
    let driver = ProcessDriver::with_task_user(dir.path().to_path_buf(), "root").unwrap();
    let id = driver.start(&shell("t-root", "id -u")).await.unwrap();
    assert_eq!(wait(&driver, &id).await, 0);
    assert_eq!(stdout(&driver, &id).await, ["0"]);
    driver.remove(&id).await.unwrap();
}

#[tokio::test]
async fn memory_is_enforced_by_the_task_cgroup() {
    let dir = tempfile::tempdir().unwrap();
    let driver = ProcessDriver::new(dir.path().to_path_buf()).unwrap();
    let mut spec = shell("t-mem", "cat /proc/self/cgroup");
    spec.memory_mib = Some(48);
    let id = driver.start(&spec).await.unwrap();
    assert_eq!(wait(&driver, &id).await, 0);
    let out = stdout(&driver, &id).await;
    let cg = out.iter().find_map(|l| cgroup_dir(l));
    let Some(cg) = cg.filter(|d| d.join("memory.max").is_file() && d.ends_with(&id.0)) else {
        eprintln!("skipped: no cgroup v2 memory controller for tasks here ({out:?})");
        driver.remove(&id).await.unwrap();
        return;
    };
    let max = std::fs::read_to_string(cg.join("memory.max")).unwrap();
    assert_eq!(max.trim(), (48u64 * 1024 * 1024).to_string());
    driver.remove(&id).await.unwrap();
    assert!(!cg.exists(), "the task's cgroup goes with it");

    // Allocating beyond it: the kernel kills the command, reported as ECS does.
    // `tail` holds the newline-free stream in memory until the kernel kills it.
    let mut spec = shell("t-oom", "head -c 268435456 /dev/zero | tail > /dev/null");
    spec.memory_mib = Some(32);
    let id = driver.start(&spec).await.unwrap();
    let code = wait(&driver, &id).await;
    let status = driver.inspect(&id).await.unwrap();
    assert_eq!(status.state, RunState::Exited { code });
    assert_eq!(code, 137);
    assert_eq!(
        status.reason.as_deref(),
        Some("OutOfMemoryError: Container killed due to memory usage")
    );
    driver.remove(&id).await.unwrap();
}
