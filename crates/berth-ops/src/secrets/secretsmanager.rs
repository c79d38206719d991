//! Secrets Manager: secrets with versions and staging labels (AWSCURRENT / AWSPREVIOUS),
//! every value sealed at rest, deletion after a recovery window (or at once, forced), restore.
//! A secret whose recovery window has passed is gone: reads treat it as absent and the next
//! write over it removes it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use berth_model::secrets::{
    secret_arn, secret_key, validate_secret_name, SecretRecord, SecretVersion, SECRETS,
    STAGE_CURRENT,
};
use berth_model::{ApiError, ErrorCode};
use berth_store::{Revision, StoreExt, Txn, TxnResult};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use super::AwsTag;
use crate::{store_err, to_bytes, Ctx};

const DAY: f64 = 86_400.0;
const DEFAULT_KMS_KEY: &str = "alias/aws/secretsmanager";
/// Versions without a staging label beyond this many are dropped (AWS keeps about 100).
const MAX_VERSIONS: usize = 100;

fn invalid_param(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameterException, message)
}

fn invalid_request(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequestException, message)
}

pub(crate) fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFoundException,
        "Secrets Manager can't find the specified secret.",
    )
}

pub(crate) fn marked_for_deletion() -> ApiError {
    invalid_request(
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
}

fn busy() -> ApiError {
    ApiError::new(
        ErrorCode::InternalServiceError,
        "The secret changed concurrently; try again.",
    )
}

/// The associated data a secret's sealed values are bound to: its ARN (unique even when a
/// name is reused after a deletion).
pub(crate) fn aad(s: &SecretRecord) -> String {
    format!("secretsmanager:{}", s.arn)
}

/// Six random letters and digits, as AWS appends to a secret's ARN.
fn suffix() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..6)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Whether the secret's recovery window has passed (it no longer exists).
fn expired(s: &SecretRecord, now: f64) -> bool {
    s.deletion_date.is_some_and(|d| d <= now)
}

/// The secret a `SecretId` names (a name, a full ARN or an ARN without its suffix), with its
/// key and revision, unless it does not exist (or its recovery window has passed).
pub(crate) async fn find(
    ctx: &Ctx,
    secret_id: &str,
) -> Result<Option<(SecretRecord, String, Revision)>, ApiError> {
    let mut candidates = Vec::new();
    match secret_id.split_once(":secret:") {
        Some((_, rest)) if secret_id.starts_with("arn:") => {
            if let Some(i) = rest
                .len()
                .checked_sub(7)
                .filter(|&i| rest.as_bytes()[i] == b'-')
            {
                candidates.push(&rest[..i]);
            }
            candidates.push(rest);
        }
        _ => candidates.push(secret_id),
    }
    for name in candidates {
        let key = secret_key(name);
        let Some((s, rev)) = ctx
            .store()
            .get_json::<SecretRecord>(&key)
            .await
            .map_err(store_err)?
        else {
            continue;
        };
        let arn_ok = !secret_id.starts_with("arn:")
            || s.arn == secret_id
            || s.arn.strip_prefix(secret_id).is_some_and(|r| r.len() == 7);
        if arn_ok && !expired(&s, ctx.now()) {
            return Ok(Some((s, key, rev)));
        }
    }
    Ok(None)
}

async fn load(ctx: &Ctx, secret_id: &str) -> Result<(SecretRecord, String, Revision), ApiError> {
    find(ctx, secret_id).await?.ok_or_else(not_found)
}

async fn commit(ctx: &Ctx, key: &str, rev: Revision, s: &SecretRecord) -> Result<bool, ApiError> {
    let txn = Txn::new()
        .when_mod_revision(key, rev)
        .put(key, to_bytes(s)?);
    Ok(matches!(
        ctx.store().txn(txn).await.map_err(store_err)?,
        TxnResult::Committed { .. }
    ))
}

/// A value given in a request: text or (base64) bytes, exactly one.
fn given_value(
    string: Option<&String>,
    binary: Option<&String>,
) -> Result<Option<(bool, Vec<u8>)>, ApiError> {
    match (string, binary) {
        (Some(_), Some(_)) => Err(invalid_param(
            "You can't specify both a binary secret value and a string secret value in the \
             same secret.",
        )),
        (Some(s), None) => Ok(Some((false, s.as_bytes().to_vec()))),
        (None, Some(b)) => STANDARD
            .decode(b)
            .map(|b| Some((true, b)))
            .map_err(|_| invalid_param("SecretBinary is not valid base64.")),
        (None, None) => Ok(None),
    }
}

