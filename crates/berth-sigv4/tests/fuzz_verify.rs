//! Fuzzing the verifier with proptest (the workspace builds on stable, where cargo-fuzz's
//! libFuzzer cannot run): Authorization headers, query strings, dates and bodies are what an
//! unauthenticated client controls, so any of them, however malformed, must give an error
//! and never a panic, and nothing random may ever verify.

use std::time::{Duration, UNIX_EPOCH};

use berth_sigv4::{verify, Request};
use proptest::prelude::*;

fn secret(_: &str) -> Option<String> {
    Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned())
}

/// Authorization values shaped like SigV4's, with every part drawn at random.
fn auth_header() -> impl Strategy<Value = String> {
    (
        prop_oneof!["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", ".{0,12}"],
        "[A-Z0-9]{0,20}(/[0-9]{0,8}(/[a-z0-9-]{0,12}(/[a-z]{0,8}(/aws4_request)?)?)?)?",
        "[a-z;-]{0,30}",
        "[0-9a-f]{0,70}",
        prop::sample::select(vec![", ", ",", " ", ""]),
    )
        .prop_map(|(alg, cred, signed, sig, sep)| {
            format!("{alg} Credential={cred}{sep}SignedHeaders={signed}{sep}Signature={sig}")
        })
}

proptest! {
    #[test]
    fn malformed_authorization_is_refused_not_panicked(
        auth in prop_oneof![auth_header(), ".{0,200}"],
        date in prop_oneof!["20261125T120000Z", "[0-9TZ]{0,20}", ".{0,20}"],
        query in "[a-zA-Z0-9=&%-]{0,60}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let headers = vec![
            ("host".to_owned(), "127.0.0.1:9400".to_owned()),
            ("x-amz-date".to_owned(), date),
            ("authorization".to_owned(), auth),
        ];
        let req = Request { method: "POST", path: "/", query: &query, headers: &headers, body: &body };
        let now = UNIX_EPOCH + Duration::from_secs(1_795_608_000);
        prop_assert!(verify(&req, now, secret).is_err());
    }

    #[test]
    fn malformed_presigned_queries_are_refused(
        query in "(X-Amz-[A-Za-z]{0,12}=[A-Za-z0-9%/-]{0,30}&?){0,6}",
        path in "/[a-z%0-9/.]{0,20}",
    ) {
        let headers = vec![("host".to_owned(), "127.0.0.1:9400".to_owned())];
        let req = Request { method: "GET", path: &path, query: &query, headers: &headers, body: b"" };
        let now = UNIX_EPOCH + Duration::from_secs(1_795_608_000);
        prop_assert!(verify(&req, now, secret).is_err());
    }
}
