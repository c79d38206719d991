//! SSM Parameter Store: parameters with versions and labels, hierarchies (`/a/b/c`),
//! SecureString sealed at rest. Writes (`PutParameter`, `LabelParameterVersion`, deletes) are
//! here; the listing reads (`GetParametersByPath`, `DescribeParameters`,
//! `GetParameterHistory`, `ListTagsForResource`) are in `list`.

mod list;

pub use list::{
    describe, get_by_path, history, list_tags, DescribeRequest, GetByPathRequest, HistoryRequest,
    ListTagsRequest,
};

use berth_model::secrets::{
    parameter_key, validate_parameter_name, Parameter, ParameterType, ParameterVersion,
    StoredValue, MAX_PARAMETER_VERSIONS,
};
use berth_model::{ApiError, ErrorCode};
use berth_store::{Revision, StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::AwsTag;
use crate::{store_err, to_bytes, Ctx};

/// The only KMS key berth seals SecureStrings with (AWS's default for SSM).
pub(crate) const DEFAULT_KEY_ID: &str = "alias/aws/ssm";
/// SSM's Standard tier: values up to 4 KB.
const MAX_VALUE: usize = 4096;
const MAX_LABELS: usize = 10;

pub(crate) fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ValidationException, message)
}

pub(crate) fn not_found(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ParameterNotFound,
        format!("Parameter {name} not found."),
    )
}

fn too_many_updates() -> ApiError {
    ApiError::new(
        ErrorCode::TooManyUpdates,
        "There are concurrent updates for a resource that supports one update at a time.",
    )
}

/// The associated data a parameter's sealed values are bound to.
pub(crate) fn aad(name: &str) -> String {
    format!("ssm:{name}")
}

impl Ctx {
    pub(crate) fn parameter_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:ssm:{}:{}:parameter/{}",
            self.region,
            self.state.config.account_id,
            name.trim_start_matches('/')
        )
    }
}

/// Loads a parameter.
pub(crate) async fn load(ctx: &Ctx, name: &str) -> Result<Option<(Parameter, Revision)>, ApiError> {
    ctx.store()
        .get_json::<Parameter>(&parameter_key(name))
        .await
        .map_err(store_err)
}

/// A name with an optional `:version` or `:label` selector (names never hold `:`).
pub(crate) struct Selector<'a> {
    pub name: &'a str,
    pub selector: Option<&'a str>,
}

pub(crate) fn split_selector(s: &str) -> Selector<'_> {
    match s.split_once(':') {
        Some((name, sel)) => Selector {
            name,
            selector: Some(sel),
        },
        None => Selector {
            name: s,
            selector: None,
        },
    }
}

/// The version a selector picks.
pub(crate) fn select<'p>(
    p: &'p Parameter,
    sel: &Selector<'_>,
) -> Result<&'p ParameterVersion, ApiError> {
    let missing = |what: &str| {
        ApiError::new(
            ErrorCode::ParameterVersionNotFound,
            format!(
                "Systems Manager could not find version {what} of {}. Verify the version and try again.",
                sel.name
            ),
        )
    };
    match sel.selector {
        None => p.latest().ok_or_else(|| not_found(sel.name)),
        Some(s) => match s.parse::<u64>() {
            Ok(n) => p.version(n).ok_or_else(|| missing(s)),
            Err(_) => p.labelled(s).ok_or_else(|| missing(s)),
        },
    }
}

/// The value shown for a version: plain text, or (SecureString) the plain text only
/// `WithDecryption`, else the ciphertext.
pub(crate) fn shown_value(
    ctx: &Ctx,
    name: &str,
    v: &ParameterVersion,
    decrypt: bool,
) -> Result<String, ApiError> {
    match (&v.value, decrypt) {
        (StoredValue::Plain(s), _) => Ok(s.clone()),
        (sealed @ StoredValue::Sealed(_), true) => ctx.open_text(&aad(name), sealed),
        (StoredValue::Sealed(s), false) => Ok(s.clone()),
    }
}