fn check_token(token: &str) -> Result<(), ApiError> {
    if !(32..=64).contains(&token.len()) {
        return Err(invalid_param(
            "ClientRequestToken must be between 32 and 64 characters long.",
        ));
    }
    Ok(())
}

fn check_kms(kms: Option<&String>) -> Result<(), ApiError> {
    match kms {
        Some(k) if k != DEFAULT_KMS_KEY => Err(invalid_param(format!(
            "KmsKeyId {k:?}: berth seals secrets with its own key, {DEFAULT_KMS_KEY}."
        ))),
        _ => Ok(()),
    }
}

/// Adds a version holding `value` with `stages` (or, when the token names a version with the
/// same value, changes nothing: a retry). Returns the version id.
fn add_version(
    ctx: &Ctx,
    s: &mut SecretRecord,
    token: Option<&str>,
    (binary, value): (bool, Vec<u8>),
    stages: &[String],
) -> Result<String, ApiError> {
    let id = token.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    if let Some(v) = s.version(&id) {
        let old = match (binary, &v.string, &v.binary) {
            (false, Some(x), _) | (true, _, Some(x)) => Some(ctx.open(&aad(s), x)?),
            _ => None,
        };
        if old.as_deref() == Some(value.as_slice()) {
            return Ok(id);
        }
        return Err(ApiError::new(
            ErrorCode::ResourceExistsException,
            "You can't modify an existing version, you can only create a new version.",
        ));
    }
    let sealed = ctx.seal(&aad(s), &value)?;
    s.versions.push(SecretVersion {
        version_id: id.clone(),
        stages: Vec::new(),
        created_date: ctx.now(),
        string: (!binary).then(|| sealed.clone()),
        binary: binary.then_some(sealed),
    });
    for stage in stages {
        s.move_stage(stage, &id);
    }
    while s.versions.len() > MAX_VERSIONS {
        match s.versions.iter().position(|v| v.stages.is_empty()) {
            Some(i) => s.versions.remove(i),
            None => break,
        };
    }
    s.last_changed_date = ctx.now();
    Ok(id)
}

/// The request of `CreateSecret`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    name: String,
    client_request_token: Option<String>,
    description: Option<String>,
    kms_key_id: Option<String>,
    secret_binary: Option<String>,
    secret_string: Option<String>,
    #[serde(default)]
    tags: Vec<AwsTag>,
    add_replica_regions: Option<Value>,
    #[serde(default)]
    force_overwrite_replica_secret: bool,
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "CrossAccountPrimaryARN")]
    cross_account_primary_arn: Option<String>,
}

/// `CreateSecret`: a new secret, with a first version (AWSCURRENT) when a value is given.
pub async fn create(ctx: &Ctx, req: CreateRequest) -> Result<Value, ApiError> {
    validate_secret_name(&req.name)?;
    if req.add_replica_regions.is_some() || req.force_overwrite_replica_secret {
        return Err(invalid_param(
            "AddReplicaRegions / ForceOverwriteReplicaSecret: berth serves one region; secrets \
             are not replicated.",
        ));
    }
    if req.kind.is_some() || req.cross_account_primary_arn.is_some() {
        return Err(invalid_param(
            "Type / CrossAccountPrimaryARN: berth has no managed external secrets and one \
             account.",
        ));
    }
    check_kms(req.kms_key_id.as_ref())?;
    if let Some(t) = &req.client_request_token {
        check_token(t)?;
    }
    let value = given_value(req.secret_string.as_ref(), req.secret_binary.as_ref())?;
    let key = secret_key(&req.name);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let existing = ctx
            .store()
            .get_json::<SecretRecord>(&key)
            .await
            .map_err(store_err)?;
        let rev = match &existing {
            Some((s, _)) if s.is_scheduled_for_deletion() && !expired(s, ctx.now()) => {
                return Err(invalid_request(
                    "You can't create this secret because a secret with this name is already \
                     scheduled for deletion.",
                ))
            }
            Some((s, rev)) if !expired(s, ctx.now()) => {
                // A retry of the same creation (same token, same value) answers as the first.
                if let (Some(t), Some(v)) = (&req.client_request_token, &value) {
                    let mut again = s.clone();
                    if add_version(ctx, &mut again, Some(t), v.clone(), &[]).is_ok()
                        && again.versions.len() == s.versions.len()
                    {
                        return Ok(json!({"ARN": s.arn, "Name": s.name, "VersionId": t}));
                    }
                }
                return Err(ApiError::new(
                    ErrorCode::ResourceExistsException,
                    format!(
                        "The operation failed because the secret {} already exists.",
                        req.name
                    ),
                ));
            }
            Some((_, rev)) => *rev,
            None => 0,
        };
        let now = ctx.now();
        let mut s = SecretRecord {
            name: req.name.clone(),
            arn: secret_arn(
                &ctx.region,
                &ctx.state.config.account_id,
                &req.name,
                &suffix(),
            ),
            description: req.description.clone(),
            kms_key_id: req.kms_key_id.clone(),
            tags: super::to_tags(req.tags.clone()),
            created_date: now,
            last_changed_date: now,
            deletion_date: None,
            deleted_date: None,
            versions: Vec::new(),
        };
        let version = match &value {
            Some(v) => Some(add_version(
                ctx,
                &mut s,
                req.client_request_token.as_deref(),
                v.clone(),
                &[STAGE_CURRENT.to_owned()],
            )?),
            None => None,
        };
        if commit(ctx, &key, rev, &s).await? {
            return Ok(json!({"ARN": s.arn, "Name": s.name, "VersionId": version}));
        }
    }
    Err(busy())
}

