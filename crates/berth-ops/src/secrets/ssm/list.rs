//! SSM's listing reads: `GetParametersByPath`, `DescribeParameters`, `GetParameterHistory`,
//! `ListTagsForResource`, with SSM's page sizes, filters and error codes.

use berth_model::secrets::{Parameter, ParameterType, ParameterVersion, PARAMETERS};
use berth_model::{ApiError, ErrorCode};
use berth_store::StoreExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{load, not_found, parameter_json, shown_value, validation, DEFAULT_KEY_ID};
use crate::{store_err, Ctx};

/// One page of `items` (sorted by key) with SSM's limits: at most `max` per page and
/// `InvalidNextToken` for a token SSM did not issue.
fn page<T>(
    items: Vec<(String, T)>,
    max_results: Option<i64>,
    max: i64,
    token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match max_results {
        None => max,
        Some(n) if (1..=max).contains(&n) => n,
        Some(n) => {
            return Err(validation(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy \
                 constraint: Member must have value less than or equal to {max}"
            )))
        }
    };
    crate::paging::paginate(items, Some(size), token, false).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidNextToken,
            "The specified token is not valid.",
        )
    })
}

fn with_next(mut v: Value, next: Option<String>) -> Value {
    if let Some(t) = next {
        v["NextToken"] = Value::String(t);
    }
    v
}

async fn all_parameters(ctx: &Ctx) -> Result<Vec<Parameter>, ApiError> {
    Ok(ctx
        .store()
        .list_json::<Parameter>(PARAMETERS)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|(_, p, _)| p)
        .collect())
}

/// One of SSM's `ParameterStringFilter`s.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterFilter {
    key: String,
    option: Option<String>,
    #[serde(default)]
    values: Vec<String>,
}

/// Whether `name` lies under `path` (one level below, or any depth when `recursive`).
fn under(name: &str, path: &str, recursive: bool) -> bool {
    let base = if path == "/" {
        "/".to_owned()
    } else {
        format!("{}/", path.trim_end_matches('/'))
    };
    match name.strip_prefix(&base) {
        Some(rest) => !rest.is_empty() && (recursive || !rest.contains('/')),
        None => false,
    }
}

/// Whether `p` passes `f`; unknown keys and options are SSM's errors.
fn matches(p: &Parameter, v: &ParameterVersion, f: &ParameterFilter) -> Result<bool, ApiError> {
    let option = f.option.as_deref().unwrap_or("Equals");
    let bad_option = || {
        ApiError::new(
            ErrorCode::InvalidFilterOption,
            format!(
                "The filter option {option:?} is not valid for key {:?}.",
                f.key
            ),
        )
    };
    let any = |field: &str| -> Result<bool, ApiError> {
        match option {
            "Equals" => Ok(f.values.iter().any(|x| x == field)),
            "BeginsWith" => Ok(f.values.iter().any(|x| field.starts_with(x.as_str()))),
            "Contains" => Ok(f.values.iter().any(|x| field.contains(x.as_str()))),
            _ => Err(bad_option()),
        }
    };
    if let Some(tag) = f.key.strip_prefix("tag:") {
        if option != "Equals" {
            return Err(bad_option());
        }
        return Ok(p
            .tags
            .iter()
            .any(|t| t.key == tag && (f.values.is_empty() || f.values.contains(&t.value))));
    }
    match f.key.as_str() {
        "Name" => any(&p.name),
        "Type" if option == "Equals" => any(v.kind.as_str()),
        "DataType" if option == "Equals" => any(&v.data_type),
        "Tier" if option == "Equals" => any("Standard"),
        "KeyId" if option == "Equals" => {
            Ok(v.kind == ParameterType::SecureString && any(DEFAULT_KEY_ID)?)
        }
        "Label" if option == "Equals" => Ok(v.labels.iter().any(|l| f.values.contains(l))),
        "Path" => {
            let recursive = match option {
                "Recursive" => true,
                "OneLevel" => false,
                _ => return Err(bad_option()),
            };
            Ok(f.values.iter().any(|path| under(&p.name, path, recursive)))
        }
        "Type" | "DataType" | "Tier" | "KeyId" | "Label" => Err(bad_option()),
        other => Err(ApiError::new(
            ErrorCode::InvalidFilterKey,
            format!("The filter key {other:?} is not valid."),
        )),
    }
}

fn filtered(
    p: &Parameter,
    filters: &[ParameterFilter],
) -> Result<Option<ParameterVersion>, ApiError> {
    let Some(v) = p.latest() else {
        return Ok(None);
    };
    for f in filters {
        if !matches(p, v, f)? {
            return Ok(None);
        }
    }
    Ok(Some(v.clone()))
}

/// The request of `GetParametersByPath`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetByPathRequest {
    path: String,
    #[serde(default)]
    recursive: bool,
    #[serde(default)]
    parameter_filters: Vec<ParameterFilter>,
    #[serde(default)]
    with_decryption: bool,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// `GetParametersByPath`: the parameters one level under `Path` (or every level,
