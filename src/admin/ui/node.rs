//! A node's page: its details, the pairing actions that fit its state, its
//! schedules and jobs, its recent runs, and `sync now` with a live
//! progress bar. The actions are in `node_actions.rs`.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};

use super::errors::{Answer, UiError};
use super::layout::{self, action, badge, csrf_field, time};
use super::overview::Notice;
use super::session::Session;
use crate::admin::server::AdminState;
use crate::domain::{self, Node, NodeId, PairingStatus, Role, SyncJob, SyncRun, Timestamp};
use crate::sync::IssuedUri;

pub use super::node_actions::{
    check, confirm, confirm_remove, invite, new_uri, pair, pause, refuse, remove, resume, schedule,
};

/// The node a path names; a removed node is gone.
pub async fn live_node(state: &AdminState, text: &str) -> Result<Node, UiError> {
    let id = text
        .parse::<u64>()
        .ok()
        .and_then(NodeId::from_u64)
        .ok_or_else(|| UiError::bad(format!("`{text}` is not a node id")))?;
    state
        .store
        .get_node(id)
        .await?
        .filter(|n| n.deleted_at.is_none())
        .ok_or_else(|| UiError::not_found(format!("node {id} does not exist")))
}

pub fn node_url(id: NodeId) -> String {
    format!("/ui/nodes/{id}")
}

pub async fn page(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    render(&state, &session, &node, None, notice.done.as_deref(), None).await
}

/// The node page, with a node URI just issued (shown once) or the outcome
/// of a check.
pub async fn render(
    state: &AdminState,
    session: &Session,
    node: &Node,
    uri: Option<&IssuedUri>,
    notice: Option<&str>,
    said: Option<&str>,
) -> Answer {
    let (structure, data) = state.store.node_schedule(node.id).await?;
    let jobs = state.store.list_jobs(Some(node.id)).await?;
    let runs = state.store.list_sync_runs(node.id, 20).await?;
    let now = domain::now();
    let body = html! {
        h1 { (node.name) " " (badge(node.status.as_str())) }
        (layout::notice(notice))
        @if let Some(text) = said { p.notice role="status" { (text) } }
        @if let Some(uri) = uri { (uri_panel(uri, now)) }
        nav.actions aria-label="This node" {
            a href={ (node_url(node.id)) "/exposures" } { "Exposed to it" }
            a href={ (node_url(node.id)) "/shared" } { "Shared by it, and mapping" }
            a href={ "/ui/audit?node=" (node.id) } { "Audit log" }
        }
        div.grid2 {
            section.card { h2 { "Details" } (details(node, now)) }
            section.card { h2 { "Pairing" } (pairing_actions(session, node, now)) }
        }
        @if node.status == PairingStatus::Paired {
            section.card { h2 { "Sync now" } (sync_now(session, node)) }
        }
        section.card {
            h2 { "Schedule" }
            (schedule_form(session, node, &structure, &data))
        }
        h2 { "Jobs" }
        (jobs_table(&jobs, now))
        h2 { "Recent runs" }
        (runs_table(&runs, now))
    };
    Ok(respond(session, &node.name, body))
}

fn respond(session: &Session, title: &str, body: Markup) -> Response {
    layout::respond(title, session, body)
}

fn uri_panel(uri: &IssuedUri, now: Timestamp) -> Markup {
    html! {
        section.card #node-uri {
            h2 { "Node URI" }
            p { "A secret, valid until " (time(Some(uri.expires_at), now)) " and shown only now: give it to the peer's admin over a secure channel. They paste it into " em { "Add a peer" } " on their console (or run " code { "fedsync node add-uri" } ")." }
            div.uri {
                input #uri-value type="text" readonly value=(uri.uri.as_str()) aria-label="Node URI";
                button.secondary type="button" data-copy="uri-value" hidden { "Copy" }
            }
        }
    }
}

fn details(node: &Node, now: Timestamp) -> Markup {
    html! {
        dl.facts {
            dt { "Node id" } dd { (node.id) }
            dt { "Base URL" } dd { (node.base_url) }
            @if !node.contact.is_empty() { dt { "Contact" } dd { (node.contact) } }
            dt { "Role" } dd { @match node.role { Role::Inviter => "we invited it", Role::Invitee => "it invited us" } }
            dt { "Status" } dd { (badge(node.status.as_str())) @if !node.status_reason.is_empty() { " " (node.status_reason) } }
            @if let Some(shared) = node.shared_node_id { dt { "Inviter's node id" } dd { (shared) } }
            dt { "Peer" } dd { (node.peer_kind.as_str()) }
            dt { "Structure" } dd { (badge(node.structure_status.as_str())) " " (time(node.structure_synced_at, now)) }
            @if !node.structure_error.is_empty() { dt { "Structure error" } dd.err { (node.structure_error) } }
            dt { "Data" } dd { (badge(node.data_status.as_str())) " " (time(node.data_synced_at, now)) }
            @if !node.data_error.is_empty() { dt { "Data error" } dd.err { (node.data_error) } }
            @if !node.peer_token_fingerprint.is_empty() { dt { "Peer token" } dd { code { (node.peer_token_fingerprint) } } }
            dt { "Created" } dd { (time(Some(node.created_at), now)) }
        }
    }
}

