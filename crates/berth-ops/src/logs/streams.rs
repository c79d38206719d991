//! CreateLogStream, DeleteLogStream, DescribeLogStreams.

use berth_model::logs::{validate_stream_name, LogStream};
use berth_model::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{group_of, limit, logs_err, now_ms};
use crate::Ctx;

/// The request of `CreateLogStream`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    log_group_name: String,
    log_stream_name: String,
}

/// `CreateLogStream`.
pub async fn create(ctx: &Ctx, req: CreateRequest) -> Result<Value, ApiError> {
    validate_stream_name(&req.log_stream_name)?;
    let stream = LogStream {
        log_stream_name: req.log_stream_name,
        creation_time: now_ms(ctx),
        ..Default::default()
    };
    let group = req.log_group_name;
    ctx.logs(move |s| s.create_stream(&group, &stream).map_err(logs_err))
        .await?;
    Ok(json!({}))
}

/// The request of `DeleteLogStream`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRequest {
    log_group_name: String,
    log_stream_name: String,
}

/// `DeleteLogStream`: the stream and its events.
pub async fn delete(ctx: &Ctx, req: DeleteRequest) -> Result<Value, ApiError> {
    ctx.logs(move |s| {
        s.delete_stream(&req.log_group_name, &req.log_stream_name)
            .map_err(logs_err)
    })
    .await?;
    Ok(json!({}))
}

/// The request of `DescribeLogStreams`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    next_token: Option<String>,
    limit: Option<i64>,
}

/// `DescribeLogStreams`: by name (with a prefix) or by last event time, either way round;
/// up to 50 a page.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let group = group_of(req.log_group_name, req.log_group_identifier)?;
    let by_time = match req.order_by.as_deref() {
        None | Some("LogStreamName") => false,
        Some("LastEventTime") => true,
        Some(o) => {
            return Err(ApiError::invalid(format!(
                "1 validation error detected: Value '{o}' at 'orderBy' failed to satisfy \
                 constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]"
            )))
        }
    };
    if by_time && req.log_stream_name_prefix.is_some() {
        return Err(ApiError::invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let size = limit(req.limit, 50, 50)?;
    let prefix = req.log_stream_name_prefix.unwrap_or_default();
    let g = group.clone();
    let mut streams = ctx
        .logs(move |s| s.streams(&g, &prefix).map_err(logs_err))
        .await?;
    // Sort keys: the name, or the last event time (streams without events first) then name.
    let key = |s: &LogStream| -> String {
        if by_time {
            let t = s.last_event_timestamp.unwrap_or(-1);
            format!("{:020}/{}", (t as u64) ^ (1 << 63), s.log_stream_name)
        } else {
            s.log_stream_name.clone()
        }
    };
    streams.sort_by_key(key);
    let descending = req.descending.unwrap_or(false);
    if descending {
        streams.reverse();
    }
    let after = req.next_token.filter(|t| !t.is_empty());
    let mut page = Vec::new();
    let mut last = None;
    let mut more = false;
    for s in &streams {
        let k = key(s);
        if let Some(a) = &after {
            if (!descending && k <= *a) || (descending && k >= *a) {
                continue;
            }
        }
        if page.len() == size {
            more = true;
            break;
        }
        page.push(render(ctx, &group, s));
        last = Some(k);
    }
    let mut out = json!({ "logStreams": page });
    if more {
        out["nextToken"] = json!(last);
    }
    Ok(out)
}

fn render(ctx: &Ctx, group: &str, s: &LogStream) -> Value {
    json!({
        "logStreamName": s.log_stream_name,
        "creationTime": s.creation_time,
        "firstEventTimestamp": s.first_event_timestamp,
        "lastEventTimestamp": s.last_event_timestamp,
        "lastIngestionTime": s.last_ingestion_time,
        "arn": format!("{}:log-stream:{}", ctx.log_group_arn(group), s.log_stream_name),
        "storedBytes": s.stored_bytes,
    })
}
