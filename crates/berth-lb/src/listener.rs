//! Listener sockets: accept, serve HTTP/1.1 or prior-knowledge h2c on each connection, and
//! close gracefully (stop accepting, let in-flight requests finish, then force).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::proxy::{handle, ListenerShared};

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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // Since hyper 1.4 this also bounds how long a kept-alive connection may sit idle.
        .header_read_timeout(shared.opts.idle_timeout);
    builder.http2().timer(TokioTimer::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "set_nodelay failed");
                    }
                    let shared = shared.clone();
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, peer, req).await) }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                    let conn = graceful.watch(conn);
                    let mut force = force_rx.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            r = conn => if let Err(e) = r {
                                tracing::debug!(%peer, error = %e, "connection ended with an error");
                            },
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
