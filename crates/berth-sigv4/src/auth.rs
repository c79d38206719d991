//! Extracting the signature parameters from a request: the `Authorization`
//! header or the `X-Amz-*` query parameters.

use crate::canonical::{header_value, header_values, ALGORITHM, TERMINATOR};
use crate::date::Timestamp;
use crate::error::Error;
use crate::types::Request;

/// The longest `X-Amz-Expires` AWS accepts: a week.
const MAX_EXPIRES: i64 = 604_800;

const QUERY_AUTH_PARAMS: [&str; 4] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
];

/// Where the signature came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Header,
    Query,
}

/// The signature parameters of a request, checked for shape but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedParts {
    pub mode: Mode,
    pub access_key_id: String,
    pub scope_date: String,
    pub region: String,
    pub service: String,
    /// Lower-case, in the order the client listed them.
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// The request time as signed (`YYYYMMDDTHHMMSSZ`) and parsed.
    pub timestamp: String,
    pub time: Timestamp,
    /// `X-Amz-Expires`, for query auth.
    pub expires: Option<i64>,
}

fn incomplete(message: impl Into<String>) -> Error {
    Error::IncompleteSignature(message.into())
}

/// Finds and parses the request's signature parameters.
pub(crate) fn extract(
    req: &Request<'_>,
    query: &[(Vec<u8>, Vec<u8>)],
) -> Result<SignedParts, Error> {
    let mut authorization = header_values(req.headers, "authorization");
    let header_auth = authorization.next();
    let query_auth = query.iter().any(|(name, _)| {
        QUERY_AUTH_PARAMS
            .iter()
            .any(|p| name.as_slice() == p.as_bytes())
    });
    match (header_auth, query_auth) {
        (None, false) => Err(Error::MissingAuthenticationToken),
        (Some(_), true) => Err(incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified",
        )),
        (Some(value), false) => {
            if authorization.next().is_some() {
                return Err(incomplete("Only one Authorization header is allowed."));
            }
            from_header(value, req.headers)
        }
        (None, true) => from_query(query),
    }
}

/// Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
/// and finds the request date in `x-amz-date` (or `date`).
fn from_header(value: &str, headers: &[(String, String)]) -> Result<SignedParts, Error> {
    let value = value.trim();
    let (algorithm, params) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Only '{ALGORITHM}' is supported. \
             Authorization={value}"
        )));
    }

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for pair in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, val)) = pair.split_once('=') else {
            return Err(incomplete(format!(
                "Invalid key=value pair (missing equal-sign) in Authorization header: \
                 '{pair}'. Authorization={value}"
            )));
        };
        match key.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed_headers = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            _ => {}
        }
    }

    let amz_date = header_value(headers, "x-amz-date");
    let http_date = header_value(headers, "date");

    let mut missing = String::new();
    for (name, present) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if amz_date.is_none() && http_date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), true) =
        (credential, signed_headers, signature, missing.is_empty())
    else {
        return Err(incomplete(format!("{missing}Authorization={value}")));
    };

    let (timestamp, time) = match (amz_date, http_date) {
        (Some(amz), _) => (amz.to_owned(), parse_amz_date(amz)?),
        (None, Some(http)) => {
            let time = Timestamp::parse_http(http).ok_or_else(|| {
                incomplete(format!(
                    "Date must be in RFC 7231 'IMF-fixdate' format (e.g. \
                     'Sun, 06 Nov 1994 08:49:37 GMT'). Got '{http}'."
                ))
            })?;
            (time.to_amz(), time)
        }
        // Ruled out by the `missing` check above.
        (None, None) => return Err(incomplete(format!("{missing}Authorization={value}"))),
    };

    let scope = parse_credential(credential)?;
    Ok(SignedParts {
        mode: Mode::Header,
        access_key_id: scope.access_key_id,
        scope_date: scope.date,
        region: scope.region,
        service: scope.service,
        signed_headers: parse_signed_headers(signed_headers)?,
        signature: signature.to_owned(),
        timestamp,
        time,
        expires: None,
    })
}

