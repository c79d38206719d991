//! API throughput benchmark: N keep-alive clients against the real router, for
//! DescribeTaskDefinition and RegisterTaskDefinition, with `GET /ping` as the baseline.
//!
//! ```sh
//! cargo run --release -p berth --example api_bench [-- --clients 32 --seconds 5]
//! ```
//!
//! The server is berth's own router (`berth_api::router`) on a durable redb store in a temp
//! file (fsync per group commit, as `berth server` runs it), served on 127.0.0.1 by this same
//! process. Each client holds one HTTP/1.1 keep-alive connection for the whole run and has one
//! request in flight at a time, signing every ECS request with SigV4 just before sending it
//! (signing is the client's cost, and the clients share the machine's cores with the server).
//! Figures: requests per second, p50 and p99 latency (send to last body byte) and errors
//! (non-200 answers or transport failures).
//!
//! Machines are noisy, so every figure is also given as a ratio to a baseline measured in the
//! same run, `GET /ping` (no authentication, no store: the HTTP stack and the clients
//! themselves), and the three actions are interleaved in short slices (`--slice`, 1 s) round
//! after round (rotating the order) until each has run `--seconds`: a burst of load from
//! elsewhere hits all three alike. The spread of the per-round ratios shows the noise.
//!
//! Describe asks for a bare family name (the latest ACTIVE revision, what
//! `aws ecs describe-task-definition --task-definition web` sends) of a family seeded with
//! `--revisions` revisions. Register rotates over `--families` families so revisions grow.
//! Afterwards the server is shut down, the store file is reopened and every acknowledged
//! registration is looked for in it: durability is the point.
//!
//! `--etcd etcd://127.0.0.1:2379` runs the whole measurement a second time on that etcd (in a
//! fresh namespace) and prints etcd's figures as ratios to redb's from the same run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use berth_api::{router, ApiState, KeyRing, Ops, OpsConfig};
use berth_model::{keys, SystemClock};
use berth_sigv4::{sign, Credentials, Request as SigRequest};
use berth_store::{EtcdStore, RedbStore, Store, StoreExt};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

type Error = Box<dyn std::error::Error + Send + Sync>;

const AK: &str = "AKIABENCHBENCHBENCH0";
const SK: &str = "benchsecretbenchsecretbenchsecret0000000";
const REGION: &str = "us-east-1";
const ECS: &str = "AmazonEC2ContainerServiceV20141113.";
const JSON_11: &str = "application/x-amz-json-1.1";
const DESCRIBE_FAMILY: &str = "bench-describe";
/// Warm-up per action before the measured rounds (connections, caches, the store file).
const WARMUP: Duration = Duration::from_millis(300);

struct Args {
    clients: usize,
    /// Measured seconds per action.
    seconds: f64,
    /// Length of one slice of one action.
    slice: f64,
    families: usize,
    revisions: u32,
    /// Run only this action (ping, describe, register), for profiling.
    only: Option<String>,
    /// Also measure on this etcd (`etcd://host:port`), after redb.
    etcd: Option<String>,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        clients: 32,
        seconds: 5.0,
        slice: 1.0,
        families: 8,
        revisions: 100,
        only: None,
        etcd: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!(
                "api_bench [--clients N (32)] [--seconds S (5)] [--slice S (1)] \
                 [--families F (8)] [--revisions R (100)] [--only ping|describe|register] \
                 [--etcd etcd://HOST:PORT]"
            );
            std::process::exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--clients" => args.clients = value.parse()?,
            "--seconds" => args.seconds = value.parse()?,
            "--slice" => args.slice = value.parse()?,
            "--families" => args.families = value.parse()?,
            "--revisions" => args.revisions = value.parse()?,
            "--only" => args.only = Some(value),
            "--etcd" => args.etcd = Some(value),
            other => return Err(format!("unknown flag {other} (try --help)").into()),
        }
    }
    if args.clients == 0
        || args.families == 0
        || args.revisions == 0
        || args.seconds <= 0.0
        || args.slice <= 0.0
    {
        return Err(
            "--clients, --families, --revisions, --seconds and --slice must be positive".into(),
        );
    }
    Ok(args)
}

/// What one phase sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Ping,
    Describe,
    Register,
}

impl Action {
    const ALL: [Action; 3] = [Action::Ping, Action::Describe, Action::Register];

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Action::Ping => "GET /ping (baseline)",
            Action::Describe => "DescribeTaskDefinition",
            Action::Register => "RegisterTaskDefinition",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Action::Ping => "GET /ping (baseline)",
            other => other.name(),
        }
    }
}

