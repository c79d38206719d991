//! PutLogEvents, GetLogEvents, FilterLogEvents.

use berth_logs::token::{self, Pos, StreamToken};
use berth_logs::{FilterPattern, LogStore, LogsError};
use berth_model::logs::{
    InputLogEvent, RejectedLogEventsInfo, ShipCursor, StoredEvent, MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS, MAX_EVENT_AGE_MS, MAX_EVENT_AHEAD_MS, MAX_MESSAGE_BYTES,
};
use berth_model::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{group_of, limit, logs_err, now_ms, refuse};
use crate::Ctx;

/// The most a GetLogEvents or FilterLogEvents page carries, in bytes.
const MAX_PAGE_BYTES: usize = 1_048_576;
/// A batch may not span more than this (24 hours).
const MAX_BATCH_SPAN_MS: i64 = 24 * 3600 * 1000;

/// The request of `PutLogEvents`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRequest {
    log_group_name: String,
    log_stream_name: String,
    log_events: Vec<InputLogEvent>,
    /// Accepted and ignored, as CloudWatch Logs has done since 2023.
    #[allow(dead_code)]
    sequence_token: Option<String>,
    entity: Option<Value>,
}

/// Checks a batch against CloudWatch's limits, sorts it by timestamp, and splits off what it
/// rejects (too old, too new, older than the retention): returns the events to store and the
/// `rejectedLogEventsInfo`.
pub(crate) fn screen(
    mut events: Vec<InputLogEvent>,
    now_ms: i64,
    retention_days: Option<i32>,
) -> Result<(Vec<InputLogEvent>, RejectedLogEventsInfo), ApiError> {
    if events.is_empty() {
        return Err(ApiError::invalid(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: \
             Member must have length greater than or equal to 1",
        ));
    }
    if events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::invalid(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_BATCH_EVENTS}"
        )));
    }
    let bytes: usize = events.iter().map(InputLogEvent::size).sum();
    if bytes > MAX_BATCH_BYTES {
        return Err(ApiError::invalid(format!(
            "Log events in a single PutLogEvents request must be less than {MAX_BATCH_BYTES} \
             bytes (this one is {bytes})."
        )));
    }
    if let Some(e) = events.iter().find(|e| e.message.len() > MAX_MESSAGE_BYTES) {
        return Err(ApiError::invalid(format!(
            "Log event too large: {} bytes exceeds the limit of {MAX_MESSAGE_BYTES}.",
            e.message.len()
        )));
    }
    events.sort_by_key(|e| e.timestamp);
    let (first, last) = (events[0].timestamp, events[events.len() - 1].timestamp);
    if last - first > MAX_BATCH_SPAN_MS {
        return Err(ApiError::invalid(
            "A batch of log events in a single request cannot span more than 24 hours.",
        ));
    }
    let mut info = RejectedLogEventsInfo::default();
    let too_old = events
        .iter()
        .take_while(|e| e.timestamp < now_ms - MAX_EVENT_AGE_MS)
        .count();
    if too_old > 0 {
        info.too_old_log_event_end_index = Some(too_old);
    }
    let expired = retention_days.map_or(0, |d| {
        let cutoff = now_ms - i64::from(d) * 24 * 3600 * 1000;
        events.iter().take_while(|e| e.timestamp < cutoff).count()
    });
    if expired > 0 {
        info.expired_log_event_end_index = Some(expired);
    }
    let too_new_at = events
        .iter()
        .position(|e| e.timestamp > now_ms + MAX_EVENT_AHEAD_MS);
    info.too_new_log_event_start_index = too_new_at;
    let end = too_new_at.unwrap_or(events.len());
    let start = too_old.max(expired).min(end);
    let kept = events.drain(start..end).collect();
    Ok((kept, info))
}

