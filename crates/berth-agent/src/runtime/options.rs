//! The runtime members of a container definition (see `berth_model::ContainerOptions`) and the
//! task's volumes and namespaces, resolved into a driver's spec when the container starts.
//!
//! Apart from `convert.rs` because some of it needs the task's other containers as they are
//! at that moment (`volumesFrom`, `links` and `task` pid/ipc namespaces name the ids of
//! containers already started) and the host's files (`environmentFiles`).

use std::collections::{BTreeMap, HashMap};

use berth_model::agent::AgentTask;
use berth_model::{parse_env_file, ContainerDefinition, ContainerOptions, Scope};

use super::convert::container_spec;
use crate::spec::{
    ContainerId, ContainerSpec, DeviceSpec, MountSource, MountSpec, UlimitSpec, VolumeSpec,
};

/// A Docker volume name made of the characters Docker accepts.
fn docker_volume_name(raw: &str) -> String {
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

/// The Docker volumes `task` needs before its containers start, and where each of its volume
/// names mounts from. A volume with a `host.sourcePath` is a bind mount; one without `host`
/// or `dockerVolumeConfiguration` (or with an empty `host`) is scratch space: a task-scoped
/// Docker volume shared by the task's containers; a `dockerVolumeConfiguration` with scope
/// `task` (ECS's default) is a task-scoped volume named after the task, with `shared` it is
/// the Docker volume of that name, kept after the task.
pub(crate) fn task_volumes(task: &AgentTask) -> (Vec<VolumeSpec>, HashMap<String, MountSource>) {
    let mut create = Vec::new();
    let mut sources = HashMap::new();
    for v in &task.volumes {
        let Some(name) = v.name.clone() else { continue };
        // EFS, FSx and S3 Files volumes (refused at registration since, but possibly in
        // definitions registered before) have no source here: a mount of one fails its
        // container rather than getting scratch space in their place.
        if v.efs_volume_configuration.is_some()
            || v.fsx_windows_file_server_volume_configuration.is_some()
            || v.s3files_volume_configuration.is_some()
        {
            continue;
        }
        if let Some(p) = v.host.as_ref().and_then(|h| h.source_path.clone()) {
            sources.insert(name, MountSource::Bind(p));
            continue;
        }
        let cfg = v.docker_volume_configuration.clone().unwrap_or_default();
        let shared = cfg.scope == Some(Scope::Shared);
        let docker_name = if shared {
            docker_volume_name(&name)
        } else {
            docker_volume_name(&format!("berth-{}-{name}", task.task_id))
        };
        create.push(VolumeSpec {
            name: docker_name.clone(),
            driver: cfg.driver.unwrap_or_else(|| "local".into()),
            driver_opts: cfg.driver_opts.unwrap_or_default(),
            labels: cfg.labels.unwrap_or_default(),
            task_scoped: !shared,
            create_if_missing: cfg.autoprovision.unwrap_or(false),
        });
        sources.insert(name, MountSource::Volume(docker_name));
    }
    (create, sources)
}

/// The containers a container needs started before it can be created: those it takes
/// volumes from and those it links to (ECS orders them so too).
pub(crate) fn implicit_dependencies(def: &ContainerDefinition) -> Vec<String> {
    let mut deps: Vec<String> = def
        .volumes_from
        .iter()
        .filter_map(|f| f.source_container.clone())
        .collect();
    if let Ok(o) = def.options() {
        deps.extend(
            o.links
                .iter()
                .filter_map(|l| l.split(':').next().map(str::to_owned)),
        );
    }
    deps
}

/// The spec of one container of `task`, with everything resolved: `started` maps the names of
/// the task's containers already started to their ids, in start order.
pub(crate) fn runtime_spec(
    task: &AgentTask,
    cluster: &str,
    def: &ContainerDefinition,
    started: &[(String, ContainerId)],
) -> Result<ContainerSpec, String> {
    let mut spec = container_spec(task, cluster, def);
    let o = def.options().map_err(|e| e.message)?;
    spec.environment = with_env_files(&o, std::mem::take(&mut spec.environment))?;
    spec.ulimits = o
        .ulimits
        .iter()
        .map(|u| UlimitSpec {
            name: u.name.clone(),
            soft: u.soft_limit,
            hard: u.hard_limit,
        })
        .collect();
    let id_of = |name: &str| {
        started
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.0.clone())
            .ok_or_else(|| format!("container {name} has not started"))
    };
    let (_, sources) = task_volumes(task);
    let d = &mut spec.docker;
    for m in &def.mount_points {
        let src = m.source_volume.clone().unwrap_or_default();
        let source = sources
            .get(&src)
            .cloned()
            .ok_or_else(|| format!("mountPoints names unknown volume {src}"))?;
        d.mounts.push(MountSpec {
            source,
            target: m.container_path.clone().unwrap_or_default(),
            read_only: m.read_only.unwrap_or(false),
        });
    }
    for f in &def.volumes_from {
        let id = id_of(f.source_container.as_deref().unwrap_or_default())?;
        let ro = if f.read_only == Some(true) { ":ro" } else { "" };
        d.volumes_from.push(format!("{id}{ro}"));
    }
    for l in &o.links {
        let (name, alias) = l.split_once(':').unwrap_or((l, l));
        d.links.push(format!("{}:{alias}", id_of(name)?));
    }
    // The first container started leads a `task` namespace; the others join it.
    let leader = started.first().map(|(_, id)| format!("container:{}", id.0));
    d.pid_mode = match task.pid_mode.as_deref() {
        Some("host") => Some("host".into()),
        Some("task") => leader.clone(),
        _ => None,
    };
    d.ipc_mode = match task.ipc_mode.as_deref() {
        Some("host") => Some("host".into()),
        Some("none") => Some("none".into()),
        Some("task") => leader.or_else(|| Some("shareable".into())),
        _ => None,
    };
    apply_options(&o, &mut spec);
    Ok(spec)
}

