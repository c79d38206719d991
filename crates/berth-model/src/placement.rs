//! Placement strategies and constraints as ECS's wire shapes (`{"type": "spread", "field":
//! "attribute:ecs.availability-zone"}`, `{"type": "memberOf", "expression": "..."}`).
//!
//! These are the shapes a service stores and answers with. What they mean (a spread field's
//! syntax, a `memberOf` expression's grammar) is `berth-sched`'s to decide: it turns them into
//! its `Strategy` and `Constraint`.
//!
//! Fields are declared in alphabetical order of their wire names: berth stored these members
//! as raw JSON objects (whose keys serde_json sorts) before they were typed, and a record
//! re-encoded now is byte-identical to the one written then.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{self, wire_enum};
use crate::ApiError;

wire_enum! {
    /// ECS's `PlacementStrategyType`.
    pub enum PlacementStrategyType ("placementStrategy type") {
        /// Place tasks at random among the instances that fit.
        Random = "random",
        /// Spread tasks evenly over the values of `field`.
        Spread = "spread",
        /// Pack tasks onto the instances with the least of `field` (cpu or memory) left.
        Binpack = "binpack",
    }
}

wire_enum! {
    /// ECS's `PlacementConstraintType` (services, RunTask).
    pub enum PlacementConstraintType ("placementConstraints type") {
        /// Each task on a different container instance.
        DistinctInstance = "distinctInstance",
        /// Only instances matching the `expression`.
        MemberOf = "memberOf",
    }
}

wire_enum! {
    /// ECS's `TaskDefinitionPlacementConstraintType`: a task definition can only say `memberOf`.
    pub enum TaskDefinitionPlacementConstraintType ("placementConstraints type") {
        /// Only instances matching the `expression`.
        MemberOf = "memberOf",
    }
}

/// One `placementStrategy` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementStrategy {
    /// `cpu` / `memory` for binpack, `instanceId` / `host` / `attribute:NAME` for spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The strategy (`type`).
    #[serde(rename = "type")]
    pub kind: PlacementStrategyType,
}

/// One `placementConstraints` entry of a service or a RunTask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementConstraint {
    /// A cluster query language expression (`memberOf` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// The constraint (`type`).
    #[serde(rename = "type")]
    pub kind: PlacementConstraintType,
}

/// One `placementConstraints` entry of a task definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDefinitionPlacementConstraint {
    /// A cluster query language expression (`memberOf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Optional in ECS's model. Task definitions stored before berth checked this member
    /// may hold another value: it reads as absent (see `wire::lenient`).
    #[serde(
        rename = "type",
        default,
        deserialize_with = "wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<TaskDefinitionPlacementConstraintType>,
}

impl PlacementStrategy {
    /// A request's `placementStrategy` list, typed. An unknown `type` is ECS's
    /// `InvalidParameterException` naming it; so is an entry of the wrong shape.
    pub fn from_request(list: &[Value]) -> Result<Vec<Self>, ApiError> {
        list.iter()
            .map(|v| {
                wire::check::<PlacementStrategyType>(v.get("type"))?;
                wire::member("placementStrategy", v)
            })
            .collect()
    }
}

impl PlacementConstraint {
    /// A request's `placementConstraints` list, typed (as [`PlacementStrategy::from_request`]).
    pub fn from_request(list: &[Value]) -> Result<Vec<Self>, ApiError> {
        list.iter()
            .map(|v| {
                wire::check::<PlacementConstraintType>(v.get("type"))?;
                wire::member("placementConstraints", v)
            })
            .collect()
    }
}

impl TaskDefinitionPlacementConstraint {
    /// Checks the enum members of a RegisterTaskDefinition's `placementConstraints` entry.
    pub(crate) fn check_request(v: &Value) -> Result<(), ApiError> {
        wire::check::<TaskDefinitionPlacementConstraintType>(v.get("type"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::json;

    #[test]
    fn request_lists_are_typed_or_refused_as_ecs_does() {
        let s = PlacementStrategy::from_request(&[
            json!({"type": "spread", "field": "attribute:ecs.availability-zone"}),
            json!({"type": "random"}),
        ])
        .unwrap();
        assert_eq!(s[0].kind, PlacementStrategyType::Spread);
        assert_eq!(
            s[0].field.as_deref(),
            Some("attribute:ecs.availability-zone")
        );
        assert_eq!(s[1].field, None);

        let e = PlacementStrategy::from_request(&[json!({"type": "sideways"})]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterException);
        assert_eq!(
            e.message,
            r#"Invalid placementStrategy type "sideways"; valid: random, spread, binpack"#
        );
        for bad in [json!({"field": "cpu"}), json!({"type": 5}), json!("spread")] {
            let e = PlacementStrategy::from_request(&[bad]).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidParameterException);
            assert!(e.message.contains("placementStrategy"), "{}", e.message);
        }

        let e = PlacementConstraint::from_request(&[json!({"type": "unique"})]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterException);
        assert!(e.message.contains("placementConstraints type"));
        let c = PlacementConstraint::from_request(&[json!({"type": "distinctInstance"})]).unwrap();
        assert_eq!(c[0].kind, PlacementConstraintType::DistinctInstance);
    }

    #[test]
    fn entries_encode_as_berth_stored_them() {
        let s = PlacementStrategy {
            field: Some("memory".into()),
            kind: PlacementStrategyType::Binpack,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"field":"memory","type":"binpack"}"#
        );
        let t: TaskDefinitionPlacementConstraint =
            serde_json::from_str(r#"{"type":"distinctInstance"}"#).unwrap();
        assert_eq!(t.kind, None, "an old record's bad value reads as absent");
    }
}
