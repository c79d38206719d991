//! A task definition's `volumes` and a container's `mountPoints` and `volumesFrom`, as ECS's
//! shapes (botocore's `Volume`, `MountPoint`, `VolumeFrom`).
//!
//! berth registers and describes them; the agents do not mount them yet. Every member of
//! ECS's model is a typed field, so a definition registered with EFS or FSx volumes describes
//! as it was registered.
//!
//! Fields are declared in alphabetical order of their wire names: these members were stored
//! as raw JSON objects (whose keys serde_json sorts) before they were typed, and a record
//! re-encoded now is byte-identical to the one written then. Enum members berth did not check
//! then are read with `wire::lenient`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{self, wire_enum};
use crate::ApiError;

/// One `mountPoints` entry of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    /// Where the volume is mounted in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    /// Mount read-only (default: read-write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// A `volumes` entry's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume: Option<String>,
}

/// One `volumesFrom` entry of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VolumeFrom {
    /// Mount read-only (default: as the source container mounts them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Another container of the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_container: Option<String>,
}

/// One `volumes` entry of a task definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// The volume is configured when the task is launched, not here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_at_launch: Option<bool>,
    /// A Docker volume, managed by a volume driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_volume_configuration: Option<DockerVolumeConfiguration>,
    /// An Amazon EFS file system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs_volume_configuration: Option<EfsVolumeConfiguration>,
    /// An FSx for Windows File Server file system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsx_windows_file_server_volume_configuration:
        Option<FsxWindowsFileServerVolumeConfiguration>,
    /// A bind mount of a host path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostVolumeProperties>,
    /// The name containers' `mountPoints` refer to it by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An S3 Files file system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3files_volume_configuration: Option<S3FilesVolumeConfiguration>,
}

/// ECS's `HostVolumeProperties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HostVolumeProperties {
    /// The path on the host (absent: a path Docker picks, kept while containers use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
}

wire_enum! {
    /// ECS's `Scope` of a Docker volume.
    pub enum Scope ("dockerVolumeConfiguration scope") {
        /// Created with the task and removed when it stops.
        Task = "task",
        /// Kept after the task stops, for other tasks to use.
        Shared = "shared",
    }
}

/// ECS's `DockerVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DockerVolumeConfiguration {
    /// Create the volume if it does not exist (`shared` scope only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoprovision: Option<bool>,
    /// The volume driver (`local` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Options passed to the driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// Labels of the Docker volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    /// `task`: removed when the task stops; `shared`: kept after it.
    pub scope: Option<Scope>,
}

wire_enum! {
    /// ECS's `EFSTransitEncryption`.
    pub enum EfsTransitEncryption ("efsVolumeConfiguration transitEncryption") {
        /// Encrypt data in transit.
        Enabled = "ENABLED",
        /// Do not encrypt data in transit (the default).
        Disabled = "DISABLED",
    }
}

wire_enum! {
    /// ECS's `EFSAuthorizationConfigIAM`.
    pub enum EfsAuthorizationConfigIam ("efsVolumeConfiguration authorizationConfig iam") {
        /// Mount with the task's IAM role (needs transit encryption).
        Enabled = "ENABLED",
        /// Mount without IAM authorisation (the default).
        Disabled = "DISABLED",
    }
}

/// ECS's `EFSVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EfsVolumeConfiguration {
    /// How to authorise access (access point, IAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_config: Option<EfsAuthorizationConfig>,
    /// The EFS file system id.
    pub file_system_id: String,
    /// The directory of the file system to mount as the root (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    #[serde(
        default,
        deserialize_with = "wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    /// Whether data is encrypted in transit between host and file system.
    pub transit_encryption: Option<EfsTransitEncryption>,
    /// The port of the encrypted transit (default: the EFS mount helper's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption_port: Option<i32>,
}

/// ECS's `EFSAuthorizationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EfsAuthorizationConfig {
    /// The EFS access point to mount through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    /// Whether to mount with the task's IAM role.
    pub iam: Option<EfsAuthorizationConfigIam>,
}

/// ECS's `FSxWindowsFileServerVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FsxWindowsFileServerVolumeConfiguration {
    /// The credentials used to mount.
    pub authorization_config: FsxWindowsFileServerAuthorizationConfig,
    /// The FSx file system id.
    pub file_system_id: String,
    /// The directory of the file system to mount as the root.
    pub root_directory: String,
}

/// ECS's `FSxWindowsFileServerAuthorizationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FsxWindowsFileServerAuthorizationConfig {
    /// The ARN of the Secrets Manager secret or SSM parameter holding the credentials.
    pub credentials_parameter: String,
    /// The Active Directory domain.
    pub domain: String,
}

/// ECS's `S3FilesVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct S3FilesVolumeConfiguration {
    /// The access point to mount through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point_arn: Option<String>,
    /// The ARN of the file system.
    pub file_system_arn: String,
    /// The directory of the file system to mount as the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    /// The port of the encrypted transit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption_port: Option<i32>,
}

impl Volume {
    /// Checks the enum members of a RegisterTaskDefinition's `volumes` entry.
    pub(crate) fn check_request(v: &Value) -> Result<(), ApiError> {
        if let Some(d) = v.get("dockerVolumeConfiguration") {
            wire::check::<Scope>(d.get("scope"))?;
        }
        if let Some(efs) = v.get("efsVolumeConfiguration") {
            wire::check::<EfsTransitEncryption>(efs.get("transitEncryption"))?;
            if let Some(auth) = efs.get("authorizationConfig") {
                wire::check::<EfsAuthorizationConfigIam>(auth.get("iam"))?;
            }
        }
        Ok(())
    }
}
