//! The `awslogs` log driver, berth's way: the agent tails each `awslogs` container's output
//! through its driver (`Driver::logs`, following) and ships it in batches to the server's
//! CloudWatch Logs (`POST /agent/v1/logs`), into `prefix/container-name/task-id`.
//!
//! Why in the agent and not in Docker's own awslogs driver: berth's Logs API is not AWS, has
//! no IAM credentials to give Docker, and the process driver has no log drivers at all; the
//! agent already reads every container's output the same way for `berth logs`.
//!
//! Delivery: lines wait in a bounded [`Buffer`] until a batch (at most 10,000 events or
//! ~1 MiB, or what is there after [`FLUSH_EVERY`]) is accepted by the server; a failed post is
//! retried with backoff and the lines stay buffered. In `blocking` mode the tailer stops
//! reading when the buffer is full (the runtime keeps the output: nothing is lost); in
//! `non-blocking` mode it keeps reading and drops what does not fit in `max-buffer-size`,
//! and the next batch begins with a line saying how many were dropped (and the agent warns).
//! The server stores a cursor (lines taken per output stream) with each batch in the same
//! transaction; a restarted agent reads it back and skips exactly what was shipped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use berth_model::logs::{AwsLogsOptions, DeliveryMode, InputLogEvent, ShipBatch, ShipCursor};
use berth_model::ContainerDefinition;
use futures::StreamExt;
use tokio::sync::{Mutex, Notify};

use super::client::{ClientError, ServerClient};
use crate::spec::{ContainerId, LogLine, Stream};
use crate::Driver;

/// How long lines may wait for more before a batch is sent.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// The most a blocking-mode buffer holds before the tailer stops reading.
const BLOCKING_CAP_BYTES: u64 = 8 * 1024 * 1024;
/// A batch's events (CloudWatch's PutLogEvents limit) and bytes: half of CloudWatch's limit,
/// so that the JSON of a batch (escaped text) stays within the agent endpoint's body limit.
const BATCH_EVENTS: usize = berth_model::logs::MAX_BATCH_EVENTS;
const BATCH_BYTES: usize = berth_model::logs::MAX_BATCH_BYTES / 2;
/// The longest line shipped as one event; longer lines are cut, as CloudWatch caps events.
const MAX_LINE: usize = berth_model::logs::MAX_MESSAGE_BYTES;

/// Lines waiting to be shipped, bounded (pure: no I/O, no clock).
#[derive(Debug)]
pub(crate) struct Buffer {
    lines: VecDeque<(Stream, InputLogEvent)>,
    bytes: u64,
    cap: u64,
    blocking: bool,
    /// Lines dropped (non-blocking, full) since the last batch said so.
    dropped: u64,
    /// Where shipping got to: what the server has, plus what was taken since.
    cursor: ShipCursor,
}

impl Buffer {
    pub(crate) fn new(mode: DeliveryMode, cursor: ShipCursor) -> Self {
        let (cap, blocking) = match mode {
            DeliveryMode::Blocking => (BLOCKING_CAP_BYTES, true),
            DeliveryMode::NonBlocking { max_buffer_bytes } => (max_buffer_bytes, false),
        };
        Self {
            lines: VecDeque::new(),
            bytes: 0,
            cap,
            blocking,
            dropped: 0,
            cursor,
        }
    }

    /// Whether a blocking tailer must wait before reading more.
    pub(crate) fn full(&self) -> bool {
        self.blocking && self.bytes >= self.cap
    }

    /// Takes a line in (or, non-blocking and full, drops and counts it).
    pub(crate) fn push(&mut self, stream: Stream, ev: InputLogEvent) {
        let size = ev.size() as u64;
        if !self.blocking && self.bytes + size > self.cap {
            self.dropped += 1;
            return;
        }
        self.bytes += size;
        self.lines.push_back((stream, ev));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.dropped == 0
    }