fn register_body(family: &str, n: u64) -> Vec<u8> {
    serde_json::json!({
        "family": family,
        "containerDefinitions": [{
            "name": "app",
            "image": "berth-test/busybox:latest",
            "memory": 64,
            "essential": true,
            "command": ["sh", "-c", format!("echo {n}; sleep 60")],
            "environment": [{"name": "BENCH", "value": n.to_string()}],
            "portMappings": [{"containerPort": 8080}],
        }],
    })
    .to_string()
    .into_bytes()
}

/// One request ready to send.
struct Built {
    req: hyper::Request<Full<Bytes>>,
    /// The family index, for registrations.
    family: Option<usize>,
    /// The time spent signing it.
    signing: Duration,
}

/// Builds (and for ECS actions signs) one request.
fn build(action: Action, host: &str, families: usize, n: u64) -> Result<Built, Error> {
    let (target, body, family) = match action {
        Action::Ping => {
            let req = hyper::Request::get("/ping")
                .header("host", host)
                .body(Full::new(Bytes::new()))?;
            return Ok(Built {
                req,
                family: None,
                signing: Duration::ZERO,
            });
        }
        Action::Describe => (
            "DescribeTaskDefinition",
            format!(r#"{{"taskDefinition":"{DESCRIBE_FAMILY}"}}"#).into_bytes(),
            None,
        ),
        Action::Register => {
            // `n` mod the family count, computed in u64 so no cast can truncate.
            let fam = usize::try_from(n % families as u64)?;
            (
                "RegisterTaskDefinition",
                register_body(&format!("bench-reg-{fam}"), n),
                Some(fam),
            )
        }
    };
    let signing = Instant::now();
    let mut headers = vec![
        ("host".to_owned(), host.to_owned()),
        ("content-type".to_owned(), JSON_11.to_owned()),
        ("x-amz-target".to_owned(), format!("{ECS}{target}")),
    ];
    let creds = Credentials {
        access_key_id: AK.into(),
        secret_access_key: SK.into(),
    };
    let sreq = SigRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: &body,
    };
    let added = sign(&sreq, &creds, REGION, "ecs", SystemTime::now());
    headers.extend(added);
    let signed_in = signing.elapsed();
    let mut req = hyper::Request::post("/");
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    Ok(Built {
        req: req.body(Full::new(Bytes::from(body)))?,
        family,
        signing: signed_in,
    })
}

/// One slice of the schedule: `action` runs until `end` (from the previous slice's end).
struct Slice {
    action: Action,
    end: Instant,
    /// The measured round it belongs to; `None` for warm-up.
    round: Option<usize>,
}

/// Warm-up slices, then `rounds` rounds of one slice per action, the order rotating.
fn schedule(actions: &[Action], rounds: usize, slice: Duration) -> Vec<Slice> {
    let mut at = Instant::now();
    let mut out = Vec::new();
    let mut push = |action, round, length| {
        out.push(Slice {
            action,
            end: at + length,
            round,
        });
        at += length;
    };
    for &action in actions {
        push(action, None, WARMUP);
    }
    for round in 0..rounds {
        for i in 0..actions.len() {
            push(actions[(i + round) % actions.len()], Some(round), slice);
        }
    }
    out
}

