//! What the metadata endpoint asks the Docker engine directly: the default bridge's gateway
//! (the address bridge-mode containers reach the host by), a container's name, image id,
//! creation time and addresses, and Docker's own stats document. Kept apart from the docker
//! driver so the endpoint needs nothing the `Driver` trait does not offer.

use std::net::{IpAddr, Ipv4Addr};

use bollard::query_parameters::StatsOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;
use serde_json::Value;

use super::shape::EngineFacts;

/// A client of the local Docker engine (the unix socket, as the driver uses).
pub(crate) fn connect() -> Option<Docker> {
    Docker::connect_with_unix_defaults().ok()
}

/// The gateway address of Docker's default `bridge` network: its IPAM gateway, or the first
/// host address of its subnet (Docker gives the bridge that one when IPAM names none).
pub(crate) async fn bridge_gateway(docker: &Docker) -> Option<IpAddr> {
    let net = docker.inspect_network("bridge", None).await.ok()?;
    let configs = net.ipam?.config.unwrap_or_default();
    for c in &configs {
        if let Some(gw) = c.gateway.as_deref().and_then(|g| g.parse::<IpAddr>().ok()) {
            return Some(gw);
        }
    }
    configs
        .iter()
        .filter_map(|c| c.subnet.as_deref())
        .find_map(first_host)
}

/// The first host address of an IPv4 subnet (`172.17.0.0/16` → `172.17.0.1`).
pub(crate) fn first_host(subnet: &str) -> Option<IpAddr> {
    let (net, len) = subnet.split_once('/')?;
    let net: Ipv4Addr = net.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    if len >= 31 {
        return None;
    }
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    Some(IpAddr::V4(Ipv4Addr::from((u32::from(net) & mask) + 1)))
}

/// Name, image id, creation time and addresses of one container.
pub(crate) async fn facts(docker: &Docker, id: &str) -> Option<EngineFacts> {
    let c = docker.inspect_container(id, None).await.ok()?;
    let addresses = c
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, ep)| (name, ep.ip_address.unwrap_or_default()))
        .collect();
    Some(EngineFacts {
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image_id: c.image.unwrap_or_default(),
        created: c.created.map(|t| t.to_string()).unwrap_or_default(),
        addresses,
    })
}

/// Docker's stats document for one container (one sample, with the previous one for rates).
pub(crate) async fn stats(docker: &Docker, id: &str) -> Option<Value> {
    let opts = StatsOptionsBuilder::new().stream(false).build();
    let sample = docker.stats(id, Some(opts)).next().await?.ok()?;
    serde_json::to_value(sample).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_host_of_a_subnet() {
        assert_eq!(first_host("172.17.0.0/16"), "172.17.0.1".parse().ok());
        assert_eq!(first_host("10.1.2.0/24"), "10.1.2.1".parse().ok());
        assert_eq!(first_host("nonsense"), None);
    }
}
