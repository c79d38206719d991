//! Users' policies: inline documents, and the AWS managed policies attached by ARN.

use serde::Deserialize;
use serde_json::{json, Value};

use super::users::load_user;
use super::{check_policy, commit, iam_err, page, user_key, validate_name, UserRecord};
use crate::{to_bytes, Ctx};
use berth_model::ApiError;
use berth_store::Txn;

/// A request on a user's policies (every action here).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserPolicyRequest {
    user_name: String,
    policy_name: Option<String>,
    policy_document: Option<String>,
    policy_arn: Option<String>,
    marker: Option<String>,
    max_items: Option<String>,
}

/// The members of PutUserPolicy.
pub const PUT_MEMBERS: &[&str] = &["UserName", "PolicyName", "PolicyDocument"];
/// The members of GetUserPolicy and DeleteUserPolicy.
pub const NAME_MEMBERS: &[&str] = &["UserName", "PolicyName"];
/// The members of ListUserPolicies and ListAttachedUserPolicies.
pub const LIST_MEMBERS: &[&str] = &["UserName", "Marker", "MaxItems"];
/// The members of AttachUserPolicy and DetachUserPolicy.
pub const ARN_MEMBERS: &[&str] = &["UserName", "PolicyArn"];

fn required<'a>(v: &'a Option<String>, what: &str) -> Result<&'a str, ApiError> {
    v.as_deref().ok_or_else(|| {
        iam_err(
            "ValidationError",
            format!("1 validation error detected: Value null at '{what}' failed to satisfy constraint: Member must not be null"),
        )
    })
}

/// A policy document as IAM returns it: URL-encoded (botocore decodes it).
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn save(ctx: &Ctx, u: &UserRecord, rev: u64) -> Result<(), ApiError> {
    let key = user_key(&u.name);
    commit(
        ctx,
        Txn::new()
            .when_mod_revision(key.clone(), rev)
            .put(key, to_bytes(u)?),
    )
    .await
}

/// `PutUserPolicy`: adds or replaces an inline policy.
pub async fn put(ctx: &Ctx, req: UserPolicyRequest) -> Result<Value, ApiError> {
    let name = required(&req.policy_name, "policyName")?;
    validate_name("policyName", name, 128)?;
    let doc = required(&req.policy_document, "policyDocument")?;
    check_policy(doc)?;
    let (mut u, rev) = load_user(ctx, &req.user_name).await?;
    u.inline.insert(name.to_owned(), doc.to_owned());
    save(ctx, &u, rev).await?;
    Ok(json!({}))
}

fn no_policy(name: &str) -> ApiError {
    iam_err(
        "NoSuchEntity",
        format!("The user policy with name {name} cannot be found."),
    )
}

/// `GetUserPolicy`.
pub async fn get(ctx: &Ctx, req: UserPolicyRequest) -> Result<Value, ApiError> {
    let name = required(&req.policy_name, "policyName")?;
    let (u, _) = load_user(ctx, &req.user_name).await?;
    let doc = u.inline.get(name).ok_or_else(|| no_policy(name))?;
    Ok(json!({
        "UserName": u.name,
        "PolicyName": name,
        "PolicyDocument": url_encode(doc),
    }))
}

/// `DeleteUserPolicy`.
pub async fn delete(ctx: &Ctx, req: UserPolicyRequest) -> Result<Value, ApiError> {
    let name = required(&req.policy_name, "policyName")?;
    let (mut u, rev) = load_user(ctx, &req.user_name).await?;
    if u.inline.remove(name).is_none() {
        return Err(no_policy(name));
    }
    save(ctx, &u, rev).await?;
    Ok(json!({}))
}

/// `ListUserPolicies`: the inline policies' names.
pub async fn list(ctx: &Ctx, req: UserPolicyRequest) -> Result<Value, ApiError> {
    let (u, _) = load_user(ctx, &req.user_name).await?;
    let names: Vec<String> = u.inline.keys().cloned().collect();
    let (names, truncated, marker) = page(names, req.marker.as_deref(), req.max_items.as_deref())?;
    Ok(json!({"PolicyNames": names, "IsTruncated": truncated, "Marker": marker}))
}

pub(crate) fn managed_name(arn: &str) -> Result<&'static str, ApiError> {
    berth_iam::managed::get(arn)
        .map(|(name, _)| name)
        .ok_or_else(|| {
            iam_err(
                "NoSuchEntity",
                format!("Policy {arn} does not exist or is not attachable."),
            )
        })
}

/// `AttachUserPolicy`: one of the managed policies berth knows (`berth_iam::managed`).
pub async fn attach(ctx: &Ctx, req: UserPolicyRequest) -> Result<Value, ApiError> {
    let arn = required(&req.policy_arn, "policyArn")?;
    managed_name(arn)?;
    let (mut u, rev) = load_user(ctx, &req.user_name).await?;
    if !u.attached.iter().any(|a| a == arn) {
        u.attached.push(arn.to_owned());
        save(ctx, &u, rev).await?;
    }
    Ok(json!({}))
}

/// `DetachUserPolicy`.
pub async fn detach(ctx: &Ctx, req: UserPolicyRequest) -> Result<Value, ApiError> {
    let arn = required(&req.policy_arn, "policyArn")?;
    let (mut u, rev) = load_user(ctx, &req.user_name).await?;
    let before = u.attached.len();
    u.attached.retain(|a| a != arn);
    if u.attached.len() == before {
        return Err(iam_err(
            "NoSuchEntity",
            format!("Policy {arn} was not found."),
        ));
    }
    save(ctx, &u, rev).await?;
    Ok(json!({}))
}

/// `ListAttachedUserPolicies`.
pub async fn list_attached(ctx: &Ctx, req: UserPolicyRequest) -> Result<Value, ApiError> {
    let (u, _) = load_user(ctx, &req.user_name).await?;
    let attached: Vec<Value> = u
        .attached
        .iter()
        .map(|arn| json!({"PolicyName": managed_name(arn).unwrap_or_default(), "PolicyArn": arn}))
        .collect();
    let (attached, truncated, marker) =
        page(attached, req.marker.as_deref(), req.max_items.as_deref())?;
    Ok(json!({"AttachedPolicies": attached, "IsTruncated": truncated, "Marker": marker}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_url_encoded_as_iam_returns_them() {
        assert_eq!(
            url_encode(r#"{"a": "b*"}"#),
            "%7B%22a%22%3A%20%22b%2A%22%7D"
        );
    }
}
