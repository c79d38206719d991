//! Recursive-descent parser for the cluster query language. Values are lexed in context (a
//! value may contain `:`, `.`, `*`, `-`, `/`, parentheses of a regular expression), so there
//! is no separate tokenizer.

use super::time::parse_time;
use super::{Arg, Cond, Node, Op, Pattern, Subject};
use crate::error::SchedError;

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

/// Compiled patterns larger than this are refused (the regex crate's own default is 10 MiB).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(super) fn parse(src: &str) -> Result<Node, SchedError> {
    let mut p = Parser {
        src,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Err(SchedError::expr("the expression is empty", 0));
    }
    let node = p.or()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error(format!(
            "unexpected `{}`; expected `and`, `or` or the end of the expression",
            p.snippet()
        )));
    }
    Ok(node)
}

struct Parser<'s> {
    src: &'s str,
    pos: usize,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn rest(&self) -> &'s str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn error(&self, message: impl Into<String>) -> SchedError {
        SchedError::expr(message, self.pos)
    }

    /// A short quote of what is at the cursor, for error messages.
    fn snippet(&self) -> String {
        let rest = self.rest();
        let mut s: String = rest.chars().take(24).collect();
        if s.len() < rest.len() {
            s.push('…');
        }
        s
    }

    /// Consumes `word` (ASCII, case-insensitive) if it stands at the cursor as a whole word:
    /// not followed by a letter, digit or `_` (nor by `(` unless `allow_paren`).
    fn eat_word(&mut self, word: &str, allow_paren: bool) -> bool {
        let rest = self.rest();
        let Some(head) = rest.get(..word.len()) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(word) {
            return false;
        }
        let ok = match rest[word.len()..].chars().next() {
            None => true,
            Some('(') => allow_paren,
            Some(c) => !(c.is_alphanumeric() || c == '_'),
        };
        if ok {
            self.pos += word.len();
        }
        ok
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), SchedError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!(
                "the expression is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node, SchedError> {
        let mut operands = vec![self.and()?];
        loop {
            self.skip_ws();
            if self.eat("||") || self.eat_word("or", true) {
                operands.push(self.and()?);
            } else {
                return Ok(flatten(operands, Node::Or));
            }
        }
    }

    fn and(&mut self) -> Result<Node, SchedError> {
        let mut operands = vec![self.factor()?];
        loop {
            self.skip_ws();
            if self.eat("&&") || self.eat_word("and", true) {
                operands.push(self.factor()?);
            } else {
                return Ok(flatten(operands, Node::And));
            }
        }
    }

    fn factor(&mut self) -> Result<Node, SchedError> {
        self.skip_ws();
        if self.at_end() {
            return Err(self.error("expected a condition, found the end of the expression"));
        }
        if self.eat("(") {
            self.enter()?;
            let inner = self.or()?;
            self.skip_ws();
            if !self.eat(")") {
                return Err(self.error(if self.at_end() {
                    "missing `)`".to_string()
                } else {
                    format!("expected `)`, found `{}`", self.snippet())
                }));
            }
            self.depth -= 1;
            return Ok(inner);
        }
        if self.eat("!") || self.eat_word("not", true) {
            self.enter()?;
            let inner = self.factor()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner)));
        }
        self.condition().map(Node::Cond)
    }

    fn condition(&mut self) -> Result<Cond, SchedError> {
        let start = self.pos;
        let word_len = self
            .rest()
            .find(|c: char| !is_subject_char(c))
            .unwrap_or(self.rest().len());
        let word = &self.rest()[..word_len];
        if word.is_empty() {
            return Err(self.error(format!(
                "expected a subject (attribute:NAME, agentConnected, agentVersion, \
                 ec2InstanceId, registeredAt, runningTasksCount or task:group), found `{}`",
                self.snippet()
            )));
        }
        let subject = subject(word).ok_or_else(|| {
            let hint = if word.starts_with("ecs.") {
                format!("; did you mean `attribute:{word}`?")
            } else {
                String::new()
            };
            SchedError::expr(
                format!(
                    "unknown subject `{word}`; expected attribute:NAME, agentConnected, \
                     agentVersion, ec2InstanceId, registeredAt, runningTasksCount or \
                     task:group{hint}"
                ),
                start,
            )
        })?;
        self.pos += word_len;
        self.skip_ws();
        let op_at = self.pos;
        let op = self.operator(word)?;
        check_operator(&subject, op).map_err(|m| SchedError::expr(m, op_at))?;
        let arg_at = {
            self.skip_ws();
            self.pos
        };
        let arg = match op {
            Op::Exists | Op::NotExists => Arg::None,
            Op::In | Op::NotIn => Arg::List(self.list()?),
            _ => Arg::Text(self.value()?),
        };
        let arg = typed_arg(&subject, op, arg).map_err(|m| SchedError::expr(m, arg_at))?;
        Ok(Cond { subject, op, arg })
    }

    fn operator(&mut self, subject: &str) -> Result<Op, SchedError> {
        const SYMBOLS: [(&str, Op); 8] = [
            ("!=", Op::Ne),
            ("!~", Op::NotMatches),
            ("==", Op::Eq),
            ("=~", Op::Matches),
            (">=", Op::Ge),
            ("<=", Op::Le),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        if self.eat_word("!exists", true) {
            return Ok(Op::NotExists);
        }
        if self.eat_word("!in", false) {
            return Ok(Op::NotIn);
        }
        for (sym, op) in SYMBOLS {
            if self.eat(sym) {
                return Ok(op);
            }
        }
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
            .unwrap_or(self.rest().len());
        let word = &self.rest()[..len];
        let op = match word.to_ascii_lowercase().as_str() {
            "equals" => Op::Eq,
            "not_equals" => Op::Ne,
            "greater_than" => Op::Gt,
            "greater_than_equal" => Op::Ge,
            "less_than" => Op::Lt,
            "less_than_equal" => Op::Le,
            "exists" => Op::Exists,
            "not_exists" => Op::NotExists,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "matches" => Op::Matches,
            "not_matches" => Op::NotMatches,
            "" if self.at_end() => {
                return Err(self.error(format!(
                    "expected an operator after `{subject}`, found the end of the expression"
                )))
            }
            _ => {
                return Err(self.error(format!(
                    "expected an operator (==, !=, >, >=, <, <=, exists, !exists, in, !in, \
                     =~, !~) after `{subject}`, found `{}`",
                    self.snippet()
                )))
            }
        };
        self.pos += len;
        Ok(op)
    }

    /// One argument: `'quoted'`, `"quoted"` or a bare word. A bare word ends at whitespace,
    /// at `&&` / `||`, or at a `)` that closes a parenthesis opened before it.
    fn value(&mut self) -> Result<String, SchedError> {
        self.skip_ws();
        if let Some(q) = self.quoted()? {
            return Ok(q);
        }
        let rest = self.rest();
        let mut depth = 0usize;
        let mut end = rest.len();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map(|&(_, n)| n);
            let stop = c.is_whitespace()
                || (c == ')' && depth == 0)
                || (c == '&' && next == Some('&'))
                || (c == '|' && next == Some('|') && depth == 0);
            if stop {
                end = i;
                break;
            }
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
        }
        if end == 0 {
            return Err(self.error(if self.at_end() {
                "missing argument: the expression ends after the operator".to_string()
            } else {
                format!("expected an argument, found `{}`", self.snippet())
            }));
        }
        let v = rest[..end].to_string();
        self.pos += end;
        Ok(v)
    }

    fn quoted(&mut self) -> Result<Option<String>, SchedError> {
        let Some(q) = self.peek().filter(|&c| c == '\'' || c == '"') else {
            return Ok(None);
        };
        let start = self.pos;
        self.bump();
        let rest = self.rest();
        match rest.find(q) {
            Some(end) => {
                let v = rest[..end].to_string();
                self.pos += end + 1;
                Ok(Some(v))
            }
            None => Err(SchedError::expr(
                format!("unterminated string: missing {q}"),
                start,
            )),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, SchedError> {
        self.skip_ws();
        if !self.eat("[") {
            return Err(self.error(format!(
                "`in` and `not_in` expect a list like [a, b], found `{}`",
                self.snippet()
            )));
        }
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(']') && items.is_empty() {
                return Err(self.error("the argument list is empty"));
            }
            let item = match self.quoted()? {
                Some(q) => q,
                None => {
                    let rest = self.rest();
                    let end = rest.find([',', ']']).unwrap_or(rest.len());
                    let item = rest[..end].trim_end().to_string();
                    self.pos += end;
                    item
                }
            };
            if item.is_empty() {
                return Err(self.error(if self.at_end() {
                    "missing `]`".to_string()
                } else {
                    "empty item in the argument list".to_string()
                }));
            }
            items.push(item);
            self.skip_ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("]") {
                return Ok(items);
            }
            return Err(self.error(if self.at_end() {
                "missing `]`".to_string()
            } else {
                format!(
                    "expected `,` or `]` in the list, found `{}`",
                    self.snippet()
                )
            }));
        }
    }
}

