//! The bootstrap bundle: how a second (third, ...) replica joins a control plane on etcd.
//!
//! Replicas share the store, but some of what a server needs is not in the store on purpose:
//! the root access key (also the join tokens' HMAC secret), the metrics token, the key that
//! seals secret values, and the cluster CA (cert and key) when TLS is on. Every replica must
//! hold the same ones, or a key, an agent's join token or a SecureString good on one replica
//! fails on another. So the first replica on an etcd store puts them in the store as one
//! record (`meta/bootstrap`), *sealed* (XChaCha20-Poly1305, [`berth_store::Sealer`]) under a
//! key derived from a **server token** it prints and keeps in its data dir (`server.token`,
//! 0600) — as k3s does with its `K10...::server:...` token. A joining replica
//! (`--join TOKEN`) reads the record, checks the token is the one it was sealed for, opens it
//! and writes the material into its own data dir; from there on it starts as any replica.
//! Someone with access to etcd alone learns nothing; the token alone opens nothing.
//!
//! The token is `bst1.` and 32 random bytes in hex. Both the sealing key and the token's id
//! (stored beside the sealed bytes, so a wrong token is told apart from a damaged record) are
//! SHA-256 of the secret under distinct labels: the secret is uniformly random and 256 bits
//! long, so a plain hash is a sound key derivation and no password stretching is needed.
//!
//! The bundle is written once (create-if-absent). At each later start a replica checks that
//! its own material still matches the bundle and refuses to start otherwise, naming what
//! differs. Rotation (a new root key or CA across replicas) is not supported: the token and
//! bundle live as long as the control plane (see DESIGN.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::admin::StoreSpec;
use crate::creds::{self, RootKey};
use crate::server::ServerOpts;

/// The store key of the sealed bundle.
pub const BUNDLE_KEY: &str = "meta/bootstrap";
/// The data dir file that keeps the server token (0600).
pub const TOKEN_FILE: &str = "server.token";
/// The token's prefix (its format's version).
const TOKEN_PREFIX: &str = "bst1.";
/// Associated data of the sealed bundle: its record and format.
const AAD: &[u8] = b"berth bootstrap bundle v1 meta/bootstrap";

/// Why joining or publishing the bundle failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// `--join` with the embedded store: there is no other replica to join.
    #[error("--join needs a shared store (--store etcd://...): the embedded store serves one replica only")]
    EmbeddedStore,
    /// The token is not a server token.
    #[error("--join: not a berth server token (it looks like `bst1.` and 64 hex digits)")]
    BadToken,
    /// The store holds no bundle to join.
    #[error("--join: the store holds no bootstrap bundle; start the first replica without --join (it publishes one and prints its server token)")]
    Absent,
    /// The token does not open the bundle.
    #[error("--join: wrong server token: the store's bootstrap bundle was sealed for another token (see `server.token` in the first replica's data dir)")]
    WrongToken,
    /// The bundle is unreadable or does not open with the right token.
    #[error("the bootstrap bundle in the store is damaged: {0}")]
    Damaged(String),
    /// A second replica started without `--join` on a store that already has a control plane.
    #[error("the store already holds a control plane's bootstrap bundle: start this replica with --join <server token> (printed by the first replica; kept in its data dir's server.token)")]
    NotJoined,
    /// What this data dir holds differs from the bundle.
    #[error("{what} differs from the control plane's bootstrap bundle ({hint})")]
    Differs {
        /// What differs (a file, or the root key from the environment).
        what: String,
        /// What to do.
        hint: &'static str,
    },
    /// Another replica published a bundle at the same moment.
    #[error("another replica published a bootstrap bundle first: restart this one with --join <its server token>")]
    Raced,
    /// The store failed.
    #[error("bootstrap bundle: {0}")]
    Store(#[from] berth_store::StoreError),
    /// Sealing failed.
    #[error("bootstrap bundle: {0}")]
    Seal(#[from] berth_store::seal::SealError),
    /// A data dir file could not be read or written.
    #[error("bootstrap bundle: {0:#}")]
    Io(anyhow::Error),
}

/// A server token: 32 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerToken([u8; 32]);

impl std::fmt::Debug for ServerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerToken({})", self.id())
    }
}

impl std::fmt::Display for ServerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{TOKEN_PREFIX}{}", hex::encode(self.0))
    }
}

