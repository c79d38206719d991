//! The etcd backend: berth's [`Store`] on an etcd v3 cluster, for control planes that need
//! their state replicated (several berth servers, or a store that outlives one machine).
//!
//! The trait was modelled on etcd's, so the mapping is direct: berth's [`Revision`] is
//! etcd's store revision (the response header's, and each key's `mod_revision` /
//! `create_revision`); a [`Txn`]'s compares become etcd compares on `mod_revision` (0 for an
//! absent key, as etcd compares a missing key as an empty record); `list` is one Range at one
//! revision (paged at that revision); `watch` is an etcd watch from `after + 1` with
//! `prev_kv`, so a delete event carries the deleted record's `create_revision`.
//!
//! etcd must run with `--max-txn-ops` raised to [`MIN_MAX_TXN_OPS`]: berth writes a record
//! and its index entries in one txn, and some hold more than etcd's default 128 operations
//! (a txn over the limit fails with an error that says so).
//!
//! Every key lives under a namespace (default `berth/`), so one etcd can hold several
//! berth control planes, or a restore can be checked next to the original.
//!
//! One difference from the redb backend: etcd refuses a txn that writes the same key twice,
//! so a txn is reduced to its last op per key before it is sent. The final state is the
//! same; what is lost is the intermediate event (a put followed by a delete of a new key
//! produces no event, and a delete followed by a put of an existing key keeps its
//! `create_revision`).

mod election;
mod watch;

mod members;
mod space;

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KvClient, TxnOp, TxnOpResponse,
};

use crate::error::StoreError;
use crate::store::{BoxFuture, BoxStream, Store};
use crate::types::{KeyValue, Op, Revision, Txn, TxnResult, WatchEvent};

pub use election::LEASE_TTL;

/// The namespace used when an `etcd://` URL names none.
pub const DEFAULT_NAMESPACE: &str = "berth/";
/// Records per Range request when listing (all at the first page's revision).
const LIST_PAGE: i64 = 500;
/// The `--max-txn-ops` etcd needs for berth's largest txns (a target group's targets, a
/// service's tasks, a restore batch).
pub const MIN_MAX_TXN_OPS: usize = 4096;
/// How long connecting to an unreachable cluster may take before `connect` gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one etcd request (a get, a page of a list, a txn) may take before it fails with
/// [`StoreError::Backend`]. Without it a request to a member that stopped answering (a
/// partition, a wedged disk) waits until the connection's keep-alive gives up, and the API
/// request that made it hangs with it; with it the API answers a ServerException in bounded
/// time (`tests/faults` blackholes etcd to check). A txn that times out has an unknown
/// outcome, as any commit error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] on an etcd v3 cluster (see the module docs for the mapping).
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    namespace: String,
    /// Takes dead members out of the client's channel (see `members`); shared by clones.
    _members: Option<std::sync::Arc<members::Prober>>,
    /// Whether etcd refuses writes for space (its NOSPACE alarm; see `space`).
    space: std::sync::Arc<space::Space>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Where an `etcd://` URL points: the endpoints and the key namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTarget {
    /// `host:port` of every member to connect to.
    pub endpoints: Vec<String>,
    /// The key prefix every berth key is stored under (ends with `/`).
    pub namespace: String,
}

impl EtcdTarget {
    /// Parses `etcd://host:2379[,host2:2379...][/namespace]`. Without a namespace, keys go
    /// under [`DEFAULT_NAMESPACE`].
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| StoreError::Backend(format!("bad etcd URL {url:?}: {why}"));
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| bad("it must start with etcd://"))?;
        let (hosts, namespace) = match rest.split_once('/') {
            Some((hosts, ns)) if !ns.trim_matches('/').is_empty() => {
                (hosts, format!("{}/", ns.trim_matches('/')))
            }
            Some((hosts, _)) => (hosts, DEFAULT_NAMESPACE.to_owned()),
            None => (rest, DEFAULT_NAMESPACE.to_owned()),
        };
        let endpoints: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty() {
            return Err(bad("it names no host"));
        }
        if let Some(h) = endpoints.iter().find(|h| !h.contains(':')) {
            return Err(bad(&format!("endpoint {h:?} has no port")));
        }
        Ok(Self {
            endpoints,
            namespace,
        })
    }
}

