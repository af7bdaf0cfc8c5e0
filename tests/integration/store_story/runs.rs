//! Runs and a node's sync state: a run recorded and finished, the state
//! set, and runs left running closed by whoever starts next (a dead
//! owner's, never a live one's). Walked from the catalog chapter, with its
//! node.

use chrono::Duration;
use fedsync::domain::{self, IdGenerator, Node, SyncStatus};
use fedsync::store::Store;

pub(super) async fn runs(
    store: &dyn Store,
    ids: &IdGenerator,
    node: &Node,
    now: domain::Timestamp,
) {
    use fedsync::domain::{RunCounts, RunStatus, SyncKind, SyncRun};
    // Runs and the node's sync state.
    let mut run = SyncRun {
        id: ids.next_id(),
        node_id: node.id,
        kind: SyncKind::Structure,
        shared_module_id: None,
        trigger: "manual".into(),
        status: RunStatus::Running,
        started_at: now,
        finished_at: None,
        counts: RunCounts::default(),
        error: String::new(),
        owner: "host:1:abcd".into(),
    };
    store.insert_sync_run(&run).await.unwrap();
    run.status = RunStatus::Failed;
    run.finished_at = Some(now);
    run.counts = RunCounts {
        pages: 3,
        created: 2,
        updated: 1,
        deleted: 1,
        skipped: 0,
        errors: 1,
    };
    run.error = "the origin failed".into();
    store.finish_sync_run(&run).await.unwrap();
    assert_eq!(
        store.list_sync_runs(node.id, 10).await.unwrap(),
        vec![run.clone()]
    );
    store
        .set_sync_state(
            node.id,
            SyncKind::Structure,
            SyncStatus::Synced,
            Some(now),
            "",
        )
        .await
        .unwrap();
    store
        .set_sync_state(
            node.id,
            SyncKind::Structure,
            SyncStatus::Failed,
            None,
            "boom",
        )
        .await
        .unwrap();
    let n = store.get_node(node.id).await.unwrap().unwrap();
    assert_eq!(
        (
            n.structure_status,
            n.structure_synced_at,
            n.structure_error.as_str()
        ),
        (SyncStatus::Failed, Some(now), "boom")
    );
    store
        .set_sync_state(node.id, SyncKind::Data, SyncStatus::Syncing, None, "")
        .await
        .unwrap();
    assert_eq!(
        store.get_node(node.id).await.unwrap().unwrap().data_status,
        SyncStatus::Syncing
    );

    // Runs left running: one by a process with a live lease (kept), one by a
    // process whose lease is gone (closed at start-up by whoever comes next).
    let live = store
        .acquire_instance("peer-host:77:beef", now, now + Duration::minutes(5))
        .await
        .unwrap();
    let mut orphan = SyncRun {
        id: ids.next_id(),
        kind: SyncKind::Data,
        status: RunStatus::Running,
        finished_at: None,
        owner: "dead-host:12:cafe".into(),
        ..run.clone()
    };
    let kept = SyncRun {
        id: ids.next_id(),
        owner: live.owner.clone(),
        ..orphan.clone()
    };
    store.insert_sync_run(&orphan).await.unwrap();
    store.insert_sync_run(&kept).await.unwrap();
    assert_eq!(
        store.list_running_sync_runs().await.unwrap(),
        vec![orphan.clone(), kept.clone()]
    );
    assert!(
        store
            .live_instance_owners(domain::now())
            .await
            .unwrap()
            .contains(&live.owner)
    );
    let reclaimed = fedsync::sync::runs::reclaim_interrupted(store, "me-host:1:0001", |_, _| false)
        .await
        .unwrap();
    assert_eq!(reclaimed, 1);
    assert_eq!(
        store.list_running_sync_runs().await.unwrap(),
        vec![kept.clone()]
    );
    let closed = store
        .list_sync_runs(node.id, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == orphan.id)
        .unwrap();
    orphan.status = RunStatus::Failed;
    orphan.error = fedsync::sync::runs::INTERRUPTED.into();
    assert_eq!(
        (
            closed.status,
            closed.error.as_str(),
            closed.finished_at.is_some()
        ),
        (orphan.status, orphan.error.as_str(), true)
    );
    let n = store.get_node(node.id).await.unwrap().unwrap();
    assert_eq!(
        (n.data_status, n.data_error.as_str()),
        (SyncStatus::Failed, fedsync::sync::runs::INTERRUPTED)
    );
    // A provably dead owner is closed even while its lease lasts.
    let reclaimed =
        fedsync::sync::runs::reclaim_interrupted(store, "me-host:1:0001", |o, _| o == live.owner)
            .await
            .unwrap();
    assert_eq!(reclaimed, 1);
    assert!(store.list_running_sync_runs().await.unwrap().is_empty());
    store.release_instance(&live, 0).await.unwrap();
}
