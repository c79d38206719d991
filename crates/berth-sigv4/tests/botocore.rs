//! Interoperability with botocore: every request in `botocore_vectors.json`
//! (produced by `gen_vectors.py` with botocore's own `SigV4Auth` /
//! `SigV4QueryAuth`) must verify, and for header auth `sign` must reproduce
//! botocore's `Authorization` header exactly.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_sigv4::{sign, verify_with, Credentials, Error, Identity, Policy, Request};

/// botocore's vectors include S3-style `UNSIGNED-PAYLOAD` requests; berth's server refuses
/// those (its `verify`), the signing algorithm under test accepts them.
fn verify(
    req: &Request<'_>,
    now: std::time::SystemTime,
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<Identity, Error> {
    let policy = Policy {
        allow_unsigned_payload: true,
    };
    verify_with(req, now, secret_for, &policy)
}
use serde_json::Value;

const FIXTURE: &str = include_str!("botocore_vectors.json");

struct Vector {
    name: String,
    auth: String,
    region: String,
    service: String,
    timestamp: String,
    unix_time: u64,
    expires: Option<u64>,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    sign_headers: Option<Vec<(String, String)>>,
    authorization: Option<String>,
    canonical_request: String,
}

impl Vector {
    fn request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.unix_time)
    }

    /// Context for assertion messages.
    fn context(&self) -> String {
        format!(
            "vector {:?}; botocore's canonical request:\n{}",
            self.name, self.canonical_request
        )
    }
}

struct Fixture {
    creds: Credentials,
    vectors: Vec<Vector>,
}

impl Fixture {
    fn secret_for(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |akid| (akid == self.creds.access_key_id).then(|| self.creds.secret_access_key.clone())
    }
}

fn string(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_str) {
        Some(s) => s.to_owned(),
        None => panic!("fixture: missing string {key:?} in {v}"),
    }
}

fn headers(v: &Value) -> Vec<(String, String)> {
    let Some(list) = v.as_array() else {
        panic!("fixture: headers must be a list, got {v}")
    };
    list.iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(name), Value::String(value)]) => (name.clone(), value.clone()),
            _ => panic!("fixture: header must be [name, value], got {pair}"),
        })
        .collect()
}

fn load() -> Fixture {
    let root: Value = match serde_json::from_str(FIXTURE) {
        Ok(v) => v,
        Err(e) => panic!("fixture is not JSON: {e}"),
    };
    let creds = Credentials {
        access_key_id: string(&root, "access_key_id"),
        secret_access_key: string(&root, "secret_access_key"),
    };
    let Some(list) = root.get("vectors").and_then(Value::as_array) else {
        panic!("fixture: no vectors")
    };
    let vectors = list
        .iter()
        .map(|v| Vector {
            name: string(v, "name"),
            auth: string(v, "auth"),
            region: string(v, "region"),
            service: string(v, "service"),
            timestamp: string(v, "timestamp"),
            unix_time: v
                .get("unix_time")
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("fixture: unix_time in {v}")),
            expires: v.get("expires").and_then(Value::as_u64),
            method: string(v, "method"),
            path: string(v, "path"),
            query: string(v, "query"),
            headers: headers(&v["headers"]),
            body: string(v, "body").into_bytes(),
            sign_headers: v.get("sign_headers").map(headers),
            authorization: v
                .get("authorization")
                .and_then(Value::as_str)
                .map(str::to_owned),
            canonical_request: string(v, "canonical_request"),
        })
        .collect();
    Fixture { creds, vectors }
}