/// SSM's `Parameter` shape.
pub(crate) fn parameter_json(
    ctx: &Ctx,
    p: &Parameter,
    v: &ParameterVersion,
    selector: Option<&str>,
    decrypt: bool,
) -> Result<Value, ApiError> {
    Ok(json!({
        "Name": p.name,
        "Type": v.kind.as_str(),
        "Value": shown_value(ctx, &p.name, v, decrypt)?,
        "Version": v.version,
        "Selector": selector.map(|s| format!(":{s}")),
        "LastModifiedDate": v.last_modified_date,
        "ARN": ctx.parameter_arn(&p.name),
        "DataType": v.data_type,
    }))
}

/// The request of `PutParameter`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRequest {
    name: String,
    value: String,
    #[serde(rename = "Type")]
    kind: Option<String>,
    description: Option<String>,
    key_id: Option<String>,
    #[serde(default)]
    overwrite: bool,
    allowed_pattern: Option<String>,
    tags: Option<Vec<AwsTag>>,
    tier: Option<String>,
    policies: Option<String>,
    data_type: Option<String>,
}

/// Checks what PutParameter cannot honour here and the value against its pattern.
fn check_put(req: &PutRequest, kind: ParameterType) -> Result<(), ApiError> {
    validate_parameter_name(&req.name)?;
    if req.value.is_empty() || req.value.len() > MAX_VALUE {
        return Err(validation(format!(
            "1 validation error detected: Value at 'value' failed to satisfy constraint: \
             Member must have length between 1 and {MAX_VALUE} (the Standard tier's limit)."
        )));
    }
    if let Some(t) = req.tier.as_deref().filter(|t| *t != "Standard") {
        return Err(validation(format!(
            "Tier {t:?} is not supported by berth: only Standard parameters."
        )));
    }
    if req.policies.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(validation(
            "Policies are not supported by berth (they need the Advanced tier).",
        ));
    }
    if let Some(d) = req.data_type.as_deref().filter(|d| *d != "text") {
        return Err(validation(format!(
            "DataType {d:?} is not supported by berth: only text."
        )));
    }
    if let Some(k) = &req.key_id {
        if kind != ParameterType::SecureString {
            return Err(validation(
                "KeyId is only valid for a SecureString parameter.",
            ));
        }
        if k != DEFAULT_KEY_ID {
            return Err(ApiError::new(
                ErrorCode::InvalidKeyId,
                format!(
                    "KeyId {k:?}: berth seals SecureStrings with its own key, {DEFAULT_KEY_ID}."
                ),
            ));
        }
    }
    if req.overwrite && req.tags.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(validation(
            "Invalid request: tags and overwrite can't be used together. To create a parameter \
             with tags, please remove overwrite flag. To update tags for an existing parameter, \
             please use AddTagsToResource or RemoveTagsFromResource.",
        ));
    }
    if let Some(p) = &req.allowed_pattern {
        let re = regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidAllowedPatternException,
                format!("The allowed pattern {p:?} is not a valid regular expression: {e}"),
            )
        })?;
        if !re.is_match(&req.value) {
            return Err(ApiError::new(
                ErrorCode::ParameterPatternMismatchException,
                format!("Parameter value, cannot be validated against allowedPattern: {p}"),
            ));
        }
    }
    Ok(())
}

