//! Snapshots and copies of a whole store, backend-neutral: what `berth admin snapshot`,
//! `restore` and `migrate` are made of.
//!
//! A snapshot is the records (key and value) of one `list("")`, i.e. of one revision. The
//! revisions themselves are not kept: they belong to the store that wrote them (etcd's are
//! shared by everything in the cluster), and a restored store numbers its writes afresh.
//! Nothing in berth keeps a revision across a restart, so nothing is lost by that.
//!
//! The file format is deliberately simple, versioned and checksummed so that a truncated or
//! corrupted file is refused instead of half-restored:
//!
//! ```text
//! "BERTHSNP"  u32 version (1)
//! { u8 1, u32 key length, key, u32 value length, value }*   -- sorted by key
//! u8 0, u64 record count, u32 CRC-32 (IEEE) of every byte before it
//! ```
//! (integers little-endian).

use crate::error::StoreError;
use crate::store::Store;
use crate::types::{KeyValue, Txn, TxnResult};

const MAGIC: &[u8; 8] = b"BERTHSNP";
const VERSION: u32 = 1;
/// Records written per txn when loading (etcd refuses more than 128 ops per txn by default).
const LOAD_BATCH: usize = 64;

/// Why a snapshot could not be read or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes are not a snapshot this build can read.
    #[error("not a berth snapshot: {0}")]
    Format(String),
    /// The target store already holds records; a restore never merges.
    #[error("the target store is not empty (it holds {0} records); restore into an empty one")]
    NotEmpty(usize),
    /// A key was written concurrently with the load.
    #[error("key {0} appeared in the target store while loading")]
    Raced(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key and its value, as kept in a snapshot.
pub type Record = (String, Vec<u8>);

/// Encodes `records` (any order; they are written sorted by key) as a snapshot file.
pub fn encode(records: &[Record]) -> Vec<u8> {
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    for (key, value) in sorted {
        out.push(1);
        put_bytes(&mut out, key.as_bytes());
        put_bytes(&mut out, value);
    }
    out.push(0);
    out.extend_from_slice(&(records.len() as u64).to_le_bytes());
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a snapshot file, checking its version, record count and checksum.
pub fn decode(bytes: &[u8]) -> Result<Vec<Record>, SnapshotError> {
    let bad = |why: &str| SnapshotError::Format(why.to_owned());
    let body_len = bytes
        .len()
        .checked_sub(4)
        .ok_or_else(|| bad("file too short"))?;
    let (body, crc) = bytes.split_at(body_len);
    let mut r = Reader { bytes: body };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(bad("wrong magic"));
    }
    let version = u32::from_le_bytes(r.array()?);
    if version != VERSION {
        return Err(bad(&format!(
            "version {version}; this build reads {VERSION}"
        )));
    }
    if crc32(body).to_le_bytes() != crc {
        return Err(bad("checksum mismatch (truncated or corrupted)"));
    }
    let mut records = Vec::new();
    loop {
        match r.take(1)?[0] {
            1 => {
                let key = String::from_utf8(r.sized()?.to_vec())
                    .map_err(|_| bad("a key is not UTF-8"))?;
                let value = r.sized()?.to_vec();
                records.push((key, value));
            }
            0 => break,
            tag => return Err(bad(&format!("unknown record tag {tag}"))),
        }
    }
    let count = u64::from_le_bytes(r.array()?);
    if count != records.len() as u64 || !r.bytes.is_empty() {
        return Err(bad("record count does not match"));
    }
    Ok(records)
}

/// Every record of `store`, read at one revision.
pub async fn dump(store: &dyn Store) -> Result<Vec<Record>, StoreError> {
    let (kvs, _) = store.list("").await?;
    Ok(kvs.into_iter().map(|kv| (kv.key, kv.value)).collect())
}

/// Writes `records` into `store`, which must be empty. Returns how many were written.
pub async fn load(store: &dyn Store, records: &[Record]) -> Result<usize, SnapshotError> {
    let (existing, _) = store.list("").await?;
    if !existing.is_empty() {
        return Err(SnapshotError::NotEmpty(existing.len()));
    }
    for batch in records.chunks(LOAD_BATCH) {
        let mut txn = Txn::new();
        for (key, value) in batch {
            txn = txn
                .when_absent(key.as_str())
                .put(key.as_str(), value.clone());
        }
        if let TxnResult::Conflict { key } = store.txn(txn).await? {
            return Err(SnapshotError::Raced(key));
        }
    }
    Ok(records.len())
}

/// Copies every record of `from` into the empty store `to`; returns how many.
pub async fn copy(from: &dyn Store, to: &dyn Store) -> Result<usize, SnapshotError> {
    let records = dump(from).await?;
    load(to, &records).await
}

/// True when both lists hold the same keys with the same values (revisions aside).
pub fn same_records(a: &[KeyValue], b: &[KeyValue]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.key == y.key && x.value == y.value)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("a record under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if self.bytes.len() < n {
            return Err(SnapshotError::Format("file ends mid-record".into()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn sized(&mut self) -> Result<&'a [u8], SnapshotError> {
        let len = u32::from_le_bytes(self.array()?);
        self.take(len as usize)
    }
}

/// CRC-32 (IEEE 802.3, as zlib's), bytewise with a table built on first use.
fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    !bytes.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_snapshot_round_trips_and_refuses_damage() {
        let records = vec![
            ("b/2".to_owned(), b"two".to_vec()),
            ("a/1".to_owned(), Vec::new()),
        ];
        let bytes = encode(&records);
        let back = decode(&bytes).unwrap();
        assert_eq!(back, vec![records[1].clone(), records[0].clone()]);
        let mut flipped = bytes.clone();
        flipped[14] ^= 1;
        assert!(matches!(decode(&flipped), Err(SnapshotError::Format(_))));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(b"BERTHSNP").is_err());
    }

    #[tokio::test]
    async fn load_refuses_a_non_empty_store_and_copy_copies_everything() {
        let from = crate::RedbStore::in_memory().unwrap();
        for i in 0..150 {
            from.txn(Txn::new().put(format!("k/{i:03}"), vec![i as u8]))
                .await
                .unwrap();
        }
        let to = crate::RedbStore::in_memory().unwrap();
        assert_eq!(copy(&from, &to).await.unwrap(), 150);
        let (a, _) = from.list("").await.unwrap();
        let (b, _) = to.list("").await.unwrap();
        assert!(same_records(&a, &b));
        assert!(matches!(
            copy(&from, &to).await,
            Err(SnapshotError::NotEmpty(150))
        ));
    }
}
