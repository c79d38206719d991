//! Network interfaces of awsvpc tasks, given at placement: an address from one of the task's
//! subnets, a MAC and an `eni-` id.
//!
//! An address is held by an index key (`ec2/ip/SUBNET/IP`, its value the [`AddressHolder`])
//! written in the launch's own transaction, with a compare on the key's revision, so two
//! launches (or two servers) never hand out one address. An address is free again once the
//! task holding it is STOPPED or gone: the allocator reads that from the cluster snapshot the
//! launch already has (level-triggered; nothing has to run at the moment a task stops), and
//! the reaper deletes the key with the task. A holder in another cluster is taken as live.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use berth_model::vpc::{allocate_ip, mac_for, AddressHolder, Ipv4Net, Subnet, TaskEni};
use berth_model::{keys, ApiError, NetworkConfiguration, TaskStatus};
use berth_store::{Store, StoreExt, Txn};

use crate::snapshot::ClusterSnapshot;
use crate::store_err;

/// One subnet's free addresses as the launch sees them.
struct Pool {
    subnet: Subnet,
    net: Ipv4Net,
    used: BTreeSet<Ipv4Addr>,
    /// The revision of each index key present (a stale holder's key is overwritten under a
    /// compare on it; an absent one must stay absent).
    revs: HashMap<Ipv4Addr, u64>,
}

/// Gives addresses to the tasks of one launch, round-robin over its subnets.
pub(crate) struct Allocator {
    pools: Vec<Pool>,
    groups: Vec<String>,
    next: usize,
}

impl Allocator {
    /// Reads the subnets of `network` and the addresses held in them.
    pub(crate) async fn load(
        store: &dyn Store,
        network: &NetworkConfiguration,
        cluster: &str,
        snap: &ClusterSnapshot,
    ) -> Result<Self, ApiError> {
        let Some(cfg) = &network.awsvpc_configuration else {
            return Err(ApiError::invalid(
                "networkConfiguration.awsvpcConfiguration is required.",
            ));
        };
        let stopped: HashMap<&str, bool> = snap
            .tasks
            .iter()
            .map(|(t, _)| (t.id.as_str(), t.last_status == TaskStatus::Stopped))
            .collect();
        let mut pools = Vec::new();
        for id in &cfg.subnets {
            let Some((subnet, _)) = store
                .get_json::<Subnet>(&keys::ec2_subnet(id))
                .await
                .map_err(store_err)?
            else {
                return Err(ApiError::invalid(format!(
                    "Error retrieving subnet information for [{id}]: The subnet ID '{id}' does not exist"
                )));
            };
            let net = Ipv4Net::parse(&subnet.cidr_block, false)
                .ok_or_else(|| ApiError::server(format!("subnet {id} has a bad CIDR")))?;
            let (kvs, _) = store
                .list(&keys::ec2_addresses_of(id))
                .await
                .map_err(store_err)?;
            let mut used = BTreeSet::new();
            let mut revs = HashMap::new();
            for kv in kvs {
                let Ok(h) = serde_json::from_slice::<AddressHolder>(&kv.value) else {
                    continue;
                };
                let Ok(ip) = h.ip.parse::<Ipv4Addr>() else {
                    continue;
                };
                revs.insert(ip, kv.mod_revision);
                let free = h.cluster == cluster
                    && stopped.get(h.task_id.as_str()).copied().unwrap_or(true);
                if !free {
                    used.insert(ip);
                }
            }
            pools.push(Pool {
                subnet,
                net,
                used,
                revs,
            });
        }
        Ok(Self {
            pools,
            groups: cfg.security_groups.clone().unwrap_or_default(),
            next: 0,
        })
    }

    /// The interface of task `task_id` of `cluster`, and its index key added to `txn`.
    pub(crate) fn give(
        &mut self,
        txn: Txn,
        cluster: &str,
        task_id: &str,
    ) -> Result<(Txn, TaskEni), ApiError> {
        let n = self.pools.len();
        for k in 0..n {
            let pool = &mut self.pools[(self.next + k) % n];
            let Some(ip) = allocate_ip(pool.net, &pool.used) else {
                continue;
            };
            self.next = (self.next + k + 1) % n;
            pool.used.insert(ip);
            let holder = AddressHolder {
                cluster: cluster.to_owned(),
                task_id: task_id.to_owned(),
                ip: ip.to_string(),
                security_groups: self.groups.clone(),
            };
            let key = keys::ec2_address(&pool.subnet.subnet_id, &holder.ip);
            let bytes = serde_json::to_vec(&holder)
                .map_err(|e| ApiError::server(format!("encoding address: {e}")))?;
            let rev = pool.revs.get(&ip).copied().unwrap_or(0);
            let txn = txn.when_mod_revision(key.clone(), rev).put(key, bytes);
            let u = uuid::Uuid::new_v4();
            let eni = TaskEni {
                attachment_id: u.hyphenated().to_string(),
                eni_id: berth_model::vpc::ec2_id("eni", u.as_u128()),
                subnet_id: pool.subnet.subnet_id.clone(),
                subnet_cidr: pool.net.to_string(),
                ip: holder.ip,
                gateway: pool.net.gateway().to_string(),
                mac: mac_for(ip),
                security_groups: self.groups.clone(),
            };
            return Ok((txn, eni));
        }
        let ids: Vec<&str> = self
            .pools
            .iter()
            .map(|p| p.subnet.subnet_id.as_str())
            .collect();
        Err(ApiError::invalid(format!(
            "No free IPv4 addresses are left in subnets [{}].",
            ids.join(", ")
        )))
    }
}
