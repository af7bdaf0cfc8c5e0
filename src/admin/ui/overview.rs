//! The overview: every node with its status, structure and data status,
//! last success and last error, from one store statement
//! (`status_snapshot`, as `sync status` reads it); a banner for handshake
//! requests that wait for approval.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::errors::Answer;
use super::layout::{self, badge, time};
use super::session::Session;
use crate::admin::server::AdminState;
use crate::domain::{self, Node, PairingStatus, Role};

#[derive(Debug, Deserialize)]
pub struct Notice {
    #[serde(default)]
    pub done: Option<String>,
}

/// The later of the node's structure and data successes.
fn last_success(node: &Node) -> Option<domain::Timestamp> {
    node.structure_synced_at.max(node.data_synced_at)
}

/// The node's error to show: structure first (data waits on it).
fn last_error(node: &Node) -> &str {
    if !node.structure_error.is_empty() {
        &node.structure_error
    } else if !node.data_error.is_empty() {
        &node.data_error
    } else if node.status == PairingStatus::Failed {
        &node.status_reason
    } else {
        ""
    }
}

pub async fn page(
    State(state): State<AdminState>,
    session: Session,
    Query(notice): Query<Notice>,
) -> Answer {
    let snapshot = state.store.status_snapshot().await?;
    let now = domain::now();
    let nodes: Vec<&Node> = snapshot.nodes.iter().map(|(n, _, _)| n).collect();
    let waiting: Vec<&&Node> = nodes
        .iter()
        .filter(|n| n.status == PairingStatus::PairRequested && n.role == Role::Inviter)
        .collect();
    let body = html! {
        h1 { "Federated nodes" }
        (layout::notice(notice.done.as_deref()))
        @if !waiting.is_empty() {
            div.banner role="status" {
                strong { (waiting.len()) " handshake request" @if waiting.len() > 1 { "s" } " waiting for your approval: " }
                @for (i, node) in waiting.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href={ "/ui/nodes/" (node.id) } { (node.name) }
                }
            }
        }
        @if nodes.is_empty() {
            p.card { "No peers yet. " a href="/ui/peers/new" { "Add a peer" } " to invite one or to accept an invitation." }
        } @else {
            div.table-wrap {
                table #nodes {
                    thead { tr {
                        th { "Name" } th.hide-narrow { "Base URL" } th { "Status" }
                        th { "Structure" } th { "Data" } th { "Last success" } th { "Last error" }
                    } }
                    tbody {
                        @for node in &nodes {
                            tr data-node=(node.id) {
                                td { a href={ "/ui/nodes/" (node.id) } { (node.name) }
                                     @if node.paused { " " span.badge { "paused" } } }
                                td.hide-narrow { (node.base_url) }
                                td { (badge(node.status.as_str())) }
                                td { (badge(node.structure_status.as_str())) }
                                td { (badge(node.data_status.as_str())) }
                                td { (time(last_success(node), now)) }
                                td.err { (last_error(node)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(&session, body))
}

fn respond(session: &Session, body: maud::Markup) -> Response {
    layout::respond("Overview", session, body)
}
