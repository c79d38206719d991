//! The EC2 subset awsvpc tasks need: VPCs, subnets and security groups (records in
//! `berth_model::vpc`), and the default VPC made at start-up.
//!
//! Each action takes the Query request's parameters as the edge's JSON tree (EC2's flattened
//! lists `SubnetId.1` arrive as arrays) and returns the action's response members as JSON with
//! EC2's own lowerCamel element names (`vpcSet`, `subnetSet`, `securityGroupInfo` ...); the
//! edge writes arrays as `<item>` lists. Errors carry EC2's codes (`InvalidSubnetID.NotFound`
//! ...) through `ErrorCode::Ec2`.

pub mod network;
pub mod security_groups;
pub mod vpcs;

use berth_model::vpc::{ec2_error, Ec2Tag};
use berth_model::ApiError;
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{store_err, Ctx};

pub use vpcs::ensure_defaults;

/// EC2's generic code for a member with a bad value.
pub(crate) fn bad_value(m: impl Into<String>) -> ApiError {
    ec2_error("InvalidParameterValue", m)
}

/// A Query request's parameters as the action's typed request.
pub fn parse<T: serde::de::DeserializeOwned>(p: Value) -> Result<T, ApiError> {
    serde_json::from_value(p).map_err(|e| bad_value(format!("Invalid request parameters: {e}")))
}

/// A fresh id of this kind (`vpc`, `subnet`, `sg`, `sgr`, `eni`, `attach`).
pub fn new_id(prefix: &str) -> String {
    berth_model::vpc::ec2_id(prefix, uuid::Uuid::new_v4().as_u128())
}

/// Answers `DryRun` as EC2 does (without acting), and refuses members berth does not model,
/// naming them (what an action's typed request did not take lands in `rest`).
pub(crate) fn check(
    dry_run: Option<bool>,
    rest: &serde_json::Map<String, Value>,
) -> Result<(), ApiError> {
    if let Some(k) = rest.keys().next() {
        return Err(ec2_error(
            "UnsupportedOperation",
            format!("The parameter {k} is not supported by berth."),
        ));
    }
    if dry_run == Some(true) {
        return Err(ec2_error(
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        ));
    }
    Ok(())
}

/// One `Filter.N` (`Name`, `Value.M`).
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Filter {
    name: String,
    #[serde(default, deserialize_with = "berth_model::lb::lenient::list")]
    value: Vec<String>,
}

/// Whether a resource passes every filter: `fields(name)` gives the resource's values for a
/// filter name (`None`: a name this resource type does not know, which EC2 refuses).
pub(crate) fn filters_match(
    filters: &[Filter],
    fields: impl Fn(&str) -> Option<Vec<String>>,
) -> Result<bool, ApiError> {
    for f in filters {
        let have = fields(&f.name)
            .ok_or_else(|| bad_value(format!("The filter '{}' is invalid", f.name)))?;
        if !f.value.iter().any(|v| have.iter().any(|h| glob(v, h))) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// EC2 filter values take `*` (any run) and `?` (any one character).
fn glob(pat: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    let (p, s): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    go(&p, &s)
}

/// The values of the tag filters (`tag:KEY`, `tag-key`, `tag-value`) for a resource's tags.
pub(crate) fn tag_field(name: &str, tags: &[Ec2Tag]) -> Option<Vec<String>> {
    if let Some(k) = name.strip_prefix("tag:") {
        return Some(
            tags.iter()
                .filter(|t| t.key == k)
                .map(|t| t.value.clone())
                .collect(),
        );
    }
    match name {
        "tag-key" => Some(tags.iter().map(|t| t.key.clone()).collect()),
        "tag-value" => Some(tags.iter().map(|t| t.value.clone()).collect()),
        _ => None,
    }
}

/// One `TagSpecification.N`.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagSpecification {
    resource_type: Option<String>,
    #[serde(default, deserialize_with = "berth_model::lb::lenient::list")]
    tag: Vec<WireTag>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct WireTag {
    key: String,
    #[serde(default)]
    value: String,
}

/// The tags a create request's `TagSpecification`s give a resource of `resource_type`.
pub(crate) fn tags_for(
    specs: Vec<TagSpecification>,
    resource_type: &str,
) -> Result<Vec<Ec2Tag>, ApiError> {
    let mut out: Vec<Ec2Tag> = Vec::new();
    for s in specs {
        if s.resource_type.as_deref() != Some(resource_type) {
            return Err(bad_value(format!(
                "'{}' is not a valid taggable resource type for this operation.",
                s.resource_type.unwrap_or_default()
            )));
        }
        for t in s.tag {
            if t.key.is_empty() || t.key.len() > 127 || t.value.len() > 255 {
                return Err(bad_value(format!(
                    "Tag key or value of '{}' is invalid",
                    t.key
                )));
            }
            out.retain(|o| o.key != t.key);
            out.push(Ec2Tag {
                key: t.key,
                value: t.value,
            });
        }
    }
    if out.len() > 50 {
        return Err(ec2_error(
            "TagLimitExceeded",
            "The maximum number of tags for a resource is 50",
        ));
    }
    Ok(out)
}

pub(crate) fn tags_wire(tags: &[Ec2Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"key": t.key, "value": t.value}))
            .collect(),
    )
}

