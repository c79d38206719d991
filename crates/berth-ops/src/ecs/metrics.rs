//! berth's `GetServiceMetrics`: a service's recent CPU, memory and per-target request series
//! from the metrics store, for `berth service metrics` (CloudWatch's own API is not served:
//! botocore speaks CBOR to it).

use berth_control::autoscale::{service_key, target_group_key};
use berth_metrics::{Resolution, SeriesKey, Stat};
use berth_model::{keys, ApiError, ErrorCode, Service};
use berth_store::StoreExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::clusters::cluster_name;
use super::services::service_name;
use crate::{store_err, Ctx};

/// The longest window served: what the one-minute ring keeps.
const MAX_MINUTES: u32 = 60;

/// The request of `GetServiceMetrics`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    cluster: Option<String>,
    service: String,
    /// How far back, in minutes (default 15).
    minutes: Option<u32>,
}

/// berth's `GetServiceMetrics`: a service's recent series, at most the last hour.
pub async fn get(ctx: &Ctx, req: Request) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    let minutes = req.minutes.unwrap_or(15);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(ApiError::invalid(format!(
            "minutes must be between 1 and {MAX_MINUTES}."
        )));
    }
    let svc = ctx
        .store()
        .get_json::<Service>(&keys::service(&cluster, &service_name(&req.service)?))
        .await
        .map_err(store_err)?
        .map(|(s, _)| s)
        .ok_or_else(|| ApiError::new(ErrorCode::ServiceNotFoundException, "Service not found."))?;
    let Some(hub) = &ctx.state.metrics_hub else {
        return Err(ApiError::client("This server keeps no metrics."));
    };
    let now = ctx.now();
    let from = now - f64::from(minutes) * 60.0;
    // Ten-second points cover the last 15 minutes; beyond that, one-minute points.
    let res = if minutes <= 15 {
        Resolution::TenSeconds
    } else {
        Resolution::OneMinute
    };
    let series = |key: &SeriesKey, stat: Stat| -> Vec<Value> {
        hub.points(key, res, from, now + 60.0, stat)
            .into_iter()
            .map(|(t, v)| json!([t, v]))
            .collect()
    };
    let mut out = json!({
        "cluster": cluster,
        "service": svc.name,
        "resolutionSeconds": res.seconds(),
        "CPUUtilization": series(&service_key("CPUUtilization", &cluster, &svc.name), Stat::Average),
        "MemoryUtilization": series(&service_key("MemoryUtilization", &cluster, &svc.name), Stat::Average),
    });
    let tgs: Vec<Value> = svc
        .load_balancers
        .iter()
        .filter_map(|lb| lb.target_group_arn.as_deref())
        .map(|tg| {
            json!({
                "targetGroupArn": tg,
                "RequestCount": series(&target_group_key("RequestCount", tg), Stat::Sum),
                "RequestCountPerTarget": series(&target_group_key("RequestCountPerTarget", tg), Stat::Sum),
            })
        })
        .collect();
    out["targetGroups"] = json!(tgs);
    Ok(out)
}
