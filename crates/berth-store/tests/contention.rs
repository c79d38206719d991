//! Many writers on one key: every `update_json` commits, none is lost, none errors.

use std::sync::Arc;

use berth_store::{update_json, RedbStore, Store, StoreExt, Update, UpdateError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_of_one_key_all_land() {
    let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().expect("store"));
    let writers = 64;
    let mut joins = Vec::new();
    for i in 0..writers {
        let store = store.clone();
        joins.push(tokio::spawn(async move {
            update_json::<Vec<u32>, (), _>(&*store, "hot", |cur| {
                let mut v = cur.unwrap_or_default();
                v.push(i);
                Ok(Update::Put(v))
            })
            .await
        }));
    }
    for j in joins {
        j.await.expect("join").expect("update");
    }
    let (mut v, _) = store
        .get_json::<Vec<u32>>("hot")
        .await
        .expect("get")
        .expect("present");
    v.sort_unstable();
    assert_eq!(v, (0..writers).collect::<Vec<_>>());
}

#[tokio::test]
async fn keep_delete_and_rejection() {
    let store = RedbStore::in_memory().expect("store");
    let (v, _) = update_json::<u32, (), _>(&store, "k", |_| Ok(Update::Put(7)))
        .await
        .expect("put");
    assert_eq!(v, Some(7));
    let (v, _) = update_json::<u32, (), _>(&store, "k", |_| Ok(Update::Keep))
        .await
        .expect("keep");
    assert_eq!(v, Some(7));
    let r = update_json::<u32, &str, _>(&store, "k", |_| Err("no")).await;
    assert!(matches!(r, Err(UpdateError::Rejected("no"))));
    let (v, _) = update_json::<u32, (), _>(&store, "k", |_| Ok(Update::Delete))
        .await
        .expect("delete");
    assert_eq!(v, None);
    assert!(store.get("k").await.expect("get").is_none());
}