impl EtcdStore {
    /// Connects to the cluster at `url` (see [`EtcdTarget::parse`]) and checks that it answers.
    pub async fn connect_url(url: &str) -> Result<Self, StoreError> {
        Self::connect(&EtcdTarget::parse(url)?).await
    }

    /// Connects to `target`'s endpoints and checks that the cluster answers.
    pub async fn connect(target: &EtcdTarget) -> Result<Self, StoreError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let endpoints: Vec<String> = target
            .endpoints
            .iter()
            .map(|e| format!("http://{e}"))
            .collect();
        let client =
            tokio::time::timeout(CONNECT_TIMEOUT, Client::connect(endpoints, Some(options)))
                .await
                .map_err(|_| unreachable(target))?
                .map_err(etcd_err)?;
        let store = Self {
            _members: members::start(&client, &target.endpoints),
            space: std::sync::Arc::new(space::Space::start(&client)),
            client,
            namespace: target.namespace.clone(),
        };
        tokio::time::timeout(CONNECT_TIMEOUT, store.current_revision())
            .await
            .map_err(|_| unreachable(target))??;
        Ok(store)
    }

    /// The key namespace this store lives under.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Compacts etcd's history up to `revision`: watches from before it then fail with
    /// [`StoreError::Compacted`]. (etcd also compacts on its own with `--auto-compaction-*`.)
    pub async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.kv()
            .compact(to_etcd(revision)?, None)
            .await
            .map_err(etcd_err)?;
        Ok(())
    }

    fn kv(&self) -> KvClient {
        self.client.kv_client()
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.namespace)
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let kv = self.kv();
        let resp = bounded(
            || {
                let mut kv = kv.clone();
                let key = self.namespace.clone();
                async move { kv.get(key, Some(GetOptions::new().with_count_only())).await }
            },
            read_retryable,
        )
        .await?
        .map_err(etcd_err)?;
        header_revision(resp.header())
    }

    async fn do_get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let kv = self.kv();
        let full = self.full_key(key);
        let resp = bounded(
            || {
                let (mut kv, full) = (kv.clone(), full.clone());
                async move { kv.get(full, None).await }
            },
            read_retryable,
        )
        .await?
        .map_err(etcd_err)?;
        resp.kvs()
            .first()
            .map(|kv| from_etcd(&self.namespace, kv))
            .transpose()
    }

    async fn do_list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let start = self.full_key(prefix);
        let end = prefix_end(start.as_bytes());
        let kv = self.kv();
        let mut from = start.into_bytes();
        let mut at = 0i64;
        let mut out = Vec::new();
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(LIST_PAGE);
            if at > 0 {
                options = options.with_revision(at);
            }
            let resp = bounded(
                || {
                    let (mut kv, from, options) = (kv.clone(), from.clone(), options.clone());
                    async move { kv.get(from, Some(options)).await }
                },
                read_retryable,
            )
            .await?
            .map_err(etcd_err)?;
            if at == 0 {
                at = to_etcd(header_revision(resp.header())?)?;
            }
            for record in resp.kvs() {
                out.push(from_etcd(&self.namespace, record)?);
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        Ok((out, from_etcd_rev(at)))
    }

    async fn do_txn(&self, txn: Txn) -> Result<TxnResult, StoreError> {
        let compares: Vec<Compare> = txn
            .compares
            .iter()
            .map(|crate::types::Compare::ModRevision { key, revision }| {
                Ok(Compare::mod_revision(
                    self.full_key(key),
                    CompareOp::Equal,
                    to_etcd(*revision)?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        let ops: Vec<TxnOp> = last_op_per_key(&txn.ops)
            .into_iter()
            .map(|op| match op {
                Op::Put { key, value } => TxnOp::put(self.full_key(key), value.clone(), None),
                Op::Delete { key } => TxnOp::delete(self.full_key(key), None),
            })
            .collect();
        // On failure, read every compared key (at the same revision) to name the one that failed.
        let reads: Vec<TxnOp> = txn
            .compares
            .iter()
            .map(|crate::types::Compare::ModRevision { key, .. }| {
                TxnOp::get(self.full_key(key), None)
            })
            .collect();
        let request = etcd_client::Txn::new()
            .when(compares)
            .and_then(ops)
            .or_else(reads);
        let ops_count = txn.ops.len() + txn.compares.len();
        let kv = self.kv();
        let resp = bounded(
            || {
                let (mut kv, request) = (kv.clone(), request.clone());
                async move { kv.txn(request).await }
            },
            never_sent,
        )
        .await?
        .map_err(|e| {
            if space::refused_for_space(&e) {
                self.space.set_full(true);
            }
            txn_err(e, ops_count)
        })?;
        let revision = header_revision(resp.header())?;
        if resp.succeeded() {
            return Ok(TxnResult::Committed { revision });
        }
        let found = resp.op_responses();
        for (compare, read) in txn.compares.iter().zip(found) {
            let crate::types::Compare::ModRevision { key, revision } = compare;
            let actual = match read {
                TxnOpResponse::Get(get) => get
                    .kvs()
                    .first()
                    .map_or(0, |kv| from_etcd_rev(kv.mod_revision())),
                _ => continue,
            };
            if actual != *revision {
                return Ok(TxnResult::Conflict { key: key.clone() });
            }
        }
        // Every compare holds now but did not when etcd checked: cannot happen within one
        // etcd txn, but name the first compared key rather than claim success.
        let key = txn
            .compares
            .first()
            .map(|crate::types::Compare::ModRevision { key, .. }| key.clone())
            .unwrap_or_default();
        Ok(TxnResult::Conflict { key })
    }
}

impl Store for EtcdStore {
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>, StoreError>> {
        let key = key.to_owned();
        Box::pin(async move { self.do_get(&key).await })
    }

    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<(Vec<KeyValue>, Revision), StoreError>> {
        let prefix = prefix.to_owned();
        Box::pin(async move { self.do_list(&prefix).await })
    }

    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResult, StoreError>> {
        Box::pin(self.do_txn(txn))
    }

    fn revision(&self) -> BoxFuture<'_, Result<Revision, StoreError>> {
        Box::pin(self.current_revision())
    }

    fn watch(&self, prefix: &str, after: Revision) -> BoxStream<Result<WatchEvent, StoreError>> {
        watch::stream(
            self.client.watch_client(),
            self.namespace.clone(),
            prefix,
            after,
        )
    }

    fn healthy(&self) -> bool {
        self.space.has_room()
    }

    fn elect(&self, replica: &str) -> crate::Election {
        election::start(self.clone(), replica)
    }
}

/// The ops of `ops` that decide each key's final state: the last one per key, in order.
fn last_op_per_key(ops: &[Op]) -> Vec<&Op> {
    let key = |op: &Op| match op {
        Op::Put { key, .. } | Op::Delete { key } => key.clone(),
    };
    let mut out: Vec<&Op> = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let k = key(op);
        if !ops[i + 1..].iter().any(|later| key(later) == k) {
            out.push(op);
        }
    }
    out
}

/// The smallest key greater than every key starting with `prefix` (etcd's `range_end`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // An empty (or all-0xff) prefix: every key.
    vec![0]
}

