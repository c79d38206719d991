//! CreateCluster, DescribeClusters, ListClusters, UpdateCluster, UpdateClusterSettings,
//! DeleteCluster.

use berth_model::{
    keys, validate_cluster_name, validate_tags, ApiError, Arn, Cluster, ClusterCounts,
    ClusterField, ClusterSetting, ClusterStatus, ErrorCode, InstanceStatus, ResourceKind, Service,
    ServiceStatus, Tag, TaskStatus,
};
use berth_store::{StoreExt, Txn, TxnResult};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::paging::{page_json, paginate};
use crate::{store_err, to_bytes, Ctx};

/// The cluster ECS uses when a request names none.
pub(crate) const DEFAULT_CLUSTER: &str = "default";

/// Turns a cluster name or ARN into the name.
pub(crate) fn cluster_name(ident: Option<&str>) -> Result<String, ApiError> {
    let ident = ident.unwrap_or(DEFAULT_CLUSTER);
    if Arn::looks_like_arn(ident) {
        return match Arn::parse(ident) {
            Some(a) if a.kind == ResourceKind::Cluster => {
                validate_cluster_name(&a.resource)?;
                Ok(a.resource)
            }
            _ => Err(ApiError::invalid(format!("Invalid cluster ARN: {ident}"))),
        };
    }
    validate_cluster_name(ident)?;
    Ok(ident.to_owned())
}

/// Loads an ACTIVE cluster with its mod revision, or ClusterNotFoundException.
pub async fn load_active(ctx: &Ctx, name: &str) -> Result<(Cluster, u64), ApiError> {
    match ctx
        .store()
        .get_json::<Cluster>(&keys::cluster(name))
        .await
        .map_err(store_err)?
    {
        Some((c, rev)) if c.status == ClusterStatus::Active => Ok((c, rev)),
        _ => Err(ApiError::cluster_not_found()),
    }
}

async fn counts(ctx: &Ctx, name: &str) -> Result<ClusterCounts, ApiError> {
    let snap = ctx.state.launcher.snapshot(name).await.map_err(store_err)?;
    let services = ctx
        .store()
        .list_json::<Service>(&keys::services_of(name))
        .await
        .map_err(store_err)?;
    let tasks = snap.tasks.iter().map(|(t, _)| t);
    Ok(ClusterCounts {
        registered_container_instances: snap
            .instances
            .iter()
            .filter(|(i, _)| i.status != InstanceStatus::Inactive)
            .filter(|(i, _)| !berth_model::fargate::is_managed_instance(i))
            .count() as u64,
        active_services: services
            .iter()
            .filter(|(_, s, _)| s.status == ServiceStatus::Active)
            .count() as u64,
        running_tasks: tasks
            .clone()
            .filter(|t| t.last_status == TaskStatus::Running)
            .count() as u64,
        pending_tasks: tasks.filter(|t| t.is_pending()).count() as u64,
    })
}

fn wire(ctx: &Ctx, c: &Cluster, include: Option<&[ClusterField]>, counts: ClusterCounts) -> Value {
    c.to_wire(
        &ctx.arn(ResourceKind::Cluster, &c.cluster_name),
        include,
        counts,
    )
}

/// Writes `c` if the cluster key is still at `rev` (0 = absent). `false` means another writer
/// got there first: the caller re-reads and decides again.
pub(crate) async fn put_cluster(ctx: &Ctx, c: &Cluster, rev: u64) -> Result<bool, ApiError> {
    let key = keys::cluster(&c.cluster_name);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), rev)
        .put(key, to_bytes(c)?);
    Ok(matches!(
        ctx.store().txn(txn).await.map_err(store_err)?,
        TxnResult::Committed { .. }
    ))
}

fn too_contended() -> ApiError {
    ApiError::server("The cluster is being modified by too many requests at once; retry.")
}

/// The request of `CreateCluster`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateClusterRequest {
    cluster_name: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    settings: Vec<ClusterSetting>,
    configuration: Option<Value>,
    #[serde(default)]
    capacity_providers: Vec<String>,
    #[serde(default)]
    default_capacity_provider_strategy: Vec<super::capacity::strategy::WireItem>,
    service_connect_defaults: Option<Value>,
}

