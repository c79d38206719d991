//! Authorization at the edge: after a request is authenticated, the caller's IAM policies
//! decide whether it may perform `<service prefix>:<Action>` on the resources it names.
//!
//! The root key (berth's own, from the data dir) may do everything and costs nothing here; a
//! key IAM issued to a user is decided by `berth_iam::evaluate` over the user's policies,
//! which the control layer loads. The resources are the ARNs a request names: for ECS, read
//! here from its body (`cluster`, `clusters`, `clusterName`, `service`, `services`, `task`,
//! `tasks`); for every other service, by `berth_iam::request_resources`'s table, with the
//! control layer filling in what only the store knows (a secret's suffix, a user's path) and
//! the tags `aws:ResourceTag/...` reads. A request that names nothing is on `*`.
//!
//! Every request also takes a token from its access key's bucket for the action's class
//! ([`crate::throttle`]), root key included, before its policies are read.

use berth_iam::{evaluate, RequestContext, Resource, Scope};
use berth_model::{ApiError, ErrorCode};
use berth_ops::iam::Principal;
use serde_json::Value;

use crate::ApiState;

/// Who signed a verified request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The region the request was signed for.
    pub region: String,
    /// The access key that signed it (its throttle buckets).
    pub access_key: String,
    /// The IAM principal and its policies, or `None` for berth's root key.
    pub principal: Option<(Principal, Vec<berth_iam::Policy>)>,
}

/// What a request names resources in.
#[derive(Clone, Copy)]
pub(crate) enum Named<'a> {
    /// An ECS JSON body.
    Ecs(&'a [u8]),
    /// Another JSON service's body.
    Json(&'a [u8]),
    /// A Query request's parameters.
    Params(&'a Value),
}

impl Named<'_> {
    /// The resources named, and the request's tags.
    fn read(self, service: &str, action: &str, scope: Scope<'_>) -> (Vec<Resource>, Tags) {
        let parsed;
        let params = match self {
            Named::Ecs(body) => {
                let arns = ecs_resources(scope.region, scope.account, body);
                let tags = serde_json::from_slice::<Value>(body)
                    .map(|v| berth_iam::request_tags(&v))
                    .unwrap_or_default();
                return (arns.into_iter().map(Resource::Arn).collect(), tags);
            }
            Named::Json(body) => {
                parsed = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
                &parsed
            }
            Named::Params(v) => v,
        };
        (
            berth_iam::request_resources(service, action, params, scope),
            berth_iam::request_tags(params),
        )
    }
}

type Tags = Vec<(String, String)>;

/// Throttles the request, then refuses it unless `caller` may perform `prefix:action` on
/// every resource it names, with AWS's AccessDenied message.
pub(crate) async fn authorize(
    state: &ApiState,
    caller: &Caller,
    prefix: &str,
    action: &str,
    named: Named<'_>,
) -> Result<(), ApiError> {
    state.throttle.check(&caller.access_key, prefix, action)?;
    let Some((principal, policies)) = &caller.principal else {
        return Ok(());
    };
    let account = &state.ops.config().account_id;
    let scope = Scope {
        region: &caller.region,
        account,
    };
    let (named, request_tags) = named.read(prefix, action, scope);
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
    let star = [Resource::Arn("*".to_owned())];
    let named = if named.is_empty() { &star[..] } else { &named };
    for r in named {
        let (resource, tags) = match r {
            Resource::Arn(a) if !reads_tags || a == "*" => (a.clone(), Vec::new()),
            _ => {
                state
                    .ops
                    .resolve_resource(&caller.region, r, reads_tags)
                    .await?
            }
        };
        let req = RequestContext {
            action: &full_action,
            resource: &resource,
            keys: &keys,
            resource_tags: &tags,
            request_tags: &request_tags,
        };
        let decision = evaluate(&refs, &req);
        if let Some(m) = berth_iam::denial(principal.arn(), &full_action, &resource, decision) {
            return Err(ApiError::new(ErrorCode::AccessDeniedException, m));
        }
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