fn code(result: &Result<Identity, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn fixture_covers_the_required_requests() {
    let fixture = load();
    let names: Vec<&str> = fixture.vectors.iter().map(|v| v.name.as_str()).collect();
    for required in [
        "ecs-run-task-json",
        "elbv2-create-load-balancer-query",
        "get-reserved-query-repeated-keys",
        "get-params-plus-encoded-spaces",
        "ecs-unsigned-payload",
        "ecs-date-header",
        "ecs-presigned-url",
        "sts-presigned-with-signed-header",
    ] {
        assert!(names.contains(&required), "missing vector {required}");
    }
    let ecs = fixture
        .vectors
        .iter()
        .find(|v| v.name == "ecs-run-task-json");
    let Some(ecs) = ecs else { unreachable!() };
    assert!(ecs
        .headers
        .iter()
        .any(|(n, v)| n == "X-Amz-Target" && v.ends_with(".RunTask")));
    assert_eq!((ecs.method.as_str(), ecs.path.as_str()), ("POST", "/"));
}

#[test]
fn every_botocore_vector_verifies() {
    let fixture = load();
    for v in &fixture.vectors {
        let result = verify(&v.request(), v.time(), fixture.secret_for());
        match result {
            Ok(identity) => assert_eq!(
                identity,
                Identity {
                    access_key_id: fixture.creds.access_key_id.clone(),
                    date: v.timestamp[..8].to_owned(),
                    region: v.region.clone(),
                    service: v.service.clone(),
                },
                "{}",
                v.context()
            ),
            Err(e) => panic!("{e} ({}) for {}", e.code(), v.context()),
        }
    }
}

#[test]
fn sign_reproduces_botocore_authorization() {
    let fixture = load();
    let mut reproduced = 0;
    for v in &fixture.vectors {
        let (Some(sign_headers), Some(expected)) = (&v.sign_headers, &v.authorization) else {
            continue;
        };
        let req = Request {
            headers: sign_headers,
            ..v.request()
        };
        let added = sign(&req, &fixture.creds, &v.region, &v.service, v.time());
        assert_eq!(
            added,
            vec![
                ("x-amz-date".to_owned(), v.timestamp.clone()),
                ("authorization".to_owned(), expected.clone()),
            ],
            "{}",
            v.context()
        );
        reproduced += 1;
    }
    assert!(reproduced >= 5, "only {reproduced} vectors were re-signed");
}

#[test]
fn signed_then_verified_like_a_real_request() {
    // What our own clients do: sign, add the headers, send; the server verifies.
    let fixture = load();
    for v in &fixture.vectors {
        let Some(sign_headers) = &v.sign_headers else {
            continue;
        };
        let req = Request {
            headers: sign_headers,
            ..v.request()
        };
        let mut sent = sign_headers.clone();
        sent.extend(sign(&req, &fixture.creds, &v.region, &v.service, v.time()));
        sent.push(("Content-Length".to_owned(), v.body.len().to_string()));
        let req = Request {
            headers: &sent,
            ..v.request()
        };
        let result = verify(&req, v.time(), fixture.secret_for());
        assert_eq!(code(&result), "ok", "{result:?} for {}", v.context());
    }
}

#[test]
fn clock_window_around_every_vector() {
    let fixture = load();
    for v in &fixture.vectors {
        let window = v.expires.unwrap_or(15 * 60);
        let at = |secs: i64| {
            let t = v.time();
            let d = Duration::from_secs(secs.unsigned_abs());
            if secs < 0 {
                t - d
            } else {
                t + d
            }
        };
        let check = |secs: i64| code(&verify(&v.request(), at(secs), fixture.secret_for()));
        let window = i64::try_from(window).unwrap_or(i64::MAX);
        assert_eq!(check(window), "ok", "{}", v.context());
        assert_eq!(check(-15 * 60), "ok", "{}", v.context());
        assert_eq!(
            check(window + 1),
            "InvalidSignatureException",
            "{}",
            v.context()
        );
        assert_eq!(
            check(-15 * 60 - 1),
            "InvalidSignatureException",
            "{}",
            v.context()
        );
    }
}

#[test]
fn tampered_vectors_fail() {
    let fixture = load();
    for v in &fixture.vectors {
        // Wrong secret.
        let result = verify(&v.request(), v.time(), |_| Some("wrong".to_owned()));
        assert!(
            matches!(result, Err(Error::SignatureDoesNotMatch)),
            "{result:?} for {}",
            v.context()
        );
        // Unknown key.
        let result = verify(&v.request(), v.time(), |_| None);
        assert!(
            matches!(result, Err(Error::UnrecognizedClient)),
            "{result:?} for {}",
            v.context()
        );
        // An extra query parameter.
        let query = if v.query.is_empty() {
            "extra=1".to_owned()
        } else {
            format!("{}&extra=1", v.query)
        };
        let req = Request {
            query: &query,
            ..v.request()
        };
        let result = verify(&req, v.time(), fixture.secret_for());
        assert!(
            matches!(result, Err(Error::SignatureDoesNotMatch)),
            "{result:?} for {}",
            v.context()
        );
        // A changed body, unless the payload was deliberately left unsigned.
        let unsigned_payload = v.canonical_request.ends_with("\nUNSIGNED-PAYLOAD");
        let body = [v.body.as_slice(), b" "].concat();
        let req = Request {
            body: &body,
            ..v.request()
        };
        let result = verify(&req, v.time(), fixture.secret_for());
        if unsigned_payload {
            assert_eq!(code(&result), "ok", "{}", v.context());
        } else {
            assert!(
                matches!(result, Err(Error::SignatureDoesNotMatch)),
                "{result:?} for {}",
                v.context()
            );
        }
        // A changed value of every signed header.
        let signed: Vec<String> = match v.auth.as_str() {
            "query" => v
                .query
                .split('&')
                .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
                .map(|list| list.replace("%3B", ";"))
                .unwrap_or_default()
                .split(';')
                .map(str::to_owned)
                .collect(),
            _ => v
                .authorization
                .as_deref()
                .and_then(|a| a.split("SignedHeaders=").nth(1))
                .and_then(|rest| rest.split(',').next())
                .unwrap_or_default()
                .split(';')
                .map(str::to_owned)
                .collect(),
        };
        assert!(signed.iter().any(|h| h == "host"), "{}", v.context());
        for name in &signed {
            let mut headers = v.headers.clone();
            for (n, value) in headers.iter_mut() {
                if n.eq_ignore_ascii_case(name) {
                    value.push('x');
                }
            }
            let req = Request {
                headers: &headers,
                ..v.request()
            };
            let result = verify(&req, v.time(), fixture.secret_for());
            assert!(
                result.is_err(),
                "changing {name} still verified for {}",
                v.context()
            );
        }
    }
}

/// A small deterministic PRNG (xorshift64*), so the fuzz test below needs no
/// extra dependency and always runs the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TOKENS: &[&str] = &[
    "%",
    "%2",
    "%zz",
    "%C3",
    "+",
    "=",
    "==",
    "&",
    "&&",
    "/",
    "//",
    "/../",
    ";",
    ",",
    " ",
    "\t",
    "é",
    "€",
    "\u{0}",
    "AWS4-HMAC-SHA256",
    "AWS4-HMAC-SHA256 ",
    "Credential=",
    "Signature=",
    "SignedHeaders=",
    "X-Amz-Signature=",
    "X-Amz-Algorithm=AWS4-HMAC-SHA256",
    "X-Amz-Expires=",
    "X-Amz-Date=",
    "99999999999999999999",
    "-1",
    "0",
    "T",
    "Z",
    "aws4_request",
    "host",
    "20250101T000000Z",
    "99991231T235959Z",
    "00000101T000000Z",
    "Fri, 14 Mar 2025 15:09:26 GMT",
];

