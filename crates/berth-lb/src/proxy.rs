//! The request path: route, pick a target, forward on a pooled connection, stream back.
//!
//! Per request this loads two `ArcSwap` snapshots (listener rules, group targets), bumps a
//! few atomics and builds the `X-Forwarded-For` value; bodies stream both ways unbuffered.
//! Errors become the status codes ALB answers with (502 / 503 / 504).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::admission::Admission;
use crate::config::DataPlaneOptions;
use crate::group::{Group, InFlight, Target, UpstreamClient};
use crate::matcher::{strip_port, RequestView};
use crate::metrics::ListenerMetrics;
use crate::redirect::{location, Original};
use crate::routing::{CompiledAction, Routing};
use crate::upstream::{self, is_hop_by_hop, BoxError, Dest, UpstreamBody, UpstreamError};

/// Everything a listener's connections share.
pub(crate) struct ListenerShared {
    pub routing: ArcSwap<Routing>,
    pub metrics: Arc<ListenerMetrics>,
    pub port: u16,
    pub port_header: HeaderValue,
    pub opts: Arc<DataPlaneOptions>,
    /// The load balancer's idle timeout in milliseconds (an attribute: `apply` may change it).
    pub idle_ms: AtomicU64,
    /// Client connections admitted by every listener of the data plane.
    pub admission: Arc<Admission>,
}

impl ListenerShared {
    /// The load balancer's idle timeout now.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_ms.load(Relaxed))
    }
}

/// The response body: either bytes the load balancer made, or the target's body streamed
/// through while holding the target's in-flight slot.
pub(crate) enum LbBody {
    Full(Option<Bytes>),
    Upstream(Upstream),
}

/// A target's response body on its way to the client, holding the target's in-flight slot.
pub(crate) struct Upstream {
    body: UpBody,
    slot: InFlight,
}

enum UpBody {
    /// Read straight from the pooled connection, which goes back to the pool at the end.
    H1(UpstreamBody),
    /// From hyper's HTTP/2 client.
    H2(Incoming),
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let UpBody::H1(b) = &mut self.body {
            if let Some(c) = b.reusable() {
                self.slot.target().pool.put(c);
            }
        }
    }
}

impl LbBody {
    fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        LbBody::Full((!b.is_empty()).then_some(b))
    }
}

impl Body for LbBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            LbBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            LbBody::Upstream(u) => match &mut u.body {
                UpBody::H1(b) => Pin::new(b).poll_frame(cx),
                UpBody::H2(b) => Pin::new(b).poll_frame(cx).map_err(|e| e.into()),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            LbBody::Full(b) => b.is_none(),
            LbBody::Upstream(u) => match &u.body {
                UpBody::H1(b) => b.is_end_stream(),
                UpBody::H2(b) => b.is_end_stream(),
            },
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            LbBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            LbBody::Upstream(u) => match &u.body {
                UpBody::H1(b) => b.size_hint(),
                UpBody::H2(b) => b.size_hint(),
            },
        }
    }
}

enum Decision {
    Respond(Response<LbBody>),
    Forward(Arc<Group>),
}

/// The client end of a connection, with its `X-Forwarded-For` value made once.
#[derive(Clone)]
pub(crate) struct Peer {
    addr: SocketAddr,
    xff: HeaderValue,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        let ip = addr.ip().to_canonical();
        let xff = HeaderValue::try_from(ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self { addr, xff }
    }
}

/// Serves one request on a listener.
pub(crate) async fn handle(
    l: &ListenerShared,
    peer: &Peer,
    req: Request<Incoming>,
) -> Response<LbBody> {
    l.metrics.requests.fetch_add(1, Relaxed);
    let decision = decide(l, peer.addr, &req);
    let resp = match decision {
        Decision::Respond(r) => r,
        Decision::Forward(g) => forward(l, &g, peer, req).await,
    };
    l.metrics.responses.record(resp.status().as_u16());
    resp
}

