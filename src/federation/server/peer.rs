//! Peer routes under `/federation`, exactly as Corteza serves them (paths,
//! trailing slashes, envelopes), with proper 4xx statuses for refusals.
//!
//! Thin edges: decode, check the request's shape, call the pairing service,
//! encode. Bodies are capped and must be JSON; tokens are taken only from the
//! `Authorization: Bearer` header.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde::de::DeserializeOwned;

use super::FederationState;
use super::limits::{Verdict, address_key};
use crate::crypto::{parse_bearer, verify_peer_token};
use crate::domain::{NodeId, PeerKind};
use crate::federation::wire::{
    Envelope, ErrorBody, ExposedModuleDoc, HandshakeCompleteBody, LinkDoc, LinkFilter, LinkSet,
    MAX_HANDSHAKE_BODY, Refused, StructureDoc, SuccessBody, decode_handshake_body,
    decode_json_body, decode_page_query, present_token,
};
use crate::sync::structure::{PageRequest, ServeError, serve_page};
use crate::sync::{AuthenticatedPeer, InboundHandshake, PairingError, PeerAuthError};

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(ErrorBody::new(message))).into_response()
}

/// A refused request: a status and a message for Corteza's error envelope.
pub(super) struct Refusal(StatusCode, String);

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal(status, message.into())
    }
}

