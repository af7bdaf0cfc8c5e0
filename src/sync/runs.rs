//! Runs left `running` by a daemon process that died (kill -9, OOM, power
//! loss). Each run records its owner (the id-lease owner name of the process
//! running it); at start-up, a run whose owner holds no live lease, or is
//! provably gone from this host, is closed as failed, and the node's sync
//! state for that kind stops saying `syncing`. Its work is safe to redo: data
//! pages commit with their cursor, structure pages are idempotent. Job
//! leases such a process held are freed the same way.

use crate::domain::{self, JobState, RunStatus, SyncKind, SyncStatus};
use crate::store::{Store, StoreError};

pub const INTERRUPTED: &str = "interrupted: the daemon process running it stopped";

/// Closes the interrupted runs of other (dead) processes; returns how many.
/// `ours` is this process's owner name; `is_gone(owner, ours)` says whether
/// an owner is surely dead even if its lease has not expired yet.
pub async fn reclaim_interrupted(
    store: &dyn Store,
    ours: &str,
    is_gone: impl Fn(&str, &str) -> bool,
) -> Result<usize, StoreError> {
    let now = domain::now();
    let live = store.live_instance_owners(now).await?;
    let dead =
        |owner: &str| owner != ours && (!live.iter().any(|o| o == owner) || is_gone(owner, ours));
    // Jobs a dead process held: free at once instead of when the lease ends.
    for mut job in store.list_jobs(None).await? {
        if job.lease_expires_at.is_some() && dead(&job.lease_owner) {
            job.lease_owner.clear();
            job.lease_expires_at = None;
            if job.state == JobState::Running {
                job.state = JobState::Idle;
            }
            job.updated_at = now;
            store.update_job(&job, None).await?;
        }
    }
    let running = store.list_running_sync_runs().await?;
    let mut reclaimed = 0;
    for mut run in running {
        if !dead(&run.owner) {
            continue;
        }
        run.status = RunStatus::Failed;
        run.finished_at = Some(now);
        run.error = INTERRUPTED.to_owned();
        store.finish_sync_run(&run).await?;
        if let Some(node) = store.get_node(run.node_id).await? {
            let status = match run.kind {
                SyncKind::Structure => node.structure_status,
                SyncKind::Data => node.data_status,
            };
            if status == SyncStatus::Syncing {
                store
                    .set_sync_state(run.node_id, run.kind, SyncStatus::Failed, None, INTERRUPTED)
                    .await?;
            }
        }
        tracing::warn!(
            run = %run.id,
            node = %run.node_id,
            kind = run.kind.as_str(),
            "closed a sync run left running by a daemon process that stopped"
        );
        reclaimed += 1;
    }
    Ok(reclaimed)
}

/// How long a finished run took, in milliseconds (for its log line).
pub fn run_ms(run: &crate::domain::SyncRun) -> i64 {
    run.finished_at
        .map(|end| (end - run.started_at).num_milliseconds())
        .unwrap_or_default()
}
