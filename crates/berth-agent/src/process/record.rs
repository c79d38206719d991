//! The per-container directory of the process driver and the JSON record in it.
//!
//! ```text
//! STATE_DIR/containers/ID/record.json   this record (written atomically: tmp + rename)
//! STATE_DIR/containers/ID/stdout.log    the process's standard output
//! STATE_DIR/containers/ID/stderr.log    its standard error
//! STATE_DIR/containers/ID/exit          "CODE\n", written once the process has exited
//! STATE_DIR/containers/ID/stopping      empty, created when a stop begins
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::DriverError;
use crate::spec::ContainerSpec;

/// Version of the record format.
pub(crate) const RECORD_VERSION: u32 = 1;

/// What the process driver remembers about one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Format version ([`RECORD_VERSION`]).
    pub version: u32,
    /// The container id (also the directory name).
    pub id: String,
    /// The spec it was started from (labels, ports, health check, ...).
    pub spec: ContainerSpec,
    /// The command run under the supervisor.
    pub argv: Vec<String>,
    /// The effective environment (also used for health probes).
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub working_dir: PathBuf,
    /// uid and gid it runs as, when the spec names a user.
    pub user: Option<(u32, u32)>,
    /// Pid of the supervisor, which is also the process group id.
    pub pid: i32,
    /// Start time of the supervisor in clock ticks since boot (guards against pid reuse).
    pub start_ticks: u64,
    /// Start time, epoch seconds.
    pub started_at: f64,
    /// Standard output log.
    pub stdout_path: PathBuf,
    /// Standard error log.
    pub stderr_path: PathBuf,
    /// Exit-code file.
    pub exit_path: PathBuf,
    /// Set before the driver sends SIGKILL, so an exit without a recorded code reads as 137.
    pub kill_sent: bool,
    /// Why it exited, when the driver knows more than the code.
    pub exit_reason: Option<String>,
    /// What runs the command as `user` (`setpriv ...`); empty when it is the supervisor's.
    #[serde(default)]
    pub exec_prefix: Vec<String>,
    /// The task's cgroup v2 directory, when limits are enforced.
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
}

/// Paths of one container directory.
#[derive(Debug, Clone)]
pub(crate) struct ContainerDir {
    pub dir: PathBuf,
}

impl ContainerDir {
    pub(crate) fn new(dir: PathBuf) -> Self {
        ContainerDir { dir }
    }
    pub(crate) fn record(&self) -> PathBuf {
        self.dir.join("record.json")
    }
    pub(crate) fn stdout(&self) -> PathBuf {
        self.dir.join("stdout.log")
    }
    pub(crate) fn stderr(&self) -> PathBuf {
        self.dir.join("stderr.log")
    }
    pub(crate) fn exit(&self) -> PathBuf {
        self.dir.join("exit")
    }
    /// Created by a stop before it signals (see the supervisor).
    pub(crate) fn stopping(&self) -> PathBuf {
        self.dir.join("stopping")
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> DriverError {
    DriverError::Runtime(format!("{what} {}: {e}", path.display()))
}

impl Record {
    /// Loads the record in `dir`; `NotFound` when there is none.
    pub(crate) fn load(dir: &ContainerDir, id: &str) -> Result<Record, DriverError> {
        let path = dir.record();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DriverError::NotFound(id.to_string()))
            }
            Err(e) => return Err(io_err("read", &path, e)),
        };
        let record: Record = serde_json::from_slice(&bytes)
            .map_err(|e| DriverError::Runtime(format!("corrupt record {}: {e}", path.display())))?;
        if record.version != RECORD_VERSION {
            return Err(DriverError::Runtime(format!(
                "record {} has version {}, expected {RECORD_VERSION}",
                path.display(),
                record.version
            )));
        }
        Ok(record)
    }

    /// Writes the record atomically (temporary file, fsync, rename).
    pub(crate) fn save(&self, dir: &ContainerDir) -> Result<(), DriverError> {
        let path = dir.record();
        let tmp = dir.dir.join("record.json.tmp");
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| DriverError::Runtime(format!("encode record: {e}")))?;
        let mut f = fs::File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
        f.write_all(&bytes).map_err(|e| io_err("write", &tmp, e))?;
        f.sync_all().map_err(|e| io_err("sync", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err("rename", &path, e))
    }
}

/// Reads the exit file: `Some((code, modification time))` once a code is recorded.
pub(crate) fn read_exit(path: &Path) -> Option<(i64, f64)> {
    let content = fs::read_to_string(path).ok()?;
    // The supervisor writes "CODE\n" with one write; without the newline it is incomplete.
    let code = content.strip_suffix('\n')?.trim().parse().ok()?;
    let at = fs::metadata(path)
        .and_then(|m| m.modified())
        .map(crate::spec::system_time_epoch)
        .unwrap_or_else(|_| crate::spec::now_epoch());
    Some((code, at))
}

/// Records `code` unless a code is already there (the supervisor's own wins).
pub(crate) fn write_exit_if_absent(path: &Path, code: i64) -> Result<(), DriverError> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => f
            .write_all(format!("{code}\n").as_bytes())
            .map_err(|e| io_err("write", path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err("create", path, e)),
    }
}
