//! The load balancer's two parsers at once: a hostile client's HTTP/1 bytes on a listener, and
//! a hostile target's response bytes on the upstream side (status line, headers, framing:
//! Content-Length, chunked, close-delimited, interim responses). Input: the client's bytes, a
//! `\0\0\0` separator, then what the target answers. Neither side may crash the data plane.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use berth_lb::{
    Action, Config, DataPlane, DataPlaneOptions, HealthCheckConfig, ListenerConfig, TargetConfig,
    TargetGroupConfig,
};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Lb {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    reply: Arc<Mutex<Vec<u8>>>,
    _dp: DataPlane,
}

fn lb() -> &'static Lb {
    static LB: OnceLock<Lb> = OnceLock::new();
    LB.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let reply = Arc::new(Mutex::new(Vec::new()));
        let (dp, addr) = rt.block_on(async {
            let target = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let target_addr = target.local_addr().expect("addr");
            let reply = reply.clone();
            tokio::spawn(async move {
                while let Ok((mut s, _)) = target.accept().await {
                    let bytes = reply.lock().expect("lock").clone();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        let _ =
                            tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await;
                        let _ = s.write_all(&bytes).await;
                        let _ = s.shutdown().await;
                    });
                }
            });
            let dp = DataPlane::with_options(DataPlaneOptions {
                idle_timeout: Duration::from_secs(2),
                connect_timeout: Duration::from_secs(1),
                shutdown_timeout: Duration::from_secs(1),
                ..DataPlaneOptions::default()
            });
            let errs = dp
                .apply(Config {
                    listeners: vec![ListenerConfig {
                        id: "l".into(),
                        bind: "127.0.0.1:0".parse().expect("addr"),
                        rules: vec![],
                        default_action: Action::Forward(vec![("tg".into(), 1)]),
                        idle_timeout: None,
                    }],
                    target_groups: vec![TargetGroupConfig {
                        id: "tg".into(),
                        health: HealthCheckConfig {
                            enabled: false,
                            ..HealthCheckConfig::default()
                        },
                        targets: vec![TargetConfig {
                            id: "t".into(),
                            addr: target_addr,
                        }],
                        ..TargetGroupConfig::default()
                    }],
                })
                .await;
            assert!(errs.is_empty(), "{errs:?}");
            let addr = dp.local_addr("l").expect("bound");
            (dp, addr)
        });
        Lb {
            rt,
            addr,
            reply,
            _dp: dp,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (request, reply) = match data.windows(3).position(|w| w == b"\0\0\0") {
        Some(i) => (&data[..i], &data[i + 3..]),
        None => (data, &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"[..]),
    };
    let lb = lb();
    *lb.reply.lock().expect("lock") = reply.to_vec();
    let request = request.to_vec();
    lb.rt.block_on(async move {
        let Ok(mut s) = TcpStream::connect(lb.addr).await else {
            return;
        };
        let _ = s.write_all(&request).await;
        let _ = s.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut sink)).await;
    });
});
