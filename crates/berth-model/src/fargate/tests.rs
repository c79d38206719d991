use super::*;
use serde_json::json;

/// Every valid pair, written out from the ECS developer guide's table.
fn valid_pairs() -> Vec<(u32, u32)> {
    let mut out = vec![(256, 512), (256, 1024), (256, 2048)];
    let gb = |g: u32| g * 1024;
    out.extend((1..=4).map(|g| (512, gb(g))));
    out.extend((2..=8).map(|g| (1024, gb(g))));
    out.extend((4..=16).map(|g| (2048, gb(g))));
    out.extend((8..=30).map(|g| (4096, gb(g))));
    out.extend((16..=60).step_by(4).map(|g| (8192, gb(g))));
    out.extend((32..=120).step_by(8).map(|g| (16384, gb(g))));
    out
}

#[test]
fn every_valid_combination_is_accepted_and_nothing_else() {
    let valid = valid_pairs();
    assert_eq!(valid.len(), 3 + 4 + 7 + 13 + 23 + 12 + 12);
    for &(c, m) in &valid {
        assert!(check_size(Some(c), Some(m)).is_ok(), "{c}/{m}");
    }
    // Every other pair on a 512 MiB grid, and the odd cpu values, is refused.
    for c in [128, 256, 300, 512, 1024, 2048, 4096, 8192, 16384, 32768] {
        for m in (0..=130).map(|i| i * 512) {
            if !valid.contains(&(c, m)) {
                assert!(!size_ok(c, m), "{c}/{m}");
            }
        }
    }
}

#[test]
fn invalid_sizes_get_ecs_texts() {
    let e = check_size(Some(512), Some(256)).unwrap_err();
    assert_eq!(e.code, ErrorCode::ClientException);
    assert_eq!(
        e.message,
        "No Fargate configuration exists for given values: 512 CPU, 256 memory. See the Amazon ECS documentation for the valid values."
    );
    // Edges: one step past each row's end, one below its start, off the 4 GB / 8 GB grid.
    for (c, m) in [
        (256, 3072),
        (512, 5120),
        (1024, 1024),
        (4096, 31744),
        (8192, 18432),
        (16384, 126_976),
        (16384, 36864),
    ] {
        assert!(check_size(Some(c), Some(m))
            .unwrap_err()
            .message
            .starts_with(&format!(
                "No Fargate configuration exists for given values: {c} CPU, {m} memory."
            )));
    }
    assert_eq!(
        check_size(None, Some(512)).unwrap_err().message,
        "Fargate requires that 'cpu' be defined at the task level."
    );
    assert_eq!(
        check_size(Some(256), None).unwrap_err().message,
        "Fargate requires that 'memory' be defined at the task level."
    );
}

#[test]
fn platform_versions_as_ecs_takes_them() {
    assert_eq!(platform_version(None, false).unwrap(), None);
    assert_eq!(
        platform_version(None, true).unwrap().as_deref(),
        Some("1.4.0")
    );
    assert_eq!(
        platform_version(Some("LATEST"), true).unwrap().as_deref(),
        Some("1.4.0")
    );
    assert_eq!(
        platform_version(Some("1.3.0"), true).unwrap().as_deref(),
        Some("1.3.0")
    );
    let e = platform_version(Some("1.0.0"), true).unwrap_err();
    assert_eq!(e.code, ErrorCode::PlatformUnknownException);
    let e = platform_version(Some("LATEST"), false).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParameterException);
    assert_eq!(
        e.message,
        "The platform version must be null when specifying an EC2 launch type."
    );
}

#[test]
fn launch_type_fargate_is_the_fargate_strategy() {
    let s = launch_type_strategy("FARGATE").unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].capacity_provider, "FARGATE");
    assert_eq!(s[0].weight, 1);
    assert!(launch_type_strategy("EC2").is_none());
}

fn instance(group: Option<&str>) -> ContainerInstance {
    let mut attrs = vec![json!({"name": "ecs.os-type", "value": "linux"})];
    if let Some(g) = group {
        attrs.push(json!({"name": ATTR_HOST_GROUP, "value": g}));
    }
    serde_json::from_value(json!({
        "id": "abc", "cluster": "default", "ec2InstanceId": "i-1", "status": "ACTIVE",
        "registered": {"cpu": 1024, "memory": 1024, "ports": [], "portsUdp": []},
        "attributes": attrs, "registeredAt": 1.0,
    }))
    .unwrap()
}

