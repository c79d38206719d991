//! Deciding one request against a caller's policies, as IAM's evaluation logic does for
//! identity-based policies in one account: an explicit `Deny` in any statement that applies
//! wins; otherwise an `Allow` that applies allows; otherwise the request is denied by default.

use crate::policy::{Condition, Operator, SetOperator, Statement, TAG_KEYS};
use crate::{wildcard_match, Policy};

/// What IAM decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows the request and none denies it.
    Allow,
    /// A `Deny` statement applies.
    ExplicitDeny,
    /// No statement allows the request (the default).
    ImplicitDeny,
}

/// One request as policies see it: an action on one resource, and the context keys.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// `<service prefix>:<Action>`, e.g. `ecs:CreateCluster`.
    pub action: &'a str,
    /// The resource's ARN, or `*` when the action names no resource.
    pub resource: &'a str,
    /// The request's global condition keys and their values (`aws:RequestedRegion`, ...);
    /// names are matched case-insensitively.
    pub keys: &'a [(&'a str, &'a str)],
    /// The tags of `resource` (for `aws:ResourceTag/<key>`).
    pub resource_tags: &'a [(String, String)],
    /// The tags the request itself carries (for `aws:RequestTag/<key>`).
    pub request_tags: &'a [(String, String)],
}

impl RequestContext<'_> {
    /// The value of condition key `key`, if the request has it.
    fn value(&self, key: &str) -> Option<&str> {
        let lower = key.to_ascii_lowercase();
        if let Some(tag) = lower.strip_prefix("aws:resourcetag/") {
            return self
                .resource_tags
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(tag))
                .map(|(_, v)| v.as_str());
        }
        if let Some(tag) = lower.strip_prefix("aws:requesttag/") {
            return self
                .request_tags
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(tag))
                .map(|(_, v)| v.as_str());
        }
        self.keys
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
    }
}

