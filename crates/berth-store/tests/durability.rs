//! Acknowledged writes survive `kill -9`.
//!
//! The test re-runs this test binary as a child (selecting `durability_child`
//! and pointing it at a store file through an env var). The child commits
//! writes from several tasks and prints `ACK <key>` after each `txn` returns;
//! the parent SIGKILLs it mid-stream, reopens the file and checks that every
//! acknowledged key is there.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_store::{RedbStore, Store, Txn, TxnResult};

const CHILD_ENV: &str = "BERTH_STORE_DURABILITY_CHILD";
const KILL_AFTER_ACKS: usize = 300;

/// Only does something when run as the child of `acked_writes_survive_sigkill`.
#[test]
fn durability_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = Arc::new(RedbStore::open(path.as_ref()).expect("open"));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let key = format!("k/{t}/{i}");
                    let txn = Txn::new().when_absent(&key).put(&key, vec![7u8; 512]);
                    match store.txn(txn).await.expect("txn") {
                        TxnResult::Committed { .. } => {}
                        other => panic!("{other:?}"),
                    }
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key}").expect("stdout");
                    out.flush().expect("stdout");
                    i += 1;
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer task");
        }
    });
}

#[test]
fn acked_writes_survive_sigkill() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.redb");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "durability_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let mut stdout = BufReader::new(child.stdout.take().expect("child stdout"));

    let mut acked = Vec::new();
    let mut killed = false;
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).expect("read child stdout") == 0 {
            break;
        }
        // A line cut short by the kill was never a complete acknowledgement.
        if let Some(key) = line.strip_prefix("ACK ").and_then(|l| l.strip_suffix('\n')) {
            acked.push(key.to_owned());
        }
        if !killed && acked.len() >= KILL_AFTER_ACKS {
            child.kill().expect("SIGKILL the child"); // Child::kill is SIGKILL on Unix
            killed = true;
        }
    }
    let status = child.wait().expect("wait for child");
    assert!(
        killed,
        "the child exited before {KILL_AFTER_ACKS} acks: {status:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "child died of SIGKILL");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = RedbStore::open(&path).expect("reopen after kill -9");
        let (kvs, revision) = store.list("k/").await.expect("list");
        let present: std::collections::HashSet<&str> =
            kvs.iter().map(|kv| kv.key.as_str()).collect();
        let missing: Vec<&String> = acked
            .iter()
            .filter(|k| !present.contains(k.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{} acknowledged keys lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert!(revision >= acked.len() as u64);
        eprintln!(
            "{} writes acknowledged before SIGKILL, {} found after reopen",
            acked.len(),
            kvs.len()
        );
        assert_eq!(revision, kvs.len() as u64, "one revision per surviving put");
        // The reopened store is writable and continues the revision sequence.
        let next = store
            .txn(Txn::new().put("after", b"x".to_vec()))
            .await
            .expect("txn");
        assert_eq!(
            next,
            TxnResult::Committed {
                revision: revision + 1
            }
        );
    });
}
