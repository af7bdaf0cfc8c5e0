//! What a node may read of ours (exposures: pick a module, tick its
//! fields) and what it shares with us (shared modules, and how each maps
//! onto a local module: per shared field, the local fields its kind
//! converts to; the reason when a mapping is broken). Over the catalog
//! service, as `fedsync expose` and `fedsync map` are.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;

use super::errors::{Answer, UiError};
use super::form::FormData;
use super::layout::{self, action, badge, csrf_field};
use super::node::{live_node, node_url};
use super::overview::Notice;
use super::session::Session;
use crate::admin::server::AdminState;
use crate::domain::{ExposedModule, LocalModule, ModuleField, Node};
use crate::sync::catalog::{CatalogError, MappingView, field_choices};

#[derive(Debug, Deserialize)]
pub struct Pick {
    #[serde(default)]
    module: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

fn field_list(fields: &[ModuleField]) -> Markup {
    html! { @for (i, f) in fields.iter().enumerate() { @if i > 0 { ", " } (f.name) span.muted { " " (f.kind) } } }
}

pub async fn exposures(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
    Query(pick): Query<Pick>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let key = node.id.to_string();
    let exposed = state.catalog.list_exposures(&key).await?;
    let modules = state.catalog.list_modules().await?;
    let chosen = match pick.module.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => Some(state.catalog.module(m).await?),
        None => None,
    };
    let url = format!("{}/exposures", node_url(node.id));
    let body = html! {
        h1 { "Exposed to " (node.name) }
        (layout::notice(pick.done.as_deref()))
        p.muted { "What this peer may read of our modules, field by field. " a href=(node_url(node.id)) { "Back to the node" } }
        @if exposed.is_empty() { p.muted { "Nothing is exposed to this node." } }
        @else {
            div.table-wrap { table #exposures {
                thead { tr { th { "Module" } th { "Fields" } th {} } }
                tbody { @for e in &exposed { tr {
                    td { (e.handle) }
                    td { (field_list(&e.fields)) }
                    td { a href={ (url) "?module=" (e.module_id) } { "Change" } " "
                         (action(&session, &format!("{url}/{}/remove", e.module_id), "Stop", "danger")) }
                } } }
            } }
        }
        h2 { "Expose a module" }
        form.card method="get" action=(url) {
            label for="module" { "Module" }
            select #module name="module" {
                @for m in &modules {
                    option value=(m.id) selected[chosen.as_ref().is_some_and(|c| c.id == m.id)] { (m.handle) }
                }
            }
            div.actions { button.secondary type="submit" { "Choose its fields" } }
        }
        @if let Some(module) = &chosen { (fields_form(&session, &url, module, &exposed)) }
    };
    Ok(layout::respond("Exposures", &session, body))
}

fn fields_form(
    session: &Session,
    url: &str,
    module: &LocalModule,
    exposed: &[ExposedModule],
) -> Markup {
    let current = exposed.iter().find(|e| e.module_id == module.id);
    let ticked = |name: &str| current.is_some_and(|e| e.fields.iter().any(|f| f.name == name));
    html! {
        form.card #expose method="post" action=(url) {
            (csrf_field(session))
            input type="hidden" name="module" value=(module.id);
            fieldset {
                legend { "Fields of " (module.handle) " the peer may read" }
                @for f in &module.fields {
                    label.check { input type="checkbox" name="field" value=(f.name) checked[ticked(&f.name)]; (f.name) span.muted { (f.kind.as_str()) } }
                }
            }
            div.actions { button type="submit" disabled[!session.can_write()] {
                @if current.is_some() { "Save the exposed fields" } @else { "Expose" } } }
        }
    }
}

pub async fn expose(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
    form: FormData,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let key = node.id.to_string();
    let module = state.catalog.module(form.get("module")).await?;
    let fields = form.all("field");
    let exists = state
        .catalog
        .list_exposures(&key)
        .await?
        .iter()
        .any(|e| e.module_id == module.id);
    let module_key = module.id.to_string();
    let actor = session.actor();
    if exists {
        state
            .catalog
            .update_exposure(&actor, &key, &module_key, &fields)
            .await?;
    } else {
        state
            .catalog
            .expose(&actor, &key, &module_key, &fields)
            .await?;
    }
    Ok(Redirect::to(&format!("{}/exposures?done=exposed", node_url(node.id))).into_response())
}

pub async fn unexpose(
    State(state): State<AdminState>,
    session: Session,
    Path((id, module)): Path<(String, String)>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    state
        .catalog
        .unexpose(&session.actor(), &node.id.to_string(), &module)
        .await?;
    Ok(Redirect::to(&format!("{}/exposures?done=unexposed", node_url(node.id))).into_response())
}

