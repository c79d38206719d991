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
    InvalidParameterException,
    ClusterNotFoundException,
    ClusterContainsServicesException,
    ClusterContainsTasksException,
    ClusterContainsContainerInstancesException,
    ResourceNotFoundException,
    LimitExceededException,
    ResourceInUseException,
    AttributeLimitExceededException,
    ServiceNotFoundException,
    ServiceNotActiveException,
    TargetNotFoundException,
    /// An action the target prefix names that berth does not know.
    UnknownOperationException,
    /// A body that is not JSON, or not the JSON the action expects.
    SerializationException,
    /// The request was too large.
    RequestEntityTooLarge,
    /// Authentication failures (403).
    MissingAuthenticationTokenException,
    IncompleteSignatureException,
    UnrecognizedClientException,
    InvalidSignatureException,
    AccessDeniedException,
    /// Our own fault (500).
    ServerException,
    /// Elastic Load Balancing (v2) codes, as the Query protocol sends them (all 400).
    ElbValidationError,
    ElbInvalidAction,
    ElbLoadBalancerNotFound,
    ElbTargetGroupNotFound,
    ElbListenerNotFound,
    ElbRuleNotFound,
    ElbDuplicateLoadBalancerName,
    ElbDuplicateTargetGroupName,
    ElbDuplicateListener,
    ElbPriorityInUse,
    ElbResourceInUse,
    ElbInvalidTarget,
    ElbTooManyTargets,
    ElbTooManyTargetGroups,
    ElbTooManyActions,
    ElbTooManyRules,
    ElbTooManyTags,
    ElbDuplicateTagKeys,
    ElbInvalidConfigurationRequest,
    ElbInvalidLoadBalancerAction,
    ElbUnsupportedProtocol,
    ElbOperationNotPermitted,
    /// Application Auto Scaling codes (AWS JSON 1.1; `LimitExceededException` and
    /// `ResourceNotFoundException` are shared with ECS above).
    ValidationException,
    ObjectNotFoundException,
    ConcurrentUpdateException,
    FailedResourceAccessException,
    InternalServiceException,
    InvalidNextTokenException,
    TooManyTagsException,
}

impl ErrorCode {
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
            Self::ValidationException => "ValidationException",
            Self::ObjectNotFoundException => "ObjectNotFoundException",
            Self::ConcurrentUpdateException => "ConcurrentUpdateException",
            Self::FailedResourceAccessException => "FailedResourceAccessException",
            Self::InternalServiceException => "InternalServiceException",
            Self::InvalidNextTokenException => "InvalidNextTokenException",
            Self::TooManyTagsException => "TooManyTagsException",
        }
    }

    /// The HTTP status AWS JSON services answer this code with.
    pub fn status(self) -> u16 {
        match self {
            Self::ServerException | Self::InternalServiceException => 500,
            Self::RequestEntityTooLarge => 413,
            Self::MissingAuthenticationTokenException
            | Self::IncompleteSignatureException
            | Self::UnrecognizedClientException
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
            Self::MissingAuthenticationTokenException => "MissingAuthenticationToken",
            Self::IncompleteSignatureException => "IncompleteSignature",
            Self::AccessDeniedException => "AccessDenied",
            Self::ServerException => "InternalFailure",
            Self::UnknownOperationException => "InvalidAction",
            Self::SerializationException
            | Self::ClientException
            | Self::InvalidParameterException => "ValidationError",
            Self::RequestEntityTooLarge => "RequestEntityTooLarge",
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
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn client(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ClientException, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterException, message)
    }
    pub fn cluster_not_found() -> Self {
        Self::new(ErrorCode::ClusterNotFoundException, "Cluster not found.")
    }
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
