//! Placement strategies and constraints, made from (and written back to) ECS's shapes
//! `{"type": "binpack", "field": "memory"}` and `{"type": "memberOf", "expression": "..."}`:
//! berth-model's [`PlacementStrategy`] and [`PlacementConstraint`], whose `type` is already
//! typed; what the `field` and `expression` say is decided here.

use std::fmt;

use berth_model::{
    PlacementConstraint, PlacementConstraintType, PlacementStrategy, PlacementStrategyType,
};
use serde::{Deserialize, Serialize};

use crate::error::SchedError;
use crate::expr::Expr;

/// ECS allows at most 5 placement strategy rules per task.
pub const MAX_STRATEGIES: usize = 5;
/// ECS allows at most 10 placement constraints per task (task definition and request together).
pub const MAX_CONSTRAINTS: usize = 10;
/// ECS caps a `memberOf` expression at 2,000 characters.
pub const MAX_EXPRESSION_LEN: usize = 2000;

/// The resource a `binpack` strategy packs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinpackField {
    /// `cpu`.
    Cpu,
    /// `memory`.
    Memory,
}

impl BinpackField {
    /// `"cpu"` or `"memory"`.
    pub fn as_str(self) -> &'static str {
        match self {
            BinpackField::Cpu => "cpu",
            BinpackField::Memory => "memory",
        }
    }
}

/// What a `spread` strategy spreads over.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SpreadField {
    /// `instanceId` (or its synonym `host`): each instance is its own value.
    Instance,
    /// `attribute:NAME`: instances are grouped by the value of attribute NAME. Instances
    /// without the attribute form one group of their own.
    Attribute(String),
}

impl SpreadField {
    /// Parses a spread field: `instanceId`, `host`, `attribute:NAME`, or a bare attribute
    /// name (accepted as `attribute:NAME`).
    pub fn parse(field: &str) -> Result<Self, SchedError> {
        let field = field.trim();
        if field.is_empty() {
            return Err(SchedError::InvalidStrategy(
                "the spread strategy requires a field: instanceId, host or attribute:NAME"
                    .to_string(),
            ));
        }
        if field == "instanceId" || field == "host" {
            return Ok(SpreadField::Instance);
        }
        let name = field.strip_prefix("attribute:").unwrap_or(field);
        if name.is_empty() {
            return Err(SchedError::InvalidStrategy(format!(
                "spread field `{field}` names no attribute"
            )));
        }
        Ok(SpreadField::Attribute(name.to_string()))
    }

    /// The wire spelling: `instanceId` or `attribute:NAME`.
    pub fn to_wire(&self) -> String {
        match self {
            SpreadField::Instance => "instanceId".to_string(),
            SpreadField::Attribute(name) => format!("attribute:{name}"),
        }
    }
}

/// A placement strategy. Several apply in order, each breaking the ties of the ones before.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "PlacementStrategy", into = "PlacementStrategy")]
pub enum Strategy {
    /// Prefer the instance with the least of `field` remaining (then the least of the other
    /// resource): fills instances before starting new ones.
    Binpack {
        /// The resource packed on.
        field: BinpackField,
    },
    /// Prefer the value of `field` with the fewest tasks of the task's group (counting the
    /// tasks placed earlier in the same call).
    Spread {
        /// What is spread over.
        field: SpreadField,
    },
    /// Uniformly random among feasible instances; reproducible for a given seed.
    Random,
}

impl Strategy {
    /// Parses ECS's `placementStrategy` entry from its text: `kind` is `type` (`binpack`,
    /// `spread`, `random`), `field` its `field`. See [`Strategy::new`].
    pub fn from_wire(kind: &str, field: Option<&str>) -> Result<Strategy, SchedError> {
        let kind: PlacementStrategyType = kind.parse().map_err(|_| {
            SchedError::InvalidStrategy(format!(
                "unknown placement strategy type `{kind}`; expected random, spread or binpack"
            ))
        })?;
        Strategy::new(kind, field)
    }

