//! The plain data types the signer and verifier work on.

use std::fmt;

/// An HTTP request as the verifier/signer sees it: no http-crate types.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method, e.g. `"POST"`.
    pub method: &'a str,
    /// The raw path as sent, e.g. `"/"` (already percent-encoded, as on the wire).
    pub path: &'a str,
    /// The raw query string without the `?`; may be `""`.
    pub query: &'a str,
    /// The request headers. Names in any case; duplicates allowed (their values
    /// are joined with `,` in the canonical request, in the order given here).
    pub headers: &'a [(String, String)],
    /// The request body.
    pub body: &'a [u8],
}

/// A long-term access key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id, e.g. `AKIDEXAMPLE`.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Who signed a verified request, and the scope they signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The access key id from the credential scope.
    pub access_key_id: String,
    /// The credential scope date, `YYYYMMDD`.
    pub date: String,
    /// The credential scope region, e.g. `us-east-1`.
    pub region: String,
    /// The credential scope service, e.g. `ecs`.
    pub service: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_redacts_the_secret() {
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "very-secret".into(),
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("AKID"));
        assert!(!shown.contains("very-secret"));
    }
}
