//! The ECS cluster query language: `memberOf` constraints and ListContainerInstances filters.
//! The grammar and semantics are documented on [`Expr`].

mod parse;
mod time;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::SchedError;
use crate::model::InstanceView;
use time::{version_cmp, TimeRange};

/// A parsed cluster query language expression.
///
/// ```text
/// expression := term (("or" | "||") term)*
/// term       := factor (("and" | "&&") factor)*
/// factor     := ("not" | "!") factor | "(" expression ")" | condition
/// condition  := subject operator [argument]
/// subject    := attribute:NAME | agentConnected | agentVersion | ec2InstanceId
///             | registeredAt | runningTasksCount | task:group
/// operator   := == equals | != not_equals | > greater_than | >= greater_than_equal
///             | < less_than | <= less_than_equal | exists | !exists not_exists
///             | in | !in not_in | =~ matches | !~ not_matches
/// argument   := value | [value, value, ...]      value: bare word or 'quoted' / "quoted"
/// ```
///
/// Semantics, where ECS's documentation leaves room:
/// - `and` binds tighter than `or`; keywords and word operators are case-insensitive.
/// - A condition on an attribute the instance does not have is false, whatever the operator
///   (ECS: `attribute:stack != prod` lists the instances *with* `stack` whose value is not
///   `prod`); only `!exists` is true. An attribute without a value exists but equals nothing.
/// - `>`, `>=`, `<`, `<=` compare numerically when both sides are numbers, else as strings;
///   `agentVersion` compares dotted versions (`1.9.0 < 1.14.5`).
/// - `=~` / `!~` take a regular expression (ECS documents Java's syntax) that must match the
///   whole value: `t2.*` matches `t2.micro`. Look-around and back-references are not supported.
/// - `registeredAt` takes a date (the whole UTC day) or a timestamp (its second):
///   `registeredAt < 2018-02-13` is before that day starts, `> 2018-02-13` after it ends.
/// - `task:group` is a set: `==`, `in`, `=~` hold if any group with tasks on the instance
///   matches; `!=`, `not_in`, `!~` hold if none does; `exists` if the instance has any task.
/// - `ec2InstanceId` is compared with the instance's `ecs.instance-id` attribute when it has
///   one (the control plane sets it from the registered EC2 instance id), else with the
///   container instance id.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// At least two operands; flat, so a long chain does not deepen the tree.
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Cond(Cond),
}

#[derive(Debug, Clone, PartialEq)]
struct Cond {
    subject: Subject,
    op: Op,
    arg: Arg,
}