    /// A strategy of type `kind` with its `field`: binpack needs `cpu` or `memory`; spread
    /// needs a field; random ignores it.
    pub fn new(kind: PlacementStrategyType, field: Option<&str>) -> Result<Strategy, SchedError> {
        match kind {
            PlacementStrategyType::Binpack => match field.map(str::trim) {
                Some(f) if f.eq_ignore_ascii_case("cpu") => Ok(Strategy::Binpack {
                    field: BinpackField::Cpu,
                }),
                Some(f) if f.eq_ignore_ascii_case("memory") => Ok(Strategy::Binpack {
                    field: BinpackField::Memory,
                }),
                Some(f) => Err(SchedError::InvalidStrategy(format!(
                    "the binpack field must be cpu or memory, not `{f}`"
                ))),
                None => Err(SchedError::InvalidStrategy(
                    "the binpack strategy requires a field: cpu or memory".to_string(),
                )),
            },
            PlacementStrategyType::Spread => Ok(Strategy::Spread {
                field: SpreadField::parse(field.unwrap_or(""))?,
            }),
            PlacementStrategyType::Random => Ok(Strategy::Random),
        }
    }

    /// The wire `type`.
    pub fn kind(&self) -> PlacementStrategyType {
        match self {
            Strategy::Binpack { .. } => PlacementStrategyType::Binpack,
            Strategy::Spread { .. } => PlacementStrategyType::Spread,
            Strategy::Random => PlacementStrategyType::Random,
        }
    }