/// The mapping of a shared module, if it has one.
async fn mapping_of(
    state: &AdminState,
    node: &Node,
    shared: &str,
) -> Result<Option<MappingView>, UiError> {
    match state.catalog.mapping(&node.id.to_string(), shared).await {
        Ok(view) => Ok(Some(view)),
        Err(CatalogError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub async fn shared_list(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let shared = state
        .catalog
        .list_shared(&node.id.to_string(), false)
        .await?;
    let mut rows = Vec::with_capacity(shared.len());
    for m in shared {
        let mapping = mapping_of(&state, &node, &m.id.to_string()).await?;
        rows.push((m, mapping));
    }
    let url = node_url(node.id);
    let body = html! {
        h1 { "Shared by " (node.name) }
        (layout::notice(notice.done.as_deref()))
        p.muted { "The modules this peer exposes to us (pulled by a structure sync), and where each lands. " a href=(url) { "Back to the node" } }
        @if rows.is_empty() { p.muted { "Nothing shared yet: the peer exposes modules, then a structure sync brings them here." } }
        @else {
            div.table-wrap { table #shared {
                thead { tr { th { "Shared module" } th { "Fields" } th { "Mapping" } } }
                tbody { @for (m, mapping) in &rows { tr {
                    td { a href={ (url) "/shared/" (m.id) } { (m.handle) } " " span.muted { (m.name) } }
                    td { (field_list(&m.fields)) }
                    td { @match mapping {
                        Some(v) => { (badge(v.mapping.status.as_str())) " into " (v.local.as_ref().map_or("?", |l| l.handle.as_str()))
                                     @if !v.mapping.status_reason.is_empty() { div.err { (v.mapping.status_reason) } } }
                        None => { span.muted { "not mapped" } }
                    } }
                } } }
            } }
        }
    };
    Ok(layout::respond("Shared modules", &session, body))
}

pub async fn mapping_page(
    State(state): State<AdminState>,
    session: Session,
    Path((id, shared_key)): Path<(String, String)>,
    Query(pick): Query<Pick>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let shared = state
        .catalog
        .shared(&node.id.to_string(), &shared_key)
        .await?;
    let view = mapping_of(&state, &node, &shared.id.to_string()).await?;
    let modules = state.catalog.list_modules().await?;
    let chosen = match pick.module.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => Some(state.catalog.module(m).await?),
        None => view.as_ref().and_then(|v| v.local.clone()),
    };
    let url = format!("{}/shared/{}", node_url(node.id), shared.id);
    let mapped_to = |origin: &str| {
        view.as_ref().and_then(|v| {
            v.mapping
                .fields
                .iter()
                .find(|f| f.origin.name == origin)
                .map(|f| f.destination.name.clone())
        })
    };
    let body = html! {
        h1 { "Map " (shared.handle) " from " (node.name) }
        (layout::notice(pick.done.as_deref()))
        p.muted { (shared.name) " · " a href={ (node_url(node.id)) "/shared" } { "All shared modules" } }
        @if let Some(v) = &view {
            p { "Mapping: " (badge(v.mapping.status.as_str())) }
            @if !v.mapping.status_reason.is_empty() { p.error role="alert" #broken { (v.mapping.status_reason) } }
        }
        form.card method="get" action=(url) {
            label for="module" { "Local module the records land in" }
            select #module name="module" {
                @for m in &modules {
                    option value=(m.id) selected[chosen.as_ref().is_some_and(|c| c.id == m.id)] { (m.handle) }
                }
            }
            div.actions { button.secondary type="submit" { "Choose its fields" } }
        }
        @if let Some(local) = &chosen {
            form.card #mapping method="post" action=(url) {
                (csrf_field(&session))
                input type="hidden" name="module" value=(local.id);
                div.table-wrap { table {
                    thead { tr { th { "Shared field" } th { "Local field of " (local.handle) } } }
                    tbody { @for choice in field_choices(&shared, local) {
                        @let current = mapped_to(&choice.origin.name);
                        tr {
                            td { label for={ "map-" (choice.origin.name) } { (choice.origin.name) } span.muted { " " (choice.origin.kind) @if choice.origin.is_multi { " (multi)" } } }
                            td { select id={ "map-" (choice.origin.name) } name={ "map:" (choice.origin.name) } {
                                option value="" { "not mapped" }
                                @for dest in &choice.candidates {
                                    option value=(dest.name) selected[current.as_deref() == Some(dest.name.as_str())] { (dest.name) " (" (dest.kind.as_str()) ")" }
                                }
                            } }
                        }
                    } }
                } }
                div.actions { button type="submit" disabled[!session.can_write()] { "Save the mapping" } }
            }
        }
        @if view.is_some() { div.actions { (action(&session, &format!("{url}/unmap"), "Remove the mapping", "danger")) } }
    };
    Ok(layout::respond("Mapping", &session, body))
}

pub async fn set_mapping(
    State(state): State<AdminState>,
    session: Session,
    Path((id, shared_key)): Path<(String, String)>,
    form: FormData,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let pairs = form.prefixed("map:");
    state
        .catalog
        .set_mapping(
            &session.actor(),
            &node.id.to_string(),
            &shared_key,
            form.get("module"),
            &pairs,
        )
        .await?;
    Ok(Redirect::to(&format!(
        "{}/shared/{}?done=mapped",
        node_url(node.id),
        urlencode(&shared_key)
    ))
    .into_response())
}

pub async fn unmap(
    State(state): State<AdminState>,
    session: Session,
    Path((id, shared_key)): Path<(String, String)>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    state
        .catalog
        .delete_mapping(&session.actor(), &node.id.to_string(), &shared_key)
        .await?;
    Ok(Redirect::to(&format!("{}/shared?done=unmapped", node_url(node.id))).into_response())
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
