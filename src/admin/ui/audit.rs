//! The audit log, newest first, filtered by node.

use axum::extract::{Query, State};
use maud::html;
use serde::Deserialize;

use super::errors::{Answer, UiError};
use super::layout::{self, badge, time};
use super::session::Session;
use crate::admin::server::AdminState;
use crate::domain::{self, AuditFilter, NodeFilter, NodeId};

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    node: Option<String>,
}

pub async fn page(
    State(state): State<AdminState>,
    session: Session,
    Query(query): Query<AuditQuery>,
) -> Answer {
    let node_id = match query.node.as_deref().filter(|n| !n.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<u64>()
                .ok()
                .and_then(NodeId::from_u64)
                .ok_or_else(|| UiError::bad(format!("`{text}` is not a node id")))?,
        ),
    };
    let events = state
        .store
        .list_audit(&AuditFilter {
            node_id,
            limit: 200,
        })
        .await?;
    let nodes = state
        .store
        .list_nodes(&NodeFilter {
            include_deleted: true,
            ..Default::default()
        })
        .await?;
    let now = domain::now();
    let body = html! {
        h1 { "Audit log" }
        form.card method="get" action="/ui/audit" {
            label for="node" { "Node" }
            select #node name="node" {
                option value="" { "every node" }
                @for n in &nodes { option value=(n.id) selected[node_id == Some(n.id)] { (n.name) " (" (n.id) ")" } }
            }
            div.actions { button.secondary type="submit" { "Show" } }
        }
        @if events.is_empty() { p.muted { "No events." } }
        @else {
            div.table-wrap { table #audit {
                thead { tr { th { "When" } th { "Event" } th { "Result" } th { "Node" } th { "Who" } th.hide-narrow { "From" } th { "Reason" } } }
                tbody { @for e in &events { tr {
                    td { (time(Some(e.at), now)) }
                    td { code { (e.event) } }
                    td { (badge(e.result.as_str())) }
                    td { @if let Some(n) = e.node_id { a href={ "/ui/nodes/" (n) } { (n) } } }
                    td { (e.actor) }
                    td.hide-narrow { (e.source_addr) }
                    td.err { (e.reason) }
                } } }
            } }
        }
    };
    Ok(layout::respond("Audit log", &session, body))
}