/// Parses the `X-Amz-*` query parameters of a presigned URL.
fn from_query(query: &[(Vec<u8>, Vec<u8>)]) -> Result<SignedParts, Error> {
    let param = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n.as_slice() == name.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let algorithm = param("X-Amz-Algorithm");
    let credential = param("X-Amz-Credential");
    let signature = param("X-Amz-Signature");
    let date = param("X-Amz-Date");
    let signed_headers = param("X-Amz-SignedHeaders");
    let (Some(algorithm), Some(credential), Some(signature), Some(date), Some(signed_headers)) =
        (algorithm, credential, signature, date, signed_headers)
    else {
        return Err(incomplete(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', \
             'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders'. Re-examine the \
             query-string parameters.",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\", not \"{algorithm}\"."
        )));
    }
    let time = Timestamp::parse_amz(&date).ok_or_else(|| {
        incomplete(format!(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\". Got '{date}'."
        ))
    })?;
    let expires = param("X-Amz-Expires")
        .map(|text| parse_expires(&text))
        .transpose()?;

    let scope = parse_credential(&credential)?;
    Ok(SignedParts {
        mode: Mode::Query,
        access_key_id: scope.access_key_id,
        scope_date: scope.date,
        region: scope.region,
        service: scope.service,
        signed_headers: parse_signed_headers(&signed_headers)?,
        signature,
        timestamp: date,
        time,
        expires,
    })
}

fn parse_amz_date(text: &str) -> Result<Timestamp, Error> {
    Timestamp::parse_amz(text).ok_or_else(|| {
        incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{text}'. See \
             http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })
}

fn parse_expires(text: &str) -> Result<i64, Error> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete("X-Amz-Expires should be a number"));
    }
    if text.starts_with('-') {
        return Err(incomplete("X-Amz-Expires must be non-negative"));
    }
    match text.parse::<i64>() {
        Ok(secs) if secs <= MAX_EXPIRES => Ok(secs),
        _ => Err(incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES}"
        ))),
    }
}

struct Scope {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
}

/// `AKID/YYYYMMDD/region/service/aws4_request`.
fn parse_credential(credential: &str) -> Result<Scope, Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts.as_slice() else {
        return Err(incomplete(format!(
            "Credential should be scoped to '<access key id>/<YYYYMMDD>/<region>/<service>/\
             {TERMINATOR}', got '{credential}'."
        )));
    };
    if access_key_id.is_empty() {
        return Err(incomplete(format!(
            "Credential should contain an access key id, got '{credential}'."
        )));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!(
            "Credential should be scoped to a valid date (YYYYMMDD), not '{date}'."
        )));
    }
    if region.is_empty() {
        return Err(incomplete(
            "Credential should be scoped to a valid region. ",
        ));
    }
    if service.is_empty() {
        return Err(incomplete(
            "Credential should be scoped to a valid service. ",
        ));
    }
    if *terminator != TERMINATOR {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not \
             '{terminator}'. "
        )));
    }
    Ok(Scope {
        access_key_id: (*access_key_id).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
    })
}

