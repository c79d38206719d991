//! Every error a client of the ECS API can see, and its wire code and HTTP status.
//!
//! This is the one place where our failures meet ECS's error codes: handlers build an
//! [`ApiError`] with a code from [`ErrorCode`], the API edge renders it as
//! `{"__type": code, "message": ...}` with [`ErrorCode::status`].

use std::fmt;

/// The error codes of the ECS (and, later, ELBv2 / Application Auto Scaling) APIs that berth uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The client's request is invalid in a way ECS reports as a generic client error.
    ClientException,
    /// A parameter is missing, malformed or out of range.
    InvalidParameterException,
    /// The named cluster does not exist (or is INACTIVE).
    ClusterNotFoundException,
    /// DeleteCluster while the cluster has active services.
    ClusterContainsServicesException,
    /// DeleteCluster while the cluster has tasks.
    ClusterContainsTasksException,
    /// DeleteCluster while container instances are registered.
    ClusterContainsContainerInstancesException,
    /// The named resource does not exist.
    ResourceNotFoundException,
    /// A quota would be exceeded.
    LimitExceededException,
    /// The resource is in use and cannot be changed or deleted now.
    ResourceInUseException,
    /// PutAttributes would give a resource more attributes than ECS allows.
    AttributeLimitExceededException,
    /// The named service does not exist.
    ServiceNotFoundException,
    /// The service is not ACTIVE (it is being deleted, or was).
    ServiceNotActiveException,
    /// The attribute target (a container instance) does not exist.
    TargetNotFoundException,
    /// An action the target prefix names that berth does not know.
    UnknownOperationException,
    /// A body that is not JSON, or not the JSON the action expects.
    SerializationException,
    /// The request was too large.
    RequestEntityTooLarge,
    /// Authentication failures (403).
    MissingAuthenticationTokenException,
    /// The `Authorization` header or the signed query is missing a part.
    IncompleteSignatureException,
    /// The access key id is unknown.
    UnrecognizedClientException,
    /// Temporary credentials (a task role's) that have expired.
    ExpiredTokenException,
    /// The signature does not match, or the request is signed for another scope or time.
    InvalidSignatureException,
    /// The identity may not perform the action.
    AccessDeniedException,
    /// Our own fault (500).
    ServerException,
    /// Elastic Load Balancing (v2) codes, as the Query protocol sends them (all 400).
    ElbValidationError,
    /// `InvalidAction`: the Query `Action` is not an ELBv2 action berth knows.
    ElbInvalidAction,
    /// `LoadBalancerNotFound`.
    ElbLoadBalancerNotFound,
    /// `TargetGroupNotFound`.
    ElbTargetGroupNotFound,
    /// `ListenerNotFound`.
    ElbListenerNotFound,
    /// `RuleNotFound`.
    ElbRuleNotFound,
    /// `DuplicateLoadBalancerName`: a load balancer of that name exists.
    ElbDuplicateLoadBalancerName,
    /// `DuplicateTargetGroupName`: a target group of that name exists.
    ElbDuplicateTargetGroupName,
    /// `DuplicateListener`: a listener already binds that port.
    ElbDuplicateListener,
    /// `PriorityInUse`: the listener has a rule of that priority.
    ElbPriorityInUse,
    /// `ResourceInUse`: e.g. deleting a target group a listener or rule still forwards to.
    ElbResourceInUse,
    /// `InvalidTarget`: a target that cannot be registered.
    ElbInvalidTarget,
    /// `TooManyTargets`.
    ElbTooManyTargets,
    /// `TooManyTargetGroups`.
    ElbTooManyTargetGroups,
    /// `TooManyActions`.
    ElbTooManyActions,
    /// `TooManyRules`.
    ElbTooManyRules,
    /// `TooManyTags`.
    ElbTooManyTags,
    /// `DuplicateTagKeys`: one tag key given twice.
    ElbDuplicateTagKeys,
    /// `InvalidConfigurationRequest`: a setting that conflicts with the resource's others.
    ElbInvalidConfigurationRequest,
    /// `InvalidLoadBalancerAction`: an action list that is not valid for a listener or rule.
    ElbInvalidLoadBalancerAction,
    /// `UnsupportedProtocol`.
    ElbUnsupportedProtocol,
    /// `OperationNotPermitted`.
    ElbOperationNotPermitted,
    /// An EC2 Query API error, by EC2's own code (`InvalidSubnetID.NotFound`,
    /// `InvalidParameterValue` ...): EC2 has hundreds, so they are named where raised.
    Ec2(&'static str),
    /// An IAM Query API error, by IAM's own code (`NoSuchEntity`, `EntityAlreadyExists`,
    /// `DeleteConflict`, `LimitExceeded`, `MalformedPolicyDocument`, `InvalidInput` ...).
    Iam(&'static str),
    /// Application Auto Scaling codes (AWS JSON 1.1; `LimitExceededException` and
    /// `ResourceNotFoundException` are shared with ECS above).
    ValidationException,
    /// The named target, policy or scheduled action does not exist.
    ObjectNotFoundException,
    /// Another request changed the same resource meanwhile; retry.
    ConcurrentUpdateException,
    /// The scalable target's resource (the ECS service) cannot be read.
    FailedResourceAccessException,
    /// Application Auto Scaling's own fault (500).
    InternalServiceException,
    /// The `NextToken` is not one this API issued.
    InvalidNextTokenException,
    /// A resource would have more tags than allowed.
    TooManyTagsException,
    /// SSM: the named parameter does not exist.
    ParameterNotFound,
    /// SSM: PutParameter without `Overwrite` on an existing parameter.
    ParameterAlreadyExists,
    /// SSM: the parameter has no such version or label.
    ParameterVersionNotFound,
    /// SSM: a value that does not match the parameter's `AllowedPattern`, or a malformed name or label.
    ParameterPatternMismatchException,
    /// SSM: an `AllowedPattern` that is not a regular expression.
    InvalidAllowedPatternException,
    /// SSM: a parameter `Type` other than String, StringList, SecureString.
    UnsupportedParameterType,
    /// SSM: a name deeper than fifteen levels.
    HierarchyLevelLimitExceededException,
    /// SSM: a parameter already has 100 versions and the oldest is labelled.
    ParameterMaxVersionLimitExceeded,
    /// SSM: a version would carry more than ten labels.
    ParameterVersionLabelLimitExceeded,
    /// SSM: a filter key DescribeParameters / GetParametersByPath do not know.
    InvalidFilterKey,
    /// SSM: a filter option that is not valid for its key.
    InvalidFilterOption,
    /// SSM: a filter value that is not valid.
    InvalidFilterValue,
    /// SSM: a `NextToken` SSM did not issue (SSM's name for it).
    InvalidNextToken,
    /// SSM: a `KeyId` other than the default key.
    InvalidKeyId,
    /// SSM: the parameter changed concurrently; retry.
    TooManyUpdates,
    /// SSM's own fault (500).
    InternalServerError,
    /// Secrets Manager: a secret of that name, or a version of that id with another value, exists.
    ResourceExistsException,
    /// Secrets Manager: the request is not valid in the secret's state (e.g. scheduled for deletion).
    InvalidRequestException,
    /// Secrets Manager's own fault (500).
    InternalServiceError,
    /// CloudWatch Logs: the log group or stream already exists.
    ResourceAlreadyExistsException,
    /// ECS: the platform version named does not exist (Fargate).
    PlatformUnknownException,
    /// EC2 Auto Scaling: a launch configuration or group of that name exists (`AlreadyExists`).
    AsgAlreadyExists,
    /// EC2 Auto Scaling: the group is scaling or in its cooldown (`ScalingActivityInProgress`).
    AsgScalingActivityInProgress,
    /// The access key's request rate is over its limit ("Rate exceeded"); `Throttling` on the
    /// Query protocol (EC2 says `RequestLimitExceeded`).
    ThrottlingException,
}

impl ErrorCode {
    /// The wire code (`__type`, or the Query `Code`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientException => "ClientException",
            Self::InvalidParameterException => "InvalidParameterException",
            Self::ClusterNotFoundException => "ClusterNotFoundException",
            Self::ClusterContainsServicesException => "ClusterContainsServicesException",
            Self::ClusterContainsTasksException => "ClusterContainsTasksException",
            Self::ClusterContainsContainerInstancesException => {
                "ClusterContainsContainerInstancesException"
            }
            Self::ResourceNotFoundException => "ResourceNotFoundException",
            Self::LimitExceededException => "LimitExceededException",
            Self::ResourceInUseException => "ResourceInUseException",
            Self::AttributeLimitExceededException => "AttributeLimitExceededException",
            Self::ServiceNotFoundException => "ServiceNotFoundException",
            Self::ServiceNotActiveException => "ServiceNotActiveException",
            Self::TargetNotFoundException => "TargetNotFoundException",
            Self::UnknownOperationException => "UnknownOperationException",
            Self::SerializationException => "SerializationException",
            Self::RequestEntityTooLarge => "RequestEntityTooLargeException",
            Self::MissingAuthenticationTokenException => "MissingAuthenticationTokenException",
            Self::IncompleteSignatureException => "IncompleteSignatureException",
            Self::UnrecognizedClientException => "UnrecognizedClientException",
            Self::ExpiredTokenException => "ExpiredTokenException",
            Self::InvalidSignatureException => "InvalidSignatureException",
            Self::AccessDeniedException => "AccessDeniedException",
            Self::ServerException => "ServerException",
            Self::ElbValidationError => "ValidationError",
            Self::ElbInvalidAction => "InvalidAction",
            Self::ElbLoadBalancerNotFound => "LoadBalancerNotFound",
            Self::ElbTargetGroupNotFound => "TargetGroupNotFound",
            Self::ElbListenerNotFound => "ListenerNotFound",
            Self::ElbRuleNotFound => "RuleNotFound",
            Self::ElbDuplicateLoadBalancerName => "DuplicateLoadBalancerName",
            Self::ElbDuplicateTargetGroupName => "DuplicateTargetGroupName",
            Self::ElbDuplicateListener => "DuplicateListener",
            Self::ElbPriorityInUse => "PriorityInUse",
            Self::ElbResourceInUse => "ResourceInUse",
            Self::ElbInvalidTarget => "InvalidTarget",
            Self::ElbTooManyTargets => "TooManyTargets",
            Self::ElbTooManyTargetGroups => "TooManyTargetGroups",
            Self::ElbTooManyActions => "TooManyActions",
            Self::ElbTooManyRules => "TooManyRules",
            Self::ElbTooManyTags => "TooManyTags",
            Self::ElbDuplicateTagKeys => "DuplicateTagKeys",
            Self::ElbInvalidConfigurationRequest => "InvalidConfigurationRequest",
            Self::ElbInvalidLoadBalancerAction => "InvalidLoadBalancerAction",
            Self::ElbUnsupportedProtocol => "UnsupportedProtocol",
            Self::ElbOperationNotPermitted => "OperationNotPermitted",
            Self::Ec2(code) => code,
            Self::Iam(code) => code,
            Self::ValidationException => "ValidationException",
            Self::ObjectNotFoundException => "ObjectNotFoundException",
            Self::ConcurrentUpdateException => "ConcurrentUpdateException",
            Self::FailedResourceAccessException => "FailedResourceAccessException",
            Self::InternalServiceException => "InternalServiceException",
            Self::InvalidNextTokenException => "InvalidNextTokenException",
            Self::TooManyTagsException => "TooManyTagsException",
            Self::ParameterNotFound => "ParameterNotFound",
            Self::ParameterAlreadyExists => "ParameterAlreadyExists",
            Self::ParameterVersionNotFound => "ParameterVersionNotFound",
            Self::ParameterPatternMismatchException => "ParameterPatternMismatchException",
            Self::InvalidAllowedPatternException => "InvalidAllowedPatternException",
            Self::UnsupportedParameterType => "UnsupportedParameterType",
            Self::HierarchyLevelLimitExceededException => "HierarchyLevelLimitExceededException",
            Self::ParameterMaxVersionLimitExceeded => "ParameterMaxVersionLimitExceeded",
            Self::ParameterVersionLabelLimitExceeded => "ParameterVersionLabelLimitExceeded",
            Self::InvalidFilterKey => "InvalidFilterKey",
            Self::InvalidFilterOption => "InvalidFilterOption",
            Self::InvalidFilterValue => "InvalidFilterValue",
            Self::InvalidNextToken => "InvalidNextToken",
            Self::InvalidKeyId => "InvalidKeyId",
            Self::TooManyUpdates => "TooManyUpdates",
            Self::InternalServerError => "InternalServerError",
            Self::ResourceExistsException => "ResourceExistsException",
            Self::InvalidRequestException => "InvalidRequestException",
            Self::InternalServiceError => "InternalServiceError",
            Self::ResourceAlreadyExistsException => "ResourceAlreadyExistsException",
            Self::PlatformUnknownException => "PlatformUnknownException",
            Self::AsgAlreadyExists => "AlreadyExists",
            Self::AsgScalingActivityInProgress => "ScalingActivityInProgress",
            Self::ThrottlingException => "ThrottlingException",
        }
    }

    /// The HTTP status AWS JSON services answer this code with.
    pub fn status(self) -> u16 {
        match self {
            Self::ServerException
            | Self::InternalServiceException
            | Self::InternalServerError
            | Self::InternalServiceError => 500,
            Self::RequestEntityTooLarge => 413,
            Self::Iam("NoSuchEntity") => 404,
            Self::Iam(
                "EntityAlreadyExists"
                | "DeleteConflict"
                | "LimitExceeded"
                | "ConcurrentModification",
            ) => 409,
            Self::MissingAuthenticationTokenException
            | Self::IncompleteSignatureException
            | Self::UnrecognizedClientException
            | Self::ExpiredTokenException
            | Self::InvalidSignatureException => 403,
            _ => 400,
        }
    }

    /// The code as an AWS Query (XML) service names it: authentication failures and our own
    /// faults have Query names of their own; every other code is the same on both protocols.
    pub fn query_str(self) -> &'static str {
        match self {
            Self::InvalidSignatureException => "SignatureDoesNotMatch",
            Self::UnrecognizedClientException => "InvalidClientTokenId",
            Self::ExpiredTokenException => "ExpiredToken",
            Self::MissingAuthenticationTokenException => "MissingAuthenticationToken",
            Self::IncompleteSignatureException => "IncompleteSignature",
            Self::AccessDeniedException => "AccessDenied",
            Self::ServerException => "InternalFailure",
            Self::UnknownOperationException => "InvalidAction",
            Self::SerializationException
            | Self::ClientException
            | Self::InvalidParameterException => "ValidationError",
            Self::RequestEntityTooLarge => "RequestEntityTooLarge",
            Self::ThrottlingException => "Throttling",
            other => other.as_str(),
        }
    }

    /// The code for an authentication failure named by the SigV4 verifier.
    pub fn from_auth_code(code: &str) -> Self {
        match code {
            "MissingAuthenticationTokenException" => Self::MissingAuthenticationTokenException,
            "IncompleteSignatureException" => Self::IncompleteSignatureException,
            "UnrecognizedClientException" => Self::UnrecognizedClientException,
            _ => Self::InvalidSignatureException,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as the client will see it: a code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// What kind of error, which decides the wire code and HTTP status.
    pub code: ErrorCode,
    /// The human-readable message.
    pub message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    /// A `ClientException`.
    pub fn client(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ClientException, message)
    }
    /// An `InvalidParameterException`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterException, message)
    }
    /// `ClusterNotFoundException`, with ECS's message.
    pub fn cluster_not_found() -> Self {
        Self::new(ErrorCode::ClusterNotFoundException, "Cluster not found.")
    }
    /// A `ServerException` (500): our own fault.
    pub fn server(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServerException, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_400_and_ours_500() {
        assert_eq!(ErrorCode::ClientException.status(), 400);
        assert_eq!(ErrorCode::ClusterNotFoundException.status(), 400);
        assert_eq!(ErrorCode::InvalidSignatureException.status(), 403);
        assert_eq!(ErrorCode::ServerException.status(), 500);
    }

    #[test]
    fn auth_codes_round_trip() {
        for c in [
            ErrorCode::MissingAuthenticationTokenException,
            ErrorCode::IncompleteSignatureException,
            ErrorCode::UnrecognizedClientException,
            ErrorCode::InvalidSignatureException,
        ] {
            assert_eq!(ErrorCode::from_auth_code(c.as_str()), c);
        }
    }

    #[test]
    fn elb_codes_are_400_with_query_names() {
        assert_eq!(ErrorCode::ElbLoadBalancerNotFound.status(), 400);
        assert_eq!(
            ErrorCode::ElbLoadBalancerNotFound.query_str(),
            "LoadBalancerNotFound"
        );
        assert_eq!(ErrorCode::ElbResourceInUse.as_str(), "ResourceInUse");
        assert_eq!(
            ErrorCode::InvalidSignatureException.query_str(),
            "SignatureDoesNotMatch"
        );
        assert_eq!(ErrorCode::InvalidSignatureException.status(), 403);
    }
}
