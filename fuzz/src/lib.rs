//! What berth's fuzz targets share: the whole HTTP front door (`berth_api::router`) over a
//! fresh in-memory store, called in-process, with requests signed as a real client signs
//! them, so fuzzed bytes get past authentication and reach the parsers and operations behind
//! it. The one property every target checks besides "no panic": a client's bytes never earn
//! a server error (HTTP 5xx), since every bad input must be refused as the client's fault.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use berth_api::{router, ApiState, KeyRing, Ops, OpsConfig};
use berth_model::SystemClock;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The access key the harness signs with.
pub const ACCESS_KEY: &str = "AKIDFUZZ";
const SECRET_KEY: &str = "fuzz-secret";
/// The agents' join secret.
pub const JOIN_SECRET: &str = "fuzz-join-secret";
const REGION: &str = "us-east-1";

/// An in-process berth API and the runtime that drives it.
pub struct Api {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
}

/// The process-wide API (built on first use; state accumulates across inputs, which lets the
/// fuzzer reach operations on resources earlier inputs created).
pub fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let router = rt.block_on(async {
            let store: Arc<dyn berth_store::Store> =
                Arc::new(berth_store::RedbStore::in_memory().expect("an in-memory store"));
            let config = OpsConfig {
                join_secret: JOIN_SECRET.to_owned(),
                ..OpsConfig::default()
            };
            let ops = Ops::new(store, Arc::new(SystemClock), config);
            router(ApiState::new(
                ops,
                KeyRing::new().with_key(ACCESS_KEY, SECRET_KEY),
            ))
        });
        Api { rt, router }
    })
}

/// A response: status and body.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body (empty when the call timed out, e.g. an agent's long poll).
    pub body: Vec<u8>,
}

impl Api {
    /// Sends one request; `None` when it did not finish within `wait` (long polls may not).
    pub fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        wait: Duration,
    ) -> Option<Answer> {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let req = b.body(axum::body::Body::from(body)).ok()?;
        let router = self.router.clone();
        self.rt.block_on(async move {
            tokio::time::timeout(wait, async move {
                let resp = router.oneshot(req).await.expect("the router is infallible");
                let status = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map(|c| c.to_bytes().to_vec())
                    .unwrap_or_default();
                Answer { status, body }
            })
            .await
            .ok()
        })
    }

    /// A POST to `/` signed for `service` with the given extra headers (content type,
    /// `x-amz-target`), as an SDK sends it; `None` when a header is not one HTTP can carry
    /// (no client could send it).
    pub fn signed(
        &self,
        service: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Option<Answer> {
        if headers
            .iter()
            .any(|(_, v)| http::HeaderValue::from_str(v).is_err())
        {
            return None;
        }
        let mut headers = headers;
        headers.push(("host".to_owned(), "localhost".to_owned()));
        let req = berth_sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: &body,
        };
        let creds = berth_sigv4::Credentials {
            access_key_id: ACCESS_KEY.to_owned(),
            secret_access_key: SECRET_KEY.to_owned(),
        };
        let signed = berth_sigv4::sign(&req, &creds, REGION, service, SystemTime::now());
        headers.extend(signed);
        let answer = self.call("POST", "/", &headers, body, Duration::from_secs(10));
        assert!(answer.is_some(), "a signed API call did not answer in 10 s");
        answer
    }
}

/// Fails (a crash libFuzzer keeps) when berth blamed itself for a client's bytes.
pub fn assert_not_server_error(what: &str, a: &Answer) {
    assert!(
        a.status < 500,
        "{what}: HTTP {} {}",
        a.status,
        String::from_utf8_lossy(&a.body)
    );
}

/// Splits fuzz input at the first `\n`: (head, rest).
pub fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
