//! CloudWatch Logs records (log groups, log streams, events) and the `awslogs` log driver's
//! options, as ECS and CloudWatch Logs spell them.
//!
//! Why here: the API answers with these shapes, the log store keeps them, and the agent reads
//! a container's `awslogs` options; all three must agree, and the options are checked once, at
//! RegisterTaskDefinition, so a task never starts with an option berth would ignore.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ApiError, LogConfiguration};

/// CloudWatch Logs rejects events older than this (14 days), in milliseconds.
pub const MAX_EVENT_AGE_MS: i64 = 14 * 24 * 3600 * 1000;
/// ... and events more than this (2 hours) in the future.
pub const MAX_EVENT_AHEAD_MS: i64 = 2 * 3600 * 1000;
/// PutLogEvents' batch limits: events per call...
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// ... and bytes per call (each event counts its UTF-8 message plus 26 bytes).
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// What CloudWatch Logs adds to each event's message length when it counts bytes.
pub const EVENT_OVERHEAD_BYTES: usize = 26;
/// The longest message CloudWatch Logs takes (256 KiB minus the overhead).
pub const MAX_MESSAGE_BYTES: usize = 262_144 - EVENT_OVERHEAD_BYTES;

/// The values `retentionInDays` may take.
pub const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// A log group as stored (timestamps in epoch milliseconds, as CloudWatch Logs sends them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroup {
    /// The group's name.
    pub log_group_name: String,
    /// When it was created.
    pub creation_time: i64,
    /// Days events are kept; none keeps them until the store's byte cap evicts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<i32>,
    /// The group's tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A log stream as stored.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStream {
    /// The stream's name.
    pub log_stream_name: String,
    /// When it was created.
    pub creation_time: i64,
    /// The earliest event's timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_event_timestamp: Option<i64>,
    /// The latest event's timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_timestamp: Option<i64>,
    /// When the latest event was ingested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ingestion_time: Option<i64>,
    /// Bytes of the events it holds.
    #[serde(default)]
    pub stored_bytes: i64,
    /// Where the agent shipping a container's output into this stream got to (berth's own;
    /// never on the wire), so a restarted agent neither repeats nor skips a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_cursor: Option<ShipCursor>,
}

/// How far an agent has shipped one container's output (see [`LogStream::agent_cursor`]):
/// lines taken from each of its streams. A driver replays a container's output in the same
/// order every time, per stream (timestamps are not a key: the process driver's are the
/// file's, and many lines share a millisecond), so counts are an exact resume point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipCursor {
    /// Lines of standard output shipped.
    pub stdout_lines: u64,
    /// Lines of standard error shipped.
    pub stderr_lines: u64,
}

/// One event as PutLogEvents gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputLogEvent {
    /// Epoch milliseconds.
    pub timestamp: i64,
    /// The text.
    pub message: String,
}

impl InputLogEvent {
    /// Its size as CloudWatch Logs counts it against batch limits and storage.
    pub fn size(&self) -> usize {
        self.message.len() + EVENT_OVERHEAD_BYTES
    }
}

/// One stored event, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Epoch milliseconds, as given.
    pub timestamp: i64,
    /// When berth took it in, epoch milliseconds.
    pub ingestion_time: i64,
    /// A store-wide sequence number: with the timestamp it orders every event.
    pub seq: u64,
    /// The stream it is in.
    pub log_stream_name: String,
    /// The text.
    pub message: String,
}

impl StoredEvent {
    /// The event's id as FilterLogEvents shows it: digits, unique in the store.
    pub fn event_id(&self) -> String {
        format!("{:020}{:020}", self.timestamp.max(0), self.seq)
    }
}

/// PutLogEvents' `rejectedLogEventsInfo`: indexes into the (sorted) batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedLogEventsInfo {
    /// Events before this index were too new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_new_log_event_start_index: Option<usize>,
    /// Events up to (excluding) this index were too old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_old_log_event_end_index: Option<usize>,
    /// Events up to (excluding) this index were older than the group's retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_log_event_end_index: Option<usize>,
}

impl RejectedLogEventsInfo {
    /// Whether nothing was rejected.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What an agent posts to `/agent/v1/logs`: lines of one container's output for one stream.
/// A batch with no events opens the stream (creating the group if allowed) and returns where
/// the stream's shipping got to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipBatch {
    /// The agent's cluster (its join token is checked against it).
    pub cluster: String,
    /// `awslogs-group`.
    pub log_group_name: String,
    /// The stream (see [`AwsLogsOptions::stream_name`]).
    pub log_stream_name: String,
    /// `awslogs-create-group`.
    #[serde(default)]
    pub create_group: bool,
    /// The lines, in the order the container wrote them.
    #[serde(default)]
    pub events: Vec<InputLogEvent>,
    /// Where shipping got to with the last of these lines.
    #[serde(default)]
    pub cursor: Option<ShipCursor>,
}

