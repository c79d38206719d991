//! Honour it or refuse it: which members of a RegisterTaskDefinition berth applies, which it
//! refuses with the ClientException ECS would give, and the `requiresAttributes` a definition
//! gets from the members it uses.
//!
//! A member that is accepted and not applied is the worst kind of bug (the user finds out in
//! production), so registration walks every member a client may send: those berth does not
//! implement (EFS, FSx, FireLens, GPUs, App Mesh, Windows credential specs, Fargate-only
//! ephemeral storage ...) and any member ECS's model does not have are refused, naming the
//! member. What berth applies is checked as ECS checks it.
//!
//! `requiresAttributes` is what the scheduler matches against each host's attributes, as ECS
//! does: a member only Docker can apply (a mount, a ulimit, privileged ...) requires
//! `com.amazonaws.ecs.capability.docker-remote-api.1.xx` or a named capability, which the
//! Docker driver's agents register and the process driver's do not; such a task is never
//! placed on a process-driver host (`ATTRIBUTE` in RunTask's failures).

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::options::{ContainerOptions, LinuxParameters, ULIMIT_NAMES};
use crate::{ApiError, Attribute, ContainerDefinition, TaskDefinition};

/// The capability every Docker-only member needs: the Docker remote API ECS's oldest agents
/// spoke.
pub const DOCKER_API_BASE: &str = "com.amazonaws.ecs.capability.docker-remote-api.1.17";
/// Privileged containers.
pub const CAP_PRIVILEGED: &str = "com.amazonaws.ecs.capability.privileged-container";
/// Docker volumes through the `local` driver (`ecs.capability.docker-plugin.DRIVER` for others).
pub const CAP_DOCKER_PLUGIN_PREFIX: &str = "ecs.capability.docker-plugin.";
/// Health checks.
pub const CAP_HEALTH_CHECK: &str = "ecs.capability.container-health-check";
/// `dependsOn`, `startTimeout`, `stopTimeout`.
pub const CAP_ORDERING: &str = "ecs.capability.container-ordering";
/// Task `pidMode` / `ipcMode`.
pub const CAP_PID_IPC: &str = "ecs.capability.pid-ipc-namespace-sharing";
/// `restartPolicy`.
pub const CAP_RESTART_POLICY: &str = "ecs.capability.container-restart-policy";
/// `networkMode: awsvpc`: the task gets its own network interface (the docker driver's).
pub const CAP_TASK_ENI: &str = "ecs.capability.task-eni";

/// A `com.amazonaws.ecs.capability.docker-remote-api.1.MINOR` attribute name.
pub fn docker_api(minor: u32) -> String {
    format!("com.amazonaws.ecs.capability.docker-remote-api.1.{minor}")
}

/// Task definition members refused outright, with why.
const REFUSED_TASK_MEMBERS: &[(&str, &str)] = &[
    (
        "proxyConfiguration",
        "App Mesh proxy configuration is not supported by berth",
    ),
    (
        "inferenceAccelerators",
        "Elastic Inference accelerators are not supported by berth",
    ),
    (
        "ephemeralStorage",
        "berth cannot cap a task's ephemeral storage (Docker's storage-opt size needs overlay2 on xfs with project quotas, which berth does not require); FARGATE tasks get the default 20 GiB, uncapped",
    ),
    (
        "trustedExecutionConfiguration",
        "trusted execution is not supported by berth",
    ),
];

/// Container members refused outright, with why.
const REFUSED_CONTAINER_MEMBERS: &[(&str, &str)] = &[
    (
        "resourceRequirements",
        "GPU and InferenceAccelerator resource requirements are not supported by berth",
    ),
    (
        "firelensConfiguration",
        "FireLens log routing is not supported by berth",
    ),
    (
        "credentialSpecs",
        "credential specs (Active Directory gMSA) are not supported by berth",
    ),
];

/// Container members another part of berth resolves (secrets and private registry auth).
const DELEGATED_CONTAINER_MEMBERS: &[&str] = &["secrets", "repositoryCredentials"];

fn refuse(message: impl Into<String>) -> ApiError {
    ApiError::client(message)
}

