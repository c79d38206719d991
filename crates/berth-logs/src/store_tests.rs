//! The redb log store over its in-memory backend: append and scan order, eviction past the
//! byte cap, retention, deletion accounting.

use berth_model::logs::{InputLogEvent, LogGroup, LogStream, ShipCursor};

use crate::token::Pos;
use crate::{LogStore, LogStoreConfig, LogsError, RedbLogStore};

fn store(max_bytes: u64) -> RedbLogStore {
    RedbLogStore::in_memory(LogStoreConfig { max_bytes }).unwrap()
}

fn group(name: &str, retention: Option<i32>) -> LogGroup {
    LogGroup {
        log_group_name: name.into(),
        creation_time: 0,
        retention_in_days: retention,
        tags: Default::default(),
    }
}

fn stream(name: &str) -> LogStream {
    LogStream {
        log_stream_name: name.into(),
        ..Default::default()
    }
}

fn ev(ts: i64, m: &str) -> InputLogEvent {
    InputLogEvent {
        timestamp: ts,
        message: m.into(),
    }
}

fn all(s: &RedbLogStore, g: &str, st: &str) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    s.scan(g, st, Pos::START, Pos::END, false, &mut |e| {
        out.push((e.timestamp, e.message));
        true
    })
    .unwrap();
    out
}

#[test]
fn events_read_back_by_time_then_arrival() {
    let s = store(1 << 20);
    s.create_group(&group("g", None)).unwrap();
    s.create_stream("g", &stream("a")).unwrap();
    s.append("g", "a", &[ev(10, "x"), ev(20, "y")], 100, None)
        .unwrap();
    s.append("g", "a", &[ev(15, "z"), ev(20, "w")], 101, None)
        .unwrap();
    assert_eq!(
        all(&s, "g", "a"),
        vec![
            (10, "x".into()),
            (15, "z".into()),
            (20, "y".into()),
            (20, "w".into())
        ]
    );
    let mut rev = Vec::new();
    s.scan("g", "a", Pos::START, Pos::END, true, &mut |e| {
        rev.push(e.message);
        rev.len() < 2
    })
    .unwrap();
    assert_eq!(rev, vec!["w", "y"]);
    let st = &s.streams("g", "").unwrap()[0];
    assert_eq!(st.first_event_timestamp, Some(10));
    assert_eq!(st.last_event_timestamp, Some(20));
    assert_eq!(st.last_ingestion_time, Some(101));
    assert_eq!(st.stored_bytes, 4 * 27);
}

#[test]
fn missing_and_duplicate_resources_are_errors() {
    let s = store(1 << 20);
    assert!(matches!(
        s.create_stream("g", &stream("a")),
        Err(LogsError::GroupNotFound)
    ));
    s.create_group(&group("g", None)).unwrap();
    assert!(matches!(
        s.create_group(&group("g", None)),
        Err(LogsError::AlreadyExists)
    ));
    assert!(matches!(
        s.append("g", "a", &[ev(1, "x")], 1, None),
        Err(LogsError::StreamNotFound)
    ));
}

#[test]
fn the_oldest_events_are_evicted_past_the_cap_and_counted() {
    // Each event is 26 + 4 = 30 bytes; the cap holds 10.
    let s = store(300);
    s.create_group(&group("g", None)).unwrap();
    s.create_group(&group("h", None)).unwrap();
    s.create_stream("g", &stream("a")).unwrap();
    s.create_stream("h", &stream("b")).unwrap();
    let batch: Vec<_> = (0..6).map(|i| ev(i, &format!("g{i:03}"))).collect();
    s.append("g", "a", &batch, 1, None).unwrap();
    let batch: Vec<_> = (0..6).map(|i| ev(100 + i, &format!("h{i:03}"))).collect();
    let out = s.append("h", "b", &batch, 2, None).unwrap();
    assert_eq!(out.evicted, 2);
    let left: Vec<String> = all(&s, "g", "a").into_iter().map(|e| e.1).collect();
    assert_eq!(left, vec!["g002", "g003", "g004", "g005"]);
    assert_eq!(all(&s, "h", "b").len(), 6);
    let stats = s.stats().unwrap();
    assert_eq!((stats.bytes, stats.evicted), (300, 2));
    assert_eq!(s.group("g").unwrap().unwrap().1, 120);
}

#[test]
fn retention_drops_older_events() {
    let day = 24 * 3600 * 1000;
    let s = store(1 << 20);
    s.create_group(&group("g", Some(1))).unwrap();
    s.create_group(&group("keep", None)).unwrap();
    s.create_stream("g", &stream("a")).unwrap();
    s.create_stream("keep", &stream("a")).unwrap();
    let now = 10 * day;
    let batch = [ev(now - 2 * day, "old"), ev(now - day / 2, "new")];
    s.append("g", "a", &batch, now, None).unwrap();
    s.append("keep", "a", &batch, now, None).unwrap();
    assert_eq!(s.sweep(now).unwrap(), 1);
    assert_eq!(all(&s, "g", "a"), vec![(now - day / 2, "new".into())]);
    assert_eq!(all(&s, "keep", "a").len(), 2);
    assert_eq!(s.stats().unwrap().bytes, 3 * 29);
}

#[test]
fn deleting_frees_bytes_and_the_cursor_is_kept_with_the_batch() {
    let s = store(1 << 20);
    s.create_group(&group("g", None)).unwrap();
    s.create_stream("g", &stream("a")).unwrap();
    s.create_stream("g", &stream("b")).unwrap();
    let cur = ShipCursor {
        stdout_lines: 1,
        stderr_lines: 2,
    };
    s.append("g", "a", &[ev(1, "x")], 1, Some(cur)).unwrap();
    s.append("g", "b", &[ev(1, "y")], 1, None).unwrap();
    assert_eq!(s.streams("g", "a").unwrap()[0].agent_cursor, Some(cur));
    s.delete_stream("g", "a").unwrap();
    assert_eq!(s.stats().unwrap().bytes, 27);
    assert_eq!(s.streams("g", "").unwrap().len(), 1);
    s.delete_group("g").unwrap();
    assert_eq!(s.stats().unwrap().bytes, 0);
    assert!(s.groups("").unwrap().is_empty());
}

#[test]
fn a_file_store_keeps_events_across_reopen() {
    let dir = std::env::temp_dir().join(format!("berth-logs-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("logs.redb");
    {
        let s = RedbLogStore::open(&path, LogStoreConfig::default()).unwrap();
        s.create_group(&group("g", None)).unwrap();
        s.create_stream("g", &stream("a")).unwrap();
        s.append("g", "a", &[ev(1, "kept")], 1, None).unwrap();
    }
    let s = RedbLogStore::open(&path, LogStoreConfig::default()).unwrap();
    assert_eq!(all(&s, "g", "a"), vec![(1, "kept".into())]);
    std::fs::remove_dir_all(&dir).unwrap();
}
