//! Live changes from fedsync peers: `POST .../fedsync/changes` (a change
//! notice, a hint that wakes the job pulling each module it names) and
//! `GET .../fedsync/capabilities` (what this node can do). Both are
//! authenticated like every peer route, and limited by the per-pair token
//! bucket (a flood gets 429).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::FederationState;
use super::peer::Refusal;
use super::peer::{authenticate, error, json_body, success};
use crate::federation::wire::Envelope;
use crate::federation::wire::live::{CapabilitiesDoc, ChangeNoticeBody};

/// `POST /federation/nodes/{id}/fedsync/changes`.
pub async fn changes(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let peer = match authenticate(&state, &parts.headers, Some(&id), &addr).await {
        Ok(peer) => peer,
        Err(response) => return response,
    };
    let body: ChangeNoticeBody = match json_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    let notice = match body.decode() {
        Ok(notice) => notice,
        Err(refused) => return Refusal::from(refused).into_response(),
    };
    match state.live.receive(&peer.node, &notice).await {
        Ok(_) => success(),
        Err(e) => {
            tracing::warn!(error = %e, node_id = %peer.node.id, "cannot record a change notice");
            error(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}

/// `GET /federation/nodes/{id}/fedsync/capabilities`.
pub async fn capabilities(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    if let Err(response) = authenticate(&state, request.headers(), Some(&id), &addr).await {
        return response;
    }
    Json(Envelope {
        response: CapabilitiesDoc::with_capabilities(&state.capabilities),
    })
    .into_response()
}
