use super::*;
use serde_json::json;

fn provider(protection: &str, warmup: u32) -> CapacityProvider {
    serde_json::from_value(json!({
        "capacityProviderArn": "arn:aws:ecs:us-east-1:000000000000:capacity-provider/cp",
        "name": "cp", "status": "ACTIVE", "type": "EC2_AUTOSCALING", "tags": [],
        "autoScalingGroupProvider": {
            "autoScalingGroupArn": "hg",
            "managedScaling": {"status": "ENABLED", "targetCapacity": 100,
                "minimumScalingStepSize": 1, "maximumScalingStepSize": 10,
                "instanceWarmupPeriod": warmup},
            "managedTerminationProtection": protection
        }
    }))
    .unwrap()
}

fn group(desired: u32) -> HostGroup {
    serde_json::from_value(json!({
        "AutoScalingGroupName": "hg", "AutoScalingGroupARN": "arn:hg",
        "LaunchConfigurationName": "lc", "MinSize": 0, "MaxSize": 10,
        "DesiredCapacity": desired, "DefaultCooldown": 300, "HealthCheckGracePeriod": 0,
        "HealthCheckType": "EC2", "TerminationPolicies": ["Default"],
        "NewInstancesProtectedFromScaleIn": true, "AvailabilityZones": ["a"],
        "Cluster": "c", "Provider": "process", "CreatedTime": 0.0
    }))
    .unwrap()
}

fn host(id: &str, launched: f64, protected: bool) -> HostRecord {
    serde_json::from_value(json!({
        "InstanceId": id, "AutoScalingGroupName": "hg", "LifecycleState": "InService",
        "HealthStatus": "Healthy", "ProtectedFromScaleIn": protected,
        "LaunchConfigurationName": "lc", "InstanceType": "t3.small",
        "AvailabilityZone": "a", "LaunchedAt": launched
    }))
    .unwrap()
}

fn obs<'a>(
    hosts: &'a [HostRecord],
    per: &'a HashMap<String, u32>,
    waiting: &'a [(u64, u64)],
) -> Observed<'a> {
    Observed {
        hosts,
        tasks_per_host: per,
        waiting,
        host_size: (2048, 2048),
    }
}

#[test]
fn provisioning_tasks_scale_the_group_out() {
    let hosts = vec![host("i-1", 0.0, false)];
    let per: HashMap<String, u32> = [("i-1".to_owned(), 2)].into();
    // Four 1-vCPU tasks waiting on 2-vCPU hosts: two more hosts.
    let d = decide(
        &provider("DISABLED", 0),
        &group(1),
        obs(&hosts, &per, &[(1024, 512); 4]),
        1000.0,
    )
    .unwrap();
    assert_eq!((d.needed, d.hosts, d.desired), (3, 1, 3));
    assert_eq!(d.reservation, 300.0);
}

#[test]
fn empty_hosts_go_busy_ones_stay_and_are_protected() {
    let hosts = vec![
        host("i-1", 0.0, false),
        host("i-2", 0.0, true),
        host("i-3", 0.0, true),
    ];
    let per: HashMap<String, u32> = [("i-1".to_owned(), 1)].into();
    let d = decide(
        &provider("ENABLED", 0),
        &group(3),
        obs(&hosts, &per, &[]),
        1000.0,
    )
    .unwrap();
    assert_eq!(d.desired, 1);
    assert_eq!(
        d.protection,
        vec![
            ("i-1".to_owned(), true),
            ("i-2".to_owned(), false),
            ("i-3".to_owned(), false)
        ]
    );
}

#[test]
fn warming_hosts_hold_scale_in() {
    let hosts = vec![host("i-1", 0.0, false), host("i-2", 950.0, false)];
    let per: HashMap<String, u32> = [("i-1".to_owned(), 1)].into();
    let d = decide(
        &provider("DISABLED", 300),
        &group(2),
        obs(&hosts, &per, &[]),
        1000.0,
    )
    .unwrap();
    assert_eq!(d.desired, 2, "i-2 is still warming up");
    let d = decide(
        &provider("DISABLED", 300),
        &group(2),
        obs(&hosts, &per, &[]),
        1300.0,
    )
    .unwrap();
    assert_eq!(d.desired, 1);
}

#[test]
fn disabled_scaling_decides_nothing() {
    let mut p = provider("DISABLED", 0);
    if let Some(a) = p.auto_scaling_group_provider.as_mut() {
        a.managed_scaling = None;
    }
    let per = HashMap::new();
    assert!(decide(&p, &group(1), obs(&[], &per, &[]), 0.0).is_none());
}
