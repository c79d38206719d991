//! Listener rule conditions, in both of ELBv2's forms (the legacy `Field` + `Values` and the
//! `*Config` members), resolved to one [`ConditionMatch`] the data plane evaluates. Split from
//! the records because, like actions, they are a request language with their own checks.

use serde::{Deserialize, Serialize};

use super::lenient::list;
use super::validation;
use crate::ApiError;

/// A rule condition: the legacy `Field` + `Values` form or a `*Config` form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleCondition {
    /// The legacy form's field: `path-pattern`, `host-header`, `http-header`,
    /// `http-request-method`, `query-string` or `source-ip`.
    #[serde(default)]
    pub field: Option<String>,
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    /// The legacy form's values (path and host patterns).
    pub values: Vec<String>,
    /// Host names the request's `Host` must match (`*` and `?` wildcards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_header_config: Option<ValuesConfig>,
    /// Paths the request's path must match (`*` and `?` wildcards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_pattern_config: Option<ValuesConfig>,
    /// A header, and values it must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_header_config: Option<HttpHeaderConfig>,
    /// Query parameters the request must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string_config: Option<QueryStringConfig>,
    /// HTTP methods the request must use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_request_method_config: Option<ValuesConfig>,
    /// CIDR blocks the client's address must be in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip_config: Option<ValuesConfig>,
}

/// The values of a condition, any of which may match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValuesConfig {
    /// The values (patterns, methods or CIDR blocks).
    #[serde(default, deserialize_with = "list")]
    pub values: Vec<String>,
}

/// A header condition: the header, and values any of which may match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpHeaderConfig {
    /// The header's name.
    #[serde(default)]
    pub http_header_name: Option<String>,
    /// Patterns its value may match (`*` and `?` wildcards).
    #[serde(default, deserialize_with = "list")]
    pub values: Vec<String>,
}

/// A query string condition: pairs any of which may match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryStringConfig {
    /// The key/value pairs.
    #[serde(default, deserialize_with = "list")]
    pub values: Vec<QueryStringPair>,
}

/// One query parameter a request may match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryStringPair {
    /// The parameter's name (absent: any parameter with the value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The value it must have (`*` and `?` wildcards).
    #[serde(default)]
    pub value: String,
}

/// What a condition tests, with its values, whichever form the client used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionMatch {
    /// The request path matches one of the patterns.
    PathPattern(Vec<String>),
    /// The `Host` header matches one of the patterns.
    HostHeader(Vec<String>),
    /// The header is present and matches one of the patterns.
    HttpHeader {
        /// The header's name.
        name: String,
        /// Patterns its value may match.
        values: Vec<String>,
    },
    /// The method is one of these.
    HttpRequestMethod(Vec<String>),
    /// One of the query parameters is present with its value.
    QueryString(Vec<QueryStringPair>),
    /// The client's address is in one of these CIDR blocks.
    SourceIp(Vec<String>),
}

impl RuleCondition {
    /// The condition in one normalised form, or why it is invalid.
    pub fn resolve(&self) -> Result<ConditionMatch, ApiError> {
        let field = self.field.as_deref().unwrap_or("");
        let pick = |cfg: Option<&ValuesConfig>| -> Result<Vec<String>, ApiError> {
            match cfg {
                Some(c) if !self.values.is_empty() => Err(validation(format!(
                    "Condition '{field}' cannot have both Values and a config with values: {:?}",
                    c.values
                ))),
                Some(c) => Ok(c.values.clone()),
                None => Ok(self.values.clone()),
            }
        };
        let m = match field {
            "path-pattern" => ConditionMatch::PathPattern(pick(self.path_pattern_config.as_ref())?),
            "host-header" => ConditionMatch::HostHeader(pick(self.host_header_config.as_ref())?),
            "http-request-method" => ConditionMatch::HttpRequestMethod(pick(
                self.http_request_method_config.as_ref(),
            )?),
            "source-ip" => ConditionMatch::SourceIp(pick(self.source_ip_config.as_ref())?),
            "http-header" => {
                let c = self.http_header_config.as_ref().ok_or_else(|| {
                    validation("An http-header condition needs an HttpHeaderConfig")
                })?;
                let name = c.http_header_name.clone().unwrap_or_default();
                if name.is_empty() || name.len() > 40 {
                    return Err(validation(
                        "An http-header condition needs an HttpHeaderName of 1-40 characters",
                    ));
                }
                ConditionMatch::HttpHeader {
                    name,
                    values: c.values.clone(),
                }
            }
            "query-string" => ConditionMatch::QueryString(
                self.query_string_config
                    .as_ref()
                    .ok_or_else(|| validation("A query-string condition needs a QueryStringConfig"))?
                    .values
                    .clone(),
            ),
            "" => return Err(validation("A condition needs a Field")),
            other => {
                return Err(validation(format!(
                    "Condition field '{other}' must be one of [path-pattern, host-header, http-header, http-request-method, query-string, source-ip]"
                )))
            }
        };
        Ok(m)
    }