#[test]
fn managed_instances_are_told_by_their_group() {
    let g = managed_group_name("FARGATE", "default").unwrap();
    assert!(is_managed_instance(&instance(Some(&g))));
    let spot = managed_group_name("FARGATE_SPOT", "default").unwrap();
    assert!(is_managed_instance(&instance(Some(&spot))));
    assert!(!is_managed_instance(&instance(Some("my-asg"))));
    assert!(!is_managed_instance(&instance(None)));
    assert_eq!(managed_group_name("mine", "default"), None);
}

fn host(id: &str, free: (u64, u64), tasks: usize, idle_since: Option<f64>) -> ManagedHost {
    ManagedHost {
        id: id.into(),
        free,
        tasks,
        idle_since,
        protected: true,
    }
}

const SIZE: (u64, u64) = (4096, 8192);

#[test]
fn sizing_grows_for_waiting_tasks() {
    // No hosts, three tasks of 2 vCPU: two fit a host, so two hosts.
    let s = size_group(&[], &[(2048, 4096); 3], SIZE, 10, 100.0, 60.0);
    assert_eq!(s.desired, 2);
    // A host with room takes the task: no growth.
    let h = [host("i-1", (2048, 4096), 1, None)];
    let s = size_group(&h, &[(1024, 2048)], SIZE, 10, 100.0, 60.0);
    assert_eq!(s.desired, 1);
    // Capped by max.
    let s = size_group(&[], &[(4096, 8192); 5], SIZE, 3, 100.0, 60.0);
    assert_eq!(s.desired, 3);
}

#[test]
fn sizing_releases_only_hosts_idle_past_the_idle_time() {
    let h = [
        host("busy", (0, 0), 2, None),
        host("idle-long", SIZE, 0, Some(10.0)),
        host("idle-short", SIZE, 0, Some(90.0)),
    ];
    let s = size_group(&h, &[], SIZE, 10, 100.0, 60.0);
    assert_eq!(s.desired, 2);
    assert_eq!(s.release, vec!["idle-long".to_owned()]);
    assert!(s.protect.is_empty());
    // A waiting task keeps an idle host (it lands there) instead of a new one.
    let s = size_group(&h, &[(1024, 1024)], SIZE, 10, 100.0, 60.0);
    assert_eq!(s.desired, 2, "{s:?}");
}

#[test]
fn sizing_protects_hosts_that_hold_tasks() {
    let mut h = host("i-1", (0, 0), 1, None);
    h.protected = false;
    let s = size_group(&[h], &[], SIZE, 10, 100.0, 60.0);
    assert_eq!(s.protect, vec!["i-1".to_owned()]);
    assert_eq!(s.desired, 1);
}

fn td(v: serde_json::Value) -> TaskDefinition {
    serde_json::from_value(v).unwrap()
}

#[test]
fn host_only_members_are_refused_for_fargate() {
    let base = |c: serde_json::Value| {
        td(
            json!({"family": "f", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
            "containerDefinitions": [c]}),
        )
    };
    let ok = base(json!({"name": "a", "image": "i"}));
    assert!(check_fargate_members(&ok).is_ok());
    let e = check_fargate_members(&base(
        json!({"name": "a", "image": "i", "privileged": true}),
    ))
    .unwrap_err();
    assert_eq!(
        e.message,
        "Tasks using the Fargate launch type do not support privileged containers."
    );
    let e = check_fargate_members(&base(json!({"name": "a", "image": "i",
        "linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}})))
    .unwrap_err();
    assert!(
        e.message.ends_with("do not support devices."),
        "{}",
        e.message
    );
    let mut v = base(json!({"name": "a", "image": "i"}));
    v.ipc_mode = Some("host".into());
    assert!(check_fargate_members(&v)
        .unwrap_err()
        .message
        .contains("ipcMode"));
    let hostvol = td(json!({"family": "f", "networkMode": "awsvpc",
        "volumes": [{"name": "v", "host": {"sourcePath": "/etc"}}],
        "containerDefinitions": [{"name": "a", "image": "i"}]}));
    assert_eq!(
        check_fargate_members(&hostvol).unwrap_err().message,
        "Fargate compatible task definitions do not support sourcePath"
    );
}

#[test]
fn ephemeral_storage_bounds() {
    let with = |n: i64| {
        td(json!({"family": "f", "ephemeralStorage": {"sizeInGiB": n},
            "containerDefinitions": [{"name": "a", "image": "i"}]}))
    };
    assert_eq!(ephemeral_storage(&with(21)).unwrap(), Some(21));
    assert_eq!(ephemeral_storage(&with(200)).unwrap(), Some(200));
    assert!(ephemeral_storage(&with(20)).is_err());
    assert!(ephemeral_storage(&with(201)).is_err());
}
