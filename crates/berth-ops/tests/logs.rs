//! The CloudWatch Logs actions and the agent's shipping against an in-memory log store:
//! groups, streams, PutLogEvents' batch rules, GetLogEvents' tokens (paging terminates),
//! FilterLogEvents' patterns and paging, retention, and the ship cursor.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use berth_logs::{LogStoreConfig, RedbLogStore};
use berth_model::logs::{InputLogEvent, ShipBatch, ShipCursor};
use berth_model::ErrorCode;
use berth_ops::logs::{events, groups, ship, streams};
use berth_ops::Ctx;
use serde_json::{json, Value};
use support::{code, env_with, ok, req, Env, T0};

const NOW_MS: i64 = (T0 as i64) * 1000;

fn logs_env(max_bytes: u64) -> Env {
    let store = RedbLogStore::in_memory(LogStoreConfig { max_bytes }).expect("a log store");
    env_with(|ops| ops.with_logs(Arc::new(store)))
}

async fn setup(ctx: &Ctx, group: &str, stream: &str) {
    ok(groups::create(ctx, req(json!({"logGroupName": group}))).await);
    ok(streams::create(
        ctx,
        req(json!({"logGroupName": group, "logStreamName": stream})),
    )
    .await);
}

async fn put(ctx: &Ctx, group: &str, stream: &str, evs: Vec<(i64, String)>) -> Value {
    let evs: Vec<Value> = evs
        .into_iter()
        .map(|(t, m)| json!({"timestamp": t, "message": m}))
        .collect();
    ok(events::put(
        ctx,
        req(json!({"logGroupName": group, "logStreamName": stream, "logEvents": evs})),
    )
    .await)
}

