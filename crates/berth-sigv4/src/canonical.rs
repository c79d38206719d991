//! The canonical request and string to sign, built the way botocore builds
//! them (<https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>).

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub(crate) const TERMINATOR: &str = "aws4_request";

/// Everything but the RFC 3986 unreserved characters `A-Z a-z 0-9 - _ . ~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// As [`UNRESERVED`], but leaving `/` alone (Python's `quote(path, safe='/~')`).
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// URI-encodes bytes: every byte outside the unreserved set becomes `%XX`
/// (upper-case hex).
pub(crate) fn uri_encode(bytes: &[u8]) -> String {
    percent_encode(bytes, UNRESERVED).to_string()
}

/// The canonical URI for a non-S3 service, as botocore computes it from the
/// raw (already percent-encoded) path: remove dot segments and empty segments,
/// then percent-encode the result once more, so `%20` becomes `%2520`.
pub(crate) fn canonical_uri(raw_path: &str) -> String {
    percent_encode(remove_dot_segments(raw_path).as_bytes(), PATH).to_string()
}

/// RFC 3986 section 5.2.4, plus dropping empty segments (`//`), like botocore's
/// `normalize_url_path`. An empty path is `/`.
fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let first = if path.starts_with('/') { "/" } else { "" };
    let last = if path.ends_with('/') && !out.is_empty() {
        "/"
    } else {
        ""
    };
    format!("{first}{}{last}", out.join("/"))
}

/// Splits a raw query string into decoded `(name, value)` pairs, in order.
/// `+` decodes to a space (botocore sends `AWSRequest.params` form-encoded,
/// and Go's SDK does the same for presigned URLs); malformed `%` escapes are
/// kept literally. Empty `&&` pieces are skipped; a piece without `=` has an
/// empty value.
pub(crate) fn parse_query(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn form_decode(s: &str) -> Vec<u8> {
    let s: Cow<'_, str> = if s.contains('+') {
        Cow::Owned(s.replace('+', " "))
    } else {
        Cow::Borrowed(s)
    };
    percent_decode_str(&s).collect()
}

/// The canonical query string: every pair URI-encoded, sorted by encoded name
/// then encoded value, joined with `&`. With `skip_signature`, `X-Amz-Signature`
/// is left out (query-string auth).
pub(crate) fn canonical_query(params: &[(Vec<u8>, Vec<u8>)], skip_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| !(skip_signature && name.as_slice() == b"X-Amz-Signature"))
        .map(|(name, value)| (uri_encode(name), uri_encode(value)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Does header `name` (as sent) have the lower-case name `lower`?
pub(crate) fn header_is(name: &str, lower: &str) -> bool {
    name.trim().eq_ignore_ascii_case(lower)
}

/// All values of a header, in the order sent.
pub(crate) fn header_values<'h>(
    headers: &'h [(String, String)],
    lower: &'h str,
) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .iter()
        .filter(move |(name, _)| header_is(name, lower))
        .map(|(_, value)| value.as_str())
}

/// The first value of a header, trimmed.
pub(crate) fn header_value<'h>(headers: &'h [(String, String)], lower: &'h str) -> Option<&'h str> {
    header_values(headers, lower).next().map(str::trim)
}

/// Trims a header value and collapses runs of whitespace to one space.
pub(crate) fn trim_all(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical headers block: one `name:value\n` line per signed (lower-case)
/// name, in the order given, with the values of repeated headers trimmed and
/// joined with `,`. A signed header that is absent gets an empty value.
pub(crate) fn canonical_headers(headers: &[(String, String)], signed: &[&str]) -> String {
    let mut out = String::new();
    for name in signed {
        out.push_str(name);
        out.push(':');
        for (i, value) in header_values(headers, name).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&trim_all(value));
        }
        out.push('\n');
    }
    out
}

/// Lower-case hex SHA-256.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The payload hash line: the `x-amz-content-sha256` header when present
/// (which may be `UNSIGNED-PAYLOAD`), else the hex SHA-256 of the body.
pub(crate) fn payload_hash(headers: &[(String, String)], body: &[u8]) -> String {
    match header_value(headers, "x-amz-content-sha256") {
        Some(value) => value.to_owned(),
        None => sha256_hex(body),
    }
}

/// The canonical request. `canonical_headers` already ends in a newline, which
/// makes the blank line the spec requires before the signed headers list.
pub(crate) fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!(
        "{}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        method.to_ascii_uppercase()
    )
}

