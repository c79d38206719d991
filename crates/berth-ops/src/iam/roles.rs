//! IAM roles (the roles tasks name in `taskRoleArn` and `executionRoleArn`), their inline
//! policies and the AWS managed policies attached to them.

use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::policies::{managed_name, url_encode};
use super::{
    check_policy, commit, iam_err, new_id, page, role_key, validate_name, validate_path,
    RoleRecord, ROLES,
};
use crate::{store_err, to_bytes, Ctx};
use berth_model::ApiError;

/// A request on roles (every action here).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleRequest {
    role_name: Option<String>,
    assume_role_policy_document: Option<String>,
    path: Option<String>,
    path_prefix: Option<String>,
    description: Option<String>,
    max_session_duration: Option<String>,
    policy_name: Option<String>,
    policy_document: Option<String>,
    policy_arn: Option<String>,
    marker: Option<String>,
    max_items: Option<String>,
}

/// The members of CreateRole.
pub const CREATE_MEMBERS: &[&str] = &[
    "RoleName",
    "AssumeRolePolicyDocument",
    "Path",
    "Description",
    "MaxSessionDuration",
];
/// The members of GetRole and DeleteRole.
pub const NAME_MEMBERS: &[&str] = &["RoleName"];
/// The members of ListRoles.
pub const LIST_ROLES_MEMBERS: &[&str] = &["PathPrefix", "Marker", "MaxItems"];
/// The members of PutRolePolicy.
pub const PUT_POLICY_MEMBERS: &[&str] = &["RoleName", "PolicyName", "PolicyDocument"];
/// The members of GetRolePolicy and DeleteRolePolicy.
pub const POLICY_NAME_MEMBERS: &[&str] = &["RoleName", "PolicyName"];
/// The members of ListRolePolicies.
pub const LIST_POLICIES_MEMBERS: &[&str] = &["RoleName", "Marker", "MaxItems"];
/// The members of AttachRolePolicy and DetachRolePolicy.
pub const ARN_MEMBERS: &[&str] = &["RoleName", "PolicyArn"];
/// The members of ListAttachedRolePolicies.
pub const LIST_ATTACHED_MEMBERS: &[&str] = &["RoleName", "PathPrefix", "Marker", "MaxItems"];

fn required<'a>(v: &'a Option<String>, what: &str) -> Result<&'a str, ApiError> {
    v.as_deref().ok_or_else(|| {
        iam_err(
            "ValidationError",
            format!("1 validation error detected: Value null at '{what}' failed to satisfy constraint: Member must not be null"),
        )
    })
}

fn wire(r: &RoleRecord) -> Value {
    json!({
        "Path": r.path,
        "RoleName": r.name,
        "RoleId": r.role_id,
        "Arn": r.arn,
        "CreateDate": crate::elb::iso(r.create_date),
        "AssumeRolePolicyDocument": url_encode(&r.assume_role_policy_document),
        "Description": r.description,
        "MaxSessionDuration": r.max_session_duration,
    })
}

/// The role `name`, with its revision.
pub(crate) async fn load_role(ctx: &Ctx, name: &str) -> Result<(RoleRecord, u64), ApiError> {
    validate_name("roleName", name, 64)?;
    ctx.store()
        .get_json::<RoleRecord>(&role_key(name))
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            iam_err(
                "NoSuchEntity",
                format!("The role with name {name} cannot be found."),
            )
        })
}

/// A trust policy: a JSON policy document whose statements name a `Principal` (the
/// principals that may assume the role; berth's tasks assume it through ECS).
fn check_trust_policy(doc: &str) -> Result<(), ApiError> {
    let bad = |m: &str| iam_err("MalformedPolicyDocument", m);
    let v: Value = serde_json::from_str(doc).map_err(|_| bad("Syntax errors in policy."))?;
    let statements = match v.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return Err(bad("Syntax errors in policy.")),
    };
    for s in &statements {
        if s.get("Principal").is_none() {
            return Err(bad("Missing required field Principal"));
        }
        if !matches!(
            s.get("Effect").and_then(Value::as_str),
            Some("Allow" | "Deny")
        ) {
            return Err(bad("Missing required field Effect"));
        }
    }
    Ok(())
}

