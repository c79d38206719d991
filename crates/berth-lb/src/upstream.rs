//! The HTTP/1.1 client side of the proxy: pooled connections to targets, written and read
//! in place by the request that holds them.
//!
//! Measured on the benchmark, berth answering by itself cost the same CPU per request as nginx
//! serving a static body, but proxying cost a quarter more than nginx proxying: the difference
//! was hyper's client, whose connection runs as a task of its own and talks to the request
//! through channels (request queue, response callback, body channel), each with its wake-ups
//! and allocations. A proxy needs much less of a client than that. Here a connection has no
//! task: the request future writes the head into the socket and parses the response head
//! (with `httparse`, header values sliced out of the read buffer without copying), and the
//! response body reads the socket itself as the client connection pulls it. A request and
//! its upstream I/O therefore stay in one task, as in an nginx worker's event loop.
//!
//! Message framing follows RFC 9112 section 6: no body for HEAD, 1xx, 204 and 304; chunked
//! bodies are decoded (the client side re-frames them); otherwise `Content-Length`; otherwise
//! the body runs to the end of the connection, which then is not reused. An idle connection
//! waits in its target's pool for the worker that used it; a connection the target closed
//! meanwhile is noticed from the readiness the event loop already has, without a syscall.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::group::lock;

/// Most idle connections kept per target and worker (nginx's `keepalive 128` is per worker).
const MAX_IDLE: usize = 128;
/// Largest response head accepted, like hyper's default buffer limit for heads.
const MAX_HEAD: usize = 64 * 1024;
/// Most response headers accepted.
const MAX_HEADERS: usize = 128;
/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;
const READ_CHUNK: usize = 16 * 1024;

