//! Active health checks, as ELB performs them.
//!
//! [`HealthState::step`] is the pure state machine (thresholds, ELB reason codes); [`probe`]
//! is one HTTP GET on a fresh connection, like ELB's checker (it never reuses the traffic
//! pool, so a check says whether *new* connections work). The per-target loop that joins
//! them lives in `group.rs`, beside the request path, and only swaps snapshots.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, Request, Version};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::config::{HealthCheckConfig, TargetState};

pub(crate) const REGISTRATION_IN_PROGRESS: &str = "Elb.RegistrationInProgress";
pub(crate) const INITIAL_HEALTH_CHECKING: &str = "Elb.InitialHealthChecking";
pub(crate) const RESPONSE_CODE_MISMATCH: &str = "Target.ResponseCodeMismatch";
pub(crate) const TIMEOUT: &str = "Target.Timeout";
pub(crate) const FAILED_HEALTH_CHECKS: &str = "Target.FailedHealthChecks";
pub(crate) const DEREGISTRATION_IN_PROGRESS: &str = "Target.DeregistrationInProgress";
pub(crate) const HEALTH_CHECK_DISABLED: &str = "Target.HealthCheckDisabled";

/// The outcome of one health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    Ok,
    Mismatch(u16),
    Timeout,
    Failed,
}

/// ELB's view of one target's health, plus the consecutive-result counters behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthState {
    pub state: TargetState,
    pub reason: Option<&'static str>,
    pub description: Option<String>,
    successes: u32,
    failures: u32,
}

impl HealthState {
    /// A freshly registered target: `initial` until the first check completes.
    pub fn registering() -> Self {
        Self::with(
            TargetState::Initial,
            Some(REGISTRATION_IN_PROGRESS),
            Some("Target registration is in progress"),
        )
    }

    pub fn disabled() -> Self {
        Self::with(
            TargetState::Unused,
            Some(HEALTH_CHECK_DISABLED),
            Some("Health checks are disabled"),
        )
    }

    pub fn draining() -> Self {
        Self::with(
            TargetState::Draining,
            Some(DEREGISTRATION_IN_PROGRESS),
            Some("Target deregistration is in progress"),
        )
    }

    fn with(state: TargetState, reason: Option<&'static str>, desc: Option<&str>) -> Self {
        Self {
            state,
            reason,
            description: desc.map(str::to_owned),
            successes: 0,
            failures: 0,
        }
    }

    /// Folds one check result in; returns whether anything `health()` shows changed.
    pub fn step(&mut self, probe: Probe, cfg: &HealthCheckConfig) -> bool {
        let before = (self.state, self.reason, self.description.clone());
        if probe == Probe::Ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if self.successes >= cfg.healthy_threshold.max(1) {
                *self = Self::with(TargetState::Healthy, None, None);
                self.successes = cfg.healthy_threshold;
            } else if self.state == TargetState::Initial {
                self.reason = Some(INITIAL_HEALTH_CHECKING);
                self.description = Some("Initial health checks in progress".to_owned());
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            let (reason, desc) = match probe {
                Probe::Mismatch(code) => (
                    RESPONSE_CODE_MISMATCH,
                    format!("Health checks failed with these codes: [{code}]"),
                ),
                Probe::Timeout => (TIMEOUT, "Request timed out".to_owned()),
                _ => (FAILED_HEALTH_CHECKS, "Health checks failed".to_owned()),
            };
            if self.failures >= cfg.unhealthy_threshold.max(1) {
                self.state = TargetState::Unhealthy;
                self.reason = Some(reason);
                self.description = Some(desc);
            } else if self.state == TargetState::Initial {
                self.reason = Some(INITIAL_HEALTH_CHECKING);
                self.description = Some("Initial health checks in progress".to_owned());
            }
        }
        before != (self.state, self.reason, self.description.clone())
    }
}

/// ELB's success-code matcher: `"200"`, `"200,202"`, `"200-299"` (and mixtures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodeMatcher(Vec<(u16, u16)>);

impl CodeMatcher {
    /// Falls back to `200` for an unparsable matcher (ELB rejects those at the API).
    pub fn parse(s: &str) -> Self {
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let range = match part.split_once('-') {
                Some((a, b)) => a.trim().parse().ok().zip(b.trim().parse().ok()),
                None => part.parse().ok().map(|c| (c, c)),
            };
            match range {
                Some(r) => ranges.push(r),
                None => return Self(vec![(200, 200)]),
            }
        }
        if ranges.is_empty() {
            ranges.push((200, 200));
        }
        Self(ranges)
    }

    pub fn matches(&self, code: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&code))
    }
}

