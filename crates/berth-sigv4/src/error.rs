//! Verification failures, each mapped to the AWS error code a JSON-protocol
//! service returns for it.

/// Why a request failed verification. Every variant is an HTTP 403; use
/// [`Error::code`] for the AWS error code and `Display` for the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Neither an `Authorization` header nor query-string auth parameters.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,

    /// The signature information is malformed or incomplete (the message says
    /// what, in AWS's words where AWS's wording is known).
    #[error("{0}")]
    IncompleteSignature(String),

    /// The access key id is not known.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,

    /// The signature does not match the one we computed.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    )]
    SignatureDoesNotMatch,

    /// The request was signed more than 15 minutes ago.
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - 15 min.)")]
    SignatureExpired {
        /// The request's timestamp, `YYYYMMDDTHHMMSSZ`.
        signed: String,
        /// The earliest timestamp still accepted (`now` minus 15 minutes).
        earliest: String,
        /// The verifier's clock.
        now: String,
    },

    /// The request's timestamp is more than 15 minutes in the future.
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + 15 min.)")]
    SignatureNotYetCurrent {
        /// The request's timestamp, `YYYYMMDDTHHMMSSZ`.
        signed: String,
        /// The latest timestamp accepted (`now` plus 15 minutes).
        latest: String,
        /// The verifier's clock.
        now: String,
    },

    /// A presigned URL is past its `X-Amz-Expires`.
    #[error("Request has expired")]
    PresignedUrlExpired {
        /// When the URL stopped being valid, `YYYYMMDDTHHMMSSZ`.
        expired_at: String,
        /// The verifier's clock.
        now: String,
    },

    /// The credential scope's date is not the date of the request timestamp.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '{scope_date}' != '{request_date}', from '{timestamp}'."
    )]
    CredentialDateMismatch {
        /// The date in the credential scope.
        scope_date: String,
        /// The first eight characters of `timestamp`.
        request_date: String,
        /// The request's timestamp, `YYYYMMDDTHHMMSSZ`.
        timestamp: String,
    },

    /// `x-amz-content-sha256` carries a SHA-256 that is not the body's.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
}

impl Error {
    /// The AWS error code a JSON-protocol service returns for this failure
    /// (HTTP 403 for all of them).
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Error::IncompleteSignature(_) => "IncompleteSignatureException",
            Error::UnrecognizedClient => "UnrecognizedClientException",
            Error::SignatureDoesNotMatch
            | Error::SignatureExpired { .. }
            | Error::SignatureNotYetCurrent { .. }
            | Error::PresignedUrlExpired { .. }
            | Error::CredentialDateMismatch { .. }
            | Error::ContentSha256Mismatch => "InvalidSignatureException",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(
            Error::MissingAuthenticationToken.code(),
            "MissingAuthenticationTokenException"
        );
        assert_eq!(
            Error::IncompleteSignature("x".into()).code(),
            "IncompleteSignatureException"
        );
        assert_eq!(
            Error::UnrecognizedClient.code(),
            "UnrecognizedClientException"
        );
        for e in [
            Error::SignatureDoesNotMatch,
            Error::SignatureExpired {
                signed: String::new(),
                earliest: String::new(),
                now: String::new(),
            },
            Error::SignatureNotYetCurrent {
                signed: String::new(),
                latest: String::new(),
                now: String::new(),
            },
            Error::PresignedUrlExpired {
                expired_at: String::new(),
                now: String::new(),
            },
            Error::CredentialDateMismatch {
                scope_date: String::new(),
                request_date: String::new(),
                timestamp: String::new(),
            },
            Error::ContentSha256Mismatch,
        ] {
            assert_eq!(e.code(), "InvalidSignatureException", "{e:?}");
        }
    }

    #[test]
    fn messages_read_like_aws() {
        assert_eq!(
            Error::MissingAuthenticationToken.to_string(),
            "Missing Authentication Token"
        );
        assert_eq!(
            Error::UnrecognizedClient.to_string(),
            "The security token included in the request is invalid."
        );
        assert_eq!(
            Error::SignatureDoesNotMatch.to_string(),
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
        );
        let expired = Error::SignatureExpired {
            signed: "20250101T000000Z".into(),
            earliest: "20250101T001500Z".into(),
            now: "20250101T003000Z".into(),
        };
        assert_eq!(
            expired.to_string(),
            "Signature expired: 20250101T000000Z is now earlier than 20250101T001500Z \
             (20250101T003000Z - 15 min.)"
        );
        let future = Error::SignatureNotYetCurrent {
            signed: "20250101T010000Z".into(),
            latest: "20250101T004500Z".into(),
            now: "20250101T003000Z".into(),
        };
        assert_eq!(
            future.to_string(),
            "Signature not yet current: 20250101T010000Z is still later than 20250101T004500Z \
             (20250101T003000Z + 15 min.)"
        );
    }
}