/// `environmentFiles` under `environment`: a file's variables first (an earlier file wins
/// over a later one), then the container's own (later entries win in a spec).
fn with_env_files(
    o: &ContainerOptions,
    environment: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for f in o.environment_files.iter().rev() {
        let path = f
            .local_path()
            .ok_or_else(|| format!("environmentFiles {}: not a local path", f.value))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("environmentFiles {}: {e}", f.value))?;
        out.extend(parse_env_file(&text));
    }
    out.extend(environment);
    Ok(out)
}

fn apply_options(o: &ContainerOptions, spec: &mut ContainerSpec) {
    if o.user.is_some() {
        spec.user.clone_from(&o.user);
    }
    if o.working_directory.is_some() {
        spec.working_directory.clone_from(&o.working_directory);
    }
    let d = &mut spec.docker;
    d.privileged = o.privileged == Some(true);
    d.readonly_rootfs = o.readonly_root_filesystem == Some(true);
    d.hostname.clone_from(&o.hostname);
    d.network_disabled = o.disable_networking == Some(true);
    d.dns.clone_from(&o.dns_servers);
    d.dns_search.clone_from(&o.dns_search_domains);
    d.extra_hosts = o
        .extra_hosts
        .iter()
        .map(|h| format!("{}:{}", h.hostname, h.ip_address))
        .collect();
    d.security_opt.clone_from(&o.docker_security_options);
    d.sysctls = o
        .system_controls
        .iter()
        .map(|s| (s.namespace.clone(), s.value.clone()))
        .collect::<BTreeMap<_, _>>();
    d.open_stdin = o.interactive == Some(true);
    d.tty = o.pseudo_terminal == Some(true);
    let Some(lp) = &o.linux_parameters else {
        return;
    };
    d.init = lp.init_process_enabled;
    if let Some(c) = &lp.capabilities {
        d.cap_add.clone_from(&c.add);
        d.cap_drop.clone_from(&c.drop);
    }
    d.devices = lp
        .devices
        .iter()
        .map(|dev| DeviceSpec {
            host_path: dev.host_path.clone(),
            container_path: dev
                .container_path
                .clone()
                .unwrap_or_else(|| dev.host_path.clone()),
            permissions: if dev.permissions.is_empty() {
                "rwm".into()
            } else {
                dev.permissions
                    .iter()
                    .filter_map(|p| p.chars().next())
                    .collect()
            },
        })
        .collect();
    d.shm_size_mib = lp.shared_memory_size.and_then(|s| u64::try_from(s).ok());
    d.tmpfs = lp
        .tmpfs
        .iter()
        .map(|t| {
            let mut opts = vec![format!("size={}m", t.size)];
            opts.extend(t.mount_options.iter().cloned());
            (t.container_path.clone(), opts.join(","))
        })
        .collect();
    d.max_swap_mib = lp.max_swap.and_then(|s| u64::try_from(s).ok());
    d.swappiness = lp.swappiness.or(lp.max_swap.map(|_| 60));
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::{DesiredStatus, TaskStatus};
    use serde_json::json;

    fn task(containers: serde_json::Value, volumes: serde_json::Value) -> AgentTask {
        AgentTask {
            credentials: None,
            task_id: "t1".into(),
            task_arn: "arn".into(),
            family: "f".into(),
            revision: 1,
            desired_status: DesiredStatus::Running,
            last_status: TaskStatus::Provisioning,
            network_mode: None,
            containers: serde_json::from_value(containers).unwrap(),
            volumes: serde_json::from_value(volumes).unwrap(),
            pid_mode: Some("task".into()),
            ipc_mode: Some("task".into()),
            secrets: None,
            network: None,
        }
    }

    #[test]
    fn every_option_reaches_the_spec() {
        let dir = std::env::temp_dir().join(format!("berth-envfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f1 = dir.join("a.env");
        let f2 = dir.join("b.env");
        std::fs::write(&f1, "A=file\nB=first\n").unwrap();
        std::fs::write(&f2, "B=second\nC=3\n").unwrap();
        let t = task(
            json!([{"name": "side", "image": "i"}, {"name": "app", "image": "i", "memory": 64,
                "environment": [{"name": "A", "value": "env"}],
                "environmentFiles": [{"value": format!("file://{}", f1.display()), "type": "s3"},
                                     {"value": f2.display().to_string(), "type": "s3"}],
                "mountPoints": [{"sourceVolume": "host", "containerPath": "/h", "readOnly": true},
                                {"sourceVolume": "scratch", "containerPath": "/s"},
                                {"sourceVolume": "shared", "containerPath": "/sh"}],
                "volumesFrom": [{"sourceContainer": "side", "readOnly": true}],
                "links": ["side:db"], "user": "1000:1000", "workingDirectory": "/w",
                "ulimits": [{"name": "nofile", "softLimit": 100, "hardLimit": 200}],
                "privileged": true, "readonlyRootFilesystem": true, "hostname": "h",
                "disableNetworking": false, "dnsServers": ["1.1.1.1"], "dnsSearchDomains": ["x"],
                "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.2"}],
                "dockerSecurityOptions": ["no-new-privileges"], "interactive": true, "pseudoTerminal": true,
                "systemControls": [{"namespace": "net.core.somaxconn", "value": "512"}],
                "linuxParameters": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                    "devices": [{"hostPath": "/dev/null", "permissions": ["read", "write"]}],
                    "initProcessEnabled": true, "sharedMemorySize": 32,
                    "tmpfs": [{"containerPath": "/tmpfs", "size": 16, "mountOptions": ["noexec"]}],
                    "maxSwap": 128}}]),
            json!([{"name": "host", "host": {"sourcePath": "/srv"}}, {"name": "scratch"},
                   {"name": "shared", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local"}}]),
        );
        let started = vec![("side".to_string(), ContainerId("abc".into()))];
        let s = runtime_spec(&t, "c", &t.containers[1], &started).unwrap();
        let env: HashMap<_, _> = s.environment.iter().cloned().collect();
        assert_eq!(env["A"], "env", "environment wins over files");
        assert_eq!(env["B"], "first", "an earlier file wins");
        assert_eq!(env["C"], "3");
        let d = &s.docker;
        assert_eq!(
            d.mounts,
            vec![
                MountSpec {
                    source: MountSource::Bind("/srv".into()),
                    target: "/h".into(),
                    read_only: true
                },
                MountSpec {
                    source: MountSource::Volume("berth-t1-scratch".into()),
                    target: "/s".into(),
                    read_only: false
                },
                MountSpec {
                    source: MountSource::Volume("shared".into()),
                    target: "/sh".into(),
                    read_only: false
                },
            ]
        );
        assert_eq!(d.volumes_from, vec!["abc:ro"]);
        assert_eq!(d.links, vec!["abc:db"]);
        assert_eq!(d.pid_mode.as_deref(), Some("container:abc"));
        assert_eq!(d.ipc_mode.as_deref(), Some("container:abc"));
        assert_eq!(s.user.as_deref(), Some("1000:1000"));
        assert_eq!(s.working_directory.as_deref(), Some("/w"));
        assert_eq!(
            s.ulimits,
            vec![UlimitSpec {
                name: "nofile".into(),
                soft: 100,
                hard: 200
            }]
        );
        assert!(d.privileged && d.readonly_rootfs && d.open_stdin && d.tty && !d.network_disabled);
        assert_eq!(d.hostname.as_deref(), Some("h"));
        assert_eq!(
            (d.dns.clone(), d.dns_search.clone()),
            (vec!["1.1.1.1".to_string()], vec!["x".to_string()])
        );
        assert_eq!(d.extra_hosts, vec!["db:10.0.0.2"]);
        assert_eq!(d.security_opt, vec!["no-new-privileges"]);
        assert_eq!(d.sysctls["net.core.somaxconn"], "512");
        assert_eq!(
            (d.cap_add.clone(), d.cap_drop.clone()),
            (vec!["NET_ADMIN".to_string()], vec!["MKNOD".to_string()])
        );
        assert_eq!(d.devices[0].container_path, "/dev/null");
        assert_eq!(d.devices[0].permissions, "rw");
        assert_eq!((d.init, d.shm_size_mib), (Some(true), Some(32)));
        assert_eq!(d.tmpfs["/tmpfs"], "size=16m,noexec");
        assert_eq!((d.max_swap_mib, d.swappiness), (Some(128), Some(60)));
        // The first container of a `task` namespace leads it.
        let first = runtime_spec(&t, "c", &t.containers[0], &[]).unwrap();
        assert_eq!(first.docker.pid_mode, None);
        assert_eq!(first.docker.ipc_mode.as_deref(), Some("shareable"));
        let (create, _) = task_volumes(&t);
        assert_eq!(create.len(), 2);
        assert!(create[0].task_scoped && !create[1].task_scoped && create[1].create_if_missing);
        assert_eq!(
            implicit_dependencies(&t.containers[1]),
            vec!["side", "side"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_volume_berth_cannot_mount_fails_its_container() {
        let t = task(
            json!([{"name": "a", "image": "i", "mountPoints": [{"sourceVolume": "efs", "containerPath": "/e"}]}]),
            json!([{"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}]),
        );
        assert!(task_volumes(&t).0.is_empty());
        let e = runtime_spec(&t, "c", &t.containers[0], &[]).unwrap_err();
        assert!(e.contains("efs"), "{e}");
    }

    #[test]
    fn a_missing_env_file_fails_the_container() {
        let t = task(
            json!([{"name": "a", "image": "i", "environmentFiles": [{"value": "/no/such/file.env"}]}]),
            json!([]),
        );
        let e = runtime_spec(&t, "c", &t.containers[0], &[]).unwrap_err();
        assert!(e.contains("environmentFiles"), "{e}");
    }
}
