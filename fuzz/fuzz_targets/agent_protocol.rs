//! The agent protocol: registration (with a join token), then status reports, log batches and
//! polls made as a registered instance with its credential, so the bodies reach the handlers
//! past authentication. A long poll may legitimately not answer in time.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use berth_fuzz::{api, assert_not_server_error, JOIN_SECRET};
use berth_model::agent::{CREDENTIAL_HEADER, INSTANCE_HEADER, JOIN_TOKEN_HEADER};
use libfuzzer_sys::fuzz_target;

fn token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    berth_api::join_token(JOIN_SECRET, "default", now, 86_400.0)
}

/// One registered instance: (id, credential).
fn instance() -> &'static (String, String) {
    static INSTANCE: OnceLock<(String, String)> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        let created = api().signed(
            "ecs",
            vec![
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                (
                    "x-amz-target".into(),
                    "AmazonEC2ContainerServiceV20141113.CreateCluster".into(),
                ),
            ],
            br#"{"clusterName":"default"}"#.to_vec(),
        );
        assert!(created.is_some_and(|a| a.status == 200));
        let body =
            br#"{"cluster":"default","hostname":"fuzz","resources":{"cpu":2048,"memory":4096}}"#;
        let headers = vec![
            (JOIN_TOKEN_HEADER.to_owned(), token()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ];
        let answer = api()
            .call(
                "POST",
                "/agent/v1/register",
                &headers,
                body.to_vec(),
                Duration::from_secs(10),
            )
            .expect("registration answers");
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        let field = |name: &str| -> String {
            let at = text.find(&format!("\"{name}\":\"")).expect("field") + name.len() + 4;
            text[at..].split('"').next().unwrap_or_default().to_owned()
        };
        (field("instanceId"), field("credential"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (id, credential) = instance();
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if pick % 4 == 0 {
        headers.push((JOIN_TOKEN_HEADER.to_owned(), token()));
    } else {
        headers.push((INSTANCE_HEADER.to_owned(), id.clone()));
        headers.push((CREDENTIAL_HEADER.to_owned(), credential.clone()));
    }
    let (method, uri, body) = match pick % 4 {
        0 => ("POST", "/agent/v1/register".to_owned(), rest.to_vec()),
        1 => ("POST", "/agent/v1/status".to_owned(), rest.to_vec()),
        2 => ("POST", "/agent/v1/logs".to_owned(), rest.to_vec()),
        _ => {
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
