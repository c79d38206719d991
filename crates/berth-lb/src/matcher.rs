//! Rule conditions, compiled once per `apply` and evaluated per request.
//!
//! Pure code with no I/O so every ELB matching quirk is unit-tested with plain data. The
//! request path borrows everything from the request ([`RequestView`]) and allocates only when
//! a query string needs percent-decoding.

use std::borrow::Cow;
use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName};
use ipnet::IpNet;

use crate::config::Condition;

/// Why a rule could not be compiled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    /// A `source-ip` value (given) that is not an IPv4 or IPv6 CIDR.
    #[error("invalid CIDR {0:?} in source-ip condition")]
    Cidr(String),
    /// An `http-header` condition's header name (given) is not a valid HTTP header name.
    #[error("invalid header name {0:?} in http-header condition")]
    HeaderName(String),
    /// A condition (named in ELB's spelling, e.g. `path-pattern`) with an empty value list,
    /// which would match nothing.
    #[error("condition {0} has no values")]
    Empty(&'static str),
}

/// The parts of a request rules look at, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The Host header (or the h2 `:authority`), possibly with a port.
    pub host: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub source: IpAddr,
}

/// An ELB wildcard pattern: `*` matches any run (including empty), `?` exactly one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    /// Lower-cased when the pattern is case-insensitive.
    text: String,
    has_wildcards: bool,
    case_insensitive: bool,
}

impl Pattern {
    pub fn new(p: &str, case_insensitive: bool) -> Self {
        let text = if case_insensitive {
            p.to_ascii_lowercase()
        } else {
            p.to_owned()
        };
        Self {
            has_wildcards: text.contains(['*', '?']),
            text,
            case_insensitive,
        }
    }

    pub fn matches(&self, s: &str) -> bool {
        if !self.has_wildcards {
            return if self.case_insensitive {
                s.eq_ignore_ascii_case(&self.text)
            } else {
                s == self.text
            };
        }
        if self.text.is_ascii() && s.is_ascii() {
            wildcard(self.text.as_bytes(), s.as_bytes(), self.case_insensitive)
        } else {
            // Rare: `?` must consume one character, not one byte.
            let p: Vec<char> = self.text.chars().collect();
            let t: Vec<char> = s.chars().collect();
            wildcard(&p, &t, self.case_insensitive)
        }
    }
}

trait Letter: Copy + PartialEq {
    const STAR: Self;
    const QUESTION: Self;
    fn lower(self) -> Self;
}

impl Letter for u8 {
    const STAR: u8 = b'*';
    const QUESTION: u8 = b'?';
    fn lower(self) -> u8 {
        self.to_ascii_lowercase()
    }
}

impl Letter for char {
    const STAR: char = '*';
    const QUESTION: char = '?';
    fn lower(self) -> char {
        self.to_ascii_lowercase()
    }
}

/// Classic linear-time glob match with single-star backtracking. `p` is pre-lowered when
/// `ci`, so only `t` is lowered here.
fn wildcard<T: Letter>(p: &[T], t: &[T], ci: bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let c = if ci { t[ti].lower() } else { t[ti] };
        if pi < p.len() && (p[pi] == T::QUESTION || p[pi] == c) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == T::STAR {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == T::STAR {
        pi += 1;
    }
    pi == p.len()
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Path(Vec<Pattern>),
    Host(Vec<Pattern>),
    Header(HeaderName, Vec<Pattern>),
    Method(Vec<String>),
    Query(Vec<(Option<Pattern>, Pattern)>),
    Source(Vec<IpNet>),
}

/// The compiled conditions of one rule; all must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Conditions(Vec<Matcher>);

impl Conditions {
    pub fn compile(conds: &[Condition]) -> Result<Self, RuleError> {
        let mut out = Vec::with_capacity(conds.len());
        for c in conds {
            out.push(match c {
                Condition::PathPattern(v) => {
                    non_empty(v, "path-pattern")?;
                    Matcher::Path(v.iter().map(|p| Pattern::new(p, false)).collect())
                }
                Condition::HostHeader(v) => {
                    non_empty(v, "host-header")?;
                    Matcher::Host(v.iter().map(|p| Pattern::new(p, true)).collect())
                }
                Condition::HttpHeader { name, values } => {
                    non_empty(values, "http-header")?;
                    let n = HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| RuleError::HeaderName(name.clone()))?;
                    Matcher::Header(n, values.iter().map(|p| Pattern::new(p, true)).collect())
                }
                Condition::Method(v) => {
                    non_empty(v, "http-request-method")?;
                    Matcher::Method(v.clone())
                }
                Condition::QueryString(v) => {
                    non_empty(v, "query-string")?;
                    Matcher::Query(
                        v.iter()
                            .map(|(k, val)| {
                                (
                                    k.as_deref().map(|k| Pattern::new(k, true)),
                                    Pattern::new(val, true),
                                )
                            })
                            .collect(),
                    )
                }
                Condition::SourceIp(v) => {
                    non_empty(v, "source-ip")?;
                    let nets = v
                        .iter()
                        .map(|s| parse_cidr(s).ok_or_else(|| RuleError::Cidr(s.clone())))
                        .collect::<Result<Vec<_>, _>>()?;
                    Matcher::Source(nets)
                }
            });
        }
        Ok(Self(out))
    }

    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        self.0.iter().all(|m| m.matches(req))
    }
}