fn flatten(mut operands: Vec<Node>, make: fn(Vec<Node>) -> Node) -> Node {
    match operands.pop() {
        Some(only) if operands.is_empty() => only,
        Some(last) => {
            operands.push(last);
            make(operands)
        }
        None => make(operands),
    }
}

fn is_subject_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-' | '_' | '/' | '\\' | '@')
}

fn subject(word: &str) -> Option<Subject> {
    if let Some(name) = word.strip_prefix("attribute:") {
        return (!name.is_empty()).then(|| Subject::Attribute(name.to_string()));
    }
    let fixed = [
        ("agentConnected", Subject::AgentConnected),
        ("agentVersion", Subject::AgentVersion),
        ("ec2InstanceId", Subject::Ec2InstanceId),
        ("registeredAt", Subject::RegisteredAt),
        ("runningTasksCount", Subject::RunningTasksCount),
        ("task:group", Subject::TaskGroup),
    ];
    fixed
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|(_, s)| s)
}

fn subject_name(s: &Subject) -> &str {
    match s {
        Subject::Attribute(name) => name,
        Subject::AgentConnected => "agentConnected",
        Subject::AgentVersion => "agentVersion",
        Subject::Ec2InstanceId => "ec2InstanceId",
        Subject::RegisteredAt => "registeredAt",
        Subject::RunningTasksCount => "runningTasksCount",
        Subject::TaskGroup => "task:group",
    }
}

