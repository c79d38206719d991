//! The process driver against real processes: lifecycle, exit codes, stop escalation, logs,
//! environment, stats, health checks and adoption by a second driver on the same state dir.

use std::future::Future;
use std::time::{Duration, Instant};

use berth_agent::{
    ContainerId, ContainerSpec, Driver, DriverError, Health, HealthCheckSpec, LogLine, PortSpec,
    ProcessDriver, RunState, Stream,
};
use berth_model::TransportProtocol;
use futures::StreamExt;

/// Upper bound for anything that should happen "soon".
const SOON: Duration = Duration::from_secs(15);

fn shell(task: &str, script: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(task, "app", "ignored-image");
    spec.task_arn = format!("arn:aws:ecs:us-east-1:000000000000:task/test/{task}");
    spec.cluster = "test".into();
    spec.entry_point = Some(vec!["sh".into(), "-c".into()]);
    spec.command = Some(vec![script.into()]);
    spec
}

fn health(command: &[&str], retries: u32) -> HealthCheckSpec {
    HealthCheckSpec {
        command: command.iter().map(|s| s.to_string()).collect(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        retries,
        start_period: Duration::ZERO,
    }
}

/// Polls `check` until it returns `Some`, failing the test after `SOON`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + SOON;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait(driver: &dyn Driver, id: &ContainerId) -> i64 {
    tokio::time::timeout(SOON, driver.wait_exit(id))
        .await
        .expect("container did not exit in time")
        .expect("wait_exit failed")
}

async fn all_logs(driver: &dyn Driver, id: &ContainerId, follow: bool) -> Vec<LogLine> {
    tokio::time::timeout(SOON, driver.logs(id, follow).collect::<Vec<_>>())
        .await
        .expect("log stream did not end")
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .expect("log stream failed")
}

fn lines(logs: &[LogLine], stream: Stream) -> Vec<String> {
    logs.iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.line.clone())
        .collect()
}

fn new_driver() -> (tempfile::TempDir, ProcessDriver) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let driver = ProcessDriver::new(dir.path().to_path_buf()).expect("process driver");
    (dir, driver)
}

#[tokio::test]
async fn runs_and_reports_the_exit_code() {
    let (_dir, driver) = new_driver();
    assert_eq!(driver.name(), "process");
    let mut spec = shell("t-exit", "sleep 0.2; exit 3");
    spec.port_mappings = vec![PortSpec {
        container_port: 8080,
        host_port: 18080,
        protocol: TransportProtocol::Tcp,
    }];
    let id = driver.start(&spec).await.unwrap();
    let status = driver.inspect(&id).await.unwrap();
    assert_eq!(status.state, RunState::Running);
    assert!(status.started_at.is_some());
    assert_eq!(status.finished_at, None);
    // Processes bind their ports directly: a fixed host port is reported as given (and the
    // process is told it in $PORT; dynamic ones are covered by the driver's unit tests).
    assert_eq!(status.bindings.len(), 1);
    assert_eq!(status.bindings[0].host_port, 18080);

    assert_eq!(wait(&driver, &id).await, 3);
    let status = driver.inspect(&id).await.unwrap();
    assert_eq!(status.state, RunState::Exited { code: 3 });
    let (started, finished) = (status.started_at.unwrap(), status.finished_at.unwrap());
    assert!(finished >= started - 1.0, "{started} {finished}");
    // Stopping an exited container is a no-op.
    driver.stop(&id, Duration::from_secs(1)).await.unwrap();
    assert_eq!(wait(&driver, &id).await, 3);
}

