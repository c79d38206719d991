//! The Elastic Load Balancing (v2) API over the AWS Query protocol.
//!
//! [`serve`] takes a form-encoded `POST /` from the edge: it verifies the SigV4 signature for
//! service `elasticloadbalancing`, parses the form into a JSON tree ([`query`]), runs the
//! action's handler (one module per resource) and writes the answer, or the error, as XML.
//! Handlers return the fields of the action's `...Result` element as JSON.

pub(crate) mod query;

use axum::body::Body;
use axum::http::request::Parts;
use axum::response::Response;
use berth_model::{ApiError, ErrorCode};
use berth_ops::elb::{listeners, load_balancers, parse, rules, tags, target_groups, targets};
use serde_json::Value;

use crate::authz::Named;
use crate::ApiState;
use berth_ops::Ctx;

/// The service name ELB requests are signed for.
pub(crate) const SERVICE: &str = "elasticloadbalancing";

/// The ELBv2 API version berth speaks.
const API_VERSION: &str = "2015-12-01";

/// Serves one Query-protocol request (the edge has seen a form body and no `X-Amz-Target`).
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
        tracing::debug!(action = %q.action, request_id = %rid, "elbv2 request");
        let out = dispatch(&ctx, &q.action, q.params).await?;
        Ok::<_, ApiError>((q.action, out))
    }
    .await;
    query::answer(result, &rid, query::XMLNS)
}

/// Runs one ELBv2 action on its parsed parameters.
pub(crate) async fn dispatch(ctx: &Ctx, action: &str, p: Value) -> Result<Value, ApiError> {
    match action {
        "CreateLoadBalancer" => load_balancers::create(ctx, parse(p)?).await,
        "DescribeLoadBalancers" => load_balancers::describe(ctx, parse(p)?).await,
        "DeleteLoadBalancer" => load_balancers::delete(ctx, parse(p)?).await,
        "DescribeLoadBalancerAttributes" => {
            load_balancers::describe_attributes(ctx, parse(p)?).await
        }
        "ModifyLoadBalancerAttributes" => load_balancers::modify_attributes(ctx, parse(p)?).await,
        "CreateTargetGroup" => target_groups::create(ctx, parse(p)?).await,
        "DescribeTargetGroups" => target_groups::describe(ctx, parse(p)?).await,
        "ModifyTargetGroup" => target_groups::modify(ctx, parse(p)?).await,
        "DescribeTargetGroupAttributes" => target_groups::describe_attributes(ctx, parse(p)?).await,
        "ModifyTargetGroupAttributes" => target_groups::modify_attributes(ctx, parse(p)?).await,
        "DeleteTargetGroup" => target_groups::delete(ctx, parse(p)?).await,
        "CreateListener" => listeners::create(ctx, parse(p)?).await,
        "DescribeListeners" => listeners::describe(ctx, parse(p)?).await,
        "ModifyListener" => listeners::modify(ctx, parse(p)?).await,
        "DeleteListener" => listeners::delete(ctx, parse(p)?).await,
        "CreateRule" => rules::create(ctx, parse(p)?).await,
        "DescribeRules" => rules::describe(ctx, parse(p)?).await,
        "ModifyRule" => rules::modify(ctx, parse(p)?).await,
        "SetRulePriorities" => rules::set_priorities(ctx, parse(p)?).await,
        "DeleteRule" => rules::delete(ctx, parse(p)?).await,
        "RegisterTargets" => targets::register(ctx, parse(p)?).await,
        "DeregisterTargets" => targets::deregister(ctx, parse(p)?).await,
        "DescribeTargetHealth" => targets::describe_health(ctx, parse(p)?).await,
        "AddTags" => tags::add(ctx, parse(p)?).await,
        "RemoveTags" => tags::remove(ctx, parse(p)?).await,
        "DescribeTags" => tags::describe(ctx, parse(p)?).await,
        _ => Err(ApiError::new(
            ErrorCode::ElbInvalidAction,
            format!("berth does not implement the ELBv2 action {action:?}."),
        )),
    }
}
