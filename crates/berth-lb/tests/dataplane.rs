//! The data plane end to end: real listeners and backends on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use berth_lb::{
    Action, Algorithm, Condition, Config, DataPlane, DataPlaneOptions, RuleConfig, TargetConfig,
    TargetState,
};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use support::*;

async fn tally(c: &HttpClient, lb: std::net::SocketAddr, n: usize) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for _ in 0..n {
        let (status, body) = get(c, lb, "/").await.unwrap();
        assert_eq!(status, 200, "{body}");
        *m.entry(body).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn round_robin_spreads_evenly() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let dp = DataPlane::with_options(fast_opts());
    let lb = start(
        &dp,
        Config {
            listeners: vec![listener("l", forward("tg"))],
            target_groups: vec![group("tg", &[&a, &b, &c], no_health())],
        },
    )
    .await;
    let counts = tally(&client(), lb, 30).await;
    assert_eq!(counts.get("a"), Some(&10), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&10), "{counts:?}");
    assert_eq!(counts.get("c"), Some(&10), "{counts:?}");
    assert_eq!(dp.request_counts().get("tg"), Some(&30));
    let h = dp.health();
    assert!(h["tg"]
        .iter()
        .all(|t| t.state == TargetState::Unused && t.reason == Some("Target.HealthCheckDisabled")));
    dp.shutdown().await;
}

#[tokio::test]
async fn a_target_that_refuses_the_connection_costs_no_request() {
    // A task stopped between two health checks: its port refuses, the request goes on.
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let dp = DataPlane::with_options(fast_opts());
    let mut tg = group("tg", &[&a, &b], no_health());
    tg.targets.insert(
        1,
        TargetConfig {
            id: "gone".into(),
            addr: dead_addr().await,
        },
    );
    let lb = start(
        &dp,
        Config {
            listeners: vec![listener("l", forward("tg"))],
            target_groups: vec![tg],
        },
    )
    .await;
    let counts = tally(&client(), lb, 30).await;
    assert_eq!(counts.values().sum::<usize>(), 30, "{counts:?}");
    assert_eq!(counts.len(), 2, "only a and b answer: {counts:?}");
    let mut m = String::new();
    dp.render_metrics(&mut m);
    let refused: u64 = m
        .lines()
        .find_map(|l| {
            l.strip_prefix("berth_lb_target_connection_errors_total{target_group=\"tg\"} ")
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{m}"));
    assert!(
        refused >= 5,
        "round robin offered `gone` a third of the requests: {m}"
    );
    dp.shutdown().await;
}

#[tokio::test]
async fn least_outstanding_prefers_the_idle_target() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let dp = DataPlane::with_options(fast_opts());
    let mut tg = group("tg", &[&a, &b], no_health());
    tg.algorithm = Algorithm::LeastOutstandingRequests;
    let lb = start(
        &dp,
        Config {
            listeners: vec![listener("l", forward("tg"))],
            target_groups: vec![tg],
        },
    )
    .await;
    let c = client();
    let slow = tokio::spawn({
        let c = c.clone();
        async move { get(&c, lb, "/slow").await }
    });
    eventually("the slow request reaches a backend", || async {
        a.slow_waiting.load(Ordering::SeqCst) + b.slow_waiting.load(Ordering::SeqCst) == 1
    })
    .await;
    let (busy, idle) = if a.slow_waiting.load(Ordering::SeqCst) == 1 {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let counts = tally(&c, lb, 6).await;
    assert_eq!(counts.get(&idle.id), Some(&6), "{counts:?}");
    busy.release.notify_waiters();
    let (status, body) = slow.await.unwrap().unwrap();
    assert_eq!((status, body.as_str()), (200, busy.id.as_str()));
    dp.shutdown().await;
}

#[tokio::test]
async fn weighted_forward_honours_weights() {
    let (a, b, z) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("z").await,
    );
    let dp = DataPlane::with_options(fast_opts());
    let lb = start(
        &dp,
        Config {
            listeners: vec![listener(
                "l",
                Action::Forward(vec![("ga".into(), 3), ("gb".into(), 1), ("gz".into(), 0)]),
            )],
            target_groups: vec![
                group("ga", &[&a], no_health()),
                group("gb", &[&b], no_health()),
                group("gz", &[&z], no_health()),
            ],
        },
    )
    .await;
    let counts = tally(&client(), lb, 400).await;
    let (na, nb) = (
        counts.get("a").copied().unwrap_or(0),
        counts.get("b").copied().unwrap_or(0),
    );
    assert_eq!(na + nb, 400, "weight 0 is never picked: {counts:?}");
    // Expect 300/100; the bounds are ~7 standard deviations wide.
    assert!((240..=360).contains(&na), "{counts:?}");
    dp.shutdown().await;
}

#[tokio::test]
async fn rules_fixed_response_and_redirect() {
    let (api, web) = (Backend::start("api").await, Backend::start("web").await);
    let dp = DataPlane::with_options(fast_opts());
    let mut l = listener("l", forward("web"));
    l.rules = vec![
        RuleConfig {
            priority: 20,
            conditions: vec![Condition::PathPattern(vec!["/api/*".into()])],
            action: forward("api"),
        },
        RuleConfig {
            priority: 10,
            conditions: vec![Condition::PathPattern(vec!["/api/maintenance*".into()])],
            action: Action::FixedResponse {
                status: 503,
                content_type: Some("application/json".into()),
                body: Some("{\"down\":true}".into()),
            },
        },
        RuleConfig {
            priority: 30,
            conditions: vec![
                Condition::HostHeader(vec!["old.example.com".into()]),
                Condition::Method(vec!["GET".into()]),
            ],
            action: Action::Redirect {
                protocol: Some("HTTPS".into()),
                host: Some("new.example.com".into()),
                port: Some("443".into()),
                path: None,
                query: None,
                status: 301,
            },
        },
    ];
    let lb = start(
        &dp,
        Config {
            listeners: vec![l],
            target_groups: vec![
                group("api", &[&api], no_health()),
                group("web", &[&web], no_health()),
            ],
        },
    )
    .await;
    let c = client();
    assert_eq!(
        get(&c, lb, "/api/users").await.unwrap(),
        (200, "api".into())
    );
    assert_eq!(
        get(&c, lb, "/index.html").await.unwrap(),
        (200, "web".into())
    );
    assert_eq!(
        get(&c, lb, "/api/maintenance").await.unwrap(),
        (503, "{\"down\":true}".into()),
        "the lower priority number wins"
    );

    let req = Request::get(format!("http://{lb}/a/b?x=1"))
        .header("host", "old.example.com:8080")
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), 301);
    assert_eq!(
        resp.headers()["location"],
        "https://new.example.com/a/b?x=1"
    );
    dp.shutdown().await;
}

