//! Listener and rule actions (forward, fixed-response, redirect), in ELBv2's member names so a
//! request's structure deserialises into them directly. Split from the records because they
//! are a request language of their own, with their own checks and ELB error codes.

use serde::{Deserialize, Serialize};

use super::lenient::{list, opt_bool, opt_num};
use super::{parse_port, validation};
use crate::{ApiError, ErrorCode};

/// A listener or rule action: forward, fixed-response or redirect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ElbAction {
    /// `forward`, `fixed-response` or `redirect`.
    #[serde(rename = "Type")]
    pub action_type: String,
    /// `forward` to one target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    /// `forward` to several target groups, by weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_config: Option<ForwardConfig>,
    /// The answer of a `fixed-response` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_response_config: Option<FixedResponseConfig>,
    /// Where a `redirect` action sends the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_config: Option<RedirectConfig>,
    #[serde(
        default,
        deserialize_with = "opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    /// The order of the action among the listener's or rule's actions (lowest first).
    pub order: Option<u32>,
}

/// A forward action's target groups and stickiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForwardConfig {
    /// The target groups to forward to (at most [`MAX_FORWARD_TARGET_GROUPS`]).
    #[serde(default, deserialize_with = "list")]
    pub target_groups: Vec<WeightedTargetGroup>,
    /// Whether a client sticks to the target group it was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_stickiness_config: Option<StickinessConfig>,
}

/// A target group of a forward action, with its share of requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedTargetGroup {
    /// The target group's ARN.
    #[serde(rename = "TargetGroupArn")]
    pub arn: String,
    #[serde(
        rename = "Weight",
        default,
        deserialize_with = "opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    /// Its weight, relative to the others' (0 to 999; 1 when not given).
    pub weight: Option<u32>,
}

/// Target group stickiness of a forward action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StickinessConfig {
    /// Whether a client keeps going to the same target group.
    #[serde(default, deserialize_with = "opt_bool")]
    pub enabled: Option<bool>,
    #[serde(
        default,
        deserialize_with = "opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    /// How long it does, in seconds.
    pub duration_seconds: Option<u32>,
}

/// A fixed response: the status, type and body an action answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FixedResponseConfig {
    /// The response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
    /// The HTTP status code (`2XX`, `4XX` or `5XX`).
    pub status_code: String,
    /// The `Content-Type` (`text/plain`, `text/html`, `application/json`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// A redirect: each part of the URL is replaced, `#{protocol}`, `#{host}`, `#{port}`, `#{path}` and
/// `#{query}` standing for the request's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RedirectConfig {
    /// `HTTP` or `HTTPS` (default `#{protocol}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The port (default `#{port}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// The host name (default `#{host}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The path, starting with `/` (default `/#{path}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The query, without `?` (default `#{query}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `HTTP_301` (permanent) or `HTTP_302` (temporary).
    pub status_code: String,
}

/// ELB's limit on target groups in one forward action.
pub const MAX_FORWARD_TARGET_GROUPS: usize = 5;

impl ElbAction {
    /// A plain forward to one target group.
    pub fn forward(target_group_arn: impl Into<String>) -> Self {
        Self {
            action_type: "forward".into(),
            target_group_arn: Some(target_group_arn.into()),
            forward_config: None,
            fixed_response_config: None,
            redirect_config: None,
            order: None,
        }
    }

    /// The target groups this action forwards to, with their weights (1 when not given).
    /// Empty for actions that do not forward.
    pub fn forward_targets(&self) -> Vec<(String, u32)> {
        if self.action_type != "forward" {
            return Vec::new();
        }
        match &self.forward_config {
            Some(fc) if !fc.target_groups.is_empty() => fc
                .target_groups
                .iter()
                .map(|t| (t.arn.clone(), t.weight.unwrap_or(1)))
                .collect(),
            _ => self
                .target_group_arn
                .iter()
                .map(|a| (a.clone(), 1))
                .collect(),
        }
    }