#[tokio::test]
async fn stop_sends_sigterm_to_the_group() {
    let (_dir, driver) = new_driver();
    // The sleep is a grandchild in the same process group: it must die too.
    let id = driver.start(&shell("t-term", "sleep 300")).await.unwrap();
    let started = Instant::now();
    driver.stop(&id, Duration::from_secs(10)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(wait(&driver, &id).await, 143);
    let status = driver.inspect(&id).await.unwrap();
    assert_eq!(status.state, RunState::Exited { code: 143 });
    assert_eq!(status.reason, None);
}

#[tokio::test]
async fn a_graceful_term_handler_keeps_its_exit_code() {
    let (_dir, driver) = new_driver();
    let id = driver
        .start(&shell(
            "t-graceful",
            "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
        ))
        .await
        .unwrap();
    eventually("ready", || async {
        let logs = all_logs(&driver, &id, false).await;
        lines(&logs, Stream::Stdout)
            .contains(&"ready".to_string())
            .then_some(())
    })
    .await;
    driver.stop(&id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(wait(&driver, &id).await, 0);
    let logs = all_logs(&driver, &id, false).await;
    assert_eq!(lines(&logs, Stream::Stdout), vec!["ready", "bye"]);
}

#[tokio::test]
async fn stop_escalates_to_sigkill_after_the_timeout() {
    let (_dir, driver) = new_driver();
    let id = driver
        .start(&shell(
            "t-kill",
            "trap '' TERM; echo ready; while :; do sleep 0.05; done",
        ))
        .await
        .unwrap();
    eventually("ready", || async {
        let logs = all_logs(&driver, &id, false).await;
        (!logs.is_empty()).then_some(())
    })
    .await;
    let started = Instant::now();
    driver.stop(&id, Duration::from_millis(500)).await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500), "stopped after {took:?}");
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    assert_eq!(wait(&driver, &id).await, 137);
    let status = driver.inspect(&id).await.unwrap();
    assert_eq!(status.state, RunState::Exited { code: 137 });
    assert!(
        status.reason.as_deref().unwrap_or("").contains("SIGKILL"),
        "{:?}",
        status.reason
    );
}

#[tokio::test]
async fn logs_history_and_follow() {
    let (_dir, driver) = new_driver();
    let id = driver
        .start(&shell(
            "t-logs",
            "echo out1; echo err1 >&2; echo out2; printf 'no newline'",
        ))
        .await
        .unwrap();
    assert_eq!(wait(&driver, &id).await, 0);
    let logs = all_logs(&driver, &id, false).await;
    assert_eq!(
        lines(&logs, Stream::Stdout),
        vec!["out1", "out2", "no newline"]
    );
    assert_eq!(lines(&logs, Stream::Stderr), vec!["err1"]);
    assert!(logs.iter().all(|l| l.at > 1.0e9));

    // Following: new lines arrive while it runs and the stream ends when it exits.
    let id = driver
        .start(&shell(
            "t-follow",
            "for i in 1 2 3; do echo line$i; sleep 0.2; done; echo done >&2",
        ))
        .await
        .unwrap();
    let logs = all_logs(&driver, &id, true).await;
    assert_eq!(
        lines(&logs, Stream::Stdout),
        vec!["line1", "line2", "line3"]
    );
    assert_eq!(lines(&logs, Stream::Stderr), vec!["done"]);
}

#[tokio::test]
async fn environment_and_working_directory() {
    let (_dir, driver) = new_driver();
    let work = tempfile::tempdir().unwrap();
    let mut spec = shell(
        "t-env",
        "echo \"$FOO|$BAR|$(pwd)\"; echo \"path=${PATH:+set}\"",
    );
    spec.environment = vec![
        ("FOO".into(), "one".into()),
        ("BAR".into(), "two words".into()),
        ("FOO".into(), "overridden".into()),
    ];
    spec.working_directory = Some(work.path().to_string_lossy().into_owned());
    let id = driver.start(&spec).await.unwrap();
    assert_eq!(wait(&driver, &id).await, 0);
    let logs = all_logs(&driver, &id, false).await;
    let expected = format!(
        "overridden|two words|{}",
        work.path().canonicalize().unwrap().display()
    );
    assert_eq!(
        lines(&logs, Stream::Stdout),
        vec![expected, "path=set".into()]
    );
}

#[tokio::test]
async fn start_rejects_what_it_cannot_run() {
    let (_dir, driver) = new_driver();
    let spec = ContainerSpec::new("t-bad", "app", "some/image");
    assert!(matches!(
        driver.start(&spec).await,
        Err(DriverError::InvalidSpec(_))
    ));
    let mut spec = ContainerSpec::new("t-bad", "app", "some/image");
    spec.command = Some(vec!["no-such-program-berth".into()]);
    let err = driver.start(&spec).await.unwrap_err();
    assert!(
        err.to_string().contains("executable file not found"),
        "{err}"
    );
    let mut spec = shell("t-bad", "true");
    spec.working_directory = Some("/no/such/dir/berth".into());
    assert!(matches!(
        driver.start(&spec).await,
        Err(DriverError::InvalidSpec(_))
    ));
    // Nothing was left behind.
    assert!(driver.list_owned().await.unwrap().is_empty());
    let unknown = ContainerId("nope".into());
    assert!(matches!(
        driver.inspect(&unknown).await,
        Err(DriverError::NotFound(_))
    ));
    assert!(matches!(
        driver.stop(&unknown, Duration::from_secs(1)).await,
        Err(DriverError::NotFound(_))
    ));
    driver.remove(&unknown).await.unwrap();
}

