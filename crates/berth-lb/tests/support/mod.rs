//! Test backends and clients on real 127.0.0.1 sockets.
#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use berth_lb::{
    Action, Config, DataPlane, DataPlaneOptions, HealthCheckConfig, ListenerConfig, TargetConfig,
    TargetGroupConfig, TargetHealth, TargetState,
};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// A backend that answers with its id. Paths:
/// `/health` → the settable `health_status`; `/slow` → waits for `release`;
/// `/headers` → the request headers, one `name: value` per line; anything else → its id.
#[derive(Clone)]
pub struct Backend {
    pub id: String,
    pub addr: SocketAddr,
    pub health_status: Arc<AtomicU16>,
    pub hits: Arc<AtomicUsize>,
    pub health_hits: Arc<AtomicUsize>,
    pub slow_waiting: Arc<AtomicUsize>,
    pub release: Arc<Notify>,
}

impl Backend {
    pub async fn start(id: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = Backend {
            id: id.to_owned(),
            addr: listener.local_addr().unwrap(),
            health_status: Arc::new(AtomicU16::new(200)),
            hits: Arc::default(),
            health_hits: Arc::default(),
            slow_waiting: Arc::default(),
            release: Arc::new(Notify::new()),
        };
        let me = b.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let me = me.clone();
                        async move { Ok::<_, Infallible>(me.answer(req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        b
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        match path.as_str() {
            "/health" => {
                self.health_hits.fetch_add(1, Ordering::SeqCst);
                let code = self.health_status.load(Ordering::SeqCst);
                let mut r = Response::new(Full::new(Bytes::from(self.id.clone())));
                *r.status_mut() = StatusCode::from_u16(code).unwrap();
                return r;
            }
            "/slow" => {
                self.hits.fetch_add(1, Ordering::SeqCst);
                let released = self.release.notified();
                self.slow_waiting.fetch_add(1, Ordering::SeqCst);
                released.await;
                self.slow_waiting.fetch_sub(1, Ordering::SeqCst);
            }
            "/headers" => {
                self.hits.fetch_add(1, Ordering::SeqCst);
                let mut s = String::new();
                for (k, v) in req.headers() {
                    s.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
                }
                s.push_str(&format!("version: {:?}\n", req.version()));
                return Response::new(Full::new(Bytes::from(s)));
            }
            _ => {
                self.hits.fetch_add(1, Ordering::SeqCst);
            }
        }
        Response::new(Full::new(Bytes::from(self.id.clone())))
    }

    pub fn target(&self) -> TargetConfig {
        TargetConfig {
            id: self.id.clone(),
            addr: self.addr,
        }
    }
}

/// A backend that speaks HTTP/1.1 keep-alive (no `Connection: close`) but answers only the
/// first request of each connection: it reads the second one and closes without a word, like
/// a server that shuts an idle keep-alive connection just as a request arrives on it.
pub async fn closing_backend(id: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                for answered in [true, false] {
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    if answered {
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{id}",
                            id.len()
                        );
                        let _ = s.write_all(resp.as_bytes()).await;
                    }
                }
                // Dropping `s` closes the connection with the second request unanswered.
            });
        }
    });
    addr
}

/// A port with nothing listening on it.
pub async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn h2_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// GET `path`; returns status and body text.
pub async fn get(c: &HttpClient, lb: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    send(
        c,
        Request::get(format!("http://{lb}{path}")).body(Full::default())?,
    )
    .await
}

pub async fn send(c: &HttpClient, req: Request<Full<Bytes>>) -> anyhow::Result<(u16, String)> {
    let resp = c.request(req).await.context("request")?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Waits for `cond` with a deadline; never a fixed sleep as synchronisation.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn fast_opts() -> DataPlaneOptions {
    DataPlaneOptions {
        idle_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        upstream_pool_idle: Duration::from_secs(30),
        shutdown_timeout: Duration::from_secs(2),
        ..DataPlaneOptions::default()
    }
}

pub fn no_health() -> HealthCheckConfig {
    HealthCheckConfig {
        enabled: false,
        ..HealthCheckConfig::default()
    }
}

pub fn fast_health() -> HealthCheckConfig {
    HealthCheckConfig {
        enabled: true,
        path: "/health".into(),
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        ..HealthCheckConfig::default()
    }
}

pub fn group(id: &str, targets: &[&Backend], health: HealthCheckConfig) -> TargetGroupConfig {
    TargetGroupConfig {
        id: id.into(),
        health,
        targets: targets.iter().map(|b| b.target()).collect(),
        ..TargetGroupConfig::default()
    }
}

pub fn listener(id: &str, default_action: Action) -> ListenerConfig {
    ListenerConfig {
        id: id.into(),
        bind: "127.0.0.1:0".parse().unwrap(),
        rules: vec![],
        default_action,
        idle_timeout: None,
    }
}

pub fn forward(tg: &str) -> Action {
    Action::Forward(vec![(tg.into(), 1)])
}

/// Applies `cfg` (no errors expected) and returns the address of listener `l`.
pub async fn start(dp: &DataPlane, cfg: Config) -> SocketAddr {
    let errs = dp.apply(cfg).await;
    assert!(errs.is_empty(), "apply errors: {errs:?}");
    dp.local_addr("l").expect("listener l is bound")
}

pub fn target_health(dp: &DataPlane, tg: &str, target: &str) -> Option<TargetHealth> {
    dp.health()
        .get(tg)
        .and_then(|v| v.iter().find(|t| t.id == target).cloned())
}

pub fn state_of(dp: &DataPlane, tg: &str, target: &str) -> Option<TargetState> {
    target_health(dp, tg, target).map(|t| t.state)
}
