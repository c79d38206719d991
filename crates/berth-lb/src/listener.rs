//! Listener sockets: accept, serve HTTP/1.1 or prior-knowledge h2c on each connection, and
//! close gracefully (stop accepting, let in-flight requests finish, then force).
//!
//! The protocol is told by peeking at a connection's first bytes (HTTP/2's preface or not),
//! once per connection. hyper-util's `auto` builder does the same but keeps a rewind wrapper
//! around every later read; on the proxy's hot path that wrapper was measurable.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::proxy::{handle, ListenerShared, Peer};

/// A running listener, owned by the data plane: one accept loop per serving runtime.
pub(crate) struct ListenerHandle {
    pub bind: SocketAddr,
    pub shared: Arc<ListenerShared>,
    stop: watch::Sender<bool>,
    closed: Vec<oneshot::Receiver<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl ListenerHandle {
    /// Serves each socket on its runtime (all sockets share one address via SO_REUSEPORT).
    pub fn start(
        sockets: Vec<(std::net::TcpListener, Handle)>,
        bind: SocketAddr,
        shared: Arc<ListenerShared>,
    ) -> Self {
        let (stop, _) = watch::channel(false);
        let mut closed = Vec::with_capacity(sockets.len());
        let mut tasks = Vec::with_capacity(sockets.len());
        for (socket, rt) in sockets {
            let (closed_tx, closed_rx) = oneshot::channel();
            let stop_rx = stop.subscribe();
            let shared = shared.clone();
            tasks.push(rt.spawn(async move {
                match socket
                    .set_nonblocking(true)
                    .and_then(|()| TcpListener::from_std(socket))
                {
                    Ok(l) => serve(l, shared, stop_rx, closed_tx).await,
                    Err(e) => tracing::error!(error = %e, "cannot register listener socket"),
                }
            }));
            closed.push(closed_rx);
        }
        Self {
            bind,
            shared,
            stop,
            closed,
            tasks,
        }
    }

    /// Stops accepting and waits until the sockets are closed (so the port can be rebound);
    /// open connections finish in the background. Returns the tasks to await for them.
    pub async fn close(self) -> Vec<JoinHandle<()>> {
        let _ = self.stop.send(true);
        for c in self.closed {
            let _ = c.await;
        }
        self.tasks
    }
}

async fn serve(
    listener: TcpListener,
    shared: Arc<ListenerShared>,
    mut stop: watch::Receiver<bool>,
    closed: oneshot::Sender<()>,
) {
    let graceful = GracefulShutdown::new();
    let (force_tx, force_rx) = watch::channel(false);
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .keep_alive(true)
        // Since hyper 1.4 this also bounds how long a kept-alive connection may sit idle.
        .header_read_timeout(shared.opts.idle_timeout);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "set_nodelay failed");
                    }
                    let shared = shared.clone();
                    let (h1, h2) = (h1.clone(), h2.clone());
                    let watcher = graceful.watcher();
                    let mut force = force_rx.clone();
                    tokio::spawn(async move {
                        let idle = shared.opts.idle_timeout;
                        let client = Peer::new(peer);
                        let svc = service_fn(move |req| {
                            let shared = shared.clone();
                            let client = client.clone();
                            async move { Ok::<_, Infallible>(handle(&shared, &client, req).await) }
                        });
                        let conn = async move {
                            let h2c = match tokio::time::timeout(idle, is_h2c(&stream)).await {
                                Ok(Ok(v)) => v,
                                _ => return, // silent or gone before its first bytes
                            };
                            let io = TokioIo::new(stream);
                            if h2c {
                                finish(watcher.watch(h2.serve_connection(io, svc)), peer).await;
                            } else {
                                finish(watcher.watch(h1.serve_connection(io, svc)), peer).await;
                            }
                        };
                        tokio::select! {
                            biased; // no random branch order: this runs on every poll
                            () = conn => {}
                            _ = force.changed() => {}
                        }
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let _ = closed.send(());
    if tokio::time::timeout(shared.opts.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("listener shutdown timed out; closing remaining connections");
        let _ = force_tx.send(true);
    }
}

/// HTTP/2's connection preface: a connection opening with it speaks prior-knowledge h2c.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Peeks (without consuming) until the first bytes match the preface or cannot.
async fn is_h2c(stream: &TcpStream) -> std::io::Result<bool> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 || buf[..n] != H2_PREFACE[..n] {
            return Ok(false);
        }
        if n == H2_PREFACE.len() {
            return Ok(true);
        }
        // A preface split across packets: peeking again returns at once, so wait a little.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn finish<E: std::fmt::Display>(
    conn: impl std::future::Future<Output = Result<(), E>>,
    peer: SocketAddr,
) {
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
