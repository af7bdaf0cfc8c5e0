//! What the node page's buttons do: each calls the service method the gRPC
//! handler of the same action calls, then shows the node again (with the
//! outcome) or the service's error in words.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use maud::html;

use super::errors::Answer;
use super::form::FormData;
use super::layout::{self, action};
use super::node::{live_node, node_url, render};
use super::session::Session;
use crate::admin::server::AdminState;
use crate::domain::NodeId;

/// After an action: the node page, saying what happened (`done` is one of
/// the fixed notices).
fn back(id: NodeId, done: &str) -> Answer {
    Ok(Redirect::to(&format!("{}?done={done}", node_url(id))).into_response())
}

/// `New node URI`: shown once, on the page this POST answers (never in a
/// URL).
pub async fn new_uri(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let (node, uri) = state
        .pairing
        .generate_uri(&session.actor(), node.id)
        .await?;
    render(&state, &session, &node, Some(&uri), None, None).await
}

pub async fn invite(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
    form: FormData,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let to = form.get("email");
    let (node, _) = crate::sync::invite::invite(
        &state.pairing,
        &state.notices,
        &*state.store,
        &state.ids,
        &session.actor(),
        node.id,
        to,
    )
    .await?;
    let said = format!("A new node URI was sent to {to}.");
    render(&state, &session, &node, None, None, Some(&said)).await
}

pub async fn pair(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let node = state.pairing.pair(&session.actor(), node.id).await?;
    back(node.id, "requested")
}

pub async fn confirm(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let node = state.pairing.confirm(&session.actor(), node.id).await?;
    back(node.id, "paired")
}

pub async fn refuse(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let node = state.pairing.refuse(&session.actor(), node.id).await?;
    back(node.id, "refused")
}

/// `Check`: calls the peer with the token it gave us; says how it went.
pub async fn check(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let check = state.pairing.check_node(node.id).await?;
    let said = if check.ok {
        format!("ok: {}", check.message)
    } else {
        format!("error: {}", check.message)
    };
    render(&state, &session, &node, None, None, Some(&said)).await
}

pub async fn schedule(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    form: FormData,
) -> Answer {
    let node = live_node(&state, &id).await?;
    state
        .scheduler
        .set_schedule(node.id, Some(form.get("structure")), Some(form.get("data")))
        .await?;
    back(node.id, "scheduled")
}

pub async fn pause(State(state): State<AdminState>, Path(id): Path<String>) -> Answer {
    let node = live_node(&state, &id).await?;
    state.scheduler.set_paused(node.id, true).await?;
    back(node.id, "paused")
}

pub async fn resume(State(state): State<AdminState>, Path(id): Path<String>) -> Answer {
    let node = live_node(&state, &id).await?;
    state.scheduler.set_paused(node.id, false).await?;
    back(node.id, "resumed")
}

/// `Remove…`: asks first (a page, so it works without script).
pub async fn confirm_remove(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    let url = node_url(node.id);
    let body = html! {
        h1 { "Remove " (node.name) "?" }
        p { "Its tokens are revoked at once and a fedsync peer is told. Records received from it stay. This cannot be undone: pairing again needs a new node URI." }
        div.actions {
            (action(&session, &format!("{url}/remove"), "Remove this node", "danger"))
            a href=(url) { "Cancel" }
        }
    };
    Ok(layout::respond("Remove a node", &session, body))
}

pub async fn remove(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
) -> Answer {
    let node = live_node(&state, &id).await?;
    state.pairing.delete_node(&session.actor(), node.id).await?;
    Ok(Redirect::to("/ui/?done=removed").into_response())
}