fn pairing_actions(session: &Session, node: &Node, now: Timestamp) -> Markup {
    let url = node_url(node.id);
    let link = |action: &str| format!("{url}/{action}");
    html! {
        @match (node.role, node.status) {
            (Role::Inviter, PairingStatus::PairRequested) => {
                p #handshake {
                    "Handshake request received " (time(node.handshake_requested_at, now))
                    " from " code { (node.handshake_source_addr) } ". Approve it if the peer is who you invited."
                }
                div.actions {
                    (action(session, &link("confirm"), "Approve", ""))
                    (action(session, &link("refuse"), "Refuse", "danger"))
                }
            }
            (Role::Inviter, status) => {
                p { @if status == PairingStatus::Pending {
                        "Waiting for the peer's handshake request. Issue a node URI for its admin (the previous one stops working)."
                    } @else {
                        "A new node URI starts re-pairing: the node waits for a new handshake; exposures, mappings and records stay."
                    } }
                div.actions { (action(session, &link("uri"), "New node URI", "secondary")) }
                form.card method="post" action=(link("invite")) {
                    (csrf_field(session))
                    label for="invite-email" { "Or email a new node URI to" }
                    input #invite-email type="email" name="email" required;
                    button type="submit" disabled[!session.can_write()] { "Send invitation" }
                }
            }
            (Role::Invitee, PairingStatus::Pending | PairingStatus::Failed) => {
                p { "Send the handshake request to the inviter; its admin then approves it." }
                div.actions { (action(session, &link("pair"), "Pair", "")) }
            }
            (Role::Invitee, PairingStatus::PairRequested) => {
                p { "The inviter accepted the request; its admin now approves it." }
            }
            (Role::Invitee, PairingStatus::Paired) => {}
        }
        @if node.status == PairingStatus::Paired {
            div.actions { (action(session, &link("check"), "Check", "secondary")) }
        }
        div.actions {
            @if node.paused {
                (action(session, &link("resume"), "Resume scheduled syncs", "secondary"))
            } @else {
                (action(session, &link("pause"), "Pause scheduled syncs", "secondary"))
            }
            a.button href=(link("remove")) { "Remove…" }
        }
    }
}

fn sync_now(session: &Session, node: &Node) -> Markup {
    let url = node_url(node.id);
    html! {
        form.actions method="post" action={ (url) "/sync" } data-follow={ (url) "/sync/follow" } {
            (csrf_field(session))
            button name="kind" value="structure" type="submit" disabled[!session.can_write()] { "Sync structure now" }
            button name="kind" value="data" type="submit" disabled[!session.can_write()] { "Sync data now" }
        }
        div.progress #sync-bar role="progressbar" aria-label="Sync progress" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0" hidden { div.fill {} }
        p #sync-label aria-live="polite" {}
        p { a #sync-reload href=(url) hidden { "Reload to see the runs" } }
    }
}

fn schedule_form(session: &Session, node: &Node, structure: &str, data: &str) -> Markup {
    html! {
        form method="post" action={ (node_url(node.id)) "/schedule" } {
            (csrf_field(session))
            p.muted { "An interval (30s, 5m) or a cron expression in UTC (*/5 * * * *); empty restores the default." }
            label for="structure" { "Structure" }
            input #structure type="text" name="structure" value=(structure) placeholder="default";
            label for="data" { "Data" }
            input #data type="text" name="data" value=(data) placeholder="default";
            div.actions { button type="submit" disabled[!session.can_write()] { "Save schedules" } }
        }
    }
}

fn jobs_table(jobs: &[SyncJob], now: Timestamp) -> Markup {
    html! {
        @if jobs.is_empty() { p.muted { "No jobs: a node has them once paired (data jobs once a shared module is mapped)." } }
        @else {
            div.table-wrap { table #jobs {
                thead { tr { th { "Kind" } th { "Shared module" } th { "State" } th { "Next run" } th { "Last success" } th { "Last error" } } }
                tbody { @for job in jobs { tr {
                    td { (job.kind.as_str()) }
                    td { @if let Some(m) = job.shared_module_id { (m) } }
                    td { (badge(job.state.as_str())) }
                    td { (time(Some(job.next_run_at), now)) }
                    td { (time(job.last_success_at, now)) }
                    td.err { (job.last_error) @if !job.stop_reason.is_empty() { " " (job.stop_reason) } }
                } } }
            } }
        }
    }
}

fn runs_table(runs: &[SyncRun], now: Timestamp) -> Markup {
    html! {
        @if runs.is_empty() { p.muted { "No runs yet." } }
        @else {
            div.table-wrap { table #runs {
                thead { tr { th { "Started" } th { "Kind" } th { "Status" } th { "Pages" } th { "Created" } th { "Updated" } th { "Deleted" } th { "Errors" } th { "Error" } } }
                tbody { @for run in runs { tr {
                    td { (time(Some(run.started_at), now)) }
                    td { (run.kind.as_str()) }
                    td { (badge(run.status.as_str())) }
                    td { (run.counts.pages) }
                    td { (run.counts.created) }
                    td { (run.counts.updated) }
                    td { (run.counts.deleted) }
                    td { (run.counts.errors) }
                    td.err { (run.error) }
                } } }
            } }
        }
    }
}
