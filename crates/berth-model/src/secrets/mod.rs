//! Secrets: SSM Parameter Store parameters, Secrets Manager secrets, and what task definitions
//! take from them (`secrets[].valueFrom`, `logConfiguration.secretOptions`,
//! `repositoryCredentials.credentialsParameter`).
//!
//! Records are stored with their secret values already sealed (encrypted by `berth-ops`, which
//! holds the key): this crate only carries the ciphertext as a [`StoredValue`], so no record
//! here can hold a SecureString or a secret in plain text by mistake. The values a task needs
//! are resolved by the control plane when it hands the task to its agent, into
//! [`ResolvedSecrets`], whose `Debug` never shows them.

mod parameter;
mod secret;
mod value_from;

pub use parameter::{
    validate_parameter_name, Parameter, ParameterType, ParameterVersion, MAX_PARAMETER_VERSIONS,
};
pub use secret::{
    secret_arn, validate_secret_name, SecretRecord, SecretVersion, STAGE_CURRENT, STAGE_PENDING,
    STAGE_PREVIOUS,
};
pub use value_from::{
    container_secret_refs, validate_container_secrets, RegistryAuth, ResolvedContainer,
    ResolvedSecrets, SecretRef, SecretUse,
};

use serde::{Deserialize, Serialize};

/// The prefix of SSM parameters in the store.
pub const PARAMETERS: &str = "ssm/params/";
/// The prefix of Secrets Manager secrets in the store.
pub const SECRETS: &str = "secretsmanager/secrets/";

/// The store key of the SSM parameter `name` (names may hold `/`: `/app/db/password`).
pub fn parameter_key(name: &str) -> String {
    format!("{PARAMETERS}{name}")
}

/// The store key of the Secrets Manager secret `name`.
pub fn secret_key(name: &str) -> String {
    format!("{SECRETS}{name}")
}

/// A value as the store holds it: plain text for what is not secret (SSM String and
/// StringList), or sealed (the AEAD ciphertext, base64) for SecureString and every secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StoredValue {
    /// Not secret: stored as given.
    Plain(String),
    /// Encrypted: base64 of nonce and ciphertext.
    Sealed(String),
}
