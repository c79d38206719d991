//! The simulated hosts: N real [`Agent`]s, each with its own [`FakeDriver`], as tokio tasks
//! in this process. They register with the join token, keep their instance credential,
//! long-poll and report exactly as `berth agent` does; only the containers are pretend.
//!
//! All agents share one HTTP client (one connection pool): an agent holds one connection
//! for its long poll and borrows another to report, so ten thousand agents need about ten
//! thousand sockets and a handful of threads, not ten thousand of each.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use berth_agent::{Agent, AgentConfig, FakeDriver};
use tokio::sync::watch;

/// How each simulated host looks.
pub struct HostShape {
    pub cpu: u64,
    pub memory: u64,
    pub poll_wait: Duration,
}

/// The running agents; [`Fleet::stop`] ends them (their fake containers go with them).
pub struct Fleet {
    stop: watch::Sender<bool>,
    agents: Vec<tokio::task::JoinHandle<()>>,
    dir: PathBuf,
}

impl Fleet {
    /// Starts `hosts` agents for `cluster` at `server` (registration goes on in the
    /// background; the caller waits for the cluster's count).
    pub fn start(
        server: &str,
        cluster: &str,
        token: &str,
        hosts: u64,
        shape: &HostShape,
    ) -> Result<Self> {
        let dir = super::target::scratch_dir("agents")?;
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?;
        let (stop, stopped) = watch::channel(false);
        let mut agents = Vec::with_capacity(hosts as usize);
        for i in 0..hosts {
            let cfg = AgentConfig {
                server: server.to_owned(),
                cluster: cluster.to_owned(),
                join_token: token.to_owned(),
                state_dir: dir.join(format!("host-{i}")),
                attributes: vec![("berth.sim-host".to_owned(), Some(i.to_string()))],
                poll_wait: shape.poll_wait,
                cleanup_after: Duration::from_secs(600),
                cpu_units: Some(shape.cpu),
                memory_mib: Some(shape.memory),
                logs_listen: None,
                advertise: Some(format!("sim-host-{i}")),
                metadata_listen: None,
                ca_cert_pem: None,
            };
            let agent = Agent::with_http(cfg, Arc::new(FakeDriver::new()), http.clone());
            let mut stopped = stopped.clone();
            agents.push(tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                if let Err(e) = agent.run(shutdown).await {
                    tracing::warn!(host = i, error = %e, "simulated agent ended");
                }
            }));
        }
        Ok(Self { stop, agents, dir })
    }

    /// Stops every agent (briefly waiting for them) and removes their identities.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let all = futures::future::join_all(self.agents);
        if tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .is_err()
        {
            tracing::warn!("some simulated agents did not stop within 10 s");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