#[tokio::test]
async fn stats_from_proc() {
    let (_dir, driver) = new_driver();
    let id = driver
        .start(&shell("t-stats", "while :; do :; done"))
        .await
        .unwrap();
    let stats = eventually("cpu time", || async {
        let s = driver.stats(&id).await.unwrap();
        (s.cpu_total_ns > 0 && s.memory_bytes > 0).then_some(s)
    })
    .await;
    assert!(stats.at > 1.0e9);
    let later = eventually("more cpu time", || async {
        let s = driver.stats(&id).await.unwrap();
        (s.cpu_total_ns > stats.cpu_total_ns).then_some(s)
    })
    .await;
    assert!(later.at >= stats.at);
    driver.remove(&id).await.unwrap();
}

#[tokio::test]
async fn health_checks_decide_healthy_and_unhealthy() {
    let (_dir, driver) = new_driver();
    let mut good = shell("t-healthy", "touch ready; sleep 300");
    good.health_check = Some(health(&["CMD-SHELL", "test -f ready"], 3));
    let good = driver.start(&good).await.unwrap();

    let mut bad = shell("t-unhealthy", "sleep 300");
    bad.health_check = Some(health(&["CMD", "false"], 2));
    let bad = driver.start(&bad).await.unwrap();

    // A probe that outlives its timeout fails.
    let mut slow = shell("t-slow", "sleep 300");
    let mut check = health(&["CMD-SHELL", "sleep 30"], 1);
    check.timeout = Duration::from_millis(100);
    slow.health_check = Some(check);
    let slow = driver.start(&slow).await.unwrap();

    let plain = driver
        .start(&shell("t-nocheck", "sleep 300"))
        .await
        .unwrap();

    for (id, want) in [
        (&good, Health::Healthy),
        (&bad, Health::Unhealthy),
        (&slow, Health::Unhealthy),
    ] {
        eventually("health verdict", || async {
            (driver.inspect(id).await.unwrap().health == want).then_some(())
        })
        .await;
    }
    assert_eq!(
        driver.inspect(&plain).await.unwrap().health,
        Health::Unknown
    );
    for id in [good, bad, slow, plain] {
        driver.remove(&id).await.unwrap();
    }
    assert!(driver.list_owned().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_new_driver_adopts_running_and_exited_containers() {
    let dir = tempfile::tempdir().unwrap();
    let first = ProcessDriver::new(dir.path().to_path_buf()).unwrap();
    let mut web = shell("t-adopt-1", "echo started; sleep 300");
    web.container_name = "web".into();
    web.labels.insert("team".into(), "blue".into());
    web.health_check = Some(health(&["CMD-SHELL", "true"], 3));
    let running = first.start(&web).await.unwrap();
    let mut job = shell("t-adopt-2", "exit 7");
    job.container_name = "job".into();
    let exited = first.start(&job).await.unwrap();
    let stubborn = first
        .start(&shell(
            "t-adopt-3",
            "trap '' TERM; while :; do sleep 0.05; done",
        ))
        .await
        .unwrap();
    assert_eq!(wait(&first, &exited).await, 7);
    drop(first);

    // The agent restarts: a new driver on the same state directory.
    let second = ProcessDriver::new(dir.path().to_path_buf()).unwrap();
    let owned = second.list_owned().await.unwrap();
    assert_eq!(owned.len(), 3, "{owned:?}");
    let find = |id: &ContainerId| owned.iter().find(|o| &o.id == id).unwrap().clone();
    let web_owned = find(&running);
    assert_eq!(web_owned.task_id, "t-adopt-1");
    assert_eq!(web_owned.container_name, "web");
    assert_eq!(web_owned.status.state, RunState::Running);
    let job_owned = find(&exited);
    assert_eq!(job_owned.task_id, "t-adopt-2");
    assert_eq!(job_owned.status.state, RunState::Exited { code: 7 });
    assert_eq!(find(&stubborn).status.state, RunState::Running);

    // Health checking resumes under the new driver.
    eventually("adopted container healthy", || async {
        (second.inspect(&running).await.unwrap().health == Health::Healthy).then_some(())
    })
    .await;
    let logs = all_logs(&second, &running, false).await;
    assert_eq!(lines(&logs, Stream::Stdout), vec!["started"]);

    // It can stop what it adopted and sees the exit codes.
    second
        .stop(&running, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(wait(&second, &running).await, 143);
    second
        .stop(&stubborn, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(wait(&second, &stubborn).await, 137);

    // A third instance sees the same codes; removal is final.
    let third = ProcessDriver::new(dir.path().to_path_buf()).unwrap();
    assert_eq!(
        third.inspect(&running).await.unwrap().state,
        RunState::Exited { code: 143 }
    );
    for id in [&running, &exited, &stubborn] {
        third.remove(id).await.unwrap();
    }
    assert!(third.list_owned().await.unwrap().is_empty());
    assert!(second.list_owned().await.unwrap().is_empty());
}

#[tokio::test]
async fn remove_kills_a_running_container() {
    let (_dir, driver) = new_driver();
    let id = driver.start(&shell("t-rm", "sleep 300")).await.unwrap();
    assert_eq!(driver.list_owned().await.unwrap().len(), 1);
    driver.remove(&id).await.unwrap();
    assert!(driver.list_owned().await.unwrap().is_empty());
    assert!(matches!(
        driver.inspect(&id).await,
        Err(DriverError::NotFound(_))
    ));
    driver.remove(&id).await.unwrap();
}

/// Set in the environment of the helper below: the state directory to start containers in.
const HELPER_ENV: &str = "BERTH_AGENT_TEST_HELPER_STATE_DIR";

/// Not a test on its own: `adopts_after_the_starting_agent_process_exits` runs this test
/// binary again with [`HELPER_ENV`] set, so the containers are started by another process
/// that then exits, as an agent would when it restarts. Their supervisors are reparented and
/// no longer children of anything the driver knows.
#[test]
fn helper_starts_containers_then_exits() {
    let Some(state_dir) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let driver = ProcessDriver::new(state_dir.clone().into()).unwrap();
        let plain = driver.start(&shell("h-1", "sleep 300")).await.unwrap();
        let later = driver
            .start(&shell("h-2", "sleep 0.5; echo finishing; exit 9"))
            .await
            .unwrap();
        let stubborn = driver
            .start(&shell("h-3", "trap '' TERM; while :; do sleep 0.05; done"))
            .await
            .unwrap();
        let ids = format!("{plain}\n{later}\n{stubborn}\n");
        std::fs::write(std::path::Path::new(&state_dir).join("ids"), ids).unwrap();
    });
}

#[tokio::test]
async fn adopts_after_the_starting_agent_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_starts_containers_then_exits", "--quiet"])
        .env(HELPER_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let ids = std::fs::read_to_string(dir.path().join("ids")).unwrap();
    let ids: Vec<ContainerId> = ids.lines().map(|l| ContainerId(l.to_string())).collect();
    let [plain, later, stubborn] = <[ContainerId; 3]>::try_from(ids).unwrap();

    let driver = ProcessDriver::new(dir.path().to_path_buf()).unwrap();
    let owned = driver.list_owned().await.unwrap();
    assert_eq!(owned.len(), 3, "{owned:?}");
    assert!(owned
        .iter()
        .all(|o| o.status.state == RunState::Running || o.id == later));

    // An exit that happens after the restart is seen, with its code, by polling.
    assert_eq!(wait(&driver, &later).await, 9);
    let logs = all_logs(&driver, &later, false).await;
    assert_eq!(lines(&logs, Stream::Stdout), vec!["finishing"]);

    driver.stop(&plain, Duration::from_secs(10)).await.unwrap();
    assert_eq!(wait(&driver, &plain).await, 143);
    // The supervisor dies with the SIGKILL and cannot record a code: the driver knows it
    // killed it.
    driver
        .stop(&stubborn, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(wait(&driver, &stubborn).await, 137);
    for id in [&plain, &later, &stubborn] {
        driver.remove(id).await.unwrap();
    }
}