/// Decides `req` against every policy the caller has.
pub fn evaluate(policies: &[&Policy], req: &RequestContext<'_>) -> Decision {
    let mut allowed = false;
    for s in policies.iter().flat_map(|p| p.statements.iter()) {
        if applies(s, req) {
            if !s.allow {
                return Decision::ExplicitDeny;
            }
            allowed = true;
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// The text IAM gives when `decision` refuses `principal` (an ARN) `action` on `resource`
/// (`None`: the decision allows it), as in an `AccessDenied` error.
pub fn denial(principal: &str, action: &str, resource: &str, decision: Decision) -> Option<String> {
    let why = match decision {
        Decision::Allow => return None,
        Decision::ExplicitDeny => "with an explicit deny in an identity-based policy".to_owned(),
        Decision::ImplicitDeny => {
            format!("because no identity-based policy allows the {action} action")
        }
    };
    Some(format!(
        "User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"
    ))
}

fn applies(s: &Statement, req: &RequestContext<'_>) -> bool {
    let action = req.action.to_ascii_lowercase();
    let (actions, not_action) = &s.actions;
    let action_hit = actions
        .iter()
        .any(|p| wildcard_match(&p.to_ascii_lowercase(), &action));
    let (resources, not_resource) = &s.resources;
    let resource_hit = resources
        .iter()
        .any(|p| substitute(p, req).is_some_and(|p| wildcard_match(&p, req.resource)));
    action_hit != *not_action
        && resource_hit != *not_resource
        && s.conditions.iter().all(|c| holds(c, req))
}

/// `pattern` with its policy variables (`${aws:username}`, any context key) replaced by the
/// request's values, as IAM does in `Resource`; `None` when a variable names a key the request
/// does not have (the pattern then matches nothing). Text without `${` is returned as is.
fn substitute<'p>(pattern: &'p str, req: &RequestContext<'_>) -> Option<std::borrow::Cow<'p, str>> {
    if !pattern.contains("${") {
        return Some(std::borrow::Cow::Borrowed(pattern));
    }
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}')?;
        out.push_str(req.value(after[..end].trim())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(std::borrow::Cow::Owned(out))
}

fn holds(c: &Condition, req: &RequestContext<'_>) -> bool {
    let values: Option<Vec<&str>> = if c.key.eq_ignore_ascii_case(TAG_KEYS) {
        Some(
            req.request_tags
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
        )
        .filter(|v| !v.is_empty())
    } else {
        req.value(&c.key).map(|v| vec![v])
    };
    match (c.set, values) {
        (None, None) => c.op.negated(),
        (None, Some(vs)) => vs.iter().all(|v| holds_for(c, v)),
        // IAM's rules for a key the request lacks: no value satisfies ForAnyValue, and every
        // value (there are none) satisfies ForAllValues.
        (Some(SetOperator::AnyValue), None) => false,
        (Some(SetOperator::AllValues), None) => true,
        (Some(SetOperator::AnyValue), Some(vs)) => vs.iter().any(|v| holds_for(c, v)),
        (Some(SetOperator::AllValues), Some(vs)) => vs.iter().all(|v| holds_for(c, v)),
    }
}

/// Whether the operator holds for one value of the request's.
fn holds_for(c: &Condition, v: &str) -> bool {
    let hit = c.values.iter().any(|want| match c.op {
        Operator::StringEquals | Operator::StringNotEquals => want == v,
        Operator::StringEqualsIgnoreCase | Operator::StringNotEqualsIgnoreCase => {
            want.eq_ignore_ascii_case(v)
        }
        Operator::StringLike | Operator::StringNotLike => wildcard_match(want, v),
    });
    hit != c.op.negated()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::*;

    const CLUSTER: &str = "arn:aws:ecs:us-east-1:000000000000:cluster/prod-web";

    fn decide(docs: &[&str], action: &str, resource: &str, tags: &[(&str, &str)]) -> Decision {
        let policies: Vec<Policy> = docs
            .iter()
            .map(|d| Policy::parse(d).expect("a valid policy"))
            .collect();
        let refs: Vec<&Policy> = policies.iter().collect();
        let tags: Vec<(String, String)> = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let keys = [
            ("aws:RequestedRegion", "us-east-1"),
            ("aws:username", "alice"),
        ];
        evaluate(
            &refs,
            &RequestContext {
                action,
                resource,
                keys: &keys,
                resource_tags: &tags,
                request_tags: &[("cost".to_owned(), "web".to_owned())],
            },
        )
    }

    /// Policies, action, resource, the resource's tags, and the decision.
    type Row<'a> = (
        &'a [&'a str],
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        Decision,
    );

    fn stmt(effect: &str, body: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}",{body}}}]}}"#)
    }

    #[test]
    fn evaluation_table() {
        let all = stmt("Allow", r#""Action":"*","Resource":"*""#);
        let read = stmt(
            "Allow",
            r#""Action":["ecs:Describe*","ecs:List*"],"Resource":"*""#,
        );
        let deny_prod = stmt(
            "Deny",
            r#""Action":"ecs:*","Resource":"arn:aws:ecs:*:*:cluster/prod-*""#,
        );
        let not_action = stmt("Allow", r#""NotAction":"ecs:Delete*","Resource":"*""#);
        let not_resource = stmt(
            "Deny",
            r#""Action":"*","NotResource":"arn:aws:ecs:*:*:cluster/dev-*""#,
        );
        let team = stmt(
            "Allow",
            r#""Action":"ecs:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"web"}}"#,
        );
        let not_team = stmt(
            "Allow",
            r#""Action":"ecs:*","Resource":"*","Condition":{"StringNotEquals":{"aws:ResourceTag/team":"db"}}"#,
        );
        let like_team = stmt(
            "Allow",
            r#""Action":"ecs:*","Resource":"*","Condition":{"StringLike":{"aws:resourcetag/TEAM":["w?b","x*"]}}"#,
        );
        let region = stmt(
            "Allow",
            r#""Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":["eu-west-1"]}}"#,
        );
        let request_tag = stmt(
            "Allow",
            r#""Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/Cost":"web"}}"#,
        );
        let request_tag_other = stmt(
            "Allow",
            r#""Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/team":"web"}}"#,
        );
        let own_prefix = stmt(
            "Allow",
            r#""Action":"*","Resource":"arn:aws:ecs:*:*:cluster/${aws:username}-*""#,
        );
        let unknown_variable = stmt(
            "Allow",
            r#""Action":"*","Resource":"arn:aws:ecs:*:*:cluster/${aws:userid}*""#,
        );
        let only_cost_tags = stmt(
            "Allow",
            r#""Action":"*","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["cost","owner"]}}"#,
        );
        let any_team_tag = stmt(
            "Allow",
            r#""Action":"*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":"team"}}"#,
        );
        let two_keys = stmt(
            "Allow",
            r#""Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1","aws:username":"bob"}}"#,
        );
        let table: &[Row] = &[
            (&[], "ecs:ListClusters", "*", &[], ImplicitDeny),
            (&[&all], "ecs:CreateCluster", CLUSTER, &[], Allow),
            (&[&read], "ecs:DescribeClusters", CLUSTER, &[], Allow),
            (&[&read], "ECS:listclusters", "*", &[], Allow),
            (&[&read], "ecs:CreateCluster", CLUSTER, &[], ImplicitDeny),
            (
                &[&all, &deny_prod],
                "ecs:DescribeClusters",
                CLUSTER,
                &[],
                ExplicitDeny,
            ),
            (&[&all, &deny_prod], "ecs:ListClusters", "*", &[], Allow),
            (
                &[&all, &deny_prod],
                "ecs:DescribeClusters",
                "arn:aws:ecs:us-east-1:0:cluster/dev",
                &[],
                Allow,
            ),
            (
                &[&not_action],
                "ecs:DeleteCluster",
                CLUSTER,
                &[],
                ImplicitDeny,
            ),
            (&[&not_action], "ecs:CreateCluster", CLUSTER, &[], Allow),
            (
                &[&all, &not_resource],
                "ecs:CreateCluster",
                CLUSTER,
                &[],
                ExplicitDeny,
            ),
            (
                &[&all, &not_resource],
                "ecs:CreateCluster",
                "arn:aws:ecs:us-east-1:0:cluster/dev-1",
                &[],
                Allow,
            ),
            (
                &[&team],
                "ecs:DescribeClusters",
                CLUSTER,
                &[("team", "web")],
                Allow,
            ),
            (
                &[&team],
                "ecs:DescribeClusters",
                CLUSTER,
                &[("team", "Web")],
                ImplicitDeny,
            ),
            (&[&team], "ecs:DescribeClusters", CLUSTER, &[], ImplicitDeny),
            (&[&not_team], "ecs:DescribeClusters", CLUSTER, &[], Allow),
            (
                &[&not_team],
                "ecs:DescribeClusters",
                CLUSTER,
                &[("team", "db")],
                ImplicitDeny,
            ),
            (
                &[&like_team],
                "ecs:DescribeClusters",
                CLUSTER,
                &[("Team", "wxb")],
                Allow,
            ),
            (
                &[&like_team],
                "ecs:DescribeClusters",
                CLUSTER,
                &[("team", "xylophone")],
                Allow,
            ),
            (
                &[&like_team],
                "ecs:DescribeClusters",
                CLUSTER,
                &[("team", "wb")],
                ImplicitDeny,
            ),
            (&[&region], "ecs:ListClusters", "*", &[], ImplicitDeny),
            (&[&request_tag], "ecs:CreateCluster", CLUSTER, &[], Allow),
            // The request's tags (the `decide` helper's): `cost` only.
            (&[&only_cost_tags], "ecs:CreateCluster", CLUSTER, &[], Allow),
            (
                &[&any_team_tag],
                "ecs:CreateCluster",
                CLUSTER,
                &[],
                ImplicitDeny,
            ),
            (
                &[&own_prefix],
                "ecs:CreateCluster",
                "arn:aws:ecs:us-east-1:0:cluster/alice-1",
                &[],
                Allow,
            ),
            (
                &[&own_prefix],
                "ecs:CreateCluster",
                CLUSTER,
                &[],
                ImplicitDeny,
            ),
            (
                &[&unknown_variable],
                "ecs:CreateCluster",
                "arn:aws:ecs:us-east-1:0:cluster/x",
                &[],
                ImplicitDeny,
            ),
            (
                &[&request_tag_other],
                "ecs:CreateCluster",
                CLUSTER,
                &[],
                ImplicitDeny,
            ),
            (&[&two_keys], "ecs:ListClusters", "*", &[], ImplicitDeny),
        ];
        for (i, (docs, action, resource, tags, want)) in table.iter().enumerate() {
            assert_eq!(
                decide(docs, action, resource, tags),
                *want,
                "row {i}: {action} on {resource}"
            );
        }
    }
}
