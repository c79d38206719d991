//! ECS's credentials address, `169.254.170.2:80`, leading to the agent's metadata endpoint, so
//! a docker container's SDK finds `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` where ECS serves it.
//!
//! As the ECS agent does, with iptables `nat` rules: `PREROUTING` for bridge containers (their
//! packets to the address arrive on a Docker bridge) and `OUTPUT` for host-network containers
//! (the host's own packets), both DNAT to the endpoint's address and port. The rules carry a
//! comment naming the endpoint and go when the agent stops (the guard's `Drop`); a host runs one
//! docker agent, as an ECS host does (a second one's rules would come first).

use std::net::SocketAddr;
use std::process::Command;

/// ECS's address for task credentials and metadata.
pub(crate) const ECS_ADDRESS: &str = "169.254.170.2";

/// The installed rules; removed when dropped.
pub(crate) struct Dnat {
    rules: Vec<Vec<String>>,
}

/// The rule (after `-t nat -I|-D`) that sends `chain`'s packets for ECS's address to `target`.
pub(crate) fn rule(chain: &str, target: SocketAddr) -> Vec<String> {
    [
        chain,
        "-d",
        &format!("{ECS_ADDRESS}/32"),
        "-p",
        "tcp",
        "--dport",
        "80",
        "-m",
        "comment",
        "--comment",
        &format!("berth task credentials {target}"),
        "-j",
        "DNAT",
        "--to-destination",
        &target.to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn iptables(op: &str, rule: &[String]) -> bool {
    Command::new("iptables")
        .args(["-w", "-t", "nat", op])
        .args(rule)
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Dnat {
    /// Installs the rules toward `target` (an earlier agent's identical ones are replaced);
    /// `None` when iptables refuses (no privileges, no iptables): containers then reach the
    /// endpoint only at its own address.
    pub(crate) fn install(target: SocketAddr) -> Option<Dnat> {
        let mut installed = Dnat { rules: Vec::new() };
        for chain in ["PREROUTING", "OUTPUT"] {
            let r = rule(chain, target);
            while iptables("-D", &r) {}
            if !iptables("-I", &r) {
                return None;
            }
            installed.rules.push(r);
        }
        Some(installed)
    }
}

impl Drop for Dnat {
    fn drop(&mut self) {
        for r in &self.rules {
            iptables("-D", r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_send_ecs_port_80_to_the_endpoint() {
        let r = rule("PREROUTING", "172.17.0.1:4321".parse().unwrap());
        let text = r.join(" ");
        assert_eq!(
            text,
            "PREROUTING -d 169.254.170.2/32 -p tcp --dport 80 -m comment --comment \
             berth task credentials 172.17.0.1:4321 -j DNAT --to-destination 172.17.0.1:4321"
        );
    }
}