impl ServerToken {
    /// A new random token.
    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        rand::thread_rng().fill(&mut b);
        Self(b)
    }

    /// Reads `bst1.<64 hex digits>`.
    pub fn parse(s: &str) -> Result<Self, BootstrapError> {
        let hex_part = s
            .trim()
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(BootstrapError::BadToken)?;
        let bytes = hex::decode(hex_part).map_err(|_| BootstrapError::BadToken)?;
        Ok(Self(
            bytes.try_into().map_err(|_| BootstrapError::BadToken)?,
        ))
    }

    fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(label);
        h.update(self.0);
        h.finalize().into()
    }

    /// The key the bundle is sealed with.
    fn sealing_key(&self) -> [u8; 32] {
        self.derive(b"berth bootstrap sealing key v1\0")
    }

    /// A public id of the token (stored beside the bundle): tells a wrong token apart.
    pub fn id(&self) -> String {
        hex::encode(&self.derive(b"berth bootstrap token id v1\0")[..8])
    }
}

/// What every replica must share, in the clear (only ever sealed in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Material {
    /// The root access key (its secret also signs join tokens).
    pub root: RootKey,
    /// `/metrics`' bearer token.
    pub metrics_token: String,
    /// The key that seals secret values, hex.
    pub secrets_key: String,
    /// The cluster CA's certificate (PEM), when TLS with the cluster CA is on.
    #[serde(default)]
    pub ca_cert: Option<String>,
    /// The cluster CA's key (PEM).
    #[serde(default)]
    pub ca_key: Option<String>,
}

/// The stored record: the token's id and the sealed material.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    version: u32,
    token_id: String,
    sealed: String,
}

/// Seals `m` for `token` into the stored record's bytes.
pub fn seal(m: &Material, token: &ServerToken) -> Result<Vec<u8>, BootstrapError> {
    let plain = serde_json::to_vec(m).map_err(|e| BootstrapError::Io(e.into()))?;
    let sealed = berth_store::Sealer::new(token.sealing_key()).seal(AAD, &plain)?;
    let rec = Record {
        version: 1,
        token_id: token.id(),
        sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
    };
    serde_json::to_vec(&rec).map_err(|e| BootstrapError::Io(e.into()))
}

/// Opens a stored record with `token`: a wrong token and a damaged record are told apart.
pub fn open(bytes: &[u8], token: &ServerToken) -> Result<Material, BootstrapError> {
    let rec: Record =
        serde_json::from_slice(bytes).map_err(|e| BootstrapError::Damaged(e.to_string()))?;
    if rec.version != 1 {
        return Err(BootstrapError::Damaged(format!(
            "format {} is newer than this berth",
            rec.version
        )));
    }
    if rec.token_id != token.id() {
        return Err(BootstrapError::WrongToken);
    }
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(rec.sealed)
        .map_err(|e| BootstrapError::Damaged(e.to_string()))?;
    let plain = berth_store::Sealer::new(token.sealing_key())
        .open(AAD, &sealed)
        .map_err(|e| BootstrapError::Damaged(e.to_string()))?;
    serde_json::from_slice(&plain).map_err(|e| BootstrapError::Damaged(e.to_string()))
}

/// Which parts of `local` differ from `bundle`: names to show the operator.
pub fn differences(local: &Material, bundle: &Material) -> Vec<&'static str> {
    let mut out = Vec::new();
    if local.root != bundle.root {
        out.push("the root access key (credentials.json or BERTH_ROOT_*)");
    }
    if local.metrics_token != bundle.metrics_token {
        out.push("metrics.token");
    }
    if local.secrets_key != bundle.secrets_key {
        out.push("the secrets key (secrets.key or --master-key-file)");
    }
    // A replica serving plain HTTP or its own certificate does not use the CA.
    if local.ca_cert.is_some()
        && (&local.ca_cert, &local.ca_key) != (&bundle.ca_cert, &bundle.ca_key)
    {
        out.push("the cluster CA (ca.pem / ca.key)");
    }
    out
}

/// Whether the server uses the cluster CA in its data dir.
fn uses_cluster_ca(opts: &ServerOpts) -> bool {
    opts.tls.on() && opts.tls.cert.is_none()
}

/// The shared store, when it is one (etcd); `None` for the embedded store.
fn shared_store(opts: &ServerOpts) -> Option<StoreSpec> {
    match opts.store.as_deref().map(StoreSpec::parse) {
        Some(spec @ StoreSpec::Etcd(_)) => Some(spec),
        _ => None,
    }
}

fn io(e: anyhow::Error) -> BootstrapError {
    BootstrapError::Io(e)
}