/// The answer to a [`ShipBatch`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipAnswer {
    /// Where the stream's shipping got to (after this batch).
    #[serde(default)]
    pub cursor: Option<ShipCursor>,
    /// Events CloudWatch's rules refused (too old, too new, past retention).
    #[serde(default)]
    pub rejected: u64,
}

/// Validates a log group name as CloudWatch Logs does: 1 to 512 of `[.\-_/#A-Za-z0-9]`.
pub fn validate_group_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=512).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )))
    }
}

/// Validates a log stream name: 1 to 512 characters, no `:` or `*`.
pub fn validate_stream_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=512).contains(&name.len()) && !name.contains([':', '*']);
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [^:*]*"
        )))
    }
}

/// How the `awslogs` driver delivers when CloudWatch Logs cannot take lines fast enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Never drop: stop reading the container's output (the runtime keeps it) until the
    /// server takes lines again.
    Blocking,
    /// Keep reading; buffer up to the given bytes and drop (and count) what does not fit.
    NonBlocking {
        /// `max-buffer-size` in bytes (Docker's default: 1 MiB).
        max_buffer_bytes: u64,
    },
}

/// A container's `awslogs` options, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsLogsOptions {
    /// `awslogs-group`.
    pub group: String,
    /// `awslogs-stream-prefix`.
    pub stream_prefix: Option<String>,
    /// `awslogs-create-group` is `"true"`.
    pub create_group: bool,
    /// `mode` and `max-buffer-size`.
    pub mode: DeliveryMode,
}

/// The `awslogs` options berth honours; anything else is refused at registration.
const AWSLOGS_OPTIONS: &[&str] = &[
    "awslogs-group",
    "awslogs-region",
    "awslogs-stream-prefix",
    "awslogs-create-group",
    "mode",
    "max-buffer-size",
];

/// Options ECS documents that berth cannot honour, with why.
const AWSLOGS_REFUSED: &[(&str, &str)] = &[
    (
        "awslogs-datetime-format",
        "berth ships each line of output as one event and does not join lines",
    ),
    (
        "awslogs-multiline-pattern",
        "berth ships each line of output as one event and does not join lines",
    ),
    (
        "awslogs-endpoint",
        "output always goes to berth's own CloudWatch Logs API",
    ),
    (
        "awslogs-credentials-endpoint",
        "the agent authenticates with its join token",
    ),
];

impl AwsLogsOptions {
    /// The options of `cfg` if its driver is `awslogs` (`Ok(None)` for other drivers), or the
    /// ClientException ECS-style naming the option berth cannot honour.
    pub fn from_config(cfg: &LogConfiguration) -> Result<Option<Self>, ApiError> {
        if cfg.log_driver == "awsfirelens" {
            return Err(ApiError::client(
                "Log driver awsfirelens (FireLens) is not supported by berth: it has no \
                 FireLens log router; use awslogs or a Docker log driver.",
            ));
        }
        if cfg.log_driver != "awslogs" {
            return Ok(None);
        }
        let empty = BTreeMap::new();
        let o = cfg.options.as_ref().unwrap_or(&empty);
        for k in o.keys() {
            if let Some((_, why)) = AWSLOGS_REFUSED.iter().find(|(n, _)| n == k) {
                return Err(ApiError::client(format!(
                    "Log driver awslogs option '{k}' is not supported by berth: {why}."
                )));
            }
            if !AWSLOGS_OPTIONS.contains(&k.as_str()) {
                return Err(ApiError::client(format!(
                    "Log driver awslogs does not support the option '{k}'; supported: {}.",
                    AWSLOGS_OPTIONS.join(", ")
                )));
            }
        }
        let group = o
            .get("awslogs-group")
            .ok_or_else(|| {
                ApiError::client("Log driver awslogs requires the option 'awslogs-group'.")
            })?
            .clone();
        validate_group_name(&group).map_err(|_| {
            ApiError::client(format!(
                "Log driver awslogs option 'awslogs-group' is not a valid log group name: {group:?}."
            ))
        })?;
        let create_group = match o.get("awslogs-create-group").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => {
                return Err(ApiError::client(format!(
                    "Log driver awslogs option 'awslogs-create-group' must be \"true\" or \
                     \"false\"; got {v:?}."
                )))
            }
        };
        let stream_prefix = o.get("awslogs-stream-prefix").cloned();
        if let Some(p) = &stream_prefix {
            if p.is_empty() || p.contains([':', '*']) {
                return Err(ApiError::client(format!(
                    "Log driver awslogs option 'awslogs-stream-prefix' is not valid: {p:?}."
                )));
            }
        }
        let mode = match o.get("mode").map(String::as_str) {
            None | Some("blocking") => {
                if o.contains_key("max-buffer-size") {
                    return Err(ApiError::client(
                        "Log driver awslogs option 'max-buffer-size' is only valid with \
                         'mode' non-blocking.",
                    ));
                }
                DeliveryMode::Blocking
            }
            Some("non-blocking") => DeliveryMode::NonBlocking {
                max_buffer_bytes: match o.get("max-buffer-size") {
                    None => 1024 * 1024,
                    Some(s) => parse_size(s).ok_or_else(|| {
                        ApiError::client(format!(
                            "Log driver awslogs option 'max-buffer-size' is not a size \
                             (e.g. 4m, 512k): {s:?}."
                        ))
                    })?,
                },
            },
            Some(m) => {
                return Err(ApiError::client(format!(
                    "Log driver awslogs option 'mode' must be blocking or non-blocking; got {m:?}."
                )))
            }
        };
        Ok(Some(Self {
            group,
            stream_prefix,
            create_group,
            mode,
        }))
    }

    /// The stream a container's output goes to: `prefix/container-name/task-id` with a
    /// prefix; without one, ECS's rule for the EC2 launch type: the runtime's container id.
    pub fn stream_name(&self, container: &str, task_id: &str, runtime_id: &str) -> String {
        match &self.stream_prefix {
            Some(p) => format!("{p}/{container}/{task_id}"),
            None => runtime_id.to_owned(),
        }
    }
}