/// The error type of bodies crossing the proxy.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request got no response from its target.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("connecting to the target timed out")]
    ConnectTimeout,
    #[error("the target did not answer in time")]
    Timeout,
    #[error("cannot connect to the target: {0}")]
    Connect(io::Error),
    #[error("the target closed the connection before answering")]
    Closed,
    #[error("connection to the target failed: {0}")]
    Io(#[from] io::Error),
    #[error("the target's response is malformed: {0}")]
    Malformed(&'static str),
    #[error("the client's request body failed: {0}")]
    ClientBody(BoxError),
    /// From hyper's pooled client (HTTP/2 targets).
    #[error(transparent)]
    Pooled(hyper_util::client::legacy::Error),
}

/// One HTTP/1.1 connection to a target.
pub(crate) struct Conn {
    io: TcpStream,
    /// Bytes read and not yet consumed.
    rbuf: BytesMut,
    /// The request head being written (kept for its capacity).
    wbuf: Vec<u8>,
    /// Offsets of the response head's header names and values (kept for its capacity).
    spans: Vec<[usize; 4]>,
    idle_since: Instant,
    /// Served a request before (so the target may have closed it under us).
    reused: bool,
    /// The response timeout, kept armed across requests (see `send`).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Conn {
    async fn open(addr: SocketAddr, connect_timeout: Duration) -> Result<Box<Self>, UpstreamError> {
        let io = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(UpstreamError::Connect(e)),
            Err(_) => return Err(UpstreamError::ConnectTimeout),
        };
        if let Err(e) = io.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        Ok(Box::new(Self {
            io,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: Vec::with_capacity(1024),
            spans: Vec::new(),
            idle_since: Instant::now(),
            reused: false,
            timer: None,
        }))
    }

    /// False if the target has closed this idle connection (or sent something unasked).
    /// Uses the readiness the event loop already holds: no syscall unless it says readable.
    fn still_open(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        match self.io.poll_read_ready(cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Reads more bytes into `rbuf`; `Ok(0)` at end of stream. Goes through `AsyncRead`, which
    /// takes a short read as "drained": the next wait costs no `EAGAIN` syscall.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.rbuf.reserve(READ_CHUNK);
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf)
    }

    async fn fill(&mut self) -> io::Result<usize> {
        poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// Writes the request head: origin-form target, the (already rewritten) headers, and
    /// `Transfer-Encoding: chunked` when the body's length is unknown.
    fn encode_head(&mut self, parts: &Parts, chunked: bool) {
        let b = &mut self.wbuf;
        b.clear();
        b.extend_from_slice(parts.method.as_str().as_bytes());
        b.push(b' ');
        match parts.uri.path_and_query() {
            Some(pq) => b.extend_from_slice(pq.as_str().as_bytes()),
            None => b.push(b'/'),
        }
        b.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &parts.headers {
            if name == header::EXPECT {
                continue; // the client side already answered 100-continue
            }
            b.extend_from_slice(name.as_str().as_bytes());
            b.extend_from_slice(b": ");
            b.extend_from_slice(value.as_bytes());
            b.extend_from_slice(b"\r\n");
        }
        if chunked {
            b.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
        b.extend_from_slice(b"\r\n");
    }

    async fn write_wbuf(&mut self) -> io::Result<()> {
        self.io.write_all(&self.wbuf).await
    }

    /// Streams the client's body to the target, chunk-encoding it if asked.
    async fn write_body<B>(&mut self, body: &mut B, chunked: bool) -> Result<(), UpstreamError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| UpstreamError::ClientBody(e.into()))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers are not forwarded
            };
            if data.is_empty() {
                continue;
            }
            if chunked {
                let mut line = format!("{:x}\r\n", data.len()).into_bytes();
                line.extend_from_slice(&data);
                line.extend_from_slice(b"\r\n");
                self.io.write_all(&line).await?;
            } else {
                self.io.write_all(&data).await?;
            }
        }
        if chunked {
            self.io.write_all(b"0\r\n\r\n").await?;
        }
        Ok(())
    }

    /// Reads the response head, skipping interim (1xx) responses.
    async fn read_head(
        &mut self,
        method: &Method,
    ) -> Result<(Response<()>, Framing), UpstreamError> {
        let mut got_any = false;
        loop {
            if let Some(done) = self.parse_head(method)? {
                match done {
                    Parsed::Interim => {
                        got_any = true;
                        continue;
                    }
                    Parsed::Final(resp, framing) => return Ok((resp, framing)),
                }
            }
            if self.rbuf.len() >= MAX_HEAD {
                return Err(UpstreamError::Malformed("response head too large"));
            }
            let n = self.fill().await?;
            if n == 0 {
                return Err(if got_any || !self.rbuf.is_empty() {
                    UpstreamError::Malformed("connection closed inside the response head")
                } else {
                    UpstreamError::Closed
                });
            }
        }
    }

    fn parse_head(&mut self, method: &Method) -> Result<Option<Parsed>, UpstreamError> {
        if self.rbuf.is_empty() {
            return Ok(None);
        }
        // Uninitialised slots: zeroing 128 headers cost more than parsing a short head.
        let mut slots =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut r = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut r, &self.rbuf, &mut slots)
        {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(UpstreamError::Malformed("too many headers"))
            }
            Err(_) => return Err(UpstreamError::Malformed("invalid response head")),
        };
        let code = r.code.unwrap_or(0);
        let status = StatusCode::from_u16(code)
            .map_err(|_| UpstreamError::Malformed("invalid status code"))?;
        if status.is_informational() {
            if code == 101 {
                return Err(UpstreamError::Malformed(
                    "protocol upgrades are not proxied",
                ));
            }
            self.rbuf.advance(len);
            return Ok(Some(Parsed::Interim));
        }
        let version = if r.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        // Framing and hop-by-hop headers are read off the raw head; the rest become slices of
        // the frozen head (no copy), through offsets kept in a buffer the connection reuses.
        let base = self.rbuf.as_ptr() as usize;
        self.spans.clear();
        let mut info = HeadInfo::default();
        for h in r.headers.iter() {
            if !info.observe(h.name.as_bytes(), h.value)? {
                continue; // hop-by-hop: not passed on
            }
            let name = h.name.as_ptr() as usize - base;
            let value = h.value.as_ptr() as usize - base;
            self.spans
                .push([name, name + h.name.len(), value, value + h.value.len()]);
        }
        let framing = info.framing(method, status, version);
        let head = self.rbuf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(self.spans.len());
        for [ns, ne, vs, ve] in self.spans.drain(..) {
            let name = HeaderName::from_bytes(&head[ns..ne])
                .map_err(|_| UpstreamError::Malformed("invalid header name"))?;
            let v = HeaderValue::from_maybe_shared(head.slice(vs..ve))
                .map_err(|_| UpstreamError::Malformed("invalid header value"))?;
            headers.append(name, v);
        }
        for listed in &info.listed {
            headers.remove(listed); // named in `Connection`: hop-by-hop too
        }
        let mut resp = Response::new(());
        *resp.status_mut() = status;
        *resp.version_mut() = version;
        *resp.headers_mut() = headers;
        Ok(Some(Parsed::Final(resp, framing)))
    }
}

