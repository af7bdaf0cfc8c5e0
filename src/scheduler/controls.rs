//! What an admin changes about a node's jobs: its schedules, and pausing
//! or resuming it. One implementation under every edge (gRPC, the web
//! console).

use crate::domain::{JobState, NodeId};
use crate::store::StoreError;

use super::{Schedule, Scheduler};

/// Why a schedule change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A schedule does not parse; the text names the flag.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Scheduler {
    /// Sets a node's schedules (`None` keeps one; `""` restores the
    /// default), then matches its jobs to them and wakes the dispatcher.
    pub async fn set_schedule(
        &self,
        node_id: NodeId,
        structure: Option<&str>,
        data: Option<&str>,
    ) -> Result<(), ControlError> {
        for (flag, value) in [("--structure", structure), ("--data", data)] {
            if let Some(text) = value.filter(|t| !t.trim().is_empty()) {
                Schedule::parse(text).map_err(|e| ControlError::Invalid(format!("{flag}: {e}")))?;
            }
        }
        let (old_structure, old_data) = self.store.node_schedule(node_id).await?;
        self.store
            .set_node_schedule(
                node_id,
                structure.map(str::trim).unwrap_or(&old_structure),
                data.map(str::trim).unwrap_or(&old_data),
            )
            .await?;
        self.reconcile().await?;
        self.wake();
        Ok(())
    }

    /// Pauses or resumes a node's scheduled syncs; resuming also restarts
    /// the jobs stopped on an error.
    pub async fn set_paused(&self, node_id: NodeId, paused: bool) -> Result<(), StoreError> {
        self.store.set_node_paused(node_id, paused).await?;
        if !paused {
            let now = self.now();
            for mut job in self.store.list_jobs(Some(node_id)).await? {
                if job.state == JobState::Stopped {
                    job.state = JobState::Idle;
                    job.stop_reason.clear();
                    job.next_run_at = now;
                    job.updated_at = now;
                    self.store.update_job(&job, None).await?;
                }
            }
        }
        self.wake();
        Ok(())
    }
}
