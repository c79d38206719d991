//! The `verify` entry point.

use std::time::SystemTime;

use hmac::Mac;

use crate::auth::{extract, Mode, SignedParts};
use crate::canonical::{
    canonical_headers, canonical_query, canonical_request, canonical_uri, header_value,
    parse_query, payload_hash, scope, sha256_hex, string_to_sign,
};
use crate::date::Timestamp;
use crate::error::Error;
use crate::sign::signature_mac;
use crate::types::{Identity, Request};

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// How far the request's clock may be from ours, either way: 15 minutes.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// Verifies a request signed with header auth (`Authorization: AWS4-HMAC-SHA256
/// Credential=..., SignedHeaders=..., Signature=...`) or with query-string auth
/// (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-SignedHeaders`,
/// `X-Amz-Signature`, optionally `X-Amz-Expires`).
///
/// `secret_for` maps an access key id to its secret (`None` = unknown key).
/// The request time may be up to 15 minutes either side of `now`, like AWS; a
/// presigned URL with `X-Amz-Expires` is valid from 15 minutes before its
/// `X-Amz-Date` until `X-Amz-Date + X-Amz-Expires`.
///
/// Checks run in this order: signature parameters present and well formed
/// ([`Error::MissingAuthenticationToken`], [`Error::IncompleteSignature`]), the
/// credential scope date against the request date, the access key
/// ([`Error::UnrecognizedClient`]), the clock, an `x-amz-content-sha256` header
/// against the body (it may be `UNSIGNED-PAYLOAD`, which leaves the body
/// unsigned as the client asked; S3's streaming modes are refused), and finally
/// the signature itself, compared in constant time. The returned [`Identity`]
/// carries the signed region and service; the caller decides whether they are
/// the expected ones.
///
/// As AWS enforces it, `host` and every `x-amz-*` header the request carries
/// must be among the signed headers: an unsigned `x-amz-target` would let
/// anyone holding a request signed for one action replay it as another. This
/// entry point is for the JSON and Query APIs, whose bodies are always signed,
/// so `UNSIGNED-PAYLOAD` is refused; [`verify_with`] can allow it (S3's way).
pub fn verify(
    req: &Request<'_>,
    now: SystemTime,
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<Identity, Error> {
    verify_with(req, now, secret_for, &Policy::default())
}

/// What a verifier tolerates beyond AWS's rules for every service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Accept `x-amz-content-sha256: UNSIGNED-PAYLOAD` (the body is then not
    /// covered by the signature), as S3 does. Off for the JSON and Query APIs.
    pub allow_unsigned_payload: bool,
}

/// [`verify`] under a given [`Policy`].
pub fn verify_with(
    req: &Request<'_>,
    now: SystemTime,
    secret_for: impl Fn(&str) -> Option<String>,
    policy: &Policy,
) -> Result<Identity, Error> {
    let query = parse_query(req.query);
    let parts = extract(req, &query)?;
    check_coverage(req, &parts)?;

    let request_date = parts.timestamp.get(..8).unwrap_or_default();
    if parts.scope_date != request_date {
        return Err(Error::CredentialDateMismatch {
            scope_date: parts.scope_date,
            request_date: request_date.to_owned(),
            timestamp: parts.timestamp,
        });
    }

    let secret = secret_for(&parts.access_key_id).ok_or(Error::UnrecognizedClient)?;

    check_clock(&parts, Timestamp::from_system_time(now))?;
    check_content_sha256(req, policy)?;

    let signed: Vec<&str> = parts.signed_headers.iter().map(String::as_str).collect();
    let canonical = canonical_request(
        req.method,
        &canonical_uri(req.path),
        &canonical_query(&query, parts.mode == Mode::Query),
        &canonical_headers(req.headers, &signed),
        &signed.join(";"),
        &payload_hash(req.headers, req.body),
    );
    let scope = scope(&parts.scope_date, &parts.region, &parts.service);
    let to_sign = string_to_sign(&parts.timestamp, &scope, &canonical);

    let provided = hex::decode(&parts.signature).map_err(|_| Error::SignatureDoesNotMatch)?;
    let mac = signature_mac(
        &secret,
        &parts.scope_date,
        &parts.region,
        &parts.service,
        &to_sign,
    )
    .ok_or(Error::SignatureDoesNotMatch)?;
    mac.verify_slice(&provided)
        .map_err(|_| Error::SignatureDoesNotMatch)?;

    Ok(Identity {
        access_key_id: parts.access_key_id,
        date: parts.scope_date,
        region: parts.region,
        service: parts.service,
    })
}

