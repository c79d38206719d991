//! SSM Parameter Store parameters: the record (every version of one parameter, with its
//! labels), the parameter types, and SSM's rules for names.

use serde::{Deserialize, Serialize};

use super::StoredValue;
use crate::{ApiError, ErrorCode, Tag};

/// SSM keeps at most this many versions of a parameter.
pub const MAX_PARAMETER_VERSIONS: usize = 100;
/// SSM's limit on a name's hierarchy levels.
const MAX_LEVELS: usize = 15;
/// SSM's limit on a name's length (the full ARN may be longer).
const MAX_NAME: usize = 1011;

/// SSM's `ParameterType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterType {
    /// Plain text.
    String,
    /// A comma-separated list, plain text.
    StringList,
    /// Encrypted at rest; shown only `WithDecryption`.
    SecureString,
}

impl ParameterType {
    /// Parses SSM's wire name, or answers UnsupportedParameterType.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "String" => Ok(Self::String),
            "StringList" => Ok(Self::StringList),
            "SecureString" => Ok(Self::SecureString),
            other => Err(ApiError::new(
                ErrorCode::UnsupportedParameterType,
                format!("The parameter type {other:?} is not supported."),
            )),
        }
    }

    /// SSM's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "String",
            Self::StringList => "StringList",
            Self::SecureString => "SecureString",
        }
    }
}

/// One version of a parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterVersion {
    /// 1, 2, ...: one more at every overwrite.
    pub version: u64,
    /// The type of this version.
    #[serde(rename = "type")]
    pub kind: ParameterType,
    /// The value, sealed when the type is SecureString.
    pub value: StoredValue,
    /// The description given with this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The `AllowedPattern` given with this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    /// `text` (SSM's default) or another data type.
    pub data_type: String,
    /// When it was written, epoch seconds.
    pub last_modified_date: f64,
    /// Who wrote it (an IAM ARN).
    pub last_modified_user: String,
    /// The labels attached to this version (at most ten; a label is on one version only).
    #[serde(default)]
    pub labels: Vec<String>,
}

/// An SSM parameter: its name and every version kept, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    /// The name, as given (`name` or `/a/b/c`).
    pub name: String,
    /// Its tags (given on creation only, as SSM's PutParameter).
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The versions, oldest first; never empty.
    pub versions: Vec<ParameterVersion>,
}

impl Parameter {
    /// The newest version.
    pub fn latest(&self) -> Option<&ParameterVersion> {
        self.versions.last()
    }

    /// The version `n`.
    pub fn version(&self, n: u64) -> Option<&ParameterVersion> {
        self.versions.iter().find(|v| v.version == n)
    }

    /// The version carrying `label`.
    pub fn labelled(&self, label: &str) -> Option<&ParameterVersion> {
        self.versions
            .iter()
            .find(|v| v.labels.iter().any(|l| l == label))
    }
}

/// Checks an SSM parameter name as SSM does: at most 1011 characters of letters, digits and
/// `_.-/`; a name with `/` is fully qualified (starts with `/`), has no empty level and at
/// most fifteen levels; no `aws` or `ssm` prefix.
pub fn validate_parameter_name(name: &str) -> Result<(), ApiError> {
    let invalid = |why: &str| {
        ApiError::new(
            ErrorCode::ValidationException,
            format!("Parameter name {name:?} is not valid: {why}"),
        )
    };
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(invalid("it must be 1 to 1011 characters long."));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
    {
        return Err(invalid(
            "it may only contain letters, numbers and the symbols _.-/",
        ));
    }
    if name.contains('/') {
        if !name.starts_with('/') {
            return Err(invalid(
                "a parameter name with / must be fully qualified (begin with /).",
            ));
        }
        let levels: Vec<&str> = name[1..].split('/').collect();
        if levels.iter().any(|l| l.is_empty()) {
            return Err(invalid("a hierarchy level is empty."));
        }
        if levels.len() > MAX_LEVELS {
            return Err(ApiError::new(
                ErrorCode::HierarchyLevelLimitExceededException,
                format!("Parameter name {name:?} has more than {MAX_LEVELS} hierarchy levels."),
            ));
        }
    }
    let first = name.trim_start_matches('/').to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return Err(invalid(
            "names beginning with aws or ssm (any case) are reserved.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ssm_rules() {
        for ok in ["db-password", "/app/db/password", "a.b_c", "/x"] {
            validate_parameter_name(ok).unwrap();
        }
        for bad in [
            "",
            "a/b",
            "/a//b",
            "/a/",
            "with space",
            "awsthing",
            "/SSM/x",
        ] {
            assert_eq!(
                validate_parameter_name(bad).unwrap_err().code,
                ErrorCode::ValidationException,
                "{bad}"
            );
        }
        let deep = "/l".repeat(16);
        assert_eq!(
            validate_parameter_name(&deep).unwrap_err().code,
            ErrorCode::HierarchyLevelLimitExceededException
        );
    }
}
