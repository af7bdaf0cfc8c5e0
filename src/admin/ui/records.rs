//! Modules of the local data plane and a paged record browser, over the
//! record service's paged list (`ListRecords` with `limit` and `after`).

use axum::extract::{Path, Query, State};
use maud::html;
use serde::Deserialize;

use super::errors::Answer;
use super::layout::{self, time};
use super::session::Session;
use crate::admin::server::AdminState;
use crate::domain::{self, Id};

/// Records per page of the browser.
const PAGE: u32 = 50;

pub async fn modules(State(state): State<AdminState>, session: Session) -> Answer {
    let modules = state.catalog.list_modules().await?;
    let body = html! {
        h1 { "Modules" }
        p.muted { "The modules of this node's data plane (" code { "fedsync module create" } " makes more)." }
        @if modules.is_empty() { p.muted { "No modules yet." } }
        @else {
            div.table-wrap { table #modules {
                thead { tr { th { "Handle" } th { "Name" } th { "Fields" } } }
                tbody { @for m in &modules { tr {
                    td { a href={ "/ui/modules/" (m.id) } { (m.handle) } }
                    td { (m.name) }
                    td { @for (i, f) in m.fields.iter().enumerate() { @if i > 0 { ", " } (f.name) span.muted { " " (f.kind.as_str()) @if f.is_multi { " (multi)" } } } }
                } } }
            } }
        }
    };
    Ok(layout::respond("Modules", &session, body))
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    after: Option<u64>,
}

pub async fn browse(
    State(state): State<AdminState>,
    session: Session,
    Path(module): Path<String>,
    Query(query): Query<PageQuery>,
) -> Answer {
    let module = state.records.module(&module).await?;
    let after = query.after.and_then(Id::new);
    let records = state.records.list_page(&module, false, after, PAGE).await?;
    let now = domain::now();
    let next = (records.len() == PAGE as usize)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    let base = format!("/ui/modules/{}", module.id);
    let body = html! {
        h1 { "Records of " (module.handle) }
        p.muted { a href="/ui/modules" { "All modules" } }
        @if records.is_empty() { p.muted { "No records" @if after.is_some() { " after this point" } "." } }
        @else {
            div.table-wrap { table #records {
                thead { tr {
                    th { "Id" }
                    @for f in &module.fields { th { (f.name) } }
                    th { "From peer" } th { "Updated" }
                } }
                tbody { @for r in &records { tr {
                    td { (r.id) }
                    @for f in &module.fields {
                        td { @if let Some(values) = r.values.get(&f.name) { (values.join(", ")) } }
                    }
                    td { @if let Some(n) = r.origin_node_id { a href={ "/ui/nodes/" (n) } { (n) } } }
                    td { (time(Some(r.updated_at), now)) }
                } } }
            } }
        }
        nav.pager aria-label="Pages" {
            @if after.is_some() { a href=(base) { "First page" } }
            @if let Some(last) = next { a #next href={ (base) "?after=" (last) } { "Next page" } }
        }
    };
    Ok(layout::respond("Records", &session, body))
}
