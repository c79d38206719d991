//! Where each record lives in the store. One function per record kind, so the layout is
//! written down once; revisions are zero-padded so that keys sort in revision order.
//!
//! Names and ids become key segments: they are validated to ECS's formats where they enter
//! (`names.rs`, the actions' parsers), and the builders here check in debug builds that a
//! segment holds no `/`, which would nest one record under another's prefix.

/// A key segment, checked (debug builds) to hold no `/`.
fn seg(s: &str) -> &str {
    debug_assert!(!s.contains('/'), "a store key segment holds a '/': {s:?}");
    s
}

/// A cluster: `clusters/NAME`.
pub fn cluster(name: &str) -> String {
    format!("clusters/{}", seg(name))
}
/// The prefix of every cluster.
pub const CLUSTERS: &str = "clusters/";

/// The family record holds the last revision ever issued, so numbers are never reused.
pub fn family(family: &str) -> String {
    format!("families/{}", seg(family))
}

/// A task definition revision: `taskdefs/FAMILY/REV`, the revision zero-padded to ten digits.
pub fn taskdef(family: &str, revision: u32) -> String {
    format!("taskdefs/{}/{:010}", seg(family), revision)
}
/// The prefix of a family's revisions (in revision order).
pub fn taskdefs_of(family: &str) -> String {
    format!("taskdefs/{}/", seg(family))
}
/// The prefix of every task definition.
pub const TASKDEFS: &str = "taskdefs/";

/// Splits a `taskdefs/FAMILY/REV` key.
pub fn parse_taskdef(key: &str) -> Option<(&str, u32)> {
    let rest = key.strip_prefix(TASKDEFS)?;
    let (family, rev) = rest.split_once('/')?;
    Some((family, rev.parse().ok()?))
}

/// A container instance: `instances/CLUSTER/ID`.
pub fn instance(cluster: &str, id: &str) -> String {
    format!("instances/{}/{}", seg(cluster), seg(id))
}

/// The SHA-256 of a container instance's agent credential: `instcreds/CLUSTER/ID` (its own key,
/// written and deleted with the instance, so no instance record shape carries a secret).
pub fn instance_credential(cluster: &str, id: &str) -> String {
    format!("instcreds/{}/{}", seg(cluster), seg(id))
}

/// A cluster's join-token rotations: `jointokens/CLUSTER`.
pub fn join_tokens(cluster: &str) -> String {
    format!("jointokens/{}", seg(cluster))
}

/// A task: `tasks/CLUSTER/ID`.
pub fn task(cluster: &str, id: &str) -> String {
    format!("tasks/{}/{}", seg(cluster), seg(id))
}
/// The prefix of every task.
pub const TASKS: &str = "tasks/";

/// The assignment index: one key per task placed on an instance, written in the same
/// transaction as the task, so an agent's poll reads only its own tasks.
pub fn assignment(instance_id: &str, task_id: &str) -> String {
    format!("assign/{}/{}", seg(instance_id), seg(task_id))
}
/// The prefix of one instance's assignments.
pub fn assignments_of(instance_id: &str) -> String {
    format!("assign/{}/", seg(instance_id))
}
/// The prefix of every assignment.
pub const ASSIGNMENTS: &str = "assign/";

/// RunTask's idempotency tokens.
pub fn client_token(cluster: &str, token: &str) -> String {
    format!("tokens/{cluster}/{token}")
}

/// A service: `services/CLUSTER/NAME`.
pub fn service(cluster: &str, name: &str) -> String {
    format!("services/{}/{}", seg(cluster), seg(name))
}
/// The prefix of every service.
pub const SERVICES: &str = "services/";

/// The service-task index: one key per task of a service (`group` `service:NAME`), written
/// in the same transaction as the task and removed with it, so a service's controller reads
/// its own tasks and not the cluster's.
pub fn service_task(cluster: &str, service: &str, task_id: &str) -> String {
    format!(
        "svctasks/{}/{}/{}",
        seg(cluster),
        seg(service),
        seg(task_id)
    )
}
/// The prefix of one service's task index.
pub fn service_tasks_of(cluster: &str, service: &str) -> String {
    format!("svctasks/{}/{}/", seg(cluster), seg(service))
}
/// The prefix of every service-task index entry.
pub const SERVICE_TASKS: &str = "svctasks/";

/// The schema version of the stored records (see berth-control's `migrate`).
pub const SCHEMA_VERSION: &str = "meta/schema";

/// The prefix of a cluster's services.
pub fn services_of(cluster: &str) -> String {
    format!("services/{}/", seg(cluster))
}
/// The prefix of a cluster's container instances.
pub fn instances_of(cluster: &str) -> String {
    format!("instances/{}/", seg(cluster))
}
/// The prefix of a cluster's tasks.
pub fn tasks_of(cluster: &str) -> String {
    format!("tasks/{}/", seg(cluster))
}