/// `PutParameter`: creates a parameter, or (`Overwrite`) adds a version to it.
pub async fn put(ctx: &Ctx, req: PutRequest) -> Result<Value, ApiError> {
    let key = parameter_key(&req.name);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let existing = load(ctx, &req.name).await?;
        let kind = match (&req.kind, &existing) {
            (Some(t), _) => ParameterType::parse(t)?,
            (None, Some((p, _))) => p.latest().map_or(ParameterType::String, |v| v.kind),
            (None, None) => {
                return Err(validation(
                    "A parameter type is required when you create a parameter.",
                ))
            }
        };
        check_put(&req, kind)?;
        let (mut p, rev) = match existing {
            Some(_) if !req.overwrite => {
                return Err(ApiError::new(
                    ErrorCode::ParameterAlreadyExists,
                    "The parameter already exists. To overwrite this value, set the overwrite \
                     option in the request to true.",
                ))
            }
            Some(e) => e,
            None => (
                Parameter {
                    name: req.name.clone(),
                    tags: super::to_tags(req.tags.clone().unwrap_or_default()),
                    versions: Vec::new(),
                },
                0,
            ),
        };
        let version = p.latest().map_or(1, |v| v.version + 1);
        if p.versions.len() >= MAX_PARAMETER_VERSIONS {
            if p.versions.first().is_some_and(|v| !v.labels.is_empty()) {
                return Err(ApiError::new(
                    ErrorCode::ParameterMaxVersionLimitExceeded,
                    format!(
                        "You attempted to create a new version of {} by calling the PutParameter \
                         API with the overwrite flag. Version {}, the oldest version, can't be \
                         deleted because it has a label associated with it. Move the label to \
                         another version of the parameter, and try again.",
                        req.name, p.versions[0].version
                    ),
                ));
            }
            p.versions.remove(0);
        }
        let value = match kind {
            ParameterType::SecureString => ctx.seal(&aad(&req.name), req.value.as_bytes())?,
            _ => StoredValue::Plain(req.value.clone()),
        };
        let previous = p.latest().cloned();
        p.versions.push(ParameterVersion {
            version,
            kind,
            value,
            // An overwrite without a description keeps the one before, as SSM does.
            description: req
                .description
                .clone()
                .or_else(|| previous.as_ref().and_then(|v| v.description.clone())),
            allowed_pattern: req
                .allowed_pattern
                .clone()
                .or_else(|| previous.as_ref().and_then(|v| v.allowed_pattern.clone())),
            data_type: req.data_type.clone().unwrap_or_else(|| "text".to_owned()),
            last_modified_date: ctx.now(),
            last_modified_user: ctx.principal_arn(),
            labels: Vec::new(),
        });
        let txn = Txn::new()
            .when_mod_revision(&key, rev)
            .put(&key, to_bytes(&p)?);
        match ctx.store().txn(txn).await.map_err(store_err)? {
            TxnResult::Committed { .. } => {
                return Ok(json!({"Version": version, "Tier": "Standard"}))
            }
            TxnResult::Conflict { .. } => continue,
        }
    }
    Err(too_many_updates())
}

/// The request of `GetParameter`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRequest {
    name: String,
    #[serde(default)]
    with_decryption: bool,
}

/// `GetParameter`: one parameter, by name, `name:version` or `name:label`.
pub async fn get(ctx: &Ctx, req: GetRequest) -> Result<Value, ApiError> {
    let sel = split_selector(&req.name);
    let (p, _) = load(ctx, sel.name)
        .await?
        .ok_or_else(|| not_found(sel.name))?;
    let v = select(&p, &sel)?;
    Ok(json!({"Parameter": parameter_json(ctx, &p, v, sel.selector, req.with_decryption)?}))
}

/// The request of `GetParameters`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetManyRequest {
    names: Vec<String>,
    #[serde(default)]
    with_decryption: bool,
}

/// `GetParameters`: up to ten parameters; those not found (or without the selected version)
/// are listed in `InvalidParameters`.
pub async fn get_many(ctx: &Ctx, req: GetManyRequest) -> Result<Value, ApiError> {
    if req.names.is_empty() || req.names.len() > 10 {
        return Err(validation(
            "1 validation error detected: Value at 'names' failed to satisfy constraint: \
             Member must have length between 1 and 10",
        ));
    }
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    for n in &req.names {
        let sel = split_selector(n);
        let Some((p, _)) = load(ctx, sel.name).await? else {
            invalid.push(n.clone());
            continue;
        };
        match select(&p, &sel) {
            Ok(v) => found.push(parameter_json(
                ctx,
                &p,
                v,
                sel.selector,
                req.with_decryption,
            )?),
            Err(_) => invalid.push(n.clone()),
        }
    }
    Ok(json!({"Parameters": found, "InvalidParameters": invalid}))
}

/// The request of `DeleteParameter`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    name: String,
}

/// Deletes a parameter if it exists; whether it did.
async fn delete_one(ctx: &Ctx, name: &str) -> Result<bool, ApiError> {
    let key = parameter_key(name);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let Some(kv) = ctx.store().get(&key).await.map_err(store_err)? else {
            return Ok(false);
        };
        let txn = Txn::new()
            .when_mod_revision(&key, kv.mod_revision)
            .delete(&key);
        if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            return Ok(true);
        }
    }
    Err(too_many_updates())
}

