//! `fedsync sync ...`: run syncs now and see how syncs went.
//!
//! `sync now` and `sync reset` wait for the work as long as it runs (no
//! deadline); Ctrl-C stops the waiting, not the work, which belongs to the
//! daemon. With `--no-wait` they return at once with the jobs started.

use anyhow::anyhow;
use tonic::transport::Channel;

use super::GlobalArgs;
use super::catalog::SyncCommand;
use super::client::{RpcError, Target, authorized, parse_id, resolve};
use super::connect::{connect, connect_waiting};
use super::follow::{Display, Follower};
use super::output;
use super::wait::{CtrlC, Work, wait_for};
use crate::admin::proto::v1;

type Client = v1::sync_service_client::SyncServiceClient<Channel>;

pub async fn sync(global: &GlobalArgs, command: &SyncCommand) -> anyhow::Result<()> {
    let target = resolve(global)?;
    let waits = matches!(
        command,
        SyncCommand::Now { no_wait: false, .. } | SyncCommand::Reset { no_wait: false, .. }
    );
    let channel = if waits {
        connect_waiting(&target).await?
    } else {
        connect(&target).await?
    };
    let mut client = Client::new(channel);
    let json = global.json;
    match command {
        SyncCommand::Now {
            node,
            kind,
            follow,
            no_wait,
        } => {
            let request = v1::SyncNowRequest {
                node_id: parse_id(node)?,
                kind: kind.clone(),
                no_wait: *no_wait,
            };
            now(&mut client, &target, request, *follow, json).await?;
        }
        SyncCommand::Reset {
            node,
            shared,
            no_wait,
        } => {
            let request = v1::ResetSyncRequest {
                node_id: parse_id(node)?,
                shared: shared.clone().unwrap_or_default(),
                no_wait: *no_wait,
            };
            reset(&mut client, &target, request, json).await?;
        }
        SyncCommand::Errors { run } => {
            let request = v1::ListRunErrorsRequest {
                run_id: parse_id(run)?,
            };
            let errors = client
                .list_run_errors(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::run_errors(json, &errors.into_inner().errors);
        }
        SyncCommand::Status { node } => {
            let node_id = node.as_deref().map(parse_id).transpose()?.unwrap_or(0);
            let status = client
                .get_sync_status(authorized(&target, v1::GetSyncStatusRequest { node_id })?)
                .await
                .map_err(RpcError::from)?;
            output::sync_status(json, &status.into_inner());
        }
        SyncCommand::Runs { node, limit } => {
            let request = v1::ListSyncRunsRequest {
                node_id: parse_id(node)?,
                limit: *limit,
            };
            let runs = client
                .list_sync_runs(authorized(&target, request)?)
                .await
                .map_err(RpcError::from)?;
            output::runs(json, &runs.into_inner().runs);
        }
    }
    Ok(())
}

/// `sync now`: waits for the runs (or follows them), or with `--no-wait`
/// prints the jobs started.
async fn now(
    client: &mut Client,
    target: &Target,
    request: v1::SyncNowRequest,
    follow: bool,
    json: bool,
) -> anyhow::Result<()> {
    let (node_id, kind) = (request.node_id, request.kind.clone());
    if request.no_wait {
        let response = client
            .sync_now(authorized(target, request)?)
            .await
            .map_err(RpcError::from)?;
        output::started_jobs(json, node_id, &response.into_inner().started);
        return Ok(());
    }
    let work = Work::sync(node_id, &kind);
    let runs = if follow {
        follow_runs(client, target, request, &work, json).await?
    } else {
        let call = client.sync_now(authorized(target, request)?);
        wait_for(&work, call)
            .await?
            .map_err(RpcError::from)?
            .into_inner()
            .runs
    };
    // A structure sync is one run (the shape `sync now` always had);
    // a data sync is one run per mapped shared module.
    match (kind.as_str(), runs.as_slice()) {
        // JSON lines throughout: the runs are the last line.
        _ if follow && json => output::runs_done_line(&runs),
        ("structure", [run]) => output::run(json, run),
        _ => output::runs_done(json, &runs),
    }
    failed_runs(&runs)
}

/// `sync now --follow`: shows each run's progress until the sync is done;
/// Ctrl-C leaves the display as it stands and stops following.
async fn follow_runs(
    client: &mut Client,
    target: &Target,
    request: v1::SyncNowRequest,
    work: &Work,
    json: bool,
) -> anyhow::Result<Vec<v1::SyncRun>> {
    let mut ctrl_c = CtrlC::listen();
    let call = client.follow_sync_now(authorized(target, request)?);
    let mut stream = ctrl_c
        .race(work, call)
        .await?
        .map_err(RpcError::from)?
        .into_inner();
    let mut follower = Follower::new(Display::detect(json));
    let stopped = |follower: &mut Follower, error: anyhow::Error| {
        follower.finish();
        error
    };
    loop {
        let message = match ctrl_c.race(work, stream.message()).await {
            Ok(Ok(message)) => message,
            Ok(Err(status)) => return Err(stopped(&mut follower, RpcError::from(status).into())),
            Err(interrupted) => return Err(stopped(&mut follower, interrupted.into())),
        };
        let Some(message) = message else {
            follower.finish();
            return Err(anyhow!("the daemon stopped before the sync finished"));
        };
        if let Some(done) = message.done {
            follower.finish();
            return Ok(done.runs);
        }
        if let Some(run) = message.run {
            follower.update(&run, message.total);
        }
    }
}

/// `sync reset`: waits for the runs, or with `--no-wait` prints the jobs
/// started.
async fn reset(
    client: &mut Client,
    target: &Target,
    request: v1::ResetSyncRequest,
    json: bool,
) -> anyhow::Result<()> {
    let node_id = request.node_id;
    if request.no_wait {
        let response = client
            .reset_sync(authorized(target, request)?)
            .await
            .map_err(RpcError::from)?;
        output::started_jobs(json, node_id, &response.into_inner().started);
        return Ok(());
    }
    let shared = Some(request.shared.clone()).filter(|s| !s.is_empty());
    let work = Work::reset(node_id, shared.as_deref());
    let call = client.reset_sync(authorized(target, request)?);
    let runs = wait_for(&work, call)
        .await?
        .map_err(RpcError::from)?
        .into_inner()
        .runs;
    output::runs_done(json, &runs);
    failed_runs(&runs)
}

/// Non-zero exit when any run failed, naming each.
fn failed_runs(runs: &[v1::SyncRun]) -> anyhow::Result<()> {
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| r.status != "succeeded")
        .map(|r| {
            let what = if r.shared_module_id == 0 {
                format!("the {} sync of node {}", r.kind, r.node_id)
            } else {
                format!(
                    "the {} sync of shared module {} of node {}",
                    r.kind, r.shared_module_id, r.node_id
                )
            };
            format!("{what} failed: {}", r.error)
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(failed.join("; ")))
    }
}