#[tokio::test]
async fn unhealthy_target_gets_no_traffic_and_all_unhealthy_fails_open() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let dp = DataPlane::with_options(fast_opts());
    let lb = start(
        &dp,
        Config {
            listeners: vec![listener("l", forward("tg"))],
            target_groups: vec![group("tg", &[&a, &b], fast_health())],
        },
    )
    .await;
    assert_eq!(state_of(&dp, "tg", "a"), Some(TargetState::Initial));
    let mut changes = dp.changes();
    eventually("both healthy", || async {
        state_of(&dp, "tg", "a") == Some(TargetState::Healthy)
            && state_of(&dp, "tg", "b") == Some(TargetState::Healthy)
    })
    .await;
    assert!(
        changes.has_changed().unwrap(),
        "health transitions bump changes()"
    );
    changes.borrow_and_update();

    b.health_status.store(500, Ordering::SeqCst);
    eventually("b unhealthy", || async {
        state_of(&dp, "tg", "b") == Some(TargetState::Unhealthy)
    })
    .await;
    let hb = target_health(&dp, "tg", "b").unwrap();
    assert_eq!(hb.reason, Some("Target.ResponseCodeMismatch"));
    assert_eq!(
        hb.description.as_deref(),
        Some("Health checks failed with these codes: [500]")
    );
    assert!(
        b.health_hits.load(Ordering::SeqCst) >= 2 + 2,
        "2 to get healthy, 2 to fail"
    );
    let c = client();
    let counts = tally(&c, lb, 10).await;
    assert_eq!(counts.get("a"), Some(&10), "{counts:?}");

    let mut metrics = String::new();
    dp.render_metrics(&mut metrics);
    assert!(
        metrics.contains("berth_lb_healthy_hosts{target_group=\"tg\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("berth_lb_unhealthy_hosts{target_group=\"tg\"} 1\n"),
        "{metrics}"
    );

    // Fail open: with no healthy target, ALB routes to every registered target.
    a.health_status.store(503, Ordering::SeqCst);
    eventually("a unhealthy", || async {
        state_of(&dp, "tg", "a") == Some(TargetState::Unhealthy)
    })
    .await;
    let counts = tally(&c, lb, 10).await;
    assert_eq!(counts.get("a"), Some(&5), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&5), "{counts:?}");
    dp.shutdown().await;
}

