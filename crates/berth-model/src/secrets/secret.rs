//! Secrets Manager secrets: the record (versions and their staging labels, the scheduled
//! deletion), ARNs with AWS's six-character suffix, and the rules for names.

use serde::{Deserialize, Serialize};

use super::StoredValue;
use crate::{ApiError, ErrorCode, Tag};

/// The staging label of the version a read gets by default.
pub const STAGE_CURRENT: &str = "AWSCURRENT";
/// The staging label of the version that was current before.
pub const STAGE_PREVIOUS: &str = "AWSPREVIOUS";
/// The staging label of a version being rotated in.
pub const STAGE_PENDING: &str = "AWSPENDING";

/// One version of a secret's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersion {
    /// The version id (the request's `ClientRequestToken`, or a new UUID).
    pub version_id: String,
    /// Its staging labels (`AWSCURRENT`, `AWSPREVIOUS`, custom ones); none: deprecated.
    #[serde(default)]
    pub stages: Vec<String>,
    /// When it was created, epoch seconds.
    pub created_date: f64,
    /// The `SecretString`, sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<StoredValue>,
    /// The `SecretBinary` (base64 on the wire), sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<StoredValue>,
}

/// A Secrets Manager secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRecord {
    /// The name, unique in the account and region.
    pub name: String,
    /// Its ARN (`...:secret:NAME-XXXXXX`), fixed at creation.
    pub arn: String,
    /// The description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The KMS key id given, shown as given (berth seals with its own key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// When it was created, epoch seconds.
    pub created_date: f64,
    /// When its value or metadata last changed.
    pub last_changed_date: f64,
    /// When it is deleted for good, once scheduled for deletion (AWS's `DeletedDate` shows the
    /// moment DeleteSecret was called; the deletion happens at `deletion_date`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<f64>,
    /// When DeleteSecret was called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_date: Option<f64>,
    /// Its versions, oldest first.
    #[serde(default)]
    pub versions: Vec<SecretVersion>,
}

impl SecretRecord {
    /// The version carrying `stage`.
    pub fn staged(&self, stage: &str) -> Option<&SecretVersion> {
        self.versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == stage))
    }

    /// The version `id`.
    pub fn version(&self, id: &str) -> Option<&SecretVersion> {
        self.versions.iter().find(|v| v.version_id == id)
    }

    /// Whether DeleteSecret scheduled it for deletion.
    pub fn is_scheduled_for_deletion(&self) -> bool {
        self.deletion_date.is_some()
    }

    /// Makes the version `id` the one carrying `stage` (taking the label from any other),
    /// and, for AWSCURRENT, gives AWSPREVIOUS to the version that had it.
    pub fn move_stage(&mut self, stage: &str, id: &str) {
        let old = self.staged(stage).map(|v| v.version_id.clone());
        if old.as_deref() == Some(id) {
            return;
        }
        for v in &mut self.versions {
            v.stages.retain(|s| s != stage);
        }
        if stage == STAGE_CURRENT {
            if let Some(old) = old {
                for v in &mut self.versions {
                    v.stages.retain(|s| s != STAGE_PREVIOUS);
                }
                if let Some(v) = self.versions.iter_mut().find(|v| v.version_id == old) {
                    v.stages.push(STAGE_PREVIOUS.to_owned());
                }
            }
        }
        if let Some(v) = self.versions.iter_mut().find(|v| v.version_id == id) {
            v.stages.push(stage.to_owned());
        }
    }
}

/// The ARN of the secret `name` with its random `suffix` (six characters, as AWS appends).
pub fn secret_arn(region: &str, account: &str, name: &str, suffix: &str) -> String {
    format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}-{suffix}")
}

/// Checks a secret name as Secrets Manager does: 1 to 512 characters of letters, digits and
/// `/_+=.@-`.
pub fn validate_secret_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 512
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterException,
            format!(
                "Invalid name {name:?}: a secret name is 1 to 512 characters: letters, numbers \
                 and /_+=.@-"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str, stages: &[&str]) -> SecretVersion {
        SecretVersion {
            version_id: id.to_owned(),
            stages: stages.iter().map(|s| (*s).to_owned()).collect(),
            created_date: 0.0,
            string: None,
            binary: None,
        }
    }

    #[test]
    fn current_moves_and_previous_follows() {
        let mut s = SecretRecord {
            name: "n".into(),
            arn: secret_arn("us-east-1", "1", "n", "AbCdEf"),
            description: None,
            kms_key_id: None,
            tags: vec![],
            created_date: 0.0,
            last_changed_date: 0.0,
            deletion_date: None,
            deleted_date: None,
            versions: vec![
                version("v1", &[STAGE_PREVIOUS]),
                version("v2", &[STAGE_CURRENT]),
            ],
        };
        s.versions.push(version("v3", &[]));
        s.move_stage(STAGE_CURRENT, "v3");
        assert_eq!(s.staged(STAGE_CURRENT).unwrap().version_id, "v3");
        assert_eq!(s.staged(STAGE_PREVIOUS).unwrap().version_id, "v2");
        assert!(s.version("v1").unwrap().stages.is_empty());
        assert!(s.arn.ends_with(":secret:n-AbCdEf"));
        validate_secret_name("prod/db@x").unwrap();
        assert!(validate_secret_name("sp ace").is_err());
    }
}