fn from_etcd(namespace: &str, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: strip_namespace(namespace, kv.key())?,
        value: kv.value().to_vec(),
        create_revision: from_etcd_rev(kv.create_revision()),
        mod_revision: from_etcd_rev(kv.mod_revision()),
    })
}

fn strip_namespace(namespace: &str, key: &[u8]) -> Result<String, StoreError> {
    let key = std::str::from_utf8(key)
        .map_err(|_| StoreError::Backend(format!("etcd key {key:?} is not UTF-8")))?;
    key.strip_prefix(namespace)
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Backend(format!("etcd key {key:?} is outside {namespace:?}")))
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    header
        .map(|h| from_etcd_rev(h.revision()))
        .ok_or_else(|| StoreError::Backend("etcd response has no header".into()))
}

fn from_etcd_rev(rev: i64) -> Revision {
    u64::try_from(rev).unwrap_or(0)
}

fn to_etcd(rev: Revision) -> Result<i64, StoreError> {
    i64::try_from(rev).map_err(|_| StoreError::Backend(format!("revision {rev} is out of range")))
}

/// Runs one etcd request within [`REQUEST_TIMEOUT`], sending it again after an error that
/// `retry` accepts (with a short backoff). A balanced channel keeps picking a member that
/// has gone away until the `members` prober takes it out, and such a pick fails at once
/// with a connect error: the request never left, so sending it again (to another member)
/// is safe even for a txn.
async fn bounded<T, F, Fut>(
    mut attempt: F,
    retry: fn(&etcd_client::Error) -> bool,
) -> Result<Result<T, etcd_client::Error>, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let attempts = async {
        let mut backoff = Duration::from_millis(20);
        loop {
            match attempt().await {
                Err(e) if retry(&e) => {
                    tracing::debug!(error = %e, "etcd request not sent; sending it again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                done => return done,
            }
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, attempts)
        .await
        .map_err(|_| {
            StoreError::Backend(format!(
                "etcd did not answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            ))
        })
}

/// Whether `e` says the request never reached a member (no connection could be made), so
/// sending it again cannot apply it twice.
fn never_sent(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::Unavailable => {
            let text = format!("{s} {s:?}");
            text.contains("connect error")
                || text.contains("ConnectError")
                || text.contains("error trying to connect")
        }
        // hyper cancels the requests still queued on a connection that closes under them
        // (a member killed): they were never written to it.
        etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::Cancelled => {
            let text = format!("{s} {s:?}");
            text.contains("Canceled") && text.contains("connection closed")
        }
        _ => false,
    }
}

/// Whether a read that failed with `e` may simply be asked again: any unavailability
/// (a read changes nothing).
fn read_retryable(e: &etcd_client::Error) -> bool {
    never_sent(e)
        || matches!(e, etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::Unavailable)
}

fn etcd_err(e: etcd_client::Error) -> StoreError {
    StoreError::Backend(format!("etcd: {e}"))
}

/// etcd's own limits on a txn are server flags; say which one to raise.
fn txn_err(e: etcd_client::Error, ops: usize) -> StoreError {
    let text = e.to_string();
    if text.contains("too many operations in txn request") {
        return StoreError::Backend(format!(
            "etcd refused a txn of {ops} operations: start etcd with --max-txn-ops of at least \
             {MIN_MAX_TXN_OPS} (its default, 128, is too small for berth)"
        ));
    }
    if space::refused_for_space(&e) {
        return StoreError::Backend(
            "etcd is out of space (its NOSPACE alarm is raised): the write was not applied; \
             reads still work. Free space in etcd (compact, defragment, then \
             `etcdctl alarm disarm`) or raise its --quota-backend-bytes"
                .to_owned(),
        );
    }
    if text.contains("request is too large") {
        return StoreError::Backend(format!(
            "etcd refused a txn as too large: raise etcd's --max-request-bytes ({text})"
        ));
    }
    etcd_err(e)
}

fn unreachable(target: &EtcdTarget) -> StoreError {
    StoreError::Backend(format!(
        "etcd at {} did not answer within {}s",
        target.endpoints.join(","),
        CONNECT_TIMEOUT.as_secs()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_and_without_a_namespace() {
        let t = EtcdTarget::parse("etcd://a:2379,b:2380").unwrap();
        assert_eq!(t.endpoints, vec!["a:2379", "b:2380"]);
        assert_eq!(t.namespace, DEFAULT_NAMESPACE);
        let t = EtcdTarget::parse("etcd://a:1/prod/east/").unwrap();
        assert_eq!(t.namespace, "prod/east/");
        assert!(EtcdTarget::parse("http://a:1").is_err());
        assert!(EtcdTarget::parse("etcd://").is_err());
        assert!(EtcdTarget::parse("etcd://a").is_err());
    }

    #[test]
    fn prefix_end_is_the_next_key() {
        assert_eq!(prefix_end(b"ab"), b"ac");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b""), b"\0");
    }

    #[test]
    fn a_txn_keeps_the_last_op_per_key() {
        let txn = Txn::new()
            .put("a", b"1".to_vec())
            .delete("b")
            .delete("a")
            .put("b", b"2".to_vec());
        let kept = last_op_per_key(&txn.ops);
        assert_eq!(
            kept,
            vec![
                &Op::Delete { key: "a".into() },
                &Op::Put {
                    key: "b".into(),
                    value: b"2".to_vec()
                }
            ]
        );
    }
}
