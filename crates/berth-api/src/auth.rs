//! Access keys and SigV4 verification of incoming requests.

use std::collections::HashMap;
use std::time::SystemTime;

use berth_model::{ApiError, ErrorCode};
use berth_sigv4::{verify, Identity, Request};

/// The access keys berth accepts, mapped to their secrets.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: HashMap<String, String>,
}

impl KeyRing {
    /// An empty key ring: every request is refused until keys are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an access key and its secret access key (the pair a client signs with).
    pub fn with_key(mut self, access_key_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.keys.insert(access_key_id.into(), secret.into());
        self
    }

    /// Whether `akid` is one of these keys (the root keys).
    pub(crate) fn contains(&self, akid: &str) -> bool {
        self.keys.contains_key(akid)
    }

    /// Verifies a request's signature, and that it was signed for `service`; `issued` is a
    /// key IAM issued (its id and secret), checked when the request's key is not one of these.
    pub(crate) fn authenticate(
        &self,
        req: &Request<'_>,
        service: &str,
        now: SystemTime,
        issued: Option<(&str, &str)>,
    ) -> Result<Identity, ApiError> {
        let id = verify(req, now, |akid| {
            self.keys.get(akid).cloned().or_else(|| {
                issued
                    .filter(|(id, _)| *id == akid)
                    .map(|(_, secret)| secret.to_owned())
            })
        })
        .map_err(|e| ApiError::new(ErrorCode::from_auth_code(e.code()), e.to_string()))?;
        if id.service != service {
            return Err(ApiError::new(
                ErrorCode::InvalidSignatureException,
                format!("Credential should be scoped to correct service: '{service}'."),
            ));
        }
        Ok(id)
    }
}

/// Checks temporary keys (a task role's) after their signature: the request must carry the
/// session's token, and the keys must not have expired, as STS credentials are checked.
pub(crate) fn check_session(
    session: &berth_ops::iam::sessions::Session,
    presented: Option<&str>,
    now: SystemTime,
) -> Result<(), ApiError> {
    // Compared without an early exit, so the time taken tells nothing of the token.
    let matches = presented.is_some_and(|p| {
        let (a, b) = (p.as_bytes(), session.token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    });
    if !matches {
        return Err(ApiError::new(
            ErrorCode::UnrecognizedClientException,
            "The security token included in the request is invalid.",
        ));
    }
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if now >= session.expiration {
        return Err(berth_ops::iam::sessions::expired());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_ops::iam::sessions::Session;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn sessions_need_their_token_and_time() {
        let s = Session {
            token: "tok".into(),
            expiration: 100.0,
        };
        let at = |t: u64| UNIX_EPOCH + Duration::from_secs(t);
        assert!(check_session(&s, Some("tok"), at(99)).is_ok());
        let code = |r: Result<(), ApiError>| r.unwrap_err().code;
        assert_eq!(
            code(check_session(&s, None, at(99))),
            ErrorCode::UnrecognizedClientException
        );
        assert_eq!(
            code(check_session(&s, Some("tok2"), at(99))),
            ErrorCode::UnrecognizedClientException
        );
        assert_eq!(
            code(check_session(&s, Some("tok"), at(100))),
            ErrorCode::ExpiredTokenException
        );
    }
}