enum Parsed {
    Interim,
    Final(Response<()>, Framing),
}

/// How the response body is delimited, and whether the connection survives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Framing {
    kind: Kind,
    keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

/// What the framing needs from a response head, gathered header by header.
#[derive(Debug, Default)]
struct HeadInfo {
    close: bool,
    keep_alive: bool,
    /// `Some(true)` if `Transfer-Encoding` is present and ends in `chunked`.
    chunked: Option<bool>,
    length: Option<u64>,
    /// Other header names listed in `Connection` (rare).
    listed: Vec<HeaderName>,
}

/// Headers that apply to one connection only (RFC 9110 section 7.6.1), never forwarded; the
/// one list for both directions. Matched by length first: most headers are none of these.
pub(crate) fn is_hop_by_hop(name: &[u8]) -> bool {
    let candidates: &[&str] = match name.len() {
        2 => &["te"],
        7 => &["trailer", "upgrade"],
        10 => &["keep-alive", "connection"],
        16 => &["proxy-connection"],
        17 => &["transfer-encoding"],
        18 => &["proxy-authenticate"],
        19 => &["proxy-authorization"],
        _ => return false,
    };
    candidates
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c.as_bytes()))
}

impl HeadInfo {
    /// Takes in one header; false if it is hop-by-hop and must not be passed on.
    fn observe(&mut self, name: &[u8], value: &[u8]) -> Result<bool, UpstreamError> {
        let is = |n: &str| name.len() == n.len() && name.eq_ignore_ascii_case(n.as_bytes());
        let tokens = || {
            value
                .split(|b| *b == b',')
                .map(|t| t.trim_ascii())
                .filter(|t| !t.is_empty())
        };
        if is("content-length") {
            for part in tokens() {
                let n = std::str::from_utf8(part)
                    .ok()
                    .and_then(|p| p.parse::<u64>().ok())
                    .ok_or(UpstreamError::Malformed("invalid content-length"))?;
                if self.length.is_some_and(|l| l != n) {
                    return Err(UpstreamError::Malformed("conflicting content-length"));
                }
                self.length = Some(n);
            }
            return Ok(true);
        }
        if is("connection") {
            for t in tokens() {
                if t.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                } else if let Ok(n) = HeaderName::from_bytes(t) {
                    self.listed.push(n);
                }
            }
            return Ok(false);
        }
        if is("transfer-encoding") {
            if let Some(last) = tokens().next_back() {
                self.chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
            }
            return Ok(false);
        }
        Ok(!is_hop_by_hop(name))
    }

    /// RFC 9112 section 6.3, for a response to `method`.
    fn framing(&self, method: &Method, status: StatusCode, version: Version) -> Framing {
        let keep_alive = if version == Version::HTTP_10 {
            self.keep_alive && !self.close
        } else {
            !self.close
        };
        let kind = if method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Kind::Done
        } else {
            match (self.chunked, self.length) {
                (Some(true), _) => Kind::Chunked(Chunk::Size),
                (Some(false), _) | (None, None) => Kind::UntilClose,
                (None, Some(0)) => Kind::Done,
                (None, Some(n)) => Kind::Length(n),
            }
        };
        Framing {
            keep_alive: keep_alive && kind != Kind::UntilClose,
            kind,
        }
    }
}

/// A target's response body, read straight from its connection.
pub(crate) struct UpstreamBody {
    conn: Option<Box<Conn>>,
    framing: Framing,
}

impl UpstreamBody {
    /// The connection, if the body has been read to its end and the connection can be reused.
    pub fn reusable(&mut self) -> Option<Box<Conn>> {
        let clean = self.conn.as_ref().is_some_and(|c| c.rbuf.is_empty());
        if self.framing.kind == Kind::Done && self.framing.keep_alive && clean {
            self.conn.take()
        } else {
            None
        }
    }