/// Commits `txn`; `false` when another writer got there first.
pub(crate) async fn commit(ctx: &Ctx, txn: Txn) -> Result<bool, ApiError> {
    Ok(matches!(
        ctx.store().txn(txn).await.map_err(store_err)?,
        TxnResult::Committed { .. }
    ))
}

pub(crate) fn too_contended() -> ApiError {
    ApiError::server("The resource is being modified by too many requests at once; retry.")
}

/// Every record under `prefix`, with revisions.
pub(crate) async fn list_all<T: serde::de::DeserializeOwned>(
    ctx: &Ctx,
    prefix: &str,
) -> Result<Vec<(T, u64)>, ApiError> {
    Ok(ctx
        .store()
        .list_json::<T>(prefix)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|(_, v, rev)| (v, rev))
        .collect())
}

/// One page of `items` (sorted by id) after `NextToken`, at most `MaxResults`.
pub(crate) fn page(
    mut items: Vec<(String, Value)>,
    token: Option<&str>,
    max: Option<u32>,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let size = match max {
        None => usize::MAX,
        Some(n) if (5..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(bad_value(format!(
                "Value ( {n} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
            )))
        }
    };
    let mut rest: Vec<(String, Value)> = match token.filter(|t| !t.is_empty()) {
        Some(t) => items.into_iter().filter(|(k, _)| k.as_str() > t).collect(),
        None => items,
    };
    let more = rest.len() > size;
    rest.truncate(size);
    let next = more.then(|| rest.last().map(|(k, _)| k.clone())).flatten();
    Ok((rest.into_iter().map(|(_, v)| v).collect(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_glob_and_refuse_unknown_names() {
        let fields = |n: &str| match n {
            "vpc-id" => Some(vec!["vpc-0123".to_owned()]),
            _ => None,
        };
        let f = |n: &str, v: &[&str]| Filter {
            name: n.into(),
            value: v.iter().map(|s| (*s).to_owned()).collect(),
        };
        assert!(filters_match(&[f("vpc-id", &["vpc-0123"])], fields).unwrap());
        assert!(filters_match(&[f("vpc-id", &["x", "vpc-*"])], fields).unwrap());
        assert!(filters_match(&[f("vpc-id", &["vpc-01?3"])], fields).unwrap());
        assert!(!filters_match(&[f("vpc-id", &["vpc-9*"])], fields).unwrap());
        let e = filters_match(&[f("nope", &["x"])], fields).unwrap_err();
        assert_eq!(e.code.as_str(), "InvalidParameterValue");
    }

    #[test]
    fn pages_follow_tokens() {
        let items: Vec<(String, Value)> = (0..12).map(|i| (format!("k{i:02}"), json!(i))).collect();
        let (a, t) = page(items.clone(), None, Some(5)).unwrap();
        assert_eq!(a.len(), 5);
        let (b, t) = page(items.clone(), t.as_deref(), Some(5)).unwrap();
        assert_eq!(b[0], json!(5));
        let (c, t) = page(items.clone(), t.as_deref(), Some(5)).unwrap();
        assert_eq!((c.len(), t), (2, None));
        assert!(page(items, None, Some(4)).is_err());
    }

    #[test]
    fn tag_specifications_must_name_the_resource_type() {
        let spec = |rt: &str| TagSpecification {
            resource_type: Some(rt.into()),
            tag: vec![WireTag {
                key: "Name".into(),
                value: "a".into(),
            }],
        };
        assert_eq!(tags_for(vec![spec("vpc")], "vpc").unwrap()[0].value, "a");
        assert!(tags_for(vec![spec("subnet")], "vpc").is_err());
    }
}
