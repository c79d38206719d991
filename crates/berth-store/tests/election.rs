//! Leader election and fencing on a real etcd: exactly one of two replicas leads; when the
//! leader goes away (its campaign stops and its lease lapses, or it resigns, or its key is
//! deleted under it) the other takes over; and a deposed leader's fenced writes are refused
//! as `Fenced` while the new leader's go through.

mod support {
    pub mod etcd;
}

use std::sync::Arc;
use std::time::Duration;

use berth_store::{Election, EtcdStore, Leadership, Store, StoreError, Txn, TxnResult, LEADER_KEY};
use support::etcd::Cluster;

/// Every test's whole run is bounded by this.
const TEST_DEADLINE: Duration = Duration::from_secs(90);
/// How long a condition may take to come true (a lease is 3 s).
const WAIT: Duration = Duration::from_secs(20);

fn run<F: std::future::Future<Output = ()>>(f: F) {
    support::etcd::run_within(TEST_DEADLINE, f);
}

/// Waits until `election`'s leadership satisfies `cond`, and returns it.
async fn until(election: &Election, cond: impl Fn(&Leadership) -> bool) -> Leadership {
    let mut rx = election.subscribe();
    let seen = tokio::time::timeout(WAIT, rx.wait_for(|l| cond(l)))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no such leadership within {WAIT:?}: {:?}",
                election.current()
            )
        })
        .expect("the election runs")
        .clone();
    seen
}

async fn replica(url: &str) -> Arc<dyn Store> {
    Arc::new(EtcdStore::connect_url(url).await.expect("connect"))
}

/// Two replicas campaign; returns (leader's index, its term).
async fn one_leader(elections: &[&Election]) -> (usize, u64) {
    let first = until(elections[0], |l| l.leader.is_some()).await;
    let leader = first.leader.clone().expect("a leader");
    for e in elections {
        let seen = until(e, |l| l.leader.as_deref() == Some(&leader)).await;
        assert_eq!(seen.term, first.term, "every replica sees the same term");
    }
    let leading: Vec<usize> = (0..elections.len())
        .filter(|&i| elections[i].current().is_leader)
        .collect();
    assert_eq!(leading.len(), 1, "exactly one leader: {leading:?}");
    (leading[0], first.term)
}

async fn write(store: &dyn Store, key: &str) -> Result<TxnResult, StoreError> {
    store.txn(Txn::new().put(key, b"v".to_vec())).await
}

#[test]
fn a_lapsed_leader_is_replaced_and_its_fenced_writes_fail() {
    let Some(cluster) = Cluster::start(1) else {
        return;
    };
    let url = cluster.url("lapse");
    run(async {
        let stores = [replica(&url).await, replica(&url).await];
        let mut elections = [Some(stores[0].elect("a")), Some(stores[1].elect("b"))];
        let (old, term) = {
            let refs: Vec<&Election> = elections.iter().flatten().collect();
            one_leader(&refs).await
        };
        let new = 1 - old;
        let old_election = elections[old].take().expect("running");
        let deposed = old_election.fence(stores[old].clone(), term);
        assert!(matches!(
            write(&*deposed, "svc/1").await,
            Ok(TxnResult::Committed { .. })
        ));
        // The leader stops (as if stopped or killed): its lease lapses, the other leads.
        drop(old_election);
        let successor = elections[new].as_ref().expect("running");
        let now = until(successor, |l| l.is_leader).await;
        assert!(now.term > term, "a new term: {} after {term}", now.term);
        let fenced = successor.fence(stores[new].clone(), now.term);
        assert!(matches!(
            write(&*deposed, "svc/2").await,
            Err(StoreError::Fenced { term: t }) if t == term
        ));
        assert!(matches!(
            write(&*fenced, "svc/2").await,
            Ok(TxnResult::Committed { .. })
        ));
        assert!(stores[0].get("svc/2").await.expect("get").is_some());
    });
}

#[test]
fn a_resigning_leader_hands_over_and_a_lost_key_deposes_at_once() {
    let Some(cluster) = Cluster::start(1) else {
        return;
    };
    let url = cluster.url("resign");
    run(async {
        let stores = [replica(&url).await, replica(&url).await];
        let mut elections = [Some(stores[0].elect("a")), Some(stores[1].elect("b"))];
        let (first, _) = {
            let refs: Vec<&Election> = elections.iter().flatten().collect();
            one_leader(&refs).await
        };
        let other = 1 - first;
        elections[first]
            .take()
            .expect("running")
            .resign(Duration::from_secs(5))
            .await;
        let successor = elections[other].as_ref().expect("running");
        let led = until(successor, |l| l.is_leader).await;
        // Someone deletes the key under the leader: it steps down, then wins a new term.
        let outside = replica(&url).await;
        outside
            .txn(Txn::new().delete(LEADER_KEY))
            .await
            .expect("delete");
        let again = until(successor, |l| l.is_leader && l.term > led.term).await;
        assert_eq!(
            again.leader.as_deref(),
            Some(successor.current().replica.as_str())
        );
    });
}
