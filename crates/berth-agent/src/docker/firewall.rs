//! Security groups enforced with iptables: ingress to an awsvpc task's address is allowed only
//! when one of its groups' rules matches protocol, port range and source.
//!
//! berth's rules live in its own chains of the `filter` table, through the `iptables` that
//! Docker itself uses (on this project's hosts the nf_tables backend; a host where Docker
//! programs the legacy tables needs `iptables` to point at `iptables-legacy`):
//! - `BERTH-SG`, jumped to from `DOCKER-USER` (traffic between containers and from outside,
//!   which Docker sends through `FORWARD`; bridged traffic reaches it because Docker turns
//!   on `bridge-nf-call-iptables`) and from `OUTPUT` (connections the host itself makes, such
//!   as the load balancer in the berth process: they leave through the subnet's bridge with
//!   the bridge's own address, the subnet's gateway `x.x.x.1`, as source, and a rule must allow
//!   that address, e.g. the subnet's or the VPC's block, for the host to get in);
//! - one chain per task, `BERTH-T-<first 16 of the task id>`, holding: established and related
//!   traffic allowed, one `RETURN` per allowance, then `DROP`. `BERTH-SG` jumps to it for
//!   packets to the task's address.
//!
//! A task's chain is rewritten in one `iptables-restore --noflush` transaction (no moment
//! without rules) whenever its allowances change, and removed with the task. Egress is not
//! filtered.

use berth_model::vpc::{AgentNetwork, IngressAllow};
use tokio::io::AsyncWriteExt;

use crate::error::DriverError;

/// berth's dispatch chain.
pub const DISPATCH: &str = "BERTH-SG";

/// The chain of one task (iptables chain names hold at most 28 characters).
pub fn task_chain(task_id: &str) -> String {
    let short: String = task_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    format!("BERTH-T-{short}")
}

/// The `iptables-restore --noflush` input that (re)writes a task's chain.
pub fn restore_script(task_id: &str, net: &AgentNetwork) -> String {
    let chain = task_chain(task_id);
    let mut s = format!("*filter\n:{chain} - [0:0]\n");
    s.push_str(&format!(
        "-A {chain} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n"
    ));
    for a in &net.ingress {
        s.push_str(&format!(
            "-A {chain} {} -j RETURN\n",
            match_args(a).join(" ")
        ));
    }
    s.push_str(&format!("-A {chain} -j DROP\nCOMMIT\n"));
    s
}

/// The match of one allowance.
fn match_args(a: &IngressAllow) -> Vec<String> {
    let mut m = Vec::new();
    match a.protocol.as_str() {
        "tcp" | "udp" => {
            m.extend(["-p".into(), a.protocol.clone()]);
            m.extend(["-s".into(), a.cidr.clone()]);
            let ports = if a.from_port == a.to_port {
                a.from_port.to_string()
            } else {
                format!("{}:{}", a.from_port, a.to_port)
            };
            m.extend(["--dport".into(), ports]);
        }
        "icmp" => {
            m.extend(["-p".into(), "icmp".into(), "-s".into(), a.cidr.clone()]);
            if a.from_port >= 0 {
                let t = if a.to_port >= 0 {
                    format!("{}/{}", a.from_port, a.to_port)
                } else {
                    a.from_port.to_string()
                };
                m.extend(["--icmp-type".into(), t]);
            }
        }
        _ => m.extend(["-s".into(), a.cidr.clone()]),
    }
    m
}

