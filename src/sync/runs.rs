//! Runs left `running` by a daemon process that died (kill -9, OOM, power
//! loss). Each run records its owner (the id-lease owner name of the process
//! running it); at start-up, a run whose owner holds no live lease, or is
//! provably gone from this host, is closed as failed, and the node's sync
//! state for that kind stops saying `syncing`. Its work is safe to redo: data
//! pages commit with their cursor, structure pages are idempotent. Job
//! leases such a process held are freed the same way.

use crate::domain::{self, JobState, RunStatus, SyncKind, SyncRun, SyncStatus};
use crate::store::{Store, StoreError};

pub const INTERRUPTED: &str = "interrupted: the daemon process running it stopped";

/// How long a write that records an attempt's end may wait once the store
/// has failed in that attempt. The pool would wait its full acquire timeout
/// for each of them (the run, the audit event, the node state, the job), so
/// an admin's `sync now` answered only after four of those; an end that
/// cannot be written now is closed later (`close_unrecorded`).
pub const STORE_DOWN_WRITE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether an attempt failed because the store did (unreachable or busy).
pub fn store_failed(error: &super::structure::SyncError) -> bool {
    matches!(error, super::structure::SyncError::Store(e) if e.is_retriable())
}

/// `write`, given at most [`STORE_DOWN_WRITE`] when `store_down`.
pub async fn bounded_if_down<T>(
    store_down: bool,
    write: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    if !store_down {
        return write.await;
    }
    tokio::time::timeout(STORE_DOWN_WRITE, write)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "still unreachable; the end of the attempt is written once it is back (gave up after {} s)",
                STORE_DOWN_WRITE.as_secs()
            )))
        })
}

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
    let mut reclaimed = 0;
    for run in store.list_running_sync_runs().await? {
        if dead(&run.owner) {
            close(store, run, INTERRUPTED, true).await?;
            reclaimed += 1;
        }
    }
    Ok(reclaimed)
}

pub const UNRECORDED: &str = "interrupted: the attempt ended without recording its outcome \
     (the store failed as it ended, or the job's lease was lost)";

/// Closes the runs this process left `running` because their attempt
/// ended without writing its outcome (the store failed as it ended, or the
/// job's lease was lost and the attempt was dropped). `since` is a time
/// taken after `live`'s picture of the attempts in flight: a run started
/// before it that `live` does not claim belongs to an attempt that has
/// ended. `idle(run)` says whether no attempt of the
/// run's job is in flight now (then its node's `syncing` state is closed
/// too). Returns how many runs were closed.
pub async fn close_unrecorded(
    store: &dyn Store,
    ours: &str,
    since: domain::Timestamp,
    live: impl Fn(&SyncRun) -> bool,
    idle: impl Fn(&SyncRun) -> bool,
) -> Result<usize, StoreError> {
    let mut closed = 0;
    for run in store.list_running_sync_runs().await? {
        if run.owner == ours && run.started_at < since && !live(&run) {
            let state_too = idle(&run);
            close(store, run, UNRECORDED, state_too).await?;
            closed += 1;
        }
    }
    Ok(closed)
}

/// Marks a run failed with `why`; with `state_too`, its node's sync state
/// for the kind stops saying `syncing`.
async fn close(
    store: &dyn Store,
    mut run: SyncRun,
    why: &str,
    state_too: bool,
) -> Result<(), StoreError> {
    run.status = RunStatus::Failed;
    run.finished_at = Some(domain::now());
    run.error = why.to_owned();
    store.finish_sync_run(&run).await?;
    if state_too && let Some(node) = store.get_node(run.node_id).await? {
        let status = match run.kind {
            SyncKind::Structure => node.structure_status,
            SyncKind::Data => node.data_status,
        };
        if status == SyncStatus::Syncing {
            store
                .set_sync_state(run.node_id, run.kind, SyncStatus::Failed, None, why)
                .await?;
        }
    }
    tracing::warn!(
        run = %run.id,
        node = %run.node_id,
        kind = run.kind.as_str(),
        reason = why,
        "closed a sync run left running"
    );
    Ok(())
}

/// How long a finished run took, in milliseconds (for its log line).
pub fn run_ms(run: &crate::domain::SyncRun) -> i64 {
    run.finished_at
        .map(|end| (end - run.started_at).num_milliseconds())
        .unwrap_or_default()
}
