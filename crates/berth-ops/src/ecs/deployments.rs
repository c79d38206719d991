//! ListServiceDeployments and DescribeServiceDeployments: a service's deployments as ECS's
//! "service deployment" objects.
//!
//! berth keeps each deployment in the service record (the live ones plus a capped history of
//! ended ones, see `berth_control::service::DEPLOYMENT_HISTORY`), so these actions are views
//! over that record. ECS folds a circuit-breaker rollback into the failed deployment (status
//! `ROLLBACK_*`, a `rollback` member) instead of listing it separately; berth does the same:
//! the rollback deployment itself is not listed, and its progress shows on the one it undoes.

use berth_model::{
    ApiError, Arn, Deployment, DeploymentStatus, ResourceKind, RolloutState, Service, ServiceStatus,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::clusters::{cluster_name, load_active};
use super::services::{deployment_counts, load, service_name};
use crate::paging::{page_json, paginate};
use crate::Ctx;

/// ECS's limit on DescribeServiceDeployments' list of ARNs.
const MAX_DESCRIBE: usize = 20;

const STATUSES: &[&str] = &[
    "PENDING",
    "SUCCESSFUL",
    "STOPPED",
    "STOP_REQUESTED",
    "IN_PROGRESS",
    "ROLLBACK_REQUESTED",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_SUCCESSFUL",
    "ROLLBACK_FAILED",
];

/// The id part of a deployment id (`ecs-svc/1234` → `1234`), as ECS's ARNs carry it.
fn short_id(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// The ECS status of a deployment and its reason, given the service's other deployments.
fn status_of(svc: &Service, d: &Deployment) -> (&'static str, Option<String>) {
    let rollback = svc
        .deployments
        .iter()
        .find(|r| r.rollback_of.as_deref() == Some(d.id.as_str()));
    match (d.rollout_state, rollback) {
        (RolloutState::Failed, Some(r)) => match r.rollout_state {
            RolloutState::InProgress => ("ROLLBACK_IN_PROGRESS", d.rollout_state_reason.clone()),
            RolloutState::Completed => ("ROLLBACK_SUCCESSFUL", d.rollout_state_reason.clone()),
            RolloutState::Failed => ("ROLLBACK_FAILED", r.rollout_state_reason.clone()),
        },
        (RolloutState::Failed, None) => ("STOPPED", d.rollout_state_reason.clone()),
        (RolloutState::Completed, _) => ("SUCCESSFUL", None),
        (RolloutState::InProgress, _) if d.status == DeploymentStatus::Primary => {
            if svc.status == ServiceStatus::Active {
                ("IN_PROGRESS", None)
            } else {
                ("STOPPED", Some("The service was deleted.".into()))
            }
        }
        (RolloutState::InProgress, _) => (
            "STOPPED",
            Some("Service deployment stopped by a newer service deployment.".into()),
        ),
    }
}

/// The deployments ECS would list: every one but rollbacks, newest first.
fn listed(svc: &Service) -> impl Iterator<Item = &Deployment> {
    svc.deployments.iter().filter(|d| d.rollback_of.is_none())
}

fn deployment_arn(ctx: &Ctx, svc: &Service, d: &Deployment) -> String {
    ctx.arn(
        ResourceKind::ServiceDeployment,
        format!("{}/{}/{}", svc.cluster, svc.name, short_id(&d.id)),
    )
}

fn revision_arn(ctx: &Ctx, svc: &Service, d: &Deployment) -> String {
    ctx.arn(
        ResourceKind::ServiceRevision,
        format!("{}/{}/{}", svc.cluster, svc.name, short_id(&d.id)),
    )
}

fn finished_at(status: &str, d: &Deployment) -> Option<f64> {
    (status != "IN_PROGRESS" && status != "ROLLBACK_IN_PROGRESS").then_some(d.updated_at)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreatedAt {
    before: Option<f64>,
    after: Option<f64>,
}

/// The request of `ListServiceDeployments`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRequest {
    service: String,
    cluster: Option<String>,
    #[serde(default)]
    status: Vec<String>,
    created_at: Option<CreatedAt>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// ECS `ListServiceDeployments`.
pub async fn list(ctx: &Ctx, req: ListRequest) -> Result<Value, ApiError> {
    let cluster = cluster_name(req.cluster.as_deref())?;
    if let Some(bad) = req.status.iter().find(|s| !STATUSES.contains(&s.as_str())) {
        return Err(ApiError::invalid(format!(
            "Invalid service deployment status: {bad}."
        )));
    }
    load_active(ctx, &cluster).await?;
    let name = service_name(&req.service)?;
    let Some((svc, _)) = load(ctx, &cluster, &name).await? else {
        return Err(super::services::not_found());
    };
    let (before, after) = req
        .created_at
        .as_ref()
        .map_or((None, None), |c| (c.before, c.after));
    // Newest first; the sort key orders by creation time, descending.
    let items: Vec<(String, Value)> = listed(&svc)
        .filter(|d| before.is_none_or(|b| d.created_at < b))
        .filter(|d| after.is_none_or(|a| d.created_at > a))
        .filter_map(|d| {
            let (status, reason) = status_of(&svc, d);
            if !req.status.is_empty() && !req.status.iter().any(|s| s == status) {
                return None;
            }
            let key = format!("{:020.6}/{}", 1e12 - d.created_at, d.id);
            Some((
                key,
                json!({
                    "serviceDeploymentArn": deployment_arn(ctx, &svc, d),
                    "serviceArn": ctx.arn(ResourceKind::Service, format!("{}/{}", svc.cluster, svc.name)),
                    "clusterArn": ctx.arn(ResourceKind::Cluster, &svc.cluster),
                    "createdAt": d.created_at,
                    "startedAt": d.created_at,
                    "finishedAt": finished_at(status, d),
                    "targetServiceRevisionArn": revision_arn(ctx, &svc, d),
                    "status": status,
                    "statusReason": reason,
                }),
            ))
        })
        .collect();
    let mut items = items;
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let (page, next) = paginate(items, req.max_results, req.next_token.as_deref(), false)?;
    Ok(page_json("serviceDeployments", page, next))
}

/// The request of `DescribeServiceDeployments`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    service_deployment_arns: Vec<String>,
}

/// ECS `DescribeServiceDeployments`.
pub async fn describe(ctx: &Ctx, req: DescribeRequest) -> Result<Value, ApiError> {
    if req.service_deployment_arns.is_empty() || req.service_deployment_arns.len() > MAX_DESCRIBE {
        return Err(ApiError::invalid(format!(
            "serviceDeploymentArns must name between 1 and {MAX_DESCRIBE} service deployments."
        )));
    }
    let (mut out, mut failures) = (Vec::new(), Vec::new());
    for arn in &req.service_deployment_arns {
        let parsed = Arn::parse(arn).filter(|a| a.kind == ResourceKind::ServiceDeployment);
        let parts: Option<Vec<&str>> = parsed
            .as_ref()
            .map(|a| a.resource.split('/').collect())
            .filter(|p: &Vec<&str>| p.len() == 3 && p.iter().all(|s| !s.is_empty()));
        let Some(parts) = parts else {
            return Err(ApiError::invalid(format!(
                "Invalid service deployment ARN: {arn}"
            )));
        };
        let (cluster, name, id) = (parts[0], parts[1], parts[2]);
        let found = match load(ctx, cluster, name).await? {
            Some((svc, _)) => listed(&svc)
                .find(|d| short_id(&d.id) == id)
                .cloned()
                .map(|d| (svc.clone(), d)),
            None => None,
        };
        match found {
            Some((svc, d)) => out.push(describe_one(ctx, &svc, &d).await?),
            None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
        }
    }
    Ok(json!({ "serviceDeployments": out, "failures": failures }))
}

async fn describe_one(ctx: &Ctx, svc: &Service, d: &Deployment) -> Result<Value, ApiError> {
    let counts = deployment_counts(ctx, svc).await?;
    let (status, reason) = status_of(svc, d);
    let rollback = svc
        .deployments
        .iter()
        .find(|r| r.rollback_of.as_deref() == Some(d.id.as_str()));
    let revision = |dep: &Deployment, requested: u32| {
        let c = counts.get(&dep.id).copied().unwrap_or_default();
        json!({
            "arn": revision_arn(ctx, svc, dep),
            "requestedTaskCount": requested,
            "runningTaskCount": c.running,
            "pendingTaskCount": c.pending,
        })
    };
    let requested = if d.status == DeploymentStatus::Primary
        || rollback.is_some_and(|r| r.status == DeploymentStatus::Primary)
    {
        svc.desired_count
    } else {
        let c = counts.get(&d.id).copied().unwrap_or_default();
        c.running + c.pending
    };
    // The deployment it replaced: the next older one in the service's list.
    let source: Vec<Value> = svc
        .deployments
        .iter()
        .skip_while(|x| x.id != d.id)
        .skip(1)
        .find(|x| x.rollback_of.is_none())
        .map(|x| {
            let c = counts.get(&x.id).copied().unwrap_or_default();
            revision(x, c.running + c.pending)
        })
        .into_iter()
        .collect();
    let breaker = &svc.deployment_configuration.deployment_circuit_breaker;
    let failed = counts.get(&d.id).map_or(0, |c| c.failed);
    let mut v = json!({
        "serviceDeploymentArn": deployment_arn(ctx, svc, d),
        "serviceArn": ctx.arn(ResourceKind::Service, format!("{}/{}", svc.cluster, svc.name)),
        "clusterArn": ctx.arn(ResourceKind::Cluster, &svc.cluster),
        "createdAt": d.created_at,
        "startedAt": d.created_at,
        "updatedAt": d.updated_at,
        "finishedAt": finished_at(status, d),
        "sourceServiceRevisions": source,
        "targetServiceRevision": revision(d, requested),
        "status": status,
        "statusReason": reason,
        "deploymentConfiguration": svc.deployment_configuration,
        "deploymentCircuitBreaker": {
            "status": if !breaker.enable {
                "DISABLED"
            } else if d.rollout_state == RolloutState::Failed {
                "TRIGGERED"
            } else {
                "MONITORING"
            },
            "failureCount": failed,
            "threshold": berth_control::service::failure_threshold(svc.desired_count.max(1)),
        },
    });
    if status == "STOPPED" && d.rollout_state != RolloutState::Completed {
        v["stoppedAt"] = json!(d.updated_at);
    }
    if let Some(r) = rollback {
        v["rollback"] = json!({
            "reason": r.rollout_state_reason,
            "startedAt": r.created_at,
            "serviceRevisionArn": revision_arn(ctx, svc, r),
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(
        id: &str,
        status: DeploymentStatus,
        state: RolloutState,
        rollback_of: Option<&str>,
    ) -> Deployment {
        Deployment {
            id: id.into(),
            status,
            family: "web".into(),
            revision: 1,
            created_at: 0.0,
            updated_at: 0.0,
            rollout_state: state,
            rollout_state_reason: None,
            rollback_of: rollback_of.map(str::to_owned),
        }
    }

    fn svc(deployments: Vec<Deployment>) -> Service {
        let mut s: Service = serde_json::from_value(json!({
            "name": "web", "cluster": "default", "status": "ACTIVE", "desiredCount": 2,
            "launchType": "EC2",
            "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100},
            "deployments": [], "createdAt": 0.0, "createdBy": "me"
        }))
        .expect("a service");
        s.deployments = deployments;
        s
    }

    #[test]
    fn a_rolled_back_deployment_carries_the_rollback_status() {
        use DeploymentStatus::*;
        use RolloutState::*;
        let s = svc(vec![
            dep("ecs-svc/3", Primary, InProgress, Some("ecs-svc/2")),
            dep("ecs-svc/2", Active, Failed, None),
            dep("ecs-svc/1", Inactive, Completed, None),
        ]);
        assert_eq!(status_of(&s, &s.deployments[1]).0, "ROLLBACK_IN_PROGRESS");
        assert_eq!(status_of(&s, &s.deployments[2]).0, "SUCCESSFUL");
        assert_eq!(
            listed(&s).count(),
            2,
            "the rollback is folded into what it undoes"
        );
        let mut done = s.clone();
        done.deployments[0].rollout_state = Completed;
        assert_eq!(
            status_of(&done, &done.deployments[1]).0,
            "ROLLBACK_SUCCESSFUL"
        );
    }

    #[test]
    fn superseded_and_current_deployments() {
        use DeploymentStatus::*;
        use RolloutState::*;
        let s = svc(vec![
            dep("ecs-svc/2", Primary, InProgress, None),
            dep("ecs-svc/1", Active, InProgress, None),
        ]);
        assert_eq!(status_of(&s, &s.deployments[0]).0, "IN_PROGRESS");
        assert_eq!(status_of(&s, &s.deployments[1]).0, "STOPPED");
        assert_eq!(short_id("ecs-svc/123"), "123");
    }
}
