//! The EC2 Auto Scaling API (berth's host groups) over the AWS Query protocol, signed for
//! `autoscaling`: the same form parser and XML writer as ELBv2 ([`crate::elb`]'s `query`),
//! Auto Scaling's namespace, and one typed operation per action in
//! [`berth_ops::hostgroups`].

use axum::body::Body;
use axum::http::request::Parts;
use axum::response::Response;
use berth_model::{ApiError, ErrorCode};
use berth_ops::hostgroups::{groups, hosts, launch_configs, parse};
use berth_ops::Ctx;
use serde_json::Value;

use crate::authz::Named;
use crate::elb::query;
use crate::ApiState;

/// The service name Auto Scaling requests are signed for.
pub(crate) const SERVICE: &str = "autoscaling";

const API_VERSION: &str = "2011-01-01";
const XMLNS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

/// Serves one Auto Scaling request (the edge saw a form body signed for `autoscaling`).
pub(crate) async fn serve(state: ApiState, parts: Parts, body: Body, rid: String) -> Response {
    let result = async {
        let body = crate::edge::read_body(body, &parts.headers).await?;
        let caller = crate::edge::authenticate(&state, &parts, &body, SERVICE).await?;
        let q = query::parse_form(&body)?;
        if let Some(v) = q.version.as_deref().filter(|v| *v != API_VERSION) {
            return Err(ApiError::new(
                ErrorCode::ElbValidationError,
                format!("Version '{v}' is not supported; use {API_VERSION}"),
            ));
        }
        crate::authz::authorize(
            &state,
            &caller,
            SERVICE,
            &q.action,
            Named::Params(&q.params),
        )
        .await?;
        let ctx = state.ops.ctx(caller.region);
        tracing::debug!(action = %q.action, request_id = %rid, "autoscaling request");
        let out = dispatch(&ctx, &q.action, q.params).await?;
        Ok::<_, ApiError>((q.action, out))
    }
    .await;
    query::answer(result, &rid, XMLNS)
}

/// Runs one Auto Scaling action on its parsed parameters; members an action does not honour
/// are refused by name.
async fn dispatch(ctx: &Ctx, action: &str, p: Value) -> Result<Value, ApiError> {
    match action {
        "CreateLaunchConfiguration" => {
            launch_configs::create(ctx, parse(action, p, launch_configs::CREATE_MEMBERS)?).await
        }
        "DescribeLaunchConfigurations" => {
            launch_configs::describe(ctx, parse(action, p, launch_configs::DESCRIBE_MEMBERS)?).await
        }
        "DeleteLaunchConfiguration" => {
            launch_configs::delete(ctx, parse(action, p, &["LaunchConfigurationName"])?).await
        }
        "CreateAutoScalingGroup" => {
            groups::create(ctx, parse(action, p, groups::CREATE_MEMBERS)?).await
        }
        "UpdateAutoScalingGroup" => {
            groups::update(ctx, parse(action, p, groups::UPDATE_MEMBERS)?).await
        }
        "DescribeAutoScalingGroups" => {
            groups::describe(ctx, parse(action, p, groups::DESCRIBE_MEMBERS)?).await
        }
        "SetDesiredCapacity" => {
            let members = ["AutoScalingGroupName", "DesiredCapacity", "HonorCooldown"];
            groups::set_desired(ctx, parse(action, p, &members)?).await
        }
        "DeleteAutoScalingGroup" => {
            let members = ["AutoScalingGroupName", "ForceDelete"];
            groups::delete(ctx, parse(action, p, &members)?).await
        }
        "DescribeAutoScalingInstances" => {
            let m = hosts::DESCRIBE_INSTANCES_MEMBERS;
            hosts::describe_instances(ctx, parse(action, p, m)?).await
        }
        "SetInstanceProtection" => {
            let members = [
                "InstanceIds",
                "AutoScalingGroupName",
                "ProtectedFromScaleIn",
            ];
            hosts::set_protection(ctx, parse(action, p, &members)?).await
        }
        "TerminateInstanceInAutoScalingGroup" => {
            hosts::terminate(ctx, parse(action, p, hosts::TERMINATE_MEMBERS)?).await
        }
        "DescribeScalingActivities" => {
            hosts::describe_activities(ctx, parse(action, p, hosts::ACTIVITIES_MEMBERS)?).await
        }
        _ => Err(ApiError::new(
            ErrorCode::ElbInvalidAction,
            format!("berth does not implement the Auto Scaling action {action:?}."),
        )),
    }
}
