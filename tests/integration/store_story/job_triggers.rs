//! Job triggers in the job row: recorded, taken by a claim, served by the
//! outcome, never lost to a state write.

use chrono::Duration;
use fedsync::domain::{self, IdGenerator, PairingStatus};
use fedsync::store::Store;

use super::node;

/// Triggers live in the job row: recorded at any time, taken by a claim
/// (even of a stopped job or a paused node), served by the outcome; one
/// recorded while an attempt runs makes the job due again after it; a
/// write of the job's state never loses one.
pub(super) async fn job_triggers(store: &dyn Store, ids: &IdGenerator) {
    use fedsync::domain::{JobState, SyncJob, SyncKind};
    use fedsync::store::TriggerRequest;
    let manual = TriggerRequest {
        reason: "manual",
        reset: false,
        join: false,
    };
    let now = domain::now();
    let peer = node(
        ids,
        "Trigger peer",
        "https://t.example.com/federation",
        PairingStatus::Paired,
    );
    store.insert_node(&peer).await.unwrap();
    let mut job = SyncJob::new(ids.next_id(), peer.id, SyncKind::Structure, None, "", now);
    job.next_run_at = now + Duration::hours(1);
    job.state = JobState::Stopped;
    job.stop_reason = "re-pair".into();
    assert!(store.insert_job(&job).await.unwrap());
    assert!(store.set_node_paused(peer.id, true).await.unwrap());
    let lease = |t: domain::Timestamp| t + Duration::seconds(30);
    let id = job.id;
    let claim = |owner: &'static str| async move {
        let claimed = store
            .claim_due_job(now, owner, lease(now), 8)
            .await
            .unwrap();
        assert!(claimed.as_ref().is_none_or(|j| j.id == id), "{claimed:?}");
        claimed
    };
    assert!(claim("a").await.is_none(), "stopped, paused, not due");

    // Two triggers before a claim: one attempt serves both.
    assert_eq!(
        store.trigger_job(job.id, now, manual).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        store.trigger_job(job.id, now, manual).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        store.next_job_due().await.unwrap(),
        Some(chrono::DateTime::UNIX_EPOCH)
    );
    let pending = store.get_job(job.id).await.unwrap().unwrap();
    assert!(pending.trigger_pending() && pending.triggered_at == Some(now));
    let claimed = claim("a")
        .await
        .expect("a trigger runs a stopped job of a paused node");
    assert_eq!(
        (
            claimed.claimed_seq,
            claimed.claimed_trigger.as_str(),
            claimed.triggered_at
        ),
        (2, "manual", None)
    );
    assert!(!claimed.trigger_pending() && claimed.trigger_unserved());
    // A state write while it runs keeps the triggers (a reconcile's).
    let mut edited = claimed.clone();
    edited.schedule = "5m".into();
    edited.trigger_seq = 0;
    assert!(store.update_job(&edited, None).await.unwrap());
    // A trigger while it runs, and a watcher joining: one more run after.
    assert_eq!(
        store.trigger_job(job.id, now, manual).await.unwrap(),
        Some(3)
    );
    let join = TriggerRequest {
        join: true,
        ..manual
    };
    assert_eq!(store.trigger_job(job.id, now, join).await.unwrap(), Some(3));
    assert!(claim("b").await.is_none(), "leased");
    let mut settled = edited.clone();
    settled.state = JobState::Idle;
    settled.lease_owner.clear();
    settled.lease_expires_at = None;
    let run = ids.next_id();
    assert!(
        store
            .settle_job(&settled, "a", claimed.claimed_seq, Some(run))
            .await
            .unwrap()
    );
    let after = store.get_job(job.id).await.unwrap().unwrap();
    assert_eq!(
        (
            after.served_seq,
            after.trigger_seq,
            after.last_run_id,
            after.schedule.as_str()
        ),
        (2, 3, Some(run), "5m")
    );
    assert!(
        after.trigger_pending(),
        "the trigger recorded meanwhile waits"
    );
    let again = claim("b").await.expect("due again at once");
    assert_eq!(
        (again.claimed_seq, again.claimed_trigger.as_str()),
        (3, "manual")
    );
    assert!(store.settle_job(&settled, "b", 3, None).await.unwrap());

    // A reset: its attempt pulls everything again; a join serves it too.
    let reset = TriggerRequest {
        reset: true,
        ..manual
    };
    assert_eq!(
        store.trigger_job(job.id, now, reset).await.unwrap(),
        Some(4)
    );
    assert_eq!(store.trigger_job(job.id, now, join).await.unwrap(), Some(4));
    let full = claim("a").await.expect("reset claimed");
    assert!(full.full_pull());
    // Its attempt could not record its end: the reset is not served, and
    // the next attempt (due from the schedule) pulls everything again.
    assert!(
        store
            .release_job_lease(full.id, "a", full.lease_expires_at.unwrap(), now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .release_job_lease(full.id, "a", full.lease_expires_at.unwrap(), now)
            .await
            .unwrap()
    );
    assert!(store.set_node_paused(peer.id, false).await.unwrap());
    let mut due = store.get_job(job.id).await.unwrap().unwrap();
    due.next_run_at = now;
    due.state = JobState::Idle;
    assert!(store.update_job(&due, None).await.unwrap());
    let retried = claim("a").await.expect("due by its schedule");
    assert_eq!(retried.claimed_trigger, "reset");
    assert!(
        store
            .settle_job(&settled, "a", retried.claimed_seq, None)
            .await
            .unwrap()
    );
    let mut scheduled = store.get_job(job.id).await.unwrap().unwrap();
    assert!(!scheduled.trigger_unserved());
    scheduled.next_run_at = now;
    assert!(store.update_job(&scheduled, None).await.unwrap());
    assert_eq!(claim("a").await.unwrap().claimed_trigger, "schedule");
    assert_eq!(
        store.trigger_job(ids.next_id(), now, manual).await.unwrap(),
        None
    );
}
