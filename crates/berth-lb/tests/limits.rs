//! A listener's connection limits: the first request's header deadline, the load balancer's
//! own idle timeout, and the connection caps in total and per client address.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use berth_lb::{Config, ConnectionCaps, DataPlane, DataPlaneOptions};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn connect_from(source: &str, lb: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{source}:0").parse().unwrap()).unwrap();
    s.connect(lb).await.unwrap()
}

/// Reads until the server closes the connection (EOF or reset), within a generous deadline;
/// returns what was read, or `None` if it stayed open.
async fn read_until_closed(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = async {
        let mut b = [0u8; 1024];
        loop {
            match s.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()?;
    Some(got)
}

async fn plane(opts: DataPlaneOptions, idle: Option<Duration>) -> (DataPlane, SocketAddr, Backend) {
    let a = Backend::start("a").await;
    let dp = DataPlane::with_options(opts);
    let mut l = listener("l", forward("tg"));
    l.idle_timeout = idle;
    let lb = start(
        &dp,
        Config {
            listeners: vec![l],
            target_groups: vec![group("tg", &[&a], no_health())],
        },
    )
    .await;
    (dp, lb, a)
}

#[tokio::test]
async fn a_half_sent_request_is_cut_off() {
    let (dp, lb, _a) = plane(
        DataPlaneOptions {
            header_read_timeout: Duration::from_millis(300),
            ..fast_opts()
        },
        Some(Duration::from_secs(60)),
    )
    .await;
    let mut s = connect_from("127.0.0.1", lb).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: lb\r\nX-Slow: ")
        .await
        .unwrap();
    let got = read_until_closed(&mut s).await;
    assert_eq!(got, Some(vec![]), "a slow-loris request was kept open");
    // A whole request on a fresh connection is still served.
    assert_eq!(get(&client(), lb, "/").await.unwrap().0, 200);
    dp.shutdown().await;
}

#[tokio::test]
async fn the_listener_keeps_its_load_balancers_idle_timeout() {
    // The plane's default is long; the listener's own (the LB attribute) is short.
    let (dp, lb, _a) = plane(
        DataPlaneOptions {
            idle_timeout: Duration::from_secs(600),
            ..fast_opts()
        },
        Some(Duration::from_millis(300)),
    )
    .await;
    let mut s = connect_from("127.0.0.1", lb).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: lb\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut s)
        .await
        .expect("an idle keep-alive connection stayed open");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    dp.shutdown().await;
}

#[tokio::test]
async fn connection_caps_close_the_excess_and_let_others_in() {
    let (dp, lb, _a) = plane(
        DataPlaneOptions {
            connection_caps: Some(ConnectionCaps {
                max_connections: 6,
                max_per_address: 3,
            }),
            header_read_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(600),
            ..fast_opts()
        },
        None,
    )
    .await;
    // One peer holds its share of idle connections, and keeps trying for more.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.2", lb).await);
    }
    for _ in 0..5 {
        let mut extra = connect_from("127.0.0.2", lb).await;
        assert!(
            read_until_closed(&mut extra).await.is_some(),
            "a connection over the per-address cap was kept"
        );
    }
    // Another address is served meanwhile.
    assert_eq!(get(&client(), lb, "/").await.unwrap().0, 200);
    eventually("the served client's connection to close", || async {
        metric(&dp, "berth_lb_open_connections") == 3
    })
    .await;

    // A third address fills the total; then nobody else gets in...
    for _ in 0..3 {
        held.push(connect_from("127.0.0.3", lb).await);
    }
    let mut over = connect_from("127.0.0.1", lb).await;
    assert!(
        read_until_closed(&mut over).await.is_some(),
        "a connection over the total cap was kept"
    );
    // ...until a slot is given back.
    held.truncate(5);
    eventually("a closed connection's slot to be given back", || async {
        get(&client(), lb, "/").await.is_ok_and(|(s, _)| s == 200)
    })
    .await;
    assert!(metric(&dp, "berth_lb_rejected_connections_total") >= 6);
    dp.shutdown().await;
}

fn metric(dp: &DataPlane, name: &str) -> u64 {
    let mut metrics = String::new();
    dp.render_metrics(&mut metrics);
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}
