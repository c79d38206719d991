//! Lock-free counters for the request path and their Prometheus text rendering.
//!
//! Every request touches a handful of relaxed atomics and nothing else; rendering walks the
//! current targets under the control lock. Group and listener counters live in registries
//! that outlive `apply` so totals stay monotonic while ids come and go.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::config::TargetState;
use crate::group::Group;

/// Upper bounds (seconds) of the latency histogram, like ALB's TargetResponseTime range.
pub(crate) const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bucket bounds in microseconds, for integer comparison on the hot path.
const BUCKETS_US: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// Non-cumulative; the last slot is `+Inf`.
    counts: [AtomicU64; 15],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cum = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cum += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cum}");
        }
        cum += self.counts[BUCKETS.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cum}");
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cum}");
    }
}

/// Responses by status class, 1xx..5xx.
#[derive(Debug, Default)]
pub(crate) struct ByClass([AtomicU64; 5]);

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl ByClass {
    pub fn record(&self, status: u16) {
        let i = usize::from((status / 100).clamp(1, 5)) - 1;
        self.0[i].fetch_add(1, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, c) in CLASSES.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}{{{labels},code=\"{c}\"}} {}",
                self.0[i].load(Relaxed)
            );
        }
    }
}

/// Per target: what ALB reports per target in CloudWatch.
#[derive(Debug, Default)]
pub(crate) struct TargetMetrics {
    pub responses: ByClass,
    pub latency: Histogram,
}

/// Per target group, monotonic across applies.
#[derive(Debug, Default)]
pub(crate) struct GroupMetrics {
    /// Requests forwarded to the group (RequestCountPerTarget's numerator).
    pub requests: AtomicU64,
    pub responses: ByClass,
    pub latency: Histogram,
    /// TargetConnectionErrorCount: connections to a target refused (the request then went to
    /// another target, or was answered 502).
    pub connect_errors: AtomicU64,
}

/// Per listener, including requests the load balancer answered itself.
#[derive(Debug, Default)]
pub(crate) struct ListenerMetrics {
    pub requests: AtomicU64,
    pub responses: ByClass,
    /// HTTPCode_ELB_502/503/504_Count.
    pub elb_502: AtomicU64,
    pub elb_503: AtomicU64,
    pub elb_504: AtomicU64,
    /// RejectedConnectionCount: connections closed unread, over a connection cap.
    pub rejected: AtomicU64,
}

impl ListenerMetrics {
    pub fn elb_error(&self, status: u16) {
        match status {
            502 => self.elb_502.fetch_add(1, Relaxed),
            503 => self.elb_503.fetch_add(1, Relaxed),
            504 => self.elb_504.fetch_add(1, Relaxed),
            _ => 0,
        };
    }
}

/// Escapes a Prometheus label value.
pub(crate) fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