    /// Decodes the next frame from what is buffered; `None` if more input is needed.
    fn next_frame(&mut self, c: &mut Conn) -> Result<Option<Option<Bytes>>, UpstreamError> {
        loop {
            match self.framing.kind {
                Kind::Done => return Ok(Some(None)),
                Kind::Length(rem) => {
                    if c.rbuf.is_empty() {
                        return Ok(None);
                    }
                    let n = c.rbuf.len().min(usize::try_from(rem).unwrap_or(usize::MAX));
                    let left = rem - n as u64;
                    self.framing.kind = if left == 0 {
                        Kind::Done
                    } else {
                        Kind::Length(left)
                    };
                    return Ok(Some(Some(c.rbuf.split_to(n).freeze())));
                }
                Kind::UntilClose => {
                    if c.rbuf.is_empty() {
                        return Ok(None);
                    }
                    return Ok(Some(Some(c.rbuf.split().freeze())));
                }
                Kind::Chunked(Chunk::Data(rem)) => {
                    if c.rbuf.is_empty() {
                        return Ok(None);
                    }
                    let n = c.rbuf.len().min(usize::try_from(rem).unwrap_or(usize::MAX));
                    let left = rem - n as u64;
                    self.framing.kind = Kind::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(Some(Some(c.rbuf.split_to(n).freeze())));
                }
                Kind::Chunked(Chunk::DataEnd) => {
                    if c.rbuf.len() < 2 {
                        return Ok(None);
                    }
                    if &c.rbuf[..2] != b"\r\n" {
                        return Err(UpstreamError::Malformed("chunk not followed by CRLF"));
                    }
                    c.rbuf.advance(2);
                    self.framing.kind = Kind::Chunked(Chunk::Size);
                }
                Kind::Chunked(state @ (Chunk::Size | Chunk::Trailers)) => {
                    let Some(eol) = c.rbuf.windows(2).position(|w| w == b"\r\n") else {
                        if c.rbuf.len() > MAX_LINE {
                            return Err(UpstreamError::Malformed("chunk line too long"));
                        }
                        return Ok(None);
                    };
                    let line = c.rbuf.split_to(eol + 2);
                    let line = &line[..eol];
                    self.framing.kind = if state == Chunk::Trailers {
                        if line.is_empty() {
                            Kind::Done
                        } else {
                            Kind::Chunked(Chunk::Trailers) // trailers are dropped
                        }
                    } else {
                        let hex = line.split(|b| *b == b';').next().unwrap_or(b"");
                        let hex = std::str::from_utf8(hex)
                            .map_err(|_| UpstreamError::Malformed("invalid chunk size"))?;
                        match u64::from_str_radix(hex.trim(), 16) {
                            Ok(0) => Kind::Chunked(Chunk::Trailers),
                            Ok(n) => Kind::Chunked(Chunk::Data(n)),
                            Err(_) => return Err(UpstreamError::Malformed("invalid chunk size")),
                        }
                    };
                }
            }
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(mut c) = this.conn.take() else {
            return Poll::Ready(None);
        };
        let out = loop {
            match this.next_frame(&mut c) {
                Err(e) => break Poll::Ready(Some(Err(e.into()))),
                Ok(Some(Some(data))) => break Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Some(None)) => break Poll::Ready(None),
                Ok(None) => {}
            }
            match c.poll_fill(cx) {
                Poll::Pending => break Poll::Pending,
                Poll::Ready(Err(e)) => break Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Ok(0)) => {
                    if this.framing.kind == Kind::UntilClose {
                        this.framing.kind = Kind::Done;
                        break Poll::Ready(None);
                    }
                    break Poll::Ready(Some(Err(UpstreamError::Malformed(
                        "connection closed inside the body",
                    )
                    .into())));
                }
                Poll::Ready(Ok(_)) => {}
            }
        };
        // A failed body leaves the connection mid-message: it is dropped, not kept.
        if !matches!(out, Poll::Ready(Some(Err(_)))) {
            this.conn = Some(c);
        }
        out
    }

    fn is_end_stream(&self) -> bool {
        self.framing.kind == Kind::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing.kind {
            Kind::Done => SizeHint::with_exact(0),
            Kind::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// A target's idle connections, one pool per serving worker. Connections stay boxed: they move
/// between pool and response body by pointer, and keep `LbBody` small.
#[allow(clippy::vec_box)]
pub(crate) struct Pool {
    slots: Box<[Mutex<Vec<Box<Conn>>>]>,
}

impl Pool {
    pub fn new(workers: usize) -> Self {
        Self {
            slots: (0..workers.max(1))
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
        }
    }

    #[allow(clippy::vec_box)]
    fn slot(&self) -> &Mutex<Vec<Box<Conn>>> {
        &self.slots[crate::workers::current() % self.slots.len()]
    }

    /// The most recently used idle connection idle for less than `max_idle` at `now`.
    fn take(&self, max_idle: Duration, now: Instant) -> Option<Box<Conn>> {
        let mut idle = lock(self.slot());
        while let Some(c) = idle.pop() {
            if now.saturating_duration_since(c.idle_since) < max_idle {
                return Some(c);
            }
        }
        None
    }

    /// Keeps a connection whose last response is complete.
    pub fn put(&self, mut c: Box<Conn>) {
        c.reused = true;
        let mut idle = lock(self.slot());
        if idle.len() < MAX_IDLE {
            idle.push(c);
        }
    }

    /// Closes connections idle for longer than `max_idle`.
    pub fn sweep(&self, max_idle: Duration) {
        for s in self.slots.iter() {
            lock(s).retain(|c| c.idle_since.elapsed() < max_idle);
        }
    }
}

/// Where a request goes and how long connecting may take.
pub(crate) struct Dest<'a> {
    pub pool: &'a Pool,
    pub addr: SocketAddr,
    pub connect_timeout: Duration,
    /// When the request started (read once per request, for metrics and pool ages).
    pub start: Instant,
    /// When the response head must have arrived (ALB's idle timeout after the request).
    pub deadline: tokio::time::Instant,
    pub max_idle: Duration,
}

/// A response head from a target, and its body.
pub(crate) type Answer = (Response<()>, UpstreamBody);

/// Sends a request (head from `parts`, which must already carry the rewritten headers) and
/// reads the response head, by `dest.deadline`. A request whose head could not be
/// written on a pooled connection goes again on a new one; so does a bodyless idempotent
/// request the target's pooled connection closed under without answering (the keep-alive
/// race).
pub(crate) async fn send<B>(
    dest: &Dest<'_>,
    parts: &Parts,
    body: &mut B,
) -> Result<Answer, UpstreamError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let bodyless = body.is_end_stream();
    let chunked = !bodyless && !parts.headers.contains_key(header::CONTENT_LENGTH);
    let replayable = bodyless && is_idempotent(&parts.method);
    let deadline = dest.deadline;
    let mut retried = false;
    loop {
        let pooled = dest.pool.take(dest.max_idle, dest.start);
        let mut conn = match pooled {
            Some(mut c) => {
                if !poll_fn(|cx| Poll::Ready(c.still_open(cx))).await {
                    continue;
                }
                c
            }
            None => Conn::open(dest.addr, dest.connect_timeout).await?,
        };
        // Idle time counts from the last request's start: no clock read per request.
        conn.idle_since = dest.start;
        // The connection's own timer, moved to this request's deadline: a later deadline only
        // updates the armed timer, where a fresh timeout would insert into the timer wheel.
        let mut timer = conn
            .timer
            .take()
            .unwrap_or_else(|| Box::pin(tokio::time::sleep_until(deadline)));
        timer.as_mut().reset(deadline);
        let outcome = tokio::select! {
            biased;
            o = conn.exchange(parts, body, bodyless, chunked) => o,
            () = timer.as_mut() => Exchange::Failed(UpstreamError::Timeout),
        };
        conn.timer = Some(timer);
        match outcome {
            Exchange::Answered(resp, framing) => {
                let body = UpstreamBody {
                    conn: Some(conn),
                    framing,
                };
                return Ok((resp, body));
            }
            // Nothing reached the target: any request may go again.
            Exchange::HeadUnwritten(_) if conn.reused => {}
            Exchange::HeadUnwritten(e) => return Err(e.into()),
            Exchange::Failed(UpstreamError::Closed) if conn.reused && replayable && !retried => {
                tracing::debug!("target closed a pooled connection; retrying on a new one");
                retried = true;
            }
            Exchange::Failed(e) => return Err(e),
        }
    }
}

