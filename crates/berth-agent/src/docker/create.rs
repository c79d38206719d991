//! The Docker create request for a container spec: every ECS member the spec carries, mapped
//! to the Engine API's `Config` and `HostConfig` (all members used exist in API 1.41).

use std::collections::HashMap;
use std::time::Duration;

use berth_model::TransportProtocol;
use bollard::models::{
    ContainerCreateBody, DeviceMapping, HealthConfig, HostConfig, PortBinding, ResourcesUlimits,
};

use super::{timeout_secs, SCOPE_LABEL};
use crate::spec::{
    owned_labels, ContainerSpec, DockerOptions, HealthCommand, MountSource, NetworkMode,
};

/// Docker container name: `berth-{container}-{task id}`, limited to the characters Docker
/// accepts.
pub(super) fn container_name(spec: &ContainerSpec) -> String {
    let raw = format!("berth-{}-{}", spec.container_name, spec.task_id);
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn mib_to_bytes(mib: u64) -> i64 {
    i64::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX)
}

fn port_key(container_port: u16, protocol: TransportProtocol) -> String {
    format!("{container_port}/{}", protocol.as_str())
}

/// The create request for a spec.
pub(super) fn create_body(spec: &ContainerSpec, scope: Option<&str>) -> ContainerCreateBody {
    let mut container_labels: HashMap<String, String> = owned_labels(spec).into_iter().collect();
    if let Some(scope) = scope {
        container_labels.insert(SCOPE_LABEL.into(), scope.into());
    }
    let joined = match (spec.network_mode, &spec.docker.network_container) {
        (NetworkMode::Awsvpc, Some(c)) => Some(format!("container:{c}")),
        _ => None,
    };
    let network_mode = match spec.network_mode {
        _ if joined.is_some() => joined.as_deref().unwrap_or("bridge"),
        NetworkMode::Bridge | NetworkMode::Awsvpc => "bridge",
        NetworkMode::Host => "host",
        NetworkMode::None => "none",
    };
    // An awsvpc task's ports are on its own address: nothing is published on the host.
    let publishes =
        joined.is_none() && matches!(spec.network_mode, NetworkMode::Bridge | NetworkMode::Awsvpc);
    let exposed: Vec<String> = spec
        .port_mappings
        .iter()
        .map(|p| port_key(p.container_port, p.protocol))
        .collect();
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if publishes {
        for p in &spec.port_mappings {
            let host_port = if p.host_port == 0 {
                String::new()
            } else {
                p.host_port.to_string()
            };
            port_bindings
                .entry(port_key(p.container_port, p.protocol))
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(String::new()),
                    host_port: Some(host_port),
                });
        }
    }
    let healthcheck = spec.health_check.as_ref().map(|h| HealthConfig {
        test: Some(HealthCommand::parse(&h.command).docker_test()),
        interval: Some(duration_ns(h.interval)),
        timeout: Some(duration_ns(h.timeout)),
        retries: Some(i64::from(h.retries.max(1))),
        start_period: Some(duration_ns(h.start_period)),
        start_interval: None,
    });
    let mut host_config = HostConfig {
        network_mode: Some(network_mode.into()),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        cpu_shares: (spec.cpu_shares > 0)
            .then(|| i64::try_from(spec.cpu_shares.max(2)).unwrap_or(i64::MAX)),
        memory: spec.memory_mib.map(mib_to_bytes),
        memory_reservation: spec.memory_reservation_mib.map(mib_to_bytes),
        log_config: log_config(spec),
        ..Default::default()
    };
    apply_ulimits(spec, &mut host_config);
    apply_host_options(&spec.docker, spec.memory_mib, &mut host_config);
    let d = &spec.docker;
    ContainerCreateBody {
        // Docker refuses a hostname for a container in another's network namespace.
        hostname: d.hostname.clone().filter(|_| joined.is_none()),
        network_disabled: d.network_disabled.then_some(true),
        open_stdin: d.open_stdin.then_some(true),
        tty: d.tty.then_some(true),
        image: Some(spec.image.clone()),
        entrypoint: spec.entry_point.clone(),
        cmd: spec.command.clone(),
        env: Some(
            spec.environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        working_dir: spec.working_directory.clone(),
        user: spec.user.clone(),
        labels: Some(container_labels),
        // Docker refuses exposed ports in another container's network namespace.
        exposed_ports: (!exposed.is_empty() && joined.is_none()).then_some(exposed),
        healthcheck,
        stop_timeout: Some(i64::from(timeout_secs(spec.stop_timeout))),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// `logConfiguration` for drivers other than `awslogs`, passed through to Docker as it is
/// (`berth logs` then reads only what that driver lets `docker logs` read). Options taken
/// from secrets (`secretOptions`, resolved by the server) join the plain ones.
fn log_config(spec: &ContainerSpec) -> Option<bollard::models::HostConfigLogConfig> {
    let (driver, options) = spec.log_driver.as_ref()?;
    let config = options
        .iter()
        .chain(&spec.log_secret_options)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some(bollard::models::HostConfigLogConfig {
        typ: Some(driver.clone()),
        config: Some(config),
    })
}

fn apply_ulimits(spec: &ContainerSpec, host: &mut HostConfig) {
    if spec.ulimits.is_empty() {
        return;
    }
    host.ulimits = Some(
        spec.ulimits
            .iter()
            .map(|u| ResourcesUlimits {
                name: Some(u.name.clone()),
                soft: Some(u.soft),
                hard: Some(u.hard),
            })
            .collect(),
    );
}

fn some_vec(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// The `HostConfig` members of the Docker-only options.
fn apply_host_options(d: &DockerOptions, memory_mib: Option<u64>, host: &mut HostConfig) {
    let binds: Vec<String> = d
        .mounts
        .iter()
        .map(|m| {
            let src = match &m.source {
                MountSource::Bind(p) | MountSource::Volume(p) => p,
            };
            let ro = if m.read_only { ":ro" } else { "" };
            format!("{src}:{}{ro}", m.target)
        })
        .collect();
    host.binds = some_vec(&binds);
    host.volumes_from = some_vec(&d.volumes_from);
    host.links = some_vec(&d.links);
    host.privileged = d.privileged.then_some(true);
    host.readonly_rootfs = d.readonly_rootfs.then_some(true);
    host.dns = some_vec(&d.dns);
    host.dns_search = some_vec(&d.dns_search);
    host.extra_hosts = some_vec(&d.extra_hosts);
    host.security_opt = some_vec(&d.security_opt);
    host.sysctls = (!d.sysctls.is_empty()).then(|| d.sysctls.clone().into_iter().collect());
    host.init = d.init;
    host.cap_add = some_vec(&d.cap_add);
    host.cap_drop = some_vec(&d.cap_drop);
    host.devices = (!d.devices.is_empty()).then(|| {
        d.devices
            .iter()
            .map(|dev| DeviceMapping {
                path_on_host: Some(dev.host_path.clone()),
                path_in_container: Some(dev.container_path.clone()),
                cgroup_permissions: Some(dev.permissions.clone()),
            })
            .collect()
    });
    host.shm_size = d.shm_size_mib.map(mib_to_bytes);
    host.tmpfs = (!d.tmpfs.is_empty()).then(|| d.tmpfs.clone().into_iter().collect());
    // Docker's MemorySwap is memory plus swap; ECS's maxSwap is the swap alone.
    host.memory_swap = d
        .max_swap_mib
        .zip(memory_mib)
        .map(|(swap, mem)| mib_to_bytes(mem.saturating_add(swap)));
    host.memory_swappiness = d.swappiness;
    host.pid_mode = d.pid_mode.clone();
    host.ipc_mode = d.ipc_mode.clone();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{HealthCheckSpec, PortSpec};

    #[test]
    fn log_secret_options_join_the_docker_log_options() {
        let mut spec = ContainerSpec::new("t-1", "app", "img:1");
        spec.log_driver = Some(("splunk".into(), [("splunk-url".into(), "u".into())].into()));
        spec.log_secret_options = [("splunk-token".into(), "t0k".into())].into();
        let lc = log_config(&spec).unwrap();
        assert_eq!(lc.typ.as_deref(), Some("splunk"));
        let cfg = lc.config.unwrap();
        assert_eq!(cfg["splunk-url"], "u");
        assert_eq!(cfg["splunk-token"], "t0k");
    }

    #[test]
    fn create_body_maps_the_ecs_spec() {
        let mut spec = ContainerSpec::new("t-1", "web app", "img:1");
        spec.command = Some(vec!["httpd".into(), "-f".into()]);
        spec.environment = vec![("A".into(), "1".into())];
        spec.port_mappings = vec![
            PortSpec {
                container_port: 8080,
                host_port: 0,
                protocol: TransportProtocol::Tcp,
            },
            PortSpec {
                container_port: 53,
                host_port: 5353,
                protocol: TransportProtocol::Udp,
            },
        ];
        spec.cpu_shares = 1;
        spec.memory_mib = Some(64);
        spec.memory_reservation_mib = Some(32);
        spec.health_check = Some(HealthCheckSpec {
            command: vec!["CMD-SHELL".into(), "true".into()],
            interval: Duration::from_secs(5),
            timeout: Duration::from_millis(1500),
            retries: 3,
            start_period: Duration::ZERO,
        });
        let body = create_body(&spec, Some("s1"));
        let host = body.host_config.clone().unwrap_or_default();
        assert_eq!(host.cpu_shares, Some(2));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.memory_reservation, Some(32 << 20));
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        let bindings = host.port_bindings.unwrap_or_default();
        let tcp = bindings
            .get("8080/tcp")
            .cloned()
            .flatten()
            .unwrap_or_default();
        assert_eq!(tcp[0].host_port.as_deref(), Some(""));
        let udp = bindings
            .get("53/udp")
            .cloned()
            .flatten()
            .unwrap_or_default();
        assert_eq!(udp[0].host_port.as_deref(), Some("5353"));
        let hc = body.healthcheck.clone().unwrap_or_default();
        assert_eq!(hc.test, Some(vec!["CMD-SHELL".into(), "true".into()]));
        assert_eq!(hc.interval, Some(5_000_000_000));
        assert_eq!(hc.timeout, Some(1_500_000_000));
        let labels = body.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(SCOPE_LABEL).map(String::as_str), Some("s1"));
        assert_eq!(
            labels.get("berth.container-name").map(String::as_str),
            Some("web app")
        );
        assert_eq!(body.env, Some(vec!["A=1".to_string()]));
        assert_eq!(container_name(&spec), "berth-web-app-t-1");
        // The default cpu (0) leaves Docker's default.
        spec.cpu_shares = 0;
        assert_eq!(
            create_body(&spec, None)
                .host_config
                .unwrap_or_default()
                .cpu_shares,
            None
        );
    }

    #[test]
    fn create_body_maps_every_docker_option() {
        use crate::spec::{DeviceSpec, MountSpec, UlimitSpec};
        let mut spec = ContainerSpec::new("t-1", "app", "img");
        spec.memory_mib = Some(64);
        spec.user = Some("1000:1000".into());
        spec.working_directory = Some("/w".into());
        spec.entry_point = Some(vec!["sh".into()]);
        spec.ulimits = vec![UlimitSpec {
            name: "nofile".into(),
            soft: 100,
            hard: 200,
        }];
        let d = &mut spec.docker;
        d.mounts = vec![
            MountSpec {
                source: MountSource::Bind("/srv".into()),
                target: "/h".into(),
                read_only: true,
            },
            MountSpec {
                source: MountSource::Volume("berth-t-1-scratch".into()),
                target: "/s".into(),
                read_only: false,
            },
        ];
        d.volumes_from = vec!["abc:ro".into()];
        d.links = vec!["abc:db".into()];
        d.privileged = true;
        d.readonly_rootfs = true;
        d.hostname = Some("h".into());
        d.network_disabled = true;
        d.dns = vec!["1.1.1.1".into()];
        d.dns_search = vec!["example".into()];
        d.extra_hosts = vec!["db:10.0.0.2".into()];
        d.security_opt = vec!["no-new-privileges".into()];
        d.sysctls.insert("net.core.somaxconn".into(), "512".into());
        d.open_stdin = true;
        d.tty = true;
        d.init = Some(true);
        d.cap_add = vec!["NET_ADMIN".into()];
        d.cap_drop = vec!["MKNOD".into()];
        d.devices = vec![DeviceSpec {
            host_path: "/dev/null".into(),
            container_path: "/dev/n".into(),
            permissions: "rw".into(),
        }];
        d.shm_size_mib = Some(32);
        d.tmpfs.insert("/t".into(), "size=16m".into());
        d.max_swap_mib = Some(128);
        d.swappiness = Some(10);
        d.pid_mode = Some("container:abc".into());
        d.ipc_mode = Some("shareable".into());
        let body = create_body(&spec, None);
        let h = body.host_config.clone().unwrap_or_default();
        assert_eq!(
            h.binds,
            Some(vec!["/srv:/h:ro".into(), "berth-t-1-scratch:/s".into()])
        );
        assert_eq!(h.volumes_from, Some(vec!["abc:ro".into()]));
        assert_eq!(h.links, Some(vec!["abc:db".into()]));
        assert_eq!((h.privileged, h.readonly_rootfs), (Some(true), Some(true)));
        assert_eq!(h.dns, Some(vec!["1.1.1.1".into()]));
        assert_eq!(h.dns_search, Some(vec!["example".into()]));
        assert_eq!(h.extra_hosts, Some(vec!["db:10.0.0.2".into()]));
        assert_eq!(h.security_opt, Some(vec!["no-new-privileges".into()]));
        assert_eq!(
            h.sysctls
                .unwrap_or_default()
                .get("net.core.somaxconn")
                .map(String::as_str),
            Some("512")
        );
        assert_eq!(h.init, Some(true));
        assert_eq!(h.cap_add, Some(vec!["NET_ADMIN".into()]));
        assert_eq!(h.cap_drop, Some(vec!["MKNOD".into()]));
        let dev = &h.devices.unwrap_or_default()[0];
        assert_eq!(dev.path_in_container.as_deref(), Some("/dev/n"));
        assert_eq!(dev.cgroup_permissions.as_deref(), Some("rw"));
        assert_eq!(h.shm_size, Some(32 << 20));
        assert_eq!(
            h.tmpfs.unwrap_or_default().get("/t").map(String::as_str),
            Some("size=16m")
        );
        assert_eq!(h.memory_swap, Some((64 + 128) << 20));
        assert_eq!(h.memory_swappiness, Some(10));
        assert_eq!(h.pid_mode.as_deref(), Some("container:abc"));
        assert_eq!(h.ipc_mode.as_deref(), Some("shareable"));
        let u = &h.ulimits.unwrap_or_default()[0];
        assert_eq!(
            (u.name.as_deref(), u.soft, u.hard),
            (Some("nofile"), Some(100), Some(200))
        );
        assert_eq!(body.hostname.as_deref(), Some("h"));
        assert_eq!(body.network_disabled, Some(true));
        assert_eq!((body.open_stdin, body.tty), (Some(true), Some(true)));
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        assert_eq!(body.working_dir.as_deref(), Some("/w"));
        assert_eq!(body.entrypoint, Some(vec!["sh".into()]));
        // Nothing asked, nothing set: Docker's defaults stay.
        let plain = create_body(&ContainerSpec::new("t", "c", "i"), None)
            .host_config
            .unwrap_or_default();
        assert_eq!(
            (plain.binds, plain.privileged, plain.pid_mode, plain.ulimits),
            (None, None, None, None)
        );
    }
}
