//! The API's accept loop, with the limits `axum::serve` does not have: a cap on open
//! connections sized from the process's file-descriptor limit, a cap per client address (so
//! one peer that opens or keeps reopening connections cannot take every slot), a deadline for
//! a request's headers (slow-loris) and an idle timeout for kept-alive connections.
//!
//! The caps are `berth_lb`'s [`Admission`], which the load balancer's listeners use too: a
//! connection over a cap is closed at once, before any byte is read. The API's share of the
//! descriptor limit is its own, so a flood on a listener cannot take the API's slots.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use berth_lb::{Admission, ConnectionCaps};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The API listener's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one client address at most.
    pub max_per_address: usize,
    /// A request's headers must arrive within this.
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request in flight and no bytes moving is closed after this.
    pub idle_timeout: Duration,
}

impl Limits {
    /// Limits sized from the process's open-file limit: three eighths of it for connections
    /// (the load balancer's listeners take a quarter for theirs, see `berth_lb::fd_share`; the
    /// rest is for their upstream connections, the store, Docker and log files), a quarter of
    /// those per address; headers within 10 s, idle connections closed after 60 s (ALB's
    /// default idle timeout).
    pub fn from_fd_limit() -> Self {
        let caps = berth_lb::fd_share(3, 8);
        Self {
            max_connections: caps.max_connections,
            max_per_address: caps.max_per_address,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting, asks every connection to finish its request in flight and close, and returns
/// once all have (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<crate::tls::Tls>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let admission = Admission::new(ConnectionCaps {
        max_connections: limits.max_connections,
        max_per_address: limits.max_per_address,
    });
    let (closing_tx, closing) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (or a reset before accept): back off briefly rather
                    // than spin; the caps keep this rare.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let ticket = match admission.admit(peer.ip()) {
            Ok(t) => t,
            Err(why) => {
                tracing::debug!(%peer, ?why, "over a connection cap; closing");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let closing = closing.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            serve_connection(stream, router, limits, tls, closing).await;
            drop(ticket);
        });
    }
    let _ = closing_tx.send(true);
    // Every connection holds its ticket until it ends.
    admission.emptied().await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    tls: Option<crate::tls::Tls>,
    closing: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let last_active = Arc::new(AtomicU64::new(0));
    let watched = Watched {
        inner: stream,
        started,
        last_active: last_active.clone(),
    };
    let Some(tls) = tls else {
        let io = TokioIo::new(watched);
        return serve_http(io, router, limits, closing, started, last_active).await;
    };
    // The handshake counts against the header deadline: a client that stalls it holds its
    // slot no longer than one that stalls its headers.
    match tokio::time::timeout(limits.header_read_timeout, tls.accept(watched)).await {
        Ok(Ok(stream)) => {
            let io = TokioIo::new(stream);
            serve_http(io, router, limits, closing, started, last_active).await;
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
    }
}

/// Serves HTTP/1 on `io` (plain or TLS) until the client closes, the connection idles out,
/// or shutdown.
async fn serve_http<I>(
    io: TokioIo<I>,
    router: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
    started: Instant,
    last_active: Arc<AtomicU64>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let router = router.clone();
        async move {
            use tower::ServiceExt;
            router.oneshot(req).await
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .serve_connection(io, service);
    let mut conn = pin!(conn);
    let tick = (limits.idle_timeout / 4).max(Duration::from_millis(50));
    let mut shutting_down = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "API connection ended with an error");
                }
                return;
            }
            _ = closing.wait_for(|c| *c), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(tick), if !shutting_down => {
                let idle = started.elapsed().saturating_sub(Duration::from_millis(
                    last_active.load(Ordering::Relaxed),
                ));
                if idle >= limits.idle_timeout {
                    // Closes now if no request is in flight; otherwise after its response.
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A socket that notes when bytes last moved (milliseconds since the connection began), so
/// the idle check needs no timer on the request path.
struct Watched {
    inner: TcpStream,
    started: Instant,
    last_active: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_active.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_descriptor_limit() {
        let l = Limits::from_fd_limit();
        assert!(l.max_connections >= 64);
        assert!(l.max_per_address <= l.max_connections);
    }
}
