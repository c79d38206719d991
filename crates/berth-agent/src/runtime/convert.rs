//! From the control plane's task (a task definition with overrides applied) to what a driver
//! runs: one `ContainerSpec` per container definition.

use std::time::Duration;

use berth_model::agent::AgentTask;
use berth_model::ContainerDefinition;

use crate::spec::{ContainerSpec, HealthCheckSpec, NetworkMode, PortSpec};

fn secs(v: Option<i64>, default: u64) -> Duration {
    Duration::from_secs(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(default))
}

pub(crate) fn network_mode(mode: Option<&str>) -> NetworkMode {
    match mode {
        Some("host") => NetworkMode::Host,
        Some("none") => NetworkMode::None,
        Some("awsvpc") => NetworkMode::Awsvpc,
        _ => NetworkMode::Bridge,
    }
}

/// The spec of one container of `task`.
pub(crate) fn container_spec(
    task: &AgentTask,
    cluster: &str,
    c: &ContainerDefinition,
) -> ContainerSpec {
    let mut spec = ContainerSpec::new(&task.task_id, &c.name, &c.image);
    spec.task_arn = task.task_arn.clone();
    spec.cluster = cluster.to_owned();
    spec.entry_point = c.entry_point.clone();
    spec.command = c.command.clone();
    spec.environment = c
        .environment
        .iter()
        .map(|kv| (kv.name.clone(), kv.value.clone()))
        .collect();
    // Secrets come after the environment, so a secret wins over a variable of the same
    // name, as the ECS agent merges them.
    if let Some(r) = task
        .secrets
        .as_ref()
        .and_then(|s| s.containers.get(&c.name))
    {
        spec.environment.extend(
            r.environment
                .iter()
                .map(|kv| (kv.name.clone(), kv.value.clone())),
        );
        spec.registry_auth = r.registry_auth.clone();
        spec.log_secret_options = r.log_options.clone();
    }
    spec.port_mappings = c
        .port_mappings
        .iter()
        .filter_map(|p| {
            let container_port = u16::try_from(p.container_port?).ok()?;
            Some(PortSpec {
                container_port,
                host_port: p.host_port.and_then(|h| u16::try_from(h).ok()).unwrap_or(0),
                protocol: p.protocol(),
            })
        })
        .collect();
    spec.cpu_shares = u64::try_from(c.cpu).unwrap_or(0);
    spec.memory_mib = c.memory.and_then(|m| u64::try_from(m).ok());
    spec.memory_reservation_mib = c.memory_reservation.and_then(|m| u64::try_from(m).ok());
    spec.health_check = c.health_check.as_ref().map(|h| HealthCheckSpec {
        command: h.command.clone(),
        interval: secs(h.interval, 30),
        timeout: secs(h.timeout, 5),
        retries: h.retries.and_then(|r| u32::try_from(r).ok()).unwrap_or(3),
        start_period: secs(h.start_period, 0),
    });
    spec.stop_timeout = secs(c.stop_timeout, 30);
    spec.network_mode = network_mode(task.network_mode.as_deref());
    spec.labels = c.docker_labels.clone().unwrap_or_default();
    spec.working_directory = c
        .extra
        .get("workingDirectory")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    spec.user = c
        .extra
        .get("user")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    spec.log_driver = c
        .log_configuration
        .as_ref()
        .filter(|l| l.log_driver != "awslogs")
        .map(|l| (l.log_driver.clone(), l.options.clone().unwrap_or_default()));
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::{DesiredStatus, TaskStatus};
    use serde_json::json;

    #[test]
    fn maps_the_fields_a_driver_needs() {
        let c: ContainerDefinition = serde_json::from_value(json!({
            "name": "web", "image": "img", "cpu": 256, "memory": 64, "command": ["httpd", "-f"],
            "environment": [{"name": "A", "value": "1"}],
            "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
            "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5, "retries": 2},
            "stopTimeout": 3, "workingDirectory": "/srv"
        }))
        .unwrap();
        let t = AgentTask {
            credentials: None,
            task_id: "t1".into(),
            task_arn: "arn".into(),
            family: "f".into(),
            revision: 1,
            desired_status: DesiredStatus::Running,
            last_status: TaskStatus::Provisioning,
            network_mode: Some("bridge".into()),
            containers: vec![c.clone()],
            volumes: Vec::new(),
            pid_mode: None,
            ipc_mode: None,
            secrets: None,
            network: None,
        };
        let s = container_spec(&t, "default", &c);
        assert_eq!(s.command, Some(vec!["httpd".into(), "-f".into()]));
        assert_eq!(s.environment, vec![("A".into(), "1".into())]);
        assert_eq!(s.port_mappings[0].container_port, 80);
        assert_eq!(s.cpu_shares, 256);
        assert_eq!(s.memory_mib, Some(64));
        let h = s.health_check.unwrap();
        assert_eq!((h.interval, h.retries), (Duration::from_secs(5), 2));
        assert_eq!(s.stop_timeout, Duration::from_secs(3));
        assert_eq!(s.working_directory.as_deref(), Some("/srv"));
    }

    #[test]
    fn resolved_secrets_join_the_environment_and_win() {
        use berth_model::secrets::{RegistryAuth, ResolvedContainer, ResolvedSecrets};
        use berth_model::KeyValuePair;
        let c: ContainerDefinition = serde_json::from_value(json!({
            "name": "app", "image": "img",
            "environment": [{"name": "A", "value": "plain"}, {"name": "B", "value": "b"}]
        }))
        .unwrap();
        let mut secrets = ResolvedSecrets::default();
        secrets.containers.insert(
            "app".into(),
            ResolvedContainer {
                environment: vec![KeyValuePair {
                    name: "A".into(),
                    value: "secret".into(),
                }],
                log_options: [("token".to_owned(), "t0k".to_owned())].into(),
                registry_auth: Some(RegistryAuth {
                    username: "u".into(),
                    password: "p".into(),
                }),
            },
        );
        let t = AgentTask {
            credentials: None,
            task_id: "t1".into(),
            task_arn: "arn".into(),
            family: "f".into(),
            revision: 1,
            desired_status: DesiredStatus::Running,
            last_status: TaskStatus::Provisioning,
            network_mode: None,
            containers: vec![c.clone()],
            secrets: Some(secrets),
            network: None,
            volumes: Vec::new(),
            pid_mode: None,
            ipc_mode: None,
        };
        let s = container_spec(&t, "default", &c);
        // Later entries win: the secret's A after the environment's.
        assert_eq!(s.environment.last(), Some(&("A".into(), "secret".into())));
        assert_eq!(s.log_secret_options["token"], "t0k");
        assert_eq!(s.registry_auth.unwrap().username, "u");
        let stored = serde_json::to_string(&container_spec(&t, "default", &c)).unwrap();
        assert!(!stored.contains("t0k"), "log secrets are never written");
    }
}