/// One health check: connect, `GET path`, compare the status.
pub(crate) async fn probe(addr: SocketAddr, cfg: &HealthCheckConfig, http2: bool) -> Probe {
    let addr = SocketAddr::new(addr.ip(), cfg.port.unwrap_or(addr.port()));
    let matcher = CodeMatcher::parse(&cfg.matcher);
    match tokio::time::timeout(cfg.timeout, get_status(addr, &cfg.path, http2)).await {
        Err(_) => Probe::Timeout,
        Ok(Err(e)) => {
            tracing::debug!(%addr, error = %e, "health check failed");
            Probe::Failed
        }
        Ok(Ok(code)) if matcher.matches(code) => Probe::Ok,
        Ok(Ok(code)) => Probe::Mismatch(code),
    }
}

#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Request(#[from] http::Error),
}

async fn get_status(addr: SocketAddr, path: &str, http2: bool) -> Result<u16, ProbeError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);
    let path = if path.starts_with('/') { path } else { "/" };
    let builder = Request::get(path)
        .header(header::HOST, addr.to_string())
        .header(header::USER_AGENT, "ELB-HealthChecker/2.0");
    let status = if http2 {
        let req = builder
            .uri(format!("http://{addr}{path}"))
            .version(Version::HTTP_2)
            .body(Empty::<Bytes>::new())?;
        let (mut tx, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        tx.send_request(req).await?.status()
    } else {
        let req = builder
            .header(header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())?;
        let (mut tx, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        tx.send_request(req).await?.status()
    };
    Ok(status.as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(healthy: u32, unhealthy: u32) -> HealthCheckConfig {
        HealthCheckConfig {
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
            ..HealthCheckConfig::default()
        }
    }

    #[test]
    fn matcher_syntax() {
        let m = CodeMatcher::parse("200,202");
        assert!(m.matches(200) && m.matches(202) && !m.matches(201));
        let m = CodeMatcher::parse("200-299");
        assert!(m.matches(204) && !m.matches(300));
        let m = CodeMatcher::parse("garbage");
        assert!(m.matches(200) && !m.matches(204));
    }

    #[test]
    fn initial_to_healthy_after_threshold() {
        let c = cfg(3, 2);
        let mut h = HealthState::registering();
        assert_eq!(h.reason, Some(REGISTRATION_IN_PROGRESS));
        assert!(
            h.step(Probe::Ok, &c),
            "reason moves to InitialHealthChecking"
        );
        assert_eq!(
            (h.state, h.reason),
            (TargetState::Initial, Some(INITIAL_HEALTH_CHECKING))
        );
        assert!(!h.step(Probe::Ok, &c));
        assert!(h.step(Probe::Ok, &c));
        assert_eq!((h.state, h.reason), (TargetState::Healthy, None));
        assert!(!h.step(Probe::Ok, &c));
    }

    #[test]
    fn healthy_to_unhealthy_with_reasons() {
        let c = cfg(1, 2);
        let mut h = HealthState::registering();
        h.step(Probe::Ok, &c);
        assert_eq!(h.state, TargetState::Healthy);
        assert!(
            !h.step(Probe::Mismatch(500), &c),
            "one failure is below the threshold"
        );
        assert_eq!(h.state, TargetState::Healthy);
        assert!(h.step(Probe::Mismatch(500), &c));
        assert_eq!(h.state, TargetState::Unhealthy);
        assert_eq!(h.reason, Some(RESPONSE_CODE_MISMATCH));
        assert_eq!(
            h.description.as_deref(),
            Some("Health checks failed with these codes: [500]")
        );
        assert!(
            h.step(Probe::Timeout, &c),
            "reason follows the latest failure"
        );
        assert_eq!(h.reason, Some(TIMEOUT));
        h.step(Probe::Failed, &c);
        assert_eq!(h.reason, Some(FAILED_HEALTH_CHECKS));
        assert!(h.step(Probe::Ok, &c));
        assert_eq!(h.state, TargetState::Healthy);
    }

    #[test]
    fn success_resets_failure_streak() {
        let c = cfg(5, 2);
        let mut h = HealthState::registering();
        h.step(Probe::Failed, &c);
        h.step(Probe::Ok, &c);
        h.step(Probe::Failed, &c);
        assert_eq!(h.state, TargetState::Initial);
        h.step(Probe::Failed, &c);
        assert_eq!(h.state, TargetState::Unhealthy);
    }
}
