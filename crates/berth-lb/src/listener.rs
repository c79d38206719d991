//! Listener sockets: accept, serve HTTP/1.1 or prior-knowledge h2c on each connection, and
//! close gracefully (stop accepting, let in-flight requests finish, then force).
//!
//! The protocol is told by peeking at a connection's first bytes (HTTP/2's preface or not),
//! once per connection. hyper-util's `auto` builder does the same but keeps a rewind wrapper
//! around every later read; on the proxy's hot path that wrapper was measurable.
//!
//! Every listener of a data plane admits connections through one shared [`crate::Admission`]
//! (capped in total and per client address, sized from the descriptor limit); one over a cap
//! is closed unread.
//!
//! Timers are per connection, never per request: a watchdog task per connection enforces
//! the first request's header deadline and ALB's idle timeout and relays the listener's drain and force signals, and the connection
//! task polls one channel for them (see `watchdog`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::admission::Ticket;
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
    /// Serves each descriptor on its runtime (all are descriptors of one exclusive socket).
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
    // drain: finish what is in flight, then close; force: close now. Every connection task
    // holds a `live` sender, so the receiver ends when the last connection has.
    let (drain_tx, drain_rx) = watch::channel(false);
    let (force_tx, force_rx) = watch::channel(false);
    let (live_tx, mut live_rx) = mpsc::channel::<()>(1);
    let mut h1 = http1::Builder::new();
    // No timer: hyper's header-read timeout (on by default once a timer is set) would arm a
    // timer for every request; the watchdog below keeps ALB's idle timeout instead.
    h1.keep_alive(true).header_read_timeout(None).writev(false);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Over a cap: closed before any byte is read (see `admission`).
                    let Ok(ticket) = shared.admission.admit(peer.ip()) else {
                        shared.metrics.rejected.fetch_add(1, Relaxed);
                        continue;
                    };
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "set_nodelay failed");
                    }
                    let shared = shared.clone();
                    let (h1, h2) = (h1.clone(), h2.clone());
                    let ends = Ends {
                        drain: drain_rx.clone(),
                        force: force_rx.clone(),
                        _live: live_tx.clone(),
                        _ticket: ticket,
                    };
                    tokio::spawn(connection(stream, peer, shared, h1, h2, ends));
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
    let _ = drain_tx.send(true);
    drop(live_tx);
    if tokio::time::timeout(shared.opts.shutdown_timeout, live_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("listener shutdown timed out; closing remaining connections");
        let _ = force_tx.send(true);
    }
}

/// How a connection task learns that its listener is closing.
struct Ends {
    drain: watch::Receiver<bool>,
    force: watch::Receiver<bool>,
    /// Held by the connection's watchdog, which outlives the connection itself.
    _live: mpsc::Sender<()>,
    /// The connection's admission slot, likewise.
    _ticket: Ticket,
}

/// Serves one client connection: HTTP/1.1 or prior-knowledge h2c, told by its first bytes.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<ListenerShared>,
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    mut ends: Ends,
) {
    let idle = shared.idle_timeout();
    let header = shared.opts.header_read_timeout;
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    let client = Peer::new(peer);
    let svc = service_fn(move |req| {
        counter.fetch_add(1, Relaxed);
        let shared = shared.clone();
        let client = client.clone();
        async move { Ok::<_, Infallible>(handle(&shared, &client, req).await) }
    });
    let h2c = tokio::select! {
        biased;
        r = tokio::time::timeout(header.min(idle), is_h2c(&stream)) => match r {
            Ok(Ok(v)) => v,
            _ => return, // silent or gone before its first bytes
        },
        _ = ends.drain.changed() => return,
    };
    let io = TokioIo::new(stream);
    // HTTP/1.1's first request must be whole within the header-read timeout; an h2c client
    // has sent its preface and may open its first stream later (the idle timeout bounds it).
    let first_by = (!h2c).then_some(header);
    let signals = watchdog(requests, idle, first_by, ends);
    if h2c {
        drive(h2.serve_connection(io, svc), peer, signals).await;
    } else {
        drive(h1.serve_connection(io, svc), peer, signals).await;
    }
}

/// What the watchdog tells a connection.
enum Signal {
    /// Finish what is in flight, then close (the listener drains, or the idle timeout).
    Close,
    /// Close now.
    Force,
}

/// Watches a connection from a task of its own: the listener draining or forcing, the first
/// request's header deadline (`first_by`: a connection with no complete request by then is
/// closed, which cuts off a half-sent one), and ALB's idle timeout (a whole period without a
/// new request; hyper then closes a connection between requests at once, so a half-sent
/// request on a kept-alive connection is cut off too). One timer per connection, re-armed
/// once a period, instead of hyper's header-read timer armed for every request; and the
/// connection polls one cheap channel on each wake-up instead of two watch channels and a
/// timer. Both costs were measurable on the proxy's hot path.
fn watchdog(
    requests: Arc<AtomicU64>,
    idle: Duration,
    first_by: Option<Duration>,
    mut ends: Ends,
) -> mpsc::UnboundedReceiver<Signal> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut seen = requests.load(Relaxed);
        let mut closing = false;
        let first = tokio::time::sleep(first_by.unwrap_or_default());
        let mut first = std::pin::pin!(first);
        let mut first_pending = first_by.is_some();
        loop {
            tokio::select! {
                () = &mut first, if first_pending => {
                    first_pending = false;
                    if requests.load(Relaxed) == 0 {
                        let _ = tx.send(Signal::Force);
                        return;
                    }
                }
                _ = ends.force.changed() => {
                    let _ = tx.send(Signal::Force);
                    return;
                }
                _ = ends.drain.changed(), if !closing => {
                    closing = true;
                    let _ = tx.send(Signal::Close);
                }
                () = tokio::time::sleep(idle), if !closing => {
                    let now = requests.load(Relaxed);
                    if now == seen {
                        closing = true;
                        let _ = tx.send(Signal::Close);
                    }
                    seen = now;
                }
                () = tx.closed() => return, // the connection has ended
            }
        }
    });
    rx
}

/// Runs a connection to its end, closing it as the watchdog says.
async fn drive<C>(conn: C, peer: SocketAddr, mut signals: mpsc::UnboundedReceiver<Signal>)
where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    loop {
        tokio::select! {
            biased; // no random branch order: this runs on every poll
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            signal = signals.recv() => match signal {
                Some(Signal::Close) => conn.as_mut().graceful_shutdown(),
                Some(Signal::Force) | None => return,
            }
        }
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