// ---------------------------------------------------------------------------------------------
// Elastic Load Balancing (v2). Keys come from the ARN's resource part after its type, which
// holds the names and ids that make it unique (`app/NAME/ID` for a load balancer, `NAME/ID` for
// a target group), so a load balancer's listeners and a listener's rules share a key prefix.

/// Everything ELB stores lives under this prefix.
pub const ELB: &str = "elb/";
/// Load balancers: `elb/lb/app/NAME/ID`.
pub const ELB_LOAD_BALANCERS: &str = "elb/lb/";
/// Target groups: `elb/tg/NAME/ID`.
pub const ELB_TARGET_GROUPS: &str = "elb/tg/";
/// Listeners, under their load balancer: `elb/listener/app/NAME/LB_ID/ID`.
pub const ELB_LISTENERS: &str = "elb/listener/";
/// Listener rules, under their listener.
pub const ELB_RULES: &str = "elb/rule/";
/// Target registrations, under their target group.
pub const ELB_TARGETS: &str = "elb/target/";
/// Name indexes (`elb/name/lb/NAME`, `elb/name/tg/NAME`) hold the ARN; they keep names unique.
pub const ELB_NAMES: &str = "elb/name/";
/// Port index (`elb/port/PORT`) holds the listener's ARN: every listener binds on one host.
pub const ELB_PORTS: &str = "elb/port/";
/// Priority index (`elb/prio/LISTENER/PRIORITY`) holds the rule's ARN.
pub const ELB_PRIORITIES: &str = "elb/prio/";

/// The part of an ELB ARN after `TYPE/` (`loadbalancer/`, `targetgroup/`, ...), or the whole
/// string when it is not an ELB ARN of that type.
fn elb_resource<'a>(arn: &'a str, kind: &str) -> &'a str {
    arn.rsplit_once(':')
        .and_then(|(_, res)| res.strip_prefix(kind)?.strip_prefix('/'))
        .unwrap_or(arn)
}

/// A load balancer, by its ARN.
pub fn elb_load_balancer(arn: &str) -> String {
    format!("{ELB_LOAD_BALANCERS}{}", elb_resource(arn, "loadbalancer"))
}
/// A target group, by its ARN.
pub fn elb_target_group(arn: &str) -> String {
    format!("{ELB_TARGET_GROUPS}{}", elb_resource(arn, "targetgroup"))
}
/// A listener, by its ARN.
pub fn elb_listener(arn: &str) -> String {
    format!("{ELB_LISTENERS}{}", elb_resource(arn, "listener"))
}
/// The prefix of a load balancer's listeners.
pub fn elb_listeners_of(lb_arn: &str) -> String {
    format!("{ELB_LISTENERS}{}/", elb_resource(lb_arn, "loadbalancer"))
}
/// A listener rule, by its ARN.
pub fn elb_rule(arn: &str) -> String {
    format!("{ELB_RULES}{}", elb_resource(arn, "listener-rule"))
}
/// The prefix of a listener's rules (also of a load balancer's, given its ARN's resource).
pub fn elb_rules_of(listener_arn: &str) -> String {
    format!("{ELB_RULES}{}/", elb_resource(listener_arn, "listener"))
}
/// The prefix of all rules of a load balancer.
pub fn elb_rules_of_lb(lb_arn: &str) -> String {
    format!("{ELB_RULES}{}/", elb_resource(lb_arn, "loadbalancer"))
}
/// A target registration: the target group's prefix, then `ID:PORT` (port zero-padded).
pub fn elb_target(tg_arn: &str, target_id: &str, port: u16) -> String {
    format!("{}{target_id}:{port:05}", elb_targets_of(tg_arn))
}
/// The prefix of a target group's registrations.
pub fn elb_targets_of(tg_arn: &str) -> String {
    format!("{ELB_TARGETS}{}/", elb_resource(tg_arn, "targetgroup"))
}
/// The name index of a load balancer.
pub fn elb_lb_name(name: &str) -> String {
    format!("{ELB_NAMES}lb/{name}")
}
/// The name index of a target group.
pub fn elb_tg_name(name: &str) -> String {
    format!("{ELB_NAMES}tg/{name}")
}
/// The port index of a listener.
pub fn elb_port(port: u16) -> String {
    format!("{ELB_PORTS}{port:05}")
}
/// The priority index of a listener's rule.
pub fn elb_priority(listener_arn: &str, priority: u32) -> String {
    format!(
        "{ELB_PRIORITIES}{}/{priority:05}",
        elb_resource(listener_arn, "listener")
    )
}

