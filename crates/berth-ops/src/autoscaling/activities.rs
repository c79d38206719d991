//! DescribeScalingActivities: the activity records the autoscaler controller writes, newest
//! first.

use berth_model::{keys, ApiError, ScalingActivity};
use serde::Deserialize;
use serde_json::Value;

use super::{page, page_json};
use crate::Ctx;

/// The request of `DescribeScalingActivities`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRequest {
    service_namespace: String,
    resource_id: Option<String>,
    scalable_dimension: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    /// Accepted; berth records no "not scaled" activities, so there is nothing more to show.
    #[serde(default)]
    #[allow(dead_code)]
    include_not_scaled_activities: Option<bool>,
}

/// Application Auto Scaling `DescribeScalingActivities`: the recorded scaling activities, newest
/// first.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    let sel = super::Selection {
        namespace: &req.service_namespace,
        resource_id: req.resource_id.as_deref(),
        dimension: req.scalable_dimension.as_deref(),
    };
    let all = super::records::<ScalingActivity>(
        ctx,
        sel,
        keys::aas_activities_of,
        keys::AAS_ACTIVITIES,
        |a| &a.scalable_dimension,
    )
    .await?;
    // Sorted by start time across targets (the page key leads with it), newest first.
    let mut items: Vec<(String, ScalingActivity)> = all
        .into_iter()
        .map(|(k, a)| {
            let micros = (a.start_time.max(0.0) * 1e6) as u64;
            (format!("{micros:020}/{k}"), a)
        })
        .collect();
    items.sort_by(|a, b| b.0.cmp(&a.0));
    let (items, next) = page(items, req.max_results, req.next_token.as_deref(), true)?;
    Ok(page_json("ScalingActivities", items, next))
}
