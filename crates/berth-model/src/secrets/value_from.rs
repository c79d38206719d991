//! What a container definition takes from secrets: `secrets[]` (environment variables),
//! `logConfiguration.secretOptions` (log driver options) and
//! `repositoryCredentials.credentialsParameter` (registry auth), each naming an SSM parameter
//! or a Secrets Manager secret in its `valueFrom`; how such a reference is parsed (checked
//! when the task definition is registered); and the values resolved for one task, which only
//! its agent receives.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ApiError, ContainerDefinition, KeyValuePair};

/// Where a `valueFrom` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An SSM parameter, by name (a bare name, or taken from its ARN).
    Ssm {
        /// The parameter name (`name` or `/a/b`).
        name: String,
    },
    /// A Secrets Manager secret: `arn:...:secret:NAME-XXXXXX[:json-key[:stage[:version-id]]]`
    /// (empty parts mean the default: the whole value, AWSCURRENT).
    SecretsManager {
        /// The secret's ARN (or name, for `credentialsParameter`).
        secret_id: String,
        /// The key of a JSON secret whose value is taken.
        json_key: Option<String>,
        /// The version stage to read.
        version_stage: Option<String>,
        /// The version id to read.
        version_id: Option<String>,
    },
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

impl SecretRef {
    /// Parses a `valueFrom`: an ARN of an SSM parameter or of a Secrets Manager secret (with
    /// its optional `:json-key:version-stage:version-id`), or else an SSM parameter name, as
    /// ECS reads it. The error says what is wrong, for a message naming the field.
    pub fn parse(value_from: &str) -> Result<Self, String> {
        if value_from.is_empty() {
            return Err("it is empty".into());
        }
        let Some(rest) = value_from.strip_prefix("arn:") else {
            super::validate_parameter_name(value_from).map_err(|e| e.message)?;
            return Ok(Self::Ssm {
                name: value_from.to_owned(),
            });
        };
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [_partition, service, _region, _account, resource] = parts[..] else {
            return Err(format!("{value_from:?} is not an ARN"));
        };
        match service {
            "ssm" => {
                let Some(path) = resource.strip_prefix("parameter/") else {
                    return Err(format!("{value_from:?} is not the ARN of an SSM parameter"));
                };
                let name = if path.contains('/') {
                    format!("/{path}")
                } else {
                    path.to_owned()
                };
                super::validate_parameter_name(&name).map_err(|e| e.message)?;
                Ok(Self::Ssm { name })
            }
            "secretsmanager" => {
                let fields: Vec<&str> = resource.split(':').collect();
                if fields.first() != Some(&"secret") || fields.len() < 2 || fields.len() > 5 {
                    return Err(format!(
                        "{value_from:?} is not a Secrets Manager secret ARN \
                         (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:json-key:version-stage:version-id])"
                    ));
                }
                super::validate_secret_name(fields[1]).map_err(|e| e.message)?;
                let head_len = value_from.len() - resource.len() + "secret:".len() + fields[1].len();
                Ok(Self::SecretsManager {
                    secret_id: value_from[..head_len].to_owned(),
                    json_key: non_empty(fields.get(2).copied()),
                    version_stage: non_empty(fields.get(3).copied()),
                    version_id: non_empty(fields.get(4).copied()),
                })
            }
            other => Err(format!(
                "{value_from:?} names the service {other:?}; a secret comes from ssm or secretsmanager"
            )),
        }
    }

    /// Parses a `credentialsParameter`: a Secrets Manager secret's ARN or name.
    pub fn parse_credentials(value: &str) -> Result<Self, String> {
        if !value.starts_with("arn:") {
            super::validate_secret_name(value).map_err(|e| e.message)?;
            return Ok(Self::SecretsManager {
                secret_id: value.to_owned(),
                json_key: None,
                version_stage: None,
                version_id: None,
            });
        }
        match Self::parse(value)? {
            Self::Ssm { .. } => Err(format!("{value:?} is not a Secrets Manager secret")),
            r => Ok(r),
        }
    }
}

/// What a container does with one resolved value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretUse {
    /// An environment variable of this name (`secrets[]`).
    Env(String),
    /// A log driver option of this name (`logConfiguration.secretOptions`).
    LogOption(String),
    /// The registry credentials (`repositoryCredentials.credentialsParameter`).
    RegistryAuth,
}