pub(crate) fn help(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub(crate) fn render_listener(out: &mut String, id: &str, m: &ListenerMetrics, part: u8) {
    let l = format!("listener=\"{}\"", label(id));
    match part {
        0 => {
            let _ = writeln!(
                out,
                "berth_lb_requests_total{{{l}}} {}",
                m.requests.load(Relaxed)
            );
        }
        1 => m.responses.render(out, "berth_lb_responses_total", &l),
        3 => {
            let _ = writeln!(
                out,
                "berth_lb_rejected_connections_total{{{l}}} {}",
                m.rejected.load(Relaxed)
            );
        }
        _ => {
            for (code, c) in [(502, &m.elb_502), (503, &m.elb_503), (504, &m.elb_504)] {
                let _ = writeln!(
                    out,
                    "berth_lb_elb_errors_total{{{l},code=\"{code}\"}} {}",
                    c.load(Relaxed)
                );
            }
        }
    }
}

pub(crate) fn render_group(out: &mut String, labels: &str, m: &GroupMetrics, part: u8) {
    match part {
        0 => {
            let _ = writeln!(
                out,
                "berth_lb_target_group_requests_total{{{labels}}} {}",
                m.requests.load(Relaxed)
            );
        }
        1 => m
            .responses
            .render(out, "berth_lb_target_group_responses_total", labels),
        2 => {
            let _ = writeln!(
                out,
                "berth_lb_target_connection_errors_total{{{labels}}} {}",
                m.connect_errors.load(Relaxed)
            );
        }
        _ => m
            .latency
            .render(out, "berth_lb_target_group_response_seconds", labels),
    }
}

pub(crate) fn render_target(out: &mut String, labels: &str, m: &TargetMetrics, part: u8) {
    match part {
        0 => m
            .responses
            .render(out, "berth_lb_target_responses_total", labels),
        _ => m
            .latency
            .render(out, "berth_lb_target_response_seconds", labels),
    }
}

/// The listener families, one series per listener.
pub(crate) fn render_listeners(out: &mut String, listeners: &[(String, Arc<ListenerMetrics>)]) {
    let families = [
        (
            "berth_lb_requests_total",
            "counter",
            "Requests received per listener.",
        ),
        (
            "berth_lb_responses_total",
            "counter",
            "Responses sent per listener by status class.",
        ),
        (
            "berth_lb_elb_errors_total",
            "counter",
            "Responses the load balancer generated itself (HTTPCode_ELB_5XX).",
        ),
        (
            "berth_lb_rejected_connections_total",
            "counter",
            "Connections closed unread over a connection cap (RejectedConnectionCount).",
        ),
    ];
    for (part, (name, kind, h)) in families.iter().enumerate() {
        help(out, name, kind, h);
        for (id, m) in listeners {
            render_listener(out, id, m, part as u8);
        }
    }
}

/// The client connections open over all listeners, against the cap.
pub(crate) fn render_open(out: &mut String, open: usize) {
    help(
        out,
        "berth_lb_open_connections",
        "gauge",
        "Client connections open over all listeners.",
    );
    let _ = writeln!(out, "berth_lb_open_connections {open}");
}

/// The target group families, for every group seen since start (totals stay monotonic).
pub(crate) fn render_groups(out: &mut String, groups: &[(String, Arc<GroupMetrics>)]) {
    let families = [
        (
            "berth_lb_target_group_requests_total",
            "counter",
            "Requests forwarded per target group (RequestCount).",
        ),
        (
            "berth_lb_target_group_responses_total",
            "counter",
            "Target responses per target group by status class.",
        ),
        (
            "berth_lb_target_connection_errors_total",
            "counter",
            "Connections to targets that failed (TargetConnectionErrorCount).",
        ),
        (
            "berth_lb_target_group_response_seconds",
            "histogram",
            "Time to the target's response head (TargetResponseTime).",
        ),
    ];
    for (part, (name, kind, h)) in families.iter().enumerate() {
        help(out, name, kind, h);
        for (id, m) in groups {
            render_group(
                out,
                &format!("target_group=\"{}\"", label(id)),
                m,
                part as u8,
            );
        }
    }
}

/// The families of the groups configured now: host counts and per-target series.
pub(crate) fn render_live(out: &mut String, live: &[Arc<Group>]) {
    help(
        out,
        "berth_lb_healthy_hosts",
        "gauge",
        "Healthy targets per target group (HealthyHostCount).",
    );
    for g in live {
        let n = g
            .targets()
            .iter()
            .filter(|t| !t.is_draining() && t.state() == TargetState::Healthy)
            .count();
        out.push_str(&format!("berth_lb_healthy_hosts{{{}}} {n}\n", g.labels));
    }
    help(
        out,
        "berth_lb_unhealthy_hosts",
        "gauge",
        "Unhealthy targets per target group (UnHealthyHostCount).",
    );
    for g in live {
        let n = g
            .targets()
            .iter()
            .filter(|t| !t.is_draining() && t.state() == TargetState::Unhealthy)
            .count();
        out.push_str(&format!("berth_lb_unhealthy_hosts{{{}}} {n}\n", g.labels));
    }
    help(
        out,
        "berth_lb_target_in_flight",
        "gauge",
        "Requests in flight per target.",
    );
    for g in live {
        for t in g.targets() {
            out.push_str(&format!(
                "berth_lb_target_in_flight{{{}}} {}\n",
                t.labels,
                t.in_flight.load(Relaxed)
            ));
        }
    }
    let families = [
        (
            "berth_lb_target_responses_total",
            "counter",
            "Responses per target by status class.",
        ),
        (
            "berth_lb_target_response_seconds",
            "histogram",
            "Time to the target's response head, per target.",
        ),
    ];
    for (part, (name, kind, h)) in families.iter().enumerate() {
        help(out, name, kind, h);
        for g in live {
            for t in g.targets() {
                render_target(out, &t.labels, &t.metrics, part as u8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(100));
        let mut s = String::new();
        h.render(&mut s, "x", "a=\"b\"");
        assert!(s.contains("x_bucket{a=\"b\",le=\"0.001\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{a=\"b\",le=\"0.005\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{a=\"b\",le=\"30\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{s}");
        assert!(s.contains("x_count{a=\"b\"} 3\n"), "{s}");
    }

    #[test]
    fn label_escaping() {
        assert_eq!(label("arn:aws:x/y\"z\\"), "arn:aws:x/y\\\"z\\\\");
    }
}
