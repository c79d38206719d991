//! IAM users and their access keys.

use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    iam_err, key_key, new_id, page, user_key, validate_name, validate_path, KeyRecord, UserRecord,
    KEYS, USERS,
};
use crate::{store_err, to_bytes, Ctx};
use berth_model::ApiError;

/// At most this many access keys per user, as IAM's quota.
const KEYS_PER_USER: usize = 2;

/// The request of `CreateUser`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateUserRequest {
    user_name: String,
    path: Option<String>,
}

/// The members of CreateUser.
pub const CREATE_USER_MEMBERS: &[&str] = &["UserName", "Path"];

/// A request that names one user (GetUser, DeleteUser, ListAccessKeys ...).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserNameRequest {
    user_name: Option<String>,
    marker: Option<String>,
    max_items: Option<String>,
}

/// The request of `ListUsers`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListUsersRequest {
    path_prefix: Option<String>,
    marker: Option<String>,
    max_items: Option<String>,
}

/// The members of ListUsers.
pub const LIST_USERS_MEMBERS: &[&str] = &["PathPrefix", "Marker", "MaxItems"];

fn user_wire(u: &UserRecord) -> Value {
    json!({
        "Path": u.path,
        "UserName": u.name,
        "UserId": u.user_id,
        "Arn": u.arn,
        "CreateDate": crate::elb::iso(u.create_date),
    })
}

fn no_user(name: &str) -> ApiError {
    iam_err(
        "NoSuchEntity",
        format!("The user with name {name} cannot be found."),
    )
}

/// The user `name`, with its revision.
pub(crate) async fn load_user(ctx: &Ctx, name: &str) -> Result<(UserRecord, u64), ApiError> {
    validate_name("userName", name, 64)?;
    ctx.store()
        .get_json::<UserRecord>(&user_key(name))
        .await
        .map_err(store_err)?
        .ok_or_else(|| no_user(name))
}

fn required(v: Option<String>, what: &str) -> Result<String, ApiError> {
    v.ok_or_else(|| {
        iam_err(
            "ValidationError",
            format!("1 validation error detected: Value null at '{what}' failed to satisfy constraint: Member must not be null"),
        )
    })
}

/// `CreateUser`.
pub async fn create_user(ctx: &Ctx, req: CreateUserRequest) -> Result<Value, ApiError> {
    let name = req.user_name;
    validate_name("userName", &name, 64)?;
    let path = req.path.unwrap_or_else(|| "/".to_owned());
    validate_path(&path)?;
    let u = UserRecord {
        arn: format!(
            "arn:aws:iam::{}:user{path}{name}",
            ctx.state.config.account_id
        ),
        name: name.clone(),
        user_id: new_id("AIDA"),
        path,
        create_date: ctx.now(),
        inline: Default::default(),
        attached: Vec::new(),
    };
    let key = user_key(&name);
    let txn = Txn::new().when_absent(key.clone()).put(key, to_bytes(&u)?);
    match ctx.store().txn(txn).await.map_err(store_err)? {
        TxnResult::Committed { .. } => Ok(json!({"User": user_wire(&u)})),
        TxnResult::Conflict { .. } => Err(iam_err(
            "EntityAlreadyExists",
            format!("User with name {name} already exists."),
        )),
    }
}

/// `GetUser`: the named user (without a name, the caller, which berth's edge does not pass
/// down: the name is required).
pub async fn get_user(ctx: &Ctx, req: UserNameRequest) -> Result<Value, ApiError> {
    let name = required(req.user_name, "userName")?;
    let (u, _) = load_user(ctx, &name).await?;
    Ok(json!({"User": user_wire(&u)}))
}

/// `ListUsers`.
pub async fn list_users(ctx: &Ctx, req: ListUsersRequest) -> Result<Value, ApiError> {
    let prefix = req.path_prefix.unwrap_or_else(|| "/".to_owned());
    let users: Vec<UserRecord> = ctx
        .store()
        .list_json::<UserRecord>(USERS)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|(_, u, _)| u)
        .filter(|u| u.path.starts_with(&prefix))
        .collect();
    let (users, truncated, marker) = page(users, req.marker.as_deref(), req.max_items.as_deref())?;
    Ok(json!({
        "Users": users.iter().map(user_wire).collect::<Vec<_>>(),
        "IsTruncated": truncated,
        "Marker": marker,
    }))
}

async fn user_keys(ctx: &Ctx, name: &str) -> Result<Vec<(KeyRecord, u64)>, ApiError> {
    Ok(ctx
        .store()
        .list_json::<KeyRecord>(KEYS)
        .await
        .map_err(store_err)?
        .into_iter()
        .filter(|(_, k, _)| k.user_name.eq_ignore_ascii_case(name))
        .map(|(_, k, rev)| (k, rev))
        .collect())
}

/// `DeleteUser`: refused while the user has access keys or policies, as IAM refuses it.
pub async fn delete_user(ctx: &Ctx, req: UserNameRequest) -> Result<Value, ApiError> {
    let name = required(req.user_name, "userName")?;
    let (u, rev) = load_user(ctx, &name).await?;
    let conflict = |what: &str| {
        iam_err(
            "DeleteConflict",
            format!("Cannot delete entity, must {what} first."),
        )
    };
    if !user_keys(ctx, &name).await?.is_empty() {
        return Err(conflict("delete access keys"));
    }
    if !u.inline.is_empty() {
        return Err(conflict("delete policies"));
    }
    if !u.attached.is_empty() {
        return Err(conflict("detach all policies"));
    }
    let key = user_key(&name);
    let txn = Txn::new().when_mod_revision(key.clone(), rev).delete(key);
    // A conflict: the user changed meanwhile (a key or policy was added).
    super::commit(ctx, txn).await?;
    Ok(json!({}))
}