/// `CreateRole`.
pub async fn create(ctx: &Ctx, req: RoleRequest) -> Result<Value, ApiError> {
    let name = required(&req.role_name, "roleName")?.to_owned();
    validate_name("roleName", &name, 64)?;
    let trust = required(&req.assume_role_policy_document, "assumeRolePolicyDocument")?;
    check_trust_policy(trust)?;
    let path = req.path.clone().unwrap_or_else(|| "/".to_owned());
    validate_path(&path)?;
    let max_session_duration = match req.max_session_duration.as_deref() {
        None => 3600,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (3600..=43200).contains(n))
            .ok_or_else(|| {
                iam_err(
                    "ValidationError",
                    format!("1 validation error detected: Value '{s}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"),
                )
            })?,
    };
    let r = RoleRecord {
        arn: format!(
            "arn:aws:iam::{}:role{path}{name}",
            ctx.state.config.account_id
        ),
        name: name.clone(),
        role_id: new_id("AROA"),
        path,
        create_date: ctx.now(),
        assume_role_policy_document: trust.to_owned(),
        description: req.description.clone(),
        max_session_duration,
        inline: Default::default(),
        attached: Vec::new(),
    };
    let key = role_key(&name);
    let txn = Txn::new().when_absent(key.clone()).put(key, to_bytes(&r)?);
    match ctx.store().txn(txn).await.map_err(store_err)? {
        TxnResult::Committed { .. } => Ok(json!({"Role": wire(&r)})),
        TxnResult::Conflict { .. } => Err(iam_err(
            "EntityAlreadyExists",
            format!("Role with name {name} already exists."),
        )),
    }
}

/// `GetRole`.
pub async fn get(ctx: &Ctx, req: RoleRequest) -> Result<Value, ApiError> {
    let (r, _) = load_role(ctx, required(&req.role_name, "roleName")?).await?;
    Ok(json!({"Role": wire(&r)}))
}

/// `ListRoles`.
pub async fn list(ctx: &Ctx, req: RoleRequest) -> Result<Value, ApiError> {
    let prefix = req.path_prefix.clone().unwrap_or_else(|| "/".to_owned());
    let roles: Vec<Value> = ctx
        .store()
        .list_json::<RoleRecord>(ROLES)
        .await
        .map_err(store_err)?
        .iter()
        .filter(|(_, r, _)| r.path.starts_with(&prefix))
        .map(|(_, r, _)| wire(r))
        .collect();
    let (roles, truncated, marker) = page(roles, req.marker.as_deref(), req.max_items.as_deref())?;
    Ok(json!({"Roles": roles, "IsTruncated": truncated, "Marker": marker}))
}

/// `DeleteRole`: refused while the role has inline or attached policies, as IAM refuses it.
pub async fn delete(ctx: &Ctx, req: RoleRequest) -> Result<Value, ApiError> {
    let (r, rev) = load_role(ctx, required(&req.role_name, "roleName")?).await?;
    if !r.inline.is_empty() {
        return Err(iam_err(
            "DeleteConflict",
            "Cannot delete entity, must delete policies first.",
        ));
    }
    if !r.attached.is_empty() {
        return Err(iam_err(
            "DeleteConflict",
            "Cannot delete entity, must detach all policies first.",
        ));
    }
    let key = role_key(&r.name);
    commit(
        ctx,
        Txn::new().when_mod_revision(key.clone(), rev).delete(key),
    )
    .await?;
    Ok(json!({}))
}

async fn save(ctx: &Ctx, r: &RoleRecord, rev: u64) -> Result<(), ApiError> {
    let key = role_key(&r.name);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key, to_bytes(r)?);
    commit(ctx, txn).await
}

fn no_policy(name: &str) -> ApiError {
    iam_err(
        "NoSuchEntity",
        format!("The role policy with name {name} cannot be found."),
    )
}

