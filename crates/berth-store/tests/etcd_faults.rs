//! The etcd backend when members misbehave: a member that stops answering (blackholed by a
//! proxy, as a partition or a wedged disk looks from berth) makes requests fail within the
//! backend's deadline instead of hanging, and they succeed again once it answers; a dead
//! member of three is routed around without a request failing.

mod support {
    pub mod etcd;
}

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_store::{EtcdStore, Store, Txn, TxnResult};
use support::etcd::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every test's whole run is bounded by this.
const TEST_DEADLINE: Duration = Duration::from_secs(120);
/// A hang detector, far above the backend's request deadline (5 s): not a timing assertion.
const HANG: Duration = Duration::from_secs(30);

fn run<F: std::future::Future<Output = ()>>(f: F) {
    support::etcd::run_within(TEST_DEADLINE, f);
}

/// A TCP proxy in front of one member. While `cut`, it forwards nothing (connections stay
/// open and silent); `heal` forwards again and drops the connections it held.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (c, g) = (cut.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let (cut, mut healed) = (c.clone(), g.subscribe());
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    tokio::select! {
                        _ = pipe(dr, uw, cut.clone()) => {}
                        _ = pipe(ur, dw, cut) => {}
                        _ = healed.changed() => {} // dropped: both ends see a reset
                    }
                });
            }
        });
        Self {
            port,
            cut,
            generation,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cut: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while cut.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn put(store: &dyn Store, key: &str) -> Result<(), berth_store::StoreError> {
    match store.txn(Txn::new().put(key, b"v".to_vec())).await? {
        TxnResult::Committed { .. } => Ok(()),
        other => panic!("put {key}: {other:?}"),
    }
}

#[test]
fn a_blackholed_member_fails_requests_in_bounded_time_then_recovers() {
    let Some(cluster) = Cluster::start(1) else {
        return;
    };
    let member = cluster.endpoint(0);
    run(async move {
        let proxy = Proxy::start(member).await;
        let store = EtcdStore::connect_url(&format!("etcd://127.0.0.1:{}/hole", proxy.port))
            .await
            .expect("connect");
        put(&store, "k/1").await.expect("put before the cut");

        proxy.cut();
        let got = tokio::time::timeout(HANG, store.get("k/1"))
            .await
            .expect("a get on a blackholed member fails instead of hanging");
        // Failed by the backend's own request deadline (not, much later, by the connection's
        // keep-alive giving up): the error says so.
        let err = got
            .expect_err("no answer from a blackholed member")
            .to_string();
        assert!(err.contains("did not answer within"), "{err}");
        let wrote = tokio::time::timeout(HANG, put(&store, "k/2"))
            .await
            .expect("a txn on a blackholed member fails instead of hanging");
        let err = wrote
            .expect_err("no commit through a blackholed member")
            .to_string();
        assert!(err.contains("did not answer within"), "{err}");

        proxy.heal();
        let deadline = tokio::time::Instant::now() + HANG;
        while store.get("k/1").await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no recovery after heal"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        put(&store, "k/3").await.expect("put after heal");
    });
    drop(cluster);
}

#[test]
fn a_dead_member_of_three_is_routed_around_without_errors() {
    let Some(mut cluster) = Cluster::start(3) else {
        return;
    };
    let url = cluster.url("around");
    let follower = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            // A member that does not lead: killing it forces no election, so every error a
            // request could still see comes from routing to the dead member.
            let mut c =
                etcd_client::Client::connect([format!("http://{}", cluster.endpoint(0))], None)
                    .await
                    .expect("connect");
            let st = c.status().await.expect("status");
            let leader = st.leader();
            let me = st.header().expect("header").member_id();
            usize::from(leader == me)
        })
    };
    run(async {
        let store = EtcdStore::connect_url(&url).await.expect("connect");
        put(&store, "k/before").await.expect("put before the kill");
        cluster.kill(follower);
        for i in 0..60 {
            put(&store, &format!("k/{i}"))
                .await
                .unwrap_or_else(|e| panic!("put {i} with one member dead: {e}"));
            store.get(&format!("k/{i}")).await.expect("get");
        }
        let (kvs, _) = store.list("k/").await.expect("list");
        assert_eq!(kvs.len(), 61);
    });
    drop(cluster);
}
