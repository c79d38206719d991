//! Name rules ECS applies to clusters, families, containers and services.

use crate::ApiError;

/// ECS names (clusters, families, containers, services) are at most 255 characters.
pub const NAME_MAX: usize = 255;

/// Letters, digits, hyphens and underscores, 1..=255 characters: the rule ECS gives for
/// cluster, family, container and service names.
pub fn validate_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(ApiError::invalid(format!(
            "{what} must be between 1 and {NAME_MAX} characters."
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::invalid(format!(
            "{what} can only contain letters (uppercase and lowercase), numbers, hyphens (-), and underscores (_): {name:?}"
        )));
    }
    Ok(())
}

pub fn validate_cluster_name(name: &str) -> Result<(), ApiError> {
    validate_name("Cluster name", name)
}

pub fn validate_family(name: &str) -> Result<(), ApiError> {
    validate_name("Family", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ecs_names() {
        assert!(validate_cluster_name("prod_web-1").is_ok());
        assert!(validate_cluster_name(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "has space", "slash/", "dot.", "ünï", &"a".repeat(256)] {
            let e = validate_cluster_name(bad).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::InvalidParameterException, "{bad}");
        }
    }
}