fn non_empty<T>(v: &[T], what: &'static str) -> Result<(), RuleError> {
    if v.is_empty() {
        Err(RuleError::Empty(what))
    } else {
        Ok(())
    }
}

/// A CIDR, or a bare address meaning a single host.
fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

impl Matcher {
    fn matches(&self, req: &RequestView<'_>) -> bool {
        match self {
            Matcher::Path(ps) => ps.iter().any(|p| p.matches(req.path)),
            Matcher::Host(ps) => match req.host {
                Some(h) => {
                    let h = strip_port(h);
                    ps.iter().any(|p| p.matches(h))
                }
                None => false,
            },
            Matcher::Header(name, ps) => req.headers.get_all(name).iter().any(|v| {
                let v = String::from_utf8_lossy(v.as_bytes());
                ps.iter().any(|p| p.matches(&v))
            }),
            Matcher::Method(ms) => ms.iter().any(|m| m == req.method),
            Matcher::Query(pairs) => {
                let Some(q) = req.query else { return false };
                q.split('&').filter(|kv| !kv.is_empty()).any(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    let k = decode(k);
                    let v = decode(v);
                    pairs.iter().any(|(pk, pv)| {
                        pk.as_ref().is_none_or(|pk| pk.matches(&k)) && pv.matches(&v)
                    })
                })
            }
            Matcher::Source(nets) => {
                let ip = req.source.to_canonical();
                nets.iter().any(|n| n.contains(&ip))
            }
        }
    }
}

