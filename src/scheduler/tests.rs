//! An attempt whose future is dropped mid-way (its task cancelled, or a
//! caller that ran it inline gone) must not leave its lease renewed for
//! ever: the job becomes claimable once the lease runs out, and the
//! dispatcher's housekeeping frees it sooner.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore};

use super::*;
use crate::domain::{Node, PairingStatus, Role};
use crate::store::sqlite::{SqliteOptions, SqliteStore};

/// An attempt that announces it started and then never ends.
struct Hangs(Arc<Notify>);

#[async_trait]
impl JobRunner for Hangs {
    async fn attempt(&self, _job: &SyncJob, _trigger: &str) -> Attempt {
        self.0.notify_one();
        std::future::pending().await
    }
}

const LEASE: Duration = Duration::from_secs(30);

async fn rig(dir: &tempfile::TempDir) -> (Arc<dyn Store>, Arc<Scheduler>, Arc<Notify>, NodeId) {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let options = SqliteOptions {
        max_connections: 2,
        busy_timeout: Duration::from_secs(5),
    };
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url, &options).await.unwrap());
    store.migrate().await.unwrap();
    let ids = Arc::new(IdGenerator::new(1, 0));
    let mut node = Node::new_pending(
        NodeId(ids.next_id()),
        Role::Inviter,
        "peer",
        "https://peer.example.com/federation",
        "",
        crate::domain::now(),
    );
    node.status = PairingStatus::Paired;
    store.insert_node(&node).await.unwrap();
    let started = Arc::new(Notify::new());
    let settings = SchedulerSettings {
        structure_every: "1h".into(),
        data_every: "1h".into(),
        backoff: Backoff {
            base: Duration::from_secs(1),
            factor: 2.0,
            cap: Duration::from_secs(10),
        },
        max_concurrent: 2,
        per_peer: 2,
        lease: LEASE,
        history_retention: Duration::from_secs(3600),
        history_runs_per_job: 1000,
        live_data_every: None,
        tick: Duration::from_secs(5),
    };
    let scheduler = Arc::new(Scheduler::new(
        store.clone(),
        Arc::new(Hangs(started.clone())),
        ids,
        settings,
        "unit-owner".into(),
        Clock::start(),
    ));
    scheduler.reconcile().await.unwrap();
    (store, scheduler, started, node.id)
}

#[tokio::test]
async fn an_attempt_dropped_mid_way_stops_renewing_and_its_job_is_claimable_again() {
    let dir = tempfile::tempdir().unwrap();
    let (store, scheduler, started, node) = rig(&dir).await;
    let job = store.list_jobs(Some(node)).await.unwrap().remove(0);
    let now = scheduler.now();
    // Claimed as the dispatcher claims it (due: a trigger is recorded).
    let request = crate::store::TriggerRequest {
        reason: "manual",
        reset: false,
        join: false,
    };
    store.trigger_job(job.id, now, request).await.unwrap();
    let claimed = store
        .claim_due_job(now, "unit-owner", now + chrono_of(LEASE), 2)
        .await
        .unwrap()
        .expect("the triggered job is claimed");
    let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();

    // Paused time moves only when stepped: a task that always has work
    // keeps the runtime from jumping ahead while SQLite's thread answers.
    tokio::time::pause();
    let spinning = tokio_util::sync::CancellationToken::new();
    let spin = spinning.clone();
    tokio::spawn(async move {
        while !spin.is_cancelled() {
            tokio::task::yield_now().await;
        }
    });
    let first = claimed.lease_expires_at.unwrap();
    {
        let attempt = scheduler.execute(claimed.clone(), permit);
        tokio::pin!(attempt);
        tokio::select! {
            _ = &mut attempt => panic!("the attempt never ends"),
            _ = started.notified() => {}
        }
        // A third of the lease later, the attempt's renewer renews it.
        renewed_after_steps(&*store, job.id, first).await;
        // Dropped here, at an await inside the attempt.
    }
    let until = store
        .get_job(job.id)
        .await
        .unwrap()
        .unwrap()
        .lease_expires_at
        .unwrap();
    // Three whole leases later nothing has renewed it: each step gives a
    // live renewer its turn and a store round trip to land.
    for _ in 0..9 {
        tokio::time::advance(LEASE / 3 + Duration::from_millis(1)).await;
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        let now = store.get_job(job.id).await.unwrap().unwrap();
        assert_eq!(
            now.lease_expires_at,
            Some(until),
            "the lease was renewed after the attempt was dropped"
        );
    }
    // Claimable once the lease has run out: due at once (it was running).
    let later = until + chrono::Duration::seconds(1);
    let again = store
        .claim_due_job(later, "other-owner", later + chrono_of(LEASE), 2)
        .await
        .unwrap()
        .expect("the job is claimable once its lease ran out");
    assert_eq!(again.id, job.id);
    assert_eq!(again.claimed_trigger, "schedule", "the trigger was taken");
    spinning.cancel();
}

/// Steps paused time a second at a time (each step a store round trip)
/// until the job's lease is renewed past `first`.
async fn renewed_after_steps(store: &dyn Store, id: Id, first: Timestamp) {
    for _ in 0..LEASE.as_secs() {
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        let job = store.get_job(id).await.unwrap().unwrap();
        if job.lease_expires_at.is_some_and(|until| until > first) {
            return;
        }
    }
    panic!("the lease was never renewed while the attempt ran");
}

#[tokio::test]
async fn housekeeping_frees_a_lease_no_attempt_here_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (store, scheduler, _, node) = rig(&dir).await;
    let job = store.list_jobs(Some(node)).await.unwrap().remove(0);
    let now = scheduler.now();
    let request = crate::store::TriggerRequest {
        reason: "manual",
        reset: false,
        join: false,
    };
    store.trigger_job(job.id, now, request).await.unwrap();
    // Claimed by this process, but no attempt of it is in flight here.
    store
        .claim_due_job(now, "unit-owner", now + chrono_of(LEASE), 2)
        .await
        .unwrap()
        .expect("claimed");
    let other = store.list_jobs(None).await.unwrap();
    assert_eq!(other[0].state, crate::domain::JobState::Running);
    scheduler.free_orphaned_leases().await;
    let freed = store.get_job(job.id).await.unwrap().unwrap();
    assert_eq!(freed.lease_expires_at, None, "the orphaned lease is freed");
    assert_eq!(freed.state, crate::domain::JobState::Idle, "not running");
    // A lease of another process is not ours to free.
    let now = scheduler.now();
    store.trigger_job(job.id, now, request).await.unwrap();
    store
        .claim_due_job(now, "another-process", now + chrono_of(LEASE), 2)
        .await
        .unwrap()
        .expect("claimed");
    scheduler.free_orphaned_leases().await;
    let kept = store.get_job(job.id).await.unwrap().unwrap();
    assert_eq!(kept.lease_owner, "another-process");
    assert!(kept.lease_expires_at.is_some());
}