/// The credential scope without the access key: `DATE/REGION/SERVICE/aws4_request`.
pub(crate) fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{TERMINATOR}")
}

/// The string to sign.
pub(crate) fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn uri_encoding_keeps_only_unreserved() {
        assert_eq!(uri_encode(b"AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(
            uri_encode(b" !*'();:@&=+$,/?#[]%"),
            "%20%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D%25"
        );
        assert_eq!(uri_encode("é€".as_bytes()), "%C3%A9%E2%82%AC");
        assert_eq!(uri_encode(&[0x00, 0xff]), "%00%FF");
    }

    #[test]
    fn canonical_uri_normalises_and_double_encodes() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/v1/things/a%20b"), "/v1/things/a%2520b");
        assert_eq!(canonical_uri("/a/./b//c/../d/"), "/a/b/d/");
        assert_eq!(canonical_uri("/.."), "/");
        assert_eq!(canonical_uri("//"), "/");
        assert_eq!(canonical_uri("/~user/x:y"), "/~user/x%3Ay");
        assert_eq!(canonical_uri("/caf\u{e9}"), "/caf%C3%A9");
        assert_eq!(canonical_uri("*"), "%2A");
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        let params = parse_query("b=2&a=3&a=1&c&&d=x%2Fy&e=%7e&f=a+b&g=a%2Bb");
        assert_eq!(
            canonical_query(&params, false),
            "a=1&a=3&b=2&c=&d=x%2Fy&e=~&f=a%20b&g=a%2Bb"
        );
        assert_eq!(canonical_query(&parse_query(""), false), "");
        // Names are sorted by their encoded form, values break ties.
        let params = parse_query("a%20b=1&a=2&a-b=3&A=4");
        assert_eq!(canonical_query(&params, false), "A=4&a=2&a%20b=1&a-b=3");
    }

    #[test]
    fn query_survives_malformed_escapes() {
        let params = parse_query("x=%zz&y=%&%C3=%ff%FE&==");
        assert_eq!(
            canonical_query(&params, false),
            "=%3D&%C3=%FF%FE&x=%25zz&y=%25"
        );
    }

    #[test]
    fn query_auth_skips_only_the_signature() {
        let params = parse_query("X-Amz-Signature=abc&X-Amz-Date=1&x-amz-signature=k");
        assert_eq!(
            canonical_query(&params, true),
            "X-Amz-Date=1&x-amz-signature=k"
        );
        assert_eq!(
            canonical_query(&params, false),
            "X-Amz-Date=1&X-Amz-Signature=abc&x-amz-signature=k"
        );
    }

    #[test]
    fn headers_are_trimmed_and_joined() {
        let headers = h(&[
            ("Host", "example.com"),
            ("X-Dup", "first"),
            ("x-amz-meta", "  a   b \t c  "),
            ("x-dup ", " second  value "),
        ]);
        assert_eq!(
            canonical_headers(&headers, &["host", "x-amz-meta", "x-dup", "x-missing"]),
            "host:example.com\nx-amz-meta:a b c\nx-dup:first,second value\nx-missing:\n"
        );
        assert_eq!(trim_all("   "), "");
        assert_eq!(header_value(&headers, "x-dup"), Some("first"));
        assert_eq!(header_value(&headers, "nope"), None);
    }

    #[test]
    fn payload_hash_prefers_the_header() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(payload_hash(&[], b""), empty);
        assert_eq!(
            payload_hash(&h(&[("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")]), b"x"),
            "UNSIGNED-PAYLOAD"
        );
        assert_eq!(
            payload_hash(&[], b"{}"),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    /// The `get-vanilla-query-order-key-case` case of AWS's published SigV4
    /// test suite (`aws-sig-v4-test-suite`).
    #[test]
    fn aws_test_suite_canonical_request() {
        let headers = h(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ]);
        let cr = canonical_request(
            "GET",
            &canonical_uri("/"),
            &canonical_query(&parse_query("Param2=value2&Param1=value1"), false),
            &canonical_headers(&headers, &["host", "x-amz-date"]),
            "host;x-amz-date",
            &payload_hash(&headers, b""),
        );
        assert_eq!(
            cr,
            "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n\
             x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            &scope("20150830", "us-east-1", "service"),
            &cr,
        );
        assert_eq!(
            sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"
        );
    }
}
