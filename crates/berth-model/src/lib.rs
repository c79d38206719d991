//! berth's domain: the records the control plane stores and the ECS wire shapes it answers with.
//!
//! Everything here is pure data and pure validation: no I/O, no clocks, no HTTP. The API edge
//! deserialises a request into one of these types, calls its `validate`, and stores it; the
//! records are serialised with ECS's own field names (camelCase), so what we store is what
//! `DescribeX` returns and what an SDK parses with botocore's models.
//!
//! Members ECS defines as closed sets or fixed shapes are typed (placement, load balancers,
//! network configuration, volumes, log configuration, protocols, dependency conditions), and
//! requests are decoded into them once, at the edge, with ECS's errors (see `wire`).
//!
//! Start with [`ApiError`] (every error a client can see, mapped to its ECS code in one place),
//! [`Arn`] (the ECS resource names), [`Cluster`] and [`TaskDefinition`].

#![warn(missing_docs)]

pub mod agent;
mod arn;
pub mod autoscaling;
pub mod capacity;
mod clock;
mod cluster;
mod container;
mod error;
pub mod fargate;
pub mod hostgroup;
mod instance;
pub mod keys;
pub mod lb;
pub mod logs;
mod names;
mod options;
mod placement;
pub mod secrets;
mod service;
mod support;
mod tag;
mod task;
mod taskdef;
mod volume;
pub mod vpc;
mod wire;

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
pub use names::{
    validate_cluster_name, validate_family, validate_id, validate_name, ID_MAX, NAME_MAX,
};
pub use options::{
    parse_env_file, ContainerOptions, ContainerRestartPolicy, Device, EnvironmentFile, HostEntry,
    KernelCapabilities, LinuxParameters, SystemControl, Tmpfs, Ulimit, OPTION_MEMBERS,
    PORTABLE_ULIMITS, ULIMIT_NAMES,
};
pub use placement::{
    PlacementConstraint, PlacementConstraintType, PlacementStrategy, PlacementStrategyType,
    TaskDefinitionPlacementConstraint, TaskDefinitionPlacementConstraintType,
};
pub use service::{
    AdvancedConfiguration, AssignPublicIp, AwsVpcConfiguration, CircuitBreaker, Deployment,
    DeploymentConfiguration, DeploymentCounts, DeploymentStatus, NetworkConfiguration,
    RolloutState, SchedulingStrategy, Service, ServiceEvent, ServiceLoadBalancer, ServiceStatus,
    MAX_EVENTS,
};
pub use support::{
    docker_api, required_attributes, CAP_DOCKER_PLUGIN_PREFIX, CAP_HEALTH_CHECK, CAP_ORDERING,
    CAP_PID_IPC, CAP_PRIVILEGED, CAP_RESTART_POLICY, CAP_TASK_ENI, DOCKER_API_BASE,
};
pub use tag::{merge_tags, remove_tags, validate_tag_keys, validate_tags, Tag, MAX_TAGS};
pub use task::{
    Container, ContainerOverride, DesiredStatus, HealthStatus, NetworkBinding, StopCode, Task,
    TaskOverride, TaskStats, TaskStatus,
};
pub use taskdef::{
    parse_task_cpu, parse_task_memory, ContainerCondition, ContainerDefinition,
    ContainerDependency, HealthCheck, KeyValuePair, LogConfiguration, PortMapping, Secret,
    TaskDefRef, TaskDefinition, TaskDefinitionStatus, TransportProtocol, MAX_CONTAINERS,
    MAX_TASKDEF_BYTES,
};
pub use volume::{
    DockerVolumeConfiguration, EfsAuthorizationConfig, EfsAuthorizationConfigIam,
    EfsTransitEncryption, EfsVolumeConfiguration, FsxWindowsFileServerAuthorizationConfig,
    FsxWindowsFileServerVolumeConfiguration, HostVolumeProperties, MountPoint,
    S3FilesVolumeConfiguration, Scope, Volume, VolumeFrom,
};