fn client(message: String) -> ApiError {
    ApiError::client(message)
}

/// Every secret a container takes, as (use, reference), in the order of the definition.
/// Shapes that do not fit (a `secrets` entry without `name` or `valueFrom`, a `valueFrom` that
/// is not an SSM parameter or a Secrets Manager secret) are ClientExceptions naming the field.
pub fn container_secret_refs(
    c: &ContainerDefinition,
) -> Result<Vec<(SecretUse, SecretRef)>, ApiError> {
    let mut out = Vec::new();
    if let Some(v) = c.extra.get("secrets").filter(|v| !v.is_null()) {
        let Some(items) = v.as_array() else {
            return Err(client(format!(
                "Container {:?}: 'secrets' must be a list of {{name, valueFrom}}.",
                c.name
            )));
        };
        for (i, item) in items.iter().enumerate() {
            let field = |f: &str| item.get(f).and_then(Value::as_str).unwrap_or_default();
            let (name, from) = (field("name"), field("valueFrom"));
            if name.is_empty() {
                return Err(client(format!(
                    "Container {:?}: secrets[{i}].name is required.",
                    c.name
                )));
            }
            let r = SecretRef::parse(from).map_err(|why| {
                client(format!(
                    "Container {:?}: secrets[{i}].valueFrom is not valid: {why}.",
                    c.name
                ))
            })?;
            out.push((SecretUse::Env(name.to_owned()), r));
        }
    }
    let log_options = c
        .log_configuration
        .as_ref()
        .and_then(|l| l.secret_options.as_ref());
    for (i, s) in log_options.into_iter().flatten().enumerate() {
        if s.name.is_empty() {
            return Err(client(format!(
                "Container {:?}: logConfiguration.secretOptions[{i}].name is required.",
                c.name
            )));
        }
        let r = SecretRef::parse(&s.value_from).map_err(|why| {
            client(format!(
                "Container {:?}: logConfiguration.secretOptions[{i}].valueFrom is not valid: {why}.",
                c.name
            ))
        })?;
        out.push((SecretUse::LogOption(s.name.clone()), r));
    }
    if let Some(rc) = c
        .extra
        .get("repositoryCredentials")
        .filter(|v| !v.is_null())
    {
        let param = rc
            .get("credentialsParameter")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let r = SecretRef::parse_credentials(param).map_err(|why| {
            client(format!(
                "Container {:?}: repositoryCredentials.credentialsParameter is not valid: {why}.",
                c.name
            ))
        })?;
        out.push((SecretUse::RegistryAuth, r));
    }
    Ok(out)
}

/// Checks a container's secrets at registration: shapes and references (see
/// [`container_secret_refs`]), and no variable or log option named twice.
pub fn validate_container_secrets(c: &ContainerDefinition) -> Result<(), ApiError> {
    let refs = container_secret_refs(c)?;
    let mut seen = std::collections::HashSet::new();
    for (u, _) in &refs {
        let (field, n) = match u {
            SecretUse::Env(n) => ("secrets", n),
            SecretUse::LogOption(n) => ("logConfiguration.secretOptions", n),
            SecretUse::RegistryAuth => continue,
        };
        if !seen.insert((field, n.as_str())) {
            return Err(client(format!(
                "Container {:?}: {field} names {n:?} more than once.",
                c.name
            )));
        }
    }
    Ok(())
}

/// Private registry credentials (a Secrets Manager secret `{"username", "password"}`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAuth {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RegistryAuth(<redacted>)")
    }
}

/// The values one container takes from secrets, resolved.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedContainer {
    /// Environment variables (`secrets[]`), in the definition's order.
    #[serde(default)]
    pub environment: Vec<KeyValuePair>,
    /// Log driver options (`logConfiguration.secretOptions`).
    #[serde(default)]
    pub log_options: BTreeMap<String, String>,
    /// Registry credentials (`repositoryCredentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_auth: Option<RegistryAuth>,
}

impl fmt::Debug for ResolvedContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.environment.iter().map(|kv| kv.name.as_str()).collect();
        f.debug_struct("ResolvedContainer")
            .field("environment", &names)
            .field("log_options", &self.log_options.keys().collect::<Vec<_>>())
            .field("registry_auth", &self.registry_auth.is_some())
            .finish()
    }
}

