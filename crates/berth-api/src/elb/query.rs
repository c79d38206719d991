//! The AWS Query protocol's two halves: a form body (`Action=X&A.member.1.B=v`) parsed into a
//! JSON tree that typed requests deserialise from, and a JSON answer written out as XML.
//!
//! Hand-written because both halves are small and bounded, and the mapping (`member.N` lists,
//! `<member>` elements) is the protocol's own rather than any general form or XML convention.

use std::collections::BTreeMap;

use berth_model::{ApiError, ErrorCode};
use serde_json::{Map, Value};

/// Limits on what one request may contain.
const MAX_PARAMS: usize = 5_000;
const MAX_DEPTH: usize = 12;
const MAX_INDEX: usize = 1_000;

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ElbValidationError, m)
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte.
fn percent_decode(s: &str) -> Result<String, ApiError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| invalid("Malformed percent-encoding in the request body"))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| invalid("The request body is not UTF-8"))
}

enum Node {
    Leaf(String),
    Obj(BTreeMap<String, Node>),
    List(BTreeMap<usize, Node>),
}

impl Node {
    fn into_value(self) -> Value {
        match self {
            Node::Leaf(s) => Value::String(s),
            Node::Obj(m) => Value::Object(
                m.into_iter()
                    .map(|(k, v)| (k, v.into_value()))
                    .collect::<Map<_, _>>(),
            ),
            Node::List(m) => Value::Array(m.into_values().map(Node::into_value).collect()),
        }
    }
}

/// One step of a parameter name: a field, or a 1-based list index (`member.N`, `entry.N`).
enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

fn steps(name: &str) -> Result<Vec<Step<'_>>, ApiError> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > MAX_DEPTH {
        return Err(invalid(format!(
            "Parameter name {name:?} is nested too deeply"
        )));
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        let p = parts[i];
        if p.is_empty() {
            return Err(invalid(format!("Malformed parameter name {name:?}")));
        }
        let next_num = parts.get(i + 1).and_then(|n| n.parse::<usize>().ok());
        match (p, next_num) {
            ("member" | "entry", Some(n)) => {
                if n == 0 || n > MAX_INDEX {
                    return Err(invalid(format!(
                        "List index {n} in {name:?} is not between 1 and {MAX_INDEX}"
                    )));
                }
                out.push(Step::Index(n));
                i += 2;
            }
            _ => {
                out.push(Step::Field(p));
                i += 1;
            }
        }
    }
    Ok(out)
}

fn insert(root: &mut BTreeMap<String, Node>, name: &str, value: String) -> Result<(), ApiError> {
    let steps = steps(name)?;
    let clash = || {
        invalid(format!(
            "Parameter {name:?} conflicts with another parameter"
        ))
    };
    let Some((Step::Field(first), rest)) = steps.split_first() else {
        return Err(invalid(format!("Malformed parameter name {name:?}")));
    };
    let mut slot: &mut Node =
        root.entry((*first).to_owned())
            .or_insert_with(|| match rest.first() {
                Some(Step::Index(_)) => Node::List(BTreeMap::new()),
                Some(Step::Field(_)) => Node::Obj(BTreeMap::new()),
                None => Node::Leaf(String::new()),
            });
    for (i, step) in rest.iter().enumerate() {
        let fresh = || match rest.get(i + 1) {
            Some(Step::Index(_)) => Node::List(BTreeMap::new()),
            Some(Step::Field(_)) => Node::Obj(BTreeMap::new()),
            None => Node::Leaf(String::new()),
        };
        // An empty leaf (`Tags=`, the empty list) gives way to the structure that follows.
        if matches!(slot, Node::Leaf(s) if s.is_empty()) {
            *slot = match step {
                Step::Index(_) => Node::List(BTreeMap::new()),
                Step::Field(_) => Node::Obj(BTreeMap::new()),
            };
        }
        slot = match (slot, step) {
            (Node::Obj(m), Step::Field(f)) => m.entry((*f).to_owned()).or_insert_with(fresh),
            (Node::List(m), Step::Index(n)) => m.entry(*n).or_insert_with(fresh),
            _ => return Err(clash()),
        };
    }
    match slot {
        Node::Leaf(s) if s.is_empty() => {
            *s = value;
            Ok(())
        }
        // An empty value for a list or structure already given is the empty-list marker.
        Node::Obj(_) | Node::List(_) if value.is_empty() => Ok(()),
        _ => Err(clash()),
    }
}

