//! ECS Amazon Resource Names, in the long formats ECS uses today
//! (`arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID`), so SDK code that parses ARNs works.
//!
//! berth stores resources by name and builds ARNs when it answers, with the region the client
//! signed for; ARNs that come in are parsed back to the name they designate.

use std::fmt;

/// The account id berth reports when none is configured.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// The resource types of ECS ARNs (the part before the first `/` of the resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// `cluster/NAME`.
    Cluster,
    /// `task-definition/FAMILY:REVISION`.
    TaskDefinition,
    /// `task/CLUSTER/ID`.
    Task,
    /// `container-instance/CLUSTER/ID`.
    ContainerInstance,
    /// `service/CLUSTER/NAME`.
    Service,
    /// `service-deployment/CLUSTER/SERVICE/ID`: one deployment of a service.
    ServiceDeployment,
    /// `service-revision/CLUSTER/SERVICE/ID`: the configuration a deployment rolls out.
    ServiceRevision,
}

impl ResourceKind {
    /// The type as it appears in the ARN (`task-definition`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cluster => "cluster",
            Self::TaskDefinition => "task-definition",
            Self::Task => "task",
            Self::ContainerInstance => "container-instance",
            Self::Service => "service",
            Self::ServiceDeployment => "service-deployment",
            Self::ServiceRevision => "service-revision",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "cluster" => Self::Cluster,
            "task-definition" => Self::TaskDefinition,
            "task" => Self::Task,
            "container-instance" => Self::ContainerInstance,
            "service" => Self::Service,
            "service-deployment" => Self::ServiceDeployment,
            "service-revision" => Self::ServiceRevision,
            _ => return None,
        })
    }
}

/// A parsed ECS ARN. `resource` is everything after `kind/`: a cluster name, `family:revision`,
/// or `cluster/id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    /// The region the ARN names.
    pub region: String,
    /// The 12-digit account id.
    pub account: String,
    /// The resource type.
    pub kind: ResourceKind,
    /// Everything after `kind/`.
    pub resource: String,
}

impl Arn {
    /// An ARN of `kind` in this region and account.
    pub fn new(
        region: &str,
        account: &str,
        kind: ResourceKind,
        resource: impl Into<String>,
    ) -> Self {
        Self {
            region: region.to_owned(),
            account: account.to_owned(),
            kind,
            resource: resource.into(),
        }
    }

    /// Parses `arn:PARTITION:ecs:REGION:ACCOUNT:KIND/RESOURCE`. Returns `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.splitn(6, ':');
        let (arn, _partition, service, region, account, rest) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if arn != "arn" || service != "ecs" || region.is_empty() || account.is_empty() {
            return None;
        }
        let (kind, resource) = rest.split_once('/')?;
        let kind = ResourceKind::parse(kind)?;
        if resource.is_empty() {
            return None;
        }
        Some(Self::new(region, account, kind, resource))
    }

    /// Whether a client-supplied identifier looks like an ARN rather than a bare name.
    pub fn looks_like_arn(s: &str) -> bool {
        s.starts_with("arn:")
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:aws:ecs:{}:{}:{}/{}",
            self.region,
            self.account,
            self.kind.as_str(),
            self.resource
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_every_kind() {
        for (kind, res) in [
            (ResourceKind::Cluster, "web"),
            (ResourceKind::TaskDefinition, "nginx:3"),
            (ResourceKind::Task, "web/0b1c2d"),
            (ResourceKind::ContainerInstance, "web/abc"),
            (ResourceKind::Service, "web/api"),
        ] {
            let arn = Arn::new("eu-west-1", DEFAULT_ACCOUNT_ID, kind, res);
            let s = arn.to_string();
            assert!(s.starts_with("arn:aws:ecs:eu-west-1:000000000000:"));
            assert_eq!(Arn::parse(&s), Some(arn));
        }
    }

    #[test]
    fn rejects_other_strings() {
        for s in [
            "",
            "web",
            "arn:aws:s3:::bucket",
            "arn:aws:ecs:us-east-1:1:bogus/x",
            "arn:aws:ecs:us-east-1:1:cluster/",
            "arn:aws:ecs:us-east-1:1:cluster",
        ] {
            assert_eq!(Arn::parse(s), None, "{s}");
        }
    }
}
