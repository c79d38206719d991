//! A policy document as IAM reads it: `Version`, and `Statement` (one object or a list), each
//! with `Effect`, `Action` or `NotAction`, `Resource` or `NotResource`, and `Condition`.
//!
//! What berth cannot evaluate is refused when the policy is stored, never stored and ignored:
//! a `Principal` (identity policies have none, as IAM says), condition operators other than
//! the string ones, and condition keys berth never puts in a request's context.

use serde_json::{Map, Value};

/// Why a policy document is not one berth accepts; the message is IAM's
/// `MalformedPolicyDocument` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn malformed(msg: impl Into<String>) -> PolicyError {
    PolicyError(msg.into())
}

/// A parsed identity policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    pub allow: bool,
    /// The action patterns, and whether they are `NotAction`'s.
    pub actions: (Vec<String>, bool),
    /// The resource patterns, and whether they are `NotResource`'s.
    pub resources: (Vec<String>, bool),
    pub conditions: Vec<Condition>,
}

/// The string condition operators berth evaluates (named as IAM names them, hence the
/// shared prefix).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
}

impl Operator {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "StringEquals" => Self::StringEquals,
            "StringNotEquals" => Self::StringNotEquals,
            "StringEqualsIgnoreCase" => Self::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Self::StringNotEqualsIgnoreCase,
            "StringLike" => Self::StringLike,
            "StringNotLike" => Self::StringNotLike,
            _ => return None,
        })
    }

    /// Negated operators hold when the key is absent from the request, as in IAM.
    pub fn negated(self) -> bool {
        matches!(
            self,
            Self::StringNotEquals | Self::StringNotEqualsIgnoreCase | Self::StringNotLike
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    pub op: Operator,
    /// `ForAnyValue:` / `ForAllValues:`: how a multivalued key's values combine.
    pub set: Option<SetOperator>,
    /// The key as written (`aws:ResourceTag/team`); matched case-insensitively, as IAM does.
    pub key: String,
    pub values: Vec<String>,
}

/// The set qualifiers of an operator, for multivalued keys (`aws:TagKeys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOperator {
    /// `ForAnyValue:`: some value of the request's satisfies the operator.
    AnyValue,
    /// `ForAllValues:`: every value does (also when the request has none).
    AllValues,
}

/// The multivalued condition key berth puts in a request's context: the keys of the tags the
/// request carries.
pub(crate) const TAG_KEYS: &str = "aws:tagkeys";

/// The condition keys berth puts in a request's context (keys are case-insensitive).
fn known_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    matches!(
        k.as_str(),
        "aws:requestedregion"
            | "aws:username"
            | "aws:principalarn"
            | "aws:principaltype"
            | TAG_KEYS
    ) || ["aws:resourcetag/", "aws:requesttag/"]
        .iter()
        .any(|p| k.strip_prefix(p).is_some_and(|t| !t.is_empty()))
}

impl Policy {
    /// Parses a policy document (the JSON text IAM takes in `PolicyDocument`).
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let doc: Value =
            serde_json::from_str(text).map_err(|_| malformed("Syntax errors in policy."))?;
        let obj = doc
            .as_object()
            .ok_or_else(|| malformed("Syntax errors in policy."))?;
        for k in obj.keys() {
            if !matches!(k.as_str(), "Version" | "Statement" | "Id") {
                return Err(malformed(format!(
                    "Syntax errors in policy. Unknown field {k}"
                )));
            }
        }
        match obj.get("Version").and_then(Value::as_str) {
            Some("2012-10-17") | Some("2008-10-17") | None => {}
            Some(v) => {
                return Err(malformed(format!(
                    "The policy document has an unsupported version: {v}"
                )))
            }
        }
        let statements = match obj.get("Statement") {
            Some(Value::Array(a)) => a.iter().map(statement).collect::<Result<_, _>>()?,
            Some(s @ Value::Object(_)) => vec![statement(s)?],
            _ => return Err(malformed("Syntax errors in policy. Missing Statement")),
        };
        Ok(Self { statements })
    }

    /// Whether any statement's condition reads `aws:ResourceTag/...`: only then does the edge
    /// look up the tags of the resources a request names.
    pub fn reads_resource_tags(&self) -> bool {
        self.statements.iter().any(|s| {
            s.conditions
                .iter()
                .any(|c| c.key.to_ascii_lowercase().starts_with("aws:resourcetag/"))
        })
    }
}

fn statement(v: &Value) -> Result<Statement, PolicyError> {
    let o = v
        .as_object()
        .ok_or_else(|| malformed("Syntax errors in policy."))?;
    for k in o.keys() {
        match k.as_str() {
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource"
            | "Condition" => {}
            "Principal" | "NotPrincipal" => {
                return Err(malformed("Policy document should not specify a principal."))
            }
            other => {
                return Err(malformed(format!(
                    "Syntax errors in policy. Unknown field {other}"
                )))
            }
        }
    }
    let allow = match o.get("Effect").and_then(Value::as_str) {
        Some("Allow") => true,
        Some("Deny") => false,
        Some(e) => return Err(malformed(format!("Invalid effect: {e}"))),
        None => return Err(malformed("Missing required field Effect")),
    };
    let actions = one_of(o, "Action", "NotAction")
        .ok_or_else(|| malformed("Policy statement must contain actions."))??;
    for a in &actions.0 {
        if a != "*" && !a.contains(':') {
            return Err(malformed(format!(
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. ({a})"
            )));
        }
    }
    let resources = one_of(o, "Resource", "NotResource")
        .ok_or_else(|| malformed("Policy statement must contain resources."))??;
    let conditions = match o.get("Condition") {
        None => Vec::new(),
        Some(Value::Object(c)) => conditions(c)?,
        Some(_) => return Err(malformed("Syntax errors in policy. Condition")),
    };
    Ok(Statement {
        allow,
        actions,
        resources,
        conditions,
    })
}