    /// The next batch (oldest lines first, within CloudWatch's limits), the cursor after it,
    /// and how many lines it takes off the buffer once the server has it. A count of dropped
    /// lines goes first, as a line of its own.
    pub(crate) fn batch(&self, now_ms: i64) -> (Vec<InputLogEvent>, ShipCursor, usize) {
        let mut events = Vec::new();
        let mut bytes = 0usize;
        if self.dropped > 0 {
            let note = format!(
                "[berth] {} log lines dropped: the awslogs non-blocking buffer \
                 (max-buffer-size {} bytes) was full while the server could not take them",
                self.dropped, self.cap
            );
            let ts = self.lines.front().map_or(now_ms, |(_, e)| e.timestamp);
            bytes += note.len() + 26;
            events.push(InputLogEvent {
                timestamp: ts,
                message: note,
            });
        }
        let mut cursor = self.cursor;
        let mut taken = 0;
        for (stream, ev) in &self.lines {
            if events.len() == BATCH_EVENTS || bytes + ev.size() > BATCH_BYTES {
                break;
            }
            bytes += ev.size();
            events.push(ev.clone());
            match stream {
                Stream::Stdout => cursor.stdout_lines += 1,
                Stream::Stderr => cursor.stderr_lines += 1,
            }
            taken += 1;
        }
        (events, cursor, taken)
    }

    /// The server has the batch: drop its lines, clear the dropped count, move the cursor.
    pub(crate) fn commit(&mut self, taken: usize, cursor: ShipCursor) {
        for (_, ev) in self.lines.drain(..taken) {
            self.bytes -= ev.size() as u64;
        }
        self.dropped = 0;
        self.cursor = cursor;
    }
}

/// Turns one line of output into an event (its time in milliseconds; cut to CloudWatch's
/// largest event on a character boundary; an empty line becomes a single space, as
/// CloudWatch refuses empty messages).
fn event(line: &LogLine) -> InputLogEvent {
    let mut message = line.line.clone();
    if message.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    if message.is_empty() {
        message.push(' ');
    }
    InputLogEvent {
        timestamp: (line.at * 1000.0) as i64,
        message,
    }
}

/// Ships `awslogs` containers' output for one agent.
#[derive(Clone)]
pub(crate) struct LogShipping {
    pub client: ServerClient,
    pub driver: Arc<dyn Driver>,
    pub cluster: String,
    /// The shipper of each container, so a container restarted in place (restart policy)
    /// gets a new shipper only once the previous one has shipped all it had: two at once
    /// would both start from the same cursor and ship lines twice.
    pub running: Arc<std::sync::Mutex<HashMap<String, tokio::task::JoinHandle<()>>>>,
}

/// Why a container's logs cannot go where its options say (the task fails to start).
pub(crate) fn init_error(opts: &AwsLogsOptions, e: &ClientError) -> Option<String> {
    match e {
        ClientError::Refused { status, body } if *status < 500 => Some(format!(
            "ResourceInitializationError: failed to validate logger args: failed to create \
             CloudWatch log stream in log group {}: {}",
            opts.group,
            body.trim()
        )),
        _ => None,
    }
}

impl LogShipping {
    /// The container's `awslogs` options, if it has them (registration checked them).
    pub(crate) fn options(def: &ContainerDefinition) -> Option<AwsLogsOptions> {
        AwsLogsOptions::from_config(def.log_configuration.as_ref()?)
            .ok()
            .flatten()
    }

    fn open(&self, opts: &AwsLogsOptions, stream: &str) -> ShipBatch {
        ShipBatch {
            cluster: self.cluster.clone(),
            log_group_name: opts.group.clone(),
            log_stream_name: stream.to_owned(),
            create_group: opts.create_group,
            events: Vec::new(),
            cursor: None,
        }
    }