/// How one request on one connection went.
enum Exchange {
    Answered(Response<()>, Framing),
    HeadUnwritten(io::Error),
    Failed(UpstreamError),
}

impl Conn {
    async fn exchange<B>(
        &mut self,
        parts: &Parts,
        body: &mut B,
        bodyless: bool,
        chunked: bool,
    ) -> Exchange
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        self.encode_head(parts, chunked);
        if let Err(e) = self.write_wbuf().await {
            return Exchange::HeadUnwritten(e);
        }
        if !bodyless {
            if let Err(e) = self.write_body(body, chunked).await {
                return Exchange::Failed(e);
            }
        }
        match self.read_head(&parts.method).await {
            Ok((resp, framing)) => Exchange::Answered(resp, framing),
            Err(e) => Exchange::Failed(e),
        }
    }
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A target that answers each request it reads with the next canned reply; it records
    /// the requests and how many connections it accepted.
    async fn target(
        replies: Vec<&'static [u8]>,
    ) -> (SocketAddr, tokio::task::JoinHandle<(Vec<String>, usize)>) {
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let h = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut conns = 0;
            let mut replies = replies.into_iter().peekable();
            'accept: while let Ok((mut s, _)) = l.accept().await {
                conns += 1;
                loop {
                    let mut buf = Vec::new();
                    loop {
                        let mut b = [0u8; 4096];
                        let n = s.read(&mut b).await.unwrap_or(0);
                        if n == 0 {
                            continue 'accept;
                        }
                        buf.extend_from_slice(&b[..n]);
                        let text = String::from_utf8_lossy(&buf);
                        if let Some(end) = text.find("\r\n\r\n") {
                            let has_body = text[..end]
                                .to_ascii_lowercase()
                                .contains("content-length: 4");
                            if !has_body || buf.len() >= end + 4 + 4 {
                                break;
                            }
                        }
                    }
                    seen.push(String::from_utf8_lossy(&buf).into_owned());
                    let Some(r) = replies.next() else {
                        break 'accept;
                    };
                    let _ = s.write_all(r).await;
                    if replies.peek().is_none() {
                        break 'accept;
                    }
                    if r.ends_with(b"CLOSE") {
                        continue 'accept;
                    }
                }
            }
            (seen, conns)
        });
        (addr, h)
    }

    fn get(path: &str) -> Parts {
        let mut p = http::Request::new(()).into_parts().0;
        p.uri = path.parse().unwrap_or_else(|e| panic!("{e}"));
        p.headers
            .insert(header::HOST, HeaderValue::from_static("svc"));
        p
    }

    async fn collect(mut b: UpstreamBody) -> (Vec<u8>, Option<Box<Conn>>) {
        let mut out = Vec::new();
        while let Some(f) = b.frame().await {
            out.extend_from_slice(
                &f.unwrap_or_else(|e| panic!("{e}"))
                    .into_data()
                    .unwrap_or_default(),
            );
        }
        let c = b.reusable();
        (out, c)
    }

    #[tokio::test]
    async fn content_length_chunked_and_reuse() {
        let (addr, h) = target(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: timeout=5\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let pool = Pool::new(1);
        let dest = Dest {
            pool: &pool,
            addr,
            connect_timeout: Duration::from_secs(5),
            start: Instant::now(),
            deadline: tokio::time::Instant::now() + Duration::from_secs(30),
            max_idle: Duration::from_secs(60),
        };
        let mut empty = http_body_util::Empty::<Bytes>::new();
        let (r, b) = send(&dest, &get("/a?b=1"), &mut empty)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-a"], "1");
        for hop in ["connection", "x-drop", "keep-alive"] {
            assert!(!r.headers().contains_key(hop), "{hop} passed on");
        }
        let (body, c) = collect(b).await;
        assert_eq!(body, b"hello");
        pool.put(c.unwrap_or_else(|| panic!("reusable")));

        let (r, b) = send(&dest, &get("/c"), &mut empty)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), 201);
        let (body, c) = collect(b).await;
        assert_eq!(body, b"abcde");
        pool.put(c.unwrap_or_else(|| panic!("reusable")));

        let (r, b) = send(&dest, &get("/d"), &mut empty)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), 204);
        assert!(b.is_end_stream());
        drop(b);
        drop(pool);
        let (seen, conns) = h.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(conns, 1, "one connection served all three");
        assert!(
            seen[0].starts_with("GET /a?b=1 HTTP/1.1\r\nhost: svc\r\n"),
            "{}",
            seen[0]
        );
    }

    #[tokio::test]
    async fn until_close_bodies_and_request_bodies() {
        let (addr, h) = target(vec![b"HTTP/1.0 200 OK\r\n\r\nall of it CLOSE"]).await;
        let pool = Pool::new(1);
        let dest = Dest {
            pool: &pool,
            addr,
            connect_timeout: Duration::from_secs(5),
            start: Instant::now(),
            deadline: tokio::time::Instant::now() + Duration::from_secs(30),
            max_idle: Duration::from_secs(60),
        };
        let mut p = get("/up");
        p.method = Method::POST;
        p.headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("4"));
        let mut body = http_body_util::Full::new(Bytes::from_static(b"data"));
        let (r, b) = send(&dest, &p, &mut body)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.version(), Version::HTTP_10);
        let (body, c) = collect(b).await;
        assert_eq!(body, b"all of it CLOSE");
        assert!(c.is_none(), "a close-delimited body ends its connection");
        let (seen, _) = h.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(seen[0].starts_with("POST /up HTTP/1.1\r\n"));
        assert!(seen[0].ends_with("\r\n\r\ndata"), "{}", seen[0]);
    }

    #[tokio::test]
    async fn a_pooled_connection_the_target_closed_is_not_used() {
        let (addr, h) = target(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokCLOSE"]).await;
        let pool = Pool::new(1);
        let dest = Dest {
            pool: &pool,
            addr,
            connect_timeout: Duration::from_secs(5),
            start: Instant::now(),
            deadline: tokio::time::Instant::now() + Duration::from_secs(30),
            max_idle: Duration::from_secs(60),
        };
        let mut empty = http_body_util::Empty::<Bytes>::new();
        let (_, mut b) = send(&dest, &get("/"), &mut empty)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        while b.frame().await.is_some() {}
        let _ = b.reusable(); // "okCLOSE" overran its length: the connection is poisoned
        let (seen, _) = h.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen.len(), 1);
        // The target is gone now: a fresh connection fails to connect, not a hang.
        let err = send(&dest, &get("/"), &mut empty).await.err();
        assert!(
            matches!(
                err,
                Some(UpstreamError::Connect(_)) | Some(UpstreamError::Closed)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn framing_follows_rfc_9112() {
        use Kind::*;
        const V10: Version = Version::HTTP_10;
        const V11: Version = Version::HTTP_11;
        type Case = (
            Method,
            u16,
            Version,
            &'static [(&'static str, &'static str)],
            Option<(Kind, bool)>,
        );
        let chunked = Chunked(Chunk::Size);
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            (Method::HEAD, 200, V11, &[("content-length", "9")], Some((Done, true))),
            (Method::GET, 304, V11, &[], Some((Done, true))),
            (Method::GET, 204, V11, &[], Some((Done, true))),
            (Method::GET, 200, V11, &[("content-length", "9")], Some((Length(9), true))),
            (Method::GET, 200, V11, &[("content-length", "9, 9")], Some((Length(9), true))),
            (Method::GET, 200, V11, &[("content-length", "0")], Some((Done, true))),
            (Method::GET, 200, V11, &[("content-length", "9"), ("content-length", "8")], None),
            (Method::GET, 200, V11, &[("content-length", "nine")], None),
            (Method::GET, 200, V11, &[("transfer-encoding", "gzip, chunked"), ("content-length", "3")], Some((chunked, true))),
            (Method::GET, 200, V11, &[("transfer-encoding", "gzip")], Some((UntilClose, false))),
            (Method::GET, 200, V11, &[], Some((UntilClose, false))),
            (Method::GET, 200, V11, &[("connection", "close"), ("content-length", "1")], Some((Length(1), false))),
            (Method::GET, 200, V10, &[("content-length", "1")], Some((Length(1), false))),
            (Method::GET, 200, V10, &[("connection", "Keep-Alive"), ("content-length", "1")], Some((Length(1), true))),
        ];
        for (method, status, version, pairs, want) in cases {
            let mut info = HeadInfo::default();
            let seen: Result<Vec<bool>, _> = pairs
                .iter()
                .map(|(k, v)| info.observe(k.as_bytes(), v.as_bytes()))
                .collect();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let got = seen
                .ok()
                .map(|_| info.framing(&method, status, version))
                .map(|f| (f.kind, f.keep_alive));
            assert_eq!(got, want, "{method} {status} {version:?} {pairs:?}");
        }
    }
}
