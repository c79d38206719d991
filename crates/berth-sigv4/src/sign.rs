//! Signing key derivation and the `sign` entry point.

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::canonical::{
    canonical_headers, canonical_query, canonical_request, canonical_uri, parse_query,
    payload_hash, scope, string_to_sign, ALGORITHM, TERMINATOR,
};
use crate::date::Timestamp;
use crate::types::{Credentials, Request};

type HmacSha256 = Hmac<Sha256>;

/// Headers `sign` never signs: botocore's `SIGNED_HEADERS_BLACKLIST` (hop-by-hop
/// headers and ones proxies rewrite), plus the two it sets itself.
const UNSIGNED_HEADERS: &[&str] = &[
    "authorization",
    "x-amz-date",
    "baggage",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "traceparent",
    "tracestate",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

/// A keyed HMAC-SHA256. `None` is unreachable (HMAC accepts keys of any
/// length) but is propagated rather than unwrapped, so callers fail closed.
fn hmac(key: &[u8], data: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(data);
    Some(mac)
}

fn hmac_bytes(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    Some(hmac(key, data)?.finalize().into_bytes().to_vec())
}

/// The signing key: the chain `"AWS4" + secret` → date → region → service →
/// `aws4_request` of HMACs.
fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> Option<Key> {
    let k_secret = format!("AWS4{secret}");
    let k_date = hmac_bytes(k_secret.as_bytes(), date.as_bytes())?;
    let k_region = hmac_bytes(&k_date, region.as_bytes())?;
    let k_service = hmac_bytes(&k_region, service.as_bytes())?;
    Some(
        hmac(&k_service, TERMINATOR.as_bytes())?
            .finalize()
            .into_bytes()
            .into(),
    )
}

/// A derived signing key (an HMAC-SHA256 output).
type Key = [u8; 32];

/// Signing keys recently derived on this thread. A key depends only on the secret, the
/// scope date, region and service, so it stays valid for a whole day: caching it saves four
/// of the five HMACs per request, as AWS SDKs do.
struct KeyCache {
    /// `(secret, date, region, service, key)`, most recently used last.
    entries: Vec<(String, String, String, String, Key)>,
}

/// Entries kept per thread: a handful of access keys and regions at once.
const KEY_CACHE_ENTRIES: usize = 8;

impl KeyCache {
    fn get(&mut self, secret: &str, date: &str, region: &str, service: &str) -> Option<Key> {
        let found = self.entries.iter().position(|(s, d, r, v, _)| {
            s.as_str() == secret && d.as_str() == date && r.as_str() == region && v == service
        });
        if let Some(i) = found {
            let entry = self.entries.remove(i);
            let key = entry.4;
            self.entries.push(entry);
            return Some(key);
        }
        let key = derive_signing_key(secret, date, region, service)?;
        if self.entries.len() >= KEY_CACHE_ENTRIES {
            self.entries.remove(0);
        }
        self.entries.push((
            secret.to_owned(),
            date.to_owned(),
            region.to_owned(),
            service.to_owned(),
            key,
        ));
        Some(key)
    }
}

thread_local! {
    static KEYS: std::cell::RefCell<KeyCache> =
        const { std::cell::RefCell::new(KeyCache { entries: Vec::new() }) };
}

/// The final HMAC over the string to sign, keyed with the signing key derived
/// by the chain `"AWS4" + secret` → date → region → service → `aws4_request`.
/// Returned unfinalised so the verifier can compare in constant time.
pub(crate) fn signature_mac(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> Option<HmacSha256> {
    let k_signing = KEYS
        .try_with(|cache| cache.borrow_mut().get(secret, date, region, service))
        .unwrap_or_else(|_| derive_signing_key(secret, date, region, service))?;
    hmac(&k_signing, string_to_sign.as_bytes())
}

/// Signs a request: returns the headers to add (`x-amz-date` and
/// `authorization`; never `x-amz-security-token`).
///
/// Every header in `req.headers` is signed except hop-by-hop ones and
/// `user-agent` (the same exclusions as botocore), and any `authorization` or
/// `x-amz-date` already there is ignored: replace them with the returned ones.
/// The `host` header must already be in `req.headers` (the verifier rejects
/// requests that do not sign it). The payload hash is the value of an
/// `x-amz-content-sha256` header when one is present (e.g. `UNSIGNED-PAYLOAD`),
/// else the SHA-256 of `req.body`.
pub fn sign(
    req: &Request<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    now: SystemTime,
) -> Vec<(String, String)> {
    let timestamp = Timestamp::from_system_time(now).to_amz();
    let date = timestamp.get(..8).unwrap_or_default();

    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.clone()))
        .filter(|(name, _)| !name.is_empty() && !UNSIGNED_HEADERS.contains(&name.as_str()))
        .collect();
    headers.push(("x-amz-date".to_owned(), timestamp.clone()));
    let mut names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let signed_headers = names.join(";");

    let canonical = canonical_request(
        req.method,
        &canonical_uri(req.path),
        &canonical_query(&parse_query(req.query), false),
        &canonical_headers(&headers, &names),
        &signed_headers,
        &payload_hash(req.headers, req.body),
    );
    let scope = scope(date, region, service);
    let to_sign = string_to_sign(&timestamp, &scope, &canonical);

    let authorization = signature_mac(&creds.secret_access_key, date, region, service, &to_sign)
        .map(|mac| {
            format!(
                "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, \
                 Signature={}",
                creds.access_key_id,
                hex::encode(mac.finalize().into_bytes())
            )
        });
    let mut out = vec![("x-amz-date".to_owned(), timestamp)];
    out.extend(authorization.map(|value| ("authorization".to_owned(), value)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// `get-vanilla-query-order-key-case` from AWS's SigV4 test suite.
    #[test]
    fn aws_test_suite_signature() {
        let headers = vec![("Host".to_owned(), "example.amazonaws.com".to_owned())];
        let req = Request {
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &headers,
            body: b"",
        };
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        };
        // 20150830T123600Z
        let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let out = sign(&req, &creds, "us-east-1", "service", now);
        assert_eq!(
            out,
            vec![
                ("x-amz-date".to_owned(), "20150830T123600Z".to_owned()),
                (
                    "authorization".to_owned(),
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/\
                     aws4_request, SignedHeaders=host;x-amz-date, \
                     Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
                        .to_owned()
                ),
            ]
        );
    }

    #[test]
    fn cached_signing_keys_match_derived_ones() {
        let mut cache = KeyCache {
            entries: Vec::new(),
        };
        for round in 0..2 {
            for i in 0..(KEY_CACHE_ENTRIES + 3) {
                let secret = format!("secret-{i}");
                let date = format!("202501{:02}", i % 28 + 1);
                for service in ["ecs", "s3"] {
                    assert_eq!(
                        cache.get(&secret, &date, "us-east-1", service),
                        derive_signing_key(&secret, &date, "us-east-1", service),
                        "round {round}, key {i}, {service}"
                    );
                }
            }
            assert!(cache.entries.len() <= KEY_CACHE_ENTRIES);
        }
        // One field different is a different key.
        let a = cache.get("s", "20250101", "us-east-1", "ecs");
        assert_ne!(a, cache.get("s", "20250102", "us-east-1", "ecs"));
        assert_ne!(a, cache.get("s", "20250101", "eu-west-1", "ecs"));
        assert_ne!(a, cache.get("s", "20250101", "us-east-1", "sts"));
        assert_ne!(a, cache.get("t", "20250101", "us-east-1", "ecs"));
    }

    #[test]
    fn skips_unsigned_and_stale_headers() {
        let headers = vec![
            ("Host".to_owned(), "example.amazonaws.com".to_owned()),
            ("User-Agent".to_owned(), "x".to_owned()),
            ("Authorization".to_owned(), "stale".to_owned()),
            ("X-Amz-Date".to_owned(), "19990101T000000Z".to_owned()),
            ("Connection".to_owned(), "keep-alive".to_owned()),
            ("".to_owned(), "nameless".to_owned()),
            ("X-Amz-Target".to_owned(), "Svc.Op".to_owned()),
        ];
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"{}",
        };
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
        };
        let out = sign(&req, &creds, "us-east-1", "ecs", UNIX_EPOCH);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].1, "19700101T000000Z");
        assert!(out[1]
            .1
            .contains("SignedHeaders=host;x-amz-date;x-amz-target,"));
        assert!(out[1]
            .1
            .starts_with("AWS4-HMAC-SHA256 Credential=AKID/19700101/us-east-1/ecs/aws4_request, "));
    }
}