    /// The wire `type`, as text.
    pub fn wire_type(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The wire `field` (none for random).
    pub fn wire_field(&self) -> Option<String> {
        match self {
            Strategy::Binpack { field } => Some(field.as_str().to_string()),
            Strategy::Spread { field } => Some(field.to_wire()),
            Strategy::Random => None,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.wire_field() {
            Some(field) => write!(f, "{}({field})", self.wire_type()),
            None => f.write_str(self.wire_type()),
        }
    }
}

/// A placement constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PlacementConstraint", into = "PlacementConstraint")]
pub enum Constraint {
    /// Each task of the group on a different instance: no two tasks of this call on one
    /// instance, and none on an instance that already runs a task of the group.
    DistinctInstance,
    /// Only instances that satisfy the expression.
    MemberOf(Expr),
}

impl Constraint {
    /// Parses ECS's `placementConstraints` entry from its text: `kind` is `type`
    /// (`distinctInstance`, `memberOf`), `expression` its `expression`. See
    /// [`Constraint::new`].
    pub fn from_wire(kind: &str, expression: Option<&str>) -> Result<Constraint, SchedError> {
        let kind: PlacementConstraintType = kind.parse().map_err(|_| {
            SchedError::InvalidConstraint(format!(
                "unknown placement constraint type `{kind}`; expected distinctInstance or memberOf"
            ))
        })?;
        Constraint::new(kind, expression)
    }

    /// A constraint of type `kind` with its `expression` (required for memberOf, at most
    /// [`MAX_EXPRESSION_LEN`] characters; not allowed for distinctInstance).
    pub fn new(
        kind: PlacementConstraintType,
        expression: Option<&str>,
    ) -> Result<Constraint, SchedError> {
        let expression = expression.filter(|e| !e.trim().is_empty());
        match kind {
            PlacementConstraintType::DistinctInstance => match expression {
                None => Ok(Constraint::DistinctInstance),
                Some(_) => Err(SchedError::InvalidConstraint(
                    "an expression can't be specified for the distinctInstance constraint"
                        .to_string(),
                )),
            },
            PlacementConstraintType::MemberOf => {
                let expr = expression.ok_or_else(|| {
                    SchedError::InvalidConstraint(
                        "the memberOf constraint requires an expression".to_string(),
                    )
                })?;
                let len = expr.chars().count();
                if len > MAX_EXPRESSION_LEN {
                    return Err(SchedError::InvalidConstraint(format!(
                        "the expression is {len} characters long; at most \
                         {MAX_EXPRESSION_LEN} are allowed"
                    )));
                }
                Ok(Constraint::MemberOf(Expr::parse(expr)?))
            }
        }
    }

    /// The wire `type`.
    pub fn kind(&self) -> PlacementConstraintType {
        match self {
            Constraint::DistinctInstance => PlacementConstraintType::DistinctInstance,
            Constraint::MemberOf(_) => PlacementConstraintType::MemberOf,
        }
    }

    /// The wire `type`, as text.
    pub fn wire_type(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The wire `expression` (the text as given), none for distinctInstance.
    pub fn wire_expression(&self) -> Option<&str> {
        match self {
            Constraint::DistinctInstance => None,
            Constraint::MemberOf(e) => Some(e.source()),
        }
    }
}

/// Checks ECS's limits on the number of strategies and constraints.
pub fn check_limits(strategies: &[Strategy], constraints: &[Constraint]) -> Result<(), SchedError> {
    if strategies.len() > MAX_STRATEGIES {
        return Err(SchedError::TooManyStrategies {
            count: strategies.len(),
            max: MAX_STRATEGIES,
        });
    }
    if constraints.len() > MAX_CONSTRAINTS {
        return Err(SchedError::TooManyConstraints {
            count: constraints.len(),
            max: MAX_CONSTRAINTS,
        });
    }
    Ok(())
}

impl TryFrom<&PlacementStrategy> for Strategy {
    type Error = SchedError;
    fn try_from(s: &PlacementStrategy) -> Result<Self, SchedError> {
        Strategy::new(s.kind, s.field.as_deref())
    }
}

impl TryFrom<PlacementStrategy> for Strategy {
    type Error = SchedError;
    fn try_from(s: PlacementStrategy) -> Result<Self, SchedError> {
        Strategy::try_from(&s)
    }
}

impl From<Strategy> for PlacementStrategy {
    fn from(s: Strategy) -> Self {
        PlacementStrategy {
            field: s.wire_field(),
            kind: s.kind(),
        }
    }
}

impl TryFrom<&PlacementConstraint> for Constraint {
    type Error = SchedError;
    fn try_from(c: &PlacementConstraint) -> Result<Self, SchedError> {
        Constraint::new(c.kind, c.expression.as_deref())
    }
}

impl TryFrom<PlacementConstraint> for Constraint {
    type Error = SchedError;
    fn try_from(c: PlacementConstraint) -> Result<Self, SchedError> {
        Constraint::try_from(&c)
    }
}

impl From<Constraint> for PlacementConstraint {
    fn from(c: Constraint) -> Self {
        PlacementConstraint {
            expression: c.wire_expression().map(str::to_string),
            kind: c.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binpack_needs_cpu_or_memory() {
        assert_eq!(
            Strategy::from_wire("binpack", Some("memory")),
            Ok(Strategy::Binpack {
                field: BinpackField::Memory
            })
        );
        assert_eq!(
            Strategy::from_wire("binpack", Some("CPU")),
            Ok(Strategy::Binpack {
                field: BinpackField::Cpu
            })
        );
        assert!(matches!(
            Strategy::from_wire("binpack", Some("disk")),
            Err(SchedError::InvalidStrategy(_))
        ));
        assert!(matches!(
            Strategy::from_wire("binpack", None),
            Err(SchedError::InvalidStrategy(_))
        ));
    }

    #[test]
    fn spread_fields() {
        let inst = Strategy::Spread {
            field: SpreadField::Instance,
        };
        assert_eq!(
            Strategy::from_wire("spread", Some("instanceId")),
            Ok(inst.clone())
        );
        assert_eq!(Strategy::from_wire("spread", Some("host")), Ok(inst));
        assert_eq!(
            Strategy::from_wire("spread", Some("attribute:ecs.availability-zone")),
            Ok(Strategy::Spread {
                field: SpreadField::Attribute("ecs.availability-zone".into())
            })
        );
        assert_eq!(
            Strategy::from_wire("spread", Some("rack")),
            Ok(Strategy::Spread {
                field: SpreadField::Attribute("rack".into())
            })
        );
        assert!(Strategy::from_wire("spread", None).is_err());
        assert!(Strategy::from_wire("spread", Some("")).is_err());
        assert!(Strategy::from_wire("spread", Some("attribute:")).is_err());
    }

    #[test]
    fn random_ignores_field_and_unknown_types_fail() {
        assert_eq!(Strategy::from_wire("random", None), Ok(Strategy::Random));
        assert_eq!(
            Strategy::from_wire("random", Some("x")),
            Ok(Strategy::Random)
        );
        assert!(Strategy::from_wire("Random", None).is_err());
        assert!(Strategy::from_wire("pack", Some("cpu")).is_err());
    }

    #[test]
    fn constraints_from_wire() {
        assert_eq!(
            Constraint::from_wire("distinctInstance", None),
            Ok(Constraint::DistinctInstance)
        );
        assert_eq!(
            Constraint::from_wire("distinctInstance", Some("")),
            Ok(Constraint::DistinctInstance)
        );
        assert!(Constraint::from_wire("distinctInstance", Some("agentConnected == true")).is_err());
        assert!(Constraint::from_wire("memberOf", None).is_err());
        assert!(Constraint::from_wire("memberOf", Some("  ")).is_err());
        assert!(Constraint::from_wire("memberOf", Some("bogus")).is_err());
        assert!(Constraint::from_wire("unique", None).is_err());
        let c = Constraint::from_wire("memberOf", Some("attribute:ecs.instance-type =~ t2.*"));
        assert!(matches!(c, Ok(Constraint::MemberOf(_))));
    }

    #[test]
    fn expression_length_limit() {
        let long = format!("attribute:x == {}", "a".repeat(MAX_EXPRESSION_LEN));
        assert!(matches!(
            Constraint::from_wire("memberOf", Some(&long)),
            Err(SchedError::InvalidConstraint(_))
        ));
        let ok = format!("attribute:x == {}", "a".repeat(MAX_EXPRESSION_LEN - 20));
        assert!(Constraint::from_wire("memberOf", Some(&ok)).is_ok());
    }

    #[test]
    fn limits() {
        let s = vec![Strategy::Random; 5];
        let c = vec![Constraint::DistinctInstance; 10];
        assert!(check_limits(&s, &c).is_ok());
        assert_eq!(
            check_limits(&vec![Strategy::Random; 6], &c),
            Err(SchedError::TooManyStrategies { count: 6, max: 5 })
        );
        assert_eq!(
            check_limits(&s, &vec![Constraint::DistinctInstance; 11]),
            Err(SchedError::TooManyConstraints { count: 11, max: 10 })
        );
    }

    #[test]
    fn wire_round_trip() {
        let json = r#"[{"type":"spread","field":"attribute:ecs.availability-zone"},
                       {"type":"binpack","field":"memory"},{"type":"random"}]"#;
        let s: Vec<Strategy> = serde_json::from_str(json).expect("parses");
        assert_eq!(s.len(), 3);
        let back = serde_json::to_string(&s).expect("serialises");
        assert_eq!(
            back,
            r#"[{"field":"attribute:ecs.availability-zone","type":"spread"},{"field":"memory","type":"binpack"},{"type":"random"}]"#
        );
        let c: Vec<Constraint> = serde_json::from_str(
            r#"[{"type":"distinctInstance"},{"type":"memberOf","expression":"task:group == databases"}]"#,
        )
        .expect("parses");
        assert_eq!(
            serde_json::to_string(&c).expect("serialises"),
            r#"[{"type":"distinctInstance"},{"expression":"task:group == databases","type":"memberOf"}]"#
        );
        assert!(serde_json::from_str::<Strategy>(r#"{"type":"binpack","field":"gpu"}"#).is_err());
    }

    #[test]
    fn from_and_to_the_typed_wire_shapes() {
        let s = PlacementStrategy {
            field: Some(" memory ".into()),
            kind: PlacementStrategyType::Binpack,
        };
        assert_eq!(
            Strategy::try_from(&s),
            Ok(Strategy::Binpack {
                field: BinpackField::Memory
            })
        );
        let no_field = PlacementStrategy {
            field: None,
            kind: PlacementStrategyType::Spread,
        };
        assert!(Strategy::try_from(&no_field).is_err());
        assert_eq!(
            PlacementStrategy::from(Strategy::Random),
            PlacementStrategy {
                field: None,
                kind: PlacementStrategyType::Random
            }
        );
        let c = PlacementConstraint {
            expression: Some("attribute:zone == a".into()),
            kind: PlacementConstraintType::MemberOf,
        };
        let parsed = Constraint::try_from(&c).expect("valid");
        assert_eq!(PlacementConstraint::from(parsed), c);
        let bad = PlacementConstraint {
            expression: Some("attribute:zone == a".into()),
            kind: PlacementConstraintType::DistinctInstance,
        };
        assert!(Constraint::try_from(&bad).is_err());
    }

    #[test]
    fn display() {
        assert_eq!(
            Strategy::from_wire("spread", Some("host"))
                .expect("valid")
                .to_string(),
            "spread(instanceId)"
        );
        assert_eq!(Strategy::Random.to_string(), "random");
    }
}
