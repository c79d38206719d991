//! What TLS costs the API: requests over HTTPS against the same requests over plain HTTP, in
//! the same run, on kept-alive connections and with a new connection (so a full handshake) per
//! request.
//!
//! ```sh
//! cargo run --release -p berth --example tls_bench [-- --clients 8 --seconds 4 --body 2048]
//! ```
//!
//! The server is this process: one HTTP/1.1 listener in plain text and one behind rustls with a
//! certificate from a CA made here as berth's cluster CA is (ECDSA P-256, rcgen), both answering
//! every request with a `--body`-byte JSON document (a Describe's size), so what differs is the
//! transport alone. Clients verify the certificate against that CA, as agents and the aws CLI
//! do. The four modes run interleaved in short slices (rotating the order) so a burst of load
//! from elsewhere hits all alike; every HTTPS figure is given as a ratio to its HTTP twin.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    KeepHttp,
    KeepHttps,
    ConnectHttp,
    ConnectHttps,
}

impl Mode {
    const ALL: [Mode; 4] = [
        Mode::KeepHttp,
        Mode::KeepHttps,
        Mode::ConnectHttp,
        Mode::ConnectHttps,
    ];
    fn tls(self) -> bool {
        matches!(self, Mode::KeepHttps | Mode::ConnectHttps)
    }
    fn keep_alive(self) -> bool {
        matches!(self, Mode::KeepHttp | Mode::KeepHttps)
    }
    fn name(self) -> &'static str {
        match self {
            Mode::KeepHttp => "kept-alive HTTP",
            Mode::KeepHttps => "kept-alive HTTPS",
            Mode::ConnectHttp => "connect+request HTTP",
            Mode::ConnectHttps => "connect+handshake+request HTTPS",
        }
    }
}

#[allow(deprecated)] // ring lacks post-quantum groups; classical X25519/P-256 as berth serves
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA and a server certificate for 127.0.0.1, as berth's cluster CA issues them.
fn certificates() -> Result<
    (
        CertificateDer<'static>,
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
    ),
    Error,
> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::default();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "bench CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let leaf =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &issuer)?;
    Ok((
        ca_cert.der().clone(),
        vec![leaf.der().clone(), ca_cert.der().clone()],
        PrivateKeyDer::try_from(key.serialize_der())?,
    ))
}

async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    body: Bytes,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (tls, body) = (tls.clone(), body.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |_req| {
                let body = body.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/x-amz-json-1.1")
                            .body(Full::new(body))
                            .unwrap_or_default(),
                    )
                }
            });
            let http = hyper::server::conn::http1::Builder::new();
            let _ = match tls {
                None => http.serve_connection(TokioIo::new(stream), svc).await,
                Some(a) => match a.accept(stream).await {
                    Ok(s) => http.serve_connection(TokioIo::new(s), svc).await,
                    Err(_) => return,
                },
            };
        });
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(
    addr: SocketAddr,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<Sender, Error> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let sender = match tls {
        None => {
            let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            s
        }
        Some(c) => {
            let name = ServerName::try_from("127.0.0.1")?.to_owned();
            let stream = c.connect(name, stream).await?;
            let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            s
        }
    };
    Ok(sender)
}

async fn request(sender: &mut Sender) -> Result<usize, Error> {
    let req = hyper::Request::post("/")
        .header("host", "127.0.0.1")
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from_static(
            b"{\"taskDefinition\":\"web\"}",
        )))?;
    let resp = sender.send_request(req).await?;
    Ok(resp.into_body().collect().await?.to_bytes().len())
}

/// One client for `until`: returns the latencies (µs) of its requests and its errors.
async fn client(
    mode: Mode,
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsConnector>,
    until: Instant,
) -> (Vec<u32>, u64) {
    let (mut lat, mut errors) = (Vec::new(), 0);
    let mut kept: Option<Sender> = None;
    while Instant::now() < until {
        let t = Instant::now();
        let r = async {
            let mut s = match kept.take() {
                Some(s) => s,
                None => connect(addr, tls.as_ref()).await?,
            };
            request(&mut s).await?;
            if mode.keep_alive() {
                kept = Some(s);
            }
            Ok::<_, Error>(())
        }
        .await;
        match r {
            Ok(()) => lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
            Err(_) => errors += 1,
        }
    }
    (lat, errors)
}

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let clients = arg(&args, "--clients", 8.0) as usize;
    let seconds = arg(&args, "--seconds", 4.0);
    let slice = Duration::from_secs_f64(arg(&args, "--slice", 0.5));
    let body = Bytes::from(vec![b'x'; arg(&args, "--body", 2048.0) as usize]);

    let (ca, chain, key) = certificates()?;
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca)?;
    let client_cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));

    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let secure = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (plain_addr, tls_addr) = (plain.local_addr()?, secure.local_addr()?);
    tokio::spawn(serve(plain, None, body.clone()));
    tokio::spawn(serve(
        secure,
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(server))),
        body,
    ));

    let rounds = ((seconds / slice.as_secs_f64()).ceil() as usize).max(1);
    let mut lat: [Vec<u32>; 4] = Default::default();
    let mut errors = [0u64; 4];
    let mut time = [Duration::ZERO; 4];
    for round in 0..=rounds {
        for k in 0..4 {
            let mode = Mode::ALL[(round + k) % 4];
            let (addr, tls) = if mode.tls() {
                (tls_addr, Some(connector.clone()))
            } else {
                (plain_addr, None)
            };
            let start = Instant::now();
            let until = start + slice;
            let runs: Vec<_> = (0..clients)
                .map(|_| tokio::spawn(client(mode, addr, tls.clone(), until)))
                .collect();
            for r in runs {
                let (l, e) = r.await?;
                // Round 0 warms up (connections, caches) and is not counted.
                if round > 0 {
                    lat[mode as usize].extend(l);
                    errors[mode as usize] += e;
                }
            }
            if round > 0 {
                time[mode as usize] += start.elapsed();
            }
        }
    }
    println!(
        "tls_bench: {clients} clients, {seconds} s per mode in {:.1} s slices, {}-byte answers",
        slice.as_secs_f64(),
        arg(&args, "--body", 2048.0)
    );
    println!(
        "{:<34} {:>10} {:>9} {:>9} {:>7}   vs HTTP (rps, p50)",
        "mode", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let mut figures = [(0.0, 0.0); 4];
    for m in Mode::ALL {
        let i = m as usize;
        lat[i].sort_unstable();
        let rps = lat[i].len() as f64 / time[i].as_secs_f64();
        let p50 = percentile(&lat[i], 0.5);
        figures[i] = (rps, p50);
        let base = match m {
            Mode::KeepHttps => Some(figures[Mode::KeepHttp as usize]),
            Mode::ConnectHttps => Some(figures[Mode::ConnectHttp as usize]),
            _ => None,
        };
        let vs = base.map_or(String::new(), |(brps, bp50)| {
            format!("   {:.2}x, {:.2}x", rps / brps, p50 / bp50)
        });
        println!(
            "{:<34} {:>10.0} {:>9.3} {:>9.3} {:>7}{vs}",
            m.name(),
            rps,
            p50,
            percentile(&lat[i], 0.99),
            errors[i]
        );
    }
    let handshake = figures[Mode::ConnectHttps as usize].1 - figures[Mode::ConnectHttp as usize].1;
    println!("handshake cost (p50 connect+request HTTPS minus HTTP): {handshake:.3} ms");
    Ok(())
}