/// Refuses what berth does not implement and checks what it does, as ECS checks it.
pub(crate) fn check(td: &TaskDefinition) -> Result<(), ApiError> {
    check_task_members(td)?;
    check_volumes(td)?;
    let names: HashSet<&str> = td
        .container_definitions
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let volumes: HashSet<&str> = td
        .volumes
        .iter()
        .filter_map(|v| v.name.as_deref())
        .collect();
    for c in &td.container_definitions {
        check_container(td, c, &names, &volumes)?;
    }
    Ok(())
}

fn check_task_members(td: &TaskDefinition) -> Result<(), ApiError> {
    for (k, v) in &td.extra {
        if let Some((_, why)) = REFUSED_TASK_MEMBERS.iter().find(|(m, _)| m == k) {
            if k == "ephemeralStorage" {
                let size = v.get("sizeInGiB").and_then(Value::as_i64).unwrap_or(0);
                if !(21..=200).contains(&size) {
                    return Err(refuse(format!(
                        "Invalid ephemeralStorage: sizeInGiB must be between 21 and 200; got {size}."
                    )));
                }
            }
            return Err(refuse(format!("{k}: {why}.")));
        }
        match k.as_str() {
            "enableFaultInjection" => {
                if v.as_bool() == Some(true) {
                    return Err(refuse(
                        "enableFaultInjection: fault injection is not supported by berth.",
                    ));
                }
            }
            "runtimePlatform" => {
                if let Some(os) = v.get("operatingSystemFamily").and_then(Value::as_str) {
                    if os != "LINUX" {
                        return Err(refuse(format!(
                            "runtimePlatform.operatingSystemFamily {os} is not supported by berth: its hosts run Linux containers."
                        )));
                    }
                }
                if let Some(arch) = v.get("cpuArchitecture").and_then(Value::as_str) {
                    if !matches!(arch, "X86_64" | "ARM64") {
                        return Err(ApiError::invalid(format!(
                            "Invalid runtimePlatform.cpuArchitecture {arch:?}; valid: X86_64, ARM64"
                        )));
                    }
                }
            }
            other => {
                return Err(refuse(format!(
                    "The task definition member '{other}' is not supported by berth."
                )))
            }
        }
    }
    Ok(())
}

fn check_volumes(td: &TaskDefinition) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for v in &td.volumes {
        let Some(name) = v.name.as_deref().filter(|n| !n.is_empty()) else {
            return Err(refuse("Invalid volumes: every volume needs a name."));
        };
        if !seen.insert(name) {
            return Err(refuse(format!("Duplicate volume name: {name}")));
        }
        if v.efs_volume_configuration.is_some() {
            return Err(refuse(format!(
                "Volume '{name}': efsVolumeConfiguration (Amazon EFS) is not supported by berth; use host or dockerVolumeConfiguration."
            )));
        }
        if v.fsx_windows_file_server_volume_configuration.is_some() {
            return Err(refuse(format!(
                "Volume '{name}': fsxWindowsFileServerVolumeConfiguration (Amazon FSx for Windows) is not supported by berth."
            )));
        }
        if v.s3files_volume_configuration.is_some() {
            return Err(refuse(format!(
                "Volume '{name}': s3filesVolumeConfiguration (Amazon S3 Files) is not supported by berth."
            )));
        }
        if v.configured_at_launch == Some(true) {
            return Err(refuse(format!(
                "Volume '{name}': configuredAtLaunch volumes are not supported by berth."
            )));
        }
        if v.host.is_some() && v.docker_volume_configuration.is_some() {
            return Err(refuse(format!(
                "Volume '{name}': host and dockerVolumeConfiguration cannot both be set."
            )));
        }
        if let Some(p) = v.host.as_ref().and_then(|h| h.source_path.as_deref()) {
            if !p.starts_with('/') {
                return Err(refuse(format!(
                    "Volume '{name}': host.sourcePath must be an absolute path; got {p:?}."
                )));
            }
        }
        if let Some(d) = &v.docker_volume_configuration {
            if d.autoprovision == Some(true) && d.scope != Some(crate::Scope::Shared) {
                return Err(refuse(format!(
                    "Volume '{name}': dockerVolumeConfiguration.autoprovision is only supported when scope is shared."
                )));
            }
        }
    }
    Ok(())
}