/// Mutates `s` at a random char boundary: truncate, insert a token, delete a
/// char, or replace it wholesale.
fn mutate(rng: &mut Rng, s: &str) -> String {
    let boundaries: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
    let at = boundaries[rng.below(boundaries.len())];
    match rng.below(4) {
        0 => s[..at].to_owned(),
        1 => format!("{}{}{}", &s[..at], rng.pick(TOKENS), &s[at..]),
        2 => {
            let mut out = s.to_owned();
            if at < s.len() {
                out.remove(at);
            }
            out
        }
        _ => (0..rng.below(6)).map(|_| rng.pick(TOKENS)).collect(),
    }
}

#[test]
fn mutated_vectors_never_panic() {
    let fixture = load();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes = std::collections::BTreeMap::<&'static str, usize>::new();
    for v in &fixture.vectors {
        for _ in 0..400 {
            let (mut method, mut path, mut query) =
                (v.method.clone(), v.path.clone(), v.query.clone());
            let mut headers = v.headers.clone();
            for _ in 0..=rng.below(3) {
                match rng.below(6) {
                    0 => query = mutate(&mut rng, &query),
                    1 => path = mutate(&mut rng, &path),
                    2 => method = mutate(&mut rng, &method),
                    _ => {
                        let i = rng.below(headers.len());
                        if let Some((name, value)) = headers.get_mut(i) {
                            if rng.below(4) == 0 {
                                *name = mutate(&mut rng, name);
                            } else {
                                *value = mutate(&mut rng, value);
                            }
                        }
                    }
                }
            }
            let now = match rng.below(5) {
                0 => UNIX_EPOCH,
                1 => UNIX_EPOCH
                    .checked_add(Duration::from_secs(u64::MAX / 2))
                    .unwrap_or(UNIX_EPOCH),
                2 => UNIX_EPOCH
                    .checked_sub(Duration::from_secs(1 << 40))
                    .unwrap_or(UNIX_EPOCH),
                _ => v.time() + Duration::from_secs(rng.next() % 2000),
            };
            let req = Request {
                method: &method,
                path: &path,
                query: &query,
                headers: &headers,
                body: &v.body,
            };
            let result = verify(&req, now, fixture.secret_for());
            if let Err(e) = &result {
                assert!(!e.to_string().is_empty());
            }
            *outcomes.entry(code(&result)).or_default() += 1;
            // Signing arbitrary input must not panic either.
            let _ = sign(
                &req,
                &fixture.creds,
                &mutate(&mut rng, &v.region),
                "ecs",
                now,
            );
        }
    }
    // The mutations reach past the parser into the signature and clock checks.
    for expected in [
        "IncompleteSignatureException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
    ] {
        assert!(outcomes.contains_key(expected), "{outcomes:?}");
    }
}
