//! `sync now` and `sync reset`: a trigger recorded in each job's row (so
//! whichever replica claims the job serves it), then a wait for the
//! attempts that serve them. The wait holds nothing: no permit, no lease,
//! no task; a caller that goes away leaves the work to the daemon.
//!
//! An attempt of this process that ends is heard at once (`Landed`, sent
//! even when its outcome could not be written); one that ran on another
//! replica is read from the job row (`served_seq`, `last_run_id`), polled.

use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};

use super::{Attempt, Landed, Scheduler, Verdict};
use crate::domain::{Id, JobState, NodeId, RunStatus, SyncJob, SyncKind};
use crate::store::{StoreError, TriggerRequest};

/// How often a waiter reads the job rows, for attempts of other replicas.
const POLL: Duration = Duration::from_secs(1);

/// Triggers recorded for one request: each job (as it stood right after its
/// trigger) and the `trigger_seq` an attempt must serve for it.
pub struct Tickets {
    landed: broadcast::Receiver<Landed>,
    pub jobs: Vec<(SyncJob, i64)>,
}

impl Scheduler {
    /// Records a trigger in each of the node's jobs of `kind` (one shared
    /// module with `only`) and wakes the dispatcher. `None` when the node
    /// has no such job (not paired, or nothing mapped).
    pub async fn trigger(
        &self,
        node_id: NodeId,
        kind: SyncKind,
        only: Option<Id>,
        request: TriggerRequest<'_>,
    ) -> Result<Option<Tickets>, StoreError> {
        self.reconcile().await?;
        let jobs: Vec<SyncJob> = self
            .store
            .list_jobs(Some(node_id))
            .await?
            .into_iter()
            .filter(|j| j.kind == kind && only.is_none_or(|id| j.shared_module_id == Some(id)))
            .collect();
        if jobs.is_empty() {
            return Ok(None);
        }
        // Before the triggers: an attempt that ends at once is heard.
        let landed = self.landed.subscribe();
        let now = self.clock.now();
        let mut tickets = Vec::new();
        for mut job in jobs {
            if let Some(seq) = self.store.trigger_job(job.id, now, request).await? {
                job.trigger_seq = seq;
                tickets.push((job, seq));
            }
        }
        self.wake();
        Ok(Some(Tickets {
            landed,
            jobs: tickets,
        }))
    }

    /// Waits until an attempt has served each ticket: the attempts, in the
    /// tickets' order (a job removed meanwhile has none). Returns early only
    /// when the dispatcher stops (`Unavailable`): the work goes on, or is
    /// cut by the daemon's shutdown.
    pub async fn wait(&self, mut tickets: Tickets) -> Result<Vec<Attempt>, StoreError> {
        let mut ended: Vec<Option<Option<Attempt>>> = vec![None; tickets.jobs.len()];
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.reset();
        while ended.iter().any(Option::is_none) {
            let mut read_rows = false;
            tokio::select! {
                biased;
                _ = self.halted.cancelled() => {
                    return Err(StoreError::Unavailable(
                        "the daemon is stopping; the sync was left to finish within its shutdown grace: `fedsync sync runs NODE` shows how it ended".into(),
                    ));
                }
                landed = tickets.landed.recv() => match landed {
                    Ok(landed) => {
                        for (i, (job, seq)) in tickets.jobs.iter().enumerate() {
                            if ended[i].is_none() && job.id == landed.job && landed.served >= *seq {
                                ended[i] = Some(Some(landed.attempt.clone()));
                            }
                        }
                    }
                    // Missed some: the rows tell.
                    Err(RecvError::Lagged(_)) => read_rows = true,
                    Err(RecvError::Closed) => read_rows = true,
                },
                _ = poll.tick() => read_rows = true,
            }
            if read_rows {
                self.read_served(&tickets, &mut ended).await;
            }
        }
        Ok(ended.into_iter().flatten().flatten().collect())
    }

    /// Fills in the tickets whose job row says they were served (by an
    /// attempt on any replica), or whose job is gone.
    async fn read_served(&self, tickets: &Tickets, ended: &mut [Option<Option<Attempt>>]) {
        for (i, (job, seq)) in tickets.jobs.iter().enumerate() {
            if ended[i].is_some() {
                continue;
            }
            match self.store.get_job(job.id).await {
                Ok(None) => ended[i] = Some(None),
                Ok(Some(row)) if row.served_seq >= *seq => {
                    let run = match row.last_run_id {
                        Some(id) => self.store.get_sync_run(id).await.ok().flatten(),
                        None => None,
                    };
                    ended[i] = Some(Some(from_row(&row, run)));
                }
                Ok(Some(_)) => {}
                // The store is down: an attempt of ours is heard anyway.
                Err(error) => tracing::debug!(error = %error, "cannot read a triggered job"),
            }
        }
    }

    /// `sync now`: runs the node's jobs of `kind` (one shared module with
    /// `only`) at once, or once more right after the run in progress, and
    /// waits for the attempts. `None` when the node has no such job.
    pub async fn run_now(
        &self,
        node_id: NodeId,
        kind: SyncKind,
        only: Option<Id>,
    ) -> Result<Option<Vec<Attempt>>, StoreError> {
        let request = TriggerRequest {
            reason: "manual",
            reset: false,
            join: false,
        };
        match self.trigger(node_id, kind, only, request).await? {
            None => Ok(None),
            Some(tickets) => self.wait(tickets).await.map(Some),
        }
    }
}

/// An attempt as its job row tells it (it ran on another replica).
fn from_row(job: &SyncJob, run: Option<crate::domain::SyncRun>) -> Attempt {
    let verdict = match (&run, job.state) {
        (Some(run), _) if run.status == RunStatus::Succeeded => Verdict::Succeeded,
        (_, JobState::Stopped) => Verdict::Stop(job.stop_reason.clone()),
        (Some(run), _) if run.status == RunStatus::Failed => Verdict::Retry(run.error.clone()),
        (None, JobState::Retrying) => Verdict::Retry(job.last_error.clone()),
        _ => Verdict::Succeeded,
    };
    Attempt {
        run,
        verdict,
        store_down: false,
    }
}
