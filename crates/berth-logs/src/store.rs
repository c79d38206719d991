//! The log store: the [`LogStore`] trait and its redb backend, [`RedbLogStore`].
//!
//! Log events live in their own redb file (`logs.redb` in the data dir), not in the cluster
//! state store: they are many, written often and never part of a cluster-state transaction,
//! and a full log store must never slow down or fill up the store the controllers depend on.
//! The file is bounded: past [`LogStoreConfig::max_bytes`] the oldest events (in ingestion
//! order, across all groups) are evicted and counted; groups with a retention lose events
//! older than it at each [`LogStore::sweep`]. Commits are `Eventual` (no fsync per batch):
//! a crash may lose the last moments of logs, never the cluster's state, and the file stays
//! consistent. Tests use the same code over redb's in-memory backend
//! ([`RedbLogStore::in_memory`]).

use std::collections::HashMap;
use std::path::Path;

use berth_model::logs::{InputLogEvent, LogGroup, LogStream, ShipCursor, StoredEvent};
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::error::LogsError;
use crate::token::Pos;

const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
/// `group \0 stream` → stream record.
const STREAMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("streams");
/// `group \0 stream \0 ts seq` → ingestion time (8 bytes) + message.
const EVENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("events");
/// seq → event key, in ingestion order: what eviction pops.
const ORDER: TableDefinition<u64, &[u8]> = TableDefinition::new("order");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// One entry of a range over the events table.
type RangeItem<'a> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

const NEXT_SEQ: &str = "next_seq";
const TOTAL_BYTES: &str = "total_bytes";
const EVICTED: &str = "evicted_events";

/// Settings of the log store.
#[derive(Debug, Clone)]
pub struct LogStoreConfig {
    /// Bytes of events (message + 26, as CloudWatch counts) kept across all groups before the
    /// oldest are evicted.
    pub max_bytes: u64,
}

impl Default for LogStoreConfig {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// Events stored.
    pub stored: usize,
    /// Older events evicted to stay under the byte cap.
    pub evicted: u64,
}

/// The store's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Bytes of events held.
    pub bytes: u64,
    /// Events evicted (byte cap) since the store was created.
    pub evicted: u64,
}

/// Where log groups, streams and events are kept. Blocking calls: run them off the async
/// runtime's worker threads.
pub trait LogStore: Send + Sync + 'static {
    /// Creates a group; `Err(AlreadyExists)` if it exists.
    fn create_group(&self, group: &LogGroup) -> Result<(), LogsError>;
    /// Replaces a group's record (retention, tags); `Err(GroupNotFound)` if missing.
    fn update_group(&self, group: &LogGroup) -> Result<(), LogsError>;
    /// Deletes a group, its streams and its events.
    fn delete_group(&self, name: &str) -> Result<(), LogsError>;
    /// A group and the bytes its streams hold.
    fn group(&self, name: &str) -> Result<Option<(LogGroup, i64)>, LogsError>;
    /// Groups whose names start with `prefix`, by name, with their stored bytes.
    fn groups(&self, prefix: &str) -> Result<Vec<(LogGroup, i64)>, LogsError>;
    /// Creates a stream in a group.
    fn create_stream(&self, group: &str, stream: &LogStream) -> Result<(), LogsError>;
    /// Deletes a stream and its events.
    fn delete_stream(&self, group: &str, stream: &str) -> Result<(), LogsError>;
    /// A group's streams whose names start with `prefix`, by name.
    fn streams(&self, group: &str, prefix: &str) -> Result<Vec<LogStream>, LogsError>;
    /// Appends events (sorted by timestamp) to a stream, and sets its ship cursor if given,
    /// in one transaction; evicts the oldest events past the byte cap.
    fn append(
        &self,
        group: &str,
        stream: &str,
        events: &[InputLogEvent],
        ingestion_ms: i64,
        cursor: Option<ShipCursor>,
    ) -> Result<Appended, LogsError>;
    /// Calls `visit` with a stream's events strictly between `after` and `before`, oldest
    /// first (or newest first with `reverse`), until it returns false.
    fn scan(
        &self,
        group: &str,
        stream: &str,
        after: Pos,
        before: Pos,
        reverse: bool,
        visit: &mut dyn FnMut(StoredEvent) -> bool,
    ) -> Result<(), LogsError>;
    /// Drops events older than their group's retention at `now_ms`; returns how many.
    fn sweep(&self, now_ms: i64) -> Result<u64, LogsError>;
    /// Totals.
    fn stats(&self) -> Result<LogStats, LogsError>;
}

