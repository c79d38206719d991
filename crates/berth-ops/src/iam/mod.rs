//! The IAM subset berth serves (users, access keys, user and role policies, roles) and what
//! the edge needs to authenticate and authorize a request signed with a user's key.
//!
//! - [`users`]: CreateUser, GetUser, ListUsers, DeleteUser, and access keys (CreateAccessKey,
//!   ListAccessKeys, UpdateAccessKey, DeleteAccessKey).
//! - [`policies`]: inline user policies (Put/Get/Delete/ListUserPolicies) and the AWS managed
//!   policies (`berth_iam::managed`) attached to users (Attach/Detach/ListAttachedUserPolicies).
//! - [`roles`]: CreateRole, GetRole, DeleteRole, their inline policies and the managed
//!   policies attached to them (Attach/Detach/ListAttachedRolePolicies).
//! - [`sessions`]: task roles: the `taskRoleArn` check and the temporary credentials tasks
//!   get for their role.
//! - [`Ops::iam_signer`] and [`Ops::iam_policies`]: the secret a key signs with and the
//!   policies its holder has, for the edge; the decision itself is `berth_iam::evaluate`.
//!
//! A key's secret access key is in the store, sealed with the server's
//! [`SecretsKey`](crate::secrets::SecretsKey) as secret values are: the server needs it in
//! clear to check SigV4 signatures, so it cannot keep only a hash. IAM is global: ARNs have
//! no region.

pub(crate) mod execution;
pub mod policies;
mod resources;
pub mod roles;
pub mod sessions;
pub mod users;

use std::collections::BTreeMap;

use berth_model::secrets::StoredValue;
use berth_model::{ApiError, ErrorCode};
use berth_store::StoreExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{store_err, Ops};

const USERS: &str = "iam/users/";
const KEYS: &str = "iam/keys/";
const ROLES: &str = "iam/roles/";

/// IAM names are unique without regard to case: the key holds the lower-cased name.
fn user_key(name: &str) -> String {
    format!("{USERS}{}", name.to_ascii_lowercase())
}
fn key_key(akid: &str) -> String {
    format!("{KEYS}{akid}")
}
fn role_key(name: &str) -> String {
    format!("{ROLES}{}", name.to_ascii_lowercase())
}

/// An IAM user as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    pub name: String,
    pub user_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: f64,
    /// Inline policies: name to document (as given, validated).
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// The ARNs of the managed policies attached.
    #[serde(default)]
    pub attached: Vec<String>,
}

/// An access key as stored; the secret is sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub access_key_id: String,
    pub user_name: String,
    pub secret: StoredValue,
    pub active: bool,
    pub create_date: f64,
}

/// An IAM role as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RoleRecord {
    pub name: String,
    pub role_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: f64,
    pub assume_role_policy_document: String,
    #[serde(default)]
    pub description: Option<String>,
    pub max_session_duration: u32,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// The ARNs of the managed policies attached.
    #[serde(default)]
    pub attached: Vec<String>,
}

/// An IAM error with IAM's code.
pub(crate) fn iam_err(code: &'static str, m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Iam(code), m)
}

/// A Query request's parameters as the action's typed request, after refusing the members
/// `allowed` does not list.
pub fn parse<T: serde::de::DeserializeOwned>(
    action: &str,
    p: Value,
    allowed: &[&str],
) -> Result<T, ApiError> {
    if let Some(k) = p
        .as_object()
        .and_then(|m| m.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return Err(iam_err(
            "InvalidInput",
            format!("berth does not support the parameter {k} of {action}."),
        ));
    }
    serde_json::from_value(p)
        .map_err(|e| iam_err("InvalidInput", format!("Invalid request parameters: {e}")))
}

/// IAM user, role and policy names: 1 to `max` characters of `[\w+=,.@-]`.
pub(crate) fn validate_name(what: &str, name: &str, max: usize) -> Result<(), ApiError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if name.is_empty() || name.len() > max || !name.chars().all(ok_char) {
        return Err(iam_err(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{name}' at '{what}' failed to satisfy \
                 constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ \
                 and have length between 1 and {max}"
            ),
        ));
    }
    Ok(())
}

/// An IAM path: `/` alone, or `/.../` of printable ASCII.
pub(crate) fn validate_path(path: &str) -> Result<(), ApiError> {
    let ok = path.starts_with('/')
        && path.ends_with('/')
        && path.len() <= 512
        && path.chars().all(|c| ('!'..='~').contains(&c));
    if ok {
        Ok(())
    } else {
        Err(iam_err(
            "ValidationError",
            format!("The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters. ({path})"),
        ))
    }
}

/// An IAM id: a four-letter prefix (`AIDA` users, `AROA` roles, `AKIA` keys) and sixteen
/// upper-case letters and digits.
pub(crate) fn new_id(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    let tail: String = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// Who signed a request with a key IAM issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An IAM user.
    User {
        /// The user's name.
        name: String,
        /// `arn:aws:iam::<account>:user/<path><name>`.
        arn: String,
    },
    /// A task acting with its role's temporary credentials.
    AssumedRole {
        /// The role's name.
        role: String,
        /// The session's name: the task's id.
        session: String,
        /// `arn:aws:sts::<account>:assumed-role/<role>/<task id>`.
        arn: String,
    },
}

