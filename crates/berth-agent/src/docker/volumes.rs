//! Docker volumes of a task: task scratch space and `dockerVolumeConfiguration` volumes,
//! through Docker's volume API. Task-scoped volumes carry the task id and scope labels, so
//! they are found and removed with the task's containers; shared ones are kept.

use std::collections::HashMap;

use bollard::errors::Error as BollardError;
use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListVolumesOptions, RemoveVolumeOptions};

use super::{map_err, DockerDriver, SCOPE_LABEL};
use crate::error::DriverError;
use crate::spec::{labels, VolumeSpec};

impl DockerDriver {
    /// Creates what `volumes` need: task-scoped ones always (creating an existing volume is a
    /// no-op in Docker), shared ones when missing and allowed to; a missing shared volume that
    /// may not be created fails.
    pub(super) async fn do_prepare_volumes(
        &self,
        task_id: &str,
        volumes: &[VolumeSpec],
    ) -> Result<(), DriverError> {
        for v in volumes {
            if !v.task_scoped {
                match self.docker.inspect_volume(&v.name).await {
                    Ok(_) => continue,
                    Err(BollardError::DockerResponseServerError {
                        status_code: 404, ..
                    }) if v.create_if_missing => {}
                    Err(BollardError::DockerResponseServerError {
                        status_code: 404, ..
                    }) => {
                        return Err(DriverError::InvalidSpec(format!(
                            "shared volume {} does not exist and autoprovision is false",
                            v.name
                        )))
                    }
                    Err(e) => return Err(map_err(e, "inspect volume")),
                }
            }
            let mut volume_labels: HashMap<String, String> = v.labels.clone().into_iter().collect();
            volume_labels.insert(labels::MANAGED.into(), "true".into());
            volume_labels.insert(
                labels::VOLUME_SCOPE.into(),
                if v.task_scoped { "task" } else { "shared" }.into(),
            );
            if v.task_scoped {
                volume_labels.insert(labels::TASK_ID.into(), task_id.into());
            }
            if let Some(scope) = &self.scope {
                volume_labels.insert(SCOPE_LABEL.into(), scope.clone());
            }
            let request = VolumeCreateRequest {
                name: Some(v.name.clone()),
                driver: Some(v.driver.clone()),
                driver_opts: Some(v.driver_opts.clone().into_iter().collect()),
                labels: Some(volume_labels),
                ..Default::default()
            };
            self.docker
                .create_volume(request)
                .await
                .map_err(|e| map_err(e, "create volume"))?;
        }
        Ok(())
    }

    /// Removes the task-scoped volumes of `task_id`.
    pub(super) async fn do_remove_task_volumes(&self, task_id: &str) -> Result<(), DriverError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{}={task_id}", labels::TASK_ID),
                format!("{}=task", labels::VOLUME_SCOPE),
            ],
        )]);
        let list = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| map_err(e, "list volumes"))?;
        for v in list.volumes.unwrap_or_default() {
            match self
                .docker
                .remove_volume(&v.name, None::<RemoveVolumeOptions>)
                .await
            {
                Ok(())
                | Err(BollardError::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => return Err(map_err(e, "remove volume")),
            }
        }
        Ok(())
    }
}