    /// Checks the action's shape (not whether its target groups exist).
    pub fn validate(&self) -> Result<(), ApiError> {
        let invalid = |m: String| ApiError::new(ErrorCode::ElbValidationError, m);
        match self.action_type.as_str() {
            "forward" => {
                let fc_groups = self.forward_config.as_ref().map(|f| &f.target_groups);
                match (&self.target_group_arn, fc_groups) {
                    (None, None) => {
                        return Err(invalid(
                            "A forward action needs a TargetGroupArn or a ForwardConfig".into(),
                        ))
                    }
                    (None, Some(g)) if g.is_empty() => {
                        return Err(invalid(
                            "A forward action's ForwardConfig needs at least one target group"
                                .into(),
                        ))
                    }
                    (Some(arn), Some(g)) if !g.is_empty() && (g.len() != 1 || &g[0].arn != arn) => {
                        return Err(invalid(
                            "TargetGroupArn and ForwardConfig must name the same single target group"
                                .into(),
                        ));
                    }
                    _ => {}
                }
                if let Some(g) = fc_groups {
                    if g.len() > MAX_FORWARD_TARGET_GROUPS {
                        return Err(ApiError::new(
                            ErrorCode::ElbTooManyTargetGroups,
                            format!(
                                "A forward action can name at most {MAX_FORWARD_TARGET_GROUPS} target groups"
                            ),
                        ));
                    }
                    let mut seen = std::collections::HashSet::new();
                    for t in g {
                        if t.weight.is_some_and(|w| w > 999) {
                            return Err(invalid("Target group weights must be 0-999".into()));
                        }
                        if !seen.insert(&t.arn) {
                            return Err(invalid(format!(
                                "Target group '{}' is named more than once",
                                t.arn
                            )));
                        }
                    }
                }
            }
            "fixed-response" => {
                let Some(f) = &self.fixed_response_config else {
                    return Err(invalid(
                        "A fixed-response action needs a FixedResponseConfig".into(),
                    ));
                };
                let ok = f.status_code.len() == 3
                    && matches!(f.status_code.as_bytes()[0], b'2' | b'4' | b'5')
                    && f.status_code.bytes().all(|b| b.is_ascii_digit());
                if !ok {
                    return Err(invalid(format!(
                        "Fixed-response status code '{}' must be 2XX, 4XX or 5XX",
                        f.status_code
                    )));
                }
                if f.message_body.as_ref().is_some_and(|b| b.len() > 1024) {
                    return Err(invalid(
                        "A fixed-response message body is at most 1024 characters".into(),
                    ));
                }
                if let Some(ct) = &f.content_type {
                    if !matches!(
                        ct.as_str(),
                        "text/plain"
                            | "text/css"
                            | "text/html"
                            | "application/javascript"
                            | "application/json"
                    ) {
                        return Err(invalid(format!("Unsupported content type '{ct}'")));
                    }
                }
            }
            "redirect" => {
                let Some(r) = &self.redirect_config else {
                    return Err(invalid("A redirect action needs a RedirectConfig".into()));
                };
                if !matches!(r.status_code.as_str(), "HTTP_301" | "HTTP_302") {
                    return Err(invalid(format!(
                        "Redirect status code '{}' must be HTTP_301 or HTTP_302",
                        r.status_code
                    )));
                }
                if let Some(p) = &r.protocol {
                    if !matches!(p.as_str(), "HTTP" | "HTTPS" | "#{protocol}") {
                        return Err(invalid(format!("Invalid redirect protocol '{p}'")));
                    }
                }
                if let Some(p) = &r.port {
                    if p != "#{port}" && parse_port(p).is_none() {
                        return Err(invalid(format!("Invalid redirect port '{p}'")));
                    }
                }
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::ElbInvalidLoadBalancerAction,
                    format!("berth does not support the action type '{other}'"),
                ))
            }
        }
        Ok(())
    }
}

/// Checks a list of actions: at least one, orders unique, exactly one terminal action (last).
pub fn validate_actions(actions: &[ElbAction]) -> Result<(), ApiError> {
    if actions.is_empty() {
        return Err(validation("At least one action is required"));
    }
    if actions.len() > 5 {
        return Err(ApiError::new(
            ErrorCode::ElbTooManyActions,
            "At most 5 actions are allowed",
        ));
    }
    for a in actions {
        a.validate()?;
    }
    if actions.len() > 1 {
        // Only one terminal action: berth has no authenticate actions, so only one action.
        return Err(ApiError::new(
            ErrorCode::ElbInvalidLoadBalancerAction,
            "Only one forward, fixed-response or redirect action is allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_parse_from_query_strings_and_resolve_forwards() {
        let a: ElbAction = serde_json::from_value(json!({
            "Type": "forward",
            "Order": "1",
            "ForwardConfig": {"TargetGroups": [
                {"TargetGroupArn": "a", "Weight": "3"},
                {"TargetGroupArn": "b"}
            ]}
        }))
        .unwrap();
        a.validate().unwrap();
        assert_eq!(a.order, Some(1));
        assert_eq!(a.forward_targets(), vec![("a".into(), 3), ("b".into(), 1)]);
        let b = ElbAction::forward("tg");
        assert_eq!(b.forward_targets(), vec![("tg".into(), 1)]);
        // Stored form round-trips.
        let back: ElbAction = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn invalid_actions() {
        let fixed = |code: &str| ElbAction {
            action_type: "fixed-response".into(),
            target_group_arn: None,
            forward_config: None,
            fixed_response_config: Some(FixedResponseConfig {
                message_body: None,
                status_code: code.into(),
                content_type: None,
            }),
            redirect_config: None,
            order: None,
        };
        assert!(fixed("404").validate().is_ok());
        assert!(fixed("302").validate().is_err());
        let mut f = ElbAction::forward("a");
        f.target_group_arn = None;
        assert!(f.validate().is_err());
        let mut x = ElbAction::forward("a");
        x.action_type = "authenticate-oidc".into();
        assert_eq!(
            x.validate().unwrap_err().code,
            ErrorCode::ElbInvalidLoadBalancerAction
        );
        assert!(validate_actions(&[]).is_err());
    }
}