// ---------------------------------------------------------------------------------------------
// Application Auto Scaling. A resource id (`service/CLUSTER/SERVICE`) is stored with its `/`
// replaced by `:` (ECS names never hold `:`), so one target's records are one key segment and
// `service/c/s`'s prefix never matches `service/c/s2`'s records.

/// Everything Application Auto Scaling stores lives under this prefix.
pub const AUTOSCALING: &str = "aas/";
/// Scalable targets.
pub const AAS_TARGETS: &str = "aas/target/";
/// Scaling policies, under their target.
pub const AAS_POLICIES: &str = "aas/policy/";
/// Scheduled actions, under their target.
pub const AAS_SCHEDULED: &str = "aas/scheduled/";
/// Scaling activities, under their target.
pub const AAS_ACTIVITIES: &str = "aas/activity/";
/// Metric alarms, by name.
pub const AAS_ALARMS: &str = "aas/alarm/";
/// Scalable targets' tags.
pub const AAS_TAGS: &str = "aas/tags/";

/// A resource id as one key segment (see above).
pub fn aas_resource_segment(resource_id: &str) -> String {
    resource_id.replace('/', ":")
}
/// A scalable target, by resource id.
pub fn aas_target(resource_id: &str) -> String {
    format!("{AAS_TARGETS}{}", aas_resource_segment(resource_id))
}
/// A scaling policy, by target and name.
pub fn aas_policy(resource_id: &str, policy_name: &str) -> String {
    format!("{}{policy_name}", aas_policies_of(resource_id))
}
/// The prefix of a target's scaling policies.
pub fn aas_policies_of(resource_id: &str) -> String {
    format!("{AAS_POLICIES}{}/", aas_resource_segment(resource_id))
}
/// A scheduled action, by target and name.
pub fn aas_scheduled(resource_id: &str, name: &str) -> String {
    format!("{}{name}", aas_scheduled_of(resource_id))
}
/// The prefix of a target's scheduled actions.
pub fn aas_scheduled_of(resource_id: &str) -> String {
    format!("{AAS_SCHEDULED}{}/", aas_resource_segment(resource_id))
}
/// Keys sort by start time (microseconds, zero-padded), then id.
pub fn aas_activity(resource_id: &str, start_time: f64, activity_id: &str) -> String {
    let micros = (start_time.max(0.0) * 1e6) as u64;
    format!(
        "{}{micros:020}/{activity_id}",
        aas_activities_of(resource_id)
    )
}
/// The prefix of a target's scaling activities (in start-time order).
pub fn aas_activities_of(resource_id: &str) -> String {
    format!("{AAS_ACTIVITIES}{}/", aas_resource_segment(resource_id))
}
/// A metric alarm, by name.
pub fn aas_alarm(name: &str) -> String {
    format!("{AAS_ALARMS}{name}")
}
/// A scalable target's tags (a JSON object of key to value), beside the target record.
pub fn aas_tags(resource_id: &str) -> String {
    format!("{AAS_TAGS}{}", aas_resource_segment(resource_id))
}

// ---------------------------------------------------------------------------------------------
// Host groups (the Auto Scaling Group analogue; see `hostgroup`). Names are validated before
// they become keys (Auto Scaling names hold no `/`).

/// A launch configuration, by name.
pub fn hg_launch_config(name: &str) -> String {
    format!("{HG_LAUNCH_CONFIGS}{name}")
}
/// The prefix of every launch configuration.
pub const HG_LAUNCH_CONFIGS: &str = "hostgroups/lc/";
/// A host group, by name.
pub fn host_group(name: &str) -> String {
    format!("{HOST_GROUPS}{name}")
}
/// The prefix of every host group.
pub const HOST_GROUPS: &str = "hostgroups/group/";
/// One host of a group: `hostgroups/host/GROUP/INSTANCE_ID`.
pub fn hg_host(group: &str, instance_id: &str) -> String {
    format!("{}{instance_id}", hg_hosts_of(group))
}
/// The prefix of one group's hosts.
pub fn hg_hosts_of(group: &str) -> String {
    format!("{HG_HOSTS}{group}/")
}
/// The prefix of every host of every group.
pub const HG_HOSTS: &str = "hostgroups/host/";
/// A scaling activity of a group; keys sort by start time (microseconds), then id.
pub fn hg_activity(group: &str, start_time: f64, activity_id: &str) -> String {
    let micros = (start_time.max(0.0) * 1e6) as u64;
    format!("{}{micros:020}/{activity_id}", hg_activities_of(group))
}
/// The prefix of one group's scaling activities.
pub fn hg_activities_of(group: &str) -> String {
    format!("hostgroups/activity/{group}/")
}

