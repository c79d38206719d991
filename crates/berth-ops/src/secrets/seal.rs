//! Sealing secret values at rest, with [`berth_store::Sealer`] (XChaCha20-Poly1305, a fresh
//! 192-bit random nonce per value, versioned envelope) under the server's 256-bit key, with the
//! record's identity as associated data so a sealed value cannot be moved to another record.
//! Stored as base64 in [`StoredValue::Sealed`]; values sealed by older versions (no envelope)
//! and plain values written before sealing existed still read. The key lives in the data dir
//! (`berth` creates it, mode 0600) or in `--master-key-file`; the store only sees ciphertext.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use berth_model::secrets::StoredValue;
use berth_model::ApiError;
use berth_store::Sealer;

/// The key that seals SecureString parameters and secret values. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretsKey(Sealer);

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey(<redacted>)")
    }
}

impl SecretsKey {
    /// The key of these 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Sealer::new(bytes))
    }

    /// A new random key.
    pub fn generate() -> Self {
        Self(Sealer::generate())
    }

    /// The key's bytes, to keep it.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.key()
    }

    /// Seals `plain` for the record `aad`.
    pub(crate) fn seal(&self, aad: &str, plain: &[u8]) -> Result<StoredValue, ApiError> {
        let sealed = self
            .0
            .seal(aad.as_bytes(), plain)
            .map_err(|_| ApiError::server("sealing a secret value failed"))?;
        Ok(StoredValue::Sealed(STANDARD.encode(sealed)))
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
        self.0.open(aad.as_bytes(), &bytes).map_err(|_| failed())
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

    #[test]
    fn values_from_older_versions_still_read() {
        let k = SecretsKey::generate();
        // Sealed before the versioned envelope: base64 of nonce and ciphertext only.
        let v = k.0.seal(b"ssm:/a", b"old").unwrap();
        let legacy = StoredValue::Sealed(STANDARD.encode(&v[4..]));
        assert_eq!(k.open("ssm:/a", &legacy).unwrap(), b"old");
        // Written before sealing existed: plain.
        let plain = StoredValue::Plain("older".into());
        assert_eq!(k.open_text("ssm:/a", &plain).unwrap(), "older");
    }
}