    /// Checks the condition: a known field, its values' count and shape.
    pub fn validate(&self) -> Result<(), ApiError> {
        let m = self.resolve()?;
        let n = match &m {
            ConditionMatch::PathPattern(v)
            | ConditionMatch::HostHeader(v)
            | ConditionMatch::HttpRequestMethod(v)
            | ConditionMatch::SourceIp(v) => v.len(),
            ConditionMatch::HttpHeader { values, .. } => values.len(),
            ConditionMatch::QueryString(v) => v.len(),
        };
        if n == 0 {
            return Err(validation("A condition needs at least one value"));
        }
        if n > 5 {
            return Err(validation("A condition has at most 5 values"));
        }
        match &m {
            ConditionMatch::PathPattern(v) | ConditionMatch::HostHeader(v) => {
                if v.iter().any(|s| s.is_empty() || s.len() > 128) {
                    return Err(validation("Condition values are 1-128 characters"));
                }
            }
            ConditionMatch::HttpRequestMethod(v) => {
                let ok = |s: &String| {
                    !s.is_empty()
                        && s.len() <= 40
                        && s.bytes()
                            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
                };
                if !v.iter().all(ok) {
                    return Err(validation(
                        "HTTP request methods are upper-case letters, '-' and '_'",
                    ));
                }
            }
            ConditionMatch::SourceIp(v) => {
                if !v.iter().all(|s| is_cidr(s)) {
                    return Err(validation("source-ip values must be CIDR blocks"));
                }
            }
            ConditionMatch::HttpHeader { .. } | ConditionMatch::QueryString(_) => {}
        }
        Ok(())
    }
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, len)) = s.split_once('/') else {
        return false;
    };
    let Ok(len) = len.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => len <= 32,
        Ok(std::net::IpAddr::V6(_)) => len <= 128,
        Err(_) => false,
    }
}

/// Checks a rule's conditions: 1-5 of them, each valid, each field at most once (except
/// http-header and query-string, which may repeat).
pub fn validate_conditions(conds: &[RuleCondition]) -> Result<(), ApiError> {
    if conds.is_empty() {
        return Err(validation("A rule needs at least one condition"));
    }
    let mut seen = std::collections::HashSet::new();
    for c in conds {
        c.validate()?;
        let f = c.field.as_deref().unwrap_or("");
        if !matches!(f, "http-header" | "query-string") && !seen.insert(f) {
            return Err(validation(format!(
                "A rule can have at most one '{f}' condition"
            )));
        }
    }
    if conds.len() > 5 {
        return Err(validation("A rule has at most 5 conditions"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_in_both_forms() {
        let legacy: RuleCondition =
            serde_json::from_value(json!({"Field": "path-pattern", "Values": ["/api/*"]})).unwrap();
        assert_eq!(
            legacy.resolve().unwrap(),
            ConditionMatch::PathPattern(vec!["/api/*".into()])
        );
        let cfg: RuleCondition = serde_json::from_value(json!({
            "Field": "http-header",
            "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["blue"]}
        }))
        .unwrap();
        validate_conditions(&[legacy.clone(), cfg]).unwrap();
        assert!(validate_conditions(&[legacy.clone(), legacy]).is_err());
        let ip: RuleCondition = serde_json::from_value(
            json!({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}),
        )
        .unwrap();
        ip.validate().unwrap();
        let bad: RuleCondition = serde_json::from_value(
            json!({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0"]}}),
        )
        .unwrap();
        assert!(bad.validate().is_err());
        let unknown: RuleCondition =
            serde_json::from_value(json!({"Field": "cookie", "Values": ["x"]})).unwrap();
        assert!(unknown.validate().is_err());
    }
}
