//! Sealing secret values at rest: XChaCha20-Poly1305 (a 192-bit random nonce per value, so
//! random nonces never collide in practice) under the server's 256-bit key, with the record's
//! identity as associated data so a sealed value cannot be moved to another record. The key
//! lives in the data dir (`berth` creates it, mode 0600); the store only ever sees ciphertext.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use berth_model::secrets::StoredValue;
use berth_model::ApiError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const NONCE: usize = 24;

/// The key that seals SecureString parameters and secret values. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretsKey([u8; 32]);

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey(<redacted>)")
    }
}

impl SecretsKey {
    /// The key of these 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A new random key.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        Self(k)
    }

    /// The key's bytes, to keep it.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Seals `plain` for the record `aad`.
    pub(crate) fn seal(&self, aad: &str, plain: &[u8]) -> Result<StoredValue, ApiError> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; NONCE];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| ApiError::server("sealing a secret value failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(StoredValue::Sealed(STANDARD.encode(out)))
    }

    /// The plain bytes of `v` (sealed for `aad`, or plain).
    pub(crate) fn open(&self, aad: &str, v: &StoredValue) -> Result<Vec<u8>, ApiError> {
        let sealed = match v {
            StoredValue::Plain(s) => return Ok(s.as_bytes().to_vec()),
            StoredValue::Sealed(s) => s,
        };
        let failed = || {
            ApiError::server(format!(
                "the stored value of {aad} cannot be decrypted with this data dir's key"
            ))
        };
        let bytes = STANDARD.decode(sealed).map_err(|_| failed())?;
        if bytes.len() < NONCE {
            return Err(failed());
        }
        let (nonce, ct) = bytes.split_at(NONCE);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| failed())
    }

    /// `open` as UTF-8 text.
    pub(crate) fn open_text(&self, aad: &str, v: &StoredValue) -> Result<String, ApiError> {
        String::from_utf8(self.open(aad, v)?)
            .map_err(|_| ApiError::server(format!("the stored value of {aad} is not text")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_for_its_record() {
        let k = SecretsKey::generate();
        let v = k.seal("ssm:/a", b"hunter2").unwrap();
        let StoredValue::Sealed(s) = &v else {
            panic!("sealed")
        };
        assert!(!s.contains("hunter2"));
        assert_eq!(k.open("ssm:/a", &v).unwrap(), b"hunter2");
        assert!(k.open("ssm:/b", &v).is_err(), "bound to its record");
        assert!(SecretsKey::generate().open("ssm:/a", &v).is_err());
        assert_ne!(k.seal("ssm:/a", b"hunter2").unwrap(), v, "fresh nonce");
        assert_eq!(format!("{k:?}"), "SecretsKey(<redacted>)");
    }
}