#[derive(Debug, Clone, PartialEq)]
enum Subject {
    Attribute(String),
    AgentConnected,
    AgentVersion,
    Ec2InstanceId,
    RegisteredAt,
    RunningTasksCount,
    TaskGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

impl Op {
    /// The positive operator and whether this one negates it (`!=` is not `==`).
    fn split(self) -> (Op, bool) {
        match self {
            Op::Ne => (Op::Eq, true),
            Op::NotIn => (Op::In, true),
            Op::NotMatches => (Op::Matches, true),
            Op::NotExists => (Op::Exists, true),
            op => (op, false),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    None,
    Text(String),
    List(Vec<String>),
    Pattern(Pattern),
    Time(TimeRange),
    Count(i64),
}

/// A compiled `matches` pattern; equal when the source is.
#[derive(Debug, Clone)]
struct Pattern {
    source: String,
    regex: regex::bytes::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// The attribute `ec2InstanceId` reads, when present.
pub(crate) const EC2_INSTANCE_ID_ATTRIBUTE: &str = "ecs.instance-id";

/// What an expression is evaluated against. [`InstanceView`] implements it; the placement
/// stack implements it too, to show the tasks it has placed earlier in the same call.
pub(crate) trait Target {
    fn attribute(&self, name: &str) -> Option<Option<&str>>;
    fn connected(&self) -> bool;
    fn agent_version(&self) -> Option<&str>;
    /// What `ec2InstanceId` compares with.
    fn ec2_instance_id(&self) -> &str;
    fn registered_at(&self) -> f64;
    fn running_tasks(&self) -> u32;
    /// Whether any task group with at least one task on the instance satisfies `f`.
    fn any_group(&self, f: &mut dyn FnMut(&str) -> bool) -> bool;
}

impl Target for InstanceView {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.get(name).map(|v| v.as_deref())
    }
    fn connected(&self) -> bool {
        self.connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.agent_version.as_deref()
    }
    fn ec2_instance_id(&self) -> &str {
        match self.attributes.get(EC2_INSTANCE_ID_ATTRIBUTE) {
            Some(Some(id)) => id,
            _ => &self.id,
        }
    }
    fn registered_at(&self) -> f64 {
        self.registered_at
    }
    fn running_tasks(&self) -> u32 {
        self.running_tasks
    }
    fn any_group(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.task_groups
            .iter()
            .any(|(group, &count)| count > 0 && f(group))
    }
}

impl Expr {
    /// Parses an expression. Errors say what was expected and where.
    pub fn parse(s: &str) -> Result<Expr, SchedError> {
        let root = parse::parse(s)?;
        Ok(Expr {
            source: s.to_string(),
            root,
        })
    }

    /// Whether the instance satisfies the expression.
    pub fn matches(&self, instance: &InstanceView) -> bool {
        self.eval(instance)
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn eval<T: Target + ?Sized>(&self, target: &T) -> bool {
        eval_node(&self.root, target)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Expr {
    type Err = SchedError;
    fn from_str(s: &str) -> Result<Self, SchedError> {
        Expr::parse(s)
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Expr::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn eval_node<T: Target + ?Sized>(node: &Node, t: &T) -> bool {
    match node {
        Node::Or(nodes) => nodes.iter().any(|n| eval_node(n, t)),
        Node::And(nodes) => nodes.iter().all(|n| eval_node(n, t)),
        Node::Not(a) => !eval_node(a, t),
        Node::Cond(c) => eval_cond(c, t),
    }
}

fn eval_cond<T: Target + ?Sized>(c: &Cond, t: &T) -> bool {
    let (positive, negated) = c.op.split();
    match &c.subject {
        Subject::Attribute(name) => match t.attribute(name) {
            None => c.op == Op::NotExists,
            Some(_) if positive == Op::Exists => !negated,
            Some(None) => negated,
            Some(Some(value)) => text_op(c.op, &c.arg, value),
        },
        Subject::Ec2InstanceId => text_op(c.op, &c.arg, t.ec2_instance_id()),
        Subject::AgentConnected => {
            text_op(c.op, &c.arg, if t.connected() { "true" } else { "false" })
        }
        Subject::AgentVersion => match (t.agent_version(), &c.arg) {
            (Some(v), Arg::Text(want)) => ordering_op(c.op, version_cmp(v, want)),
            _ => false,
        },
        Subject::RegisteredAt => match &c.arg {
            Arg::Time(range) => time_op(c.op, t.registered_at(), *range),
            _ => false,
        },
        Subject::RunningTasksCount => match &c.arg {
            Arg::Count(n) => ordering_op(c.op, i64::from(t.running_tasks()).cmp(n)),
            _ => false,
        },
        Subject::TaskGroup => {
            let any = if positive == Op::Exists {
                t.any_group(&mut |_| true)
            } else {
                t.any_group(&mut |group| text_op(positive, &c.arg, group))
            };
            any != negated
        }
    }
}

/// A string-valued subject against the argument.
fn text_op(op: Op, arg: &Arg, value: &str) -> bool {
    match (op, arg) {
        (Op::Eq, Arg::Text(want)) => value == want,
        (Op::Ne, Arg::Text(want)) => value != want,
        (Op::In, Arg::List(items)) => items.iter().any(|i| i == value),
        (Op::NotIn, Arg::List(items)) => !items.iter().any(|i| i == value),
        (Op::Matches, Arg::Pattern(p)) => p.regex.is_match(value.as_bytes()),
        (Op::NotMatches, Arg::Pattern(p)) => !p.regex.is_match(value.as_bytes()),
        (Op::Gt | Op::Ge | Op::Lt | Op::Le, Arg::Text(want)) => {
            ordering_op(op, loose_cmp(value, want))
        }
        (Op::Exists, _) => true,
        _ => false,
    }
}

/// Numbers compare as numbers, anything else as strings.
fn loose_cmp(a: &str, b: &str) -> Ordering {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        _ => a.cmp(b),
    }
}

fn ordering_op(op: Op, ord: Ordering) -> bool {
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        _ => false,
    }
}

fn time_op(op: Op, at: f64, range: TimeRange) -> bool {
    match op {
        Op::Eq => range.start <= at && at < range.end,
        Op::Ne => !(range.start <= at && at < range.end),
        Op::Gt => at >= range.end,
        Op::Ge => at >= range.start,
        Op::Lt => at < range.start,
        Op::Le => at < range.end,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