fn messages(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn groups_are_created_described_and_deleted() {
    let env = logs_env(1 << 20);
    let ctx = &env.ctx;
    for g in ["/ecs/a", "/ecs/b", "/other"] {
        ok(groups::create(ctx, req(json!({"logGroupName": g, "tags": {"team": "x"}}))).await);
    }
    assert_eq!(
        code(groups::create(ctx, req(json!({"logGroupName": "/ecs/a"}))).await),
        ErrorCode::ResourceAlreadyExistsException
    );
    assert_eq!(
        code(groups::create(ctx, req(json!({"logGroupName": "bad name"}))).await),
        ErrorCode::InvalidParameterException
    );
    let e = groups::create(ctx, req(json!({"logGroupName": "k", "kmsKeyId": "x"}))).await;
    assert!(e.unwrap_err().message.contains("kmsKeyId"));
    let page =
        ok(groups::describe(ctx, req(json!({"logGroupNamePrefix": "/ecs/", "limit": 1}))).await);
    assert_eq!(page["logGroups"][0]["logGroupName"], "/ecs/a");
    assert_eq!(
        page["logGroups"][0]["arn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/a:*"
    );
    let token = page["nextToken"].as_str().unwrap().to_owned();
    let page = ok(groups::describe(
        ctx,
        req(json!({"logGroupNamePrefix": "/ecs/", "limit": 1, "nextToken": token})),
    )
    .await);
    assert_eq!(page["logGroups"][0]["logGroupName"], "/ecs/b");
    assert!(page.get("nextToken").is_none());
    ok(groups::delete(ctx, req(json!({"logGroupName": "/ecs/a"}))).await);
    assert_eq!(
        code(groups::delete(ctx, req(json!({"logGroupName": "/ecs/a"}))).await),
        ErrorCode::ResourceNotFoundException
    );
}

#[tokio::test]
async fn streams_order_by_name_or_last_event_time() {
    let env = logs_env(1 << 20);
    let ctx = &env.ctx;
    setup(ctx, "g", "b").await;
    for s in ["a", "c"] {
        ok(streams::create(ctx, req(json!({"logGroupName": "g", "logStreamName": s}))).await);
    }
    put(ctx, "g", "a", vec![(NOW_MS, "late".into())]).await;
    put(ctx, "g", "c", vec![(NOW_MS - 1000, "early".into())]).await;
    let names = |v: &Value| -> Vec<String> {
        v["logStreams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["logStreamName"].as_str().unwrap().to_owned())
            .collect()
    };
    let v = ok(streams::describe(ctx, req(json!({"logGroupName": "g"}))).await);
    assert_eq!(names(&v), ["a", "b", "c"]);
    let v = ok(streams::describe(
        ctx,
        req(json!({"logGroupName": "g", "orderBy": "LastEventTime", "descending": true, "limit": 2})),
    )
    .await);
    assert_eq!(names(&v), ["a", "c"]);
    let t = v["nextToken"].as_str().unwrap().to_owned();
    let v = ok(streams::describe(
        ctx,
        req(json!({"logGroupName": "g", "orderBy": "LastEventTime", "descending": true, "nextToken": t})),
    )
    .await);
    assert_eq!(names(&v), ["b"]);
    assert_eq!(
        code(streams::describe(
            ctx,
            req(json!({"logGroupName": "g", "orderBy": "LastEventTime", "logStreamNamePrefix": "a"}))
        )
        .await),
        ErrorCode::InvalidParameterException
    );
    ok(streams::delete(ctx, req(json!({"logGroupName": "g", "logStreamName": "a"}))).await);
    let v = ok(streams::describe(
        ctx,
        req(json!({"logGroupName": "g", "logStreamNamePrefix": "a"})),
    )
    .await);
    assert!(names(&v).is_empty());
}

#[tokio::test]
async fn put_sorts_and_rejects_out_of_range_events() {
    let env = logs_env(1 << 20);
    let ctx = &env.ctx;
    setup(ctx, "g", "s").await;
    let day = 24 * 3600 * 1000;
    let v = put(
        ctx,
        "g",
        "s",
        vec![
            (NOW_MS + 3 * 3600 * 1000, "future".into()),
            (NOW_MS, "b".into()),
            (NOW_MS - 1, "a".into()),
        ],
    )
    .await;
    assert!(v["nextSequenceToken"].is_string());
    assert_eq!(
        v["rejectedLogEventsInfo"],
        json!({"tooNewLogEventStartIndex": 2})
    );
    let old = NOW_MS - 15 * day;
    let v = put(
        ctx,
        "g",
        "s",
        vec![(old + 1000, "ancient".into()), (old, "older".into())],
    )
    .await;
    assert_eq!(
        v["rejectedLogEventsInfo"],
        json!({"tooOldLogEventEndIndex": 2})
    );
    let span = events::put(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [
            {"timestamp": NOW_MS, "message": "x"}, {"timestamp": NOW_MS - 2 * day, "message": "y"}]})),
    )
    .await;
    assert_eq!(code(span), ErrorCode::InvalidParameterException);
    let got = ok(events::get(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true})),
    )
    .await);
    assert_eq!(messages(&got), ["a", "b"]);
    // Batch limits as AWS: 10,000 events, 1 MiB, 24 hours.
    let many: Vec<Value> = (0..10_001)
        .map(|_| json!({"timestamp": NOW_MS, "message": "x"}))
        .collect();
    let r = events::put(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "s", "logEvents": many})),
    )
    .await;
    assert_eq!(code(r), ErrorCode::InvalidParameterException);
    let big = "y".repeat(200_000);
    let evs: Vec<Value> = (0..6)
        .map(|_| json!({"timestamp": NOW_MS, "message": big}))
        .collect();
    let r = events::put(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "s", "logEvents": evs})),
    )
    .await;
    assert_eq!(code(r), ErrorCode::InvalidParameterException);
    let r = events::put(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "nope", "logEvents": [{"timestamp": NOW_MS, "message": "m"}]})),
    )
    .await;
    assert_eq!(code(r), ErrorCode::ResourceNotFoundException);
}

