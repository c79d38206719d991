//! The agent protocol: registration, status reports, log batches and polls, with a valid join
//! token, so the bodies reach the handlers. A long poll may legitimately not answer in time.
#![no_main]

use std::time::Duration;

use berth_fuzz::{api, assert_not_server_error, JOIN_SECRET};
use berth_model::agent::JOIN_TOKEN_HEADER;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let token = berth_api::join_token(JOIN_SECRET, "default");
    let mut headers = vec![
        (JOIN_TOKEN_HEADER.to_owned(), token),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let (method, uri, body) = match pick % 4 {
        0 => ("POST", "/agent/v1/register".to_owned(), rest.to_vec()),
        1 => ("POST", "/agent/v1/status".to_owned(), rest.to_vec()),
        2 => ("POST", "/agent/v1/logs".to_owned(), rest.to_vec()),
        _ => {
            headers.pop();
            let q: String = String::from_utf8_lossy(rest)
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .collect();
            ("GET", format!("/agent/v1/poll?{q}"), Vec::new())
        }
    };
    if let Some(answer) = api().call(method, &uri, &headers, body, Duration::from_millis(200)) {
        assert_not_server_error(&uri, &answer);
    }
});