/// The request of `GetSecretValue`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetValueRequest {
    secret_id: String,
    version_id: Option<String>,
    version_stage: Option<String>,
}

/// The version a read asks for: by id and/or stage (AWSCURRENT by default).
pub(crate) fn pick<'s>(
    s: &'s SecretRecord,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> Result<&'s SecretVersion, ApiError> {
    let v = match (version_id, stage) {
        (Some(id), _) => s.version(id),
        (None, st) => s.staged(st.unwrap_or(STAGE_CURRENT)),
    };
    let v = v.ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceNotFoundException,
            format!(
                "Secrets Manager can't find the specified secret value for {}",
                match (version_id, stage) {
                    (Some(id), _) => format!("VersionId: {id}"),
                    (None, st) => format!("staging label: {}", st.unwrap_or(STAGE_CURRENT)),
                }
            ),
        )
    })?;
    if let (Some(_), Some(st)) = (version_id, stage) {
        if !v.stages.iter().any(|x| x == st) {
            return Err(invalid_param(
                "You provided a VersionStage that is not associated to the provided VersionId.",
            ));
        }
    }
    Ok(v)
}

/// `GetSecretValue`: a version's value (AWSCURRENT unless told otherwise).
pub async fn get_value(ctx: &Ctx, req: GetValueRequest) -> Result<Value, ApiError> {
    let (s, _, _) = load(ctx, &req.secret_id).await?;
    if s.is_scheduled_for_deletion() {
        return Err(marked_for_deletion());
    }
    let v = pick(&s, req.version_id.as_deref(), req.version_stage.as_deref())?;
    let string = v
        .string
        .as_ref()
        .map(|x| ctx.open_text(&aad(&s), x))
        .transpose()?;
    let binary = v
        .binary
        .as_ref()
        .map(|x| ctx.open(&aad(&s), x).map(|b| STANDARD.encode(b)))
        .transpose()?;
    Ok(json!({
        "ARN": s.arn,
        "Name": s.name,
        "VersionId": v.version_id,
        "SecretString": string,
        "SecretBinary": binary,
        "VersionStages": v.stages,
        "CreatedDate": v.created_date,
    }))
}

/// The request of `PutSecretValue`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutValueRequest {
    secret_id: String,
    client_request_token: Option<String>,
    secret_binary: Option<String>,
    secret_string: Option<String>,
    version_stages: Option<Vec<String>>,
    rotation_token: Option<String>,
}

/// `PutSecretValue`: a new version, given `VersionStages` (AWSCURRENT by default: the
/// version that was current becomes AWSPREVIOUS).
pub async fn put_value(ctx: &Ctx, req: PutValueRequest) -> Result<Value, ApiError> {
    if req.rotation_token.is_some() {
        return Err(invalid_param(
            "RotationToken: berth does not rotate secrets.",
        ));
    }
    if let Some(t) = &req.client_request_token {
        check_token(t)?;
    }
    let value = given_value(req.secret_string.as_ref(), req.secret_binary.as_ref())?
        .ok_or_else(|| invalid_param("You must provide either SecretString or SecretBinary."))?;
    let stages = req
        .version_stages
        .clone()
        .unwrap_or_else(|| vec![STAGE_CURRENT.to_owned()]);
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut s, key, rev) = load(ctx, &req.secret_id).await?;
        if s.is_scheduled_for_deletion() {
            return Err(marked_for_deletion());
        }
        let id = add_version(
            ctx,
            &mut s,
            req.client_request_token.as_deref(),
            value.clone(),
            &stages,
        )?;
        if commit(ctx, &key, rev, &s).await? {
            let staged = s.version(&id).map(|v| v.stages.clone()).unwrap_or_default();
            return Ok(
                json!({"ARN": s.arn, "Name": s.name, "VersionId": id, "VersionStages": staged}),
            );
        }
    }
    Err(busy())
}