/// `DeleteParameter`: deletes a parameter and all its versions.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    if delete_one(ctx, &req.name).await? {
        Ok(json!({}))
    } else {
        Err(not_found(&req.name))
    }
}

/// The request of `DeleteParameters`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteManyRequest {
    names: Vec<String>,
}

/// `DeleteParameters`: deletes up to ten parameters; those that did not exist are listed in
/// `InvalidParameters`.
pub async fn delete_many(ctx: &Ctx, req: DeleteManyRequest) -> Result<Value, ApiError> {
    if req.names.is_empty() || req.names.len() > 10 {
        return Err(validation(
            "1 validation error detected: Value at 'names' failed to satisfy constraint: \
             Member must have length between 1 and 10",
        ));
    }
    let (mut deleted, mut invalid) = (Vec::new(), Vec::new());
    for n in req.names {
        if delete_one(ctx, &n).await? {
            deleted.push(n);
        } else {
            invalid.push(n);
        }
    }
    Ok(json!({"DeletedParameters": deleted, "InvalidParameters": invalid}))
}

/// The request of `LabelParameterVersion`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelRequest {
    name: String,
    parameter_version: Option<u64>,
    labels: Vec<String>,
}

/// SSM's rules for a label: at most 100 characters of letters, digits and `._-`, not
/// starting with a digit, `aws` or `ssm`.
fn label_ok(l: &str) -> bool {
    let lower = l.to_ascii_lowercase();
    !l.is_empty()
        && l.len() <= 100
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !l.starts_with(|c: char| c.is_ascii_digit())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
}

/// `LabelParameterVersion`: attaches labels to a version (the latest by default), moving
/// each from the version that had it. Labels that break SSM's rules come back in
/// `InvalidLabels`.
pub async fn label(ctx: &Ctx, req: LabelRequest) -> Result<Value, ApiError> {
    if req.labels.is_empty() || req.labels.len() > MAX_LABELS {
        return Err(validation(
            "1 validation error detected: Value at 'labels' failed to satisfy constraint: \
             Member must have length between 1 and 10",
        ));
    }
    let key = parameter_key(&req.name);
    let (valid, invalid): (Vec<String>, Vec<String>) =
        req.labels.iter().cloned().partition(|l| label_ok(l));
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut p, rev) = load(ctx, &req.name)
            .await?
            .ok_or_else(|| not_found(&req.name))?;
        let version = match req.parameter_version {
            Some(n) => n,
            None => p.latest().map_or(0, |v| v.version),
        };
        if p.version(version).is_none() {
            return Err(ApiError::new(
                ErrorCode::ParameterVersionNotFound,
                format!(
                    "Systems Manager could not find version {version} of {}. Verify the version \
                     and try again.",
                    req.name
                ),
            ));
        }
        for v in &mut p.versions {
            if v.version != version {
                v.labels.retain(|l| !valid.contains(l));
            }
        }
        let Some(target) = p.versions.iter_mut().find(|v| v.version == version) else {
            continue;
        };
        for l in &valid {
            if !target.labels.contains(l) {
                target.labels.push(l.clone());
            }
        }
        if target.labels.len() > MAX_LABELS {
            return Err(ApiError::new(
                ErrorCode::ParameterVersionLabelLimitExceeded,
                format!(
                    "A parameter version can have maximum {MAX_LABELS} labels. Move one or more \
                     labels to another version and try again."
                ),
            ));
        }
        let txn = Txn::new()
            .when_mod_revision(&key, rev)
            .put(&key, to_bytes(&p)?);
        if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
            return Ok(json!({"InvalidLabels": invalid, "ParameterVersion": version}));
        }
    }
    Err(too_many_updates())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_ssm_rules() {
        for ok in ["prod", "Release-1.2", "a_b"] {
            assert!(label_ok(ok), "{ok}");
        }
        for bad in ["", "1st", "awsx", "SSMy", "a/b", "a:b", &"x".repeat(101)] {
            assert!(!label_ok(bad), "{bad}");
        }
        let s = split_selector("/a/b:3");
        assert_eq!((s.name, s.selector), ("/a/b", Some("3")));
    }
}