/// Screens and stores a batch (PutLogEvents and the agent's shipping); `cursor` is stored
/// with it in the same transaction.
pub(crate) fn append_screened(
    s: &dyn LogStore,
    group: &str,
    stream: &str,
    events: Vec<InputLogEvent>,
    now: i64,
    cursor: Option<ShipCursor>,
) -> Result<RejectedLogEventsInfo, ApiError> {
    let Some((g, _)) = s.group(group).map_err(logs_err)? else {
        return Err(logs_err(LogsError::GroupNotFound));
    };
    let (kept, info) = screen(events, now, g.retention_in_days)?;
    let out = s
        .append(group, stream, &kept, now, cursor)
        .map_err(logs_err)?;
    if out.evicted > 0 {
        tracing::warn!(
            evicted = out.evicted,
            "log store full: evicted the oldest events (raise --logs-max-bytes to keep more)"
        );
    }
    Ok(info)
}

/// `PutLogEvents`.
pub async fn put(ctx: &Ctx, req: PutRequest) -> Result<Value, ApiError> {
    if req.entity.is_some() {
        return Err(refuse("entity", "berth has no entity store"));
    }
    let now = now_ms(ctx);
    let info = ctx
        .logs(move |s| {
            append_screened(
                s,
                &req.log_group_name,
                &req.log_stream_name,
                req.log_events,
                now,
                None,
            )
        })
        .await?;
    let mut out = json!({ "nextSequenceToken": format!("{:056}", now) });
    if !info.is_empty() {
        out["rejectedLogEventsInfo"] = json!(info);
    }
    Ok(out)
}

/// The request of `GetLogEvents`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
    unmask: Option<bool>,
}

fn out_event(e: &StoredEvent) -> Value {
    json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time})
}

fn invalid_token() -> ApiError {
    ApiError::invalid("The specified nextToken is invalid.")
}

/// `GetLogEvents`: one stream, oldest first within the page. Without a token, the newest
/// events (or, with `startFromHead`, the oldest); with one, the page after (`f/`) or before
/// (`b/`) it. At the end of the stream the same `nextForwardToken` comes back.
pub async fn get(ctx: &Ctx, req: GetRequest) -> Result<Value, ApiError> {
    if req.unmask == Some(true) {
        return Err(refuse("unmask", "berth has no data protection policies"));
    }
    let group = group_of(req.log_group_name, req.log_group_identifier)?;
    let size = limit(req.limit, 10_000, 10_000)?;
    let tok = match req.next_token.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => StreamToken::decode(t).ok_or_else(invalid_token)?,
        None if req.start_from_head == Some(true) => StreamToken::forward(Pos::START),
        None => StreamToken::backward(Pos::END),
    };
    // startTime is inclusive, endTime exclusive: no event has seq 0.
    let lo = Pos::new(req.start_time.unwrap_or(i64::MIN), 0);
    let hi = Pos::new(req.end_time.unwrap_or(i64::MAX), 0);
    let stream = req.log_stream_name;
    let forward = tok.direction == token::Direction::Forward;
    let (after, before) = if forward {
        (tok.pos.max(lo), hi)
    } else {
        (lo, tok.pos.min(hi))
    };
    let events = ctx
        .logs(move |s| {
            let mut page: Vec<StoredEvent> = Vec::new();
            let mut bytes = 0usize;
            s.scan(&group, &stream, after, before, !forward, &mut |e| {
                bytes += e.message.len() + berth_model::logs::EVENT_OVERHEAD_BYTES;
                if page.len() == size || (bytes > MAX_PAGE_BYTES && !page.is_empty()) {
                    return false;
                }
                page.push(e);
                true
            })
            .map_err(logs_err)?;
            if !forward {
                page.reverse();
            }
            Ok(page)
        })
        .await?;
    let pos = |e: &StoredEvent| Pos::new(e.timestamp, e.seq);
    let first = events.first().map(pos);
    let last = events.last().map(pos);
    let (fwd, back) = if forward {
        token::page_tokens(tok.pos, first, last)
    } else {
        // A backward read's forward token resumes after its newest event; from the end of an
        // empty stream, from its start (so a follower sees the first event to arrive).
        let asked = if tok.pos == Pos::END {
            Pos::START
        } else {
            tok.pos
        };
        let (f, _) = token::page_tokens(asked, first, last);
        let (_, b) = token::page_tokens(tok.pos, first, last);
        (f, b)
    };
    Ok(json!({
        "events": events.iter().map(out_event).collect::<Vec<_>>(),
        "nextForwardToken": fwd,
        "nextBackwardToken": back,
    }))
}

