//! Agent identity: join tokens that expire and rotate, and the per-instance credential a
//! registration exchanges a join token for.
//!
//! Why two credentials: a join token is shared by every host of a cluster (it is pasted into
//! user data and launch scripts), so it must only be good for *joining*. Everything an agent
//! does after that (poll its desired tasks, report them, ship logs) names one container
//! instance and is checked against that instance's own credential, so a host cannot read
//! another host's tasks (and their environment) or report them stopped.
//!
//! - A join token is `bjt2.ISSUED.EXPIRES.MAC` (milliseconds since the epoch; the MAC an
//!   HMAC-SHA256 under the server's join secret of the cluster and both times). Nothing is
//!   stored per token. It expires after `--join-token-ttl` (24 h by default, as kubeadm's
//!   bootstrap tokens: long enough to bring up a fleet, short enough that a leaked token soon
//!   stops working).
//! - Rotation (`BerthV1.RotateJoinToken`) records its time per cluster (`jointoken/CLUSTER`):
//!   a token issued before a rotation keeps working for the rotation's grace period (1 h by
//!   default), so hosts being launched with it still join; then it is refused. Registered
//!   agents are unaffected: they use their instance credential.
//! - An instance credential is `bic1.` and 32 random bytes (hex); only its SHA-256 is kept, on
//!   its own key beside the container instance record. The server chooses the instance id. Deregistering the
//!   instance drops the hash: the credential is revoked.

use berth_model::{keys, ApiError, ErrorCode};
use berth_store::{StoreExt, Txn, TxnResult};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{store_err, to_bytes, Ops};

/// How long a join token is good for unless configured (`--join-token-ttl`): 24 h.
pub const DEFAULT_TOKEN_TTL_SECS: f64 = 86_400.0;
/// How long a rotated-out join token keeps working unless configured: 1 h.
pub const DEFAULT_ROTATION_GRACE_SECS: f64 = 3_600.0;

fn millis(secs: f64) -> u64 {
    (secs.max(0.0) * 1000.0) as u64
}

fn token_mac(secret: &str, cluster: &str, issued: u64, expires: u64) -> Option<String> {
    if secret.is_empty() {
        return None;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(b"berth-join-token/v2/");
    mac.update(cluster.as_bytes());
    mac.update(format!("/{issued}/{expires}").as_bytes());
    Some(hex::encode(&mac.finalize().into_bytes()[..20]))
}

/// A join token for `cluster` under `secret`, issued at `now` (epoch seconds) and good for
/// `ttl` seconds (empty when the server has no join secret: it accepts no agent).
pub fn join_token(secret: &str, cluster: &str, now: f64, ttl: f64) -> String {
    let issued = millis(now);
    let expires = issued + millis(ttl);
    match token_mac(secret, cluster, issued, expires) {
        Some(mac) => format!("bjt2.{issued}.{expires}.{mac}"),
        None => String::new(),
    }
}

/// Compares two secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The issue and expiry times of `token` when its MAC is right for `cluster`.
fn parse_token(secret: &str, cluster: &str, token: &str) -> Option<(u64, u64)> {
    let mut parts = token.split('.');
    let (Some("bjt2"), Some(issued), Some(expires), Some(mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let (issued, expires) = (issued.parse().ok()?, expires.parse().ok()?);
    let want = token_mac(secret, cluster, issued, expires)?;
    same(mac, &want).then_some((issued, expires))
}

/// One rotation still in its grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// When it happened (epoch ms).
    pub at_ms: u64,
    /// Tokens issued before `at_ms` are refused from this time (epoch ms).
    pub grace_until_ms: u64,
}

/// A cluster's join-token rotations (stored at `jointoken/CLUSTER`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotations {
    /// Tokens issued before this (epoch ms) are refused: their grace is over.
    #[serde(default)]
    pub cutoff_ms: u64,
    /// Rotations whose grace may not be over yet, oldest first.
    #[serde(default)]
    pub pending: Vec<Rotation>,
}

impl Rotations {
    /// Folds the rotations whose grace is over at `now_ms` into the cutoff.
    pub fn settle(&mut self, now_ms: u64) {
        let (over, left): (Vec<Rotation>, Vec<Rotation>) = self
            .pending
            .iter()
            .partition(|r| r.grace_until_ms <= now_ms);
        for r in over {
            self.cutoff_ms = self.cutoff_ms.max(r.at_ms);
        }
        self.pending = left;
    }

    /// Records a rotation at `now_ms` whose grace lasts `grace_ms`.
    pub fn rotate(&mut self, now_ms: u64, grace_ms: u64) {
        self.settle(now_ms);
        self.pending.push(Rotation {
            at_ms: now_ms,
            grace_until_ms: now_ms + grace_ms,
        });
        if grace_ms == 0 {
            self.settle(now_ms);
        }
    }

    /// Whether a token issued at `issued_ms` is still admitted at `now_ms`: every rotation
    /// after its issue must still be in its grace period.
    pub fn admits(&self, issued_ms: u64, now_ms: u64) -> bool {
        let mut s = self.clone();
        s.settle(now_ms);
        issued_ms >= s.cutoff_ms
            && s.pending
                .iter()
                .all(|r| issued_ms >= r.at_ms || now_ms < r.grace_until_ms)
    }
}

fn refused(message: &str) -> ApiError {
    ApiError::new(ErrorCode::UnrecognizedClientException, message)
}

async fn rotations(state: &Ops, cluster: &str) -> Result<(Rotations, u64), ApiError> {
    Ok(state
        .store
        .get_json::<Rotations>(&keys::join_tokens(cluster))
        .await
        .map_err(store_err)?
        .unwrap_or_default())
}

/// Checks the join token an agent presented for `cluster`: its MAC, its expiry, and the
/// cluster's rotations.
pub async fn check_token(state: &Ops, given: &str, cluster: &str) -> Result<(), ApiError> {
    let Some((issued, expires)) = parse_token(&state.config.join_secret, cluster, given) else {
        return Err(refused("The join token is not valid for this cluster."));
    };
    let now = millis(state.now());
    if now >= expires {
        return Err(refused(
            "The join token has expired: get a new one with `berth join-token`.",
        ));
    }
    let (rot, _) = rotations(state, cluster).await?;
    if !rot.admits(issued, now) {
        return Err(refused(
            "The join token was rotated out and its grace period is over: get a new one with `berth join-token`.",
        ));
    }
    Ok(())
}

/// Mints a token for `cluster` now, with the configured lifetime.
pub(crate) fn current_token(state: &Ops, cluster: &str) -> (String, f64) {
    let now = state.now();
    let ttl = state.config.join_token_ttl_secs;
    (
        join_token(&state.config.join_secret, cluster, now, ttl),
        ((millis(now) + millis(ttl)) as f64) / 1000.0,
    )
}

/// Rotates `cluster`'s join token: tokens issued until now stay good for `grace` seconds.
pub(crate) async fn rotate(state: &Ops, cluster: &str, grace: f64) -> Result<f64, ApiError> {
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut rot, rev) = rotations(state, cluster).await?;
        let now = millis(state.now());
        let grace_ms = millis(grace);
        rot.rotate(now, grace_ms);
        let key = keys::join_tokens(cluster);
        let txn = Txn::new()
            .when_mod_revision(key.clone(), rev)
            .put(key, to_bytes(&rot)?);
        if let TxnResult::Committed { .. } = state.store.txn(txn).await.map_err(store_err)? {
            return Ok(((now + grace_ms) as f64) / 1000.0);
        }
    }
    Err(ApiError::server("Join token rotated concurrently; retry."))
}

