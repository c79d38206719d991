//! Leader election on etcd: a lease-backed key, created only if absent.
//!
//! A campaign grants a lease of [`LEASE_TTL`] and puts [`LEADER_KEY`] = replica id with it,
//! in a txn that only applies if the key does not exist (`create_revision == 0`). The winner's
//! term is the revision of that put. While leading, the replica sends a keepalive every
//! TTL/3 and steps down *at once* (publishing `is_leader: false` before anything else) when:
//! no keepalive has been acknowledged in time (it steps down [`SAFETY_MARGIN`] before etcd
//! could expire the lease, timed from when the acknowledged keepalive was *sent*, so never
//! after etcd's own expiry), etcd says the lease is gone (TTL 0), or the key was deleted or
//! rewritten. Followers watch the key and campaign as soon as it is deleted (its lease
//! expired, or the leader resigned), re-reading it every TTL/3 as a safety net for a missed
//! event. After kill -9 of the leader the key goes when its lease expires, so a follower
//! leads within about one TTL.
//!
//! The etcd project ships the same recipe (`concurrency.Election`); it is written here
//! rather than taken from etcd-client's election API because that API leaves the keepalive,
//! the step-down timing and the term to the caller, which are the whole of the problem.

use std::collections::VecDeque;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, TxnOp, TxnOpResponse};
use futures::StreamExt;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::from_etcd_rev;
use crate::election::{Election, Leadership, LEADER_KEY};
use crate::store::Store;
use crate::types::EventKind;

/// The leader's lease: a killed leader is replaced within about this long.
pub const LEASE_TTL: Duration = Duration::from_secs(3);
/// A leader steps down this long before etcd could expire its lease.
const SAFETY_MARGIN: Duration = Duration::from_millis(500);
/// The pause before campaigning again after an error talking to etcd.
const RETRY: Duration = Duration::from_millis(250);

type Resign = oneshot::Receiver<oneshot::Sender<()>>;

pub(super) fn start(store: super::EtcdStore, replica: &str) -> Election {
    let (tx, rx) = watch::channel(Leadership::none(replica));
    let (resign_tx, resign_rx) = oneshot::channel();
    let campaign = Campaign {
        store,
        replica: replica.to_owned(),
        state: tx,
    };
    let task = tokio::spawn(campaign.run(resign_rx));
    Election::campaigning(rx, resign_tx, task)
}

struct Campaign {
    store: super::EtcdStore,
    replica: String,
    state: watch::Sender<Leadership>,
}

/// How a term of leadership, or a wait as follower, ended.
enum Ended {
    /// Campaign again (possibly after a pause).
    Again,
    /// Resigned; acknowledge and stop.
    Resigned(oneshot::Sender<()>),
}

