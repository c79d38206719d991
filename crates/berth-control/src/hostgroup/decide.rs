//! The host group controller's decision, as a pure function of what it read: which hosts to
//! launch, mark in service, take out of service (unhealthy or scale-in), drain, and destroy.
//!
//! Kept apart from the I/O so that every rule (the grace period, the drain bound, the
//! termination policies, protection) is unit-tested with plain data; the controller only
//! loads the records, calls [`decide`] and carries the steps out.

use berth_model::hostgroup::{HostGroup, HostRecord};

/// Auto Scaling's lifecycle states berth uses.
pub const PENDING: &str = "Pending";
/// The host's agent registered and answers.
pub const IN_SERVICE: &str = "InService";
/// Being drained and destroyed.
pub const TERMINATING: &str = "Terminating";
/// `HealthStatus` of a host that counts.
pub const HEALTHY: &str = "Healthy";
/// `HealthStatus` of a host being replaced.
pub const UNHEALTHY: &str = "Unhealthy";

/// How long a new host has to register when its group's grace period is 0 (Auto Scaling's
/// API default): a host needs some time to boot, whatever the health check waits for.
pub const DEFAULT_REGISTRATION_SECS: f64 = 300.0;

/// What the controller saw of one host besides its record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Its container instance (found by the `berth.host-id` attribute), if registered and
    /// not INACTIVE.
    pub container_instance_id: Option<String>,
    /// Whether that container instance's agent is connected.
    pub connected: bool,
    /// Whether that container instance is DRAINING.
    pub draining: bool,
    /// Service tasks still holding resources on it.
    pub service_tasks: usize,
    /// What the provider says: `Some(false)` when the host is gone.
    pub alive: Option<bool>,
}

/// Settings of the decision.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest a scale-in waits for a host's service tasks to move.
    pub drain_timeout: f64,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Start `count` hosts; `from` is the capacity before, for the activity's cause.
    Launch {
        /// How many.
        count: u32,
        /// Hosts in service or pending before the launch.
        from: u32,
    },
    /// The host's agent registered: it is in service.
    InService {
        /// The host.
        instance_id: String,
        /// Its container instance.
        container_instance_id: String,
    },
    /// Take the host out of service as unhealthy (it is then destroyed and replaced).
    Unhealthy {
        /// The host.
        instance_id: String,
        /// Why, in Auto Scaling's words (the activity's cause ends with it).
        why: String,
    },
    /// Scale-in: take the host out of service (drained, then destroyed).
    ScaleIn {
        /// The host.
        instance_id: String,
        /// Capacity before and after, for the cause.
        from: u32,
        /// Capacity after.
        to: u32,
    },
    /// Set the host's container instance DRAINING so its service tasks move.
    Drain {
        /// The host.
        instance_id: String,
    },
    /// Destroy the host, deregister its container instance, forget it.
    Destroy {
        /// The host.
        instance_id: String,
    },
    /// The group is being deleted and has no hosts left: delete it.
    DeleteGroup,
}

/// Decides what to do with `group` given its `hosts` and what was observed of each, at `now`.
pub fn decide(
    group: &HostGroup,
    hosts: &[(HostRecord, Observed)],
    now: f64,
    limits: Limits,
) -> Vec<Step> {
    let deleting = group.status.is_some();
    if deleting && hosts.is_empty() {
        return vec![Step::DeleteGroup];
    }
    let desired = if deleting { 0 } else { group.desired_capacity };
    let grace = if group.health_check_grace_period == 0 {
        DEFAULT_REGISTRATION_SECS
    } else {
        f64::from(group.health_check_grace_period)
    };
    let mut steps = Vec::new();
    let mut active: Vec<&HostRecord> = Vec::new();
    for (h, o) in hosts {
        if h.lifecycle_state == TERMINATING {
            let since = h.terminating_since.unwrap_or(now);
            let wait = h.health_status == HEALTHY
                && o.connected
                && o.service_tasks > 0
                && now - since < limits.drain_timeout;
            if wait {
                if !o.draining {
                    steps.push(Step::Drain {
                        instance_id: h.instance_id.clone(),
                    });
                }
            } else {
                steps.push(Step::Destroy {
                    instance_id: h.instance_id.clone(),
                });
            }
            continue;
        }
        if let Some(why) = unhealthy(h, o, now, grace) {
            steps.push(Step::Unhealthy {
                instance_id: h.instance_id.clone(),
                why,
            });
            continue;
        }
        if h.lifecycle_state == PENDING {
            if let Some(ci) = &o.container_instance_id {
                steps.push(Step::InService {
                    instance_id: h.instance_id.clone(),
                    container_instance_id: ci.clone(),
                });
            }
        }
        active.push(h);
    }
    let n = active.len() as u32;
    if n < desired {
        steps.push(Step::Launch {
            count: desired - n,
            from: n,
        });
    } else if n > desired {
        let mut candidates: Vec<&HostRecord> = active
            .into_iter()
            .filter(|h| deleting || !h.protected_from_scale_in)
            .collect();
        let policies = if deleting {
            Vec::new()
        } else {
            group.termination_policies.clone()
        };
        order_for_termination(
            &mut candidates,
            &policies,
            &group.launch_configuration_name,
            now,
        );
        for (i, h) in candidates.iter().take((n - desired) as usize).enumerate() {
            steps.push(Step::ScaleIn {
                instance_id: h.instance_id.clone(),
                from: n - i as u32,
                to: n - i as u32 - 1,
            });
        }
    }
    steps
}