/// ECS `CreateCluster`.
pub async fn create(ctx: &Ctx, req: CreateClusterRequest) -> Result<Value, ApiError> {
    let name = req
        .cluster_name
        .unwrap_or_else(|| DEFAULT_CLUSTER.to_owned());
    validate_cluster_name(&name)?;
    validate_tags(&req.tags)?;
    ClusterSetting::validate_all(&req.settings)?;
    let mut c = Cluster::new(name.clone(), ctx.now());
    c.apply_settings(&req.settings);
    c.tags = req.tags;
    c.configuration = req.configuration;
    // The providers must exist and the default strategy may name only them, as in
    // PutClusterCapacityProviders.
    c.capacity_providers = super::capacity::existing(ctx, &req.capacity_providers).await?;
    let default = super::capacity::strategy::parse(
        "defaultCapacityProviderStrategy",
        &req.default_capacity_provider_strategy,
    )?;
    super::capacity::strategy::check_associated("defaultCapacityProviderStrategy", &c, &default)?;
    c.default_capacity_provider_strategy = super::capacity::strategy::to_values(&default);
    c.service_connect_defaults = req.service_connect_defaults;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let existing = ctx
            .store()
            .get_json::<Cluster>(&keys::cluster(&name))
            .await
            .map_err(store_err)?;
        // CreateCluster is idempotent in ECS: an ACTIVE cluster of that name is returned as
        // is, also to the losers of a race to create it.
        if let Some((c, _)) = existing
            .as_ref()
            .filter(|(c, _)| c.status == ClusterStatus::Active)
        {
            let counts = counts(ctx, &name).await?;
            return Ok(json!({ "cluster": wire(ctx, c, None, counts) }));
        }
        if put_cluster(ctx, &c, existing.map_or(0, |(_, rev)| rev)).await? {
            return Ok(json!({ "cluster": wire(ctx, &c, None, ClusterCounts::default()) }));
        }
    }
    Err(too_contended())
}

/// The `{"cluster": ...}` answer of an action that changed cluster `c`.
pub(crate) async fn answer(ctx: &Ctx, c: &Cluster) -> Result<Value, ApiError> {
    let counts = counts(ctx, &c.cluster_name).await?;
    Ok(json!({ "cluster": wire(ctx, c, None, counts) }))
}

/// The request of `DescribeClusters`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeClustersRequest {
    clusters: Option<Vec<String>>,
    #[serde(default)]
    include: Vec<String>,
}

/// ECS `DescribeClusters`.
pub async fn describe(ctx: &Ctx, req: DescribeClustersRequest) -> Result<Value, ApiError> {
    let include = req
        .include
        .iter()
        .map(|s| ClusterField::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let idents = req
        .clusters
        .unwrap_or_else(|| vec![DEFAULT_CLUSTER.to_owned()]);
    if idents.len() > 100 {
        return Err(ApiError::invalid(
            "DescribeClusters accepts at most 100 clusters.",
        ));
    }
    let (mut clusters, mut failures) = (Vec::new(), Vec::new());
    for ident in &idents {
        let name = cluster_name(Some(ident))?;
        match ctx
            .store()
            .get_json::<Cluster>(&keys::cluster(&name))
            .await
            .map_err(store_err)?
        {
            Some((c, _)) => {
                let counts = if c.status == ClusterStatus::Active {
                    counts(ctx, &name).await?
                } else {
                    ClusterCounts::default()
                };
                clusters.push(wire(ctx, &c, Some(&include), counts));
            }
            None => failures.push(json!({
                "arn": ctx.arn(ResourceKind::Cluster, &name),
                "reason": "MISSING",
            })),
        }
    }
    Ok(json!({ "clusters": clusters, "failures": failures }))
}

/// The request of `ListClusters`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListClustersRequest {
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ECS `ListClusters`.
pub async fn list(ctx: &Ctx, req: ListClustersRequest) -> Result<Value, ApiError> {
    let all = ctx
        .store()
        .list_json::<Cluster>(keys::CLUSTERS)
        .await
        .map_err(store_err)?;
    let active = all
        .into_iter()
        .filter(|(_, c, _)| c.status == ClusterStatus::Active)
        .map(|(k, c, _)| (k, ctx.arn(ResourceKind::Cluster, &c.cluster_name)))
        .collect();
    let (arns, next) = paginate(active, req.max_results, req.next_token.as_deref(), false)?;
    Ok(page_json("clusterArns", arns, next))
}

/// The request of `UpdateCluster`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClusterRequest {
    cluster: String,
    settings: Option<Vec<ClusterSetting>>,
    configuration: Option<Value>,
    service_connect_defaults: Option<Value>,
}