/// `Recursive`), ten per page by default.
pub async fn get_by_path(ctx: &Ctx, req: GetByPathRequest) -> Result<Value, ApiError> {
    if !req.path.starts_with('/') {
        return Err(validation(format!(
            "The parameter path {:?} is not valid: a path begins with /.",
            req.path
        )));
    }
    if let Some(f) = req.parameter_filters.iter().find(|f| {
        !matches!(f.key.as_str(), "Type" | "KeyId" | "Label") && !f.key.starts_with("tag:")
    }) {
        return Err(ApiError::new(
            ErrorCode::InvalidFilterKey,
            format!(
                "The filter key {:?} is not valid for GetParametersByPath.",
                f.key
            ),
        ));
    }
    let mut items = Vec::new();
    for p in all_parameters(ctx).await? {
        if !under(&p.name, &req.path, req.recursive) {
            continue;
        }
        if let Some(v) = filtered(&p, &req.parameter_filters)? {
            items.push((p.name.clone(), (p, v)));
        }
    }
    let (page, next) = page(items, req.max_results, 10, req.next_token.as_deref())?;
    let out = page
        .iter()
        .map(|(p, v)| parameter_json(ctx, p, v, None, req.with_decryption))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(with_next(json!({"Parameters": out}), next))
}

/// One of the legacy `ParametersFilter`s of DescribeParameters.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LegacyFilter {
    key: String,
    values: Vec<String>,
}

/// The request of `DescribeParameters`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    #[serde(default)]
    filters: Vec<LegacyFilter>,
    #[serde(default)]
    parameter_filters: Vec<ParameterFilter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    #[serde(default)]
    shared: bool,
}

fn metadata(ctx: &Ctx, p: &Parameter, v: &ParameterVersion) -> Value {
    json!({
        "Name": p.name,
        "ARN": ctx.parameter_arn(&p.name),
        "Type": v.kind.as_str(),
        "KeyId": (v.kind == ParameterType::SecureString).then_some(DEFAULT_KEY_ID),
        "LastModifiedDate": v.last_modified_date,
        "LastModifiedUser": v.last_modified_user,
        "Description": v.description,
        "AllowedPattern": v.allowed_pattern,
        "Version": v.version,
        "Tier": "Standard",
        "Policies": [],
        "DataType": v.data_type,
    })
}

/// `DescribeParameters`: every parameter's metadata (never its value), filtered by name,
/// type, path, label, tag..., fifty per page by default.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    if !req.filters.is_empty() && !req.parameter_filters.is_empty() {
        return Err(validation(
            "You can use either Filters or ParameterFilters in a single request.",
        ));
    }
    if req.shared {
        return Err(validation(
            "Shared: berth has one account; no parameters are shared with it.",
        ));
    }
    let mut filters = req.parameter_filters.clone();
    for f in &req.filters {
        if !matches!(f.key.as_str(), "Name" | "Type" | "KeyId") {
            return Err(ApiError::new(
                ErrorCode::InvalidFilterKey,
                format!("The filter key {:?} is not valid.", f.key),
            ));
        }
        // The legacy Name filter matches names that begin with a value.
        filters.push(ParameterFilter {
            key: f.key.clone(),
            option: Some(
                if f.key == "Name" {
                    "BeginsWith"
                } else {
                    "Equals"
                }
                .to_owned(),
            ),
            values: f.values.clone(),
        });
    }
    let mut items = Vec::new();
    for p in all_parameters(ctx).await? {
        if let Some(v) = filtered(&p, &filters)? {
            items.push((p.name.clone(), metadata(ctx, &p, &v)));
        }
    }
    let (page, next) = page(items, req.max_results, 50, req.next_token.as_deref())?;
    Ok(with_next(json!({"Parameters": page}), next))
}

/// The request of `GetParameterHistory`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryRequest {
    name: String,
    #[serde(default)]
    with_decryption: bool,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// `GetParameterHistory`: every version kept, oldest first, with its labels.
pub async fn history(ctx: &Ctx, req: HistoryRequest) -> Result<Value, ApiError> {
    let (p, _) = load(ctx, &req.name)
        .await?
        .ok_or_else(|| not_found(&req.name))?;
    let items = p
        .versions
        .iter()
        .map(|v| (format!("{:020}", v.version), v))
        .collect();
    let (page, next) = page(items, req.max_results, 50, req.next_token.as_deref())?;
    let out = page
        .into_iter()
        .map(|v| {
            let mut m = metadata(ctx, &p, v);
            m["Value"] = Value::String(shown_value(ctx, &p.name, v, req.with_decryption)?);
            m["Labels"] = json!(v.labels);
            if let Value::Object(o) = &mut m {
                o.remove("ARN");
            }
            Ok(m)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(with_next(json!({"Parameters": out}), next))
}

/// The request of `ListTagsForResource`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsRequest {
    resource_type: String,
    resource_id: String,
}

/// `ListTagsForResource` (ResourceType `Parameter`): the tags given at creation.
pub async fn list_tags(ctx: &Ctx, req: ListTagsRequest) -> Result<Value, ApiError> {
    if req.resource_type != "Parameter" {
        return Err(validation(format!(
            "ResourceType {:?} is not supported by berth: only Parameter.",
            req.resource_type
        )));
    }
    let (p, _) = load(ctx, &req.resource_id)
        .await?
        .ok_or_else(|| not_found(&req.resource_id))?;
    Ok(json!({"TagList": super::super::from_tags(&p.tags)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_one_level_or_recursive() {
        assert!(under("/a/b", "/a", false));
        assert!(!under("/a/b/c", "/a", false));
        assert!(under("/a/b/c", "/a/", true));
        assert!(under("/x", "/", false));
        assert!(!under("/ab", "/a", true));
        assert!(!under("plain", "/", true));
    }
}
