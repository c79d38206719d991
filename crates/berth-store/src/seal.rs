//! Sealing secret material before it reaches the store: one small API for every caller that
//! keeps something secret in a record (SSM SecureStrings, Secrets Manager values, and agent
//! credentials or keys as they are added).
//!
//! Why here: the store is where records go, so its crate is the one place every writer of a
//! record already depends on; the store itself never calls it (it stores bytes), which keeps
//! the key out of the backend and out of copies of the store file. A backup that copies
//! records copies ciphertext.
//!
//! The cipher is XChaCha20-Poly1305 (an AEAD) under a 256-bit key, with a fresh random
//! 192-bit nonce per value (random nonces of that size never collide in practice) and the
//! record's identity as associated data, so a sealed value moved to another record does not
//! open. The envelope is versioned: `BSL1 ‖ nonce ‖ ciphertext`. Values sealed before the
//! envelope existed (`nonce ‖ ciphertext`, from older berth versions) still open. The key is
//! a file of 32 bytes: created owner-only (0600) on first start by [`Sealer::load_or_create`],
//! or given by the operator (`--master-key-file`, read by [`Sealer::from_key_file`]).

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// The envelope's version marker (format 1).
const MAGIC: &[u8; 4] = b"BSL1";
const NONCE: usize = 24;

/// What sealing and opening can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The value is not sealed for this record under this key (or it was altered).
    #[error("the sealed value cannot be opened with this key for this record")]
    Open,
    /// The cipher refused to seal (never expected).
    #[error("sealing failed")]
    Seal,
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// What the filesystem said.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold a key.
    #[error("key file {0}: not a 256-bit key (32 raw bytes or 64 hex digits)")]
    BadKey(String),
}

/// A 256-bit key that seals and opens values. `Debug` never shows it.
#[derive(Clone)]
pub struct Sealer([u8; 32]);

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// The sealer of these 32 key bytes.
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// A sealer with a new random key.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        Self(k)
    }

    /// The key's bytes, to keep it.
    pub fn key(&self) -> [u8; 32] {
        self.0
    }

    /// The key in `path` (32 raw bytes, or 64 hex digits with optional surrounding
    /// whitespace). Warns when the file is readable by others than its owner.
    pub fn from_key_file(path: &Path) -> Result<Self, SealError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| SealError::Io {
            path: shown.clone(),
            source,
        })?;
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %shown, "the master key file is readable by others than its owner");
            }
        }
        parse_key(&bytes).map(Self).ok_or(SealError::BadKey(shown))
    }

    /// The key in `path`, created there (random, mode 0600) if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        let io = |source| SealError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => parse_key(&bytes)
                .map(Self)
                .ok_or_else(|| SealError::BadKey(path.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let sealer = Self::generate();
                let tmp = path.with_extension("tmp");
                crate::owner_only(&tmp).map_err(io)?;
                std::fs::write(&tmp, sealer.0).map_err(io)?;
                std::fs::rename(&tmp, path).map_err(io)?;
                Ok(sealer)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// `plain` sealed for the record `aad`, in the current envelope.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE + ct.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// The plain bytes of `sealed` (either envelope) for the record `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if let Some(rest) = sealed.strip_prefix(MAGIC) {
            if let Ok(plain) = self.open_raw(aad, rest) {
                return Ok(plain);
            }
        }
        // No envelope: sealed before it existed (or a legacy nonce that began with the magic).
        self.open_raw(aad, sealed)
    }

    fn open_raw(&self, aad: &[u8], bytes: &[u8]) -> Result<Vec<u8>, SealError> {
        if bytes.len() < NONCE {
            return Err(SealError::Open);
        }
        let (nonce, ct) = bytes.split_at(NONCE);
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| SealError::Open)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }
}

fn parse_key(bytes: &[u8]) -> Option<[u8; 32]> {
    if let Ok(raw) = <[u8; 32]>::try_from(bytes) {
        return Some(raw);
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_with_a_fresh_nonce_and_opens_only_for_its_record() {
        let s = Sealer::generate();
        let v = s.seal(b"ssm:/a", b"hunter2").unwrap();
        assert!(v.starts_with(MAGIC));
        assert!(!v.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(s.open(b"ssm:/a", &v).unwrap(), b"hunter2");
        assert!(s.open(b"ssm:/b", &v).is_err(), "bound to its record");
        assert!(Sealer::generate().open(b"ssm:/a", &v).is_err());
        assert_ne!(s.seal(b"ssm:/a", b"hunter2").unwrap(), v, "fresh nonce");
        assert_eq!(format!("{s:?}"), "Sealer(<redacted>)");
    }

    #[test]
    fn values_sealed_before_the_envelope_still_open() {
        let s = Sealer::generate();
        let v = s.seal(b"r", b"old").unwrap();
        let legacy = &v[MAGIC.len()..];
        assert_eq!(s.open(b"r", legacy).unwrap(), b"old");
    }

    #[test]
    fn key_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let a = Sealer::load_or_create(&p).unwrap();
        assert_eq!(Sealer::load_or_create(&p).unwrap().key(), a.key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let hex_file = dir.path().join("hex");
        let hex: String = a.key().iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&hex_file, format!("{hex}\n")).unwrap();
        assert_eq!(Sealer::from_key_file(&hex_file).unwrap().key(), a.key());
        std::fs::write(&hex_file, "short").unwrap();
        assert!(matches!(
            Sealer::from_key_file(&hex_file),
            Err(SealError::BadKey(_))
        ));
        assert!(matches!(
            Sealer::from_key_file(&dir.path().join("none")),
            Err(SealError::Io { .. })
        ));
    }
}
