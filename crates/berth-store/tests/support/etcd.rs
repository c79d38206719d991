//! Starts real etcd members (`/usr/bin/etcd`, Debian's `etcd-server`) for tests: on free
//! ports, in a temp dir, killed on drop (so even when the test panics).
//!
//! Without etcd installed, [`Cluster::start`] returns None and the test prints why and
//! passes, except in CI (`CI=true`), which installs etcd and so must run every test.

#![allow(dead_code)] // each test binary uses part of it

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a member may take to start answering.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// One etcd member: its process, ports and data dir.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    child: Option<Child>,
}

/// A running etcd cluster, stopped (every member killed) on drop.
pub struct Cluster {
    members: Vec<Member>,
    initial_cluster: String,
    /// Shared by the members: it seeds the cluster id.
    token: String,
    _dir: tempfile::TempDir,
}

/// The etcd binary, if installed.
fn etcd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("BERTH_TEST_ETCD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
    path.exists().then_some(path)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Cluster {
    /// Starts `n` members and waits until every one answers; None (with a message) when
    /// etcd is not installed outside CI.
    pub fn start(n: usize) -> Option<Self> {
        if etcd_binary().is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "etcd is not installed (apt-get install etcd-server), and CI must run the etcd tests"
            );
            eprintln!("SKIPPED: /usr/bin/etcd is not installed (apt-get install etcd-server)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let tag = format!("berth-test-{}-{}", std::process::id(), free_port());
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("{tag}-{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                data_dir: dir.path().join(format!("m{i}")),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            members,
            initial_cluster,
            token: tag,
            _dir: dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_ready(i);
        }
        Some(cluster)
    }

    /// `etcd://` URL naming every member, with `namespace`.
    pub fn url(&self, namespace: &str) -> String {
        let hosts: Vec<String> = (0..self.members.len()).map(|i| self.endpoint(i)).collect();
        format!("etcd://{}/{namespace}", hosts.join(","))
    }

    /// `host:port` of member `i`'s client listener.
    pub fn endpoint(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.members[i].client_port)
    }

    /// Kills member `i` (its data stays).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts member `i` on its data dir and ports, and waits until it answers.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ready(i);
    }

    fn spawn(&mut self, i: usize) {
        let existing = self.members[i].data_dir.join("member").exists();
        let m = &self.members[i];
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let log = std::fs::File::create(self.log_path(i)).expect("etcd log file");
        let child = Command::new(etcd_binary().expect("etcd"))
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args(["--max-txn-ops", "4096"]) // berth_store::MIN_MAX_TXN_OPS
            .args([
                "--initial-cluster-state",
                if existing { "existing" } else { "new" },
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting etcd");
        self.members[i].child = Some(child);
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self._dir.path().join(format!("m{i}.log"))
    }

    fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + START_DEADLINE;
        let health = format!("127.0.0.1:{}", self.members[i].client_port);
        loop {
            if let Some(status) = self.members[i]
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("etcd member {i} exited with {status}: {}", self.log(i));
            }
            if healthy(&health) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd member {i} not healthy within {START_DEADLINE:?}: {}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// The data dir of member `i`.
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.members[i].data_dir
    }
}

/// Whether etcd's `/health` on `addr` says the member is part of a cluster with a leader.
fn healthy(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// Runs a test's body on a two-thread runtime, failing it if it takes longer than `deadline`.
pub fn run_within<F: std::future::Future<Output = ()>>(deadline: Duration, f: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        tokio::time::timeout(deadline, f)
            .await
            .expect("the test finishes within its deadline");
    });
}
