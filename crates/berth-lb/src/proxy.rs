//! The request path: route, pick a target, forward with a pooled client, stream back.
//!
//! Per request this loads two `ArcSwap` snapshots (listener rules, group targets), bumps a
//! few atomics and builds the `X-Forwarded-For` value; bodies stream both ways unbuffered.
//! Errors become the status codes ALB answers with (502 / 503 / 504).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::config::DataPlaneOptions;
use crate::group::{Group, InFlight};
use crate::matcher::{strip_port, RequestView};
use crate::metrics::ListenerMetrics;
use crate::redirect::{location, Original};
use crate::routing::{CompiledAction, Routing};

/// Everything a listener's connections share.
pub(crate) struct ListenerShared {
    pub routing: ArcSwap<Routing>,
    pub metrics: Arc<ListenerMetrics>,
    pub port: u16,
    pub port_header: HeaderValue,
    pub opts: Arc<DataPlaneOptions>,
}

/// The body sent to targets: the client's, streamed, or nothing (a replayed request).
pub(crate) enum ReqBody {
    Client(Incoming),
    Empty,
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ReqBody::Client(b) => Pin::new(b).poll_frame(cx),
            ReqBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Client(b) => b.is_end_stream(),
            ReqBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Client(b) => b.size_hint(),
            ReqBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// The response body: either bytes the load balancer made, or the target's body streamed
/// through while holding the target's in-flight slot.
pub(crate) enum LbBody {
    Full(Option<Bytes>),
    Upstream { body: Incoming, _slot: InFlight },
}

impl LbBody {
    fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        LbBody::Full((!b.is_empty()).then_some(b))
    }
}

impl Body for LbBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            LbBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            LbBody::Upstream { body, .. } => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            LbBody::Full(b) => b.is_none(),
            LbBody::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            LbBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            LbBody::Upstream { body, .. } => body.size_hint(),
        }
    }
}

enum Decision {
    Respond(Response<LbBody>),
    Forward(Arc<Group>),
}

/// Serves one request on a listener.
pub(crate) async fn handle(
    l: &ListenerShared,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<LbBody> {
    l.metrics.requests.fetch_add(1, Relaxed);
    let decision = decide(l, peer, &req);
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

static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("keep-alive"),
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    if let Some(c) = h.get(header::CONNECTION) {
        // Headers the sender listed in `Connection` are hop-by-hop too. Rare: allocate.
        let listed: Vec<HeaderName> = c
            .to_str()
            .unwrap_or("")
            .split(',')
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for n in listed {
            h.remove(n);
        }
    }
    for n in &HOP_BY_HOP {
        h.remove(n);
    }
    h.remove("proxy-connection");
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// The target closed a (pooled) connection before answering anything.
fn closed_before_response(e: &hyper_util::client::legacy::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message() || h.is_canceled();
        }
        src = s.source();
    }
    false
}

fn is_timeout(e: &hyper_util::client::legacy::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::TimedOut;
        }
        if s.to_string().contains("timed out") {
            return true;
        }
        src = s.source();
    }
    false
}

async fn forward(
    l: &ListenerShared,
    group: &Group,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<LbBody> {
    group.metrics.requests.fetch_add(1, Relaxed);
    let (mut parts, body) = req.into_parts();

    // Rewrite the head once; only the URI's authority differs between targets.
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
        Some(prev) => format!("{prev}, {}", peer.ip().to_canonical()),
        None => peer.ip().to_canonical().to_string(),
    };
    if let Ok(v) = HeaderValue::try_from(xff) {
        parts.headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    parts
        .headers
        .insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    parts
        .headers
        .insert(X_FORWARDED_PORT.clone(), l.port_header.clone());
    let pq = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));

    // A bodyless idempotent request can be replayed if the target drops a pooled connection
    // under it (the keep-alive race behind most 502s during deploys).
    let replay = (is_idempotent(&parts.method) && body.is_end_stream())
        .then(|| (parts.method.clone(), parts.headers.clone()));

    let mut body = Some(body);
    let mut parts = Some(parts);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let routable = group.snapshot.load();
        let Some(target) = routable.pick(&group.rr) else {
            return elb_error(
                l,
                StatusCode::SERVICE_UNAVAILABLE,
                "the target group has no registered targets",
            );
        };
        let slot = InFlight::new(target.clone());
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(target.authority.clone())
            .path_and_query(pq.clone())
            .build()
            .unwrap_or_default();
        let version = if routable.http2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        let req = match body.take() {
            Some(b) => {
                let mut p = parts
                    .take()
                    .unwrap_or_else(|| Request::new(()).into_parts().0);
                p.uri = uri;
                p.version = version;
                Request::from_parts(p, ReqBody::Client(b))
            }
            None => {
                // Replay: the first attempt consumed the head, but the request had no body.
                let Some((m, h)) = &replay else { break };
                let mut r = Request::new(ReqBody::Empty);
                *r.method_mut() = m.clone();
                *r.headers_mut() = h.clone();
                *r.uri_mut() = uri;
                *r.version_mut() = version;
                r
            }
        };
        let fut = routable.client().request(req);
        drop(routable);
        let start = Instant::now();
        let res = tokio::time::timeout(l.opts.idle_timeout, fut).await;
        let target = slot.target();
        match res {
            Ok(Ok(resp)) => {
                let elapsed = start.elapsed();
                let status = resp.status().as_u16();
                target.metrics.latency.observe(elapsed);
                target.metrics.responses.record(status);
                group.metrics.latency.observe(elapsed);
                group.metrics.responses.record(status);
                let (mut rp, body) = resp.into_parts();
                strip_hop_by_hop(&mut rp.headers);
                return Response::from_parts(rp, LbBody::Upstream { body, _slot: slot });
            }
            Ok(Err(e)) => {
                if attempt == 1 && replay.is_some() && !e.is_connect() && closed_before_response(&e)
                {
                    tracing::debug!(target = %target.id, error = %e, "retrying on a fresh connection");
                    continue;
                }
                tracing::debug!(target = %target.id, error = ?e, "upstream request failed");
                let status = if e.is_connect() && is_timeout(&e) {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                };
                target.metrics.responses.record(status.as_u16());
                group.metrics.responses.record(status.as_u16());
                return elb_error(l, status, "the target did not answer");
            }
            Err(_) => {
                target.metrics.responses.record(504);
                group.metrics.responses.record(504);
                return elb_error(
                    l,
                    StatusCode::GATEWAY_TIMEOUT,
                    "the target did not answer in time",
                );
            }
        }
    }
    elb_error(l, StatusCode::BAD_GATEWAY, "the target did not answer")
}