/// `host;x-amz-date;...`, lower-cased, order kept; `host` (or `:authority`) required.
fn parse_signed_headers(list: &str) -> Result<Vec<String>, Error> {
    let names: Vec<String> = list
        .split(';')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    if names.iter().any(String::is_empty) {
        return Err(incomplete(format!(
            "SignedHeaders should be a ';'-separated list of header names, got '{list}'."
        )));
    }
    if !names.iter().any(|n| n == "host" || n == ":authority") {
        return Err(incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::parse_query;

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ecs/aws4_request, \
                        SignedHeaders=host;x-amz-date, Signature=abcd";

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn extract_with(headers: &[(String, String)], query: &str) -> Result<SignedParts, Error> {
        let req = Request {
            method: "POST",
            path: "/",
            query,
            headers,
            body: b"",
        };
        extract(&req, &parse_query(query))
    }

    fn incomplete_message(result: Result<SignedParts, Error>) -> String {
        match result {
            Err(Error::IncompleteSignature(message)) => message,
            other => panic!("expected IncompleteSignature, got {other:?}"),
        }
    }

    #[test]
    fn parses_header_auth() {
        let h = headers(&[
            ("authorization", AUTH),
            ("X-Amz-Date", " 20250101T000000Z "),
        ]);
        let parts = extract_with(&h, "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parts.mode, Mode::Header);
        assert_eq!(parts.access_key_id, "AKID");
        assert_eq!(parts.scope_date, "20250101");
        assert_eq!(parts.region, "us-east-1");
        assert_eq!(parts.service, "ecs");
        assert_eq!(parts.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(parts.signature, "abcd");
        assert_eq!(parts.timestamp, "20250101T000000Z");
        assert_eq!(parts.expires, None);
    }

    #[test]
    fn tolerates_compact_and_reordered_params() {
        let h = headers(&[
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Signature=ff,SignedHeaders=Host;X-Amz-Date,Credential=K/20250101/r/s/aws4_request,",
            ),
            ("x-amz-date", "20250101T000000Z"),
        ]);
        let parts = extract_with(&h, "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parts.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(parts.signature, "ff");
        assert_eq!(parts.access_key_id, "K");
    }

    #[test]
    fn date_header_fallback() {
        let h = headers(&[
            ("Authorization", AUTH),
            ("Date", "Wed, 01 Jan 2025 00:00:00 GMT"),
        ]);
        let parts = extract_with(&h, "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parts.timestamp, "20250101T000000Z");
        // x-amz-date wins over date.
        let h = headers(&[
            ("Authorization", AUTH),
            ("Date", "Wed, 01 Jan 2025 00:00:00 GMT"),
            ("X-Amz-Date", "20250101T010203Z"),
        ]);
        let parts = extract_with(&h, "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parts.timestamp, "20250101T010203Z");
    }

    #[test]
    fn missing_auth() {
        let h = headers(&[("Host", "x")]);
        assert!(matches!(
            extract_with(&h, "Action=ListClusters"),
            Err(Error::MissingAuthenticationToken)
        ));
    }

    #[test]
    fn missing_parameters_are_listed_like_aws() {
        let value = "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ecs/aws4_request, \
                     SignedHeaders=host;x-amz-date";
        let h = headers(&[("Authorization", value), ("X-Amz-Date", "20250101T000000Z")]);
        assert_eq!(
            incomplete_message(extract_with(&h, "")),
            format!("Authorization header requires 'Signature' parameter. Authorization={value}")
        );

        let h = headers(&[("Authorization", "AWS4-HMAC-SHA256")]);
        assert_eq!(
            incomplete_message(extract_with(&h, "")),
            "Authorization header requires 'Credential' parameter. Authorization header \
             requires 'Signature' parameter. Authorization header requires 'SignedHeaders' \
             parameter. Authorization header requires existence of either a 'X-Amz-Date' or \
             a 'Date' header. Authorization=AWS4-HMAC-SHA256"
        );

        let h = headers(&[("Authorization", AUTH)]);
        assert!(incomplete_message(extract_with(&h, ""))
            .starts_with("Authorization header requires existence of either a 'X-Amz-Date'"));
    }

    #[test]
    fn malformed_header_auth() {
        let date = ("X-Amz-Date", "20250101T000000Z");
        for value in [
            "",
            "Bearer abc",
            "AWS4-HMAC-SHA512 Credential=a/b/c/d/aws4_request",
            "AWS4-HMAC-SHA256 Credential",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ecs, SignedHeaders=host, Signature=a",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ecs/aws4_request/x, SignedHeaders=host, Signature=a",
            "AWS4-HMAC-SHA256 Credential=/20250101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=a",
            "AWS4-HMAC-SHA256 Credential=AKID/2025011/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=a",
            "AWS4-HMAC-SHA256 Credential=AKID/2025011x/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=a",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101//ecs/aws4_request, SignedHeaders=host, Signature=a",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1//aws4_request, SignedHeaders=host, Signature=a",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ecs/aws5_request, SignedHeaders=host, Signature=a",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ecs/aws4_request, SignedHeaders=host;;x, Signature=a",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ecs/aws4_request, SignedHeaders=x-amz-date, Signature=a",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ecs/aws4_request, SignedHeaders=, Signature=a",
        ] {
            let h = headers(&[("Authorization", value), date]);
            let result = extract_with(&h, "");
            assert!(
                matches!(result, Err(Error::IncompleteSignature(_))),
                "{value:?}: {result:?}"
            );
        }
    }

    #[test]
    fn specific_messages() {
        let h = headers(&[
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ecs/aws4_request, \
                 SignedHeaders=content-type;x-amz-date, Signature=a",
            ),
            ("X-Amz-Date", "20250101T000000Z"),
        ]);
        assert_eq!(
            incomplete_message(extract_with(&h, "")),
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        );
        let h = headers(&[
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ecs/aws4_reqest, \
                 SignedHeaders=host, Signature=a",
            ),
            ("X-Amz-Date", "20250101T000000Z"),
        ]);
        assert_eq!(
            incomplete_message(extract_with(&h, "")),
            "Credential should be scoped with a valid terminator: 'aws4_request', not \
             'aws4_reqest'. "
        );
        let h = headers(&[
            ("Authorization", AUTH),
            ("X-Amz-Date", "2025-01-01T00:00:00Z"),
        ]);
        assert_eq!(
            incomplete_message(extract_with(&h, "")),
            "Date must be in ISO-8601 'basic format'. Got '2025-01-01T00:00:00Z'. See \
             http://en.wikipedia.org/wiki/ISO_8601"
        );
        let h = headers(&[("Authorization", AUTH), ("Date", "yesterday")]);
        assert!(incomplete_message(extract_with(&h, "")).starts_with("Date must be in RFC 7231"));
    }

    #[test]
    fn more_than_one_mechanism_or_header() {
        let h = headers(&[("Authorization", AUTH), ("X-Amz-Date", "20250101T000000Z")]);
        assert!(incomplete_message(extract_with(&h, "X-Amz-Signature=abc"))
            .starts_with("Only one auth mechanism allowed"));
        let h = headers(&[
            ("Authorization", AUTH),
            ("authorization", AUTH),
            ("X-Amz-Date", "20250101T000000Z"),
        ]);
        assert_eq!(
            incomplete_message(extract_with(&h, "")),
            "Only one Authorization header is allowed."
        );
    }

    const PRESIGNED: &str = "Action=ListClusters&X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKID%2F20250101%2Fus-east-1%2Fecs%2Faws4_request\
        &X-Amz-Date=20250101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host\
        &X-Amz-Signature=abcd";

    #[test]
    fn parses_query_auth() {
        let h = headers(&[("Host", "x")]);
        let parts = extract_with(&h, PRESIGNED).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parts.mode, Mode::Query);
        assert_eq!(parts.access_key_id, "AKID");
        assert_eq!(parts.scope_date, "20250101");
        assert_eq!(parts.signed_headers, ["host"]);
        assert_eq!(parts.signature, "abcd");
        assert_eq!(parts.timestamp, "20250101T000000Z");
        assert_eq!(parts.expires, Some(300));
        let without_expiry = PRESIGNED.replace("&X-Amz-Expires=300", "");
        let parts = extract_with(&h, &without_expiry).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parts.expires, None);
    }

    #[test]
    fn malformed_query_auth() {
        let h = headers(&[("Host", "x")]);
        let missing = PRESIGNED.replace("&X-Amz-Date=20250101T000000Z", "");
        assert!(incomplete_message(extract_with(&h, &missing))
            .starts_with("AWS query-string parameters must include"));
        for (from, to, message) in [
            (
                "AWS4-HMAC-SHA256",
                "AWS4-HMAC-SHA1",
                "X-Amz-Algorithm only supports",
            ),
            (
                "X-Amz-Date=20250101T000000Z",
                "X-Amz-Date=2025",
                "X-Amz-Date must be in",
            ),
            (
                "X-Amz-Expires=300",
                "X-Amz-Expires=soon",
                "X-Amz-Expires should be a number",
            ),
            (
                "X-Amz-Expires=300",
                "X-Amz-Expires=",
                "X-Amz-Expires should be a number",
            ),
            (
                "X-Amz-Expires=300",
                "X-Amz-Expires=-5",
                "X-Amz-Expires must be non-negative",
            ),
            (
                "X-Amz-Expires=300",
                "X-Amz-Expires=604801",
                "X-Amz-Expires must be less than",
            ),
            (
                "X-Amz-Expires=300",
                "X-Amz-Expires=99999999999999999999999",
                "X-Amz-Expires must be less than",
            ),
            (
                "aws4_request",
                "aws4",
                "Credential should be scoped with a valid terminator",
            ),
            (
                "X-Amz-SignedHeaders=host",
                "X-Amz-SignedHeaders=x-foo",
                "'Host' or ':authority'",
            ),
        ] {
            let query = PRESIGNED.replace(from, to);
            let got = incomplete_message(extract_with(&h, &query));
            assert!(got.starts_with(message), "{query}: {got}");
        }
    }
}
