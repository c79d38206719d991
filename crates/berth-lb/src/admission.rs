//! Connection admission: who may hold one of a server's sockets. Shared by the API's accept
//! loop and every load-balancer listener, because the two face the same attack (one peer
//! opening, or endlessly reopening, connections until the process runs out of descriptors)
//! and must split one descriptor limit between them.
//!
//! An [`Admission`] caps open connections in total and per client address; a connection over
//! a cap is closed at once, before any byte is read, so its slot stays free for well-behaved
//! clients and the refused peer sees a reset it can retry. Caps are sized from the process's
//! open-file limit with [`fd_share`], each server taking its own fraction: the API keeps its
//! share however many connections the listeners' clients open, and the reverse.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The caps of one [`Admission`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one client address at most.
    pub max_per_address: usize,
}

/// The soft `Max open files` limit of this process, from `/proc/self/limits` (the workspace
/// allows no `unsafe`, so no `getrlimit`).
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    match soft {
        "unlimited" => Some(1 << 20),
        n => n.parse().ok(),
    }
}

/// Caps for a server given `num / den` of the open-file limit (1024 when unknown), at least
/// 64 connections; a quarter of them (at least 16) per address.
pub fn fd_share(num: u64, den: u64) -> ConnectionCaps {
    caps_for(open_file_limit().unwrap_or(1024), num, den)
}

fn caps_for(fds: u64, num: u64, den: u64) -> ConnectionCaps {
    let max_connections = (fds * num / den.max(1)).clamp(64, 65_536) as usize;
    ConnectionCaps {
        max_connections,
        max_per_address: (max_connections / 4).max(16),
    }
}

/// Counts a server's open connections, in total and per client address.
#[derive(Debug)]
pub struct Admission {
    caps: ConnectionCaps,
    open: Mutex<Open>,
    emptied: Notify,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The server holds `max_connections` already.
    Full,
    /// The client's address holds `max_per_address` already.
    PerAddress,
}

/// An admitted connection's slot, given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// An admission with these caps and nothing open.
    pub fn new(caps: ConnectionCaps) -> Arc<Self> {
        Arc::new(Self {
            caps,
            open: Mutex::new(Open::default()),
            emptied: Notify::new(),
        })
    }

    /// The caps it enforces.
    pub fn caps(&self) -> ConnectionCaps {
        self.caps
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a connection from `ip`, or why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refused> {
        let ip = ip.to_canonical();
        let mut open = self.lock();
        if open.total >= self.caps.max_connections {
            return Err(Refused::Full);
        }
        let n = open.by_address.entry(ip).or_default();
        if *n >= self.caps.max_per_address {
            return Err(Refused::PerAddress);
        }
        *n += 1;
        open.total += 1;
        Ok(Ticket {
            admission: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    /// Resolves once no connection is open.
    pub async fn emptied(&self) {
        loop {
            let notified = self.emptied.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.admission.lock();
        if let Some(n) = open.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.ip);
            }
        }
        open.total = open.total.saturating_sub(1);
        if open.total == 0 {
            self.admission.emptied.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn address_slots_are_capped_and_given_back() {
        let a = Admission::new(ConnectionCaps {
            max_connections: 10,
            max_per_address: 2,
        });
        let first = a.admit(ip("127.0.0.2")).unwrap();
        let _second = a.admit(ip("127.0.0.2")).unwrap();
        assert_eq!(a.admit(ip("127.0.0.2")).unwrap_err(), Refused::PerAddress);
        assert!(
            a.admit(ip("127.0.0.3")).is_ok(),
            "another address is let in"
        );
        drop(first);
        assert!(
            a.admit(ip("127.0.0.2")).is_ok(),
            "a closed slot is given back"
        );
    }

    #[test]
    fn the_total_is_capped_and_v4_mapped_addresses_count_as_v4() {
        let a = Admission::new(ConnectionCaps {
            max_connections: 2,
            max_per_address: 2,
        });
        let x = a.admit(ip("10.0.0.1")).unwrap();
        let _y = a.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(a.admit(ip("10.0.0.2")).unwrap_err(), Refused::Full);
        let one = Admission::new(ConnectionCaps {
            max_connections: 4,
            max_per_address: 1,
        });
        let _z = one.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(
            one.admit(ip("::ffff:10.0.0.1")).unwrap_err(),
            Refused::PerAddress,
            "the mapped form is the same client"
        );
        drop(x);
        assert_eq!(a.open(), 1, "a dropped ticket is given back");
    }

    #[test]
    fn caps_follow_the_descriptor_limit() {
        let c = caps_for(4096, 1, 4);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.max_per_address, 256);
        assert_eq!(caps_for(100, 1, 4).max_connections, 64, "a floor of 64");
        assert!(open_file_limit().is_some());
    }

    #[tokio::test]
    async fn emptied_waits_for_the_last_ticket() {
        let a = Admission::new(ConnectionCaps {
            max_connections: 4,
            max_per_address: 4,
        });
        a.emptied().await;
        let t = a.admit(ip("127.0.0.1")).unwrap();
        let waiter = tokio::spawn({
            let a = a.clone();
            async move { a.emptied().await }
        });
        drop(t);
        waiter.await.unwrap();
    }
}
