//! The docker driver against the local Docker daemon and the locally built test image
//! `berth-test/busybox:latest` (made by `scripts/build-test-image.sh` when missing; nothing is
//! ever pulled).
//!
//! Without a reachable daemon the tests print a notice and pass, except under CI (`CI` set),
//! where they fail: CI machines have Docker. Every test labels its containers with its own
//! scope and removes them by that label when it ends, also when it fails.

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth_agent::{
    labels, ContainerId, ContainerSpec, DockerDriver, Driver, DriverError, Health, HealthCheckSpec,
    LogLine, NetworkMode, PortSpec, RunState, Stream, SCOPE_LABEL,
};
use berth_model::TransportProtocol;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IMAGE: &str = "berth-test/busybox:latest";
const SOON: Duration = Duration::from_secs(30);

/// Removes every container of a scope when dropped.
struct Cleanup {
    scope: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let listed = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label={SCOPE_LABEL}={}", self.scope))
            .output();
        let Ok(listed) = listed else { return };
        let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .stdout(std::process::Stdio::null())
                .status();
        }
    }
}

/// Builds the test image once per test binary.
fn ensure_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-test-image.sh");
        let status = Command::new("bash")
            .arg(&script)
            .status()
            .expect("run build-test-image.sh");
        assert!(status.success(), "{} failed", script.display());
    });
}

/// A driver scoped to this test, or `None` (with a notice) when Docker is not reachable.
async fn scoped_driver(test: &str) -> Option<(DockerDriver, Cleanup)> {
    let driver = match DockerDriver::connect().await {
        Ok(d) => d,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "Docker must be reachable in CI: {e}"
            );
            println!("skipping {test}: Docker is not reachable: {e}");
            return None;
        }
    };
    ensure_image();
    let scope = format!("berth-agent-test-{}-{test}", std::process::id());
    let cleanup = Cleanup {
        scope: scope.clone(),
    };
    // In case an earlier run with the same pid left something behind.
    drop(Cleanup {
        scope: scope.clone(),
    });
    Some((driver.with_scope(scope), cleanup))
}

fn spec(task: &str, script: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(task, "app", IMAGE);
    spec.task_arn = format!("arn:aws:ecs:us-east-1:000000000000:task/test/{task}");
    spec.cluster = "test".into();
    spec.command = Some(vec!["sh".into(), "-c".into(), script.into()]);
    spec
}

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
        tokio::time::sleep(Duration::from_millis(50)).await;
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

/// `GET /` on 127.0.0.1:port; the whole response.
async fn http_get(port: u16) -> Option<String> {
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    conn.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    Some(response)
}

#[tokio::test]
async fn negotiates_the_daemon_api_version() {
    let Some((driver, _cleanup)) = scoped_driver("version").await else {
        return;
    };
    assert_eq!(driver.name(), "docker");
    let (major, minor) = driver.api_version();
    assert_eq!(major, 1);
    assert!(minor >= 41, "API 1.{minor}");
    // Never newer than what the daemon says it speaks.
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .unwrap();
    let server = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let server_minor: usize = server
        .split_once('.')
        .and_then(|(_, m)| m.parse().ok())
        .unwrap();
    assert!(minor <= server_minor, "client 1.{minor} > server {server}");
}

#[tokio::test]
async fn httpd_answers_on_its_dynamic_host_port() {
    let Some((driver, _cleanup)) = scoped_driver("httpd").await else {
        return;
    };
    let mut web = spec("t-httpd", "");
    web.command = Some(
        ["httpd", "-f", "-p", "8080", "-h", "/www"]
            .map(String::from)
            .to_vec(),
    );
    web.port_mappings = vec![PortSpec {
        container_port: 8080,
        host_port: 0,
        protocol: TransportProtocol::Tcp,
    }];
    let id = driver.start(&web).await.unwrap();
    let status = driver.inspect(&id).await.unwrap();
    assert_eq!(status.state, RunState::Running);
    assert_eq!(status.bindings.len(), 1, "{:?}", status.bindings);
    let binding = &status.bindings[0];
    assert_eq!(binding.container_port, 8080);
    assert_eq!(binding.protocol, TransportProtocol::Tcp);
    assert_ne!(binding.host_port, 0);
    assert_eq!(binding.bind_ip, "0.0.0.0");
    let response = eventually("httpd to answer", || http_get(binding.host_port)).await;
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    assert!(response.contains("berth test page"), "{response}");
    driver.stop(&id, Duration::from_secs(5)).await.unwrap();
    driver.remove(&id).await.unwrap();
}

