//! Optional thread-per-core serving, the way nginx runs one event loop per worker.
//!
//! On a multi-threaded tokio runtime, a proxied request hops between the client connection's
//! task, the pooled upstream connection's task and back, often across threads; profiling
//! showed a quarter of the CPU going to those wake-ups. With `DataPlaneOptions::workers = N`
//! each of N threads runs a single-threaded runtime accepting on its own descriptor of each
//! listener's one socket (bound exclusively: no `SO_REUSEPORT`) and its own upstream pools, so a request never leaves its thread. Health checks
//! and `apply` stay on the caller's runtime.

use std::cell::Cell;
use std::net::SocketAddr;

use tokio::net::TcpSocket;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// The index of the worker running the current thread (0 off worker threads).
pub(crate) fn current() -> usize {
    WORKER.with(Cell::get)
}

/// Dedicated serving threads; they stop when this is dropped.
pub(crate) struct Workers {
    handles: Vec<Handle>,
    _stops: Vec<oneshot::Sender<()>>,
}

impl Workers {
    /// Starts `n` worker threads; fewer if a thread or runtime cannot be created.
    pub fn start(n: usize) -> Self {
        let mut handles = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        for i in 0..n {
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name(format!("berth-lb-{i}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(i));
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot start a load balancer worker");
                            return;
                        }
                    };
                    let _ = handle_tx.send(rt.handle().clone());
                    let _ = rt.block_on(stop_rx);
                });
            if spawned.is_err() {
                break;
            }
            match handle_rx.recv() {
                Ok(h) => {
                    handles.push(h);
                    stops.push(stop_tx);
                }
                Err(_) => break,
            }
        }
        Self {
            handles,
            _stops: stops,
        }
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }
}

/// Binds one listening socket on `addr` (port 0 picks one) and hands each of the `n` workers
/// its own descriptor for it (`dup`), as std listeners so each can be registered with its
/// own worker's runtime. The bind is exclusive: no `SO_REUSEPORT`, so another process cannot
/// bind the same port beside berth and silently take a share of its connections.
/// (`SO_REUSEADDR` only lets a restarted berth bind over connections left in TIME_WAIT.)
pub(crate) fn bind_shared(
    addr: SocketAddr,
    n: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    let s = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    let first = s.listen(1024)?.into_std()?;
    let mut out = Vec::with_capacity(n.max(1));
    for _ in 1..n.max(1) {
        out.push(first.try_clone()?);
    }
    out.push(first);
    Ok(out)
}

#[cfg(test)]
mod bind_tests {
    use super::*;

    #[test]
    fn a_listener_binds_exclusively_and_every_worker_gets_a_descriptor() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let socks = bind_shared("127.0.0.1:0".parse().unwrap(), 3).unwrap();
            assert_eq!(socks.len(), 3);
            let addr = socks[0].local_addr().unwrap();
            assert!(socks.iter().all(|s| s.local_addr().unwrap() == addr));
            // Another process asking to share the port (as SO_REUSEPORT would allow) is refused.
            let intruder = TcpSocket::new_v4().unwrap();
            intruder.set_reuseaddr(true).unwrap();
            intruder.set_reuseport(true).unwrap();
            assert!(intruder.bind(addr).is_err(), "a second socket bound {addr}");
            assert!(bind_shared(addr, 2).is_err());
        });
    }
}