/// Writes `bytes` to `dir/name` (0600) unless it holds them already; a file with other
/// contents is refused, never overwritten.
fn place(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), BootstrapError> {
    let p = dir.join(name);
    match std::fs::read(&p) {
        Ok(have) if have == bytes => Ok(()),
        // The token and metrics token files may end in a newline.
        Ok(have) if have.trim_ascii() == bytes => Ok(()),
        Ok(_) => Err(BootstrapError::Differs {
            what: p.display().to_string(),
            hint: "join with an empty data dir",
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            creds::write_private(&p, bytes).map_err(io)
        }
        Err(e) => Err(io(
            anyhow::Error::new(e).context(format!("reading {}", p.display()))
        )),
    }
}

/// `--join`, before anything else reads the data dir: fetches the bundle from the shared
/// store, opens it with the token and writes the material into `data_dir`. Without `--join`
/// it does nothing.
pub async fn join(opts: &ServerOpts, data_dir: &Path) -> Result<(), BootstrapError> {
    let Some(token) = opts.join.as_deref() else {
        return Ok(());
    };
    let spec = shared_store(opts).ok_or(BootstrapError::EmbeddedStore)?;
    let token = ServerToken::parse(token)?;
    let store = spec.open().await.map_err(io)?;
    let kv = store.get(BUNDLE_KEY).await?.ok_or(BootstrapError::Absent)?;
    let m = open(&kv.value, &token)?;
    place(data_dir, TOKEN_FILE, token.to_string().as_bytes())?;
    place(
        data_dir,
        "credentials.json",
        &serde_json::to_vec_pretty(&m.root).map_err(|e| io(e.into()))?,
    )?;
    place(data_dir, "metrics.token", m.metrics_token.as_bytes())?;
    let key = hex::decode(&m.secrets_key).map_err(|e| BootstrapError::Damaged(e.to_string()))?;
    match &opts.master_key_file {
        // The operator's own key file must be the control plane's key.
        Some(p) => {
            let have = berth_store::Sealer::from_key_file(p)?.key();
            if have[..] != key[..] {
                return Err(BootstrapError::Differs {
                    what: p.display().to_string(),
                    hint: "every replica seals secrets with one key: drop --master-key-file to use the bundle's",
                });
            }
        }
        None => place(data_dir, "secrets.key", &key)?,
    }
    if let (Some(cert), Some(key)) = (&m.ca_cert, &m.ca_key) {
        place(data_dir, crate::tls::CA_CERT_FILE, cert.as_bytes())?;
        place(data_dir, crate::tls::CA_KEY_FILE, key.as_bytes())?;
    }
    tracing::info!(token_id = %token.id(), "joined the control plane: its keys are in the data dir");
    Ok(())
}

/// This replica's own material, as it will serve with it.
fn local_material(
    opts: &ServerOpts,
    data_dir: &Path,
    key: &RootKey,
) -> Result<Material, BootstrapError> {
    let secrets = creds::secrets_key(data_dir, opts.master_key_file.as_deref()).map_err(io)?;
    let (ca_cert, ca_key) = if uses_cluster_ca(opts) {
        // Made now if this is the first start, so the bundle carries it.
        crate::tls::ClusterCa::load_or_create(data_dir).map_err(|e| io(e.into()))?;
        let read = |name: &str| -> Result<String, BootstrapError> {
            let p = data_dir.join(name);
            std::fs::read_to_string(&p)
                .map_err(|e| io(anyhow::Error::new(e).context(format!("reading {}", p.display()))))
        };
        (
            Some(read(crate::tls::CA_CERT_FILE)?),
            Some(read(crate::tls::CA_KEY_FILE)?),
        )
    } else {
        (None, None)
    };
    Ok(Material {
        root: key.clone(),
        metrics_token: creds::metrics_token(data_dir).map_err(io)?,
        secrets_key: hex::encode(secrets),
        ca_cert,
        ca_key,
    })
}

/// The token kept in `data_dir`, if any.
fn stored_token(data_dir: &Path) -> Result<Option<ServerToken>, BootstrapError> {
    match std::fs::read_to_string(token_path(data_dir)) {
        Ok(s) => ServerToken::parse(&s).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e.into())),
    }
}

fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// At each start on a shared store, once the keys (and the cluster CA) exist: the first
/// replica publishes the bundle; every replica checks its material matches it. Returns the
/// server token to print (`None` on the embedded store).
pub async fn publish(
    opts: &ServerOpts,
    store: &Arc<dyn berth_store::Store>,
    data_dir: &Path,
    key: &RootKey,
) -> Result<Option<ServerToken>, BootstrapError> {
    if shared_store(opts).is_none() {
        return Ok(None);
    }
    let local = local_material(opts, data_dir, key)?;
    let token = stored_token(data_dir)?;
    if let Some(kv) = store.get(BUNDLE_KEY).await? {
        let token = token.ok_or(BootstrapError::NotJoined)?;
        let bundle = open(&kv.value, &token)?;
        let differ = differences(&local, &bundle);
        if !differ.is_empty() {
            return Err(BootstrapError::Differs {
                what: differ.join(", "),
                hint: "a replica serves with the control plane's keys only; rejoin with an empty data dir",
            });
        }
        return Ok(Some(token));
    }
    let token = match token {
        Some(t) => t,
        None => {
            let t = ServerToken::generate();
            creds::write_private(&token_path(data_dir), t.to_string().as_bytes()).map_err(io)?;
            t
        }
    };
    let txn = berth_store::Txn::new()
        .when_absent(BUNDLE_KEY)
        .put(BUNDLE_KEY, seal(&local, &token)?);
    match store.txn(txn).await? {
        berth_store::TxnResult::Committed { .. } => {
            tracing::info!(token_id = %token.id(), "published the bootstrap bundle");
            Ok(Some(token))
        }
        _ => Err(BootstrapError::Raced),
    }
}

/// The line that tells the operator how further replicas join.
pub fn print_join_line(opts: &ServerOpts, token: &ServerToken) {
    let store = opts.store.as_deref().unwrap_or_default();
    println!("# more replicas of this control plane (same flags, their own data dir) join with:");
    println!("#   berth server --store {store} --join {token}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material() -> Material {
        Material {
            root: RootKey {
                access_key_id: "AKIAEXAMPLE".into(),
                secret_access_key: "secret".into(),
            },
            metrics_token: "m".repeat(64),
            secrets_key: hex::encode([7u8; 32]),
            ca_cert: Some("cert".into()),
            ca_key: Some("key".into()),
        }
    }

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        let t = ServerToken::generate();
        let s = t.to_string();
        assert!(s.starts_with("bst1.") && s.len() == 5 + 64);
        assert_eq!(ServerToken::parse(&s).unwrap(), t);
        assert_eq!(ServerToken::parse(&format!("{s}\n")).unwrap(), t);
        for bad in [
            "",
            "bst1.",
            "bst1.zz",
            "K10abc::server:x",
            &s[..s.len() - 2],
        ] {
            assert!(
                matches!(ServerToken::parse(bad), Err(BootstrapError::BadToken)),
                "{bad}"
            );
        }
        assert_ne!(ServerToken::generate(), t);
        // The debug form never shows the secret.
        assert!(!format!("{t:?}").contains(&s[5..]));
    }

    #[test]
    fn the_bundle_opens_with_its_token_only() {
        let (t, m) = (ServerToken::generate(), material());
        let bytes = seal(&m, &t).unwrap();
        // Nothing of the material is readable in the stored bytes.
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("AKIAEXAMPLE") && !text.contains("cert"));
        assert_eq!(open(&bytes, &t).unwrap(), m);
        assert!(matches!(
            open(&bytes, &ServerToken::generate()),
            Err(BootstrapError::WrongToken)
        ));
        // A record tampered with does not open.
        let mut rec: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let sealed = rec["sealed"].as_str().unwrap().to_owned();
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        rec["sealed"] = base64::engine::general_purpose::STANDARD.encode(raw).into();
        assert!(matches!(
            open(&serde_json::to_vec(&rec).unwrap(), &t),
            Err(BootstrapError::Damaged(_))
        ));
    }

    #[test]
    fn differences_name_what_differs() {
        let m = material();
        assert!(differences(&m, &m).is_empty());
        let mut other = m.clone();
        other.root.secret_access_key = "x".into();
        other.secrets_key = hex::encode([8u8; 32]);
        assert_eq!(differences(&other, &m).len(), 2);
        // A replica without the cluster CA (plain HTTP) does not compare it.
        let mut plain = m.clone();
        plain.ca_cert = None;
        plain.ca_key = None;
        assert!(differences(&plain, &m).is_empty());
    }

    #[test]
    fn placing_refuses_to_overwrite_other_contents() {
        let dir = tempfile::tempdir().unwrap();
        place(dir.path(), "f", b"a").unwrap();
        place(dir.path(), "f", b"a").unwrap();
        assert!(matches!(
            place(dir.path(), "f", b"b"),
            Err(BootstrapError::Differs { .. })
        ));
    }
}