/// A capacity provider made by CreateCapacityProvider, by name (`FARGATE` and `FARGATE_SPOT`
/// are berth's own and are not stored).
pub fn capacity_provider(name: &str) -> String {
    format!("{CAPACITY_PROVIDERS}{name}")
}
/// The prefix of every stored capacity provider.
pub const CAPACITY_PROVIDERS: &str = "capacityproviders/";

/// The prefix of every EC2 record (VPCs, subnets, security groups, task addresses).
pub const EC2: &str = "ec2/";
/// The prefix of every VPC.
pub const EC2_VPCS: &str = "ec2/vpc/";
/// The prefix of every subnet.
pub const EC2_SUBNETS: &str = "ec2/subnet/";
/// The prefix of every security group.
pub const EC2_SECURITY_GROUPS: &str = "ec2/sg/";
/// The default VPC's id, written with it at start-up (so it is made once).
pub const EC2_DEFAULT_VPC: &str = "ec2/default-vpc";
/// A VPC: `ec2/vpc/ID`.
pub fn ec2_vpc(id: &str) -> String {
    format!("{EC2_VPCS}{id}")
}
/// A subnet: `ec2/subnet/ID`.
pub fn ec2_subnet(id: &str) -> String {
    format!("{EC2_SUBNETS}{id}")
}
/// A security group: `ec2/sg/ID`.
pub fn ec2_security_group(id: &str) -> String {
    format!("{EC2_SECURITY_GROUPS}{id}")
}
/// An address given to a task in a subnet (its value: the task's key), written in the same
/// transaction as the task so no two tasks share one: `ec2/ip/SUBNET/IP`.
pub fn ec2_address(subnet_id: &str, ip: &str) -> String {
    format!("{}{ip}", ec2_addresses_of(subnet_id))
}
/// The prefix of the addresses given in one subnet.
pub fn ec2_addresses_of(subnet_id: &str) -> String {
    format!("{EC2_ADDRESSES}{subnet_id}/")
}
/// The prefix of every address given to a task.
pub const EC2_ADDRESSES: &str = "ec2/ip/";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taskdef_keys_sort_by_revision_and_parse_back() {
        let (a, b) = (taskdef("web", 9), taskdef("web", 10));
        assert!(a < b);
        assert_eq!(parse_taskdef(&b), Some(("web", 10)));
        assert!(a.starts_with(&taskdefs_of("web")));
        assert!(!taskdef("web2", 1).starts_with(&taskdefs_of("web")));
    }

    #[test]
    fn elb_keys_nest_by_arn() {
        let lb = "arn:aws:elasticloadbalancing:eu-west-1:000000000000:loadbalancer/app/web/0123456789abcdef";
        let l = "arn:aws:elasticloadbalancing:eu-west-1:000000000000:listener/app/web/0123456789abcdef/fedcba9876543210";
        let r = "arn:aws:elasticloadbalancing:eu-west-1:000000000000:listener-rule/app/web/0123456789abcdef/fedcba9876543210/00112233445566aa";
        let tg =
            "arn:aws:elasticloadbalancing:eu-west-1:000000000000:targetgroup/api/0011223344556677";
        assert_eq!(elb_load_balancer(lb), "elb/lb/app/web/0123456789abcdef");
        assert!(elb_listener(l).starts_with(&elb_listeners_of(lb)));
        assert!(elb_rule(r).starts_with(&elb_rules_of(l)));
        assert!(elb_rule(r).starts_with(&elb_rules_of_lb(lb)));
        assert!(elb_target(tg, "10.0.0.1", 80).starts_with(&elb_targets_of(tg)));
        assert_eq!(elb_target_group(tg), "elb/tg/api/0011223344556677");
        for k in [
            elb_load_balancer(lb),
            elb_listener(l),
            elb_rule(r),
            elb_target_group(tg),
        ] {
            assert!(k.starts_with(ELB));
        }
    }

    #[test]
    fn aas_keys_do_not_collide_and_sort_by_time() {
        assert!(!aas_policy("service/c/s2", "p").starts_with(&aas_policies_of("service/c/s")));
        assert!(aas_policy("service/c/s", "a/b").starts_with(&aas_policies_of("service/c/s")));
        let (a, b) = (
            aas_activity("service/c/s", 9.5, "z"),
            aas_activity("service/c/s", 10.0, "a"),
        );
        assert!(a < b && a.starts_with(&aas_activities_of("service/c/s")));
        assert_eq!(aas_target("service/c/s"), "aas/target/service:c:s");
        for k in [
            aas_target("x"),
            aas_scheduled("x", "n"),
            aas_alarm("n"),
            aas_tags("x"),
        ] {
            assert!(k.starts_with(AUTOSCALING));
        }
    }
}