#[tokio::test]
async fn reports_the_exit_code() {
    let Some((driver, _cleanup)) = scoped_driver("exit").await else {
        return;
    };
    let id = driver.start(&spec("t-exit", "exit 3")).await.unwrap();
    assert_eq!(wait(&driver, &id).await, 3);
    let status = driver.inspect(&id).await.unwrap();
    assert_eq!(status.state, RunState::Exited { code: 3 });
    assert_eq!(status.reason, None);
    let (started, finished) = (status.started_at.unwrap(), status.finished_at.unwrap());
    // Docker takes the two times from different events; for a container that exits at once
    // FinishedAt can precede StartedAt by a few milliseconds (seen on Docker 20.10).
    assert!(
        started > 1.0e9 && finished >= started - 1.0,
        "{started} {finished}"
    );
    // Stopping an exited container is a no-op; removing twice is fine.
    driver.stop(&id, Duration::from_secs(1)).await.unwrap();
    driver.remove(&id).await.unwrap();
    driver.remove(&id).await.unwrap();
    assert!(matches!(
        driver.inspect(&id).await,
        Err(DriverError::NotFound(_))
    ));
    assert!(matches!(
        driver.stop(&id, Duration::from_secs(1)).await,
        Err(DriverError::NotFound(_))
    ));
}

#[tokio::test]
async fn stop_honours_the_timeout() {
    let Some((driver, _cleanup)) = scoped_driver("stop").await else {
        return;
    };
    // As PID 1 the shell ignores SIGTERM unless it traps it: only SIGKILL ends it.
    let stubborn = driver
        .start(&spec("t-stubborn", "while :; do sleep 1; done"))
        .await
        .unwrap();
    // This one exits cleanly on SIGTERM.
    let graceful = driver
        .start(&spec(
            "t-graceful",
            "trap 'exit 0' TERM; while :; do sleep 1; done",
        ))
        .await
        .unwrap();

    let started = Instant::now();
    driver
        .stop(&stubborn, Duration::from_secs(1))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1), "stopped after {took:?}");
    assert!(took < Duration::from_secs(15), "stopped after {took:?}");
    assert_eq!(wait(&driver, &stubborn).await, 137);

    driver
        .stop(&graceful, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(wait(&driver, &graceful).await, 0);
}