    /// Before a start: the group exists (or may be created) and the stream is there. A
    /// refusal is the reason the task fails to start, as on ECS; an unreachable server is
    /// not (the output is buffered until it returns).
    pub(crate) async fn check(
        &self,
        def: &ContainerDefinition,
        task_id: &str,
    ) -> Result<(), String> {
        let Some(opts) = Self::options(def) else {
            return Ok(());
        };
        // Without a prefix the stream is named after the container id, not known yet.
        if opts.stream_prefix.is_none() {
            return Ok(());
        }
        let stream = opts.stream_name(&def.name, task_id, "");
        match self.client.ship(&self.open(&opts, &stream)).await {
            Ok(_) => Ok(()),
            Err(e) => init_error(&opts, &e).map_or(Ok(()), Err),
        }
    }

    /// Starts shipping a container's output, if it uses `awslogs`; the shipper ends once the
    /// container has exited and everything it wrote has been shipped.
    pub(crate) fn attach(&self, def: &ContainerDefinition, task_id: &str, id: &ContainerId) {
        let Some(opts) = Self::options(def) else {
            return;
        };
        let stream = opts.stream_name(&def.name, task_id, &id.0);
        let this = self.clone();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let previous = running.remove(&id.0);
        let key = id.0.clone();
        let id = id.clone();
        let handle = tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            this.ship(opts, stream, id).await
        });
        running.retain(|_, h| !h.is_finished());
        running.insert(key, handle);
    }

    async fn ship(self, opts: AwsLogsOptions, stream: String, id: ContainerId) {
        let mut backoff = Backoff::new();
        // Where the server says this stream's shipping got to.
        let cursor = loop {
            match self.client.ship(&self.open(&opts, &stream)).await {
                Ok(a) => break a.cursor.unwrap_or_default(),
                Err(e) => {
                    if let Some(reason) = init_error(&opts, &e) {
                        tracing::warn!(container = %id.0, %reason, "awslogs: not shipping");
                        return;
                    }
                    backoff.wait().await;
                }
            }
        };
        let buf = Arc::new(Mutex::new(Buffer::new(opts.mode, cursor)));
        let wake = Arc::new(Notify::new());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tail = tokio::spawn(tail(
            self.driver.clone(),
            id.clone(),
            cursor,
            buf.clone(),
            wake.clone(),
            done.clone(),
        ));
        let batch = |b: &ShipBatch| {
            let mut b = b.clone();
            b.cursor = None;
            b
        };
        let base = batch(&self.open(&opts, &stream));
        loop {
            let finished = done.load(std::sync::atomic::Ordering::Acquire);
            let (events, next, taken) = {
                let b = buf.lock().await;
                if b.is_empty() {
                    if finished {
                        break;
                    }
                    drop(b);
                    let _ = tokio::time::timeout(FLUSH_EVERY, wake.notified()).await;
                    continue;
                }
                b.batch(now_ms())
            };
            let mut req = base.clone();
            req.events = events;
            req.cursor = Some(next);
            match self.client.ship(&req).await {
                Ok(_) => {
                    backoff = Backoff::new();
                    let mut b = buf.lock().await;
                    if b.dropped > 0 {
                        tracing::warn!(container = %id.0, dropped = b.dropped, "awslogs: dropped log lines (non-blocking buffer full)");
                    }
                    b.commit(taken, next);
                    drop(b);
                    wake.notify_waiters();
                    if taken < BATCH_EVENTS && !finished {
                        tokio::time::sleep(FLUSH_EVERY).await;
                    }
                }
                Err(e) => {
                    if let Some(reason) = init_error(&opts, &e) {
                        tracing::warn!(container = %id.0, %reason, "awslogs: batch refused, dropped");
                        buf.lock().await.commit(taken, next);
                    } else {
                        tracing::debug!(container = %id.0, error = %e, "awslogs: server unreachable, keeping lines");
                    }
                    backoff.wait().await;
                }
            }
        }
        let _ = tail.await;
    }
}

