//! CloudWatch Logs filter patterns for unstructured text (pure).
//!
//! What FilterLogEvents accepts: terms that must all appear (`ERROR timeout`), quoted phrases
//! (`"connection reset"`), alternatives (`?ERROR ?WARN`: any one of them), and exclusions
//! (`ERROR -healthcheck`). Matching is case-sensitive, as CloudWatch's is. JSON patterns
//! (`{ $.level = "error" }`) and space-delimited ones (`[ip, user, ...]`) are refused: berth
//! does not evaluate them, and matching them as text would answer wrongly.

use thiserror::Error;

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// A JSON (`{ ... }`) or space-delimited (`[ ... ]`) pattern.
    #[error("berth supports text filter patterns only (terms, \"quoted phrases\", ?alternatives, -exclusions); {0} patterns are not supported")]
    Unsupported(&'static str),
    /// A quote that is never closed.
    #[error("Invalid filter pattern: unterminated quoted phrase")]
    Unterminated,
}

/// A parsed text filter pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterPattern {
    all: Vec<String>,
    any: Vec<String>,
    none: Vec<String>,
}

impl FilterPattern {
    /// Parses `pattern` (an empty or blank pattern matches every event).
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let trimmed = pattern.trim();
        if trimmed.starts_with('{') {
            return Err(PatternError::Unsupported("JSON"));
        }
        if trimmed.starts_with('[') {
            return Err(PatternError::Unsupported("space-delimited"));
        }
        let mut out = Self::default();
        let mut chars = trimmed.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            let kind = match first {
                '?' | '-' => {
                    chars.next();
                    first
                }
                _ => ' ',
            };
            let term = if chars.peek() == Some(&'"') {
                chars.next();
                let mut t = String::new();
                loop {
                    match chars.next() {
                        None => return Err(PatternError::Unterminated),
                        Some('"') => break,
                        Some('\\') => {
                            if let Some(c) = chars.next() {
                                t.push(c);
                            }
                        }
                        Some(c) => t.push(c),
                    }
                }
                t
            } else {
                let mut t = String::new();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    t.push(c);
                }
                t
            };
            if term.is_empty() {
                continue;
            }
            match kind {
                '?' => out.any.push(term),
                '-' => out.none.push(term),
                _ => out.all.push(term),
            }
        }
        Ok(out)
    }

    /// Whether `message` matches: every plain term, at least one `?` term (if any), and no
    /// `-` term appears in it.
    pub fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|t| message.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| message.contains(t.as_str())))
            && !self.none.iter().any(|t| message.contains(t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, msg: &str) -> bool {
        FilterPattern::parse(p).unwrap().matches(msg)
    }

    #[test]
    fn empty_matches_everything() {
        assert!(m("", "anything"));
        assert!(m("   ", ""));
    }

    #[test]
    fn all_terms_must_appear() {
        assert!(m("ERROR timeout", "ERROR: upstream timeout"));
        assert!(!m("ERROR timeout", "ERROR: refused"));
        assert!(!m("error", "ERROR"), "case-sensitive");
    }

    #[test]
    fn quoted_phrases_match_as_one() {
        assert!(m("\"connection reset\"", "x connection reset y"));
        assert!(!m("\"connection reset\"", "reset connection"));
        assert!(m("\"say \\\"hi\\\"\"", "they say \"hi\""));
    }

    #[test]
    fn question_marks_are_alternatives() {
        assert!(m("?ERROR ?WARN", "WARN disk"));
        assert!(m("?ERROR ?WARN", "ERROR disk"));
        assert!(!m("?ERROR ?WARN", "INFO disk"));
        assert!(m("disk ?ERROR ?WARN", "WARN disk"));
        assert!(!m("net ?ERROR ?WARN", "WARN disk"));
    }

    #[test]
    fn minus_excludes() {
        assert!(m("ERROR -healthcheck", "ERROR db"));
        assert!(!m("ERROR -healthcheck", "ERROR healthcheck failed"));
        assert!(m("-\"GET /ping\"", "POST /x"));
    }

    #[test]
    fn json_and_space_delimited_are_refused() {
        assert_eq!(
            FilterPattern::parse("{ $.level = \"error\" }"),
            Err(PatternError::Unsupported("JSON"))
        );
        assert_eq!(
            FilterPattern::parse("[ip, user]"),
            Err(PatternError::Unsupported("space-delimited"))
        );
        assert_eq!(
            FilterPattern::parse("\"open"),
            Err(PatternError::Unterminated)
        );
    }
}
