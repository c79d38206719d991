//! IAM identity policies for berth: parsing a policy document with IAM's grammar, and deciding
//! whether a request is allowed.
//!
//! It is a crate of its own, with no I/O, because the decision is the part that must be
//! right: the edge (`berth-api`) finds who signed a request and which action and resources it
//! names, the control layer (`berth-ops`) loads the caller's policies from the store, and this
//! crate decides, as a pure function that the table-driven tests call with plain data.
//!
//! Start with [`Policy::parse`] and [`evaluate`]: explicit `Deny` wins over any `Allow`, and a
//! request no statement allows is denied by default ([`Decision`]).
//! [`request_resources`] reads which resources (ARNs) a request names, per service and
//! action, as AWS's Service Authorization Reference lists them.
//! [`managed`] holds the AWS managed policies berth knows by ARN.

#![warn(missing_docs)]

mod eval;
pub mod managed;
mod policy;
mod resources;

pub use eval::{denial, evaluate, Decision, RequestContext};
pub use policy::{Policy, PolicyError};
pub use resources::{request_resources, request_tags, Resource, Scope};

/// Whether `value` matches `pattern`, where `*` matches any run of characters and `?` any one
/// character (IAM's wildcards in actions, resources and `StringLike`).
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    // Iterative glob with one backtrack point: linear in practice, no recursion on input.
    let (mut pi, mut vi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let table = [
            ("*", "", true),
            ("*", "ecs:ListClusters", true),
            ("ecs:Describe*", "ecs:DescribeClusters", true),
            ("ecs:Describe*", "ecs:ListClusters", false),
            ("ecs:?istClusters", "ecs:ListClusters", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            (
                "arn:aws:ecs:*:*:cluster/prod-*",
                "arn:aws:ecs:us-east-1:1:cluster/prod-a",
                true,
            ),
            (
                "arn:aws:ecs:*:*:cluster/prod-*",
                "arn:aws:ecs:us-east-1:1:cluster/dev-a",
                false,
            ),
            ("abc", "abcd", false),
            ("", "", true),
        ];
        for (p, v, want) in table {
            assert_eq!(wildcard_match(p, v), want, "{p:?} vs {v:?}");
        }
    }
}