#[tokio::test]
async fn connection_failures_mark_unhealthy() {
    let dead = dead_addr().await;
    let dp = DataPlane::with_options(fast_opts());
    let mut tg = group("tg", &[], fast_health());
    tg.targets.push(TargetConfig {
        id: "dead".into(),
        addr: dead,
    });
    dp.apply(Config {
        listeners: vec![],
        target_groups: vec![tg],
    })
    .await;
    eventually("dead unhealthy", || async {
        state_of(&dp, "tg", "dead") == Some(TargetState::Unhealthy)
    })
    .await;
    assert_eq!(
        target_health(&dp, "tg", "dead").unwrap().reason,
        Some("Target.FailedHealthChecks")
    );
    dp.shutdown().await;
}

#[tokio::test]
async fn draining_finishes_in_flight_and_sends_nothing_new() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let dp = DataPlane::with_options(fast_opts());
    let cfg = |targets: &[&Backend]| Config {
        listeners: vec![listener("l", forward("tg"))],
        target_groups: vec![group("tg", targets, no_health())],
    };
    let lb = start(&dp, cfg(&[&a, &b])).await;
    let c = client();
    let slow = tokio::spawn({
        let c = c.clone();
        async move { get(&c, lb, "/slow").await }
    });
    eventually("slow request in flight", || async {
        a.slow_waiting.load(Ordering::SeqCst) + b.slow_waiting.load(Ordering::SeqCst) == 1
    })
    .await;
    let (busy, idle) = if a.slow_waiting.load(Ordering::SeqCst) == 1 {
        (&a, &b)
    } else {
        (&b, &a)
    };

    let mut changes = dp.changes();
    changes.borrow_and_update();
    assert!(dp.apply(cfg(&[idle])).await.is_empty());
    let h = target_health(&dp, "tg", &busy.id).expect("draining target still listed");
    assert_eq!(h.state, TargetState::Draining);
    assert_eq!(h.reason, Some("Target.DeregistrationInProgress"));

    let busy_hits = busy.hits.load(Ordering::SeqCst);
    let counts = tally(&c, lb, 6).await;
    assert_eq!(counts.get(&idle.id), Some(&6), "{counts:?}");
    assert_eq!(
        busy.hits.load(Ordering::SeqCst),
        busy_hits,
        "no new request to a draining target"
    );

    busy.release.notify_waiters();
    let (status, body) = slow.await.unwrap().unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, busy.id.as_str()),
        "in-flight request completes"
    );
    eventually("drained target leaves health()", || async {
        target_health(&dp, "tg", &busy.id).is_none()
    })
    .await;
    assert!(
        changes.has_changed().unwrap(),
        "drain completion bumps changes()"
    );

    // An idle target deregisters at once.
    assert!(dp.apply(cfg(&[])).await.is_empty());
    assert!(target_health(&dp, "tg", &idle.id).is_none());
    assert_eq!(get(&c, lb, "/").await.unwrap().0, 503, "no targets → 503");
    dp.shutdown().await;
}

#[tokio::test]
async fn re_adding_a_draining_target_cancels_the_drain() {
    let a = Backend::start("a").await;
    let dp = DataPlane::with_options(fast_opts());
    let cfg = |targets: &[&Backend]| Config {
        listeners: vec![listener("l", forward("tg"))],
        target_groups: vec![group("tg", targets, no_health())],
    };
    let lb = start(&dp, cfg(&[&a])).await;
    let c = client();
    let slow = tokio::spawn({
        let c = c.clone();
        async move { get(&c, lb, "/slow").await }
    });
    eventually("slow in flight", || async {
        a.slow_waiting.load(Ordering::SeqCst) == 1
    })
    .await;
    dp.apply(cfg(&[])).await;
    assert_eq!(state_of(&dp, "tg", "a"), Some(TargetState::Draining));
    dp.apply(cfg(&[&a])).await;
    assert_eq!(state_of(&dp, "tg", "a"), Some(TargetState::Unused));
    a.release.notify_waiters();
    assert_eq!(slow.await.unwrap().unwrap().0, 200);
    assert_eq!(get(&c, lb, "/").await.unwrap(), (200, "a".into()));
    assert_eq!(state_of(&dp, "tg", "a"), Some(TargetState::Unused));
    dp.shutdown().await;
}