impl Principal {
    /// The ARN IAM shows in AccessDenied messages.
    pub fn arn(&self) -> &str {
        match self {
            Self::User { arn, .. } | Self::AssumedRole { arn, .. } => arn,
        }
    }
}

/// A key IAM issued, as the edge needs it to check a signature.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The secret access key.
    pub secret: String,
    /// Whether the key is Active (an Inactive key signs nothing).
    pub active: bool,
    /// Who holds the key.
    pub principal: Principal,
    /// The holder's policies, read with the key (one read of the user serves both).
    pub policies: Vec<berth_iam::Policy>,
    /// For temporary keys (a task role's): the token the request must carry and the expiry.
    pub session: Option<sessions::Session>,
}

/// A role's policies (inline and attached), parsed; one that no longer parses grants nothing.
pub(crate) fn role_policies(r: &RoleRecord) -> Vec<berth_iam::Policy> {
    policies_of(&r.inline, &r.attached)
}

/// Every policy `u` has (inline and attached), parsed. Documents were checked when stored;
/// one that no longer parses grants nothing.
fn user_policies(u: &UserRecord) -> Vec<berth_iam::Policy> {
    policies_of(&u.inline, &u.attached)
}

/// Inline documents and attached managed ARNs, parsed.
fn policies_of(inline: &BTreeMap<String, String>, attached: &[String]) -> Vec<berth_iam::Policy> {
    let inline = inline
        .values()
        .filter_map(|d| berth_iam::Policy::parse(d).ok());
    let attached = attached
        .iter()
        .filter_map(|a| berth_iam::managed::get(a).map(|(_, p)| p));
    inline.chain(attached).collect()
}

impl Ops {
    /// The key `akid` if IAM issued it (a user's access key), with its secret and holder.
    pub async fn iam_signer(&self, akid: &str) -> Result<Option<Signer>, ApiError> {
        if akid.starts_with("ASIA") && !akid.contains('/') {
            return self.session_signer(akid).await;
        }
        if !akid.starts_with("AKIA") || akid.contains('/') {
            return Ok(None);
        }
        let Some((k, _)) = self
            .store
            .get_json::<KeyRecord>(&key_key(akid))
            .await
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        let Some((u, _)) = self
            .store
            .get_json::<UserRecord>(&user_key(&k.user_name))
            .await
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        let secret = self.secrets_key.open_text(&key_key(akid), &k.secret)?;
        Ok(Some(Signer {
            secret,
            active: k.active,
            policies: user_policies(&u),
            session: None,
            principal: Principal::User {
                name: u.name,
                arn: u.arn,
            },
        }))
    }

    /// Every policy `principal` has now (inline and attached), parsed.
    pub async fn iam_policies(
        &self,
        principal: &Principal,
    ) -> Result<Vec<berth_iam::Policy>, ApiError> {
        let name = match principal {
            Principal::User { name, .. } => name,
            Principal::AssumedRole { role, .. } => {
                let role = self
                    .store
                    .get_json::<RoleRecord>(&role_key(role))
                    .await
                    .map_err(store_err)?;
                return Ok(role.map(|(r, _)| role_policies(&r)).unwrap_or_default());
            }
        };
        let Some((u, _)) = self
            .store
            .get_json::<UserRecord>(&user_key(name))
            .await
            .map_err(store_err)?
        else {
            return Ok(Vec::new());
        };
        Ok(user_policies(&u))
    }
}

/// Commits `txn`; a lost race is IAM's `ConcurrentModification` (the client retries).
pub(crate) async fn commit(ctx: &crate::Ctx, txn: berth_store::Txn) -> Result<(), ApiError> {
    match ctx.store().txn(txn).await.map_err(store_err)? {
        berth_store::TxnResult::Committed { .. } => Ok(()),
        berth_store::TxnResult::Conflict { .. } => Err(iam_err(
            "ConcurrentModification",
            "The entity was changed by another request meanwhile; retry.",
        )),
    }
}

/// A policy document from a request: parsed, or IAM's `MalformedPolicyDocument`.
pub(crate) fn check_policy(doc: &str) -> Result<(), ApiError> {
    if doc.len() > 6144 {
        return Err(iam_err(
            "LimitExceeded",
            "Maximum policy size of 6144 bytes exceeded.",
        ));
    }
    berth_iam::Policy::parse(doc)
        .map(|_| ())
        .map_err(|e| iam_err("MalformedPolicyDocument", e.0))
}

/// One page of `items` after `marker` (an index IAM handed out), at most `max_items` (1 to
/// 1000, default 100): `(items, IsTruncated, Marker)`.
pub(crate) fn page<T>(
    items: Vec<T>,
    marker: Option<&str>,
    max_items: Option<&str>,
) -> Result<(Vec<T>, bool, Option<String>), ApiError> {
    let start = match marker {
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| iam_err("InvalidInput", format!("Invalid Marker: {m}")))?,
    };
    let max = match max_items {
        None => 100,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                iam_err(
                    "ValidationError",
                    format!("1 validation error detected: Value '{m}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"),
                )
            })?,
    };
    let total = items.len();
    let out: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let end = start.saturating_add(out.len());
    let truncated = end < total;
    Ok((out, truncated, truncated.then(|| end.to_string())))
}
