//! One claimed attempt: its lease renewed while it runs (by a task that
//! ends with it, however it ends), its outcome written while the lease is
//! still ours, and its end announced to the callers waiting for it.

use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::{Attempt, Landed, Scheduler, Verdict, chrono_of};
use crate::domain::{Id, SyncJob};
use crate::store::Store;

impl Scheduler {
    /// Runs one claimed attempt: renews the lease while it runs, writes the
    /// outcome (schedule, backoff or stop) while still holding it. Dropped
    /// at any await, it stops renewing at once, so the job is claimable when
    /// the lease runs out (or sooner: `free_orphaned_leases`).
    pub(super) async fn execute(
        &self,
        job: SyncJob,
        _permit: OwnedSemaphorePermit,
    ) -> Option<Attempt> {
        if !self.lease_is_fresh(&job).await {
            return None;
        }
        let lost = CancellationToken::new();
        let renewer = AbortOnDropHandle::new(tokio::spawn(renew_lease(
            self.store.clone(),
            job.id,
            self.owner.clone(),
            self.settings.lease,
            self.clock,
            lost.clone(),
        )));
        let started = tokio::time::Instant::now();
        let attempt = tokio::select! {
            attempt = self.runner.attempt(&job, job.claimed_trigger.as_str()) => Some(attempt),
            _ = lost.cancelled() => None,
        };
        drop(renewer);
        let attempt = attempt?;
        let mut done = job.clone();
        self.settle(&mut done, &attempt.verdict);
        self.count(&job, &done, &attempt, started.elapsed());
        let run = attempt.run.as_ref().map(|r| r.id);
        let recorded = crate::sync::runs::bounded_if_down(
            attempt.store_down,
            self.store
                .settle_job(&done, &self.owner, job.claimed_seq, run),
        )
        .await;
        match recorded {
            Ok(true) => self.report(&job, &done, &attempt.verdict).await,
            Ok(false) => {
                tracing::warn!(job = %job.id, "a sync job changed hands before it finished")
            }
            Err(error) => {
                tracing::warn!(job = %job.id, error = %error, "cannot record a sync job's outcome");
                self.unreleased().insert(job.id);
            }
        }
        // No receiver is fine: nobody waits for this one.
        let _ = self.landed.send(Landed {
            job: job.id,
            served: job.claimed_seq,
            attempt: attempt.clone(),
        });
        Some(attempt)
    }

    /// Counts an attempt on the job metrics.
    fn count(&self, job: &SyncJob, done: &SyncJob, attempt: &Attempt, took: Duration) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let (outcome, backoff) = match &attempt.verdict {
            Verdict::Succeeded => ("succeeded", 0.0),
            Verdict::Retry(_) | Verdict::RetryAfter(..) => (
                "retry",
                (done.next_run_at - self.clock.now())
                    .to_std()
                    .unwrap_or_default()
                    .as_secs_f64(),
            ),
            Verdict::Stop(_) => ("stopped", 0.0),
        };
        let counts = attempt
            .run
            .as_ref()
            .map(|r| {
                [
                    ("created", r.counts.created),
                    ("updated", r.counts.updated),
                    ("deleted", r.counts.deleted),
                    ("skipped", r.counts.skipped),
                    ("errors", r.counts.errors),
                ]
            })
            .unwrap_or_default();
        metrics.attempt(
            job.kind.as_str(),
            job.node_id.to_string(),
            outcome,
            &counts,
            took.as_secs_f64(),
            backoff,
        );
    }

    /// Whether a claimed job's lease still has most of its time: a claim
    /// statement that waited (for a connection, during an outage) set a
    /// lease counted from when it was issued, which may have run out before
    /// it returned, and another worker may claim the job again at once.
    /// Such a lease is renewed first; if the job is no longer ours, or
    /// cannot be renewed, it is not run.
    async fn lease_is_fresh(&self, job: &SyncJob) -> bool {
        let lease = chrono_of(self.settings.lease);
        let now = self.clock.now();
        if job
            .lease_expires_at
            .is_some_and(|until| until - now >= lease * 2 / 3)
        {
            return true;
        }
        match self
            .store
            .renew_job_lease(job.id, &self.owner, now + lease)
            .await
        {
            Ok(true) => {
                tracing::debug!(job = %job.id, "renewed the lease of a sync job claimed late");
                true
            }
            Ok(false) => {
                tracing::warn!(job = %job.id, "a sync job's claim came late and another worker has it now; not run");
                false
            }
            Err(error) => {
                tracing::warn!(job = %job.id, error = %error, "a sync job's claim came late and cannot be renewed; not run");
                self.unreleased().insert(job.id);
                false
            }
        }
    }

    /// Frees the jobs whose lease this process holds while no attempt of
    /// them is in flight here, rather than leave them to block every claim
    /// of the job until the lease runs out. An attempt whose end could not
    /// be written (the store failed) leaves such a lease; any other is a
    /// bug, and logged as one. A lease renewed since it was read belongs
    /// to a live attempt and is left alone.
    pub(super) async fn free_orphaned_leases(&self) {
        let now = self.clock.now();
        let jobs = match self.store.list_jobs(None).await {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::warn!(error = %error, "cannot look for orphaned job leases");
                return;
            }
        };
        // Taken after the jobs were read: an attempt in flight then is
        // still in flight now, or has ended (and its lease is gone).
        let in_flight = self.in_flight().clone();
        for job in jobs {
            let Some(until) = job.lease_expires_at else {
                continue;
            };
            if job.lease_owner != self.owner
                || until <= now
                || in_flight.contains_key(&super::key_of(&job))
            {
                continue;
            }
            match self
                .store
                .release_job_lease(job.id, &self.owner, until, now)
                .await
            {
                Ok(true) if self.unreleased().remove(&job.id) => tracing::info!(
                    job = %job.id,
                    "freed the lease of a sync job whose attempt could not record its end"
                ),
                Ok(true) => tracing::error!(
                    job = %job.id,
                    node = %job.node_id,
                    kind = job.kind.as_str(),
                    "bug: this process held the lease of a sync job no attempt of it runs; freed it"
                ),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(job = %job.id, error = %error, "cannot free an orphaned job lease")
                }
            }
        }
    }
}

impl Scheduler {
    /// Jobs whose attempt here ended without releasing the lease because
    /// the store failed.
    fn unreleased(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<Id>> {
        self.unreleased.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Renews a running job's lease every third of it until dropped; cancels
/// `lost` if the lease is no longer ours.
async fn renew_lease(
    store: std::sync::Arc<dyn Store>,
    id: Id,
    owner: String,
    lease: Duration,
    clock: super::Clock,
    lost: CancellationToken,
) {
    loop {
        tokio::time::sleep(lease / 3).await;
        match store
            .renew_job_lease(id, &owner, clock.now() + chrono_of(lease))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = %id, "lost the lease of a running sync job; stopping it");
                lost.cancel();
                return;
            }
            Err(error) => {
                tracing::warn!(job = %id, error = %error, "cannot renew a sync job lease")
            }
        }
    }
}