/// A parsed Query request: the action, and every other parameter (but `Version`) as a tree.
#[derive(Debug)]
pub(crate) struct QueryRequest {
    pub action: String,
    pub version: Option<String>,
    pub params: Value,
}

pub(crate) fn parse_form(body: &[u8]) -> Result<QueryRequest, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| invalid("The request body is not UTF-8"))?;
    let mut root = BTreeMap::new();
    let (mut action, mut version) = (None, None);
    for (n, pair) in text.split('&').filter(|p| !p.is_empty()).enumerate() {
        if n >= MAX_PARAMS {
            return Err(invalid(format!(
                "A request has at most {MAX_PARAMS} parameters"
            )));
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k)?, percent_decode(v)?);
        match k.as_str() {
            "Action" => action = Some(v),
            "Version" => version = Some(v),
            _ => insert(&mut root, &k, v)?,
        }
    }
    let action = action
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::new(ErrorCode::ElbValidationError, "Missing Action"))?;
    Ok(QueryRequest {
        action,
        version,
        params: Node::Obj(root).into_value(),
    })
}

/// Escapes text for an XML element's content.
pub(crate) fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters XML 1.0 cannot carry at all are dropped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

/// Writes `v` as the element `<name>`: objects as child elements, arrays as `<member>`s,
/// scalars as text; nulls are left out.
pub(crate) fn write_xml(name: &str, v: &Value, out: &mut String) {
    if v.is_null() {
        return;
    }
    out.push('<');
    out.push_str(name);
    out.push('>');
    write_children(v, out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn write_children(v: &Value, out: &mut String) {
    match v {
        Value::Null => {}
        Value::Object(m) => {
            for (k, x) in m {
                write_xml(k, x, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                write_xml("member", x, out);
            }
        }
        Value::String(s) => escape(s, out),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
    }
}

pub(crate) const XMLNS: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

/// A successful answer in a Query service's namespace:
/// `<XResponse><XResult>...</XResult><ResponseMetadata>...`.
pub(crate) fn response_xml_ns(
    action: &str,
    result: &Value,
    request_id: &str,
    xmlns: &str,
) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!("<{action}Response xmlns=\"{xmlns}\">"));
    out.push_str(&format!("<{action}Result>"));
    write_children(result, &mut out);
    out.push_str(&format!("</{action}Result>"));
    out.push_str("<ResponseMetadata><RequestId>");
    escape(request_id, &mut out);
    out.push_str("</RequestId></ResponseMetadata>");
    out.push_str(&format!("</{action}Response>"));
    out
}

/// An error answer, in the Query protocol's `ErrorResponse` shape.
pub(crate) fn error_xml_ns(e: &ApiError, request_id: &str, xmlns: &str) -> String {
    let kind = if e.code.status() >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<ErrorResponse xmlns=\"{xmlns}\"><Error><Type>{kind}</Type><Code>"
    ));
    escape(e.code.query_str(), &mut out);
    out.push_str("</Code><Message>");
    escape(&e.message, &mut out);
    out.push_str("</Message></Error><RequestId>");
    escape(request_id, &mut out);
    out.push_str("</RequestId></ErrorResponse>");
    out
}

