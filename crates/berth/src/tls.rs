//! HTTPS for the API and TLS between agents and the server, under a **cluster CA**.
//!
//! Why a CA of its own rather than a self-signed server certificate: agents, the aws CLI and
//! SDKs then trust one file (`ca.pem` in the data dir) that outlives any one server
//! certificate, so the server can re-issue its certificate at every start for the names it is
//! reached by now (listen address, this host's name, `--tls-san`, the Docker bridge gateway
//! its docker hosts dial) without anyone re-distributing anything. The CA's key never leaves
//! the data dir (0600); the server's key lives in memory only.
//!
//! An operator with a PKI of their own passes `--tls-cert`/`--tls-key` instead (and the
//! bundle agents trust with `--tls-ca`); berth then issues nothing.
//!
//! The API's accept loop ([`crate::listen`]) calls [`Tls::accept`] as a wrapping step, within
//! the header-read deadline, so a client that stalls the handshake holds its slot no longer
//! than one that stalls its headers.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};

/// The cluster CA's certificate in the data dir: what agents, the aws CLI (`--ca-bundle`,
/// `AWS_CA_BUNDLE`) and SDKs trust.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The cluster CA's private key in the data dir (0600).
pub const CA_KEY_FILE: &str = "ca.key";
/// The CA's subject: fixed, so the issuer rebuilt from the key at each start names the very
/// subject the stored certificate has.
const CA_NAME: &str = "berth cluster CA";
/// Server certificates live a year; they are re-issued at every start anyway.
const SERVER_CERT_DAYS: i64 = 365;
/// The CA lives ten years.
const CA_DAYS: i64 = 3650;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key could not be generated or parsed.
    #[error("certificate: {0}")]
    Cert(String),
    /// rustls refused the certificate and key.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn cert_err(e: impl std::fmt::Display) -> TlsError {
    TlsError::Cert(e.to_string())
}

/// The cluster CA: its certificate (PEM) and an issuer built from its key.
pub struct ClusterCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

impl ClusterCa {
    /// Loads the CA from `dir`, or creates it there (key 0600) on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, TlsError> {
        let (cert_path, key_path) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
        if key_path.exists() {
            let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            let key = KeyPair::from_pem(&key_pem).map_err(cert_err)?;
            return Ok(Self {
                cert_pem,
                issuer: Issuer::new(ca_params(), key),
            });
        }
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = ca_params();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(CA_DAYS);
        let cert = params.self_signed(&key).map_err(cert_err)?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
        std::fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
        tracing::info!(ca = %cert_path.display(), "created the cluster CA");
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(ca_params(), key),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a server certificate for `names` (IP addresses or DNS names); returns the chain
    /// (leaf, then the CA) and the leaf's key, both PEM.
    pub fn issue_server(&self, names: &[String]) -> Result<(String, String), TlsError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().map_or("berth", String::as_str),
        );
        p.distinguished_name = dn;
        p.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()
            .map_err(cert_err)?;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::days(SERVER_CERT_DAYS);
        let cert = p.signed_by(&key, &self.issuer).map_err(cert_err)?;
        Ok((
            format!("{}{}", cert.pem(), self.cert_pem),
            key.serialize_pem(),
        ))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))
}

/// `sha256:<hex>` of a PEM certificate's DER (the first one in `pem`): what an operator
/// compares out of band, as kubeadm's `--discovery-token-ca-cert-hash`.
pub fn cert_hash(pem: &str) -> Result<String, TlsError> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(cert_err)?;
    Ok(format!(
        "sha256:{}",
        hex::encode(Sha256::digest(der.as_ref()))
    ))
}

