//! Keeps members that refuse connections out of the etcd client's balanced channel.
//!
//! etcd-client spreads requests over every endpoint it was given (tonic's balanced channel)
//! and keeps picking one whose member has died: each such pick fails at once with a connect
//! error, so with one member of three down about a third of berth's store calls would fail
//! (the faults suite saw clients get errors through boto3's retries). A prober task dials
//! every member each [`PROBE_PERIOD`] and removes from the channel those that refuse, and
//! puts them back once they accept again; requests retry the few connect errors that happen
//! before the prober notices (see `bounded` in the parent module). The decision is the pure
//! [`plan`]; the task only dials and applies it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::Client;

/// How often every member is dialled.
const PROBE_PERIOD: Duration = Duration::from_millis(500);
/// How long one dial may take before the member counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// A change to the channel's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Take endpoint `i` out: its member refuses connections.
    Remove(usize),
    /// Put endpoint `i` back: its member accepts again.
    Insert(usize),
}

/// What to change given which members accept now (`up`) and which endpoints are out of the
/// channel (`removed`). When no member accepts, nothing changes: an empty channel would only
/// turn "unreachable" into a hang, and the request deadline already bounds the wait.
pub(crate) fn plan(up: &[bool], removed: &HashSet<usize>) -> Vec<Change> {
    if !up.iter().any(|&u| u) {
        return Vec::new();
    }
    up.iter()
        .enumerate()
        .filter_map(|(i, &u)| match (u, removed.contains(&i)) {
            (false, false) => Some(Change::Remove(i)),
            (true, true) => Some(Change::Insert(i)),
            _ => None,
        })
        .collect()
}

/// The running prober; dropping the last clone of the store stops it.
#[derive(Debug)]
pub(crate) struct Prober(tokio::task::JoinHandle<()>);

impl Drop for Prober {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts probing `endpoints` (`host:port`, as given to `client` with an `http://` prefix).
/// With a single endpoint there is nothing to fail over to: no prober.
pub(crate) fn start(client: &Client, endpoints: &[String]) -> Option<Arc<Prober>> {
    if endpoints.len() < 2 {
        return None;
    }
    let client = client.clone();
    let endpoints = endpoints.to_vec();
    Some(Arc::new(Prober(tokio::spawn(async move {
        let mut removed = HashSet::new();
        let mut tick = tokio::time::interval(PROBE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let up = futures::future::join_all(endpoints.iter().map(|e| accepts(e))).await;
            for change in plan(&up, &removed) {
                apply(&client, &endpoints, change, &mut removed).await;
            }
        }
    }))))
}

async fn accepts(endpoint: &str) -> bool {
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(endpoint)).await,
        Ok(Ok(_))
    )
}

async fn apply(
    client: &Client,
    endpoints: &[String],
    change: Change,
    removed: &mut HashSet<usize>,
) {
    let (i, result) = match change {
        Change::Remove(i) => (
            i,
            client
                .remove_endpoint(format!("http://{}", endpoints[i]))
                .await,
        ),
        Change::Insert(i) => (
            i,
            client
                .add_endpoint(format!("http://{}", endpoints[i]))
                .await,
        ),
    };
    match result {
        Ok(()) => {
            tracing::warn!(member = %endpoints[i], ?change, "etcd member endpoint changed");
            if matches!(change, Change::Remove(_)) {
                removed.insert(i);
            } else {
                removed.remove(&i);
            }
        }
        Err(e) => tracing::warn!(member = %endpoints[i], error = %e, "changing etcd endpoints"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_that_refuses_is_removed_and_put_back_when_it_accepts() {
        let none = HashSet::new();
        assert_eq!(plan(&[true, false, true], &none), vec![Change::Remove(1)]);
        let out: HashSet<usize> = [1].into();
        assert_eq!(plan(&[true, false, true], &out), vec![]);
        assert_eq!(plan(&[true, true, true], &out), vec![Change::Insert(1)]);
        assert_eq!(plan(&[true, true], &none), vec![]);
    }

    #[test]
    fn when_no_member_accepts_nothing_changes() {
        assert_eq!(plan(&[false, false, false], &HashSet::new()), vec![]);
        let out: HashSet<usize> = [0].into();
        assert_eq!(plan(&[false, false], &out), vec![]);
    }
}
