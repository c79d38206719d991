//! Resource tags, with ECS's limits: at most 50 per resource, keys 1..=128 and values
//! 0..=256 characters of letters, digits, spaces and `_.:/=+-@`, no `aws:` prefix.

use serde::{Deserialize, Serialize};

use crate::ApiError;

/// The most tags a resource can have.
pub const MAX_TAGS: usize = 50;

/// A resource tag, as ECS writes it (`{"key": ..., "value": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// 1 to 128 characters; not starting with `aws:`.
    pub key: String,
    /// 0 to 256 characters (absent reads as empty).
    #[serde(default)]
    pub value: String,
}

fn tag_chars_ok(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_alphanumeric()
            || c.is_whitespace()
            || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
    })
}

fn validate_key(key: &str) -> Result<(), ApiError> {
    let n = key.chars().count();
    if !(1..=128).contains(&n) || !tag_chars_ok(key) {
        return Err(ApiError::invalid(format!(
            "Invalid tag key {key:?}: keys are 1 to 128 letters, digits, spaces or _.:/=+-@"
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(ApiError::invalid(
            "Tag keys beginning with 'aws:' are reserved for AWS use.",
        ));
    }
    Ok(())
}

/// Validates a list of tags as given to Create*/TagResource.
pub fn validate_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid(format!(
            "A resource can have at most {MAX_TAGS} tags."
        )));
    }
    for t in tags {
        validate_key(&t.key)?;
        if t.value.chars().count() > 256 || !tag_chars_ok(&t.value) {
            return Err(ApiError::invalid(format!(
                "Invalid tag value for key {:?}: values are up to 256 letters, digits, spaces or _.:/=+-@",
                t.key
            )));
        }
    }
    Ok(())
}

/// Checks the keys of an UntagResource: at most [`MAX_TAGS`], each a valid key.
pub fn validate_tag_keys(keys: &[String]) -> Result<(), ApiError> {
    if keys.len() > MAX_TAGS {
        return Err(ApiError::invalid(format!(
            "At most {MAX_TAGS} tag keys can be removed at once."
        )));
    }
    keys.iter().try_for_each(|k| validate_key(k))
}

/// Adds or overwrites `new` onto `existing`, keeping the order of first appearance.
/// Fails if the result would exceed the per-resource limit.
pub fn merge_tags(existing: &mut Vec<Tag>, new: &[Tag]) -> Result<(), ApiError> {
    let mut merged = existing.clone();
    for t in new {
        match merged.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value = t.value.clone(),
            None => merged.push(t.clone()),
        }
    }
    if merged.len() > MAX_TAGS {
        return Err(ApiError::new(
            crate::ErrorCode::LimitExceededException,
            format!("A resource can have at most {MAX_TAGS} tags."),
        ));
    }
    *existing = merged;
    Ok(())
}

/// Removes the tags with these keys (keys not present are ignored).
pub fn remove_tags(existing: &mut Vec<Tag>, keys: &[String]) {
    existing.retain(|t| !keys.contains(&t.key));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn validates_limits() {
        assert!(validate_tags(&[tag("team", "web"), tag("a b", "")]).is_ok());
        assert!(validate_tags(&[tag("", "x")]).is_err());
        assert!(validate_tags(&[tag(&"k".repeat(129), "x")]).is_err());
        assert!(validate_tags(&[tag("k", &"v".repeat(257))]).is_err());
        assert!(validate_tags(&[tag("aws:owner", "x")]).is_err());
        assert!(validate_tags(&[tag("bad#", "x")]).is_err());
        let many: Vec<_> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(validate_tags(&many).is_err());
    }

    #[test]
    fn merge_overwrites_and_caps() {
        let mut tags = vec![tag("a", "1")];
        merge_tags(&mut tags, &[tag("a", "2"), tag("b", "3")]).unwrap();
        assert_eq!(tags, vec![tag("a", "2"), tag("b", "3")]);
        remove_tags(&mut tags, &["a".into()]);
        assert_eq!(tags, vec![tag("b", "3")]);
        let many: Vec<_> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(merge_tags(&mut tags, &many).is_err());
        assert_eq!(tags.len(), 1, "a failed merge changes nothing");
    }
}
