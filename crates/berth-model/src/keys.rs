//! Where each record lives in the store. One function per record kind, so the layout is
//! written down once; revisions are zero-padded so that keys sort in revision order.

pub fn cluster(name: &str) -> String {
    format!("clusters/{name}")
}
pub const CLUSTERS: &str = "clusters/";

/// The family record holds the last revision ever issued, so numbers are never reused.
pub fn family(family: &str) -> String {
    format!("families/{family}")
}

pub fn taskdef(family: &str, revision: u32) -> String {
    format!("taskdefs/{family}/{revision:010}")
}
pub fn taskdefs_of(family: &str) -> String {
    format!("taskdefs/{family}/")
}
pub const TASKDEFS: &str = "taskdefs/";

/// Splits a `taskdefs/FAMILY/REV` key.
pub fn parse_taskdef(key: &str) -> Option<(&str, u32)> {
    let rest = key.strip_prefix(TASKDEFS)?;
    let (family, rev) = rest.split_once('/')?;
    Some((family, rev.parse().ok()?))
}

pub fn instance(cluster: &str, id: &str) -> String {
    format!("instances/{cluster}/{id}")
}

pub fn task(cluster: &str, id: &str) -> String {
    format!("tasks/{cluster}/{id}")
}

/// The assignment index: one key per task placed on an instance, written in the same
/// transaction as the task, so an agent's poll reads only its own tasks.
pub fn assignment(instance_id: &str, task_id: &str) -> String {
    format!("assign/{instance_id}/{task_id}")
}
pub fn assignments_of(instance_id: &str) -> String {
    format!("assign/{instance_id}/")
}
pub const ASSIGNMENTS: &str = "assign/";

/// RunTask's idempotency tokens.
pub fn client_token(cluster: &str, token: &str) -> String {
    format!("tokens/{cluster}/{token}")
}

pub fn service(cluster: &str, name: &str) -> String {
    format!("services/{cluster}/{name}")
}
pub const SERVICES: &str = "services/";

pub fn services_of(cluster: &str) -> String {
    format!("services/{cluster}/")
}
pub fn instances_of(cluster: &str) -> String {
    format!("instances/{cluster}/")
}
pub fn tasks_of(cluster: &str) -> String {
    format!("tasks/{cluster}/")
}

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
}
