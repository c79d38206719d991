//! `maxResults` / `nextToken` pagination over key-sorted lists.
//!
//! A token is the opaque (base64) form of the last key a page returned; the next page starts
//! after it. Tokens stay valid while items come and go, as ECS's do.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use berth_model::ApiError;
use serde_json::{json, Value};

/// ECS's page size when `maxResults` is not given, and its upper bound.
pub(crate) const MAX_PAGE: usize = 100;

pub(crate) fn page_size(max_results: Option<i64>) -> Result<usize, ApiError> {
    match max_results {
        None => Ok(MAX_PAGE),
        Some(n) if (1..=MAX_PAGE as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::invalid(format!(
            "maxResults must be between 1 and {MAX_PAGE}; got {n}."
        ))),
    }
}

fn decode(token: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("v1:").map(str::to_owned))
        .ok_or_else(|| ApiError::invalid("Invalid nextToken."))
}

fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{key}"))
}

/// One page of `items` (already in order, each with its sort key) after `token`.
pub(crate) fn paginate<T>(
    items: Vec<(String, T)>,
    max_results: Option<i64>,
    token: Option<&str>,
    descending: bool,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = page_size(max_results)?;
    let after = token.filter(|t| !t.is_empty()).map(decode).transpose()?;
    let mut rest: Vec<(String, T)> = match &after {
        Some(a) if descending => items.into_iter().filter(|(k, _)| k < a).collect(),
        Some(a) => items.into_iter().filter(|(k, _)| k > a).collect(),
        None => items,
    };
    let more = rest.len() > size;
    rest.truncate(size);
    let next = if more {
        rest.last().map(|(k, _)| encode(k))
    } else {
        None
    };
    Ok((rest.into_iter().map(|(_, v)| v).collect(), next))
}

/// A list answer: `{field: items, "nextToken": ...}`, with `nextToken` left out on the last
/// page (AWS never sends `null` members; strict SDKs reject them).
pub(crate) fn page_json<T: serde::Serialize>(
    field: &str,
    items: Vec<T>,
    next: Option<String>,
) -> Value {
    let mut out = json!({ field: items });
    if let Some(t) = next {
        out["nextToken"] = json!(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<(String, usize)> {
        (0..n).map(|i| (format!("k{i:03}"), i)).collect()
    }

    #[test]
    fn walks_every_item_once() {
        for desc in [false, true] {
            let mut all = items(25);
            if desc {
                all.reverse();
            }
            let (mut seen, mut token) = (Vec::new(), None::<String>);
            loop {
                let (page, next) = paginate(all.clone(), Some(7), token.as_deref(), desc).unwrap();
                assert!(page.len() <= 7);
                seen.extend(page);
                match next {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            let want: Vec<usize> = all.iter().map(|(_, v)| *v).collect();
            assert_eq!(seen, want);
        }
    }

    #[test]
    fn last_page_has_no_token() {
        assert_eq!(page_json("a", vec![1], None), json!({"a": [1]}));
        assert_eq!(
            page_json("a", Vec::<u8>::new(), Some("t".into())),
            json!({"a": [], "nextToken": "t"})
        );
    }

    #[test]
    fn rejects_bad_inputs() {
        assert!(paginate(items(3), Some(0), None, false).is_err());
        assert!(paginate(items(3), Some(101), None, false).is_err());
        assert!(paginate(items(3), None, Some("!!!"), false).is_err());
        assert!(paginate(items(3), None, Some(&URL_SAFE_NO_PAD.encode("x")), false).is_err());
    }
}