/// The operators ECS documents for each subject.
fn check_operator(subject: &Subject, op: Op) -> Result<(), String> {
    use Op::*;
    let (valid, list): (&[Op], &str) = match subject {
        Subject::Attribute(_) => return Ok(()),
        Subject::AgentConnected | Subject::Ec2InstanceId => (
            &[Eq, Ne, In, NotIn, Matches, NotMatches],
            "==, !=, in, !in, =~, !~",
        ),
        Subject::TaskGroup => (
            &[Eq, Ne, In, NotIn, Matches, NotMatches, Exists, NotExists],
            "==, !=, in, !in, =~, !~, exists, !exists",
        ),
        Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => {
            (&[Eq, Ne, Gt, Ge, Lt, Le], "==, !=, >, >=, <, <=")
        }
    };
    if valid.contains(&op) {
        Ok(())
    } else {
        Err(format!(
            "this operator is not valid for `{}`; valid operators: {list}",
            subject_name(subject)
        ))
    }
}

/// Turns the raw argument into what the subject compares with, validating it.
fn typed_arg(subject: &Subject, op: Op, arg: Arg) -> Result<Arg, String> {
    if let (Op::Matches | Op::NotMatches, Arg::Text(source)) = (op, &arg) {
        // Compiled alone first, so that a pattern like `a)(b` cannot escape the anchors.
        regex::bytes::RegexBuilder::new(source)
            .unicode(false)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("invalid pattern `{source}`: {e}"))?;
        let regex = regex::bytes::RegexBuilder::new(&format!("^(?:{source})$"))
            .unicode(false)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| format!("invalid pattern `{source}`: {e}"))?;
        return Ok(Arg::Pattern(Pattern {
            source: source.clone(),
            regex,
        }));
    }
    match (subject, arg) {
        (Subject::AgentConnected, Arg::Text(v)) => Ok(Arg::Text(boolean(&v)?)),
        (Subject::AgentConnected, Arg::List(items)) => Ok(Arg::List(
            items.iter().map(|v| boolean(v)).collect::<Result<_, _>>()?,
        )),
        (Subject::RegisteredAt, Arg::Text(v)) => parse_time(&v).map(Arg::Time).ok_or_else(|| {
            format!(
                "`{v}` is not a date; use 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, \
                 2018-06-18T22:28:28 or 2018-06-18"
            )
        }),
        (Subject::RunningTasksCount, Arg::Text(v)) => v
            .parse::<i64>()
            .map(Arg::Count)
            .map_err(|_| format!("runningTasksCount compares with a whole number, not `{v}`")),
        (Subject::AgentVersion, Arg::Text(v)) => {
            if v.chars().any(|c| c.is_ascii_digit()) {
                Ok(Arg::Text(v))
            } else {
                Err(format!(
                    "agentVersion compares with a version like 1.14.5, not `{v}`"
                ))
            }
        }
        (_, arg) => Ok(arg),
    }
}

fn boolean(v: &str) -> Result<String, String> {
    if v.eq_ignore_ascii_case("true") {
        Ok("true".to_string())
    } else if v.eq_ignore_ascii_case("false") {
        Ok("false".to_string())
    } else {
        Err(format!("agentConnected is true or false, not `{v}`"))
    }
}
