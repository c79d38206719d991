//! Byte layouts of the `kv` and `changelog` tables.
//!
//! Record (`kv` value): `create_revision: u64 LE | mod_revision: u64 LE | value`.
//!
//! Changelog entry (all events of one revision): `count: u32 LE`, then per
//! event `kind: u8 (0 put, 1 delete) | create_revision: u64 LE |
//! key_len: u32 LE | key | value_len: u32 LE | value`. Every event's
//! mod_revision is the entry's revision.

use crate::error::StoreError;
use crate::types::{EventKind, KeyValue, Revision, WatchEvent};

const HEADER: usize = 16;

pub(crate) struct RecordRef<'a> {
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub value: &'a [u8],
}

pub(crate) fn encode_record(
    create_revision: Revision,
    mod_revision: Revision,
    value: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + value.len());
    out.extend_from_slice(&create_revision.to_le_bytes());
    out.extend_from_slice(&mod_revision.to_le_bytes());
    out.extend_from_slice(value);
    out
}

pub(crate) fn decode_record<'a>(key: &str, bytes: &'a [u8]) -> Result<RecordRef<'a>, StoreError> {
    let mut r = Reader { bytes, key };
    let create_revision = r.u64()?;
    let mod_revision = r.u64()?;
    Ok(RecordRef {
        create_revision,
        mod_revision,
        value: r.bytes,
    })
}

pub(crate) fn record_to_kv(key: &str, bytes: &[u8]) -> Result<KeyValue, StoreError> {
    let rec = decode_record(key, bytes)?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: rec.value.to_vec(),
        create_revision: rec.create_revision,
        mod_revision: rec.mod_revision,
    })
}

pub(crate) fn encode_events(events: &[WatchEvent]) -> Vec<u8> {
    let size: usize = events
        .iter()
        .map(|e| 1 + 8 + 4 + e.kv.key.len() + 4 + e.kv.value.len())
        .sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&len32(events.len()).to_le_bytes());
    for e in events {
        out.push(match e.kind {
            EventKind::Put => 0,
            EventKind::Delete => 1,
        });
        out.extend_from_slice(&e.kv.create_revision.to_le_bytes());
        out.extend_from_slice(&len32(e.kv.key.len()).to_le_bytes());
        out.extend_from_slice(e.kv.key.as_bytes());
        out.extend_from_slice(&len32(e.kv.value.len()).to_le_bytes());
        out.extend_from_slice(&e.kv.value);
    }
    out
}

/// Decodes the events of `revision`, keeping only keys starting with `prefix`.
pub(crate) fn decode_events(
    revision: Revision,
    bytes: &[u8],
    prefix: &str,
    out: &mut Vec<WatchEvent>,
) -> Result<(), StoreError> {
    let what = format!("changelog entry {revision}");
    let mut r = Reader { bytes, key: &what };
    let count = r.u32()?;
    for _ in 0..count {
        let kind = match r.take(1)?[0] {
            0 => EventKind::Put,
            1 => EventKind::Delete,
            other => return Err(r.corrupt(&format!("event kind {other}"))),
        };
        let create_revision = r.u64()?;
        let key_len = r.u32()? as usize;
        let key =
            std::str::from_utf8(r.take(key_len)?).map_err(|_| r.corrupt("key is not UTF-8"))?;
        let value_len = r.u32()? as usize;
        let value = r.take(value_len)?;
        if key.starts_with(prefix) {
            out.push(WatchEvent {
                kind,
                kv: KeyValue {
                    key: key.to_owned(),
                    value: value.to_vec(),
                    create_revision,
                    mod_revision: revision,
                },
            });
        }
    }
    Ok(())
}

fn len32(len: usize) -> u32 {
    // redb itself caps keys and values far below 4 GiB.
    u32::try_from(len).expect("key or value length exceeds u32")
}

struct Reader<'a, 'k> {
    bytes: &'a [u8],
    key: &'k str,
}

impl<'a> Reader<'a, '_> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < n {
            return Err(self.corrupt("truncated"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(buf))
    }

    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::Backend(format!("corrupt record for {}: {what}", self.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip() {
        let bytes = encode_record(3, 7, b"hello");
        let kv = record_to_kv("k", &bytes).expect("decodes");
        assert_eq!(
            (kv.create_revision, kv.mod_revision, &kv.value[..]),
            (3, 7, &b"hello"[..])
        );
        assert!(decode_record("k", &bytes[..10]).is_err());
    }

    #[test]
    fn events_roundtrip_with_prefix_filter() {
        let ev = |kind, key: &str, value: &[u8]| WatchEvent {
            kind,
            kv: KeyValue {
                key: key.into(),
                value: value.to_vec(),
                create_revision: 2,
                mod_revision: 9,
            },
        };
        let events = vec![
            ev(EventKind::Put, "a/1", b"x"),
            ev(EventKind::Delete, "b/1", b""),
        ];
        let bytes = encode_events(&events);
        let mut all = Vec::new();
        decode_events(9, &bytes, "", &mut all).expect("decodes");
        assert_eq!(all, events);
        let mut some = Vec::new();
        decode_events(9, &bytes, "b/", &mut some).expect("decodes");
        assert_eq!(some, events[1..]);
        assert!(decode_events(9, &bytes[..bytes.len() - 1], "", &mut some).is_err());
    }
}