/// The names a server certificate is issued for: loopback, this host's name, the listen
/// address when it is specific, and the extra ones given (`--tls-san`, the Docker bridge
/// gateway); without duplicates, in that order.
pub fn server_names(listen: IpAddr, hostname: Option<&str>, extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Some(h) = hostname.filter(|h| !h.is_empty()) {
        out.push(h.to_owned());
    }
    if !listen.is_unspecified() {
        out.push(listen.to_string());
    }
    out.extend(extra.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}

/// rustls over *ring*: no C toolchain or CMake (aws-lc-rs needs both), as reqwest's
/// `rustls-tls-manual-roots` uses. rustls 0.23.48 deprecates it for lacking post-quantum key
/// exchange; classical X25519/P-256 is what reqwest's client side offers anyway.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A TLS server side for the API: the acceptor and the bundle clients of this server trust.
#[derive(Clone)]
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    /// The file agents and the aws CLI trust (the cluster CA, or `--tls-ca`).
    pub ca_bundle: PathBuf,
}

impl Tls {
    /// A TLS server side serving `chain_pem` (leaf first) with `key_pem`; clients trust
    /// `ca_bundle`.
    pub fn new(chain_pem: &[u8], key_pem: &[u8], ca_bundle: PathBuf) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(cert_err)?;
        if chain.is_empty() {
            return Err(TlsError::Cert("no certificate in the chain".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(cert_err)?;
        let provider = Arc::new(ring_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        // The API speaks HTTP/1.1 only.
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
            ca_bundle,
        })
    }

    /// The server side of a handshake on `io` (the caller bounds its time).
    pub async fn accept<IO>(&self, io: IO) -> std::io::Result<tokio_rustls::server::TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.acceptor.accept(io).await
    }
}

/// The server's TLS flags (`berth up` / `berth server`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsFlags {
    /// Serve the API over HTTPS with a certificate from the cluster CA (created in the data
    /// dir on first start: ca.pem, and ca.key readable by its owner only). Agents, the aws CLI
    /// (--ca-bundle / AWS_CA_BUNDLE) and SDKs trust ca.pem.
    #[arg(long = "tls")]
    pub enabled: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first) instead of one from the
    /// cluster CA (implies --tls).
    #[arg(long = "tls-cert", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long = "tls-key", requires = "cert")]
    pub key: Option<PathBuf>,
    /// With --tls-cert: the CA bundle (PEM) this server's agents and hosts trust (default:
    /// the --tls-cert file itself).
    #[arg(long = "tls-ca", requires = "cert")]
    pub ca: Option<PathBuf>,
    /// An extra name (DNS name or IP address) for the certificate the cluster CA issues,
    /// repeatable (loopback, this host's name and a specific listen address are always in).
    #[arg(long = "tls-san")]
    pub sans: Vec<String>,
}

impl TlsFlags {
    /// True when the API serves HTTPS.
    pub fn on(&self) -> bool {
        self.enabled || self.cert.is_some()
    }
}

/// Sets up the server's TLS from `settings` (`None` when it serves plain HTTP): the given
/// certificate, or one issued by the cluster CA in `data_dir` for `names`.
pub fn setup(
    settings: &TlsFlags,
    data_dir: &Path,
    names: &[String],
) -> Result<Option<Tls>, TlsError> {
    if !settings.on() {
        if !settings.sans.is_empty() {
            return Err(TlsError::Cert("--tls-san needs --tls".into()));
        }
        return Ok(None);
    }
    if let Some(cert) = &settings.cert {
        let key = settings
            .key
            .as_ref()
            .ok_or_else(|| TlsError::Cert("--tls-cert needs --tls-key".into()))?;
        let chain = std::fs::read(cert).map_err(io(cert))?;
        let key_pem = std::fs::read(key).map_err(io(key))?;
        if !settings.sans.is_empty() {
            return Err(TlsError::Cert(
                "--tls-san names the certificate berth issues; it cannot change --tls-cert".into(),
            ));
        }
        let bundle = settings.ca.clone().unwrap_or_else(|| cert.clone());
        return Tls::new(&chain, &key_pem, bundle).map(Some);
    }
    if settings.key.is_some() || settings.ca.is_some() {
        return Err(TlsError::Cert(
            "--tls-key and --tls-ca go with --tls-cert".into(),
        ));
    }
    let ca = ClusterCa::load_or_create(data_dir)?;
    let (chain, key) = ca.issue_server(names)?;
    tracing::info!(?names, ca_hash = %cert_hash(ca.cert_pem())?, "issued the API's certificate");
    Tls::new(
        chain.as_bytes(),
        key.as_bytes(),
        data_dir.join(CA_CERT_FILE),
    )
    .map(Some)
}

