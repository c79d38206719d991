//! The scalar checks every ELB action shares: resource names, ports and tags. Split from the
//! records because the API edge calls them on raw request fields before any record exists.

use super::{validation, ElbTag, MAX_ELB_TAGS};
use crate::{ApiError, ErrorCode};

/// Load balancer and target group names: 1-32 ASCII letters, digits or hyphens, not beginning
/// or ending with a hyphen. Load balancer names may not begin with `internal-`.
pub fn validate_elb_name(kind: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(validation(format!(
            "{kind} name '{name}' is invalid: use 1-32 letters, digits or hyphens, not beginning or ending with a hyphen"
        )));
    }
    if kind == "Load balancer" && name.starts_with("internal-") {
        return Err(validation(
            "Load balancer names cannot begin with 'internal-'",
        ));
    }
    Ok(())
}

/// Checks a listener or target port (1 to 65535) and returns it as a `u16`.
pub fn validate_elb_port(port: i64) -> Result<u16, ApiError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| validation(format!("Port {port} is not between 1 and 65535")))
}

/// Checks ELBv2 tags: keys of 1 to 128 characters not starting with `aws:`, each key once,
/// values of at most 256, and at most `MAX_ELB_TAGS` of them.
pub fn validate_elb_tags(tags: &[ElbTag]) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        if t.key.is_empty() || t.key.len() > 128 {
            return Err(validation("Tag keys are 1-128 characters"));
        }
        if t.key.starts_with("aws:") {
            return Err(validation("Tag keys cannot begin with 'aws:'"));
        }
        if t.value.as_ref().is_some_and(|v| v.len() > 256) {
            return Err(validation("Tag values are at most 256 characters"));
        }
        if !seen.insert(&t.key) {
            return Err(ApiError::new(
                ErrorCode::ElbDuplicateTagKeys,
                format!("Tag key '{}' is given more than once", t.key),
            ));
        }
    }
    if tags.len() > MAX_ELB_TAGS {
        return Err(ApiError::new(
            ErrorCode::ElbTooManyTags,
            format!("A resource has at most {MAX_ELB_TAGS} tags"),
        ));
    }
    Ok(())
}

/// Adds or replaces `new` tags in `tags`.
pub fn merge_elb_tags(tags: &mut Vec<ElbTag>, new: &[ElbTag]) {
    for t in new {
        match tags.iter_mut().find(|x| x.key == t.key) {
            Some(x) => x.value = t.value.clone(),
            None => tags.push(t.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "web-1", "A1", &"x".repeat(32)] {
            assert!(validate_elb_name("Target group", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a.b", &"x".repeat(33)] {
            let e = validate_elb_name("Target group", bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::ElbValidationError, "{bad}");
        }
        assert!(validate_elb_name("Load balancer", "internal-x").is_err());
    }
}
