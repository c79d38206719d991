//! `berth admin`: maintenance of the state store itself. `migrate` copies every record from
//! one store to another (the embedded redb file of a data dir, or an etcd cluster, either
//! way); `snapshot` and `restore` move a store's records through a file (the format is
//! `berth_store::snapshot`'s: versioned and checksummed).
//!
//! A data dir's redb file can be open in one process only, so these commands need its
//! server stopped (they fail with redb's "already open" error otherwise); an etcd store can
//! be snapshotted while servers run on it. Restores and migrations write only into an empty
//! store: they never merge.
//!
//! Also here: what `--store` means, since `berth server` opens its store the same way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use berth_store::{snapshot, EtcdStore, RedbStore, Store};

use crate::env;

/// Where the state lives: `etcd://host:port[,host:port...][/namespace]`, or a data dir (its
/// `berth.redb`), or a `.redb` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// The embedded store in this file.
    Redb(PathBuf),
    /// An etcd cluster (the URL as given).
    Etcd(String),
}

impl StoreSpec {
    /// Reads a `--store`/`--from`/`--to` value.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("etcd://") {
            return Self::Etcd(s.to_owned());
        }
        let path = PathBuf::from(s);
        if path.extension().is_some_and(|e| e == "redb") {
            Self::Redb(path)
        } else {
            Self::Redb(path.join("berth.redb"))
        }
    }

    /// `--store` if given, else the data dir's embedded store.
    pub fn or_data_dir(store: Option<&str>, data_dir: &Path) -> Self {
        store.map_or_else(|| Self::Redb(data_dir.join("berth.redb")), Self::parse)
    }

    /// Opens the store (creating an embedded one, and its directory, if missing).
    pub async fn open(&self) -> Result<Arc<dyn Store>> {
        match self {
            Self::Redb(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    create_private_dir(dir)?;
                }
                let store = RedbStore::open(path)
                    .with_context(|| format!("opening store {}", path.display()))?;
                Ok(Arc::new(store))
            }
            Self::Etcd(url) => {
                let store = EtcdStore::connect_url(url)
                    .await
                    .with_context(|| format!("opening store {url}"))?;
                Ok(Arc::new(store))
            }
        }
    }
}

impl std::fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redb(path) => write!(f, "{}", path.display()),
            Self::Etcd(url) => f.write_str(url),
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// `berth admin ...`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Copy every record from one store to another, empty one (redb data dir <-> etcd).
    Migrate {
        /// The store to read: a data dir, a `.redb` file or `etcd://host:2379[,...][/namespace]`.
        #[arg(long)]
        from: String,
        /// The empty store to write, in the same forms.
        #[arg(long)]
        to: String,
    },
    /// Write every record of a store to a file.
    Snapshot {
        /// The file to write (replaced atomically; readable by its owner only).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Load a snapshot file into an empty store.
    Restore {
        /// The snapshot file to read.
        #[arg(long = "in")]
        input: PathBuf,
        #[command(flatten)]
        target: Target,
    },
}

/// Which store a snapshot or restore works on.
#[derive(Debug, clap::Args)]
struct Target {
    /// The store: `etcd://...`, a data dir or a `.redb` file (default: the data dir's).
    #[arg(long, env = env::STORE)]
    store: Option<String>,
    /// The data dir whose embedded store is meant when `--store` is not given.
    #[arg(long, env = env::DATA_DIR)]
    data_dir: Option<PathBuf>,
}

impl Target {
    fn spec(&self) -> StoreSpec {
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(crate::server::default_data_dir);
        StoreSpec::or_data_dir(self.store.as_deref(), &data_dir)
    }
}

/// Runs `berth admin ...`.
pub async fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Migrate { from, to } => {
            let (from, to) = (StoreSpec::parse(&from), StoreSpec::parse(&to));
            if from == to {
                bail!("--from and --to are the same store ({from})");
            }
            let source = from.open().await?;
            let target = to.open().await?;
            let n = snapshot::copy(&*source, &*target)
                .await
                .with_context(|| format!("copying {from} to {to}"))?;
            println!("copied {n} records from {from} to {to}");
        }
        Command::Snapshot { out, target } => {
            let spec = target.spec();
            let store = spec.open().await?;
            let records = snapshot::dump(&*store).await?;
            write_private(&out, &snapshot::encode(&records))?;
            println!(
                "wrote {} records from {spec} to {}",
                records.len(),
                out.display()
            );
        }
        Command::Restore { input, target } => {
            let bytes =
                std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
            let records =
                snapshot::decode(&bytes).with_context(|| format!("reading {}", input.display()))?;
            let spec = target.spec();
            let store = spec.open().await?;
            let n = snapshot::load(&*store, &records)
                .await
                .with_context(|| format!("restoring into {spec}"))?;
            println!("restored {n} records into {spec}");
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temp file and a rename, mode 0600 (the state holds
/// credentials).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs_name_etcd_a_redb_file_or_a_data_dir() {
        assert_eq!(
            StoreSpec::parse("etcd://a:2379/x"),
            StoreSpec::Etcd("etcd://a:2379/x".into())
        );
        assert_eq!(
            StoreSpec::parse("/var/lib/berth"),
            StoreSpec::Redb("/var/lib/berth/berth.redb".into())
        );
        assert_eq!(
            StoreSpec::parse("/tmp/s.redb"),
            StoreSpec::Redb("/tmp/s.redb".into())
        );
        assert_eq!(
            StoreSpec::or_data_dir(None, Path::new("/d")),
            StoreSpec::Redb("/d/berth.redb".into())
        );
    }

    #[tokio::test]
    async fn a_snapshot_restores_into_a_fresh_data_dir() {
        use berth_store::Txn;
        let dir = tempfile::tempdir().unwrap();
        let a = StoreSpec::parse(dir.path().join("a").to_str().unwrap());
        {
            let store = a.open().await.unwrap();
            for i in 0..10 {
                store
                    .txn(Txn::new().put(format!("k/{i}"), vec![i]))
                    .await
                    .unwrap();
            }
        }
        let file = dir.path().join("snap");
        let target = |d: &str| Target {
            store: None,
            data_dir: Some(dir.path().join(d)),
        };
        let snap = Command::Snapshot {
            out: file.clone(),
            target: target("a"),
        };
        run(Args { command: snap }).await.unwrap();
        let restore = Command::Restore {
            input: file.clone(),
            target: target("b"),
        };
        run(Args { command: restore }).await.unwrap();
        let (want, _) = a.open().await.unwrap().list("").await.unwrap();
        let b = StoreSpec::parse(dir.path().join("b").to_str().unwrap());
        let (got, _) = b.open().await.unwrap().list("").await.unwrap();
        assert_eq!(want.len(), 10);
        assert!(snapshot::same_records(&want, &got));
        // Restoring again would merge: refused.
        let again = Command::Restore {
            input: file,
            target: target("b"),
        };
        assert!(run(Args { command: again }).await.is_err());
    }
}