/// A new instance credential and the hash the server keeps of it.
pub(crate) fn new_credential() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let credential = format!("bic1.{}", hex::encode(bytes));
    let hash = credential_hash(&credential);
    (credential, hash)
}

/// The SHA-256 (hex) of an instance credential, as kept on the instance record.
pub(crate) fn credential_hash(credential: &str) -> String {
    hex::encode(Sha256::digest(credential.as_bytes()))
}

/// The credential hash kept for an instance, if it has one.
pub(crate) async fn stored_hash(
    state: &Ops,
    cluster: &str,
    instance: &str,
) -> Result<Option<String>, ApiError> {
    Ok(state
        .store
        .get_json::<String>(&keys::instance_credential(cluster, instance))
        .await
        .map_err(store_err)?
        .map(|(h, _)| h))
}

/// Whether `credential` matches the kept `hash`.
pub(crate) fn holds(hash: Option<&str>, credential: Option<&str>) -> bool {
    match (hash, credential) {
        (Some(h), Some(c)) => same(h, &credential_hash(c)),
        _ => false,
    }
}

/// The refusal of a call made for an instance with another instance's credential (or none).
pub(crate) fn not_yours(instance: &str) -> ApiError {
    ApiError::new(
        ErrorCode::AccessDeniedException,
        format!("The instance credential is not valid for container instance {instance}."),
    )
}

/// The token a logs endpoint client (the CLI, through `GetTaskLogsEndpoint`) presents to
/// `instance`'s agent: per instance, so one agent cannot read another's container logs.
pub fn logs_token(secret: &str, cluster: &str, instance: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    if secret.is_empty() {
        return String::new();
    }
    mac.update(b"berth-agent-logs/v1/");
    mac.update(cluster.as_bytes());
    mac.update(b"/");
    mac.update(instance.as_bytes());
    format!("blt1.{}", hex::encode(&mac.finalize().into_bytes()[..20]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_cluster_secret_and_times() {
        let t = join_token("s", "web", 100.0, 60.0);
        assert_eq!(parse_token("s", "web", &t), Some((100_000, 160_000)));
        assert_eq!(parse_token("s", "api", &t), None);
        assert_eq!(parse_token("t", "web", &t), None);
        // Stretching the expiry breaks the MAC.
        let forged = t.replace(".160000.", ".960000.");
        assert_eq!(parse_token("s", "web", &forged), None);
        assert_eq!(parse_token("s", "web", "bjt1.00"), None);
        assert_eq!(join_token("", "web", 100.0, 60.0), "");
    }

    #[test]
    fn a_rotation_admits_older_tokens_for_its_grace_only() {
        let mut r = Rotations::default();
        assert!(r.admits(0, 5));
        r.rotate(1_000, 500);
        assert!(r.admits(900, 1_200), "in the grace period");
        assert!(r.admits(1_000, 9_000), "issued at or after the rotation");
        assert!(!r.admits(900, 1_500), "grace over");
        // A second rotation does not extend the first one's grace.
        r.rotate(1_400, 500);
        assert!(!r.admits(900, 1_600));
        assert!(r.admits(1_200, 1_600));
        assert!(!r.admits(1_200, 1_900));
        r.settle(2_000);
        assert_eq!(r.cutoff_ms, 1_400);
        assert!(r.pending.is_empty());
        let mut now = Rotations::default();
        now.rotate(10, 0);
        assert!(!now.admits(9, 10), "no grace: refused at once");
    }

    #[test]
    fn credentials_are_random_and_only_their_hash_is_kept() {
        let (a, ha) = new_credential();
        let (b, _) = new_credential();
        assert_ne!(a, b);
        assert!(a.starts_with("bic1.") && a.len() == 5 + 64);
        assert_eq!(credential_hash(&a), ha);
        assert!(!ha.contains(&a[5..]));
    }
}