/// The secret values of one task, by container name: sent only to the agent that runs the
/// task, in its poll answer; never stored. `Debug` shows names, never values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResolvedSecrets {
    /// Each container's values (containers without secrets are absent).
    pub containers: BTreeMap<String, ResolvedContainer>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm(id: &str, key: Option<&str>, stage: Option<&str>, vid: Option<&str>) -> SecretRef {
        SecretRef::SecretsManager {
            secret_id: id.into(),
            json_key: key.map(Into::into),
            version_stage: stage.map(Into::into),
            version_id: vid.map(Into::into),
        }
    }

    #[test]
    fn value_from_forms() {
        let arn = "arn:aws:secretsmanager:us-east-1:123:secret:db-AbCdEf";
        assert_eq!(SecretRef::parse(arn).unwrap(), sm(arn, None, None, None));
        assert_eq!(
            SecretRef::parse(&format!("{arn}:password::")).unwrap(),
            sm(arn, Some("password"), None, None)
        );
        assert_eq!(
            SecretRef::parse(&format!("{arn}::AWSPREVIOUS:")).unwrap(),
            sm(arn, None, Some("AWSPREVIOUS"), None)
        );
        assert_eq!(
            SecretRef::parse(&format!("{arn}:k:s:v1")).unwrap(),
            sm(arn, Some("k"), Some("s"), Some("v1"))
        );
        assert!(SecretRef::parse(&format!("{arn}:k:s:v1:extra")).is_err());
        assert_eq!(
            SecretRef::parse("arn:aws:ssm:us-east-1:123:parameter/app/db").unwrap(),
            SecretRef::Ssm {
                name: "/app/db".into()
            }
        );
        assert_eq!(
            SecretRef::parse("arn:aws:ssm:us-east-1:123:parameter/plain").unwrap(),
            SecretRef::Ssm {
                name: "plain".into()
            }
        );
        assert_eq!(
            SecretRef::parse("/app/db").unwrap(),
            SecretRef::Ssm {
                name: "/app/db".into()
            }
        );
        for bad in [
            "",
            "arn:aws:s3:::bucket/key",
            "arn:aws:ssm:r:a:document/x",
            "a b",
        ] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            SecretRef::parse_credentials("registry").unwrap(),
            sm("registry", None, None, None)
        );
        assert!(SecretRef::parse_credentials("arn:aws:ssm:r:a:parameter/x").is_err());
    }

    fn container(v: Value) -> ContainerDefinition {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn container_secrets_are_checked() {
        let ok = container(serde_json::json!({
            "name": "app",
            "secrets": [{"name": "A", "valueFrom": "/p/a"}],
            "logConfiguration": {"logDriver": "json-file",
                "secretOptions": [{"name": "token", "valueFrom": "p"}]},
            "repositoryCredentials": {"credentialsParameter": "reg"},
        }));
        let refs = container_secret_refs(&ok).unwrap();
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[2].0, SecretUse::RegistryAuth);
        validate_container_secrets(&ok).unwrap();
        let twice = container(serde_json::json!({"name": "app", "secrets": [
            {"name": "A", "valueFrom": "p"}, {"name": "A", "valueFrom": "q"}]}));
        assert!(validate_container_secrets(&twice)
            .unwrap_err()
            .message
            .contains("secrets names \"A\" more than once"));
        let bad = container(serde_json::json!({"name": "app", "secrets": [
            {"name": "A", "valueFrom": "arn:aws:s3:::b"}]}));
        let e = validate_container_secrets(&bad).unwrap_err();
        assert!(e.message.contains("secrets[0].valueFrom"), "{}", e.message);
    }

    #[test]
    fn debug_never_shows_values() {
        let mut r = ResolvedSecrets::default();
        r.containers.insert(
            "app".into(),
            ResolvedContainer {
                environment: vec![KeyValuePair {
                    name: "DB".into(),
                    value: "hunter2".into(),
                }],
                log_options: [("k".to_owned(), "hunter3".to_owned())].into(),
                registry_auth: Some(RegistryAuth {
                    username: "u".into(),
                    password: "hunter4".into(),
                }),
            },
        );
        let d = format!("{r:?}");
        assert!(d.contains("DB") && !d.contains("hunter"), "{d}");
    }
}
