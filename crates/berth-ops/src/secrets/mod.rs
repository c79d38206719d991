//! SSM Parameter Store (`AmazonSSM.<Action>`, signed for `ssm`) and Secrets Manager
//! (`secretsmanager.<Action>`, signed for `secretsmanager`): the subsets task definitions'
//! `secrets` need, and their resolution when a task starts.
//!
//! - [`ssm`]: PutParameter, GetParameter(s), GetParametersByPath, DescribeParameters,
//!   DeleteParameter(s), LabelParameterVersion, GetParameterHistory, ListTagsForResource.
//! - [`secretsmanager`]: CreateSecret, GetSecretValue, PutSecretValue, UpdateSecret,
//!   DescribeSecret, ListSecrets, DeleteSecret (recovery window), RestoreSecret.
//! - `resolve`: the values a task's containers take, for its agent's poll only.
//!
//! SecureString values and every secret value are sealed with [`SecretsKey`] before they reach
//! the store; plain values of String parameters are stored as given.

mod resolve;
mod seal;
pub mod secretsmanager;
pub mod ssm;

pub(crate) use resolve::resolve_task;
pub use seal::SecretsKey;

use berth_model::secrets::StoredValue;
use berth_model::{ApiError, Tag};
use serde::{Deserialize, Serialize};

use crate::Ctx;

/// A tag as SSM and Secrets Manager spell it (`Key`, `Value`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsTag {
    /// The key.
    pub key: String,
    /// The value.
    #[serde(default)]
    pub value: String,
}

fn to_tags(tags: Vec<AwsTag>) -> Vec<Tag> {
    tags.into_iter()
        .map(|t| Tag {
            key: t.key,
            value: t.value,
        })
        .collect()
}

fn from_tags(tags: &[Tag]) -> Vec<AwsTag> {
    tags.iter()
        .map(|t| AwsTag {
            key: t.key.clone(),
            value: t.value.clone(),
        })
        .collect()
}

impl Ctx {
    fn seal(&self, aad: &str, plain: &[u8]) -> Result<StoredValue, ApiError> {
        self.state.secrets_key.seal(aad, plain)
    }
    fn open_text(&self, aad: &str, v: &StoredValue) -> Result<String, ApiError> {
        self.state.secrets_key.open_text(aad, v)
    }
    fn open(&self, aad: &str, v: &StoredValue) -> Result<Vec<u8>, ApiError> {
        self.state.secrets_key.open(aad, v)
    }
}