impl From<Refused> for Refusal {
    fn from(refused: Refused) -> Refusal {
        Refusal(refused.status, refused.message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

pub(super) fn success() -> Response {
    (StatusCode::OK, Json(SuccessBody::ok())).into_response()
}

/// A handshake's success: it says what we can do.
fn handshake_success(state: &FederationState) -> Response {
    (
        StatusCode::OK,
        Json(SuccessBody::with_capabilities(&state.capabilities)),
    )
        .into_response()
}

/// Keeps what a fedsync peer said it can do (a failure is only logged:
/// the next structure sync asks again).
async fn keep_capabilities(
    state: &FederationState,
    node: NodeId,
    capabilities: Option<crate::domain::PeerCapabilities>,
) {
    let Some(capabilities) = capabilities else {
        return;
    };
    if let Err(error) = state
        .store
        .set_peer_capabilities(node, &capabilities, crate::domain::now())
        .await
    {
        tracing::warn!(node_id = %node, error = %error, "cannot keep a peer's capabilities");
    }
}

fn source(info: &ConnectInfo<SocketAddr>) -> String {
    info.0.to_string()
}

/// Reads a small JSON body's bytes: 415 unless JSON, 413 past the cap.
pub(super) async fn json_bytes(headers: &HeaderMap, body: Body) -> Result<bytes::Bytes, Refusal> {
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
    to_bytes(body, MAX_HANDSHAKE_BODY)
        .await
        .map_err(|_| Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"))
}

/// Reads a small JSON body: 415 unless JSON, 413 past the cap, 400 when it
/// does not decode (wrong types, duplicate keys, too deep).
pub(super) async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Refusal> {
    let bytes = json_bytes(headers, body).await?;
    Ok(decode_json_body(&bytes)?)
}

/// `POST /federation/nodes/{id}/handshake`: the invitee asks to pair,
/// authenticated by the OTT alone.
pub async fn handshake(
    State(state): State<FederationState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let client = address_key(addr.ip());
    let now = Instant::now();
    if let Some(wait) = state.limits.lockout.locked(&client, now) {
        state.count_limited("handshake_lockout");
        return too_many(
            wait,
            "too many refused handshakes from this address; try again later",
        );
    }
    if let Verdict::Limited { retry_after, first } = state.limits.handshakes.check(&client, now) {
        state.count_limited("handshake_rate");
        if first {
            state
                .pairing
                .limited(&addr.to_string(), None, "handshake_rate")
                .await;
        }
        return too_many(retry_after, "too many handshake requests; try again later");
    }
    let response = handshake_checked(&state, addr, id, request).await;
    if matches!(
        response.status(),
        StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST
    ) && state.limits.lockout.strike(&client, Instant::now())
    {
        state
            .pairing
            .limited(&addr.to_string(), None, "handshake_lockout")
            .await;
    }
    response
}

/// 429 in Corteza's error envelope, with `Retry-After` in seconds.
pub(super) fn too_many(wait: std::time::Duration, message: &str) -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, message);
    response.headers_mut().insert(
        RETRY_AFTER,
        HeaderValue::from(super::limits::retry_after_seconds(wait)),
    );
    response
}

async fn handshake_checked(
    state: &FederationState,
    addr: SocketAddr,
    id: String,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let decoded = match json_bytes(&parts.headers, body).await {
        Ok(bytes) => decode_handshake_body(&bytes).map_err(Refusal::from),
        Err(refusal) => Err(refusal),
    };
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(refusal) => return refusal.into_response(),
    };
    let node = id.parse::<u64>().ok().and_then(NodeId::from_u64);
    let inbound = InboundHandshake {
        path_node_id: id,
        body_node_id: decoded.body_node_id,
        pair_token: decoded.pair_token,
        auth_token: decoded.auth_token,
        peer_kind: decoded.peer_kind,
        source_addr: addr.to_string(),
    };
    match state.pairing.accept_handshake(inbound).await {
        Ok(()) => {
            if let Some(node) = node {
                keep_capabilities(state, node, decoded.capabilities).await;
            }
            handshake_success(state)
        }
        Err(None) => error(StatusCode::UNAUTHORIZED, "pairing token invalid"),
        Err(Some(e)) => {
            tracing::error!(error = %e, "handshake request failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Authenticates a peer request, answering 401 or 404 in Corteza's envelope.
pub(super) async fn authenticate(
    state: &FederationState,
    headers: &HeaderMap,
    id: Option<&str>,
    addr: &ConnectInfo<SocketAddr>,
) -> Result<AuthenticatedPeer, Response> {
    let values: Vec<&[u8]> = headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    // The per-pair limit comes first, on the token's signed claims alone
    // (no store lookup), so a flood is turned away at the cost of an HMAC.
    // It counts per token: one pair normally holds one, and a revoked token
    // still presented spends only its own quota.
    if let Ok(token) = parse_bearer(&values)
        && let Some(claims) = verify_peer_token(&state.signing_key, token)
        && let Verdict::Limited { retry_after, first } =
            state.limits.peers.check(&claims.id, Instant::now())
    {
        state.count_limited("peer_rate");
        if first {
            state
                .pairing
                .limited(&source(addr), Some(claims.node_id), "peer_rate")
                .await;
        }
        return Err(too_many(
            retry_after,
            "too many requests from this node; slow down",
        ));
    }
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
    let peer = match authenticate(&state, &parts.headers, Some(&id), &addr).await {
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
    let token = match present_token(body.auth_token.or(body.token), "authToken") {
        Ok(token) => token,
        Err(refused) => return Refusal::from(refused).into_response(),
    };
    let capabilities = body.fedsync.as_ref().map(|f| f.capabilities());
    match state.pairing.complete_handshake(&peer, &token, kind).await {
        Ok(()) => {
            keep_capabilities(&state, peer.node.id, capabilities).await;
            handshake_success(&state)
        }
        Err(PairingError::WrongState(message)) => error(StatusCode::CONFLICT, &message),
        Err(PairingError::Invalid(message)) => error(StatusCode::BAD_REQUEST, &message),
        Err(e) => {
            tracing::error!(error = %e, "handshake completion failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// The query of a page request: `lastSync`, `limit`, `pageCursor` (others,
/// such as Corteza's ignored `query` and `sort`, are ignored too).
pub(super) fn page_request(raw: Option<&str>) -> Result<PageRequest, Refusal> {
    Ok(decode_page_query(raw)?)
}

pub(super) fn serve_error(e: ServeError) -> Response {
    match e {
        ServeError::NotFound(message) => error(StatusCode::NOT_FOUND, &message),
        ServeError::Local(message) => {
            tracing::error!(error = %message, "the local data plane failed while serving a peer");
            error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable")
        }
        ServeError::BadRequest(message) => error(
            StatusCode::BAD_REQUEST,
            &format!("request invalid: {message}"),
        ),
        ServeError::Store(e) => {
            tracing::error!(error = %e, "cannot serve exposed modules");
            error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable")
        }
    }
}

/// `GET /federation/nodes/{id}/modules/exposed/`: the modules this node
/// exposes to the calling pair (Corteza's internal structure document),
/// paged by `limit` and `pageCursor`, filtered by `lastSync`.
pub async fn exposed_modules(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let peer = match authenticate(&state, &headers, Some(&id), &addr).await {
        Ok(peer) => peer,
        Err(response) => return response,
    };
    let request = match page_request(query.as_deref()) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    let tombstones = peer.node.peer_kind == PeerKind::Fedsync;
    match serve_page(
        &*state.store,
        &state.signing_key,
        &peer.node,
        tombstones,
        request,
    )
    .await
    {
        Ok(page) => {
            let shared = peer.node.shared_node_id.unwrap_or(peer.node.id);
            let doc = StructureDoc::new(
                shared,
                &page.modules,
                page.last_sync,
                page.limit,
                page.next_cursor,
            );
            Json(Envelope { response: doc }).into_response()
        }
        Err(e) => serve_error(e),
    }
}

/// `GET /federation/exposed/modules?after=T&page=N&perPage=M` (the
/// documented variant): links to the modules exposed to the caller's pair
/// that changed since `after`.
pub async fn documented_module_links(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let peer = match authenticate(&state, &headers, None, &addr).await {
        Ok(peer) => peer,
        Err(response) => return response,
    };
    let request = match page_request(query.as_deref()) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    let mut page_number = 1u32;
    let mut per_page = 20u32;
    for (key, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
    {
        match key.as_ref() {
            "page" => page_number = value.parse().unwrap_or(1).max(1),
            "perPage" => per_page = value.parse().unwrap_or(20).clamp(1, 500),
            _ => {}
        }
    }
    let since = request
        .last_sync
        .filter(|t| *t > 0)
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
    let all = match state
        .store
        .page_exposed_modules(&crate::store::ExposedPageQuery {
            node_id: peer.node.id,
            since,
            after: None,
            include_deleted: peer.node.peer_kind == PeerKind::Fedsync,
            limit: 100_000,
        })
        .await
    {
        Ok(all) => all,
        Err(e) => return serve_error(ServeError::Store(e)),
    };
    let after = request.last_sync.unwrap_or(0);
    let base = state.public_base.trim_end_matches('/');
    let set = all
        .iter()
        .skip(((page_number - 1) * per_page) as usize)
        .take(per_page as usize)
        .map(|m| LinkDoc {
            kind: "GET".into(),
            rel: m.name.clone(),
            href: format!("{base}/exposed/modules/{}?after={after}", m.id),
        })
        .collect();
    let doc = LinkSet {
        filter: LinkFilter {
            query: format!("after={after}"),
            page: page_number,
            per_page,
            count: all.len() as u64,
        },
        set,
    };
    Json(Envelope { response: doc }).into_response()
}

/// `GET /federation/exposed/modules/{id}` (the documented variant): one
/// module exposed to the caller's pair, with the fields it may see.
pub async fn documented_module(
    State(state): State<FederationState>,
    addr: ConnectInfo<SocketAddr>,
    Path(module_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let peer = match authenticate(&state, &headers, None, &addr).await {
        Ok(peer) => peer,
        Err(response) => return response,
    };
    let module = match module_id.parse::<crate::domain::Id>() {
        Ok(id) => state.store.get_exposed_module(id).await,
        Err(_) => Ok(None),
    };
    match module {
        Ok(Some(m)) if m.node_id == peer.node.id && m.deleted_at.is_none() => {
            let shared = peer.node.shared_node_id.unwrap_or(peer.node.id);
            Json(Envelope {
                response: ExposedModuleDoc::new(shared, &m),
            })
            .into_response()
        }
        // Another pair's module and no module at all look the same.
        Ok(_) => error(StatusCode::NOT_FOUND, "module does not exist"),
        Err(e) => serve_error(ServeError::Store(e)),
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
    let peer = match authenticate(&state, &headers, Some(&id), &addr).await {
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