/// `PutRolePolicy`.
pub async fn put_policy(ctx: &Ctx, req: RoleRequest) -> Result<Value, ApiError> {
    let name = required(&req.policy_name, "policyName")?;
    validate_name("policyName", name, 128)?;
    let doc = required(&req.policy_document, "policyDocument")?;
    check_policy(doc)?;
    let (mut r, rev) = load_role(ctx, required(&req.role_name, "roleName")?).await?;
    r.inline.insert(name.to_owned(), doc.to_owned());
    save(ctx, &r, rev).await?;
    Ok(json!({}))
}

/// `GetRolePolicy`.
pub async fn get_policy(ctx: &Ctx, req: RoleRequest) -> Result<Value, ApiError> {
    let name = required(&req.policy_name, "policyName")?;
    let (r, _) = load_role(ctx, required(&req.role_name, "roleName")?).await?;
    let doc = r.inline.get(name).ok_or_else(|| no_policy(name))?;
    Ok(json!({"RoleName": r.name, "PolicyName": name, "PolicyDocument": url_encode(doc)}))
}

/// `DeleteRolePolicy`.
pub async fn delete_policy(ctx: &Ctx, req: RoleRequest) -> Result<Value, ApiError> {
    let name = required(&req.policy_name, "policyName")?;
    let (mut r, rev) = load_role(ctx, required(&req.role_name, "roleName")?).await?;
    if r.inline.remove(name).is_none() {
        return Err(no_policy(name));
    }
    save(ctx, &r, rev).await?;
    Ok(json!({}))
}

/// `ListRolePolicies`.
pub async fn list_policies(ctx: &Ctx, req: RoleRequest) -> Result<Value, ApiError> {
    let (r, _) = load_role(ctx, required(&req.role_name, "roleName")?).await?;
    let names: Vec<String> = r.inline.keys().cloned().collect();
    let (names, truncated, marker) = page(names, req.marker.as_deref(), req.max_items.as_deref())?;
    Ok(json!({"PolicyNames": names, "IsTruncated": truncated, "Marker": marker}))
}

/// `AttachRolePolicy`: one of the managed policies berth knows (`berth_iam::managed`).
pub async fn attach(ctx: &Ctx, req: RoleRequest) -> Result<Value, ApiError> {
    let arn = required(&req.policy_arn, "policyArn")?;
    managed_name(arn)?;
    let (mut r, rev) = load_role(ctx, required(&req.role_name, "roleName")?).await?;
    if !r.attached.iter().any(|a| a == arn) {
        r.attached.push(arn.to_owned());
        save(ctx, &r, rev).await?;
    }
    Ok(json!({}))
}

/// `DetachRolePolicy`.
pub async fn detach(ctx: &Ctx, req: RoleRequest) -> Result<Value, ApiError> {
    let arn = required(&req.policy_arn, "policyArn")?;
    let (mut r, rev) = load_role(ctx, required(&req.role_name, "roleName")?).await?;
    let before = r.attached.len();
    r.attached.retain(|a| a != arn);
    if r.attached.len() == before {
        return Err(iam_err(
            "NoSuchEntity",
            format!("Policy {arn} was not found."),
        ));
    }
    save(ctx, &r, rev).await?;
    Ok(json!({}))
}

/// The path of a managed policy's ARN (`/` or `/service-role/`).
fn policy_path(arn: &str) -> &str {
    let rest = arn.split_once(":policy").map_or("/", |(_, r)| r);
    rest.rfind('/').map_or("/", |i| &rest[..=i])
}

/// `ListAttachedRolePolicies`, filtered by the policies' `PathPrefix`.
pub async fn list_attached(ctx: &Ctx, req: RoleRequest) -> Result<Value, ApiError> {
    let (r, _) = load_role(ctx, required(&req.role_name, "roleName")?).await?;
    let prefix = req.path_prefix.as_deref().unwrap_or("/");
    let attached: Vec<Value> = r
        .attached
        .iter()
        .filter(|arn| policy_path(arn).starts_with(prefix))
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
    fn a_managed_policy_path_is_read_from_its_arn() {
        assert_eq!(policy_path("arn:aws:iam::aws:policy/ReadOnlyAccess"), "/");
        assert_eq!(
            policy_path("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"),
            "/service-role/"
        );
    }
}
