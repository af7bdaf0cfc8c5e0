//! Adding a peer: invite one (create its node, show its node URI once, and
//! email it when an address is given), or accept an invitation (paste the
//! inviter's node URI).

use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use maud::html;

use super::errors::Answer;
use super::form::FormData;
use super::layout::{self, csrf_field};
use super::node::{node_url, render};
use super::session::Session;
use crate::admin::server::AdminState;

pub async fn page(session: Session) -> Answer {
    let write = session.can_write();
    let body = html! {
        h1 { "Add a peer" }
        div.grid2 {
            form.card method="post" action="/ui/peers" {
                h2 { "Invite a peer" }
                p.muted { "Registers the peer and gives you its node URI to pass to its admin." }
                (csrf_field(&session))
                label for="name" { "Name" }
                input #name type="text" name="name" required maxlength="64";
                label for="base_url" { "Its federation base URL" }
                input #base_url type="url" name="base_url" required placeholder="https://b.example.com/federation";
                label for="contact" { "Contact (optional)" }
                input #contact type="text" name="contact" maxlength="254";
                label for="email" { "Email the node URI to (optional)" }
                input #email type="email" name="email";
                div.actions { button type="submit" disabled[!write] { "Create and get the node URI" } }
            }
            form.card method="post" action="/ui/peers/uri" {
                h2 { "Accept an invitation" }
                p.muted { "Paste the node URI the inviter's admin gave you; you then send the handshake request with Pair." }
                (csrf_field(&session))
                label for="node_uri" { "Node URI" }
                input #node_uri type="text" name="node_uri" required autocomplete="off";
                div.actions { button type="submit" disabled[!write] { "Add the inviter" } }
            }
        }
    };
    Ok(layout::respond("Add a peer", &session, body))
}

/// Creates the node, then shows it with its node URI (once); with an
/// email address, also sends a fresh node URI there.
pub async fn create(State(state): State<AdminState>, session: Session, form: FormData) -> Answer {
    let actor = session.actor();
    let (node, uri) = state
        .pairing
        .create_node(
            &actor,
            form.get("name"),
            form.get("base_url"),
            form.get("contact"),
        )
        .await?;
    let email = form.get("email");
    if email.is_empty() {
        return render(&state, &session, &node, Some(&uri), None, None).await;
    }
    let (node, _) = crate::sync::invite::invite(
        &state.pairing,
        &state.notices,
        &*state.store,
        &state.ids,
        &actor,
        node.id,
        email,
    )
    .await?;
    let said = format!("Node created; its node URI was sent to {email}.");
    render(&state, &session, &node, None, None, Some(&said)).await
}

pub async fn add_uri(State(state): State<AdminState>, session: Session, form: FormData) -> Answer {
    let (node, _) = state
        .pairing
        .add_from_uri(&session.actor(), form.get("node_uri"))
        .await?;
    Ok(Redirect::to(&format!("{}?done=added", node_url(node.id))).into_response())
}