fn check_clock(parts: &SignedParts, now: Timestamp) -> Result<(), Error> {
    let latest = now.plus(MAX_SKEW_SECS);
    if parts.time > latest {
        return Err(Error::SignatureNotYetCurrent {
            signed: parts.timestamp.clone(),
            latest: latest.to_amz(),
            now: now.to_amz(),
        });
    }
    match parts.expires {
        Some(expires) => {
            let expired_at = parts.time.plus(expires);
            if now > expired_at {
                return Err(Error::PresignedUrlExpired {
                    expired_at: expired_at.to_amz(),
                    now: now.to_amz(),
                });
            }
        }
        None => {
            let earliest = now.plus(-MAX_SKEW_SECS);
            if parts.time < earliest {
                return Err(Error::SignatureExpired {
                    signed: parts.timestamp.clone(),
                    earliest: earliest.to_amz(),
                    now: now.to_amz(),
                });
            }
        }
    }
    Ok(())
}

/// `host` and every `x-amz-*` header present must be signed (AWS's wording for
/// `host`; the same rule, named, for the others).
fn check_coverage(req: &Request<'_>, parts: &SignedParts) -> Result<(), Error> {
    let signed = |name: &str| parts.signed_headers.iter().any(|h| h == name);
    if !signed("host") {
        return Err(Error::IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    for (name, _) in req.headers {
        let lower = name.to_ascii_lowercase();
        // Query auth carries its own parameters in the query string, never as headers;
        // with header auth `x-amz-date` is signed as every other x-amz header is.
        if lower.starts_with("x-amz-") && !signed(&lower) {
            return Err(Error::IncompleteSignature(format!(
                "'{lower}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    Ok(())
}

/// `x-amz-content-sha256`, when sent, must be `UNSIGNED-PAYLOAD` or the body's
/// hex SHA-256: the signature covers the header, not the body itself. Other
/// values (S3's `STREAMING-*` aws-chunked modes) would leave a body the client
/// meant to protect unchecked, so they are refused.
fn check_content_sha256(req: &Request<'_>, policy: &Policy) -> Result<(), Error> {
    let Some(claimed) = header_value(req.headers, "x-amz-content-sha256") else {
        return Ok(());
    };
    if claimed == UNSIGNED_PAYLOAD {
        if policy.allow_unsigned_payload {
            return Ok(());
        }
        return Err(Error::IncompleteSignature(format!(
            "{UNSIGNED_PAYLOAD} is not accepted by this service: the payload must be signed."
        )));
    }
    if claimed.len() != 64 || !claimed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::IncompleteSignature(format!(
            "x-amz-content-sha256 must be {UNSIGNED_PAYLOAD} or the hex SHA-256 of the body; \
             got '{claimed}'."
        )));
    }
    if !claimed.eq_ignore_ascii_case(&sha256_hex(req.body)) {
        return Err(Error::ContentSha256Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::sign;
    use crate::types::Credentials;
    use std::time::{Duration, UNIX_EPOCH};

    const AKID: &str = "AKIDTEST";
    const SECRET: &str = "test/secret+key";
    /// 20250101T000000Z
    const T0: u64 = 1_735_689_600;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn creds() -> Credentials {
        Credentials {
            access_key_id: AKID.into(),
            secret_access_key: SECRET.into(),
        }
    }

    fn secrets(akid: &str) -> Option<String> {
        (akid == AKID).then(|| SECRET.to_owned())
    }

    fn base_headers() -> Vec<(String, String)> {
        vec![
            ("Host".to_owned(), "localhost:8080".to_owned()),
            (
                "X-Amz-Target".to_owned(),
                "AmazonEC2ContainerServiceV20141113.ListClusters".to_owned(),
            ),
            (
                "Content-Type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
        ]
    }

    /// Signs `headers`/`body` at `T0` and returns the headers with the signature added.
    fn signed(headers: &[(String, String)], query: &str, body: &[u8]) -> Vec<(String, String)> {
        let req = Request {
            method: "POST",
            path: "/",
            query,
            headers,
            body,
        };
        let mut all = headers.to_vec();
        all.extend(sign(&req, &creds(), "us-east-1", "ecs", at(T0)));
        all
    }

    fn check(
        headers: &[(String, String)],
        query: &str,
        body: &[u8],
        now: u64,
    ) -> Result<Identity, Error> {
        let req = Request {
            method: "POST",
            path: "/",
            query,
            headers,
            body,
        };
        verify(&req, at(now), secrets)
    }

    fn code(result: Result<Identity, Error>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    fn set(headers: &mut [(String, String)], name: &str, value: &str) {
        for (n, v) in headers.iter_mut() {
            if n.eq_ignore_ascii_case(name) {
                *v = value.to_owned();
            }
        }
    }

    #[test]
    fn round_trip() {
        let headers = signed(&base_headers(), "a=1", b"{}");
        let identity = check(&headers, "a=1", b"{}", T0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            identity,
            Identity {
                access_key_id: AKID.into(),
                date: "20250101".into(),
                region: "us-east-1".into(),
                service: "ecs".into(),
            }
        );
        // Unsigned headers may change or be added freely.
        let mut more = headers.clone();
        more.push(("User-Agent".to_owned(), "anything".to_owned()));
        more.push(("Content-Length".to_owned(), "2".to_owned()));
        assert_eq!(code(check(&more, "a=1", b"{}", T0)), "ok");
    }

    #[test]
    fn tampering_is_detected() {
        let headers = signed(&base_headers(), "a=1", b"{}");
        assert_eq!(
            code(check(&headers, "a=1", b"{ }", T0)),
            "InvalidSignatureException"
        );
        assert_eq!(
            code(check(&headers, "a=2", b"{}", T0)),
            "InvalidSignatureException"
        );
        assert_eq!(
            code(check(&headers, "a=1&b=2", b"{}", T0)),
            "InvalidSignatureException"
        );
        assert_eq!(
            code(check(&headers, "", b"{}", T0)),
            "InvalidSignatureException"
        );
        let mut h = headers.clone();
        set(
            &mut h,
            "x-amz-target",
            "AmazonEC2ContainerServiceV20141113.DeleteCluster",
        );
        assert_eq!(
            code(check(&h, "a=1", b"{}", T0)),
            "InvalidSignatureException"
        );
        let mut h = headers.clone();
        set(&mut h, "host", "evil.example");
        assert_eq!(
            code(check(&h, "a=1", b"{}", T0)),
            "InvalidSignatureException"
        );
        let mut h = headers.clone();
        h.push(("X-Amz-Target".to_owned(), "second value".to_owned()));
        assert_eq!(
            code(check(&h, "a=1", b"{}", T0)),
            "InvalidSignatureException"
        );
        let mut h = headers.clone();
        set(&mut h, "x-amz-date", "20250101T000001Z");
        assert_eq!(
            code(check(&h, "a=1", b"{}", T0)),
            "InvalidSignatureException"
        );
        let req = Request {
            method: "PUT",
            path: "/",
            query: "a=1",
            headers: &headers,
            body: b"{}",
        };
        assert_eq!(
            code(verify(&req, at(T0), secrets)),
            "InvalidSignatureException"
        );
        let req = Request {
            method: "POST",
            path: "/other",
            query: "a=1",
            headers: &headers,
            body: b"{}",
        };
        let result = verify(&req, at(T0), secrets);
        assert!(
            matches!(result, Err(Error::SignatureDoesNotMatch)),
            "{result:?}"
        );
    }

    #[test]
    fn wrong_secret_fails() {
        let headers = signed(&base_headers(), "", b"{}");
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"{}",
        };
        let result = verify(&req, at(T0), |_| Some("not-the-secret".to_owned()));
        assert!(
            matches!(result, Err(Error::SignatureDoesNotMatch)),
            "{result:?}"
        );
    }

    #[test]
    fn unknown_key() {
        let headers = signed(&base_headers(), "", b"{}");
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"{}",
        };
        let result = verify(&req, at(T0), |_| None);
        assert!(
            matches!(result, Err(Error::UnrecognizedClient)),
            "{result:?}"
        );
        assert_eq!(code(result), "UnrecognizedClientException");
    }

    #[test]
    fn clock_skew() {
        let headers = signed(&base_headers(), "", b"{}");
        let skew = 15 * 60;
        assert_eq!(code(check(&headers, "", b"{}", T0 + skew)), "ok");
        assert_eq!(code(check(&headers, "", b"{}", T0 - skew)), "ok");
        let late = check(&headers, "", b"{}", T0 + 30 * 60);
        let Err(late) = late else {
            panic!("expected an error")
        };
        assert_eq!(late.code(), "InvalidSignatureException");
        assert_eq!(
            late.to_string(),
            "Signature expired: 20250101T000000Z is now earlier than 20250101T001500Z \
             (20250101T003000Z - 15 min.)"
        );
        assert_eq!(
            code(check(&headers, "", b"{}", T0 + skew + 1)),
            "InvalidSignatureException"
        );
        let early = check(&headers, "", b"{}", T0 - 30 * 60);
        let Err(early) = early else {
            panic!("expected an error")
        };
        assert_eq!(early.code(), "InvalidSignatureException");
        assert_eq!(
            early.to_string(),
            "Signature not yet current: 20250101T000000Z is still later than \
             20241231T234500Z (20241231T233000Z + 15 min.)"
        );
    }

    #[test]
    fn missing_token() {
        let result = check(&base_headers(), "", b"{}", T0);
        assert!(matches!(result, Err(Error::MissingAuthenticationToken)));
        assert_eq!(code(result), "MissingAuthenticationTokenException");
    }

    #[test]
    fn incomplete_signature() {
        let mut headers = signed(&base_headers(), "", b"{}");
        headers.retain(|(n, _)| n != "x-amz-date");
        let result = check(&headers, "", b"{}", T0);
        assert_eq!(code(result), "IncompleteSignatureException");
    }

    #[test]
    fn scope_date_must_match_request_date() {
        let mut headers = signed(&base_headers(), "", b"{}");
        set(&mut headers, "x-amz-date", "20250102T000000Z");
        let result = check(&headers, "", b"{}", T0 + 86_400);
        let Err(e) = result else {
            panic!("expected an error")
        };
        assert_eq!(e.code(), "InvalidSignatureException");
        assert_eq!(
            e.to_string(),
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '20250101' != '20250102', from '20250102T000000Z'."
        );
    }

    #[test]
    fn content_sha256_header() {
        let body = b"{\"cluster\":\"x\"}";
        let mut unsigned = base_headers();
        unsigned.push((
            "X-Amz-Content-SHA256".to_owned(),
            "UNSIGNED-PAYLOAD".to_owned(),
        ));
        let headers = signed(&unsigned, "", body);
        // The JSON and Query APIs refuse UNSIGNED-PAYLOAD: the body could be swapped.
        let result = check(&headers, "", b"anything", T0);
        assert!(
            matches!(&result, Err(Error::IncompleteSignature(m)) if m.contains("UNSIGNED-PAYLOAD")),
            "{result:?}"
        );
        // Where a policy allows it (S3's way), the body is not covered.
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"anything",
        };
        let allow = Policy {
            allow_unsigned_payload: true,
        };
        assert!(verify_with(&req, at(T0), secrets, &allow).is_ok());

        let mut hashed = base_headers();
        hashed.push(("x-amz-content-sha256".to_owned(), sha256_hex(body)));
        let headers = signed(&hashed, "", body);
        assert_eq!(code(check(&headers, "", body, T0)), "ok");
        let result = check(&headers, "", b"{\"cluster\":\"y\"}", T0);
        assert!(
            matches!(result, Err(Error::ContentSha256Mismatch)),
            "{result:?}"
        );
        assert_eq!(code(result), "InvalidSignatureException");
    }

    #[test]
    fn host_and_every_x_amz_header_must_be_signed() {
        let body = b"{}";
        let without_target: Vec<(String, String)> = base_headers()
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("x-amz-target"))
            .collect();
        let mut headers = signed(&without_target, "", body);
        // A target added after signing (an action swapped on a request signed over `host`).
        headers.push(("X-Amz-Target".to_owned(), "BerthV1.GetJoinToken".to_owned()));
        let result = check(&headers, "", body, T0);
        assert!(
            matches!(&result, Err(Error::IncompleteSignature(m)) if m.contains("'x-amz-target' must be a 'SignedHeader'")),
            "{result:?}"
        );
        // Signing without `host`.
        let no_host: Vec<(String, String)> = base_headers()
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
            .collect();
        let mut headers = signed(&no_host, "", body);
        headers.push(("Host".to_owned(), "example.com".to_owned()));
        let result = check(&headers, "", body, T0);
        assert!(
            matches!(&result, Err(Error::IncompleteSignature(m)) if m.contains("'Host'")),
            "{result:?}"
        );
    }

    #[test]
    fn bad_signature_encodings() {
        let headers = signed(&base_headers(), "", b"{}");
        for replacement in ["zz", "", "00", "ABCDEF"] {
            let mut h = headers.clone();
            for (n, v) in h.iter_mut() {
                if n == "authorization" {
                    let cut = v.find("Signature=").map_or(0, |i| i + "Signature=".len());
                    v.truncate(cut);
                    v.push_str(replacement);
                }
            }
            let result = check(&h, "", b"{}", T0);
            assert!(
                matches!(result, Err(Error::SignatureDoesNotMatch)),
                "{result:?}"
            );
        }
        // Upper-case hex of the right signature is accepted.
        let mut h = headers.clone();
        for (n, v) in h.iter_mut() {
            if n == "authorization" {
                let cut = v.find("Signature=").map_or(0, |i| i + "Signature=".len());
                let sig = v.split_off(cut);
                v.push_str(&sig.to_ascii_uppercase());
            }
        }
        assert_eq!(code(check(&h, "", b"{}", T0)), "ok");
    }

    /// Builds a presigned query string the way SigV4QueryAuth does.
    fn presign(expires: Option<u32>, now: u64) -> String {
        let timestamp = Timestamp::from_system_time(at(now)).to_amz();
        let date = timestamp.get(..8).unwrap_or_default().to_owned();
        let mut query = format!(
            "Action=ListClusters&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={AKID}%2F\
             {date}%2Fus-east-1%2Fecs%2Faws4_request&X-Amz-Date={timestamp}\
             &X-Amz-SignedHeaders=host"
        );
        if let Some(e) = expires {
            query.push_str(&format!("&X-Amz-Expires={e}"));
        }
        let headers = [("host".to_owned(), "localhost:8080".to_owned())];
        let canonical = canonical_request(
            "GET",
            "/",
            &canonical_query(&parse_query(&query), true),
            &canonical_headers(&headers, &["host"]),
            "host",
            &sha256_hex(b""),
        );
        let to_sign = string_to_sign(&timestamp, &scope(&date, "us-east-1", "ecs"), &canonical);
        let sig = signature_mac(SECRET, &date, "us-east-1", "ecs", &to_sign)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default();
        format!("{query}&X-Amz-Signature={sig}")
    }

    fn check_get(query: &str, now: u64) -> Result<Identity, Error> {
        let headers = [("Host".to_owned(), "localhost:8080".to_owned())];
        let req = Request {
            method: "GET",
            path: "/",
            query,
            headers: &headers,
            body: b"",
        };
        verify(&req, at(now), secrets)
    }

    #[test]
    fn query_auth_round_trip_and_expiry() {
        let query = presign(Some(3600), T0);
        assert_eq!(code(check_get(&query, T0)), "ok");
        assert_eq!(code(check_get(&query, T0 + 3600)), "ok");
        let result = check_get(&query, T0 + 3601);
        assert!(
            matches!(result, Err(Error::PresignedUrlExpired { .. })),
            "{result:?}"
        );
        assert_eq!(code(result), "InvalidSignatureException");
        let result = check_get(&query, T0 - 16 * 60);
        assert!(
            matches!(result, Err(Error::SignatureNotYetCurrent { .. })),
            "{result:?}"
        );

        // Without X-Amz-Expires the 15-minute window applies.
        let query = presign(None, T0);
        assert_eq!(code(check_get(&query, T0 + 15 * 60)), "ok");
        let result = check_get(&query, T0 + 16 * 60);
        assert!(
            matches!(result, Err(Error::SignatureExpired { .. })),
            "{result:?}"
        );

        // Tampering with any signed parameter breaks the signature.
        let query = presign(Some(300), T0);
        for tampered in [
            query.replace("Action=ListClusters", "Action=DeleteCluster"),
            query.replace("X-Amz-Expires=300", "X-Amz-Expires=600"),
            format!("{query}&extra=1"),
        ] {
            let result = check_get(&tampered, T0);
            assert!(
                matches!(result, Err(Error::SignatureDoesNotMatch)),
                "{result:?}"
            );
        }
    }
}
