//! awsvpc tasks on Docker: a bridge network per subnet, a pause container per task holding
//! the task's network namespace (its own address and MAC on the subnet's bridge), and the
//! task's containers joining it (`network_mode: container:<pause>`), so they share localhost
//! and two tasks can both listen on port 80.
//!
//! The bridge network is named after the subnet's block (`berth-vpc-10.247.0.0-20`), not its
//! id: Docker refuses two networks with overlapping blocks, so two servers (or a server's
//! successive data dirs) with the same address plan share one bridge instead of failing. It is
//! labelled `berth.managed=true` and removed once its last pause container goes.

use std::collections::HashMap;

use berth_model::vpc::AgentNetwork;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, RemoveContainerOptions, StartContainerOptions,
};
use futures::StreamExt;

use super::pause::{pause_elf, tar_one, PAUSE_IMAGE};
use super::{map_err, DockerDriver, SCOPE_LABEL};
use crate::error::DriverError;
use crate::spec::labels;

/// The label marking a pause container (value: the task id). Pause containers do not carry
/// `berth.managed`, so the agent never adopts one as a task's container.
pub const PAUSE_LABEL: &str = "berth.pause-task";

/// The bridge network standing for a subnet block.
pub(crate) fn network_name(cidr: &str) -> String {
    format!("berth-vpc-{}", cidr.replace('/', "-"))
}

/// The pause container of a task.
pub(crate) fn pause_name(task_id: &str) -> String {
    format!("berth-pause-{task_id}")
}

impl DockerDriver {
    /// Imports the pause image unless it is there.
    async fn ensure_pause_image(&self) -> Result<(), DriverError> {
        if self.docker.inspect_image(PAUSE_IMAGE).await.is_ok() {
            return Ok(());
        }
        let (repo, tag) = PAUSE_IMAGE
            .split_once(':')
            .unwrap_or((PAUSE_IMAGE, "latest"));
        let options = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo.into()),
            tag: Some(tag.into()),
            changes: vec![
                "CMD [\"/pause\"]".into(),
                format!("LABEL {}=true", labels::MANAGED),
            ],
            ..Default::default()
        };
        let tar = tar_one("pause", &pause_elf());
        let mut progress =
            self.docker
                .create_image(Some(options), Some(bollard::body_full(tar.into())), None);
        while let Some(step) = progress.next().await {
            step.map_err(|e| map_err(e, "import pause image"))?;
        }
        Ok(())
    }

    /// Creates the subnet's bridge network unless it exists. Creates are serialised in this
    /// process: Docker answers two concurrent creates of one network with "Pool overlaps"
    /// for the second, before the first can be seen by name.
    async fn ensure_network(&self, net: &AgentNetwork) -> Result<String, DriverError> {
        static CREATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = CREATING.lock().await;
        let name = network_name(&net.eni.subnet_cidr);
        if self
            .docker
            .inspect_network(
                &name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .is_ok()
        {
            return Ok(name);
        }
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(net.eni.subnet_cidr.clone()),
                    gateway: Some(net.eni.gateway.clone()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(HashMap::from([
                (labels::MANAGED.to_owned(), "true".to_owned()),
                ("berth.subnet".to_owned(), net.eni.subnet_id.clone()),
            ])),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(name),
            // Another task (or agent on this daemon) made it meanwhile: Docker answers a
            // concurrent create with a name conflict or, as often, with "Pool overlaps".
            Err(e) => {
                let made = self
                    .docker
                    .inspect_network(
                        &name,
                        None::<bollard::query_parameters::InspectNetworkOptions>,
                    )
                    .await
                    .is_ok();
                if made
                    || matches!(
                        e,
                        BollardError::DockerResponseServerError {
                            status_code: 409,
                            ..
                        }
                    )
                {
                    Ok(name)
                } else {
                    Err(map_err(e, "create network"))
                }
            }
        }
    }

    /// Starts (or finds running) the pause container of `task_id` with the task's address;
    /// returns its name, for the containers' `network_mode: container:NAME`.
    pub(super) async fn do_prepare_network(
        &self,
        task_id: &str,
        net: &AgentNetwork,
    ) -> Result<String, DriverError> {
        let name = pause_name(task_id);
        if let Ok(c) = self
            .docker
            .inspect_container(
                &name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            if c.state.and_then(|s| s.running) == Some(true) {
                return Ok(name);
            }
            self.remove_pause(task_id).await?;
        }
        self.ensure_pause_image().await?;
        let network = self.ensure_network(net).await?;
        let mut pause_labels = HashMap::from([(PAUSE_LABEL.to_owned(), task_id.to_owned())]);
        if let Some(scope) = &self.scope {
            pause_labels.insert(SCOPE_LABEL.into(), scope.clone());
        }
        let endpoint = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: Some(net.eni.ip.clone()),
                ..Default::default()
            }),
            // Honoured from API 1.44; before, Docker derives the same MAC from the address.
            mac_address: Some(net.eni.mac.clone()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(PAUSE_IMAGE.into()),
            labels: Some(pause_labels),
            host_config: Some(HostConfig {
                network_mode: Some(network.clone()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(network, endpoint)])),
            }),
            ..Default::default()
        };
        self.docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|e| map_err(e, "create pause container"))?;
        self.docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
            .map_err(|e| map_err(e, "start pause container"))?;
        Ok(name)
    }

    /// Removes the task's pause container (and its subnet's bridge once nothing else is on
    /// it; Docker refuses while something is, which is fine).
    pub(super) async fn remove_pause(&self, task_id: &str) -> Result<(), DriverError> {
        let name = pause_name(task_id);
        let network = self
            .docker
            .inspect_container(
                &name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .ok()
            .and_then(|c| c.host_config?.network_mode);
        match self
            .docker
            .remove_container(
                &name,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(())
            | Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(map_err(e, "remove pause container")),
        }
        if let Some(n) = network.filter(|n| n.starts_with("berth-vpc-")) {
            let _ = self.docker.remove_network(&n).await;
        }
        Ok(())
    }
}