/// What one client saw of one action.
#[derive(Default)]
struct Stats {
    /// Latencies (microseconds) of requests started inside measured slices.
    latencies_us: Vec<u32>,
    /// Requests started per measured round.
    per_round: Vec<u64>,
    errors: u64,
    signing: Duration,
    signed: u64,
    first_error: Option<String>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.latencies_us.extend(other.latencies_us);
        if self.per_round.len() < other.per_round.len() {
            self.per_round.resize(other.per_round.len(), 0);
        }
        for (mine, theirs) in self.per_round.iter_mut().zip(other.per_round) {
            *mine += theirs;
        }
        self.errors += other.errors;
        self.signing += other.signing;
        self.signed += other.signed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// What one client saw: per action, and the registrations acknowledged per family (warm-up
/// included, for the durability check).
#[derive(Default)]
struct ClientStats {
    actions: [Stats; 3],
    acked: BTreeMap<usize, u64>,
}

/// One client: one keep-alive connection, one request in flight, following the schedule.
async fn client(
    addr: SocketAddr,
    plan: Arc<Vec<Slice>>,
    id: usize,
    clients: usize,
    families: usize,
) -> Result<ClientStats, Error> {
    let host = addr.to_string();
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut out = ClientStats::default();
    let mut n = id as u64;
    let mut current = 0;
    loop {
        let sent = Instant::now();
        while current < plan.len() && plan[current].end <= sent {
            current += 1;
        }
        let Some(slice) = plan.get(current) else {
            break;
        };
        let Built {
            req,
            family,
            signing,
        } = build(slice.action, &host, families, n)?;
        n += clients as u64;
        let stats = &mut out.actions[slice.action.index()];
        if slice.action != Action::Ping {
            stats.signing += signing;
            stats.signed += 1;
        }
        let outcome = async {
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, Error>((status, body))
        }
        .await;
        let took = sent.elapsed();
        let mut gone = false;
        match outcome {
            Ok((status, _)) if status == hyper::StatusCode::OK => {
                if let Some(f) = family {
                    *out.acked.entry(f).or_default() += 1;
                }
            }
            Ok((status, body)) => {
                stats.errors += 1;
                stats
                    .first_error
                    .get_or_insert_with(|| format!("{status}: {}", String::from_utf8_lossy(&body)));
            }
            Err(e) => {
                stats.errors += 1;
                stats.first_error.get_or_insert_with(|| e.to_string());
                gone = true;
            }
        }
        if let Some(round) = slice.round {
            if stats.per_round.len() <= round {
                stats.per_round.resize(round + 1, 0);
            }
            stats.per_round[round] += 1;
            stats
                .latencies_us
                .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        }
        if gone {
            break; // the connection is gone
        }
    }
    Ok(out)
}

struct Figures {
    action: Action,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    stats: Stats,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

/// Runs the schedule for `actions` with every client; figures per action (in `actions`'
/// order) and the acknowledged registrations per family.
async fn measure(
    addr: SocketAddr,
    actions: &[Action],
    args: &Args,
) -> Result<(Vec<Figures>, BTreeMap<usize, u64>), Error> {
    let slice = Duration::from_secs_f64(args.slice);
    let rounds = (args.seconds / args.slice).ceil().max(1.0) as usize;
    let plan = Arc::new(schedule(actions, rounds, slice));
    let tasks: Vec<_> = (0..args.clients)
        .map(|id| {
            tokio::spawn(client(
                addr,
                Arc::clone(&plan),
                id,
                args.clients,
                args.families,
            ))
        })
        .collect();
    let mut all = ClientStats::default();
    for t in tasks {
        let one = t.await??;
        for (mine, theirs) in all.actions.iter_mut().zip(one.actions) {
            mine.merge(theirs);
        }
        for (f, n) in one.acked {
            *all.acked.entry(f).or_default() += n;
        }
    }
    let measured = slice.as_secs_f64() * rounds as f64;
    let mut figures = Vec::new();
    let mut by_action: Vec<Option<Stats>> = all.actions.into_iter().map(Some).collect();
    for &action in actions {
        let mut stats = by_action[action.index()].take().unwrap_or_default();
        stats.latencies_us.sort_unstable();
        stats.per_round.resize(rounds, 0);
        figures.push(Figures {
            action,
            rps: stats.latencies_us.len() as f64 / measured,
            p50_ms: percentile(&stats.latencies_us, 0.50),
            p99_ms: percentile(&stats.latencies_us, 0.99),
            stats,
        });
    }
    Ok((figures, all.acked))
}

/// A signed ECS call from the setup code, which must succeed.
async fn call(addr: SocketAddr, target: &str, body: Vec<u8>) -> Result<(), Error> {
    let host = addr.to_string();
    let mut headers = vec![
        ("host".to_owned(), host),
        ("content-type".to_owned(), JSON_11.to_owned()),
        ("x-amz-target".to_owned(), format!("{ECS}{target}")),
    ];
    let creds = Credentials {
        access_key_id: AK.into(),
        secret_access_key: SK.into(),
    };
    let sreq = SigRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: &body,
    };
    let added = sign(&sreq, &creds, REGION, "ecs", SystemTime::now());
    headers.extend(added);
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = hyper::Request::post("/");
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = resp.status();
    let text = resp.into_body().collect().await?.to_bytes();
    if status != hyper::StatusCode::OK {
        return Err(format!("{target}: {status}: {}", String::from_utf8_lossy(&text)).into());
    }
    Ok(())
}

fn header() {
    println!(
        "{:<24} {:>9} {:>8} {:>8} {:>7} {:>8}   per round (min..max)",
        "action", "req/s", "p50 ms", "p99 ms", "errors", "vs ping"
    );
}

/// One line of the table; `base` is the ping figures, when measured.
fn row(f: &Figures, base: Option<&Figures>) {
    let (ratio, spread) = match base {
        Some(b) => {
            let mut per: Vec<f64> = f
                .stats
                .per_round
                .iter()
                .zip(&b.stats.per_round)
                .filter(|(_, b)| **b > 0)
                .map(|(a, b)| *a as f64 / *b as f64)
                .collect();
            per.sort_by(f64::total_cmp);
            let spread = match (per.first(), per.last()) {
                (Some(lo), Some(hi)) => format!("{lo:.3}..{hi:.3}"),
                _ => "-".to_owned(),
            };
            (format!("{:.3}", f.rps / b.rps), spread)
        }
        None => ("-".to_owned(), "-".to_owned()),
    };
    println!(
        "{:<24} {:>9.0} {:>8.2} {:>8.2} {:>7} {:>8}   {}",
        f.action.short(),
        f.rps,
        f.p50_ms,
        f.p99_ms,
        f.stats.errors,
        ratio,
        spread
    );
}

/// The client's own share (signing) and the first error, if any.
fn report_client(f: &Figures) {
    if f.stats.signed > 0 {
        let per = f.stats.signing.as_secs_f64() / f.stats.signed as f64;
        println!(
            "{}: client-side SigV4 signing {:.1} us per request = {:.0}% of one core at the \
             measured rate",
            f.action.name(),
            per * 1e6,
            per * f.rps * 100.0
        );
    }
    if let Some(e) = &f.stats.first_error {
        println!("{}: first error: {e}", f.action.name());
    }
}

/// Single-threaded cost of signing (client) and verifying (server) one Describe request, in
/// microseconds, measured in this process: where part of each request's time goes.
fn sigv4_costs() -> (f64, f64) {
    // The best of three runs: the least disturbed by whatever else the machine is doing.
    (0..3)
        .map(|_| sigv4_cost_once())
        .fold((f64::MAX, f64::MAX), |(s, v), (s1, v1)| {
            (s.min(s1), v.min(v1))
        })
}

fn sigv4_cost_once() -> (f64, f64) {
    const ROUNDS: u32 = 2_000;
    let body = format!(r#"{{"taskDefinition":"{DESCRIBE_FAMILY}"}}"#).into_bytes();
    let base = vec![
        ("host".to_owned(), "127.0.0.1:9400".to_owned()),
        ("content-type".to_owned(), JSON_11.to_owned()),
        (
            "x-amz-target".to_owned(),
            format!("{ECS}DescribeTaskDefinition"),
        ),
    ];
    let creds = Credentials {
        access_key_id: AK.into(),
        secret_access_key: SK.into(),
    };
    fn req<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> SigRequest<'a> {
        SigRequest {
            method: "POST",
            path: "/",
            query: "",
            headers,
            body,
        }
    }
    let now = SystemTime::now();
    let t = Instant::now();
    let mut signed = base.clone();
    for _ in 0..ROUNDS {
        signed = base.clone();
        let added = sign(&req(&base, &body), &creds, REGION, "ecs", now);
        signed.extend(added);
    }
    let sign_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    let t = Instant::now();
    let mut ok = 0u32;
    for _ in 0..ROUNDS {
        let who = berth_sigv4::verify(&req(&signed, &body), now, |akid| {
            (akid == AK).then(|| SK.to_owned())
        });
        ok += u32::from(who.is_ok());
    }
    let verify_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    assert_eq!(ok, ROUNDS, "the signature verifies");
    (sign_us, verify_us)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unavailable".into())
}

/// Counts, in the store file reopened after the server is gone, the revisions of every
/// family the register phase wrote, and compares them with what was acknowledged.
async fn durability(
    store: &dyn Store,
    args: &Args,
    acked: &BTreeMap<usize, u64>,
) -> Result<bool, Error> {
    let (mut total_acked, mut total_stored, mut ok) = (0u64, 0u64, true);
    for fam in 0..args.families {
        let family = format!("bench-reg-{fam}");
        let stored = store.list(&keys::taskdefs_of(&family)).await?.0.len() as u64;
        let last: Option<(serde_json::Value, u64)> = store.get_json(&keys::family(&family)).await?;
        let last = last
            .and_then(|(v, _)| v.get("lastRevision").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        let want = acked.get(&fam).copied().unwrap_or(0);
        // Every request was answered before shutdown, so acknowledged == committed exactly.
        if stored != want || last != want {
            ok = false;
            println!(
                "  {family}: {want} acknowledged, {stored} revisions stored, lastRevision {last}"
            );
        }
        total_acked += want;
        total_stored += stored;
    }
    println!(
        "durability: {total_acked} registrations acknowledged across {} families; {total_stored} \
         revisions found in the store file reopened after shutdown: {}",
        args.families,
        if ok { "none missing" } else { "MISMATCH" }
    );
    Ok(ok)
}

/// Opens the store measured: a redb file in `dir`, or a fresh namespace of the etcd at `etcd`.
async fn open_store(dir: &Path, etcd: Option<&str>) -> Result<Arc<dyn Store>, Error> {
    Ok(match etcd {
        None => Arc::new(RedbStore::open(&dir.join("state.redb"))?),
        Some(url) => {
            let ns = dir.file_name().and_then(|n| n.to_str()).unwrap_or("bench");
            Arc::new(EtcdStore::connect_url(&format!("{}/{ns}", url.trim_end_matches('/'))).await?)
        }
    })
}

async fn run(args: Args) -> Result<bool, Error> {
    let (redb, mut ok) = run_on(&args, None).await?;
    if let Some(url) = args.etcd.as_deref() {
        let (etcd, etcd_ok) = run_on(&args, Some(url)).await?;
        ok &= etcd_ok;
        println!("\netcd vs redb, same run (req/s; each also as a ratio to its own ping):");
        for (e, r) in etcd.iter().zip(&redb) {
            let ping =
                |all: &[Figures]| all.iter().find(|f| f.action == Action::Ping).map(|p| p.rps);
            let own = |f: &Figures, all: &[Figures]| ping(all).map_or(f64::NAN, |p| f.rps / p);
            println!(
                "{:<10} redb {:>8.0} ({:.3})  etcd {:>8.0} ({:.3})  etcd/redb {:.3}",
                e.action.short(),
                r.rps,
                own(r, &redb),
                e.rps,
                own(e, &etcd),
                e.rps / r.rps
            );
        }
    }
    Ok(ok)
}

/// One whole measurement on one store; its figures, and whether every registration is stored.
async fn run_on(args: &Args, etcd: Option<&str>) -> Result<(Vec<Figures>, bool), Error> {
    let load_before = loadavg();
    let dir = tempfile::Builder::new()
        .prefix("berth-api-bench-")
        .tempdir()?;
    let store = open_store(dir.path(), etcd).await?;
    let state = ApiState::new(
        Ops::new(store, Arc::new(SystemClock), OpsConfig::default()),
        KeyRing::new().with_key(AK, SK),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });

    call(
        addr,
        "CreateCluster",
        br#"{"clusterName":"bench"}"#.to_vec(),
    )
    .await?;
    for n in 0..args.revisions {
        call(
            addr,
            "RegisterTaskDefinition",
            register_body(DESCRIBE_FAMILY, u64::from(n)),
        )
        .await?;
    }

    let actions: Vec<Action> = match args.only.as_deref() {
        None => Action::ALL.to_vec(),
        Some("ping") => vec![Action::Ping],
        Some("describe") => vec![Action::Describe],
        Some("register") => vec![Action::Register],
        Some(other) => return Err(format!("--only {other}: ping, describe or register").into()),
    };
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "berth API throughput: {} keep-alive clients; {} s per action, interleaved in {} s \
         slices (after {} ms warm-up each); {cores} cores; in-process server, durable store: {}",
        args.clients,
        args.seconds,
        args.slice,
        WARMUP.as_millis(),
        etcd.map_or_else(
            || format!("redb in {}", dir.path().display()),
            str::to_owned
        )
    );
    println!(
        "Describe: bare family {DESCRIBE_FAMILY:?} ({} revisions); Register: {} families",
        args.revisions, args.families
    );
    println!("load average before: {load_before}");

    let (figures, acked) = measure(addr, &actions, args).await?;
    let load_after = loadavg();
    let ping = figures.iter().find(|f| f.action == Action::Ping);
    let base = ping.filter(|_| figures.len() > 1);
    println!();
    header();
    for f in &figures {
        row(f, base);
    }
    for f in &figures {
        report_client(f);
    }
    let (sign_us, verify_us) = sigv4_costs();
    println!(
        "SigV4 alone, one thread: sign {sign_us:.1} us (client), verify {verify_us:.1} us \
         (server) per Describe request"
    );
    println!("load average after: {load_after}");
    for f in &figures {
        let target = match f.action {
            Action::Ping => continue,
            Action::Describe => 20_000.0,
            Action::Register => 2_000.0,
        };
        println!(
            "target {} >= {target:.0} req/s on this machine: {} ({:.0})",
            f.action.name(),
            if f.rps >= target { "met" } else { "missed" },
            f.rps
        );
    }

    let _ = stop_tx.send(());
    server.await??;
    let store = open_store(dir.path(), etcd).await?;
    let ok = durability(&*store, args, &acked).await?;
    Ok((figures, ok))
}

fn main() -> Result<(), Error> {
    let args = parse_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ok = rt.block_on(run(args))?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
