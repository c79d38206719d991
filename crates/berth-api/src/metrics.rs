//! `GET /metrics`: Prometheus text exposition of what the control plane knows: tasks by
//! status, instances by status and connection, and each running task's last cpu and memory
//! sample (the autoscaler reads the same samples: those the agents reported to this replica,
//! kept in its metrics hub). Rendered from one read of the fleet on each scrape;
//! hand-written because the format is a few lines of text and the values already exist.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_control::autoscale::TaskSample;

use crate::ApiState;

/// A per-task gauge: name, help text, and how to read its value off a task's sample.
type Series = (&'static str, &'static str, fn(&TaskSample) -> Option<f64>);

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Whether the request carries the metrics bearer token (compared in constant time).
fn authorized(st: &ApiState, headers: &HeaderMap) -> bool {
    let Some(want) = st.metrics_token.as_deref() else {
        return false;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim();
    given.len() == want.len()
        && given
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

pub(crate) async fn metrics(State(st): State<ApiState>, headers: HeaderMap) -> Response {
    // Cluster names, ARNs and target addresses are not for anyone who can reach the port.
    if !authorized(&st, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"berth-metrics\"")],
            "/metrics needs Authorization: Bearer <the token in DATA_DIR/metrics.token>\n",
        )
            .into_response();
    }
    let Ok(berth_ops::Fleet { tasks, instances }) = st.ops.fleet().await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "store unavailable\n").into_response();
    };
    let mut out = String::new();
    let mut by_status: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
    for t in &tasks {
        *by_status
            .entry((t.cluster.clone(), t.last_status.as_str()))
            .or_default() += 1;
    }
    let _ = writeln!(
        out,
        "# HELP berth_tasks Tasks known to the control plane, by last status."
    );
    let _ = writeln!(out, "# TYPE berth_tasks gauge");
    for ((cluster, status), n) in &by_status {
        let _ = writeln!(
            out,
            "berth_tasks{{cluster=\"{}\",status=\"{status}\"}} {n}",
            esc(cluster)
        );
    }
    let mut inst: BTreeMap<(String, &'static str, bool), u64> = BTreeMap::new();
    for (i, c) in &instances {
        let c = *c;
        *inst
            .entry((i.cluster.clone(), i.status.as_str(), c))
            .or_default() += 1;
    }
    let _ = writeln!(
        out,
        "# HELP berth_container_instances Container instances, by status and agent connection."
    );
    let _ = writeln!(out, "# TYPE berth_container_instances gauge");
    for ((cluster, status, connected), n) in &inst {
        let _ = writeln!(
            out,
            "berth_container_instances{{cluster=\"{}\",status=\"{status}\",connected=\"{connected}\"}} {n}",
            esc(cluster)
        );
    }
    let series: [Series; 4] = [
        (
            "berth_task_cpu_units",
            "CPU a task used at its last sample, in cpu units (1024 = one core).",
            |t| Some(t.stats.cpu_units),
        ),
        (
            "berth_task_memory_mib",
            "Memory a task used at its last sample, MiB.",
            |t| Some(t.stats.memory_mib),
        ),
        (
            "berth_task_cpu_utilization_percent",
            "CPU used as a percentage of the task's reserved cpu (ECS CPUUtilization).",
            |t| (t.cpu > 0).then(|| 100.0 * t.stats.cpu_units / t.cpu as f64),
        ),
        (
            "berth_task_memory_utilization_percent",
            "Memory used as a percentage of the task's reserved memory (ECS MemoryUtilization).",
            |t| (t.memory > 0).then(|| 100.0 * t.stats.memory_mib / t.memory as f64),
        ),
    ];
    let mut samples = st.ops.task_samples();
    samples.sort_by(|a, b| (&a.1.cluster, &a.0).cmp(&(&b.1.cluster, &b.0)));
    for (name, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (id, t) in &samples {
            if let Some(v) = value(t) {
                let _ = writeln!(
                    out,
                    "{name}{{cluster=\"{}\",task=\"{}\",family=\"{}\",group=\"{}\"}} {v}",
                    esc(&t.cluster),
                    esc(id),
                    esc(&t.family),
                    esc(t.group.as_deref().unwrap_or(""))
                );
            }
        }
    }
    if let Some(hook) = &st.extra_metrics {
        hook(&mut out);
    }
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}