#[tokio::test]
async fn elb_errors_502_503_504() {
    let a = Backend::start("a").await;
    let dead = dead_addr().await;
    let dp = DataPlane::with_options(DataPlaneOptions {
        idle_timeout: Duration::from_millis(300),
        ..fast_opts()
    });
    let mut l = listener("l", forward("missing"));
    let rule = |p: &str, tg: &str, prio| RuleConfig {
        priority: prio,
        conditions: vec![Condition::PathPattern(vec![p.into()])],
        action: forward(tg),
    };
    l.rules = vec![
        rule("/dead", "dead", 1),
        rule("/slow", "slow", 2),
        rule("/empty", "empty", 3),
    ];
    let mut dead_tg = group("dead", &[], no_health());
    dead_tg.targets.push(TargetConfig {
        id: "dead".into(),
        addr: dead,
    });
    let lb = start(
        &dp,
        Config {
            listeners: vec![l],
            target_groups: vec![
                dead_tg,
                group("slow", &[&a], no_health()),
                group("empty", &[], no_health()),
            ],
        },
    )
    .await;
    let c = client();
    let (status, body) = get(&c, lb, "/dead").await.unwrap();
    assert_eq!(status, 502, "{body}");
    let (status, body) = get(&c, lb, "/slow").await.unwrap();
    assert_eq!(status, 504, "{body}");
    let (status, body) = get(&c, lb, "/empty").await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no registered targets"), "{body}");
    let (status, body) = get(&c, lb, "/other").await.unwrap();
    assert_eq!(status, 503, "unknown target group: {body}");
    a.release.notify_waiters();

    let mut m = String::new();
    dp.render_metrics(&mut m);
    for code in [502, 503, 504] {
        let want = if code == 503 { 2 } else { 1 };
        let line = format!("berth_lb_elb_errors_total{{listener=\"l\",code=\"{code}\"}} {want}\n");
        assert!(m.contains(&line), "missing {line} in\n{m}");
    }
    dp.shutdown().await;
}

#[tokio::test]
async fn forwarded_headers_and_hop_by_hop() {
    let a = Backend::start("a").await;
    let dp = DataPlane::with_options(fast_opts());
    let lb = start(
        &dp,
        Config {
            listeners: vec![listener("l", forward("tg"))],
            target_groups: vec![group("tg", &[&a], no_health())],
        },
    )
    .await;
    let req = Request::get(format!("http://{lb}/headers"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("connection", "keep-alive, x-secret")
        .header("x-secret", "1")
        .header("host", "app.example.com")
        .body(Full::<Bytes>::default())
        .unwrap();
    let (status, body) = send(&client(), req).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("x-forwarded-for: 203.0.113.7, 127.0.0.1\n"),
        "{body}"
    );
    assert!(body.contains("x-forwarded-proto: http\n"), "{body}");
    assert!(
        body.contains(&format!("x-forwarded-port: {}\n", lb.port())),
        "{body}"
    );
    assert!(body.contains("host: app.example.com\n"), "{body}");
    assert!(
        !body.contains("x-secret"),
        "headers named in Connection are stripped: {body}"
    );
    assert!(!body.contains("connection:"), "{body}");
    dp.shutdown().await;
}

#[tokio::test]
async fn h2c_clients_and_h2c_targets() {
    let a = Backend::start("a").await;
    let dp = DataPlane::with_options(fast_opts());
    let mut h2_tg = group("h2", &[&a], no_health());
    h2_tg.http2_to_targets = true;
    let mut l = listener("l", forward("h1"));
    l.rules = vec![RuleConfig {
        priority: 1,
        conditions: vec![Condition::HttpHeader {
            name: "X-Proto".into(),
            values: vec!["h2".into()],
        }],
        action: forward("h2"),
    }];
    let lb = start(
        &dp,
        Config {
            listeners: vec![l],
            target_groups: vec![group("h1", &[&a], no_health()), h2_tg],
        },
    )
    .await;
    let h2 = h2_client();
    let (status, body) = get(&h2, lb, "/headers").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("version: HTTP/1.1"),
        "h2c client, h1 target: {body}"
    );
    assert!(
        body.contains(&format!("host: {lb}")),
        "h2 :authority becomes Host: {body}"
    );
    let req = Request::get(format!("http://{lb}/headers"))
        .header("x-proto", "H2")
        .body(Full::<Bytes>::default())
        .unwrap();
    let (status, body) = send(&h2, req).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("version: HTTP/2.0"),
        "h2c to the target: {body}"
    );
    dp.shutdown().await;
}

#[tokio::test]
async fn closed_keep_alive_connection_is_retried() {
    let addr = closing_backend("k").await;
    let dp = DataPlane::with_options(fast_opts());
    let mut tg = group("tg", &[], no_health());
    tg.targets.push(TargetConfig {
        id: "k".into(),
        addr,
    });
    let lb = start(
        &dp,
        Config {
            listeners: vec![listener("l", forward("tg"))],
            target_groups: vec![tg],
        },
    )
    .await;
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, lb, "/").await.unwrap(), (200, "k".into()));
    }
    dp.shutdown().await;
}

