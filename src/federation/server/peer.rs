//! Peer routes under `/federation`, exactly as Corteza serves them (paths,
//! trailing slashes, envelopes), with proper 4xx statuses for refusals.
//!
//! Thin edges: decode, check the request's shape, call the pairing service,
//! encode. Bodies are capped and must be JSON; tokens are taken only from the
//! `Authorization: Bearer` header.

use std::net::SocketAddr;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::FederationState;
use crate::domain::{NodeId, PeerKind};
use crate::federation::wire::{
    Envelope, ErrorBody, HandshakeCompleteBody, HandshakeInitBody, StructureDoc, SuccessBody,
};
use crate::pairing::parse_node_uri;
use crate::sync::{AuthenticatedPeer, InboundHandshake, PairingError, PeerAuthError};

/// Largest handshake body read (federation-security 3.2.7).
const MAX_HANDSHAKE_BODY: usize = 16 * 1024;
/// Longest token accepted in a handshake body.
const MAX_TOKEN_LEN: usize = 4096;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(ErrorBody::new(message))).into_response()
}

/// A refused request: a status and a message for Corteza's error envelope.
struct Refusal(StatusCode, String);

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal(status, message.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

fn success() -> Response {
    (StatusCode::OK, Json(SuccessBody::ok())).into_response()
}

fn source(info: &ConnectInfo<SocketAddr>) -> String {
    info.0.to_string()
}

/// Reads a small JSON body: 415 unless JSON, 413 past the cap, 400 when it
/// does not decode (wrong types, duplicate keys, too deep).
async fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, Refusal> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        ));
    }
    let bytes = to_bytes(body, MAX_HANDSHAKE_BODY)
        .await
        .map_err(|_| Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("request invalid: {e}")))
}

fn present(value: Option<String>, field: &str) -> Result<Zeroizing<String>, Refusal> {
    match value {
        Some(v) if !v.is_empty() && v.len() <= MAX_TOKEN_LEN => Ok(Zeroizing::new(v)),
        Some(v) if v.len() > MAX_TOKEN_LEN => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("request invalid: {field} is too long"),
        )),
        _ => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("request invalid: {field} is required"),
        )),
    }
}

/// The handshake body in either spelling: (OTT, token for us, node id named).
fn decode_handshake(
    body: HandshakeInitBody,
) -> Result<(Zeroizing<String>, Zeroizing<String>, String), Refusal> {
    // Corteza's spelling first, then the documentation's.
    if body.pair_token.is_some() || body.shared_node_id.is_some() {
        return Ok((
            present(body.pair_token, "pairToken")?,
            present(body.auth_token, "authToken")?,
            body.shared_node_id.unwrap_or_default(),
        ));
    }
    let Some(uri) = body.node_uri else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "request invalid: pairToken is required",
        ));
    };
    let parsed = parse_node_uri(&uri, true).map_err(|_| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "request invalid: nodeURI is not a node URI",
        )
    })?;
    let token = present(body.token, "token")?;
    Ok((parsed.token, token, parsed.node_id.to_string()))
}

/// `POST /federation/nodes/{id}/handshake`: the invitee asks to pair,
/// authenticated by the OTT alone.
pub async fn handshake(
    State(state): State<FederationState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body: HandshakeInitBody = match json_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    let peer_kind = if body.fedsync.is_some() {
        PeerKind::Fedsync
    } else {
        PeerKind::Corteza
    };
    let (pair_token, auth_token, body_node_id) = match decode_handshake(body) {
        Ok(parts) => parts,
        Err(refusal) => return refusal.into_response(),
    };
    let inbound = InboundHandshake {
        path_node_id: id,
        body_node_id,
        pair_token,
        auth_token,
        peer_kind,
        source_addr: addr.to_string(),
    };
    match state.pairing.accept_handshake(inbound).await {
        Ok(()) => success(),
        Err(None) => error(StatusCode::UNAUTHORIZED, "pairing token invalid"),
        Err(Some(e)) => {
            tracing::error!(error = %e, "handshake request failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Authenticates a peer request, answering 401 or 404 in Corteza's envelope.
async fn authenticate(
    state: &FederationState,
    headers: &HeaderMap,
    id: &str,
    addr: &ConnectInfo<SocketAddr>,
) -> Result<AuthenticatedPeer, Response> {
    let values: Vec<&[u8]> = headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    state
        .pairing
        .authenticate_peer(&values, id, &source(addr))
        .await
        .map_err(|e| match e {
            PeerAuthError::Unauthorized => error(StatusCode::UNAUTHORIZED, "unauthorized"),
            PeerAuthError::NotFound => error(StatusCode::NOT_FOUND, "not found"),
        })
}

/// `POST /federation/nodes/{id}/handshake-complete`: the inviter completes
/// the handshake with the token we gave it, sending its token for us.
pub async fn handshake_complete(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let peer = match authenticate(&state, &parts.headers, &id, &addr).await {
        Ok(peer) => peer,
        Err(response) => return response,
    };
    let body: HandshakeCompleteBody = match json_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response(),
    };
    let kind = if body.fedsync.is_some() {
        PeerKind::Fedsync
    } else {
        PeerKind::Corteza
    };
    let token = match present(body.auth_token.or(body.token), "authToken") {
        Ok(token) => token,
        Err(refusal) => return refusal.into_response(),
    };
    match state.pairing.complete_handshake(&peer, &token, kind).await {
        Ok(()) => success(),
        Err(PairingError::WrongState(message)) => error(StatusCode::CONFLICT, &message),
        Err(PairingError::Invalid(message)) => error(StatusCode::BAD_REQUEST, &message),
        Err(e) => {
            tracing::error!(error = %e, "handshake completion failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// `GET /federation/nodes/{id}/modules/exposed/`: the modules this node
/// exposes to the calling pair (Corteza's internal structure document).
pub async fn exposed_modules(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let peer = match authenticate(&state, &headers, &id, &addr).await {
        Ok(peer) => peer,
        Err(response) => return response,
    };
    match state.store.list_exposed_modules(peer.node.id).await {
        Ok(modules) => {
            let shared = peer.node.shared_node_id.unwrap_or(peer.node.id);
            Json(Envelope {
                response: StructureDoc::new(shared, &modules),
            })
            .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot list exposed modules");
            error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable")
        }
    }
}

/// `POST /federation/nodes/{id}/fedsync/unpair` (fedsync peers only): the
/// peer removed the pair.
pub async fn unpair(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let peer = match authenticate(&state, &headers, &id, &addr).await {
        Ok(peer) => peer,
        Err(response) => return response,
    };
    match state.pairing.unpaired_by_peer(&peer).await {
        Ok(()) => success(),
        Err(e) => {
            tracing::error!(error = %e, node_id = %NodeId::from(peer.node.id.0), "unpair notice failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
