//! Name rules ECS applies to clusters, families, containers and services, and the rule for the
//! ids of tasks and container instances.

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

/// Checks a cluster name (letters, digits, `-` and `_`, at most [`NAME_MAX`]).
pub fn validate_cluster_name(name: &str) -> Result<(), ApiError> {
    validate_name("Cluster name", name)
}

/// Checks a task definition family (the same rules as a cluster name).
pub fn validate_family(name: &str) -> Result<(), ApiError> {
    validate_name("Family", name)
}

/// Task and container instance ids are at most 64 characters.
pub const ID_MAX: usize = 64;

/// Letters, digits and hyphens, 1..=[`ID_MAX`] characters: the rule for a task or container
/// instance id (`what`: "task", "container instance"). Such an id becomes one segment of a
/// store key (`instances/CLUSTER/ID`, `assign/ID/TASK`), so every id that comes from outside,
/// in an ARN, a request or from an agent, passes here before it is used.
pub fn validate_id(what: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty()
        || id.len() > ID_MAX
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ApiError::invalid(format!(
            "Invalid {what} identifier: {id:?}"
        )));
    }
    Ok(())
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
    fn ids_are_letters_digits_and_hyphens() {
        assert!(validate_id("task", "0123abcdef-XY").is_ok());
        assert!(validate_id("task", &"a".repeat(ID_MAX)).is_ok());
        for bad in [
            "",
            "victim/evil",
            "a_b",
            "a b",
            "a:b",
            &"a".repeat(ID_MAX + 1),
        ] {
            let e = validate_id("container instance", bad).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::InvalidParameterException, "{bad}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "has space", "slash/", "dot.", "ünï", &"a".repeat(256)] {
            let e = validate_cluster_name(bad).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::InvalidParameterException, "{bad}");
        }
    }
}
