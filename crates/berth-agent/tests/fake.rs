//! The fake driver: the scripting hooks and the `Driver` contract it shares with the real ones.

use std::sync::Arc;
use std::time::Duration;

use berth_agent::{
    ContainerSpec, Driver, DriverError, FakeDriver, Health, HealthCheckSpec, NetworkMode, PortSpec,
    RunState, Stream, FAKE_STOP_EXIT_CODE,
};
use berth_model::TransportProtocol;
use futures::StreamExt;

fn web(task: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(task, "web", "nginx:latest");
    spec.port_mappings = vec![
        PortSpec {
            container_port: 80,
            host_port: 0,
            protocol: TransportProtocol::Tcp,
        },
        PortSpec {
            container_port: 443,
            host_port: 8443,
            protocol: TransportProtocol::Tcp,
        },
    ];
    spec
}

#[tokio::test]
async fn lifecycle_is_instant_and_scriptable() {
    let fake = FakeDriver::new();
    // The agent holds it as a trait object; the test keeps a handle to script it.
    let driver: Arc<dyn Driver> = Arc::new(fake.clone());
    assert_eq!(driver.name(), "fake");

    let a = driver.start(&web("t-1")).await.unwrap();
    let b = driver.start(&web("t-2")).await.unwrap();
    assert_ne!(a, b);
    assert_eq!(fake.start_count(), 2);
    let status = driver.inspect(&a).await.unwrap();
    assert_eq!(status.state, RunState::Running);
    assert_eq!(status.health, Health::Unknown);
    assert_eq!(status.bindings.len(), 2);
    assert!(status.bindings[0].host_port >= 32768);
    assert_eq!(status.bindings[1].host_port, 8443);
    // Dynamic ports differ between containers.
    let other = driver.inspect(&b).await.unwrap();
    assert_ne!(other.bindings[0].host_port, status.bindings[0].host_port);

    let waiter = {
        let driver = driver.clone();
        let a = a.clone();
        tokio::spawn(async move { driver.wait_exit(&a).await })
    };
    fake.exit(&a, 2).unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), 2);
    assert_eq!(
        driver.inspect(&a).await.unwrap().state,
        RunState::Exited { code: 2 }
    );

    driver.stop(&b, Duration::from_secs(30)).await.unwrap();
    assert_eq!(driver.wait_exit(&b).await.unwrap(), FAKE_STOP_EXIT_CODE);
    // Exit codes do not change once set.
    fake.exit(&b, 9).unwrap();
    assert_eq!(driver.wait_exit(&b).await.unwrap(), FAKE_STOP_EXIT_CODE);

    let owned = driver.list_owned().await.unwrap();
    assert_eq!(owned.len(), 2);
    assert_eq!(owned[0].task_id, "t-1");
    assert_eq!(owned[0].container_name, "web");
    driver.remove(&a).await.unwrap();
    driver.remove(&a).await.unwrap();
    assert_eq!(driver.list_owned().await.unwrap().len(), 1);
    assert!(matches!(
        driver.inspect(&a).await,
        Err(DriverError::NotFound(_))
    ));
}

#[tokio::test]
async fn failures_health_oom_stats_and_logs() {
    let fake = FakeDriver::new();
    fake.fail_image("missing:1");
    let mut spec = web("t-1");
    spec.image = "missing:1".into();
    assert!(matches!(
        fake.start(&spec).await,
        Err(DriverError::ImageNotFound(_))
    ));

    fake.set_start_health(Health::Healthy);
    let mut checked = web("t-2");
    checked.health_check = Some(HealthCheckSpec {
        command: vec!["CMD-SHELL".into(), "true".into()],
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        retries: 3,
        start_period: Duration::ZERO,
    });
    checked.network_mode = NetworkMode::Host;
    let id = fake.start(&checked).await.unwrap();
    let status = fake.inspect(&id).await.unwrap();
    assert_eq!(status.health, Health::Healthy);
    assert_eq!(status.bindings[0].host_port, 80);
    fake.set_health(&id, Health::Unhealthy).unwrap();
    assert_eq!(fake.inspect(&id).await.unwrap().health, Health::Unhealthy);

    fake.set_stats(&id, 5_000, 1 << 20).unwrap();
    let stats = fake.stats(&id).await.unwrap();
    assert_eq!((stats.cpu_total_ns, stats.memory_bytes), (5_000, 1 << 20));

    fake.push_log(&id, Stream::Stdout, "hello").unwrap();
    let mut follow = fake.logs(&id, true);
    assert_eq!(follow.next().await.unwrap().unwrap().line, "hello");
    fake.push_log(&id, Stream::Stderr, "later").unwrap();
    let later = follow.next().await.unwrap().unwrap();
    assert_eq!(
        (later.stream, later.line.as_str()),
        (Stream::Stderr, "later")
    );
    fake.oom_kill(&id).unwrap();
    assert!(follow.next().await.is_none(), "follow ends at exit");
    let history: Vec<_> = fake.logs(&id, false).collect().await;
    assert_eq!(history.len(), 2);

    let status = fake.inspect(&id).await.unwrap();
    assert_eq!(status.state, RunState::Exited { code: 137 });
    assert!(status.reason.unwrap().starts_with("OutOfMemoryError"));

    fake.set_unavailable(true);
    assert!(matches!(
        fake.list_owned().await,
        Err(DriverError::Unavailable(_))
    ));
    fake.set_unavailable(false);
    assert_eq!(fake.list_owned().await.unwrap().len(), 1);
}

#[tokio::test]
async fn many_hosts_in_one_process() {
    let hosts: Vec<FakeDriver> = (0..1000).map(|_| FakeDriver::new()).collect();
    for (i, host) in hosts.iter().enumerate() {
        host.start(&web(&format!("t-{i}"))).await.unwrap();
    }
    for host in &hosts {
        assert_eq!(host.list_owned().await.unwrap().len(), 1);
        assert_eq!(host.running().len(), 1);
    }
}
