//! Jobs: claimed when due with a lease, the outcome written only by the
//! holder, leases taken over, the per-peer limit, pauses and schedules,
//! the all-nodes status, retention, and the runs of a job since one that
//! did not succeed.

use chrono::Duration;
use fedsync::domain::{self, IdGenerator, NodeFilter, PairingStatus};
use fedsync::store::Store;

use super::node;

pub(super) async fn jobs(store: &dyn Store, ids: &IdGenerator) {
    use fedsync::domain::{JobState, SyncJob, SyncKind};
    let now = domain::now();
    let mut peer = node(
        ids,
        "Jobs peer",
        "https://j.example.com/federation",
        PairingStatus::Paired,
    );
    store.insert_node(&peer).await.unwrap();
    let mut job = SyncJob::new(ids.next_id(), peer.id, SyncKind::Structure, None, "", now);
    job.next_run_at = now + Duration::seconds(60);
    assert!(store.insert_job(&job).await.unwrap());
    let twin = SyncJob::new(ids.next_id(), peer.id, SyncKind::Structure, None, "5m", now);
    assert!(
        !store.insert_job(&twin).await.unwrap(),
        "one job per node, kind and module"
    );
    assert_eq!(
        store.list_jobs(Some(peer.id)).await.unwrap(),
        vec![job.clone()]
    );
    assert_eq!(store.next_job_due().await.unwrap(), Some(job.next_run_at));

    // Not due yet: nobody claims it. Due: one claimer gets it, leased.
    let lease = |t: domain::Timestamp| t + Duration::seconds(30);
    assert!(
        store
            .claim_due_job(now, "a", lease(now), 2)
            .await
            .unwrap()
            .is_none()
    );
    let due = job.next_run_at + Duration::seconds(1);
    let claimed = store
        .claim_due_job(due, "a", lease(due), 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.id, claimed.state, claimed.lease_owner.as_str()),
        (job.id, JobState::Running, "a")
    );
    assert!(
        store
            .claim_due_job(due, "b", lease(due), 2)
            .await
            .unwrap()
            .is_none(),
        "leased"
    );
    assert!(
        store
            .renew_job_lease(job.id, "a", lease(due) + Duration::seconds(5))
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_job_lease(job.id, "b", lease(due))
            .await
            .unwrap()
    );
    // Only the holder writes the outcome.
    let mut settled = claimed.clone();
    settled.state = JobState::Retrying;
    settled.attempts = 1;
    settled.lease_owner.clear();
    settled.lease_expires_at = None;
    assert!(!store.settle_job(&settled, "b", 0, None).await.unwrap());
    assert!(store.settle_job(&settled, "a", 0, None).await.unwrap());
    assert_eq!(store.get_job(job.id).await.unwrap().unwrap(), settled);
    // An expired lease is taken over (a replica died).
    let taken = store
        .claim_due_job(due, "a", due, 2)
        .await
        .unwrap()
        .unwrap();
    let later = due + Duration::seconds(1);
    let again = store
        .claim_due_job(later, "b", lease(later), 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken.id, again.lease_owner.as_str()), (job.id, "b"));

    // Per-peer limit: a second due job of the same node waits.
    let mut data = SyncJob::new(
        ids.next_id(),
        peer.id,
        SyncKind::Data,
        Some(ids.next_id()),
        "",
        now,
    );
    data.next_run_at = now;
    assert!(store.insert_job(&data).await.unwrap());
    assert!(
        store
            .claim_due_job(later, "c", lease(later), 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .claim_due_job(later, "c", lease(later), 2)
            .await
            .unwrap()
            .is_some()
    );

    // Pause, schedules, triggered jobs first.
    assert!(
        store
            .set_node_schedule(peer.id, "*/5 * * * *", "30s")
            .await
            .unwrap()
    );
    assert_eq!(
        store.node_schedule(peer.id).await.unwrap(),
        ("*/5 * * * *".to_owned(), "30s".to_owned())
    );
    assert!(store.set_node_paused(peer.id, true).await.unwrap());
    peer = store.get_node(peer.id).await.unwrap().unwrap();
    assert!(peer.paused);
    assert_eq!(
        store.next_job_due().await.unwrap(),
        None,
        "a paused node has nothing due"
    );
    assert!(store.set_node_paused(peer.id, false).await.unwrap());
    store.delete_job(data.id).await.unwrap();
    assert_eq!(store.list_jobs(Some(peer.id)).await.unwrap().len(), 1);

    // The all-nodes status in one statement: the same nodes, schedules and
    // jobs, in the same order, as the queries one by one (a paused node and
    // a second job of another kind included).
    assert!(store.set_node_paused(peer.id, true).await.unwrap());
    let mut data_job = SyncJob::new(
        ids.next_id(),
        peer.id,
        SyncKind::Data,
        Some(ids.next_id()),
        "1m",
        now,
    );
    data_job.last_error = "peer said \"no\" \u{e9}".into();
    data_job.last_error_at = Some(now);
    assert!(store.insert_job(&data_job).await.unwrap());
    let snapshot = store.status_snapshot().await.unwrap();
    let schedules: std::collections::HashMap<_, _> = store
        .node_schedules()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, s, d)| (id, (s, d)))
        .collect();
    let expected_nodes: Vec<_> = store
        .list_nodes(&NodeFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|n| {
            let (s, d) = schedules[&n.id].clone();
            (n, s, d)
        })
        .collect();
    assert!(expected_nodes.len() > 1);
    assert_eq!(snapshot.nodes, expected_nodes);
    assert!(
        snapshot
            .nodes
            .iter()
            .any(|(n, _, _)| n.id == peer.id && n.paused)
    );
    assert_eq!(snapshot.jobs, store.list_jobs(None).await.unwrap());
    assert!(snapshot.jobs.contains(&data_job));
    store.delete_job(data_job.id).await.unwrap();
    assert!(store.set_node_paused(peer.id, false).await.unwrap());

    // Retention: old finished runs go, running ones stay.
    use fedsync::domain::{RunCounts, RunStatus, SyncRun};
    let old = now - Duration::days(40);
    let run = |status| SyncRun {
        id: ids.next_id(),
        node_id: peer.id,
        kind: SyncKind::Structure,
        shared_module_id: None,
        trigger: "schedule".into(),
        status,
        started_at: old,
        finished_at: None,
        counts: RunCounts::default(),
        error: String::new(),
        owner: "h:1:x".into(),
    };
    let finished = run(RunStatus::Succeeded);
    let running = run(RunStatus::Running);
    store.insert_sync_run(&finished).await.unwrap();
    store.insert_sync_run(&running).await.unwrap();
    let (runs, _) = store.prune_history(now - Duration::days(30)).await.unwrap();
    assert_eq!(runs, 1);
    assert_eq!(
        store.list_sync_runs(peer.id, 100).await.unwrap(),
        vec![running]
    );

    // The runs of a job since one of them that did not succeed: only those
    // of the same job (node, kind, shared module), from `since` on, and
    // not the asking run.
    let shared = ids.next_id();
    let data_run = |status, shared_module_id| SyncRun {
        kind: SyncKind::Data,
        shared_module_id: Some(shared_module_id),
        started_at: now,
        ..run(status)
    };
    let before = data_run(RunStatus::Failed, shared);
    let since = data_run(RunStatus::Succeeded, shared);
    let other_job = data_run(RunStatus::Failed, ids.next_id());
    let asking = data_run(RunStatus::Running, shared);
    for r in [&before, &since, &other_job, &asking] {
        store.insert_sync_run(r).await.unwrap();
    }
    let unsucceeded = || store.unsucceeded_runs_since(asking.id, since.id);
    assert_eq!(unsucceeded().await.unwrap(), 0);
    let mut failed = data_run(RunStatus::Running, shared);
    store.insert_sync_run(&failed).await.unwrap();
    assert_eq!(unsucceeded().await.unwrap(), 1, "a run still running");
    failed.status = RunStatus::Failed;
    failed.finished_at = Some(now);
    store.finish_sync_run(&failed).await.unwrap();
    assert_eq!(unsucceeded().await.unwrap(), 1, "a failed run");
    assert_eq!(
        store
            .unsucceeded_runs_since(asking.id, before.id)
            .await
            .unwrap(),
        2
    );
}
