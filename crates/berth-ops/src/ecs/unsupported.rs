//! The request members of CreateService, UpdateService, RunTask and StartTask that berth does
//! not implement: each is refused with ECS's `InvalidParameterException` and a message that
//! names it, never accepted and ignored (a field accepted and not applied is found out in
//! production).
//!
//! Each typed request keeps the members it does not model in a flattened map; [`refuse`]
//! looks at them. A member given with its neutral value (`null`, `false`, an empty list,
//! `deploymentController` `ECS`, `availabilityZoneRebalancing` `DISABLED` ...) asks for
//! nothing berth does not do, so it passes: that is what berth does anyway.

use berth_model::{ApiError, TaskOverride};
use serde_json::{Map, Value};

/// Why berth cannot do what a member asks, by member name.
fn why(member: &str) -> &'static str {
    match member {
        "deploymentController" => "berth supports only the ECS deployment controller",
        "platformVersion" => {
            "berth runs no Fargate platform versions; the platform version must be null"
        }
        "serviceRegistries" => "berth has no Cloud Map service discovery",
        "serviceConnectConfiguration" => "berth has no Service Connect",
        "vpcLatticeConfigurations" => "berth has no VPC Lattice",
        "volumeConfigurations" => "berth has no managed EBS volumes",
        "enableExecuteCommand" => "berth has no ECS Exec",
        "role" => "berth has no IAM roles",
        "executionRoleArn" => {
            "berth takes the execution role from the task definition only, not from overrides"
        }
        "availabilityZoneRebalancing" => "berth does not rebalance tasks across zones",
        "clientToken" => "berth makes CreateService idempotent by service name only",
        "referenceId" => "berth keeps no task reference ids",
        "gatewayConnectors" | "monitoring" => "berth does not implement it",
        "ephemeralStorage" => "berth does not size task ephemeral storage",
        "inferenceAcceleratorOverrides" => "berth has no inference accelerators",
        "environmentFiles" => "berth does not read environment files in overrides",
        "resourceRequirements" => "berth has no GPU or accelerator resources",
        "alarms" => "berth does not watch CloudWatch alarms during deployments",
        "strategy" => "berth deploys with the ROLLING strategy only",
        "bakeTimeInMinutes"
        | "lifecycleHooks"
        | "linearConfiguration"
        | "canaryConfiguration"
        | "earlySuccessCriteria" => "berth deploys with the ROLLING strategy only",
        _ => "berth does not implement it",
    }
}

/// Whether `value` asks for nothing beyond what berth does anyway.
fn neutral(member: &str, value: &Value) -> bool {
    match (member, value) {
        (_, Value::Null) | (_, Value::Bool(false)) => true,
        (_, Value::Array(a)) => a.is_empty(),
        ("deploymentController", Value::Object(o)) => {
            o.len() == 1 && o.get("type").and_then(Value::as_str) == Some("ECS")
        }
        ("serviceConnectConfiguration", Value::Object(o)) => {
            o.len() == 1 && o.get("enabled") == Some(&Value::Bool(false))
        }
        ("alarms", Value::Object(o)) => o.get("enable") != Some(&Value::Bool(true)),
        ("availabilityZoneRebalancing", Value::String(s)) => s == "DISABLED",
        ("strategy", Value::String(s)) => s == "ROLLING",
        (_, Value::Object(o)) => o.is_empty(),
        _ => false,
    }
}

/// The dotted paths of the leaves of `value` under `prefix`, for the error message.
fn leaves(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(o) if !o.is_empty() => {
            for (k, v) in o {
                leaves(&format!("{prefix}.{k}"), v, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// The error for `member` (under `parent`, e.g. `overrides.`) given as `value`.
fn refusal(parent: &str, member: &str, value: &Value) -> ApiError {
    let mut paths = Vec::new();
    if let Value::Object(o) = value {
        for (k, v) in o {
            leaves(k, v, &mut paths);
        }
    }
    let detail = if paths.is_empty() {
        String::new()
    } else {
        format!(" ({})", paths.join(", "))
    };
    ApiError::invalid(format!(
        "{parent}{member}{detail} is not supported: {}.",
        why(member)
    ))
}

/// Refuses the first member of `rest` (what a typed request did not take) that asks for
/// something; `parent` prefixes member names in the message (`overrides.` ...).
pub(crate) fn refuse(parent: &str, rest: &Map<String, Value>) -> Result<(), ApiError> {
    match rest.iter().find(|(k, v)| !neutral(k, v)) {
        Some((k, v)) => Err(refusal(parent, k, v)),
        None => Ok(()),
    }
}

/// Refuses what RunTask's and StartTask's `overrides` ask for that berth does not apply (the
/// task and container overrides it does apply are `TaskOverride::apply`'s).
pub(crate) fn refuse_overrides(o: &TaskOverride) -> Result<(), ApiError> {
    refuse("overrides.", &o.extra)?;
    for c in &o.container_overrides {
        refuse("overrides.containerOverrides.", &c.extra)?;
    }
    Ok(())
}

/// `overrides.taskRoleArn`, when given, must name a role tasks may assume (as a task
/// definition's `taskRoleArn` must).
pub(crate) async fn check_role_override(
    ctx: &crate::Ctx,
    o: &TaskOverride,
) -> Result<(), ApiError> {
    match o.task_role_arn.as_deref().filter(|r| !r.is_empty()) {
        Some(role) => crate::iam::sessions::check_task_role(ctx, role)
            .await
            .map(|_| ()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rest(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn neutral_values_pass_and_others_are_refused_by_name() {
        let ok = rest(json!({
            "deploymentController": {"type": "ECS"}, "enableExecuteCommand": false,
            "capacityProviderStrategy": [], "serviceRegistries": [], "platformVersion": null,
            "availabilityZoneRebalancing": "DISABLED"
        }));
        assert!(refuse("", &ok).is_ok());
        let e = refuse(
            "",
            &rest(json!({"deploymentController": {"type": "CODE_DEPLOY"}})),
        )
        .unwrap_err();
        assert_eq!(e.code, berth_model::ErrorCode::InvalidParameterException);
        assert!(e.message.contains("deploymentController"), "{}", e.message);
        assert!(e.message.contains("only the ECS deployment controller"));
        let e = refuse(
            "",
            &rest(json!({"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"], "assignPublicIp": "ENABLED"}}})),
        )
        .unwrap_err();
        assert!(
            e.message.contains("awsvpcConfiguration.subnets")
                && e.message.contains("awsvpcConfiguration.assignPublicIp"),
            "{}",
            e.message
        );
    }

    #[test]
    fn override_members_are_named_with_their_parent() {
        let o: TaskOverride = serde_json::from_value(json!({
            "containerOverrides": [{"name": "app", "environmentFiles": [{"value": "arn:x", "type": "s3"}]}]
        }))
        .unwrap();
        let e = refuse_overrides(&o).unwrap_err();
        assert!(e
            .message
            .starts_with("overrides.containerOverrides.environmentFiles"));
        let o: TaskOverride =
            serde_json::from_value(json!({"ephemeralStorage": {"sizeInGiB": 30}})).unwrap();
        assert!(refuse_overrides(&o)
            .unwrap_err()
            .message
            .starts_with("overrides.ephemeralStorage"));
    }
}
