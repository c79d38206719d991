//! The API's accept loop, with the limits `axum::serve` does not have: a cap on open
//! connections sized from the process's file-descriptor limit, a cap per client address (so
//! one peer that opens or keeps reopening connections cannot take every slot), a deadline for
//! a request's headers (slow-loris) and an idle timeout for kept-alive connections.
//!
//! A connection over a cap is closed at once, before any byte is read: the slot it would have
//! used stays free for well-behaved clients, and the client sees a reset it can retry.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

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
    /// Limits sized from the process's open-file limit: three quarters of it for connections
    /// (the rest for the store, the load balancer's sockets, Docker and log files), a quarter
    /// of those per address; headers within 10 s, idle connections closed after 60 s (ALB's
    /// default idle timeout).
    pub fn from_fd_limit() -> Self {
        let fds = open_file_limit().unwrap_or(1024);
        let max_connections = (fds * 3 / 4).clamp(64, 65_536) as usize;
        Self {
            max_connections,
            max_per_address: (max_connections / 4).max(16),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The soft `Max open files` limit of this process, from `/proc/self/limits` (the workspace
/// allows no `unsafe`, so no `getrlimit`).
fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    match soft {
        "unlimited" => Some(1 << 20),
        n => n.parse().ok(),
    }
}

/// Counts open connections per client address; a slot is given back when its guard drops.
#[derive(Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
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
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
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
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection cap reached; closing");
            continue;
        };
        let Some(slot) = per_address.take(peer.ip(), limits.max_per_address) else {
            tracing::debug!(%peer, "per-address connection cap reached; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let closing = closing.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            serve_connection(stream, router, limits, tls, closing).await;
            drop((permit, slot));
        });
    }
    let _ = closing_tx.send(true);
    // Every connection holds a permit until it ends.
    let _ = slots.acquire_many(limits.max_connections as u32).await;
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
    fn address_slots_are_capped_and_given_back() {
        let t = Arc::new(PerAddress::default());
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let a = t.take(ip, 2).unwrap();
        let _b = t.take(ip, 2).unwrap();
        assert!(
            t.take(ip, 2).is_none(),
            "a third connection from one address"
        );
        assert!(t.take("127.0.0.3".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(
            t.take(ip, 2).is_some(),
            "a closed connection frees its slot"
        );
    }

    #[test]
    fn limits_follow_the_descriptor_limit() {
        let l = Limits::from_fd_limit();
        assert!(l.max_connections >= 64);
        assert!(l.max_per_address <= l.max_connections);
        assert!(open_file_limit().is_some());
    }
}
