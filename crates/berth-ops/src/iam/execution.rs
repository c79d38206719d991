//! Task execution roles: the role a task definition's `executionRoleArn` names, which berth
//! assumes for the task (as ECS's agent does) when it reads the task's secrets for its agent
//! and before its `awslogs` containers start.
//!
//! The role must still exist and trust `ecs-tasks.amazonaws.com` when the task starts (else
//! ECS's "ECS was unable to assume the role ..."). Each read is then decided by
//! `berth_iam::evaluate` over the role's policies (inline and attached), with the resources
//! the same call would name at the edge (`berth_iam::request_resources`, resolved by
//! [`Ops::resolve_resource`](crate::Ops::resolve_resource)) and the keys of a role session, so
//! a role's policy means the same to a task's start as to a request signed with its keys.

use berth_iam::{evaluate, Policy, RequestContext, Resource, Scope};
use berth_model::ApiError;
use serde_json::Value;

use super::role_policies;
use super::sessions::{cannot_assume, check_task_role};
use crate::Ctx;

/// The execution role of one task, assumed: the session's ARN and the role's policies.
pub(crate) struct ExecutionRole {
    /// `arn:aws:sts::<account>:assumed-role/<role>/<task id>`.
    principal: String,
    policies: Vec<Policy>,
}

/// Assumes the execution role `arn` for task `task_id`. `Ok(Err(reason))`: it cannot be
/// assumed (gone, or no longer trusting ECS tasks), worded as ECS words it.
pub(crate) async fn assume(
    ctx: &Ctx,
    task_id: &str,
    arn: &str,
) -> Result<Result<ExecutionRole, String>, ApiError> {
    let role = match check_task_role(ctx, arn).await {
        Ok(r) => r,
        Err(e) if e.code == berth_model::ErrorCode::ClientException => {
            return Ok(Err(cannot_assume(arn)))
        }
        Err(e) => return Err(e),
    };
    Ok(Ok(ExecutionRole {
        principal: format!(
            "arn:aws:sts::{}:assumed-role/{}/{task_id}",
            ctx.state.config.account_id, role.name
        ),
        policies: role_policies(&role),
    }))
}

impl ExecutionRole {
    /// Whether the role may call `service:action` with `params` (the call's own parameters,
    /// as the edge reads them). `Ok(Err(text))`: refused, with the AccessDeniedException text
    /// the service would answer (`AccessDeniedException: User: ... is not authorized ...`).
    pub(crate) async fn allows(
        &self,
        ctx: &Ctx,
        service: &str,
        action: &str,
        params: &Value,
    ) -> Result<Result<(), String>, ApiError> {
        let account = &ctx.state.config.account_id;
        let scope = Scope {
            region: &ctx.region,
            account,
        };
        let mut named = berth_iam::request_resources(service, action, params, scope);
        if named.is_empty() {
            named.push(Resource::Arn("*".to_owned()));
        }
        let reads_tags = self.policies.iter().any(Policy::reads_resource_tags);
        let refs: Vec<&Policy> = self.policies.iter().collect();
        let keys = [
            ("aws:RequestedRegion", ctx.region.as_str()),
            ("aws:PrincipalArn", self.principal.as_str()),
            ("aws:PrincipalType", "AssumedRole"),
        ];
        let full_action = format!("{service}:{action}");
        for r in &named {
            let (resource, tags) = match r {
                Resource::Arn(a) if !reads_tags || a == "*" => (a.clone(), Vec::new()),
                _ => {
                    ctx.state
                        .resolve_resource(&ctx.region, r, reads_tags)
                        .await?
                }
            };
            let req = RequestContext {
                action: &full_action,
                resource: &resource,
                keys: &keys,
                resource_tags: &tags,
                request_tags: &[],
            };
            let decision = evaluate(&refs, &req);
            if let Some(m) = berth_iam::denial(&self.principal, &full_action, &resource, decision) {
                return Ok(Err(format!("AccessDeniedException: {m}")));
            }
        }
        Ok(Ok(()))
    }
}

/// ECS's words when a container's `awslogs` stream cannot be made with the execution role.
fn logger_failure(denied: &str) -> String {
    format!(
        "ResourceInitializationError: failed to validate logger args: create stream has been \
         retried 1 times: failed to create Cloudwatch log stream: {denied} : exit status 1"
    )
}

impl ExecutionRole {
    /// Whether the role may make and write the `awslogs` streams of `td`'s containers for
    /// task `task_id` (`logs:CreateLogGroup` too for `awslogs-create-group`), as the agent
    /// checks before it starts them. `Ok(Err(reason))`: the task must fail to start.
    pub(crate) async fn check_awslogs(
        &self,
        ctx: &Ctx,
        td: &berth_model::TaskDefinition,
        task_id: &str,
    ) -> Result<Result<(), String>, ApiError> {
        for c in &td.container_definitions {
            let Some(cfg) = &c.log_configuration else {
                continue;
            };
            // Checked at registration: options that no longer parse ship nothing.
            let Ok(Some(o)) = berth_model::logs::AwsLogsOptions::from_config(cfg) else {
                continue;
            };
            let stream = o.stream_name(&c.name, task_id, "*");
            let group = serde_json::json!({"logGroupName": o.group, "logStreamName": stream});
            let mut actions = vec!["CreateLogStream", "PutLogEvents"];
            if o.create_group {
                actions.insert(0, "CreateLogGroup");
            }
            for action in actions {
                if let Err(denied) = self.allows(ctx, "logs", action, &group).await? {
                    return Ok(Err(logger_failure(&denied)));
                }
            }
        }
        Ok(Ok(()))
    }
}
