//! A listener's compiled rule table: conditions compiled, rules sorted by priority, target
//! group ids resolved to their run-time groups, fixed-response bodies pre-built. Built by
//! `apply`, swapped atomically, read per request without allocation.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderValue;
use rand::Rng;

use crate::config::{Action, ListenerConfig};
use crate::group::Group;
use crate::matcher::{Conditions, RequestView, RuleError};
use crate::redirect::RedirectTemplate;

pub(crate) enum CompiledAction {
    Forward(Forward),
    Fixed {
        status: http::StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
    Redirect(RedirectTemplate),
}

/// A weighted choice of target groups.
pub(crate) struct Forward {
    /// `(group, cumulative weight)`; groups missing from the config are `None`.
    choices: Vec<(Option<Arc<Group>>, u64)>,
    total: u64,
}

impl Forward {
    /// `Err(())` when no group can be chosen (unknown ids or all weights zero).
    pub fn pick(&self) -> Result<&Arc<Group>, ()> {
        let chosen = match self.choices.as_slice() {
            [] => return Err(()),
            [(g, _)] => g,
            _ if self.total == 0 => return Err(()),
            many => {
                let x = rand::thread_rng().gen_range(0..self.total);
                &many.iter().find(|(_, cum)| x < *cum).ok_or(())?.0
            }
        };
        chosen.as_ref().ok_or(())
    }
}

pub(crate) struct Routing {
    rules: Vec<(Conditions, CompiledAction)>,
    default: CompiledAction,
}

impl Routing {
    pub fn compile(
        cfg: &ListenerConfig,
        groups: &HashMap<String, Arc<Group>>,
    ) -> Result<Self, RuleError> {
        let mut rules: Vec<_> = cfg.rules.iter().collect();
        rules.sort_by_key(|r| r.priority);
        let rules = rules
            .into_iter()
            .map(|r| {
                Ok((
                    Conditions::compile(&r.conditions)?,
                    compile_action(&r.action, groups),
                ))
            })
            .collect::<Result<Vec<_>, RuleError>>()?;
        Ok(Self {
            rules,
            default: compile_action(&cfg.default_action, groups),
        })
    }

    /// First matching rule by priority, else the default action.
    pub fn decide(&self, req: &RequestView<'_>) -> &CompiledAction {
        self.rules
            .iter()
            .find(|(c, _)| c.matches(req))
            .map_or(&self.default, |(_, a)| a)
    }
}

fn compile_action(a: &Action, groups: &HashMap<String, Arc<Group>>) -> CompiledAction {
    match a {
        Action::Forward(choices) => {
            let mut total = 0u64;
            let single = choices.len() == 1;
            let choices = choices
                .iter()
                .filter(|(_, w)| single || *w > 0)
                .map(|(id, w)| {
                    total += u64::from(*w);
                    (groups.get(id).cloned(), total)
                })
                .collect();
            CompiledAction::Forward(Forward { choices, total })
        }
        Action::FixedResponse {
            status,
            content_type,
            body,
        } => CompiledAction::Fixed {
            status: http::StatusCode::from_u16(*status).unwrap_or(http::StatusCode::OK),
            content_type: content_type
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok()),
            body: Bytes::from(body.clone().unwrap_or_default()),
        },
        Action::Redirect {
            protocol,
            host,
            port,
            path,
            query,
            status,
        } => CompiledAction::Redirect(RedirectTemplate::new(
            protocol.as_deref(),
            host.as_deref(),
            port.as_deref(),
            path.as_deref(),
            query.as_deref(),
            *status,
        )),
    }
}