fn check_container(
    td: &TaskDefinition,
    c: &ContainerDefinition,
    names: &HashSet<&str>,
    volumes: &HashSet<&str>,
) -> Result<(), ApiError> {
    let n = &c.name;
    for k in c.extra.keys() {
        if let Some((_, why)) = REFUSED_CONTAINER_MEMBERS.iter().find(|(m, _)| m == k) {
            return Err(refuse(format!("Container '{n}': {k}: {why}.")));
        }
        if !crate::options::OPTION_MEMBERS.contains(&k.as_str())
            && !DELEGATED_CONTAINER_MEMBERS.contains(&k.as_str())
        {
            return Err(refuse(format!(
                "Container '{n}': the container definition member '{k}' is not supported by berth."
            )));
        }
    }
    if let Some(log) = &c.log_configuration {
        if log.log_driver == "awsfirelens" {
            return Err(refuse(format!(
                "Container '{n}': logConfiguration logDriver awsfirelens (FireLens) is not supported by berth."
            )));
        }
    }
    for m in &c.mount_points {
        let src = m.source_volume.as_deref().unwrap_or_default();
        if !volumes.contains(src) {
            return Err(refuse(format!(
                "Container '{n}': mountPoints sourceVolume '{src}' is not a volume of the task definition."
            )));
        }
        if !m
            .container_path
            .as_deref()
            .is_some_and(|p| p.starts_with('/'))
        {
            return Err(refuse(format!(
                "Container '{n}': mountPoints containerPath must be an absolute path."
            )));
        }
    }
    for f in &c.volumes_from {
        let src = f.source_container.as_deref().unwrap_or_default();
        if src == n || !names.contains(src) {
            return Err(refuse(format!(
                "Container '{n}': volumesFrom sourceContainer '{src}' is not another container of the task."
            )));
        }
    }
    let o = c.options()?;
    check_options(td, c, &o, names)
}

fn check_options(
    td: &TaskDefinition,
    c: &ContainerDefinition,
    o: &ContainerOptions,
    names: &HashSet<&str>,
) -> Result<(), ApiError> {
    let n = &c.name;
    let mode = td.network_mode.as_deref().unwrap_or("bridge");
    for u in &o.ulimits {
        if !ULIMIT_NAMES.contains(&u.name.as_str()) {
            return Err(ApiError::invalid(format!(
                "Invalid ulimits name {:?}; valid: {}",
                u.name,
                ULIMIT_NAMES.join(", ")
            )));
        }
        if u.soft_limit > u.hard_limit {
            return Err(refuse(format!(
                "Container '{n}': ulimits {}: softLimit {} exceeds hardLimit {}.",
                u.name, u.soft_limit, u.hard_limit
            )));
        }
    }
    if let Some(lp) = &o.linux_parameters {
        check_linux_parameters(c, lp)?;
    }
    if let Some(r) = &o.restart_policy {
        if let Some(p) = r.restart_attempt_period {
            if !(60..=1800).contains(&p) {
                return Err(refuse(format!(
                    "Container '{n}': restartPolicy.restartAttemptPeriod must be between 60 and 1800 seconds; got {p}."
                )));
            }
        }
        if r.ignored_exit_codes.len() > 50 {
            return Err(refuse(format!(
                "Container '{n}': restartPolicy.ignoredExitCodes can list at most 50 exit codes."
            )));
        }
    }
    for f in &o.environment_files {
        if let Some(t) = f.kind.as_deref().filter(|t| *t != "s3") {
            return Err(ApiError::invalid(format!(
                "Invalid environmentFiles type {t:?}; valid: s3"
            )));
        }
        if f.value.starts_with("arn:") {
            return Err(refuse(format!(
                "Container '{n}': environmentFiles {}: S3 environment files are not supported by berth; give a file:///absolute/path on the agent's host.",
                f.value
            )));
        }
        if f.local_path().is_none() {
            return Err(refuse(format!(
                "Container '{n}': environmentFiles value {:?} must be file:///absolute/path or an absolute path on the agent's host.",
                f.value
            )));
        }
    }
    if o.version_consistency.as_deref() == Some("enabled") {
        return Err(refuse(format!(
            "Container '{n}': versionConsistency enabled is not supported by berth: it runs the image each host has under the tag and never resolves digests; set it to disabled."
        )));
    }
    if let Some(v) = o
        .version_consistency
        .as_deref()
        .filter(|v| *v != "disabled")
    {
        return Err(ApiError::invalid(format!(
            "Invalid versionConsistency {v:?}; valid: enabled, disabled"
        )));
    }
    if !o.links.is_empty() && mode != "bridge" {
        return Err(refuse(format!(
            "Container '{n}': links are only supported when networkMode is bridge."
        )));
    }
    for l in &o.links {
        let target = l.split(':').next().unwrap_or_default();
        if target == n || !names.contains(target) {
            return Err(refuse(format!(
                "Container '{n}': links entry '{l}' does not name another container of the task."
            )));
        }
    }
    if o.hostname.is_some() && matches!(mode, "awsvpc" | "host") {
        return Err(refuse(format!(
            "Container '{n}': hostname is not supported when networkMode is {mode}."
        )));
    }
    if o.system_controls.iter().any(|s| s.namespace.is_empty()) {
        return Err(refuse(format!(
            "Container '{n}': systemControls entries need a namespace."
        )));
    }
    Ok(())
}

