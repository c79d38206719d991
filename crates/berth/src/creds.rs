//! The root key pair: from the environment when set, otherwise generated on first start and
//! kept (mode 0600) in the data directory, so restarts keep working credentials.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::env;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RootKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("credentials.json")
}

fn random(n: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

fn generate() -> RootKey {
    RootKey {
        access_key_id: format!("AKIA{}", random(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")),
        secret_access_key: random(
            40,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        ),
    }
}

/// Reads the key kept in `data_dir`, if any.
pub fn stored(data_dir: &Path) -> Option<RootKey> {
    let bytes = std::fs::read(path(data_dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The server's root key: environment first, then the data dir, else a new one saved there.
pub fn load_or_create(data_dir: &Path) -> Result<RootKey> {
    if let (Ok(id), Ok(secret)) = (
        std::env::var(env::ROOT_ACCESS_KEY_ID),
        std::env::var(env::ROOT_SECRET_ACCESS_KEY),
    ) {
        return Ok(RootKey {
            access_key_id: id,
            secret_access_key: secret,
        });
    }
    if let Some(k) = stored(data_dir) {
        return Ok(k);
    }
    let key = generate();
    let p = path(data_dir);
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&key)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
    Ok(key)
}

/// The key that seals SecureString parameters and secret values at rest: the operator's
/// `--master-key-file`, or 32 random bytes in `secrets.key` beside the store, created (mode
/// 0600) on first start. Losing it loses those values; the store alone never holds them in
/// plain text.
pub fn secrets_key(data_dir: &Path, master_key_file: Option<&Path>) -> Result<[u8; 32]> {
    let sealer = match master_key_file {
        Some(p) => berth_store::Sealer::from_key_file(p)?,
        None => berth_store::Sealer::load_or_create(&data_dir.join("secrets.key"))?,
    };
    Ok(sealer.key())
}

/// The bearer token `/metrics` asks scrapers for: 32 random bytes in hex, in `metrics.token`
/// beside the store (0600), created on first start. It reads metrics and nothing else, so a
/// Prometheus config never holds an access key.
pub fn metrics_token(data_dir: &Path) -> Result<String> {
    let p = data_dir.join("metrics.token");
    if let Ok(text) = std::fs::read_to_string(&p) {
        let token = text.trim();
        anyhow::ensure!(token.len() >= 32, "{} holds no token", p.display());
        return Ok(token.to_owned());
    }
    let mut raw = [0u8; 32];
    rand::thread_rng().fill(&mut raw);
    let token = hex::encode(raw);
    write_private(&p, token.as_bytes())?;
    Ok(token)
}

/// Writes `bytes` to `p` through a 0600 temporary file renamed into place, so the file is
/// never readable by others and never half-written.
pub(crate) fn write_private(p: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = p.with_extension("tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, p).with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secrets_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let k = secrets_key(dir.path(), None).unwrap();
        assert_eq!(secrets_key(dir.path(), None).unwrap(), k);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secrets.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn generated_keys_look_like_aws_keys() {
        let k = generate();
        assert!(k.access_key_id.starts_with("AKIA") && k.access_key_id.len() == 20);
        assert_eq!(k.secret_access_key.len(), 40);
        assert_ne!(k, generate());
    }
}