#[tokio::test]
async fn bind_errors_are_per_listener() {
    let a = Backend::start("a").await;
    let dp = DataPlane::with_options(fast_opts());
    let taken = a.addr; // the backend holds this port
    let mut bad = listener("bad", forward("tg"));
    bad.bind = taken;
    let errs = dp
        .apply(Config {
            listeners: vec![listener("l", forward("tg")), bad],
            target_groups: vec![group("tg", &[&a], no_health())],
        })
        .await;
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, "bad");
    let lb = dp.local_addr("l").unwrap();
    assert_eq!(get(&client(), lb, "/").await.unwrap(), (200, "a".into()));

    // Removing the listener closes its port.
    dp.apply(Config {
        listeners: vec![],
        target_groups: vec![],
    })
    .await;
    assert!(dp.local_addr("l").is_none());
    assert!(tokio::net::TcpStream::connect(lb).await.is_err());
    dp.shutdown().await;
}

#[tokio::test]
async fn metrics_render() {
    let a = Backend::start("a").await;
    let dp = DataPlane::with_options(fast_opts());
    let lb = start(
        &dp,
        Config {
            listeners: vec![listener("l", forward("arn:tg/1"))],
            target_groups: vec![group("arn:tg/1", &[&a], no_health())],
        },
    )
    .await;
    let c = client();
    for _ in 0..3 {
        get(&c, lb, "/").await.unwrap();
    }
    let mut m = String::new();
    dp.render_metrics(&mut m);
    for want in [
        "berth_lb_requests_total{listener=\"l\"} 3\n",
        "berth_lb_target_group_requests_total{target_group=\"arn:tg/1\"} 3\n",
        "berth_lb_target_group_responses_total{target_group=\"arn:tg/1\",code=\"2xx\"} 3\n",
        "berth_lb_target_responses_total{target_group=\"arn:tg/1\",target=\"a\",code=\"2xx\"} 3\n",
        "berth_lb_target_response_seconds_count{target_group=\"arn:tg/1\",target=\"a\"} 3\n",
        "berth_lb_target_in_flight{target_group=\"arn:tg/1\",target=\"a\"} 0\n",
        "# TYPE berth_lb_target_group_response_seconds histogram\n",
    ] {
        assert!(m.contains(want), "missing {want:?} in\n{m}");
    }
    dp.shutdown().await;
}

#[tokio::test]
async fn dedicated_workers_serve_h1_and_h2c() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let dp = DataPlane::with_options(DataPlaneOptions {
        workers: 2,
        ..fast_opts()
    });
    let cfg = Config {
        listeners: vec![listener("l", forward("tg"))],
        target_groups: vec![group("tg", &[&a, &b], no_health())],
    };
    let lb = start(&dp, cfg.clone()).await;
    let mut seen = HashMap::new();
    for c in [client(), h2_client()] {
        for (k, v) in tally(&c, lb, 10).await {
            *seen.entry(k).or_insert(0) += v;
        }
    }
    assert_eq!(seen.values().sum::<usize>(), 20, "{seen:?}");
    assert_eq!(seen.len(), 2, "both targets served: {seen:?}");

    // A second listener on the same explicit port is refused, not silently shared.
    let mut dup = listener("dup", forward("tg"));
    dup.bind = lb;
    let mut first = listener("l", forward("tg"));
    first.bind = lb;
    let errs = dp
        .apply(Config {
            listeners: vec![first, dup],
            ..cfg
        })
        .await;
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, "dup", "{errs:?}");
    assert_eq!(
        get(&client(), lb, "/").await.unwrap().0,
        200,
        "l rebound to the explicit port"
    );
    dp.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(lb).await.is_err(),
        "shutdown closes the port"
    );
}

#[tokio::test]
async fn idle_client_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = Backend::start("a").await;
    let dp = DataPlane::with_options(DataPlaneOptions {
        idle_timeout: Duration::from_millis(300),
        ..fast_opts()
    });
    let lb = start(
        &dp,
        Config {
            listeners: vec![listener("l", forward("tg"))],
            target_groups: vec![group("tg", &[&a], no_health())],
        },
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(lb).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: lb\r\n\r\n")
        .await
        .unwrap();
    // The response arrives, then, after one or two idle periods, the end of the stream.
    let mut got = Vec::new();
    let read_to_end = async {
        let mut b = [0u8; 1024];
        loop {
            match s.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(10), read_to_end).await;
    assert!(closed.is_ok(), "an idle keep-alive connection stayed open");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    dp.shutdown().await;
}