fn check_linux_parameters(c: &ContainerDefinition, lp: &LinuxParameters) -> Result<(), ApiError> {
    let n = &c.name;
    for d in &lp.devices {
        if !d.host_path.starts_with('/') {
            return Err(refuse(format!(
                "Container '{n}': linuxParameters.devices hostPath must be an absolute path."
            )));
        }
        if let Some(p) = d
            .permissions
            .iter()
            .find(|p| !matches!(p.as_str(), "read" | "write" | "mknod"))
        {
            return Err(ApiError::invalid(format!(
                "Invalid linuxParameters.devices permissions {p:?}; valid: read, write, mknod"
            )));
        }
    }
    for t in &lp.tmpfs {
        if !t.container_path.starts_with('/') || t.size <= 0 {
            return Err(refuse(format!(
                "Container '{n}': linuxParameters.tmpfs needs an absolute containerPath and a size in MiB."
            )));
        }
    }
    if lp.shared_memory_size.is_some_and(|s| s <= 0) {
        return Err(refuse(format!(
            "Container '{n}': linuxParameters.sharedMemorySize must be positive."
        )));
    }
    if let Some(s) = lp.max_swap {
        if s < 0 {
            return Err(refuse(format!(
                "Container '{n}': linuxParameters.maxSwap must be 0 or positive."
            )));
        }
        if c.memory.is_none() {
            return Err(refuse(format!(
                "Container '{n}': linuxParameters.maxSwap needs the container's memory limit ('memory')."
            )));
        }
    }
    if lp.swappiness.is_some_and(|s| !(0..=100).contains(&s)) {
        return Err(refuse(format!(
            "Container '{n}': linuxParameters.swappiness must be between 0 and 100."
        )));
    }
    Ok(())
}

/// The attributes a host needs to run `td` (ECS's `requiresAttributes`), sorted by name.
pub fn required_attributes(td: &TaskDefinition) -> Vec<Attribute> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut add = |s: &str| {
        names.insert(s.to_owned());
    };
    if td.pid_mode.is_some() || td.ipc_mode.is_some() {
        add(CAP_PID_IPC);
        add(DOCKER_API_BASE);
    }
    if td.network_mode.as_deref() == Some("awsvpc") {
        add(CAP_TASK_ENI);
    }
    for v in &td.volumes {
        add(DOCKER_API_BASE);
        if let Some(d) = &v.docker_volume_configuration {
            add(&docker_api(25));
            add(&format!(
                "{CAP_DOCKER_PLUGIN_PREFIX}{}",
                d.driver.as_deref().unwrap_or("local")
            ));
        }
    }
    for c in &td.container_definitions {
        container_attributes(c, &mut add);
    }
    let mut out: Vec<Attribute> = names
        .into_iter()
        .map(|name| Attribute {
            name,
            value: None,
            target_type: None,
            target_id: None,
        })
        .collect();
    if let Some(arch) = td
        .extra
        .get("runtimePlatform")
        .and_then(|r| r.get("cpuArchitecture"))
        .and_then(Value::as_str)
    {
        out.push(Attribute {
            name: "ecs.cpu-architecture".into(),
            value: Some(if arch == "ARM64" { "arm64" } else { "x86_64" }.into()),
            target_type: None,
            target_id: None,
        });
    }
    out
}

