//! What an attempt is and how it ended: the `JobRunner` the scheduler calls,
//! the verdict it turns an error into, and the real runner (structure and
//! data pulls).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{SyncJob, SyncKind, SyncRun};
use crate::sync::data::DataSync;
use crate::sync::structure::{StructureSync, SyncError};

/// How an attempt ended, for the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Succeeded,
    /// May pass later: back off and try again.
    Retry(String),
    /// May pass later, and the peer said when (`Retry-After`): back off at
    /// least that long (at most `MAX_RETRY_AFTER`).
    RetryAfter(String, Duration),
    /// Only an admin can fix it: the reason says what to do.
    Stop(String),
}

/// The longest `Retry-After` a peer can impose on a job.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What a job attempt did: its run (when one was recorded) and the verdict.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub run: Option<SyncRun>,
    pub verdict: Verdict,
    /// It failed because the store did: its outcome is written with a
    /// short deadline (`sync::runs::STORE_DOWN_WRITE`).
    pub store_down: bool,
}

impl Attempt {
    pub(super) fn ended(run: Option<SyncRun>, error: Option<SyncError>) -> Attempt {
        match error {
            None => Attempt {
                run,
                verdict: Verdict::Succeeded,
                store_down: false,
            },
            Some(error) => Attempt {
                run,
                verdict: classify(&error),
                store_down: crate::sync::runs::store_failed(&error),
            },
        }
    }
}

/// Runs one attempt of a job. `trigger` is what it serves, its run's
/// `trigger`: `schedule`, `manual`, or `reset` (pull everything again).
#[async_trait]
pub trait JobRunner: Send + Sync {
    async fn attempt(&self, job: &SyncJob, trigger: &str) -> Attempt;
}

/// Whether trying again later can help, and if not, what the admin must do.
pub fn classify(error: &SyncError) -> Verdict {
    match error {
        SyncError::Peer(e) if e.is_unauthorized() => Verdict::Stop(format!(
            "{e}; the peer no longer accepts our token: re-pair the node (`fedsync node uri ID` on the inviter)"
        )),
        SyncError::Peer(crate::sync::PeerError::Blocked(why)) => Verdict::Stop(format!(
            "not contacted: {why}; fix the node's base URL or the address policy"
        )),
        SyncError::Peer(
            e @ crate::sync::PeerError::Throttled {
                retry_after: Some(after),
                ..
            },
        ) => Verdict::RetryAfter(e.to_string(), *after),
        SyncError::Peer(e) => Verdict::Retry(e.to_string()),
        SyncError::Store(e) => Verdict::Retry(e.to_string()),
        SyncError::LocalUnavailable(e) => Verdict::Retry(e.clone()),
        SyncError::Protocol(e) => Verdict::Retry(e.clone()),
        SyncError::WrongState(e) => Verdict::Stop(e.clone()),
        SyncError::NotFound(id) => Verdict::Stop(format!("node {id} does not exist")),
    }
}

/// The real job runner: structure and data pulls.
pub struct SyncJobs {
    pub structure: Arc<StructureSync>,
    pub data: Arc<DataSync>,
}

#[async_trait]
impl JobRunner for SyncJobs {
    async fn attempt(&self, job: &SyncJob, trigger: &str) -> Attempt {
        match (job.kind, job.shared_module_id) {
            (SyncKind::Structure, _) => {
                let (run, error) = self.structure.run_attempt(job.node_id, trigger).await;
                Attempt::ended(run, error)
            }
            (SyncKind::Data, Some(shared)) => {
                let full = trigger == "reset";
                match self
                    .data
                    .run_shared(job.node_id, shared, trigger, full)
                    .await
                {
                    Ok((run, error)) => Attempt::ended(Some(run), error),
                    Err(error) => Attempt::ended(None, Some(error)),
                }
            }
            (SyncKind::Data, None) => Attempt {
                run: None,
                verdict: Verdict::Stop("a data job names no shared module".into()),
                store_down: false,
            },
        }
    }
}
