//! The crate graph is the architecture: these checks keep it so. The HTTP edge reaches state
//! only through the control layer (`berth-ops`); the pure core (model, scheduler, the scaling
//! and metrics logic) knows nothing of HTTP, Docker, disks or the store; the agent talks to
//! the control plane over HTTP only.

use std::collections::BTreeMap;
use std::process::Command;

/// Every workspace crate's normal and build dependencies on other workspace crates (dev
/// dependencies, which tests and benchmarks use, are left out).
fn workspace_deps() -> BTreeMap<String, Vec<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let ours: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .filter_map(|d| d["name"].as_str())
                .filter(|n| ours.contains(n))
                .map(str::to_owned)
                .collect();
            (p["name"].as_str().unwrap_or_default().to_owned(), deps)
        })
        .collect()
}

fn assert_not(graph: &BTreeMap<String, Vec<String>>, krate: &str, forbidden: &[&str]) {
    let deps = graph
        .get(krate)
        .unwrap_or_else(|| panic!("{krate} is in the workspace"));
    for f in forbidden {
        assert!(
            !deps.iter().any(|d| d == f),
            "{krate} must not depend on {f} (it depends on {deps:?})"
        );
    }
}

#[test]
fn the_http_edge_never_touches_the_store() {
    let g = workspace_deps();
    assert_not(
        &g,
        "berth-api",
        &["berth-store", "berth-agent", "berth-lb", "berth-logs"],
    );
    assert!(g["berth-api"].iter().any(|d| d == "berth-ops"));
}

#[test]
fn the_pure_core_depends_on_no_io_crate() {
    let g = workspace_deps();
    let io = [
        "berth-store",
        "berth-api",
        "berth-ops",
        "berth-control",
        "berth-agent",
        "berth-lb",
        "berth",
    ];
    for pure in [
        "berth-model",
        "berth-sched",
        "berth-autoscale",
        "berth-metrics",
        "berth-iam",
    ] {
        assert_not(&g, pure, &io);
    }
}

#[test]
fn agents_reach_the_control_plane_over_http_only() {
    let g = workspace_deps();
    assert_not(
        &g,
        "berth-agent",
        &[
            "berth-store",
            "berth-api",
            "berth-ops",
            "berth-control",
            "berth-logs",
        ],
    );
}

#[test]
fn log_storage_stands_apart_from_cluster_state() {
    // Log events have their own store: it knows the model and nothing of the cluster store,
    // the control layer or HTTP; only the control layer (and the binary) open it.
    let g = workspace_deps();
    assert_not(
        &g,
        "berth-logs",
        &[
            "berth-store",
            "berth-api",
            "berth-ops",
            "berth-control",
            "berth-agent",
        ],
    );
    assert!(g["berth-ops"].iter().any(|d| d == "berth-logs"));
}