fn container_attributes(c: &ContainerDefinition, add: &mut impl FnMut(&str)) {
    if c.health_check.is_some() {
        add(CAP_HEALTH_CHECK);
    }
    if c.depends_on.is_some() || c.start_timeout.is_some() || c.stop_timeout.is_some() {
        add(CAP_ORDERING);
    }
    if !c.mount_points.is_empty() || !c.volumes_from.is_empty() {
        add(DOCKER_API_BASE);
    }
    let Ok(o) = c.options() else { return };
    if o.privileged == Some(true) {
        add(CAP_PRIVILEGED);
    }
    if o.restart_policy.is_some() {
        add(CAP_RESTART_POLICY);
    }
    // The process driver applies the portable ulimits too; the others need Docker.
    if o.ulimits
        .iter()
        .any(|u| !crate::options::PORTABLE_ULIMITS.contains(&u.name.as_str()))
    {
        add(&docker_api(18));
    }
    if !o.system_controls.is_empty() {
        add(&docker_api(24));
    }
    let docker_only = !o.links.is_empty()
        || o.hostname.is_some()
        || o.disable_networking.is_some()
        || o.privileged.is_some()
        || o.readonly_root_filesystem.is_some()
        || !o.dns_servers.is_empty()
        || !o.dns_search_domains.is_empty()
        || !o.extra_hosts.is_empty()
        || !o.docker_security_options.is_empty()
        || o.interactive.is_some()
        || o.pseudo_terminal.is_some();
    if docker_only {
        add(DOCKER_API_BASE);
    }
    if let Some(lp) = &o.linux_parameters {
        add(DOCKER_API_BASE);
        if lp.init_process_enabled.is_some() {
            add(&docker_api(25));
        }
        if lp.shared_memory_size.is_some() || !lp.tmpfs.is_empty() {
            add(&docker_api(22));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn td(v: Value) -> Result<TaskDefinition, ApiError> {
        let mut t = TaskDefinition::from_request(v)?;
        t.validate_and_normalize()?;
        Ok(t)
    }

    fn with_container(extra: Value) -> Value {
        let mut c = json!({"name": "a", "image": "i", "memory": 64});
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        json!({"family": "f", "containerDefinitions": [c, {"name": "b", "image": "i", "memory": 8}]})
    }

    #[test]
    fn refused_members_name_themselves() {
        let cases = [
            (
                with_container(json!({"resourceRequirements": [{"type": "GPU", "value": "1"}]})),
                "resourceRequirements",
            ),
            (
                with_container(json!({"firelensConfiguration": {"type": "fluentbit"}})),
                "firelensConfiguration",
            ),
            (
                with_container(json!({"credentialSpecs": ["x"]})),
                "credentialSpecs",
            ),
            (
                with_container(json!({"logConfiguration": {"logDriver": "awsfirelens"}})),
                "awsfirelens",
            ),
            (
                with_container(
                    json!({"environmentFiles": [{"value": "arn:aws:s3:::b/k.env", "type": "s3"}]}),
                ),
                "environmentFiles",
            ),
            (
                with_container(json!({"versionConsistency": "enabled"})),
                "versionConsistency",
            ),
            (with_container(json!({"madeUp": 1})), "madeUp"),
            (
                with_container(
                    json!({"restartPolicy": {"enabled": true, "restartAttemptPeriod": 5}}),
                ),
                "restartAttemptPeriod",
            ),
            (
                with_container(
                    json!({"ulimits": [{"name": "nofile", "softLimit": 9, "hardLimit": 1}]}),
                ),
                "ulimits",
            ),
            (
                with_container(
                    json!({"linuxParameters": {"maxSwap": 10}, "memory": null, "memoryReservation": 8}),
                ),
                "maxSwap",
            ),
        ];
        for (v, member) in cases {
            let e = td(v).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::ClientException, "{}", e.message);
            assert!(e.message.contains(member), "{member}: {}", e.message);
        }
        let task_cases = [
            ("proxyConfiguration", json!({"containerName": "a"})),
            (
                "inferenceAccelerators",
                json!([{"deviceName": "d", "deviceType": "t"}]),
            ),
            ("ephemeralStorage", json!({"sizeInGiB": 30})),
            ("trustedExecutionConfiguration", json!({})),
            ("enableFaultInjection", json!(true)),
        ];
        for (member, value) in task_cases {
            let mut v = with_container(json!({}));
            v[member] = value;
            let e = td(v).unwrap_err();
            assert!(e.message.contains(member), "{member}: {}", e.message);
        }
        for (vol, member) in [
            (
                json!({"name": "v", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}),
                "efsVolumeConfiguration",
            ),
            (
                json!({"name": "v", "configuredAtLaunch": true}),
                "configuredAtLaunch",
            ),
            (
                json!({"name": "v", "fsxWindowsFileServerVolumeConfiguration": {"fileSystemId": "f", "rootDirectory": "r",
                "authorizationConfig": {"credentialsParameter": "c", "domain": "d"}}}),
                "fsxWindowsFileServerVolumeConfiguration",
            ),
        ] {
            let mut v = with_container(json!({}));
            v["volumes"] = json!([vol]);
            let e = td(v).unwrap_err();
            assert!(e.message.contains(member), "{member}: {}", e.message);
        }
    }

    #[test]
    fn honoured_members_pass_and_require_docker() {
        let mut v = with_container(json!({
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048},
                        {"name": "nproc", "softLimit": 100, "hardLimit": 100}],
            "privileged": true, "user": "1000", "links": ["b:db"],
            "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/data"}],
            "restartPolicy": {"enabled": true, "ignoredExitCodes": [0], "restartAttemptPeriod": 60},
            "environmentFiles": [{"value": "file:///etc/a.env", "type": "s3"}],
            "linuxParameters": {"initProcessEnabled": true, "tmpfs": [{"containerPath": "/t", "size": 8}]},
            "versionConsistency": "disabled"
        }));
        v["volumes"] = json!([{"name": "scratch"}, {"name": "d", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true}}]);
        v["pidMode"] = json!("task");
        v["runtimePlatform"] =
            json!({"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"});
        let t = td(v).unwrap();
        let attrs: Vec<String> = required_attributes(&t)
            .into_iter()
            .map(|a| match a.value {
                Some(v) => format!("{}={v}", a.name),
                None => a.name,
            })
            .collect();
        for want in [
            DOCKER_API_BASE,
            "com.amazonaws.ecs.capability.docker-remote-api.1.18",
            "com.amazonaws.ecs.capability.docker-remote-api.1.25",
            CAP_PRIVILEGED,
            CAP_PID_IPC,
            CAP_RESTART_POLICY,
            "ecs.capability.docker-plugin.local",
            "ecs.cpu-architecture=x86_64",
        ] {
            assert!(attrs.iter().any(|a| a == want), "{want} in {attrs:?}");
        }
        // A plain definition needs nothing a process-driver host lacks.
        let plain = td(json!({"family": "p", "containerDefinitions": [
            {"name": "a", "image": "i", "memory": 8, "user": "1000", "workingDirectory": "/tmp",
             "ulimits": [{"name": "nofile", "softLimit": 64, "hardLimit": 128}],
             "healthCheck": {"command": ["CMD-SHELL", "true"]}}]}))
        .unwrap();
        let names: Vec<String> = required_attributes(&plain)
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, vec![CAP_HEALTH_CHECK.to_string()]);
    }

    #[test]
    fn references_are_checked() {
        for (extra, member) in [
            (
                json!({"mountPoints": [{"sourceVolume": "nope", "containerPath": "/d"}]}),
                "sourceVolume",
            ),
            (
                json!({"volumesFrom": [{"sourceContainer": "zz"}]}),
                "volumesFrom",
            ),
            (json!({"links": ["zz"]}), "links"),
        ] {
            let e = td(with_container(extra)).unwrap_err();
            assert!(e.message.contains(member), "{member}: {}", e.message);
        }
    }
}