/// Reads the container's output (skipping what the cursor says was shipped) into the buffer
/// until the container has exited.
async fn tail(
    driver: Arc<dyn Driver>,
    id: ContainerId,
    cursor: ShipCursor,
    buf: Arc<Mutex<Buffer>>,
    wake: Arc<Notify>,
    done: Arc<std::sync::atomic::AtomicBool>,
) {
    let (mut skip_out, mut skip_err) = (cursor.stdout_lines, cursor.stderr_lines);
    let mut lines = driver.logs(&id, true);
    while let Some(line) = lines.next().await {
        let Ok(line) = line else {
            break;
        };
        let skip = match line.stream {
            Stream::Stdout => &mut skip_out,
            Stream::Stderr => &mut skip_err,
        };
        if *skip > 0 {
            *skip -= 1;
            continue;
        }
        loop {
            let mut b = buf.lock().await;
            if !b.full() {
                b.push(line.stream, event(&line));
                break;
            }
            drop(b);
            // Blocking mode and full: wait for a batch to go out.
            let _ = tokio::time::timeout(FLUSH_EVERY, wake.notified()).await;
        }
        wake.notify_waiters();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    wake.notify_waiters();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Jittered exponential backoff between failed posts: 100 ms doubling to 5 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(Duration::from_millis(100))
    }

    async fn wait(&mut self) {
        let jitter = (now_ms() % 50) as u64;
        tokio::time::sleep(self.0 + Duration::from_millis(jitter)).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(m: &str) -> InputLogEvent {
        InputLogEvent {
            timestamp: 1,
            message: m.into(),
        }
    }

    #[test]
    fn batches_carry_the_cursor_per_stream() {
        let mut b = Buffer::new(DeliveryMode::Blocking, ShipCursor::default());
        b.push(Stream::Stdout, ev("a"));
        b.push(Stream::Stderr, ev("b"));
        b.push(Stream::Stdout, ev("c"));
        let (events, cur, taken) = b.batch(0);
        assert_eq!(events.len(), 3);
        assert_eq!((cur.stdout_lines, cur.stderr_lines, taken), (2, 1, 3));
        b.commit(taken, cur);
        assert!(b.is_empty());
        assert_eq!(b.bytes, 0);
    }

    #[test]
    fn non_blocking_drops_what_does_not_fit_and_says_so() {
        // Room for two 27-byte events.
        let mut b = Buffer::new(
            DeliveryMode::NonBlocking {
                max_buffer_bytes: 60,
            },
            ShipCursor::default(),
        );
        for m in ["a", "b", "c", "d"] {
            b.push(Stream::Stdout, ev(m));
        }
        assert!(!b.full(), "non-blocking never stops the reader");
        let (events, cur, taken) = b.batch(0);
        assert!(
            events[0].message.contains("2 log lines dropped"),
            "{events:?}"
        );
        assert_eq!(events.len(), 3);
        assert_eq!((cur.stdout_lines, taken), (2, 2));
        b.commit(taken, cur);
        assert!(b.is_empty());
    }

    #[test]
    fn blocking_fills_up_and_never_drops() {
        let mut b = Buffer::new(DeliveryMode::Blocking, ShipCursor::default());
        let big = "x".repeat(200_000);
        while !b.full() {
            b.push(Stream::Stdout, ev(&big));
        }
        assert_eq!(b.dropped, 0);
        let (events, _, taken) = b.batch(0);
        assert!(taken >= 1 && events.iter().map(InputLogEvent::size).sum::<usize>() <= BATCH_BYTES);
    }

    #[test]
    fn lines_become_valid_events() {
        let l = LogLine {
            stream: Stream::Stdout,
            line: String::new(),
            at: 1.5,
        };
        assert_eq!(
            event(&l),
            InputLogEvent {
                timestamp: 1500,
                message: " ".into()
            }
        );
        let l = LogLine {
            stream: Stream::Stdout,
            line: "é".repeat(MAX_LINE),
            at: 0.0,
        };
        assert!(event(&l).message.len() <= MAX_LINE);
    }
}