#[tokio::test]
async fn health_checks_become_healthy_or_unhealthy() {
    let Some((driver, _cleanup)) = scoped_driver("health").await else {
        return;
    };
    let check = |cmd: &[&str]| HealthCheckSpec {
        command: cmd.iter().map(|s| s.to_string()).collect(),
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        retries: 1,
        start_period: Duration::ZERO,
    };
    let mut good = spec("t-healthy", "sleep 300");
    good.health_check = Some(check(&["CMD-SHELL", "test -d /www"]));
    let mut bad = spec("t-unhealthy", "sleep 300");
    bad.health_check = Some(check(&["CMD", "false"]));
    let good = driver.start(&good).await.unwrap();
    let bad = driver.start(&bad).await.unwrap();
    for (id, want) in [(&good, Health::Healthy), (&bad, Health::Unhealthy)] {
        eventually("health verdict", || async {
            (driver.inspect(id).await.unwrap().health == want).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn resources_limits_and_labels_are_applied() {
    let Some((driver, _cleanup)) = scoped_driver("limits").await else {
        return;
    };
    let mut s = spec("t-limits", "sleep 300");
    s.memory_mib = Some(64);
    s.memory_reservation_mib = Some(32);
    s.cpu_shares = 256;
    s.environment = vec![("GREETING".into(), "hello there".into())];
    s.working_directory = Some("/www".into());
    s.labels.insert("team".into(), "blue".into());
    let id = driver.start(&s).await.unwrap();

    let docker = bollard::Docker::connect_with_unix_defaults().unwrap();
    let info = docker
        .inspect_container(
            &id.0,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    let host = info.host_config.unwrap();
    assert_eq!(host.memory, Some(64 * 1024 * 1024));
    assert_eq!(host.memory_reservation, Some(32 * 1024 * 1024));
    assert_eq!(host.cpu_shares, Some(256));
    let config = info.config.unwrap();
    assert!(config
        .env
        .unwrap_or_default()
        .contains(&"GREETING=hello there".to_string()));
    assert_eq!(config.working_dir.as_deref(), Some("/www"));
    let l = config.labels.unwrap();
    assert_eq!(l.get(labels::MANAGED).map(String::as_str), Some("true"));
    assert_eq!(l.get(labels::TASK_ID).map(String::as_str), Some("t-limits"));
    assert_eq!(l.get(labels::CLUSTER).map(String::as_str), Some("test"));
    assert_eq!(
        l.get(labels::CONTAINER_NAME).map(String::as_str),
        Some("app")
    );
    assert!(l
        .get(labels::TASK_ARN)
        .is_some_and(|a| a.ends_with("/t-limits")));
    assert_eq!(l.get("team").map(String::as_str), Some("blue"));
    driver.remove(&id).await.unwrap();
}

#[tokio::test]
async fn memory_hog_is_reported_as_oom_killed() {
    let Some((driver, _cleanup)) = scoped_driver("oom").await else {
        return;
    };
    let mut s = spec(
        "t-oom",
        "x=$(yes 0123456789abcdef | head -c 400000000); echo survived",
    );
    s.memory_mib = Some(16);
    let id = driver.start(&s).await.unwrap();
    let code = wait(&driver, &id).await;
    let status = driver.inspect(&id).await.unwrap();
    assert_eq!(code, 137, "{status:?}");
    assert_eq!(
        status.reason.as_deref(),
        Some("OutOfMemoryError: Container killed due to memory usage")
    );
}

#[tokio::test]
async fn a_second_driver_adopts_what_the_first_started() {
    let Some((driver, _cleanup)) = scoped_driver("adopt").await else {
        return;
    };
    let mut web = spec("t-adopt-1", "sleep 300");
    web.container_name = "web".into();
    let running = driver.start(&web).await.unwrap();
    let mut job = spec("t-adopt-2", "exit 4");
    job.container_name = "job".into();
    let exited = driver.start(&job).await.unwrap();
    assert_eq!(wait(&driver, &exited).await, 4);

    let (other, _other_cleanup) = scoped_driver("adopt-other").await.unwrap();
    let other_scope_sees = other.list_owned().await.unwrap();
    assert!(other_scope_sees
        .iter()
        .all(|o| o.id != running && o.id != exited));

    // Same scope, new instance: what a restarted agent does.
    let again = DockerDriver::connect()
        .await
        .unwrap()
        .with_scope(format!("berth-agent-test-{}-adopt", std::process::id()));
    let owned = again.list_owned().await.unwrap();
    assert_eq!(owned.len(), 2, "{owned:?}");
    let web_owned = owned.iter().find(|o| o.id == running).unwrap();
    assert_eq!(web_owned.task_id, "t-adopt-1");
    assert_eq!(web_owned.container_name, "web");
    assert_eq!(web_owned.status.state, RunState::Running);
    let job_owned = owned.iter().find(|o| o.id == exited).unwrap();
    assert_eq!(job_owned.task_id, "t-adopt-2");
    assert_eq!(job_owned.container_name, "job");
    assert_eq!(job_owned.status.state, RunState::Exited { code: 4 });

    // Unscoped, it is among all of berth's containers on this daemon.
    let unscoped = DockerDriver::connect().await.unwrap();
    assert!(unscoped
        .list_owned()
        .await
        .unwrap()
        .iter()
        .any(|o| o.id == running));

    again.stop(&running, Duration::from_secs(1)).await.unwrap();
    again.remove(&running).await.unwrap();
    again.remove(&exited).await.unwrap();
    assert!(again.list_owned().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_missing_image_fails_fast_without_pulling() {
    let Some((driver, _cleanup)) = scoped_driver("noimage").await else {
        return;
    };
    let mut s = spec("t-noimage", "true");
    s.image = "berth-test/does-not-exist:never".into();
    let started = Instant::now();
    let err = driver.start(&s).await.unwrap_err();
    assert!(matches!(err, DriverError::ImageNotFound(_)), "{err}");
    s.image = "Not A Valid Reference".into();
    let err = driver.start(&s).await.unwrap_err();
    assert!(matches!(err, DriverError::ImageNotFound(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(driver.list_owned().await.unwrap().is_empty());
}

#[tokio::test]
async fn logs_with_streams_timestamps_and_follow() {
    let Some((driver, _cleanup)) = scoped_driver("logs").await else {
        return;
    };
    let id = driver
        .start(&spec("t-logs", "echo out1; echo err1 >&2; echo out2"))
        .await
        .unwrap();
    assert_eq!(wait(&driver, &id).await, 0);
    let logs = all_logs(&driver, &id, false).await;
    assert_eq!(lines(&logs, Stream::Stdout), vec!["out1", "out2"]);
    assert_eq!(lines(&logs, Stream::Stderr), vec!["err1"]);
    assert!(logs.iter().all(|l| l.at > 1.0e9), "{logs:?}");

    let id = driver
        .start(&spec("t-follow", "echo first; sleep 1; echo second"))
        .await
        .unwrap();
    let logs = all_logs(&driver, &id, true).await;
    assert_eq!(lines(&logs, Stream::Stdout), vec!["first", "second"]);
    assert!(logs[1].at - logs[0].at >= 0.5, "{logs:?}");
}

#[tokio::test]
async fn stats_and_network_modes() {
    let Some((driver, _cleanup)) = scoped_driver("stats").await else {
        return;
    };
    let mut busy = spec("t-busy", "while :; do :; done");
    busy.network_mode = NetworkMode::Host;
    busy.port_mappings = vec![PortSpec {
        container_port: 9,
        host_port: 0,
        protocol: TransportProtocol::Udp,
    }];
    let id = driver.start(&busy).await.unwrap();
    let status = driver.inspect(&id).await.unwrap();
    // Host mode: the container binds the host's ports directly.
    assert_eq!(status.bindings.len(), 1);
    assert_eq!(status.bindings[0].host_port, 9);
    assert_eq!(status.bindings[0].protocol, TransportProtocol::Udp);
    let first = eventually("cpu time", || async {
        let s = driver.stats(&id).await.unwrap();
        (s.cpu_total_ns > 0 && s.memory_bytes > 0).then_some(s)
    })
    .await;
    eventually("more cpu time", || async {
        let s = driver.stats(&id).await.unwrap();
        (s.cpu_total_ns > first.cpu_total_ns).then_some(())
    })
    .await;

    let mut quiet = spec("t-none", "sleep 300");
    quiet.network_mode = NetworkMode::None;
    quiet.port_mappings = busy.port_mappings.clone();
    let quiet = driver.start(&quiet).await.unwrap();
    assert!(driver.inspect(&quiet).await.unwrap().bindings.is_empty());
    driver.remove(&id).await.unwrap();
    driver.remove(&quiet).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_daemon_is_unavailable() {
    let err = DockerDriver::connect_with_socket("/nonexistent/berth/docker.sock")
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Unavailable(_)), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let not_a_daemon = dir.path().join("docker.sock");
    let listener = std::os::unix::net::UnixListener::bind(&not_a_daemon).unwrap();
    drop(listener);
    let err = DockerDriver::connect_with_socket(&not_a_daemon.to_string_lossy())
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Unavailable(_)), "{err}");
}