/// [`LogStore`] over one redb database.
pub struct RedbLogStore {
    db: Database,
    config: LogStoreConfig,
}

fn stream_key(group: &str, stream: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.len() + stream.len() + 1);
    k.extend_from_slice(group.as_bytes());
    k.push(0);
    k.extend_from_slice(stream.as_bytes());
    k
}

/// The key range of everything under `prefix` (keys that start with it).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    end.push(0xff);
    end
}

fn event_key(skey: &[u8], pos: Pos) -> Vec<u8> {
    let mut k = Vec::with_capacity(skey.len() + 17);
    k.extend_from_slice(skey);
    k.push(0);
    k.extend_from_slice(&((pos.ts as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(&pos.seq.to_be_bytes());
    k
}

/// Splits an event key into its stream key and position.
fn split_event_key(k: &[u8]) -> Option<(&[u8], Pos)> {
    if k.len() < 17 {
        return None;
    }
    let (skey, tail) = k.split_at(k.len() - 17);
    let ts = u64::from_be_bytes(tail[1..9].try_into().ok()?);
    let seq = u64::from_be_bytes(tail[9..17].try_into().ok()?);
    Some((skey, Pos::new((ts ^ (1 << 63)) as i64, seq)))
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, LogsError> {
    serde_json::from_slice(b).map_err(|e| LogsError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, LogsError> {
    serde_json::to_vec(v).map_err(|e| LogsError::Corrupt(e.to_string()))
}

fn event_bytes(message_len: usize) -> u64 {
    (message_len + berth_model::logs::EVENT_OVERHEAD_BYTES) as u64
}

impl RedbLogStore {
    /// Opens (or creates) the store in the file at `path`.
    pub fn open(path: &Path, config: LogStoreConfig) -> Result<Self, LogsError> {
        let db = Database::create(path)?;
        Self::init(db, config)
    }

    /// A store in memory (for tests).
    pub fn in_memory(config: LogStoreConfig) -> Result<Self, LogsError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db, config)
    }

    fn init(db: Database, config: LogStoreConfig) -> Result<Self, LogsError> {
        let tx = db.begin_write()?;
        tx.open_table(GROUPS)?;
        tx.open_table(STREAMS)?;
        tx.open_table(EVENTS)?;
        tx.open_table(ORDER)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(Self { db, config })
    }

    /// Removes every event key in `[lo, hi)` and its order entry; returns (count, bytes) per
    /// stream key.
    fn remove_events(
        events: &mut redb::Table<&[u8], &[u8]>,
        order: &mut redb::Table<u64, &[u8]>,
        lo: &[u8],
        hi: &[u8],
    ) -> Result<HashMap<Vec<u8>, (u64, u64)>, LogsError> {
        let mut doomed = Vec::new();
        for e in events.range::<&[u8]>(lo..hi)? {
            let (k, v) = e?;
            doomed.push((k.value().to_vec(), v.value().len().saturating_sub(8)));
        }
        let mut per_stream: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
        for (k, len) in doomed {
            events.remove(k.as_slice())?;
            if let Some((skey, pos)) = split_event_key(&k) {
                order.remove(pos.seq)?;
                let e = per_stream.entry(skey.to_vec()).or_default();
                e.0 += 1;
                e.1 += event_bytes(len);
            }
        }
        Ok(per_stream)
    }

    /// Lowers streams' stored bytes and the total after events were removed.
    fn account_removed(
        streams: &mut redb::Table<&[u8], &[u8]>,
        meta: &mut redb::Table<&str, u64>,
        removed: &HashMap<Vec<u8>, (u64, u64)>,
    ) -> Result<u64, LogsError> {
        let mut total_bytes = 0u64;
        let mut count = 0u64;
        for (skey, (n, bytes)) in removed {
            total_bytes += bytes;
            count += n;
            let rec = streams.get(skey.as_slice())?.map(|v| v.value().to_vec());
            if let Some(rec) = rec {
                let mut s: LogStream = decode(&rec)?;
                s.stored_bytes = (s.stored_bytes - *bytes as i64).max(0);
                streams.insert(skey.as_slice(), encode(&s)?.as_slice())?;
            }
        }
        let total = meta.get(TOTAL_BYTES)?.map_or(0, |v| v.value());
        meta.insert(TOTAL_BYTES, total.saturating_sub(total_bytes))?;
        Ok(count)
    }
}

impl LogStore for RedbLogStore {
    fn create_group(&self, group: &LogGroup) -> Result<(), LogsError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(GROUPS)?;
            if t.get(group.log_group_name.as_str())?.is_some() {
                return Err(LogsError::AlreadyExists);
            }
            t.insert(group.log_group_name.as_str(), encode(group)?.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    fn update_group(&self, group: &LogGroup) -> Result<(), LogsError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(GROUPS)?;
            if t.get(group.log_group_name.as_str())?.is_none() {
                return Err(LogsError::GroupNotFound);
            }
            t.insert(group.log_group_name.as_str(), encode(group)?.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    fn delete_group(&self, name: &str) -> Result<(), LogsError> {
        let tx = self.db.begin_write()?;
        {
            let mut groups = tx.open_table(GROUPS)?;
            if groups.remove(name)?.is_none() {
                return Err(LogsError::GroupNotFound);
            }
            let mut prefix = name.as_bytes().to_vec();
            prefix.push(0);
            let end = prefix_end(&prefix);
            let mut events = tx.open_table(EVENTS)?;
            let mut order = tx.open_table(ORDER)?;
            let mut streams = tx.open_table(STREAMS)?;
            let mut meta = tx.open_table(META)?;
            let removed = Self::remove_events(&mut events, &mut order, &prefix, &end)?;
            Self::account_removed(&mut streams, &mut meta, &removed)?;
            streams.retain_in::<&[u8], _>(prefix.as_slice()..end.as_slice(), |_, _| false)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn group(&self, name: &str) -> Result<Option<(LogGroup, i64)>, LogsError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(GROUPS)?;
        let Some(v) = t.get(name)? else {
            return Ok(None);
        };
        let g: LogGroup = decode(v.value())?;
        let bytes = self.streams(name, "")?.iter().map(|s| s.stored_bytes).sum();
        Ok(Some((g, bytes)))
    }

    fn groups(&self, prefix: &str) -> Result<Vec<(LogGroup, i64)>, LogsError> {
        let names: Vec<LogGroup> = {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(GROUPS)?;
            let mut out = Vec::new();
            for e in t.range::<&str>(prefix..)? {
                let (k, v) = e?;
                if !k.value().starts_with(prefix) {
                    break;
                }
                out.push(decode(v.value())?);
            }
            out
        };
        names
            .into_iter()
            .map(|g| {
                let bytes = self
                    .streams(&g.log_group_name, "")?
                    .iter()
                    .map(|s| s.stored_bytes)
                    .sum();
                Ok((g, bytes))
            })
            .collect()
    }

    fn create_stream(&self, group: &str, stream: &LogStream) -> Result<(), LogsError> {
        let tx = self.db.begin_write()?;
        {
            if tx.open_table(GROUPS)?.get(group)?.is_none() {
                return Err(LogsError::GroupNotFound);
            }
            let mut t = tx.open_table(STREAMS)?;
            let k = stream_key(group, &stream.log_stream_name);
            if t.get(k.as_slice())?.is_some() {
                return Err(LogsError::AlreadyExists);
            }
            t.insert(k.as_slice(), encode(stream)?.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    fn delete_stream(&self, group: &str, stream: &str) -> Result<(), LogsError> {
        let tx = self.db.begin_write()?;
        {
            if tx.open_table(GROUPS)?.get(group)?.is_none() {
                return Err(LogsError::GroupNotFound);
            }
            let mut streams = tx.open_table(STREAMS)?;
            let skey = stream_key(group, stream);
            if streams.get(skey.as_slice())?.is_none() {
                return Err(LogsError::StreamNotFound);
            }
            let mut prefix = skey.clone();
            prefix.push(0);
            let end = prefix_end(&prefix);
            let mut events = tx.open_table(EVENTS)?;
            let mut order = tx.open_table(ORDER)?;
            let mut meta = tx.open_table(META)?;
            let removed = Self::remove_events(&mut events, &mut order, &prefix, &end)?;
            Self::account_removed(&mut streams, &mut meta, &removed)?;
            streams.remove(skey.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    fn streams(&self, group: &str, prefix: &str) -> Result<Vec<LogStream>, LogsError> {
        let tx = self.db.begin_read()?;
        if tx.open_table(GROUPS)?.get(group)?.is_none() {
            return Err(LogsError::GroupNotFound);
        }
        let t = tx.open_table(STREAMS)?;
        let lo = stream_key(group, prefix);
        let mut out = Vec::new();
        for e in t.range::<&[u8]>(lo.as_slice()..)? {
            let (k, v) = e?;
            if !k.value().starts_with(&lo) {
                break;
            }
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    fn append(
        &self,
        group: &str,
        stream: &str,
        events: &[InputLogEvent],
        ingestion_ms: i64,
        cursor: Option<ShipCursor>,
    ) -> Result<Appended, LogsError> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Eventual);
        let mut out = Appended::default();
        {
            if tx.open_table(GROUPS)?.get(group)?.is_none() {
                return Err(LogsError::GroupNotFound);
            }
            let mut streams = tx.open_table(STREAMS)?;
            let skey = stream_key(group, stream);
            let rec = streams.get(skey.as_slice())?.map(|v| v.value().to_vec());
            let Some(rec) = rec else {
                return Err(LogsError::StreamNotFound);
            };
            let mut s: LogStream = decode(&rec)?;
            let mut meta = tx.open_table(META)?;
            let mut table = tx.open_table(EVENTS)?;
            let mut order = tx.open_table(ORDER)?;
            let mut seq = meta.get(NEXT_SEQ)?.map_or(1, |v| v.value());
            let mut added = 0u64;
            let mut value = Vec::new();
            for e in events {
                let k = event_key(&skey, Pos::new(e.timestamp, seq));
                value.clear();
                value.extend_from_slice(&ingestion_ms.to_be_bytes());
                value.extend_from_slice(e.message.as_bytes());
                table.insert(k.as_slice(), value.as_slice())?;
                order.insert(seq, k.as_slice())?;
                seq += 1;
                added += event_bytes(e.message.len());
                s.first_event_timestamp = Some(
                    s.first_event_timestamp
                        .map_or(e.timestamp, |f| f.min(e.timestamp)),
                );
                s.last_event_timestamp = Some(
                    s.last_event_timestamp
                        .map_or(e.timestamp, |l| l.max(e.timestamp)),
                );
            }
            out.stored = events.len();
            if !events.is_empty() {
                s.last_ingestion_time = Some(ingestion_ms);
            }
            s.stored_bytes += added as i64;
            if cursor.is_some() {
                s.agent_cursor = cursor;
            }
            streams.insert(skey.as_slice(), encode(&s)?.as_slice())?;
            meta.insert(NEXT_SEQ, seq)?;
            let mut total = meta.get(TOTAL_BYTES)?.map_or(0, |v| v.value()) + added;
            meta.insert(TOTAL_BYTES, total)?;
            // Over the cap: evict the oldest events, whatever their group.
            let mut removed: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
            while total > self.config.max_bytes {
                let Some((_, k)) = order
                    .pop_first()?
                    .map(|(s, k)| (s.value(), k.value().to_vec()))
                else {
                    break;
                };
                let len = table.remove(k.as_slice())?.map(|v| v.value().len());
                if let (Some(len), Some((sk, _))) = (len, split_event_key(&k)) {
                    let b = event_bytes(len.saturating_sub(8));
                    total = total.saturating_sub(b);
                    let e = removed.entry(sk.to_vec()).or_default();
                    e.0 += 1;
                    e.1 += b;
                }
            }
            if !removed.is_empty() {
                out.evicted = Self::account_removed(&mut streams, &mut meta, &removed)?;
                let ev = meta.get(EVICTED)?.map_or(0, |v| v.value()) + out.evicted;
                meta.insert(EVICTED, ev)?;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn scan(
        &self,
        group: &str,
        stream: &str,
        after: Pos,
        before: Pos,
        reverse: bool,
        visit: &mut dyn FnMut(StoredEvent) -> bool,
    ) -> Result<(), LogsError> {
        let tx = self.db.begin_read()?;
        let skey = stream_key(group, stream);
        if tx.open_table(STREAMS)?.get(skey.as_slice())?.is_none() {
            return Err(LogsError::StreamNotFound);
        }
        let t = tx.open_table(EVENTS)?;
        let lo = event_key(&skey, after);
        let hi = event_key(&skey, before);
        let range = t.range::<&[u8]>(lo.as_slice()..hi.as_slice())?;
        let mut each = |e: RangeItem<'_>| -> Result<bool, LogsError> {
            let (k, v) = e?;
            let Some((_, pos)) = split_event_key(k.value()) else {
                return Ok(true);
            };
            if pos == after {
                return Ok(true);
            }
            let v = v.value();
            let ingestion = i64::from_be_bytes(v[..8].try_into().unwrap_or([0; 8]));
            Ok(visit(StoredEvent {
                timestamp: pos.ts,
                ingestion_time: ingestion,
                seq: pos.seq,
                log_stream_name: stream.to_owned(),
                message: String::from_utf8_lossy(&v[8..]).into_owned(),
            }))
        };
        if reverse {
            for e in range.rev() {
                if !each(e)? {
                    break;
                }
            }
        } else {
            for e in range {
                if !each(e)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn sweep(&self, now_ms: i64) -> Result<u64, LogsError> {
        let groups = self.groups("")?;
        let mut dropped = 0;
        for (g, _) in groups {
            let Some(days) = g.retention_in_days else {
                continue;
            };
            let cutoff = now_ms - i64::from(days) * 24 * 3600 * 1000;
            let names = match self.streams(&g.log_group_name, "") {
                Ok(s) => s,
                Err(LogsError::GroupNotFound) => continue,
                Err(e) => return Err(e),
            };
            let tx = self.db.begin_write()?;
            {
                let mut events = tx.open_table(EVENTS)?;
                let mut order = tx.open_table(ORDER)?;
                let mut streams = tx.open_table(STREAMS)?;
                let mut meta = tx.open_table(META)?;
                let mut all = HashMap::new();
                for s in names {
                    let skey = stream_key(&g.log_group_name, &s.log_stream_name);
                    let lo = event_key(&skey, Pos::START);
                    let hi = event_key(&skey, Pos::new(cutoff, 0));
                    all.extend(Self::remove_events(&mut events, &mut order, &lo, &hi)?);
                }
                dropped += Self::account_removed(&mut streams, &mut meta, &all)?;
            }
            tx.commit()?;
        }
        Ok(dropped)
    }

    fn stats(&self) -> Result<LogStats, LogsError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        let _ = meta.len()?;
        Ok(LogStats {
            bytes: meta.get(TOTAL_BYTES)?.map_or(0, |v| v.value()),
            evicted: meta.get(EVICTED)?.map_or(0, |v| v.value()),
        })
    }
}
