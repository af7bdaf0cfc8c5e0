//! `Sync now` from the console. Without script, the form starts the node's
//! jobs (`sync now --no-wait`) and shows the node again. With the page's
//! script, the same POST to `.../sync/follow` answers with server-sent
//! events fed by the progress stream of `sync now --follow`
//! (`admin::sync_now::follow`): one `progress` event per run snapshot, then
//! `done` with the finished runs, or `error`. The work is the daemon's: a
//! tab closed mid-sync ends the stream, and its task stops waiting, the
//! sync goes on.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use tokio_stream::StreamExt;

use super::errors::{Answer, UiError};
use super::form::FormData;
use super::node::{live_node, node_url};
use crate::admin::proto::v1;
use crate::admin::server::AdminState;
use crate::admin::sync_now;
use crate::domain::SyncKind;

fn kind(form: &FormData) -> Result<SyncKind, UiError> {
    SyncKind::parse(form.get("kind")).map_err(|e| UiError::bad(e.to_string()))
}

/// `POST .../sync` (no script): records the triggers and returns.
pub async fn start(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    form: FormData,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let kind = kind(&form)?;
    sync_now::start_jobs(&state, node.id, kind, None, sync_now::manual(false)).await?;
    Ok(Redirect::to(&format!("{}?done=sync", node_url(node.id))).into_response())
}

/// `POST .../sync/follow`: the progress as server-sent events.
pub async fn follow(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    form: FormData,
) -> Result<Response, UiError> {
    let node = live_node(&state, &id).await?;
    let kind = kind(&form)?;
    let stream = sync_now::follow(state, node.id, kind).map(|item| {
        Ok::<Event, Infallible>(match item {
            Ok(progress) => progress_event(progress),
            Err(status) => Event::default()
                .event("error")
                .data(json!({ "message": status.message() }).to_string()),
        })
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn progress_event(progress: v1::SyncProgress) -> Event {
    if let Some(done) = progress.done {
        let failed: Vec<&v1::SyncRun> = done
            .runs
            .iter()
            .filter(|r| r.status != "succeeded")
            .collect();
        let records: u64 = done
            .runs
            .iter()
            .map(|r| r.created + r.updated + r.deleted)
            .sum();
        let summary = match failed.first() {
            None => format!(
                "{} run{} succeeded, {records} records written",
                done.runs.len(),
                if done.runs.len() == 1 { "" } else { "s" }
            ),
            Some(run) => format!("a run failed: {}", run.error),
        };
        return Event::default().event("done").data(
            json!({ "ok": failed.is_empty(), "summary": summary, "runs": done.runs.len() })
                .to_string(),
        );
    }
    let run = progress.run.unwrap_or_default();
    let records = run.created + run.updated + run.deleted + run.skipped + run.errors;
    Event::default().event("progress").data(
        json!({
            "runId": run.id.to_string(),
            "kind": run.kind,
            "sharedModuleId": run.shared_module_id.to_string(),
            "status": run.status,
            "pages": run.pages,
            "records": records,
            "total": progress.total,
        })
        .to_string(),
    )
}