fn host_of(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

fn decide(l: &ListenerShared, peer: SocketAddr, req: &Request<Incoming>) -> Decision {
    let routing = l.routing.load();
    let view = RequestView {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: req.uri().query(),
        host: host_of(req),
        headers: req.headers(),
        source: peer.ip(),
    };
    match routing.decide(&view) {
        CompiledAction::Forward(f) => match f.pick() {
            Ok(g) => Decision::Forward(g.clone()),
            Err(()) => Decision::Respond(elb_error(
                l,
                StatusCode::SERVICE_UNAVAILABLE,
                "no target group can take the request",
            )),
        },
        CompiledAction::Fixed {
            status,
            content_type,
            body,
        } => {
            let mut r = Response::new(LbBody::full(body.clone()));
            *r.status_mut() = *status;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                content_type
                    .clone()
                    .unwrap_or(HeaderValue::from_static("text/plain; charset=utf-8")),
            );
            Decision::Respond(r)
        }
        CompiledAction::Redirect(t) => {
            let o = Original {
                protocol: "http",
                host: view.host.map_or("", strip_port),
                port: l.port,
                path: view.path,
                query: view.query.unwrap_or(""),
            };
            let loc = location(t, &o);
            let mut r = Response::new(LbBody::full(Bytes::new()));
            *r.status_mut() = StatusCode::from_u16(t.status).unwrap_or(StatusCode::FOUND);
            match HeaderValue::try_from(loc) {
                Ok(v) => {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                Err(_) => *r.status_mut() = StatusCode::BAD_REQUEST,
            }
            Decision::Respond(r)
        }
    }
}

/// A response the load balancer generates itself, shaped like ALB's HTML error pages.
fn elb_error(l: &ListenerShared, status: StatusCode, why: &str) -> Response<LbBody> {
    l.metrics.elb_error(status.as_u16());
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<p>{why}</p>\r\n</body>\r\n</html>\r\n"
    );
    let mut r = Response::new(LbBody::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

/// End-to-end headers a client cannot make hop-by-hop by naming them in `Connection`
/// (`Connection: Host` would send the target a request with no Host; naming the
/// credentials or the body's framing would change what the target sees).
const PROTECTED_FROM_CONNECTION: [HeaderName; 6] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::AUTHORIZATION,
    header::COOKIE,
    header::EXPECT,
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // One pass over the names finds the (usually zero or one) to remove, cheaper than a
    // hashed removal per hop-by-hop name; at most nine distinct names can match.
    let mut present: [Option<HeaderName>; 9] = Default::default();
    let mut n = 0;
    for name in h.keys().filter(|k| is_hop_by_hop(k.as_str().as_bytes())) {
        if let Some(slot) = present.get_mut(n) {
            *slot = Some(name.clone());
            n += 1;
        }
    }
    if n == 0 {
        return;
    }
    if let Some(c) = h.get(header::CONNECTION) {
        // Headers the sender listed in `Connection` are hop-by-hop too.
        let listed: Vec<HeaderName> = c
            .to_str()
            .unwrap_or("")
            .split(',')
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .filter(|n| !PROTECTED_FROM_CONNECTION.contains(n))
            .collect();
        for n in listed {
            h.remove(n);
        }
    }
    for name in present.into_iter().flatten() {
        h.remove(name);
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// The HTTP/2 client's error as an [`UpstreamError`] (its connect errors keep their kind).
fn from_legacy(e: hyper_util::client::legacy::Error) -> UpstreamError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    let mut timed_out = false;
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        timed_out |= s.to_string().contains("timed out");
        src = s.source();
    }
    match (e.is_connect(), timed_out) {
        (true, true) => UpstreamError::ConnectTimeout,
        (true, false) => UpstreamError::Connect(std::io::Error::other(e.to_string())),
        _ => UpstreamError::Pooled(e),
    }
}

/// Rewrites a request's head for the target (it is written to the target straight from these
/// parts): `Host` from the authority when missing, hop-by-hop headers out, `X-Forwarded-*` in.
fn rewrite_head(parts: &mut http::request::Parts, l: &ListenerShared, peer: &Peer) {
    if !parts.headers.contains_key(header::HOST) {
        if let Some(a) = parts.uri.authority() {
            if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                parts.headers.insert(header::HOST, v);
            }
        }
    }
    strip_hop_by_hop(&mut parts.headers);
    let xff = match parts
        .headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) => HeaderValue::try_from(format!("{prev}, {}", peer.xff.to_str().unwrap_or("")))
            .unwrap_or_else(|_| peer.xff.clone()),
        None => peer.xff.clone(),
    };
    parts.headers.insert(X_FORWARDED_FOR.clone(), xff);
    parts
        .headers
        .insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    parts
        .headers
        .insert(X_FORWARDED_PORT.clone(), l.port_header.clone());
}

/// Sends a request through the target group's HTTP/2 client, within `timeout`.
async fn send_h2(
    client: &UpstreamClient,
    authority: &Authority,
    mut parts: http::request::Parts,
    body: Incoming,
    timeout: std::time::Duration,
) -> Result<(Response<()>, UpBody), UpstreamError> {
    // hyper's HTTP/2 client wants the absolute URI.
    let pq = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority.clone())
        .path_and_query(pq)
        .build()
        .unwrap_or_default();
    parts.version = Version::HTTP_2;
    let req = client.request(Request::from_parts(parts, body));
    match tokio::time::timeout(timeout, req).await {
        Ok(Ok(r)) => {
            let (p, b) = r.into_parts();
            Ok((Response::from_parts(p, ()), UpBody::H2(b)))
        }
        Ok(Err(e)) => Err(from_legacy(e)),
        Err(_) => Err(UpstreamError::Timeout),
    }
}