async fn iptables(args: &[&str]) -> Result<(bool, String), DriverError> {
    let out = tokio::process::Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .await
        .map_err(|e| DriverError::Runtime(format!("running iptables: {e}")))?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

async fn must(args: &[&str]) -> Result<String, DriverError> {
    match iptables(args).await? {
        (true, out) => Ok(out),
        (false, out) => Err(DriverError::Runtime(format!(
            "iptables {}: {}",
            args.join(" "),
            out.trim()
        ))),
    }
}

/// Set once this process has made `BERTH-SG` and its jumps (each task's start then spends no
/// `iptables` call on them).
static DISPATCH_READY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes `BERTH-SG` and the jumps to it (idempotent; checked once per process).
async fn ensure_dispatch() -> Result<(), DriverError> {
    use std::sync::atomic::Ordering;
    if DISPATCH_READY.load(Ordering::Acquire) {
        return Ok(());
    }
    let _ = iptables(&["-N", DISPATCH]).await?;
    let forward = if iptables(&["-S", "DOCKER-USER"]).await?.0 {
        "DOCKER-USER"
    } else {
        "FORWARD"
    };
    for from in [forward, "OUTPUT"] {
        if !iptables(&["-C", from, "-j", DISPATCH]).await?.0 {
            must(&["-I", from, "1", "-j", DISPATCH]).await?;
        }
    }
    DISPATCH_READY.store(true, Ordering::Release);
    Ok(())
}

/// Writes a task's chain from its allowances and sends its address there.
pub async fn apply(task_id: &str, net: &AgentNetwork) -> Result<(), DriverError> {
    ensure_dispatch().await?;
    let script = restore_script(task_id, net);
    let mut child = tokio::process::Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| DriverError::Runtime(format!("running iptables-restore: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| DriverError::Runtime(format!("iptables-restore: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| DriverError::Runtime(format!("iptables-restore: {e}")))?;
    if !out.status.success() {
        return Err(DriverError::Runtime(format!(
            "iptables-restore: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let chain = task_chain(task_id);
    let dest = format!("{}/32", net.eni.ip);
    let jump = ["-d", dest.as_str(), "-j", chain.as_str()];
    if !iptables(&[&["-C", DISPATCH][..], &jump].concat()).await?.0 {
        must(&[&["-A", DISPATCH][..], &jump].concat()).await?;
    }
    Ok(())
}

/// Removes a task's chain and the jumps to it (idempotent).
pub async fn remove(task_id: &str) -> Result<(), DriverError> {
    let chain = task_chain(task_id);
    let (ok, listing) = iptables(&["-S", DISPATCH]).await?;
    if ok {
        for line in listing.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&"-A") && words.last() == Some(&chain.as_str()) {
                let mut args = vec!["-D"];
                args.extend(&words[1..]);
                let _ = iptables(&args).await?;
            }
        }
    }
    if iptables(&["-S", &chain]).await?.0 {
        must(&["-F", &chain]).await?;
        must(&["-X", &chain]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::vpc::TaskEni;

    #[test]
    fn a_task_chain_allows_its_rules_then_drops() {
        let net = AgentNetwork {
            eni: TaskEni {
                attachment_id: "a".into(),
                eni_id: "eni-1".into(),
                subnet_id: "subnet-1".into(),
                subnet_cidr: "10.247.0.0/20".into(),
                ip: "10.247.0.4".into(),
                gateway: "10.247.0.1".into(),
                mac: "0a:b7:0a:f7:00:04".into(),
                security_groups: vec!["sg-1".into()],
            },
            ingress: vec![
                IngressAllow {
                    protocol: "tcp".into(),
                    from_port: 80,
                    to_port: 80,
                    cidr: "10.247.0.0/16".into(),
                },
                IngressAllow {
                    protocol: "udp".into(),
                    from_port: 1000,
                    to_port: 2000,
                    cidr: "0.0.0.0/0".into(),
                },
                IngressAllow {
                    protocol: "-1".into(),
                    from_port: -1,
                    to_port: -1,
                    cidr: "10.247.0.5/32".into(),
                },
            ],
        };
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(task_chain(id), "BERTH-T-0123456789abcdef");
        assert!(task_chain(id).len() <= 28);
        let s = restore_script(id, &net);
        let c = "BERTH-T-0123456789abcdef";
        assert_eq!(
            s,
            format!(
                "*filter\n:{c} - [0:0]\n\
                 -A {c} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN\n\
                 -A {c} -p tcp -s 10.247.0.0/16 --dport 80 -j RETURN\n\
                 -A {c} -p udp -s 0.0.0.0/0 --dport 1000:2000 -j RETURN\n\
                 -A {c} -s 10.247.0.5/32 -j RETURN\n\
                 -A {c} -j DROP\nCOMMIT\n"
            )
        );
    }
}