fn decode(s: &str) -> Cow<'_, str> {
    if s.contains('%') {
        percent_encoding::percent_decode_str(s).decode_utf8_lossy()
    } else {
        Cow::Borrowed(s)
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`.
pub(crate) fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn view<'a>(headers: &'a HeaderMap, path: &'a str, query: Option<&'a str>) -> RequestView<'a> {
        RequestView {
            method: "GET",
            path,
            query,
            host: Some("api.example.com:8080"),
            headers,
            source: "10.1.2.3".parse().expect("ip"),
        }
    }

    fn one(c: Condition, req: &RequestView<'_>) -> bool {
        Conditions::compile(&[c]).expect("compile").matches(req)
    }

    #[test]
    fn wildcards() {
        let p = |s: &str| Pattern::new(s, false);
        assert!(p("/api/*").matches("/api/users/1"));
        assert!(p("/api/*").matches("/api/"));
        assert!(!p("/api/*").matches("/api"));
        assert!(p("*.png").matches("/img/a.png"));
        assert!(!p("*.png").matches("/img/a.png.txt"));
        assert!(p("/v?/x").matches("/v1/x"));
        assert!(!p("/v?/x").matches("/v10/x"));
        assert!(p("*a*b*c").matches("xxaybzzc"));
        assert!(!p("*a*b*c").matches("xxaybzz"));
        assert!(p("*").matches(""));
        assert!(p("/é?").matches("/éü"), "? is one character, not one byte");
        assert!(!p("/API").matches("/api"), "paths are case-sensitive");
        assert!(Pattern::new("/API*", true).matches("/api/x"));
    }

    #[test]
    fn path_only_not_query() {
        let h = HeaderMap::new();
        let req = view(&h, "/images/a.png", Some("x=1"));
        assert!(one(
            Condition::PathPattern(vec!["/img/*".into(), "/images/*".into()]),
            &req
        ));
        assert!(!one(Condition::PathPattern(vec!["*x=1".into()]), &req));
        assert!(!one(Condition::PathPattern(vec!["/Images/*".into()]), &req));
    }

    #[test]
    fn host_ignores_port_and_case() {
        let h = HeaderMap::new();
        let req = view(&h, "/", None);
        assert!(one(
            Condition::HostHeader(vec!["API.example.com".into()]),
            &req
        ));
        assert!(one(
            Condition::HostHeader(vec!["*.example.com".into()]),
            &req
        ));
        assert!(!one(
            Condition::HostHeader(vec!["example.com".into()]),
            &req
        ));
        let none = RequestView { host: None, ..req };
        assert!(!one(Condition::HostHeader(vec!["*".into()]), &none));
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("a.b"), "a.b");
    }

    #[test]
    fn header_name_and_value_case_insensitive() {
        let mut h = HeaderMap::new();
        h.append(
            "user-agent",
            HeaderValue::from_static("Mozilla/5.0 (iPhone)"),
        );
        h.append("x-canary", HeaderValue::from_static("no"));
        h.append("x-canary", HeaderValue::from_static("YES"));
        let req = view(&h, "/", None);
        let c = |n: &str, v: &str| Condition::HttpHeader {
            name: n.into(),
            values: vec![v.into()],
        };
        assert!(one(c("User-Agent", "*iphone*"), &req));
        assert!(
            one(c("X-Canary", "yes"), &req),
            "any of the repeated values"
        );
        assert!(!one(c("x-other", "*"), &req));
        assert_eq!(
            Conditions::compile(&[c("bad name", "x")]),
            Err(RuleError::HeaderName("bad name".into()))
        );
    }

    #[test]
    fn method_exact() {
        let h = HeaderMap::new();
        let req = view(&h, "/", None);
        assert!(one(
            Condition::Method(vec!["POST".into(), "GET".into()]),
            &req
        ));
        assert!(!one(Condition::Method(vec!["get".into()]), &req));
    }

    #[test]
    fn query_pairs_decoded() {
        let h = HeaderMap::new();
        let req = view(&h, "/", Some("version=v%312&lang=en%20US&flag"));
        let q =
            |k: Option<&str>, v: &str| Condition::QueryString(vec![(k.map(Into::into), v.into())]);
        assert!(one(q(Some("version"), "v12"), &req));
        assert!(one(q(Some("VERSION"), "V1*"), &req));
        assert!(one(q(Some("lang"), "en US"), &req));
        assert!(one(q(None, "en*"), &req), "any key");
        assert!(one(q(Some("flag"), ""), &req));
        assert!(!one(q(Some("version"), "v2"), &req));
        let no_q = view(&h, "/", None);
        assert!(!one(q(None, "*"), &no_q));
    }

    #[test]
    fn source_ip_v4_v6_and_mapped() {
        let h = HeaderMap::new();
        let mut req = view(&h, "/", None);
        let c = |v: &[&str]| Condition::SourceIp(v.iter().map(|s| s.to_string()).collect());
        assert!(one(c(&["10.0.0.0/8"]), &req));
        assert!(!one(c(&["192.168.0.0/16", "2001:db8::/32"]), &req));
        req.source = "::ffff:10.1.2.3".parse().expect("ip");
        assert!(
            one(c(&["10.1.2.3/32"]), &req),
            "v4-mapped v6 client matches v4 CIDR"
        );
        req.source = "2001:db8::5".parse().expect("ip");
        assert!(one(c(&["2001:db8::/32"]), &req));
        assert!(one(c(&["2001:db8::5"]), &req), "bare address is a /128");
        assert_eq!(
            Conditions::compile(&[c(&["10.0.0.0/33"])]),
            Err(RuleError::Cidr("10.0.0.0/33".into()))
        );
    }

    #[test]
    fn all_conditions_must_match() {
        let h = HeaderMap::new();
        let req = view(&h, "/api/x", None);
        let both = Conditions::compile(&[
            Condition::PathPattern(vec!["/api/*".into()]),
            Condition::Method(vec!["POST".into()]),
        ])
        .expect("compile");
        assert!(!both.matches(&req));
        assert!(
            Conditions::default().matches(&req),
            "no conditions match everything"
        );
    }

    /// A slow reference for ELB wildcards: `*` any run, `?` one character.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && reference(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
        }
    }

    proptest::proptest! {
        /// Fuzzing the matcher with arbitrary patterns and inputs (client-controlled paths and
        /// hosts, user-controlled patterns): it never panics and agrees with the reference.
        #[test]
        fn wildcards_agree_with_a_reference(p in "[ab*?é/]{0,10}", t in "[abé/]{0,12}") {
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            proptest::prop_assert_eq!(Pattern::new(&p, false).matches(&t), reference(&pc, &tc));
        }

        #[test]
        fn arbitrary_text_never_panics(p in ".{0,40}", t in ".{0,80}") {
            let _ = Pattern::new(&p, true).matches(&t);
            let _ = strip_port(&t);
        }
    }
}