/// The request of `UpdateSecret`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateRequest {
    secret_id: String,
    client_request_token: Option<String>,
    description: Option<String>,
    kms_key_id: Option<String>,
    secret_binary: Option<String>,
    secret_string: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
}

/// `UpdateSecret`: changes the description, and with a value adds a version (AWSCURRENT).
pub async fn update(ctx: &Ctx, req: UpdateRequest) -> Result<Value, ApiError> {
    if req.kind.is_some() {
        return Err(invalid_param(
            "Type: berth has no managed external secrets.",
        ));
    }
    check_kms(req.kms_key_id.as_ref())?;
    if let Some(t) = &req.client_request_token {
        check_token(t)?;
    }
    let value = given_value(req.secret_string.as_ref(), req.secret_binary.as_ref())?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut s, key, rev) = load(ctx, &req.secret_id).await?;
        if s.is_scheduled_for_deletion() {
            return Err(marked_for_deletion());
        }
        if let Some(d) = &req.description {
            s.description = Some(d.clone());
        }
        if let Some(k) = &req.kms_key_id {
            s.kms_key_id = Some(k.clone());
        }
        s.last_changed_date = ctx.now();
        let version = match &value {
            Some(v) => Some(add_version(
                ctx,
                &mut s,
                req.client_request_token.as_deref(),
                v.clone(),
                &[STAGE_CURRENT.to_owned()],
            )?),
            None => None,
        };
        if commit(ctx, &key, rev, &s).await? {
            return Ok(json!({"ARN": s.arn, "Name": s.name, "VersionId": version}));
        }
    }
    Err(busy())
}

/// The request of `DescribeSecret`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    secret_id: String,
}

fn versions_to_stages(s: &SecretRecord) -> Value {
    Value::Object(
        s.versions
            .iter()
            .filter(|v| !v.stages.is_empty())
            .map(|v| (v.version_id.clone(), json!(v.stages)))
            .collect(),
    )
}

/// `DescribeSecret`: the secret's details (never its value).
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let (s, _, _) = load(ctx, &req.secret_id).await?;
    Ok(json!({
        "ARN": s.arn,
        "Name": s.name,
        "Description": s.description,
        "KmsKeyId": s.kms_key_id,
        "RotationEnabled": false,
        "LastChangedDate": s.last_changed_date,
        "DeletedDate": s.deleted_date,
        "Tags": super::from_tags(&s.tags),
        "VersionIdsToStages": versions_to_stages(&s),
        "CreatedDate": s.created_date,
    }))
}

/// One of ListSecrets' filters.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFilter {
    key: String,
    #[serde(default)]
    values: Vec<String>,
}

/// The request of `ListSecrets`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListRequest {
    #[serde(default)]
    include_planned_deletion: bool,
    max_results: Option<i64>,
    next_token: Option<String>,
    #[serde(default)]
    filters: Vec<ListFilter>,
    sort_order: Option<String>,
    sort_by: Option<String>,
}

/// Whether `s` passes a filter: each value a prefix of the field (`!` negates), as Secrets
/// Manager matches.
fn passes(s: &SecretRecord, f: &ListFilter) -> Result<bool, ApiError> {
    let fields: Vec<&str> = match f.key.as_str() {
        "name" => vec![s.name.as_str()],
        "description" => s.description.iter().map(String::as_str).collect(),
        "tag-key" => s.tags.iter().map(|t| t.key.as_str()).collect(),
        "tag-value" => s.tags.iter().map(|t| t.value.as_str()).collect(),
        "all" => std::iter::once(s.name.as_str())
            .chain(s.description.as_deref())
            .chain(
                s.tags
                    .iter()
                    .flat_map(|t| [t.key.as_str(), t.value.as_str()]),
            )
            .collect(),
        other => {
            return Err(invalid_param(format!(
                "Filter key {other:?} is not supported by berth (name, description, tag-key, \
                 tag-value, all)."
            )))
        }
    };
    Ok(f.values.iter().any(|v| match v.strip_prefix('!') {
        Some(neg) => !fields.iter().any(|x| x.starts_with(neg)),
        None => fields.iter().any(|x| x.starts_with(v.as_str())),
    }))
}