/// Docker's size syntax for `max-buffer-size`: a number with an optional `b`, `k`, `m` or `g`
/// (binary multiples, case-insensitive, an optional trailing `b`/`ib`).
fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (num, mul) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = num.trim().parse().ok()?;
    n.checked_mul(mul).filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(opts: &[(&str, &str)]) -> LogConfiguration {
        LogConfiguration {
            log_driver: "awslogs".into(),
            options: Some(
                opts.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            secret_options: None,
        }
    }

    #[test]
    fn awslogs_options_are_read_and_checked() {
        let o = AwsLogsOptions::from_config(&cfg(&[
            ("awslogs-group", "/ecs/web"),
            ("awslogs-region", "us-east-1"),
            ("awslogs-stream-prefix", "web"),
            ("awslogs-create-group", "true"),
            ("mode", "non-blocking"),
            ("max-buffer-size", "4m"),
        ]))
        .unwrap()
        .unwrap();
        assert!(o.create_group);
        assert_eq!(
            o.mode,
            DeliveryMode::NonBlocking {
                max_buffer_bytes: 4 << 20
            }
        );
        assert_eq!(o.stream_name("app", "t1", "c0ffee"), "web/app/t1");
        let bare = AwsLogsOptions::from_config(&cfg(&[("awslogs-group", "g")]))
            .unwrap()
            .unwrap();
        assert_eq!(bare.mode, DeliveryMode::Blocking);
        assert_eq!(bare.stream_name("app", "t1", "c0ffee"), "c0ffee");
    }

    #[test]
    fn refused_options_are_named() {
        for (opts, named) in [
            (
                vec![("awslogs-group", "g"), ("awslogs-multiline-pattern", "^x")],
                "awslogs-multiline-pattern",
            ),
            (
                vec![("awslogs-group", "g"), ("awslogs-datetime-format", "%Y")],
                "awslogs-datetime-format",
            ),
            (vec![("awslogs-group", "g"), ("colour", "red")], "colour"),
            (vec![("awslogs-region", "x")], "awslogs-group"),
            (
                vec![("awslogs-group", "g"), ("awslogs-create-group", "yes")],
                "awslogs-create-group",
            ),
            (vec![("awslogs-group", "g"), ("mode", "fast")], "mode"),
            (
                vec![("awslogs-group", "g"), ("max-buffer-size", "1m")],
                "max-buffer-size",
            ),
            (
                vec![
                    ("awslogs-group", "g"),
                    ("mode", "non-blocking"),
                    ("max-buffer-size", "lots"),
                ],
                "max-buffer-size",
            ),
        ] {
            let e = AwsLogsOptions::from_config(&cfg(&opts)).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::ClientException);
            assert!(e.message.contains(named), "{named}: {}", e.message);
        }
    }

    #[test]
    fn other_drivers_are_not_awslogs() {
        let mut c = cfg(&[("max-size", "10m")]);
        c.log_driver = "json-file".into();
        assert_eq!(AwsLogsOptions::from_config(&c).unwrap(), None);
    }

    #[test]
    fn sizes_parse_as_docker_does() {
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("2MB"), Some(2 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("m"), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_group_name("/ecs/web#1").is_ok());
        assert!(validate_group_name("bad name").is_err());
        assert!(validate_stream_name("a/b/c").is_ok());
        assert!(validate_stream_name("a:b").is_err());
    }
}
