//! Whether etcd takes writes: its NOSPACE alarm.
//!
//! When etcd's backend reaches `--quota-backend-bytes` (or its disk fills), it raises the
//! NOSPACE alarm and from then on refuses every write (`mvcc: database space exceeded`)
//! while still serving reads and deletes, until an operator compacts, defragments and
//! disarms the alarm. berth answers writes with a ServerException that says so, and
//! [`Store::healthy`](crate::Store::healthy) turns false so `GET /ping` answers 503.
//!
//! Two sources keep the flag true to etcd: a txn refused for space sets it at once, and a
//! watcher task asks etcd for its alarm list every [`ALARM_PERIOD`] and sets or clears it
//! (so `/ping` turns healthy again once the alarm is disarmed, without waiting for a write).
//! The decisions are the pure [`refused_for_space`] and [`nospace_raised`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{AlarmAction, AlarmType, Client};

/// How often the watcher asks etcd for its alarms.
const ALARM_PERIOD: Duration = Duration::from_secs(1);
/// How long one alarm request may take; a member that does not answer leaves the flag as is
/// (unreachability is the request deadline's business, not a space fault).
const ALARM_TIMEOUT: Duration = Duration::from_secs(2);

/// The shared "etcd refuses writes for space" flag and the task that keeps it current.
#[derive(Debug)]
pub(crate) struct Space {
    full: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Space {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Space {
    /// Starts watching `client`'s alarms (inside a Tokio runtime).
    pub(crate) fn start(client: &Client) -> Self {
        let full = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(watch(client.maintenance_client(), Arc::clone(&full)));
        Self { full, task }
    }

    /// Whether etcd takes writes, as far as berth knows.
    pub(crate) fn has_room(&self) -> bool {
        !self.full.load(Ordering::Relaxed)
    }

    /// A txn was refused for space (or committed, which clears the flag).
    pub(crate) fn set_full(&self, full: bool) {
        if self.full.swap(full, Ordering::Relaxed) != full {
            if full {
                tracing::error!("etcd is out of space (NOSPACE alarm): writes are refused");
            } else {
                tracing::info!("etcd takes writes again");
            }
        }
    }
}

async fn watch(mut maintenance: etcd_client::MaintenanceClient, full: Arc<AtomicBool>) {
    loop {
        let asked = tokio::time::timeout(
            ALARM_TIMEOUT,
            maintenance.alarm(AlarmAction::Get, AlarmType::None, None),
        )
        .await;
        if let Ok(Ok(resp)) = asked {
            let raised = nospace_raised(resp.alarms().iter().map(|a| a.alarm()));
            if full.swap(raised, Ordering::Relaxed) != raised {
                if raised {
                    tracing::error!("etcd raised its NOSPACE alarm: writes are refused");
                } else {
                    tracing::info!("etcd's NOSPACE alarm is gone: writes are taken again");
                }
            }
        }
        tokio::time::sleep(ALARM_PERIOD).await;
    }
}

/// Whether any of etcd's raised alarms is NOSPACE.
pub(crate) fn nospace_raised(alarms: impl IntoIterator<Item = AlarmType>) -> bool {
    alarms.into_iter().any(|a| a == AlarmType::Nospace)
}

/// Whether etcd refused a request because it is out of space (`ErrGRPCNoSpace`: code
/// ResourceExhausted, "etcdserver: mvcc: database space exceeded"). Such a write was not
/// applied.
pub(crate) fn refused_for_space(e: &etcd_client::Error) -> bool {
    e.to_string().contains("database space exceeded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_nospace_alarm_means_full() {
        assert!(!nospace_raised([]));
        assert!(!nospace_raised([AlarmType::Corrupt]));
        assert!(nospace_raised([AlarmType::Corrupt, AlarmType::Nospace]));
    }

    #[test]
    fn the_space_error_is_recognised_by_etcds_text() {
        let status = tonic::Status::resource_exhausted("etcdserver: mvcc: database space exceeded");
        assert!(refused_for_space(&etcd_client::Error::GRpcStatus(status)));
        let other = tonic::Status::resource_exhausted("etcdserver: too many requests");
        assert!(!refused_for_space(&etcd_client::Error::GRpcStatus(other)));
    }
}
