//! Authorization at the edge: after a request is authenticated, the caller's IAM policies
//! decide whether it may perform `<service prefix>:<Action>` on the resources it names.
//!
//! The root key (berth's own, from the data dir) may do everything and costs nothing here; a
//! key IAM issued to a user is decided by `berth_iam::evaluate` over the user's policies,
//! which the control layer loads. The resources are the ARNs an ECS request names where that
//! is cheap to read from its body (`cluster`, `clusters`, `clusterName`, `service`,
//! `services`, `task`, `tasks`); every other request is on `*`.

use berth_iam::{evaluate, Decision, RequestContext};
use berth_model::{ApiError, ErrorCode};
use berth_ops::iam::Principal;
use serde_json::Value;

use crate::ApiState;

/// Who signed a verified request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The region the request was signed for.
    pub region: String,
    /// The IAM principal and its policies, or `None` for berth's root key.
    pub principal: Option<(Principal, Vec<berth_iam::Policy>)>,
}

/// Refuses the request unless `caller` may perform `prefix:action` on every one of
/// `resources`, with AWS's AccessDenied message.
pub(crate) async fn authorize(
    state: &ApiState,
    caller: &Caller,
    prefix: &str,
    action: &str,
    resources: &[String],
) -> Result<(), ApiError> {
    let Some((principal, policies)) = &caller.principal else {
        return Ok(());
    };
    let refs: Vec<&berth_iam::Policy> = policies.iter().collect();
    let reads_tags = policies.iter().any(berth_iam::Policy::reads_resource_tags);
    let full_action = format!("{prefix}:{action}");
    let keys: Vec<(&str, &str)> = match principal {
        Principal::User { name, arn } => vec![
            ("aws:RequestedRegion", caller.region.as_str()),
            ("aws:username", name.as_str()),
            ("aws:PrincipalArn", arn.as_str()),
            ("aws:PrincipalType", "User"),
        ],
        // IAM's keys for a role session: the principal is the role, the type AssumedRole.
        Principal::AssumedRole { arn, .. } => vec![
            ("aws:RequestedRegion", caller.region.as_str()),
            ("aws:PrincipalArn", arn.as_str()),
            ("aws:PrincipalType", "AssumedRole"),
        ],
    };
    let star = ["*".to_owned()];
    let resources = if resources.is_empty() {
        &star[..]
    } else {
        resources
    };
    for resource in resources {
        let tags = if reads_tags {
            state.ops.resource_tags(resource).await?
        } else {
            Vec::new()
        };
        let req = RequestContext {
            action: &full_action,
            resource,
            keys: &keys,
            resource_tags: &tags,
        };
        let why = match evaluate(&refs, &req) {
            Decision::Allow => continue,
            Decision::ExplicitDeny => {
                "with an explicit deny in an identity-based policy".to_owned()
            }
            Decision::ImplicitDeny => {
                format!("because no identity-based policy allows the {full_action} action")
            }
        };
        return Err(ApiError::new(
            ErrorCode::AccessDeniedException,
            format!(
                "User: {} is not authorized to perform: {full_action} on resource: {resource} {why}",
                principal.arn()
            ),
        ));
    }
    Ok(())
}

/// The ARNs an ECS request names, read from its JSON body (names or ARNs; a missing cluster
/// is `default`, as ECS takes it). Empty: the request is on `*`.
pub(crate) fn ecs_resources(region: &str, account: &str, body: &[u8]) -> Vec<String> {
    let Ok(Value::Object(b)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let base = format!("arn:aws:ecs:{region}:{account}:");
    let str_list = |k: &str| -> Vec<String> {
        match b.get(k) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    };
    let cluster_name =
        |c: &str| -> String { c.rsplit_once(":cluster/").map_or(c, |(_, n)| n).to_owned() };
    let cluster = b
        .get("cluster")
        .and_then(Value::as_str)
        .map_or_else(|| "default".to_owned(), cluster_name);
    let under = |kind: &str, ids: Vec<String>| -> Vec<String> {
        ids.into_iter()
            .map(|id| {
                if id.starts_with("arn:") {
                    id
                } else {
                    format!("{base}{kind}/{cluster}/{id}")
                }
            })
            .collect()
    };
    let mut services = str_list("services");
    services.extend(str_list("service"));
    services.extend(str_list("serviceName"));
    if !services.is_empty() {
        return under("service", services);
    }
    let mut tasks = str_list("tasks");
    tasks.extend(str_list("task"));
    if !tasks.is_empty() {
        return under("task", tasks);
    }
    let mut clusters = str_list("clusters");
    clusters.extend(str_list("cluster"));
    clusters.extend(str_list("clusterName"));
    clusters
        .into_iter()
        .map(|c| format!("{base}cluster/{}", cluster_name(&c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_requests_name_their_resources() {
        let arns = |body: &str| ecs_resources("us-east-1", "1", body.as_bytes());
        let table: &[(&str, &[&str])] = &[
            ("{}", &[]),
            ("not json", &[]),
            (
                r#"{"clusterName":"web"}"#,
                &["arn:aws:ecs:us-east-1:1:cluster/web"],
            ),
            (
                r#"{"clusters":["a","arn:aws:ecs:us-east-1:1:cluster/b"]}"#,
                &[
                    "arn:aws:ecs:us-east-1:1:cluster/a",
                    "arn:aws:ecs:us-east-1:1:cluster/b",
                ],
            ),
            (
                r#"{"cluster":"arn:aws:ecs:us-east-1:1:cluster/web","services":["api"]}"#,
                &["arn:aws:ecs:us-east-1:1:service/web/api"],
            ),
            (
                r#"{"serviceName":"api"}"#,
                &["arn:aws:ecs:us-east-1:1:service/default/api"],
            ),
            (
                r#"{"cluster":"c","task":"abc"}"#,
                &["arn:aws:ecs:us-east-1:1:task/c/abc"],
            ),
        ];
        for (body, want) in table {
            assert_eq!(arns(body), *want, "{body}");
        }
    }
}
