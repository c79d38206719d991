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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_at_launch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_volume_configuration: Option<DockerVolumeConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs_volume_configuration: Option<EfsVolumeConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsx_windows_file_server_volume_configuration:
        Option<FsxWindowsFileServerVolumeConfiguration>,
    /// A bind mount of a host path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostVolumeProperties>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3files_volume_configuration: Option<S3FilesVolumeConfiguration>,
}

/// ECS's `HostVolumeProperties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HostVolumeProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
}

wire_enum! {
    /// ECS's `Scope` of a Docker volume.
    pub enum Scope ("dockerVolumeConfiguration scope") {
        Task = "task",
        Shared = "shared",
    }
}

/// ECS's `DockerVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DockerVolumeConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoprovision: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub scope: Option<Scope>,
}

wire_enum! {
    /// ECS's `EFSTransitEncryption`.
    pub enum EfsTransitEncryption ("efsVolumeConfiguration transitEncryption") {
        Enabled = "ENABLED",
        Disabled = "DISABLED",
    }
}

wire_enum! {
    /// ECS's `EFSAuthorizationConfigIAM`.
    pub enum EfsAuthorizationConfigIam ("efsVolumeConfiguration authorizationConfig iam") {
        Enabled = "ENABLED",
        Disabled = "DISABLED",
    }
}

/// ECS's `EFSVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EfsVolumeConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_config: Option<EfsAuthorizationConfig>,
    pub file_system_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    #[serde(
        default,
        deserialize_with = "wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub transit_encryption: Option<EfsTransitEncryption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption_port: Option<i32>,
}

/// ECS's `EFSAuthorizationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EfsAuthorizationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "wire::lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub iam: Option<EfsAuthorizationConfigIam>,
}

/// ECS's `FSxWindowsFileServerVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FsxWindowsFileServerVolumeConfiguration {
    pub authorization_config: FsxWindowsFileServerAuthorizationConfig,
    pub file_system_id: String,
    pub root_directory: String,
}

/// ECS's `FSxWindowsFileServerAuthorizationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FsxWindowsFileServerAuthorizationConfig {
    pub credentials_parameter: String,
    pub domain: String,
}

/// ECS's `S3FilesVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct S3FilesVolumeConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point_arn: Option<String>,
    pub file_system_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
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