/// The HTTP answer to one Query request, shared by every Query service: the action's result
/// as XML, or the error in `ErrorResponse` with its status (Query services answer
/// AccessDenied with 403), as `text/xml` with the request id.
pub(crate) fn answer(
    result: Result<(String, Value), ApiError>,
    request_id: &str,
    xmlns: &str,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    let (status, xml) = match result {
        Ok((action, v)) => (
            StatusCode::OK,
            response_xml_ns(&action, &v, request_id, xmlns),
        ),
        Err(e) => {
            if e.code == ErrorCode::ServerException {
                tracing::error!(request_id, message = %e.message, "server error");
            }
            let status = match e.code {
                ErrorCode::AccessDeniedException => 403,
                c => c.status(),
            };
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                error_xml_ns(&e, request_id, xmlns),
            )
        }
    };
    let mut resp = (status, xml).into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_nested_lists_and_structures() {
        let body = "Action=CreateListener&Version=2015-12-01&Port=80\
            &DefaultActions.member.1.Type=forward\
            &DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn=b\
            &DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=a%3Ax\
            &DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight=3\
            &Tags.member.1.Key=k+1&Tags.member.1.Value=%E2%9C%93";
        let q = parse_form(body.as_bytes()).unwrap();
        assert_eq!(q.action, "CreateListener");
        assert_eq!(q.version.as_deref(), Some("2015-12-01"));
        assert_eq!(
            q.params,
            json!({
                "Port": "80",
                "DefaultActions": [{
                    "Type": "forward",
                    "ForwardConfig": {"TargetGroups": [
                        {"TargetGroupArn": "a:x", "Weight": "3"},
                        {"TargetGroupArn": "b"}
                    ]}
                }],
                "Tags": [{"Key": "k 1", "Value": "\u{2713}"}]
            })
        );
    }

    #[test]
    fn empty_list_marker_and_conflicts() {
        let q = parse_form(b"Action=RemoveTags&TagKeys=").unwrap();
        assert_eq!(q.params, json!({"TagKeys": ""}));
        let q = parse_form(b"Action=X&A=&A.member.1=v").unwrap();
        assert_eq!(q.params, json!({"A": ["v"]}));
        assert!(parse_form(b"Action=X&A=1&A.member.1=v").is_err());
        assert!(parse_form(b"Action=X&A=1&A=2").is_err());
    }

    #[test]
    fn refuses_bad_input() {
        for body in [
            "Version=1",
            "Action=",
            "Action=X&A.member.0=v",
            "Action=X&A.member.1001=v",
            "Action=X&A..B=v",
            "Action=X&A=%zz",
            "Action=X&A=%e2",
        ] {
            assert!(parse_form(body.as_bytes()).is_err(), "{body}");
        }
        let deep = format!("Action=X&{}=v", vec!["a"; 20].join("."));
        assert!(parse_form(deep.as_bytes()).is_err());
        let many = format!(
            "Action=X&{}",
            (0..6000)
                .map(|i| format!("p{i}=1"))
                .collect::<Vec<_>>()
                .join("&")
        );
        assert!(parse_form(many.as_bytes()).is_err());
    }

    #[test]
    fn writes_xml() {
        let v = json!({
            "LoadBalancers": [{"LoadBalancerName": "a<b&c", "Port": 80, "IsDefault": true, "Skip": null}],
            "Empty": []
        });
        let x = response_xml_ns("DescribeLoadBalancers", &v, "rid", XMLNS);
        assert!(
            x.contains(
                "<DescribeLoadBalancersResult><Empty></Empty><LoadBalancers><member>\
             <IsDefault>true</IsDefault><LoadBalancerName>a&lt;b&amp;c</LoadBalancerName>\
             <Port>80</Port></member></LoadBalancers></DescribeLoadBalancersResult>"
            ),
            "{x}"
        );
        assert!(x.contains("<RequestId>rid</RequestId>"));
        assert!(!x.contains("Skip"));
        let e = error_xml_ns(
            &ApiError::new(ErrorCode::ElbLoadBalancerNotFound, "no <such>"),
            "r",
            XMLNS,
        );
        assert!(e.contains("<Type>Sender</Type><Code>LoadBalancerNotFound</Code><Message>no &lt;such&gt;</Message>"), "{e}");
    }

    proptest::proptest! {
        /// Fuzzing the Query protocol parser: any body, bytes or form-shaped, gives a parsed
        /// request or a client error, never a panic; whatever parses renders as XML.
        #[test]
        fn any_body_parses_or_is_refused(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(q) = parse_form(&body) {
                let mut out = String::new();
                write_xml("R", &q.params, &mut out);
            }
        }

        #[test]
        fn form_shaped_bodies_never_panic(
            pairs in proptest::collection::vec(
                ("[A-Za-z]{1,6}(\\.(member|[A-Za-z]{1,4})\\.[0-9]{1,3}){0,3}", "[a-z0-9%+=&.]{0,8}"),
                0..12,
            )
        ) {
            let body: Vec<String> = std::iter::once("Action=DescribeLoadBalancers&Version=2015-12-01".to_owned())
                .chain(pairs.iter().map(|(k, v)| format!("{k}={v}")))
                .collect();
            let _ = parse_form(body.join("&").as_bytes());
        }
    }
}
