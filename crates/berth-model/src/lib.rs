//! berth's domain: the records the control plane stores and the ECS wire shapes it answers with.
//!
//! Everything here is pure data and pure validation: no I/O, no clocks, no HTTP. The API edge
//! deserialises a request into one of these types, calls its `validate`, and stores it; the
//! records are serialised with ECS's own field names (camelCase), so what we store is what
//! `DescribeX` returns and what an SDK parses with botocore's models.
//!
//! Start with [`ApiError`] (every error a client can see, mapped to its ECS code in one place),
//! [`Arn`] (the ECS resource names), [`Cluster`] and [`TaskDefinition`].

pub mod agent;
mod arn;
pub mod autoscaling;
mod clock;
mod cluster;
mod error;
mod instance;
pub mod keys;
pub mod lb;
mod names;
mod service;
mod tag;
mod task;
mod taskdef;

pub use arn::{Arn, ResourceKind, DEFAULT_ACCOUNT_ID};
pub use autoscaling::{
    AlarmRef, MetricAlarm, MetricKind, MetricRef, ScalableTarget, ScalingActivity, ScalingPolicy,
    Schedule, ScheduledAction, StepAdjustment, StepScalingConfig, SuspendedState,
    TargetTrackingConfig,
};
pub use clock::{Clock, SystemClock};
pub use cluster::{Cluster, ClusterCounts, ClusterField, ClusterSetting, ClusterStatus};
pub use error::{ApiError, ErrorCode};
pub use instance::{
    Attribute, ContainerInstance, HostResources, InstanceStatus, InstanceUsage, MAX_ATTRIBUTES,
};
pub use lb::{
    ElbAction, ElbTag, LbAlgorithm, Listener, ListenerRule, LoadBalancer, RuleCondition,
    TargetGroup, TargetHealthCheck, TargetHealthEntry, TargetHealthSource, TargetRegistration,
};
pub use names::{validate_cluster_name, validate_family, validate_name, NAME_MAX};
pub use service::{
    CircuitBreaker, Deployment, DeploymentConfiguration, DeploymentCounts, DeploymentStatus,
    RolloutState, SchedulingStrategy, Service, ServiceEvent, ServiceStatus, MAX_EVENTS,
};
pub use tag::{merge_tags, remove_tags, validate_tag_keys, validate_tags, Tag, MAX_TAGS};
pub use task::{
    Container, ContainerOverride, DesiredStatus, HealthStatus, NetworkBinding, StopCode, Task,
    TaskOverride, TaskStats, TaskStatus,
};
pub use taskdef::{
    parse_task_cpu, parse_task_memory, ContainerDefinition, ContainerDependency, HealthCheck,
    KeyValuePair, PortMapping, TaskDefRef, TaskDefinition, TaskDefinitionStatus, MAX_CONTAINERS,
    MAX_TASKDEF_BYTES,
};