/// The request of `CreateAccessKey`.
pub type CreateKeyRequest = UserNameRequest;

/// `CreateAccessKey`: a new Active key for the user; its secret is shown once, here.
pub async fn create_key(ctx: &Ctx, req: CreateKeyRequest) -> Result<Value, ApiError> {
    let name = required(req.user_name, "userName")?;
    let (u, _) = load_user(ctx, &name).await?;
    if user_keys(ctx, &u.name).await?.len() >= KEYS_PER_USER {
        return Err(iam_err(
            "LimitExceeded",
            format!("Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}"),
        ));
    }
    let akid = new_id("AKIA");
    let secret = {
        use base64::Engine;
        use rand::RngCore;
        let mut bytes = [0u8; 30];
        rand::thread_rng().fill_bytes(&mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let k = KeyRecord {
        access_key_id: akid.clone(),
        user_name: u.name.clone(),
        secret: ctx
            .state
            .secrets_key
            .seal(&key_key(&akid), secret.as_bytes())?,
        active: true,
        create_date: ctx.now(),
    };
    // Written only while the user is still there, so no key outlives a deleted user.
    let (ukey, key) = (user_key(&u.name), key_key(&akid));
    let (_, urev) = load_user(ctx, &u.name).await?;
    let txn = Txn::new()
        .when_mod_revision(ukey, urev)
        .when_absent(key.clone())
        .put(key, to_bytes(&k)?);
    super::commit(ctx, txn).await?;
    Ok(json!({"AccessKey": {
        "UserName": u.name,
        "AccessKeyId": akid,
        "Status": "Active",
        "SecretAccessKey": secret,
        "CreateDate": crate::elb::iso(k.create_date),
    }}))
}

/// The members of ListAccessKeys.
pub const LIST_KEYS_MEMBERS: &[&str] = &["UserName", "Marker", "MaxItems"];

/// `ListAccessKeys`.
pub async fn list_keys(ctx: &Ctx, req: UserNameRequest) -> Result<Value, ApiError> {
    let name = required(req.user_name, "userName")?;
    let (u, _) = load_user(ctx, &name).await?;
    let keys = user_keys(ctx, &u.name).await?;
    let (keys, truncated, marker) = page(keys, req.marker.as_deref(), req.max_items.as_deref())?;
    let meta: Vec<Value> = keys
        .iter()
        .map(|(k, _)| {
            json!({
                "UserName": u.name,
                "AccessKeyId": k.access_key_id,
                "Status": if k.active { "Active" } else { "Inactive" },
                "CreateDate": crate::elb::iso(k.create_date),
            })
        })
        .collect();
    Ok(json!({"AccessKeyMetadata": meta, "IsTruncated": truncated, "Marker": marker}))
}

/// The request of `UpdateAccessKey` and `DeleteAccessKey`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyRequest {
    user_name: Option<String>,
    access_key_id: String,
    status: Option<String>,
}

async fn load_key(ctx: &Ctx, req: &KeyRequest) -> Result<(KeyRecord, u64), ApiError> {
    let name = required(req.user_name.clone(), "userName")?;
    let (u, _) = load_user(ctx, &name).await?;
    let akid = &req.access_key_id;
    let missing = || {
        iam_err(
            "NoSuchEntity",
            format!("The Access Key with id {akid} cannot be found."),
        )
    };
    if akid.contains('/') {
        return Err(missing());
    }
    match ctx
        .store()
        .get_json::<KeyRecord>(&key_key(akid))
        .await
        .map_err(store_err)?
    {
        Some((k, rev)) if k.user_name == u.name => Ok((k, rev)),
        _ => Err(missing()),
    }
}

/// `UpdateAccessKey`: Active or Inactive (an Inactive key's requests are refused).
pub async fn update_key(ctx: &Ctx, req: KeyRequest) -> Result<Value, ApiError> {
    let active = match req.status.as_deref() {
        Some("Active") => true,
        Some("Inactive") => false,
        other => {
            return Err(iam_err(
                "ValidationError",
                format!("1 validation error detected: Value '{}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]", other.unwrap_or("null")),
            ))
        }
    };
    let (mut k, rev) = load_key(ctx, &req).await?;
    k.active = active;
    let key = key_key(&k.access_key_id);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key, to_bytes(&k)?);
    super::commit(ctx, txn).await?;
    Ok(json!({}))
}

/// `DeleteAccessKey`.
pub async fn delete_key(ctx: &Ctx, req: KeyRequest) -> Result<Value, ApiError> {
    if req.status.is_some() {
        return Err(iam_err(
            "InvalidInput",
            "berth does not support the parameter Status of DeleteAccessKey.",
        ));
    }
    let (k, rev) = load_key(ctx, &req).await?;
    let key = key_key(&k.access_key_id);
    let txn = Txn::new().when_mod_revision(key.clone(), rev).delete(key);
    super::commit(ctx, txn).await?;
    Ok(json!({}))
}