/// `ListSecrets`: the secrets (not those scheduled for deletion unless asked), filtered and
/// sorted, a hundred per page by default.
pub async fn list(ctx: &Ctx, req: ListRequest) -> Result<Value, ApiError> {
    let descending = match req.sort_order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => {
            return Err(invalid_param(format!(
                "SortOrder {o:?} is not asc or desc."
            )))
        }
    };
    let now = ctx.now();
    let mut items = Vec::new();
    for (_, s, _) in ctx
        .store()
        .list_json::<SecretRecord>(SECRETS)
        .await
        .map_err(store_err)?
    {
        if expired(&s, now) || (s.is_scheduled_for_deletion() && !req.include_planned_deletion) {
            continue;
        }
        let mut ok = true;
        for f in &req.filters {
            ok &= passes(&s, f)?;
        }
        if !ok {
            continue;
        }
        let sort = match req.sort_by.as_deref() {
            None | Some("created-date") => format!("{:020.6}/{}", s.created_date, s.name),
            Some("last-changed-date") => format!("{:020.6}/{}", s.last_changed_date, s.name),
            Some("name") => s.name.clone(),
            Some(o) => {
                return Err(invalid_param(format!(
                "SortBy {o:?} is not supported by berth (created-date, last-changed-date, name)."
            )))
            }
        };
        let entry = json!({
            "ARN": s.arn,
            "Name": s.name,
            "Description": s.description,
            "KmsKeyId": s.kms_key_id,
            "RotationEnabled": false,
            "LastChangedDate": s.last_changed_date,
            "DeletedDate": s.deleted_date,
            "Tags": super::from_tags(&s.tags),
            "SecretVersionsToStages": versions_to_stages(&s),
            "CreatedDate": s.created_date,
        });
        items.push((sort, entry));
    }
    items.sort_by(|a, b| {
        if descending {
            b.0.cmp(&a.0)
        } else {
            a.0.cmp(&b.0)
        }
    });
    let size = match req.max_results {
        None => 100,
        Some(n) if (1..=100).contains(&n) => n,
        Some(n) => {
            return Err(invalid_param(format!(
                "MaxResults must be 1 to 100; got {n}."
            )))
        }
    };
    let (page, next) =
        crate::paging::paginate(items, Some(size), req.next_token.as_deref(), descending).map_err(
            |_| {
                ApiError::new(
                    ErrorCode::InvalidNextTokenException,
                    "The NextToken value is invalid.",
                )
            },
        )?;
    let mut out = json!({"SecretList": page});
    if let Some(t) = next {
        out["NextToken"] = Value::String(t);
    }
    Ok(out)
}

/// The request of `DeleteSecret`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequest {
    secret_id: String,
    recovery_window_in_days: Option<i64>,
    #[serde(default)]
    force_delete_without_recovery: bool,
}

/// `DeleteSecret`: schedules the deletion after a recovery window (7 to 30 days, 30 by
/// default), or deletes at once (`ForceDeleteWithoutRecovery`).
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    if req.force_delete_without_recovery && req.recovery_window_in_days.is_some() {
        return Err(invalid_param(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
        ));
    }
    let days = req.recovery_window_in_days.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(invalid_param(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
        ));
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut s, key, rev) = load(ctx, &req.secret_id).await?;
        let now = ctx.now();
        if req.force_delete_without_recovery {
            let txn = Txn::new().when_mod_revision(&key, rev).delete(&key);
            if let TxnResult::Committed { .. } = ctx.store().txn(txn).await.map_err(store_err)? {
                return Ok(json!({"ARN": s.arn, "Name": s.name, "DeletionDate": now}));
            }
            continue;
        }
        if s.is_scheduled_for_deletion() {
            return Err(invalid_request(
                "You can't perform this operation on the secret because it was already \
                 scheduled for deletion.",
            ));
        }
        let when = now + days as f64 * DAY;
        s.deletion_date = Some(when);
        s.deleted_date = Some(now);
        if commit(ctx, &key, rev, &s).await? {
            return Ok(json!({"ARN": s.arn, "Name": s.name, "DeletionDate": when}));
        }
    }
    Err(busy())
}

/// The request of `RestoreSecret`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestoreRequest {
    secret_id: String,
}

/// `RestoreSecret`: cancels a scheduled deletion.
pub async fn restore(ctx: &Ctx, req: RestoreRequest) -> Result<Value, ApiError> {
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut s, key, rev) = load(ctx, &req.secret_id).await?;
        if !s.is_scheduled_for_deletion() {
            return Ok(json!({"ARN": s.arn, "Name": s.name}));
        }
        s.deletion_date = None;
        s.deleted_date = None;
        if commit(ctx, &key, rev, &s).await? {
            return Ok(json!({"ARN": s.arn, "Name": s.name}));
        }
    }
    Err(busy())
}