/// This host's name, from the kernel (for the server certificate's names).
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(ca_pem: &str) -> Arc<dyn rustls::client::danger::ServerCertVerifier> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(ring_provider()),
        )
        .build()
        .unwrap()
    }

    fn verify(ca_pem: &str, chain_pem: &str, name: &str) -> Result<(), rustls::Error> {
        let chain: Vec<_> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        verifier(ca_pem)
            .verify_server_cert(
                &chain[0],
                &chain[1..],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .map(|_| ())
    }

    #[test]
    fn the_ca_is_created_once_with_a_private_key_and_signs_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = ClusterCa::load_or_create(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = ClusterCa::load_or_create(dir.path()).unwrap();
        assert_eq!(first.cert_pem(), again.cert_pem(), "the CA is kept");
        // A certificate issued after the "restart" chains to the CA written at first start.
        let names = server_names(
            "10.1.2.3".parse().unwrap(),
            Some("node-a"),
            &["api.example".into()],
        );
        let (chain, _key) = again.issue_server(&names).unwrap();
        for n in [
            "127.0.0.1",
            "localhost",
            "node-a",
            "10.1.2.3",
            "api.example",
        ] {
            verify(first.cert_pem(), &chain, n).unwrap_or_else(|e| panic!("{n}: {e}"));
        }
        assert!(verify(first.cert_pem(), &chain, "other.example").is_err());
    }

    #[test]
    fn another_cluster_s_ca_does_not_verify() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ca_a = ClusterCa::load_or_create(a.path()).unwrap();
        let ca_b = ClusterCa::load_or_create(b.path()).unwrap();
        let (chain, _) = ca_a.issue_server(&["127.0.0.1".into()]).unwrap();
        assert!(verify(ca_b.cert_pem(), &chain, "127.0.0.1").is_err());
        assert_ne!(
            cert_hash(ca_a.cert_pem()).unwrap(),
            cert_hash(ca_b.cert_pem()).unwrap()
        );
        assert!(cert_hash(ca_a.cert_pem()).unwrap().starts_with("sha256:"));
    }

    #[test]
    fn names_skip_the_unspecified_address_and_duplicates() {
        let n = server_names(
            "0.0.0.0".parse().unwrap(),
            Some("h"),
            &["h".into(), "1.2.3.4".into()],
        );
        assert_eq!(n, ["localhost", "127.0.0.1", "::1", "h", "1.2.3.4"]);
    }

    #[test]
    fn settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(setup(&TlsFlags::default(), dir.path(), &[])
            .unwrap()
            .is_none());
        let san_alone = TlsFlags {
            sans: vec!["a.example".into()],
            ..Default::default()
        };
        assert!(
            setup(&san_alone, dir.path(), &[]).is_err(),
            "--tls-san without TLS"
        );
        let lone_key = TlsFlags {
            enabled: true,
            key: Some(dir.path().join("k")),
            ..Default::default()
        };
        assert!(setup(&lone_key, dir.path(), &[]).is_err());
        let on = TlsFlags {
            enabled: true,
            ..Default::default()
        };
        let tls = setup(&on, dir.path(), &["127.0.0.1".into()])
            .unwrap()
            .unwrap();
        assert_eq!(tls.ca_bundle, dir.path().join(CA_CERT_FILE));
        // A given certificate and key are served as they are.
        let ca = ClusterCa::load_or_create(dir.path()).unwrap();
        let (chain, key) = ca.issue_server(&["127.0.0.1".into()]).unwrap();
        std::fs::write(dir.path().join("c.pem"), chain).unwrap();
        std::fs::write(dir.path().join("c.key"), key).unwrap();
        let given = TlsFlags {
            cert: Some(dir.path().join("c.pem")),
            key: Some(dir.path().join("c.key")),
            ..Default::default()
        };
        let tls = setup(&given, dir.path(), &[]).unwrap().unwrap();
        assert_eq!(tls.ca_bundle, dir.path().join("c.pem"));
    }
}
