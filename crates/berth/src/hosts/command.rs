//! The `command` host provider: the operator's own scripts make and destroy hosts (real
//! machines, VMs, anything that can run `berth agent`).
//!
//! - `create` gets the host spec as JSON on stdin (instance id, group, cluster, server URL,
//!   join token, instance type, image id, cpu, memory, attributes, user data) and prints the
//!   host's handle on its first line of output;
//! - `destroy HANDLE` removes the host (a host already gone is success);
//! - `list` prints the handles of the hosts that are alive, one a line.
//!
//! A non-zero exit is a failure, reported with the script's stderr. See
//! `docs/host-provider-command.md` for a worked example.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use berth_control::hostgroup::{HostError, HostProvider, HostSpec};
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::io::AsyncWriteExt;

/// How long one script run may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// The three scripts; see the module docs.
#[derive(Debug, Clone)]
pub struct CommandProvider {
    create: PathBuf,
    destroy: PathBuf,
    list: PathBuf,
}

impl CommandProvider {
    /// Parses `create=PATH,destroy=PATH,list=PATH`.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let (mut create, mut destroy, mut list) = (None, None, None);
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--host-provider-command: expected KEY=PATH, got {part:?}")
            })?;
            let slot = match k.trim() {
                "create" => &mut create,
                "destroy" => &mut destroy,
                "list" => &mut list,
                other => anyhow::bail!(
                    "--host-provider-command: unknown key {other:?} (create, destroy, list)"
                ),
            };
            *slot = Some(PathBuf::from(v.trim()));
        }
        match (create, destroy, list) {
            (Some(create), Some(destroy), Some(list)) => Ok(Self {
                create,
                destroy,
                list,
            }),
            _ => anyhow::bail!("--host-provider-command needs create=PATH,destroy=PATH,list=PATH"),
        }
    }

    async fn run(
        &self,
        script: &PathBuf,
        args: &[&str],
        stdin: Option<Vec<u8>>,
    ) -> Result<String, HostError> {
        let mut cmd = tokio::process::Command::new(script);
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| HostError(format!("running {}: {e}", script.display())))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(&input)
                .await
                .map_err(|e| HostError(format!("writing to {}: {e}", script.display())))?;
        }
        let out = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| {
                HostError(format!(
                    "{} took longer than {SCRIPT_TIMEOUT:?}",
                    script.display()
                ))
            })?
            .map_err(|e| HostError(format!("running {}: {e}", script.display())))?;
        if !out.status.success() {
            return Err(HostError(format!(
                "{} failed ({}): {}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl HostProvider for CommandProvider {
    fn create<'a>(&'a self, spec: &'a HostSpec) -> BoxFuture<'a, Result<String, HostError>> {
        async move {
            let json = serde_json::to_vec(spec).map_err(|e| HostError(e.to_string()))?;
            let out = self.run(&self.create, &[], Some(json)).await?;
            let handle = out.lines().next().unwrap_or_default().trim().to_owned();
            if handle.is_empty() {
                return Err(HostError(format!(
                    "{} printed no handle",
                    self.create.display()
                )));
            }
            Ok(handle)
        }
        .boxed()
    }

    fn destroy<'a>(&'a self, handle: &'a str) -> BoxFuture<'a, Result<(), HostError>> {
        async move { self.run(&self.destroy, &[handle], None).await.map(|_| ()) }.boxed()
    }

    fn alive<'a>(&'a self, handle: &'a str) -> BoxFuture<'a, Result<bool, HostError>> {
        async move {
            let out = self.run(&self.list, &[], None).await?;
            Ok(out.lines().any(|l| l.trim() == handle))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_scripts() {
        let p = CommandProvider::parse("create=/a,destroy=/b,list=/c").unwrap();
        assert_eq!(p.create, PathBuf::from("/a"));
        assert_eq!(p.list, PathBuf::from("/c"));
        assert!(CommandProvider::parse("create=/a,destroy=/b").is_err());
        assert!(CommandProvider::parse("create=/a,destroy=/b,list=/c,x=/d").is_err());
    }
}
