//! Admin tokens (and console sessions and login links): list, revoke, over
//! the admin token service gRPC's `AdminTokenService` uses.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::html;

use super::errors::{Answer, UiError};
use super::layout::{self, action, badge, time};
use super::overview::Notice;
use super::session::Session;
use crate::admin::server::AdminState;
use crate::domain::{self, TokenId};

pub async fn page(
    State(state): State<AdminState>,
    session: Session,
    Query(notice): Query<Notice>,
) -> Answer {
    let tokens = state.tokens.list().await?;
    let now = domain::now();
    let body = html! {
        h1 { "Admin tokens" }
        (layout::notice(notice.done.as_deref()))
        p.muted { "Every registered admin credential (never the token itself). " code { "fedsync token admin" } " mints one." }
        div.table-wrap { table #tokens {
            thead { tr { th { "Id" } th { "Name" } th { "Kind" } th { "Created" } th { "Expires" } th { "State" } th {} } }
            tbody { @for t in &tokens {
                @let state = t.state(now);
                tr data-token=(t.id) {
                    td { (t.id) }
                    td { (t.name) @if t.id == session.identity.token_id { " " span.badge { "this session" } } }
                    td { (t.kind.as_str()) }
                    td { (time(Some(t.created_at), now)) }
                    td { @if t.expires_at.is_some() { (time(t.expires_at, now)) } @else { "never" } }
                    td { (badge(state)) }
                    td { @if state == "active" { (action(&session, &format!("/ui/tokens/{}/revoke", t.id), "Revoke", "danger")) } }
                }
            } }
        } }
    };
    Ok(layout::respond("Admin tokens", &session, body))
}

pub async fn revoke(
    State(state): State<AdminState>,
    session: Session,
    Path(id): Path<String>,
) -> Answer {
    let id = id
        .parse::<u64>()
        .ok()
        .and_then(TokenId::from_u64)
        .ok_or_else(|| UiError::bad(format!("`{id}` is not a token id")))?;
    state.tokens.revoke(&session.actor(), id).await?;
    Ok(Redirect::to("/ui/tokens?done=revoked").into_response())
}
