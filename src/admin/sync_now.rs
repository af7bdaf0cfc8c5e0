//! `sync now`, `sync now --follow` and `sync reset` over the scheduler: the
//! request records triggers in the job rows and waits for the attempts that
//! serve them; the attempts are the daemon's, so a caller that goes away
//! (Ctrl-C, a timeout, a dropped connection) changes nothing.

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::proto::{self, v1};
use super::server::AdminState;
use super::status::{from_store, from_sync};
use crate::domain::{Id, NodeId, SyncKind, SyncRun};
use crate::scheduler::{Attempt, Verdict};
use crate::store::TriggerRequest;

/// What a request asks of the node's jobs.
pub(super) fn manual(join: bool) -> TriggerRequest<'static> {
    TriggerRequest {
        reason: "manual",
        reset: false,
        join,
    }
}

pub(super) const RESET: TriggerRequest<'static> = TriggerRequest {
    reason: "manual",
    reset: true,
    join: false,
};

/// Runs the node's jobs of `kind` (one shared module with `only`) through
/// their rows and waits for them: the finished runs (failed ones included).
pub(super) async fn run_jobs(
    state: &AdminState,
    node_id: NodeId,
    kind: SyncKind,
    only: Option<Id>,
    request: TriggerRequest<'_>,
) -> Result<Vec<SyncRun>, Status> {
    let scheduler = &state.scheduler;
    let Some(tickets) = scheduler
        .trigger(node_id, kind, only, request)
        .await
        .map_err(from_store)?
    else {
        return Err(why_not(state, node_id, kind).await);
    };
    let attempts = scheduler.wait(tickets).await.map_err(from_store)?;
    let runs = runs_of(attempts)?;
    if runs.is_empty() {
        // The jobs went away meanwhile (the node was unpaired or unmapped).
        return Err(why_not(state, node_id, kind).await);
    }
    Ok(runs)
}

/// `--no-wait`: records the triggers and returns the jobs started.
pub(super) async fn start_jobs(
    state: &AdminState,
    node_id: NodeId,
    kind: SyncKind,
    only: Option<Id>,
    request: TriggerRequest<'_>,
) -> Result<Vec<v1::Job>, Status> {
    match state
        .scheduler
        .trigger(node_id, kind, only, request)
        .await
        .map_err(from_store)?
    {
        Some(tickets) => Ok(tickets
            .jobs
            .iter()
            .map(|(job, _)| proto::job(job))
            .collect()),
        None => Err(why_not(state, node_id, kind).await),
    }
}

/// The runs of finished attempts; an attempt that recorded no run fails
/// the call with its reason.
fn runs_of(attempts: Vec<Attempt>) -> Result<Vec<SyncRun>, Status> {
    let mut runs = Vec::new();
    for attempt in attempts {
        match (attempt.run, attempt.verdict) {
            (Some(run), _) => runs.push(run),
            (None, Verdict::Stop(why) | Verdict::Retry(why) | Verdict::RetryAfter(why, _)) => {
                return Err(Status::failed_precondition(why));
            }
            (None, Verdict::Succeeded) => {}
        }
    }
    Ok(runs)
}

/// Why the node has no job of `kind` to run (one shared module with
/// `only`): not there, not paired, or nothing mapped; said as the pull
/// itself says it.
async fn why_not(state: &AdminState, node_id: NodeId, kind: SyncKind) -> Status {
    use crate::domain::PairingStatus;
    use crate::sync::structure::SyncError;
    let node = match state.store.get_node(node_id).await {
        Ok(node) => node.filter(|n| n.deleted_at.is_none()),
        Err(error) => return from_store(error),
    };
    let error = match node {
        None => SyncError::NotFound(node_id),
        Some(node) if node.status != PairingStatus::Paired => SyncError::WrongState(format!(
            "node {node_id} is {}, not paired; {} is pulled only from paired nodes",
            node.status.as_str(),
            kind.as_str()
        )),
        Some(_) if kind == SyncKind::Data => SyncError::WrongState(format!(
            "node {node_id} has no mapped shared module to pull; map one with `fedsync map set`"
        )),
        Some(_) => {
            return Status::aborted(format!(
                "node {node_id} changed while its sync started; try again"
            ));
        }
    };
    from_sync(error)
}

/// `FollowSyncNow`: joins the node's unserved triggers (or records new
/// ones), streams each run's progress, then the finished runs. The stream's
/// task waits for the work; the work is not its own.
pub(super) fn follow(
    state: AdminState,
    node_id: NodeId,
    kind: SyncKind,
) -> ReceiverStream<Result<v1::SyncProgress, Status>> {
    // Subscribed before the work starts, so no page goes unseen.
    let mut events = state.data.progress().subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let work = state.work.clone();
    drop(work.start(async move {
        let waited = run_jobs(&state, node_id, kind, None, manual(true));
        tokio::pin!(waited);
        let mut watching = true;
        // A slow watcher misses snapshots; the sync never waits for it.
        let forward = |p: crate::sync::progress::RunProgress| {
            if p.run.node_id == node_id && p.run.kind == kind {
                let _ = tx.try_send(Ok(v1::SyncProgress {
                    run: Some(proto::run(&p.run)),
                    total: p.total,
                    done: None,
                }));
            }
        };
        let result = loop {
            tokio::select! {
                biased;
                event = events.recv(), if watching => match event {
                    Ok(p) => forward(p),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => watching = false,
                },
                // The watcher left: stop waiting (the sync goes on).
                _ = tx.closed() => return,
                result = &mut waited => break result,
            }
        };
        // The work may publish its last snapshots and end within one poll
        // (its store calls answered at once): they are in the channel
        // already, and go before the result.
        loop {
            match events.try_recv() {
                Ok(p) => forward(p),
                Err(TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        let last = result.map(|runs| v1::SyncProgress {
            run: None,
            total: None,
            done: Some(v1::SyncNowResponse {
                runs: runs.iter().map(proto::run).collect(),
                started: Vec::new(),
            }),
        });
        let _ = tx.send(last).await;
    }));
    ReceiverStream::new(rx)
}