impl Campaign {
    async fn run(self, mut resign: Resign) {
        loop {
            let ended = match self.campaign_once().await {
                Ok(Some((lease, term))) => self.lead(lease, term, &mut resign).await,
                Ok(None) => self.follow(&mut resign).await,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: etcd failed; retrying");
                    self.publish(None, false, 0);
                    tokio::select! {
                        r = &mut resign => r.map_or(Ended::Again, Ended::Resigned),
                        _ = tokio::time::sleep(RETRY) => Ended::Again,
                    }
                }
            };
            if let Ended::Resigned(done) = ended {
                self.publish(None, false, 0);
                let _ = done.send(());
                return;
            }
        }
    }

    fn publish(&self, leader: Option<String>, is_leader: bool, term: u64) {
        let next = Leadership {
            replica: self.replica.clone(),
            leader,
            is_leader,
            term,
        };
        self.state.send_if_modified(|now| {
            let changed = *now != next;
            *now = next;
            changed
        });
    }

    fn client(&self) -> Client {
        self.store.client.clone()
    }

    fn key(&self) -> String {
        self.store.full_key(LEADER_KEY)
    }

    /// One attempt: `Some((lease, term))` if this replica now leads, `None` if another does
    /// (then published as the leader).
    async fn campaign_once(&self) -> Result<Option<(i64, u64)>, etcd_client::Error> {
        let mut client = self.client();
        let ttl = i64::try_from(LEASE_TTL.as_secs()).unwrap_or(3);
        let lease = client.lease_grant(ttl, None).await?.id();
        let txn = etcd_client::Txn::new()
            .when(vec![Compare::create_revision(
                self.key(),
                CompareOp::Equal,
                0,
            )])
            .and_then(vec![TxnOp::put(
                self.key(),
                self.replica.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else(vec![TxnOp::get(self.key(), None)]);
        let resp = match client.txn(txn).await {
            Ok(resp) => resp,
            Err(e) => {
                let _ = client.lease_revoke(lease).await;
                return Err(e);
            }
        };
        if resp.succeeded() {
            let term = resp.header().map_or(0, |h| from_etcd_rev(h.revision()));
            return Ok(Some((lease, term)));
        }
        let _ = client.lease_revoke(lease).await;
        let holder = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(get) => get.kvs().first().map(|kv| {
                (
                    String::from_utf8_lossy(kv.value()).into_owned(),
                    from_etcd_rev(kv.mod_revision()),
                )
            }),
            _ => None,
        });
        if let Some((leader, term)) = holder {
            self.publish(Some(leader), false, term);
        }
        Ok(None)
    }

    /// Follows the current leader until its key is gone (or changes hands), then returns to
    /// campaign.
    async fn follow(&self, resign: &mut Resign) -> Ended {
        let at = match self.store.revision().await {
            Ok(rev) => rev,
            Err(_) => return pause(resign).await,
        };
        let mut events = self.store.watch(LEADER_KEY, at);
        loop {
            // Re-read on every event and every tick: the key is the truth.
            match self.store.get(LEADER_KEY).await {
                Ok(None) => return Ended::Again,
                Ok(Some(kv)) => self.publish(
                    Some(String::from_utf8_lossy(&kv.value).into_owned()),
                    false,
                    kv.mod_revision,
                ),
                Err(_) => return pause(resign).await,
            }
            tokio::select! {
                r = &mut *resign => return r.map_or(Ended::Again, Ended::Resigned),
                e = events.next() => match e {
                    Some(Ok(ev)) if ev.kind == EventKind::Delete => return Ended::Again,
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Ended::Again,
                },
                _ = tokio::time::sleep(LEASE_TTL / 3) => {}
            }
        }
    }

    /// Leads at `term` on `lease` until the lease or the key is lost, or resigning.
    async fn lead(&self, lease: i64, term: u64, resign: &mut Resign) -> Ended {
        let granted = Instant::now();
        self.publish(Some(self.replica.clone()), true, term);
        tracing::info!(replica = %self.replica, term, "leading the control plane");
        let ended = self.keep_leading(lease, term, granted, resign).await;
        // Step down before anything else: the controllers stop on this.
        self.publish(None, false, 0);
        tracing::warn!(replica = %self.replica, term, "no longer leading");
        let mut client = self.client();
        let _ = tokio::time::timeout(LEASE_TTL, client.lease_revoke(lease)).await;
        ended
    }

    async fn keep_leading(
        &self,
        lease: i64,
        term: u64,
        granted: Instant,
        resign: &mut Resign,
    ) -> Ended {
        let mut client = self.client();
        let Ok((mut keeper, mut acks)) = client.lease_keep_alive(lease).await else {
            return Ended::Again;
        };
        let mut valid_until = granted + LEASE_TTL - SAFETY_MARGIN;
        let mut sent: VecDeque<Instant> = VecDeque::new();
        let mut next = Instant::now() + LEASE_TTL / 3;
        let mut events = self.store.watch(LEADER_KEY, term);
        loop {
            tokio::select! {
                r = &mut *resign => return r.map_or(Ended::Again, Ended::Resigned),
                _ = tokio::time::sleep_until(valid_until) => return Ended::Again,
                _ = tokio::time::sleep_until(next) => {
                    sent.push_back(Instant::now());
                    if keeper.keep_alive().await.is_err() {
                        return Ended::Again;
                    }
                    next += LEASE_TTL / 3;
                }
                ack = acks.message() => match ack {
                    Ok(Some(r)) if r.ttl() > 0 => {
                        if let Some(at) = sent.pop_front() {
                            valid_until = valid_until.max(at + LEASE_TTL - SAFETY_MARGIN);
                        }
                    }
                    _ => return Ended::Again,
                },
                e = events.next() => match e {
                    Some(Ok(ev)) if ev.kind == EventKind::Delete || ev.kv.mod_revision != term => {
                        return Ended::Again
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Ended::Again,
                },
            }
        }
    }
}

async fn pause(resign: &mut Resign) -> Ended {
    tokio::select! {
        r = resign => r.map_or(Ended::Again, Ended::Resigned),
        _ = tokio::time::sleep(RETRY) => Ended::Again,
    }
}
