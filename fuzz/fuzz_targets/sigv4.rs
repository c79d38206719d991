//! SigV4 parsing and verification of hostile requests: the Authorization header, presigned
//! query strings, dates, scopes and signed-header lists, none of which may panic.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Lines: method, path, query, then `name: value` headers until an empty line, then body.
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or("POST").to_owned();
    let path = lines.next().unwrap_or("/").to_owned();
    let query = lines.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap_or((line, ""));
        headers.push((k.to_owned(), v.trim_start().to_owned()));
    }
    let body: Vec<u8> = lines.collect::<Vec<_>>().join("\n").into_bytes();
    let req = berth_sigv4::Request {
        method: &method,
        path: &path,
        query: &query,
        headers: &headers,
        body: &body,
    };
    // 2015-08-30T12:36:00Z, the date of AWS's own test vectors.
    let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    let _ = berth_sigv4::verify(&req, now, |akid| {
        (akid == "AKIDEXAMPLE").then(|| "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned())
    });
});