/// Why a host that is not terminating must be replaced, if it must.
fn unhealthy(h: &HostRecord, o: &Observed, now: f64, grace: f64) -> Option<String> {
    if o.alive == Some(false) {
        return Some(
            "an instance was taken out of service in response to an EC2 health check \
             indicating it has been terminated or stopped."
                .into(),
        );
    }
    if h.lifecycle_state == PENDING {
        if o.container_instance_id.is_none() && now - h.launched_at > grace {
            return Some(format!(
                "an instance was taken out of service in response to a health check: its \
                 agent did not register within the {grace}-second grace period."
            ));
        }
        return None;
    }
    if o.container_instance_id.is_none() || !o.connected {
        return Some(
            "an instance was taken out of service in response to a health check: its \
             container instance's agent is disconnected."
                .into(),
        );
    }
    None
}

/// Sorts `hosts` so the first are the ones `policies` terminate first (`Default` when empty);
/// ties fall to the next policy, then to the instance id.
pub fn order_for_termination(
    hosts: &mut [&HostRecord],
    policies: &[String],
    current_lc: &str,
    now: f64,
) {
    let mut expanded: Vec<&str> = Vec::new();
    let default = ["OldestLaunchConfiguration", "ClosestToNextInstanceHour"];
    if policies.is_empty() {
        expanded.extend(default);
    }
    for p in policies {
        if p == "Default" {
            expanded.extend(default);
        } else {
            expanded.push(p);
        }
    }
    let to_next_hour = |h: &HostRecord| 3600.0 - (now - h.launched_at).rem_euclid(3600.0);
    hosts.sort_by(|a, b| {
        for p in &expanded {
            let o = match *p {
                "OldestInstance" => a.launched_at.total_cmp(&b.launched_at),
                "NewestInstance" => b.launched_at.total_cmp(&a.launched_at),
                "OldestLaunchConfiguration" => (a.launch_configuration_name == current_lc)
                    .cmp(&(b.launch_configuration_name == current_lc)),
                "ClosestToNextInstanceHour" => to_next_hour(a).total_cmp(&to_next_hour(b)),
                _ => std::cmp::Ordering::Equal,
            };
            if o.is_ne() {
                return o;
            }
        }
        a.instance_id.cmp(&b.instance_id)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(desired: u32) -> HostGroup {
        HostGroup {
            auto_scaling_group_name: "g".into(),
            auto_scaling_group_arn: "arn".into(),
            launch_configuration_name: "lc".into(),
            min_size: 0,
            max_size: 10,
            desired_capacity: desired,
            default_cooldown: 300,
            health_check_grace_period: 60,
            health_check_type: "EC2".into(),
            termination_policies: vec!["Default".into()],
            new_instances_protected_from_scale_in: false,
            availability_zones: vec![],
            cluster: "default".into(),
            provider: "process".into(),
            managed_by: None,
            status: None,
            tags: vec![],
            created_time: 0.0,
        }
    }

    fn host(id: &str, state: &str, launched_at: f64) -> HostRecord {
        HostRecord {
            instance_id: id.into(),
            auto_scaling_group_name: "g".into(),
            lifecycle_state: state.into(),
            health_status: HEALTHY.into(),
            protected_from_scale_in: false,
            launch_configuration_name: "lc".into(),
            instance_type: "t3.small".into(),
            availability_zone: "us-east-1a".into(),
            launched_at,
            provider_handle: Some("h".into()),
            container_instance_id: None,
            activity_id: None,
            terminating_since: None,
        }
    }

    fn up() -> Observed {
        Observed {
            container_instance_id: Some("ci".into()),
            connected: true,
            alive: Some(true),
            ..Default::default()
        }
    }

    const LIMITS: Limits = Limits {
        drain_timeout: 60.0,
    };

    #[test]
    fn launches_up_to_desired() {
        let hosts = vec![(host("i-1", IN_SERVICE, 0.0), up())];
        assert_eq!(
            decide(&group(3), &hosts, 10.0, LIMITS),
            vec![Step::Launch { count: 2, from: 1 }]
        );
        assert!(decide(&group(1), &hosts, 10.0, LIMITS).is_empty());
    }

    #[test]
    fn a_registered_pending_host_goes_in_service() {
        let hosts = vec![(host("i-1", PENDING, 0.0), up())];
        assert_eq!(
            decide(&group(1), &hosts, 10.0, LIMITS),
            vec![Step::InService {
                instance_id: "i-1".into(),
                container_instance_id: "ci".into()
            }]
        );
    }

    #[test]
    fn unhealthy_hosts_are_replaced() {
        let pending = Observed {
            alive: Some(true),
            ..Default::default()
        };
        // Within the grace period a pending host is left alone; past it, it is replaced.
        let hosts = vec![(host("i-1", PENDING, 0.0), pending.clone())];
        assert!(decide(&group(1), &hosts, 59.0, LIMITS).is_empty());
        let steps = decide(&group(1), &hosts, 61.0, LIMITS);
        assert!(matches!(&steps[0], Step::Unhealthy { instance_id, .. } if instance_id == "i-1"));
        assert_eq!(steps[1], Step::Launch { count: 1, from: 0 });
        // Disconnected, or gone as the provider says.
        let mut gone = up();
        gone.connected = false;
        let hosts = vec![(host("i-1", IN_SERVICE, 0.0), gone)];
        assert!(matches!(
            decide(&group(1), &hosts, 5.0, LIMITS)[0],
            Step::Unhealthy { .. }
        ));
        let mut dead = up();
        dead.alive = Some(false);
        let hosts = vec![(host("i-1", IN_SERVICE, 0.0), dead)];
        let steps = decide(&group(1), &hosts, 5.0, LIMITS);
        assert!(matches!(&steps[0], Step::Unhealthy { why, .. } if why.contains("terminated")));
    }

    #[test]
    fn terminating_hosts_drain_service_tasks_within_the_bound() {
        let mut h = host("i-1", TERMINATING, 0.0);
        h.terminating_since = Some(100.0);
        let mut o = up();
        o.service_tasks = 2;
        let hosts = vec![(h.clone(), o.clone())];
        assert_eq!(
            decide(&group(0), &hosts, 110.0, LIMITS),
            vec![Step::Drain {
                instance_id: "i-1".into()
            }]
        );
        o.draining = true;
        let hosts = vec![(h.clone(), o.clone())];
        assert!(decide(&group(0), &hosts, 110.0, LIMITS).is_empty());
        // Past the bound, or once empty, it is destroyed.
        assert_eq!(
            decide(&group(0), &hosts, 161.0, LIMITS),
            vec![Step::Destroy {
                instance_id: "i-1".into()
            }]
        );
        o.service_tasks = 0;
        let hosts = vec![(h, o)];
        assert_eq!(
            decide(&group(0), &hosts, 110.0, LIMITS),
            vec![Step::Destroy {
                instance_id: "i-1".into()
            }]
        );
    }

    #[test]
    fn scale_in_never_picks_protected_hosts() {
        let mut a = host("i-a", IN_SERVICE, 0.0);
        a.protected_from_scale_in = true;
        let b = host("i-b", IN_SERVICE, 10.0);
        let hosts = vec![(a, up()), (b, up())];
        let steps = decide(&group(0), &hosts, 20.0, LIMITS);
        assert_eq!(
            steps,
            vec![Step::ScaleIn {
                instance_id: "i-b".into(),
                from: 2,
                to: 1
            }]
        );
    }

    #[test]
    fn deleting_terminates_everything_then_deletes() {
        let mut g = group(2);
        g.status = Some("Delete in progress".into());
        let mut a = host("i-a", IN_SERVICE, 0.0);
        a.protected_from_scale_in = true;
        let steps = decide(&g, &[(a, up())], 5.0, LIMITS);
        assert!(matches!(&steps[0], Step::ScaleIn { instance_id, .. } if instance_id == "i-a"));
        assert_eq!(decide(&g, &[], 5.0, LIMITS), vec![Step::DeleteGroup]);
    }

    #[test]
    fn termination_policies_order_hosts() {
        let old = host("i-old", IN_SERVICE, 0.0);
        let mid = host("i-mid", IN_SERVICE, 100.0);
        let mut new = host("i-new", IN_SERVICE, 200.0);
        new.launch_configuration_name = "previous".into();
        let order = |policies: &[&str]| {
            let mut v = vec![&mid, &new, &old];
            let p: Vec<String> = policies.iter().map(|s| s.to_string()).collect();
            order_for_termination(&mut v, &p, "lc", 300.0);
            v.iter().map(|h| h.instance_id.as_str()).collect::<Vec<_>>()
        };
        assert_eq!(order(&["OldestInstance"]), ["i-old", "i-mid", "i-new"]);
        assert_eq!(order(&["NewestInstance"]), ["i-new", "i-mid", "i-old"]);
        assert_eq!(
            order(&["OldestLaunchConfiguration", "OldestInstance"]),
            ["i-new", "i-old", "i-mid"]
        );
        // Default: the old launch configuration first, then closest to the next hour (the
        // oldest here: 300 s in, against 200 s and 100 s).
        assert_eq!(order(&["Default"]), ["i-new", "i-old", "i-mid"]);
        assert_eq!(order(&[]), ["i-new", "i-old", "i-mid"]);
    }
}