/// The request of `FilterLogEvents`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
    /// Deprecated by AWS; results are always interleaved.
    #[allow(dead_code)]
    interleaved: Option<bool>,
    start_from_head: Option<bool>,
    unmask: Option<bool>,
}

/// `FilterLogEvents`: the group's events (or those of the named streams, or of streams with a
/// prefix) between startTime and endTime (both inclusive) that match the pattern, across
/// streams in time order. `aws logs tail --follow` polls this.
pub async fn filter(ctx: &Ctx, req: FilterRequest) -> Result<Value, ApiError> {
    if req.unmask == Some(true) {
        return Err(refuse("unmask", "berth has no data protection policies"));
    }
    if req.start_from_head == Some(false) {
        return Err(refuse(
            "startFromHead",
            "FilterLogEvents returns events oldest first",
        ));
    }
    let group = group_of(req.log_group_name, req.log_group_identifier)?;
    if req.log_stream_names.is_some() && req.log_stream_name_prefix.is_some() {
        return Err(ApiError::invalid(
            "You cannot specify both LogStreamNames and LogStreamNamePrefix.",
        ));
    }
    if req.log_stream_names.as_ref().is_some_and(|n| n.len() > 100) {
        return Err(ApiError::invalid(
            "1 validation error detected: Value at 'logStreamNames' failed to satisfy \
             constraint: Member must have length less than or equal to 100",
        ));
    }
    let pattern = FilterPattern::parse(req.filter_pattern.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::invalid(format!("filterPattern: {e}")))?;
    let size = limit(req.limit, 10_000, 10_000)?;
    let resume = match req.next_token.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(token::decode_filter_token(t).ok_or_else(invalid_token)?),
        None => None,
    };
    let lo = Pos::new(req.start_time.unwrap_or(i64::MIN), 0);
    let after = resume.map_or(lo, |r| r.max(lo));
    // endTime is inclusive: up to the last seq of that millisecond.
    let before = req
        .end_time
        .map_or(Pos::END, |t| Pos::new(t.saturating_add(1), 0));
    let names = req.log_stream_names;
    let prefix = req.log_stream_name_prefix.unwrap_or_default();
    let (events, searched, more) = ctx
        .logs(move |s| {
            let streams: Vec<String> = match names {
                Some(n) => n,
                None => s
                    .streams(&group, &prefix)
                    .map_err(logs_err)?
                    .into_iter()
                    .map(|st| st.log_stream_name)
                    .collect(),
            };
            let mut all: Vec<StoredEvent> = Vec::new();
            let mut searched = Vec::new();
            for st in &streams {
                let mut n = 0;
                let r = s.scan(&group, st, after, before, false, &mut |e| {
                    if pattern.matches(&e.message) {
                        all.push(e);
                        n += 1;
                    }
                    n <= size
                });
                match r {
                    Ok(()) => searched.push(st.clone()),
                    // A named stream that does not exist is not an error, as in AWS.
                    Err(LogsError::StreamNotFound) => {}
                    Err(e) => return Err(logs_err(e)),
                }
            }
            all.sort_by_key(|e| (e.timestamp, e.seq));
            let mut bytes = 0usize;
            let mut keep = 0usize;
            for e in &all {
                bytes += e.message.len() + berth_model::logs::EVENT_OVERHEAD_BYTES;
                if keep == size || (bytes > MAX_PAGE_BYTES && keep > 0) {
                    break;
                }
                keep += 1;
            }
            let more = keep < all.len();
            all.truncate(keep);
            Ok((all, searched, more))
        })
        .await?;
    let mut out = json!({
        "events": events.iter().map(|e| json!({
            "logStreamName": e.log_stream_name,
            "timestamp": e.timestamp,
            "message": e.message,
            "ingestionTime": e.ingestion_time,
            "eventId": e.event_id(),
        })).collect::<Vec<_>>(),
        "searchedLogStreams": searched.iter().map(|n| json!({
            "logStreamName": n, "searchedCompletely": !more,
        })).collect::<Vec<_>>(),
    });
    if more {
        if let Some(e) = events.last() {
            out["nextToken"] = json!(token::filter_token(Pos::new(e.timestamp, e.seq)));
        }
    }
    Ok(out)
}
