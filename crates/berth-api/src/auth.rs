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