#[tokio::test]
async fn get_log_events_pages_both_ways_and_stops_at_the_end() {
    let env = logs_env(1 << 20);
    let ctx = &env.ctx;
    setup(ctx, "g", "s").await;
    put(
        ctx,
        "g",
        "s",
        (0..25).map(|i| (NOW_MS + i, format!("m{i:02}"))).collect(),
    )
    .await;
    // From the head, forward, 10 at a time, until the token repeats (what the CLI does).
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut body =
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true, "limit": 10});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let v = ok(events::get(ctx, req(body)).await);
        seen.extend(messages(&v));
        let next = v["nextForwardToken"].as_str().unwrap().to_owned();
        assert!(next.starts_with("f/"));
        if token.as_deref() == Some(next.as_str()) {
            break;
        }
        token = Some(next);
    }
    assert_eq!(
        seen,
        (0..25).map(|i| format!("m{i:02}")).collect::<Vec<_>>()
    );
    // By default, the newest events; the backward token reads the ones before.
    let v = ok(events::get(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "s", "limit": 10})),
    )
    .await);
    assert_eq!(messages(&v).first().unwrap(), "m15");
    let b = v["nextBackwardToken"].as_str().unwrap().to_owned();
    assert!(b.starts_with("b/"));
    let v = ok(events::get(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "s", "limit": 10, "nextToken": b})),
    )
    .await);
    assert_eq!(
        messages(&v),
        (5..15).map(|i| format!("m{i:02}")).collect::<Vec<_>>()
    );
    // Following: the forward token of the newest page sees what is written next.
    let v = ok(events::get(ctx, req(json!({"logGroupName": "g", "logStreamName": "s"}))).await);
    let f = v["nextForwardToken"].as_str().unwrap().to_owned();
    put(ctx, "g", "s", vec![(NOW_MS + 100, "new".into())]).await;
    let v = ok(events::get(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "s", "nextToken": f})),
    )
    .await);
    assert_eq!(messages(&v), ["new"]);
    // Time bounds: startTime inclusive, endTime exclusive.
    let v = ok(events::get(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "s", "startTime": NOW_MS + 3, "endTime": NOW_MS + 6, "startFromHead": true})),
    )
    .await);
    assert_eq!(messages(&v), ["m03", "m04", "m05"]);
    assert_eq!(
        code(
            events::get(
                ctx,
                req(json!({"logGroupName": "g", "logStreamName": "s", "nextToken": "junk"}))
            )
            .await
        ),
        ErrorCode::InvalidParameterException
    );
}

#[tokio::test]
async fn filter_interleaves_streams_and_matches_text_patterns() {
    let env = logs_env(1 << 20);
    let ctx = &env.ctx;
    setup(ctx, "g", "web/app/1").await;
    ok(streams::create(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "web/app/2"})),
    )
    .await);
    ok(streams::create(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "db/x"})),
    )
    .await);
    put(
        ctx,
        "g",
        "web/app/1",
        vec![(NOW_MS, "ERROR one".into()), (NOW_MS + 2, "INFO ok".into())],
    )
    .await;
    put(
        ctx,
        "g",
        "web/app/2",
        vec![
            (NOW_MS + 1, "WARN two".into()),
            (NOW_MS + 3, "ERROR healthcheck".into()),
        ],
    )
    .await;
    put(ctx, "g", "db/x", vec![(NOW_MS + 1, "ERROR db".into())]).await;
    let v = filter(
        ctx,
        json!({"logGroupName": "g", "logStreamNamePrefix": "web/"}),
    )
    .await;
    assert_eq!(
        messages(&v),
        ["ERROR one", "WARN two", "INFO ok", "ERROR healthcheck"]
    );
    let v = filter(
        ctx,
        json!({"logGroupName": "g", "filterPattern": "?ERROR ?WARN"}),
    )
    .await;
    assert_eq!(messages(&v).len(), 4);
    let v = filter(
        ctx,
        json!({"logGroupName": "g", "filterPattern": "ERROR -healthcheck"}),
    )
    .await;
    assert_eq!(messages(&v), ["ERROR one", "ERROR db"]);
    let v = filter(ctx, json!({"logGroupName": "g", "filterPattern": "\"ERROR one\"", "logStreamNames": ["web/app/1", "gone"]})).await;
    assert_eq!(messages(&v), ["ERROR one"]);
    assert_eq!(v["events"][0]["logStreamName"], "web/app/1");
    let v = filter(
        ctx,
        json!({"logGroupName": "g", "startTime": NOW_MS + 1, "endTime": NOW_MS + 2}),
    )
    .await;
    assert_eq!(messages(&v), ["WARN two", "ERROR db", "INFO ok"]);
    // Paging: two at a time until no nextToken.
    let mut seen = Vec::new();
    let mut body = json!({"logGroupName": "g", "limit": 2});
    loop {
        let v = filter(ctx, body.clone()).await;
        seen.extend(messages(&v));
        match v.get("nextToken") {
            Some(t) => body["nextToken"] = t.clone(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let e = events::filter(
        ctx,
        req(json!({"logGroupName": "g", "filterPattern": "{ $.x = 1 }"})),
    )
    .await;
    let e = e.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParameterException);
    assert!(e.message.contains("filterPattern"), "{}", e.message);
}

#[tokio::test]
async fn retention_refuses_and_sweeps_expired_events() {
    let env = logs_env(1 << 20);
    let ctx = &env.ctx;
    setup(ctx, "g", "s").await;
    let day = 24 * 3600 * 1000;
    put(ctx, "g", "s", vec![(NOW_MS - 3 * day, "old".into())]).await;
    put(ctx, "g", "s", vec![(NOW_MS, "new".into())]).await;
    assert_eq!(
        code(
            groups::put_retention(ctx, req(json!({"logGroupName": "g", "retentionInDays": 2})))
                .await
        ),
        ErrorCode::InvalidParameterException
    );
    ok(groups::put_retention(ctx, req(json!({"logGroupName": "g", "retentionInDays": 1}))).await);
    let v = ok(groups::describe(ctx, req(json!({}))).await);
    assert_eq!(v["logGroups"][0]["retentionInDays"], 1);
    let store = env.ops.log_store().unwrap();
    assert_eq!(store.sweep(NOW_MS).unwrap(), 1);
    let v = ok(events::get(ctx, req(json!({"logGroupName": "g", "logStreamName": "s"}))).await);
    assert_eq!(messages(&v), ["new"]);
    let v = put(
        ctx,
        "g",
        "s",
        vec![
            (NOW_MS - 2 * day, "stale".into()),
            (NOW_MS - day, "fresh".into()),
        ],
    )
    .await;
    assert_eq!(
        v["rejectedLogEventsInfo"],
        json!({"expiredLogEventEndIndex": 1})
    );
    ok(groups::delete_retention(ctx, req(json!({"logGroupName": "g"}))).await);
    let v = ok(groups::describe(ctx, req(json!({}))).await);
    assert!(v["logGroups"][0]["retentionInDays"].is_null());
}

#[tokio::test]
async fn the_store_cap_evicts_the_oldest_events() {
    // Each event: 26 + 4 bytes; room for 5.
    let env = logs_env(150);
    let ctx = &env.ctx;
    setup(ctx, "g", "s").await;
    put(
        ctx,
        "g",
        "s",
        (0..8).map(|i| (NOW_MS + i, format!("e{i:03}"))).collect(),
    )
    .await;
    let v = ok(events::get(
        ctx,
        req(json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true})),
    )
    .await);
    assert_eq!(messages(&v), ["e003", "e004", "e005", "e006", "e007"]);
    assert_eq!(env.ops.log_store().unwrap().stats().unwrap().evicted, 3);
}

