//! Container logs of the process driver: the stdout and stderr files a start opens, and the
//! stream `logs` returns, which reads the history and then, when following, polls the files
//! until the container exits. Split from the driver because it is the one long-lived reader
//! of a container's files, with its own state machine (`LogReader`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::record::{ContainerDir, Record};
use super::{io_err, ProcessDriver};
use crate::driver::BoxStream;
use crate::error::DriverError;
use crate::spec::{now_epoch, system_time_epoch, LineSplitter, LogLine, Stream as LogStream};

/// How often `logs(follow)` looks for new output.
pub(super) const LOG_POLL: Duration = Duration::from_millis(100);

/// Most bytes one log read takes from a file.
pub(super) const LOG_CHUNK: u64 = 1 << 20;

pub(super) fn open_log(path: &Path) -> Result<std::fs::File, DriverError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io_err(format_args!("open {}", path.display()), e))
}

/// Reads what was appended to `path` since `offset` (at most [`LOG_CHUNK`] bytes).
pub(super) async fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>, DriverError> {
    let mut f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format_args!("open {}", path.display()), e)),
    };
    f.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| io_err(format_args!("seek {}", path.display()), e))?;
    let mut buf = Vec::new();
    f.take(LOG_CHUNK)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| io_err(format_args!("read {}", path.display()), e))?;
    Ok(buf)
}

pub(super) async fn mtime(path: &Path) -> Option<f64> {
    tokio::fs::metadata(path)
        .await
        .and_then(|m| m.modified())
        .ok()
        .map(system_time_epoch)
}

/// State of a log stream.
pub(super) struct LogReader {
    driver: ProcessDriver,
    dir: ContainerDir,
    record: Record,
    follow: bool,
    /// Per stream: path, offset, splitter.
    files: [(LogStream, PathBuf, u64, LineSplitter); 2],
    ready: std::collections::VecDeque<Result<LogLine, DriverError>>,
    /// First pass (history) done.
    caught_up: bool,
    done: bool,
}

impl LogReader {
    /// Reads everything new from both files into `ready`; whether anything was read.
    async fn pump(&mut self, history: bool) -> Result<bool, DriverError> {
        let mut any = false;
        for (stream, path, offset, splitter) in &mut self.files {
            loop {
                let bytes = read_from(path, *offset).await?;
                if bytes.is_empty() {
                    break;
                }
                any = true;
                *offset += bytes.len() as u64;
                let at = if history {
                    mtime(path).await.unwrap_or_else(now_epoch)
                } else {
                    now_epoch()
                };
                for line in splitter.push(&bytes) {
                    self.ready.push_back(Ok(LogLine {
                        stream: *stream,
                        line,
                        at,
                    }));
                }
                if (bytes.len() as u64) < LOG_CHUNK {
                    break;
                }
            }
        }
        Ok(any)
    }

    async fn flush_partial(&mut self) {
        for (stream, path, _, splitter) in &mut self.files {
            if let Some(line) = splitter.finish() {
                self.ready.push_back(Ok(LogLine {
                    stream: *stream,
                    line,
                    at: mtime(path).await.unwrap_or_else(now_epoch),
                }));
            }
        }
    }

    async fn next(mut self) -> Option<(Result<LogLine, DriverError>, Self)> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            if !self.caught_up {
                self.caught_up = true;
                if let Err(e) = self.pump(true).await {
                    self.ready.push_back(Err(e));
                    self.done = true;
                }
                if !self.follow {
                    self.flush_partial().await;
                    self.done = true;
                }
                continue;
            }
            // Following: check for exit first so the last read sees everything written.
            let exited = self.driver.inner.exit_of(&self.dir, &self.record).is_some();
            match self.pump(false).await {
                Err(e) => {
                    self.ready.push_back(Err(e));
                    self.done = true;
                }
                Ok(true) => {}
                Ok(false) if exited => {
                    self.flush_partial().await;
                    self.done = true;
                }
                Ok(false) => tokio::time::sleep(LOG_POLL).await,
            }
        }
    }
}

impl LogReader {
    pub(super) fn new(
        driver: ProcessDriver,
        dir: ContainerDir,
        record: Record,
        follow: bool,
    ) -> Self {
        LogReader {
            driver,
            files: [
                (
                    LogStream::Stdout,
                    record.stdout_path.clone(),
                    0,
                    LineSplitter::default(),
                ),
                (
                    LogStream::Stderr,
                    record.stderr_path.clone(),
                    0,
                    LineSplitter::default(),
                ),
            ],
            dir,
            record,
            follow,
            ready: std::collections::VecDeque::new(),
            caught_up: false,
            done: false,
        }
    }

    pub(super) fn lines(self) -> BoxStream<'static, Result<LogLine, DriverError>> {
        futures::stream::unfold(self, LogReader::next).boxed()
    }
}