/// The patterns of `pos` or `neg` (exactly one may be given), and whether they are `neg`'s.
fn one_of(
    o: &Map<String, Value>,
    pos: &str,
    neg: &str,
) -> Option<Result<(Vec<String>, bool), PolicyError>> {
    match (o.get(pos), o.get(neg)) {
        (Some(_), Some(_)) => Some(Err(malformed(format!(
            "Syntax errors in policy. A statement has both {pos} and {neg}"
        )))),
        (Some(v), None) => Some(strings(v).map(|s| (s, false))),
        (None, Some(v)) => Some(strings(v).map(|s| (s, true))),
        (None, None) => None,
    }
}

fn strings(v: &Value) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| malformed("Syntax errors in policy."))
            })
            .collect(),
        _ => Err(malformed("Syntax errors in policy.")),
    }
}

fn conditions(c: &Map<String, Value>) -> Result<Vec<Condition>, PolicyError> {
    let mut out = Vec::new();
    for (op_name, block) in c {
        let (set, bare) = match op_name.split_once(':') {
            Some(("ForAnyValue", o)) => (Some(SetOperator::AnyValue), o),
            Some(("ForAllValues", o)) => (Some(SetOperator::AllValues), o),
            _ => (None, op_name.as_str()),
        };
        let op = Operator::parse(bare).ok_or_else(|| {
            malformed(format!(
                "berth does not evaluate the condition operator {op_name}; it evaluates \
                 StringEquals, StringNotEquals, StringEqualsIgnoreCase, \
                 StringNotEqualsIgnoreCase, StringLike and StringNotLike (after \
                 ForAnyValue: or ForAllValues: if need be)"
            ))
        })?;
        let block = block
            .as_object()
            .ok_or_else(|| malformed("Syntax errors in policy. Condition"))?;
        for (key, values) in block {
            if !known_key(key) {
                return Err(malformed(format!(
                    "berth does not evaluate the condition key {key}; it evaluates \
                     aws:RequestedRegion, aws:ResourceTag/<key>, aws:RequestTag/<key>, \
                     aws:TagKeys, aws:username, aws:PrincipalArn and aws:PrincipalType"
                )));
            }
            if set.is_none() && key.eq_ignore_ascii_case(TAG_KEYS) {
                return Err(malformed(format!(
                    "berth evaluates the multivalued key {key} only under ForAnyValue: or \
                     ForAllValues: (as in ForAllValues:{op_name})"
                )));
            }
            let values = match values {
                Value::Bool(b) => vec![b.to_string()],
                Value::Number(n) => vec![n.to_string()],
                v => strings(v)?,
            };
            out.push(Condition {
                op,
                set,
                key: key.clone(),
                values,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_berth_accepts_and_refuses() {
        let table: &[(&str, Result<(), &str>)] = &[
            (
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
                Ok(()),
            ),
            (
                r#"{"Statement":[{"Sid":"a","Effect":"Deny","NotAction":["ecs:List*"],"NotResource":"arn:*"}]}"#,
                Ok(()),
            ),
            ("not json", Err("Syntax errors in policy.")),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}}"#,
                Err("Policy document should not specify a principal."),
            ),
            (
                r#"{"Statement":{"Effect":"Maybe","Action":"*","Resource":"*"}}"#,
                Err("Invalid effect: Maybe"),
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#,
                Err("Policy statement must contain actions."),
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*"}}"#,
                Err("Policy statement must contain resources."),
            ),
            (
                r#"{"Version":"2099-01-01","Statement":[]}"#,
                Err("The policy document has an unsupported version: 2099-01-01"),
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"ListClusters","Resource":"*"}}"#,
                Err("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. (ListClusters)"),
            ),
        ];
        for (doc, want) in table {
            let got = Policy::parse(doc).map(|_| ()).map_err(|e| e.0);
            match want {
                Ok(()) => assert!(got.is_ok(), "{doc}: {got:?}"),
                Err(msg) => assert_eq!(got, Err((*msg).to_owned()), "{doc}"),
            }
        }
    }

    #[test]
    fn unevaluated_conditions_are_refused_by_name() {
        let op = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"NumericLessThan":{"aws:RequestedRegion":"1"}}}}"#;
        let e = Policy::parse(op).expect_err("refused");
        assert!(e.0.contains("NumericLessThan"), "{e}");
        let key = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"StringEquals":{"aws:SourceIp":"1.2.3.4"}}}}"#;
        let e = Policy::parse(key).expect_err("refused");
        assert!(e.0.contains("aws:SourceIp"), "{e}");
        let plain = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"StringEquals":{"aws:TagKeys":"team"}}}}"#;
        let e = Policy::parse(plain).expect_err("refused");
        assert!(e.0.contains("ForAllValues:StringEquals"), "{e}");
        let set = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":"team"}}}}"#;
        Policy::parse(set).expect("accepted");
        let bad_set = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"ForSomeValues:StringEquals":{"aws:TagKeys":"team"}}}}"#;
        assert!(Policy::parse(bad_set).is_err());
        let ok = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*",
            "Condition":{"StringLike":{"aws:ResourceTag/team":["a*"]}}}}"#;
        assert!(Policy::parse(ok).expect("accepted").reads_resource_tags());
    }
}