async fn filter(ctx: &Ctx, body: Value) -> Value {
    ok(events::filter(ctx, req(body)).await)
}

fn batch(create: bool, events: Vec<InputLogEvent>, cursor: Option<ShipCursor>) -> ShipBatch {
    ShipBatch {
        cluster: "default".into(),
        log_group_name: "/ecs/web".into(),
        log_stream_name: "web/app/t1".into(),
        create_group: create,
        events,
        cursor,
    }
}

#[tokio::test]
async fn shipping_creates_group_and_stream_and_keeps_the_cursor() {
    let env = logs_env(1 << 20);
    let missing = ship::ship(&env.ops, batch(false, vec![], None)).await;
    assert_eq!(code(missing), ErrorCode::ResourceNotFoundException);
    let open = ok(ship::ship(&env.ops, batch(true, vec![], None)).await);
    assert_eq!(open.cursor, None);
    let cur = ShipCursor {
        stdout_lines: 2,
        stderr_lines: 0,
    };
    let ev = |m: &str| InputLogEvent {
        timestamp: NOW_MS,
        message: m.into(),
    };
    let a = ok(ship::ship(&env.ops, batch(true, vec![ev("one"), ev("two")], Some(cur))).await);
    assert_eq!((a.cursor, a.rejected), (Some(cur), 0));
    // A restarted agent opens the stream again and learns where it got to.
    let again = ok(ship::ship(&env.ops, batch(false, vec![], None)).await);
    assert_eq!(again.cursor, Some(cur));
    let v = ok(events::get(
        &env.ctx,
        req(json!({"logGroupName": "/ecs/web", "logStreamName": "web/app/t1"})),
    )
    .await);
    assert_eq!(messages(&v), ["one", "two"]);
}