/// Picks a target and sends the request to it. A target that refuses the connection has
/// seen nothing of the request, so it goes to another target in the rotation (nginx's
/// `proxy_next_upstream error`): a task stopped between two health checks costs no request.
/// HTTP/2 targets go through hyper's pooled client, which keeps the body: no second try.
async fn send_to_a_target(
    l: &ListenerShared,
    group: &Group,
    parts: http::request::Parts,
    mut body: Incoming,
) -> Result<
    (
        InFlight,
        Result<(Response<()>, UpBody), UpstreamError>,
        Instant,
    ),
    Response<LbBody>,
> {
    let idle = l.idle_timeout();
    let mut refused: Option<Arc<Target>> = None;
    for attempt in 0..MAX_CONNECT_TRIES {
        let routable = group.snapshot.load();
        let Some(target) = routable.pick(&group.rr, refused.as_ref()) else {
            return Err(elb_error(
                l,
                StatusCode::SERVICE_UNAVAILABLE,
                "the target group has no registered targets",
            ));
        };
        let slot = InFlight::new(target.clone());
        let h2 = routable.http2.then(|| routable.client().clone());
        drop(routable);
        let target = slot.target();
        let start = Instant::now();
        let sent = match h2 {
            Some(client) => {
                let sent = send_h2(&client, &target.authority, parts, body, idle).await;
                return Ok((slot, sent, start));
            }
            None => {
                let dest = Dest {
                    pool: &target.pool,
                    addr: target.addr,
                    connect_timeout: l.opts.connect_timeout,
                    start,
                    deadline: tokio::time::Instant::from_std(start) + idle,
                    max_idle: l.opts.upstream_pool_idle,
                };
                upstream::send(&dest, &parts, &mut body)
                    .await
                    .map(|(head, body)| (head, UpBody::H1(body)))
            }
        };
        match sent {
            Err(UpstreamError::Connect(e)) if attempt + 1 < MAX_CONNECT_TRIES => {
                tracing::debug!(target = %target.id, error = %e, "target refused; trying another");
                group.metrics.connect_errors.fetch_add(1, Relaxed);
                refused = Some(target.clone());
            }
            sent => return Ok((slot, sent, start)),
        }
    }
    unreachable!("the last try returns")
}

/// Targets a request is offered to when each refuses the connection.
const MAX_CONNECT_TRIES: usize = 3;

async fn forward(
    l: &ListenerShared,
    group: &Group,
    peer: &Peer,
    req: Request<Incoming>,
) -> Response<LbBody> {
    group.metrics.requests.fetch_add(1, Relaxed);
    let (mut parts, body) = req.into_parts();

    rewrite_head(&mut parts, l, peer);

    let (slot, sent, start) = match send_to_a_target(l, group, parts, body).await {
        Ok(sent) => sent,
        Err(resp) => return resp,
    };
    let target = slot.target();
    match sent {
        Ok((resp, body)) => {
            let elapsed = start.elapsed();
            let status = resp.status().as_u16();
            target.metrics.latency.observe(elapsed);
            target.metrics.responses.record(status);
            group.metrics.latency.observe(elapsed);
            group.metrics.responses.record(status);
            let (mut rp, ()) = resp.into_parts();
            if let UpBody::H2(_) = body {
                strip_hop_by_hop(&mut rp.headers); // the HTTP/1.1 client leaves them out itself
            }
            Response::from_parts(rp, LbBody::Upstream(Upstream { body, slot }))
        }
        Err(UpstreamError::Timeout) => {
            target.metrics.responses.record(504);
            group.metrics.responses.record(504);
            elb_error(
                l,
                StatusCode::GATEWAY_TIMEOUT,
                "the target did not answer in time",
            )
        }
        Err(e) => {
            tracing::debug!(target = %target.id, error = %e, "upstream request failed");
            if matches!(e, UpstreamError::Connect(_) | UpstreamError::ConnectTimeout) {
                group.metrics.connect_errors.fetch_add(1, Relaxed);
            }
            let status = if matches!(e, UpstreamError::ConnectTimeout) {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            target.metrics.responses.record(status.as_u16());
            group.metrics.responses.record(status.as_u16());
            elb_error(l, status, "the target did not answer")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_cannot_make_end_to_end_headers_hop_by_hop() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "app.example".parse().unwrap());
        h.insert(header::AUTHORIZATION, "Bearer t".parse().unwrap());
        h.insert("x-drop-me", "1".parse().unwrap());
        h.insert(
            header::CONNECTION,
            "close, Host, authorization, x-drop-me".parse().unwrap(),
        );
        strip_hop_by_hop(&mut h);
        assert_eq!(h.get(header::HOST).unwrap(), "app.example");
        assert_eq!(h.get(header::AUTHORIZATION).unwrap(), "Bearer t");
        assert!(h.get("x-drop-me").is_none());
        assert!(h.get(header::CONNECTION).is_none());
    }
}