/// ECS `UpdateCluster`.
pub async fn update(ctx: &Ctx, req: UpdateClusterRequest) -> Result<Value, ApiError> {
    let name = cluster_name(Some(&req.cluster))?;
    if let Some(s) = &req.settings {
        ClusterSetting::validate_all(s)?;
    }
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        let (mut c, rev) = load_active(ctx, &name).await?;
        if let Some(s) = &req.settings {
            c.apply_settings(s);
        }
        if let Some(conf) = &req.configuration {
            c.configuration = Some(conf.clone());
        }
        if let Some(scd) = &req.service_connect_defaults {
            c.service_connect_defaults = Some(scd.clone());
        }
        if put_cluster(ctx, &c, rev).await? {
            let counts = counts(ctx, &name).await?;
            return Ok(json!({ "cluster": wire(ctx, &c, None, counts) }));
        }
    }
    Err(too_contended())
}

/// The request of `UpdateClusterSettings`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClusterSettingsRequest {
    cluster: String,
    settings: Vec<ClusterSetting>,
}

/// ECS `UpdateClusterSettings`.
pub async fn update_settings(
    ctx: &Ctx,
    req: UpdateClusterSettingsRequest,
) -> Result<Value, ApiError> {
    update(
        ctx,
        UpdateClusterRequest {
            cluster: req.cluster,
            settings: Some(req.settings),
            configuration: None,
            service_connect_defaults: None,
        },
    )
    .await
}

/// The request of `DeleteCluster`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteClusterRequest {
    cluster: String,
}

/// ECS `DeleteCluster`: refused while the cluster has active services or registered container
/// instances.
pub async fn delete(ctx: &Ctx, req: DeleteClusterRequest) -> Result<Value, ApiError> {
    let name = cluster_name(Some(&req.cluster))?;
    let mut retry = berth_store::Retry::new();
    while retry.next().await {
        if let Some(done) = try_delete(ctx, &name).await? {
            return Ok(done);
        }
    }
    Err(too_contended())
}

/// One attempt at DeleteCluster: `None` when another writer changed the cluster meanwhile.
async fn try_delete(ctx: &Ctx, name: &str) -> Result<Option<Value>, ApiError> {
    let (mut c, rev) = load_active(ctx, name).await?;
    let counts = counts(ctx, name).await?;
    if counts.active_services > 0 {
        return Err(ApiError::new(
            ErrorCode::ClusterContainsServicesException,
            "The Cluster cannot be deleted while Services are active.",
        ));
    }
    if counts.registered_container_instances > 0 {
        return Err(ApiError::new(
            ErrorCode::ClusterContainsContainerInstancesException,
            "The Cluster cannot be deleted while Container Instances are active or draining.",
        ));
    }
    let draining = ctx
        .store()
        .list_json::<Service>(&keys::services_of(name))
        .await
        .map_err(store_err)?
        .iter()
        .any(|(_, s, _)| s.status == ServiceStatus::Draining);
    if draining {
        return Err(ApiError::new(
            ErrorCode::ClusterContainsServicesException,
            "The Cluster cannot be deleted while Services are active.",
        ));
    }
    if counts.running_tasks + counts.pending_tasks > 0 {
        return Err(ApiError::new(
            ErrorCode::ClusterContainsTasksException,
            "The Cluster cannot be deleted while Tasks are active.",
        ));
    }
    c.status = ClusterStatus::Inactive;
    if !put_cluster(ctx, &c, rev).await? {
        return Ok(None);
    }
    Ok(Some(
        json!({ "cluster": wire(ctx, &c, None, ClusterCounts::default()) }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns_resolve() {
        assert_eq!(cluster_name(None).unwrap(), "default");
        assert_eq!(cluster_name(Some("web")).unwrap(), "web");
        assert_eq!(
            cluster_name(Some("arn:aws:ecs:us-east-1:000000000000:cluster/web")).unwrap(),
            "web"
        );
        assert!(cluster_name(Some("arn:aws:ecs:us-east-1:0:service/web/x")).is_err());
        assert!(cluster_name(Some("bad name")).is_err());
    }
}
