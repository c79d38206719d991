//! Task role credentials on the metadata endpoint, as ECS serves them:
//! `GET /v2/credentials/<credentials id>` answers `AccessKeyId`, `SecretAccessKey`, `Token`,
//! `Expiration` and `RoleArn`, and the AWS SDKs' container credentials provider finds it by
//! itself.
//!
//! - **How a task finds it.** Docker containers get `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
//!   (the SDKs prefix `http://169.254.170.2`, ECS's address for the agent); processes run by
//!   the process driver get `AWS_CONTAINER_CREDENTIALS_FULL_URI` on loopback with
//!   `AWS_CONTAINER_AUTHORIZATION_TOKEN`, which the SDKs send as `Authorization`.
//! - **Only the task's own.** The credentials id is random (the server draws a UUID v4 per
//!   task), and a process task must also present its token (an HMAC of the id under the
//!   agent's key: stable across agent restarts, so adopted processes keep working), since any
//!   process on the host can reach loopback.
//! - **Always current.** The server sends each task's newest keys with every poll; the endpoint
//!   serves what the last poll said, so a task asking again near the expiration gets new keys.

use berth_model::agent::TaskCredentials;
use serde_json::{json, Value};

/// The variable a docker container reads the credentials path from.
pub(crate) const RELATIVE_URI: &str = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
/// The variable a process reads the credentials URL from.
pub(crate) const FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
/// The variable a process reads its authorization token from.
pub(crate) const AUTHORIZATION_TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
/// Where credentials are served.
pub(crate) const PATH_PREFIX: &str = "/v2/credentials/";

/// The credentials path of a task.
pub(crate) fn path(credentials_id: &str) -> String {
    format!("{PATH_PREFIX}{credentials_id}")
}

/// The environment a container of a task with credentials gets: the relative URI for a
/// container reaching the agent as ECS's containers do, else the full URI and token.
pub(crate) fn environment(
    base: &str,
    credentials_id: &str,
    token: Option<String>,
) -> Vec<(String, String)> {
    match token {
        None => vec![(RELATIVE_URI.into(), path(credentials_id))],
        Some(t) => vec![
            (FULL_URI.into(), format!("{base}{}", path(credentials_id))),
            (AUTHORIZATION_TOKEN.into(), t),
        ],
    }
}

/// ECS's answer for a task's credentials.
pub(crate) fn body(c: &TaskCredentials) -> Value {
    json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "Token": c.token,
        "Expiration": c.expiration,
        "RoleArn": c.role_arn,
    })
}

/// Whether `presented` (the `Authorization` header) is `want`, compared without an early exit.
pub(crate) fn authorized(presented: Option<&str>, want: &str) -> bool {
    presented.is_some_and(|p| {
        let (a, b) = (p.as_bytes(), want.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_get_the_relative_uri_and_processes_the_full_one() {
        let env = environment("http://127.0.0.1:9", "id-1", None);
        assert_eq!(
            env,
            vec![(RELATIVE_URI.to_owned(), "/v2/credentials/id-1".to_owned())]
        );
        let env = environment("http://127.0.0.1:9", "id-1", Some("tok".into()));
        assert_eq!(
            env,
            vec![
                (
                    FULL_URI.to_owned(),
                    "http://127.0.0.1:9/v2/credentials/id-1".to_owned()
                ),
                (AUTHORIZATION_TOKEN.to_owned(), "tok".to_owned()),
            ]
        );
    }

    #[test]
    fn tokens_must_match_exactly() {
        assert!(authorized(Some("abc"), "abc"));
        assert!(!authorized(Some("abd"), "abc"));
        assert!(!authorized(Some("ab"), "abc"));
        assert!(!authorized(None, "abc"));
    }
}
