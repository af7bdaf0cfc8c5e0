//! The federation listener's router: probes now, `/federation/...` peer
//! routes as the protocol lands.

mod data;
mod health;
mod limits;
mod live;
mod peer;

pub use limits::{LimitSettings, Limits, RateLimiter, Verdict, address_key};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};

use crate::crypto::SigningKey;
use crate::store::Store;
use crate::sync::{LocalRecords, PairingService};
use crate::telemetry::{HttpLabels, Metrics, ReasonLabels};
use axum::http::StatusCode;

/// What the federation routes share.
#[derive(Clone)]
pub struct FederationState {
    pub store: Arc<dyn Store>,
    pub pairing: Arc<PairingService>,
    /// The local records this node serves.
    pub records: Arc<dyn LocalRecords>,
    /// Serve records that arrived from other peers too.
    pub reexport: bool,
    /// Signs our page cursors.
    pub signing_key: SigningKey,
    /// Our public federation base URL, for links in documents.
    pub public_base: String,
    pub metrics: Metrics,
    /// Rate limits, lockout and the cap on requests served at once.
    pub limits: Arc<Limits>,
    /// Set once both listeners are bound; `/readyz` is 503 before.
    pub listeners_bound: Arc<AtomicBool>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<Vec<crate::domain::net::IpRange>>,
    /// Change notices from peers, and what we tell peers we can do.
    pub live: Arc<crate::sync::live::LiveChanges>,
    pub capabilities: Arc<Vec<String>>,
    /// Each pull's next page, made ready while the peer writes this one.
    pub read_ahead: Arc<crate::sync::data::ReadAhead>,
}

impl FederationState {
    fn count_limited(&self, reason: &'static str) {
        self.metrics
            .federation_limited
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn mark_listeners_bound(&self) {
        self.listeners_bound.store(true, Ordering::SeqCst);
    }
}

pub fn router(state: FederationState) -> Router {
    Router::new()
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/federation/nodes/{id}/handshake", post(peer::handshake))
        .route(
            "/federation/nodes/{id}/handshake-complete",
            post(peer::handshake_complete),
        )
        .route(
            "/federation/nodes/{id}/modules/exposed/",
            get(peer::exposed_modules),
        )
        .route("/federation/nodes/{id}/fedsync/unpair", post(peer::unpair))
        .route(
            "/federation/nodes/{id}/fedsync/changes",
            post(live::changes),
        )
        .route(
            "/federation/nodes/{id}/fedsync/capabilities",
            get(live::capabilities),
        )
        .route(
            "/federation/nodes/{id}/modules/exposed/records/",
            get(data::records_index),
        )
        .route(
            "/federation/nodes/{id}/modules/exposed/activity-stream",
            get(data::structure_activity),
        )
        .route(
            "/federation/nodes/{id}/modules/{module}/records/",
            get(data::records),
        )
        .route(
            "/federation/nodes/{id}/modules/{module}/records/activity-stream/",
            get(data::records_activity),
        )
        .route(
            "/federation/exposed/records",
            get(data::documented_record_links),
        )
        .route(
            "/federation/exposed/modules/{id}/records",
            get(data::documented_records),
        )
        .route(
            "/federation/exposed/modules",
            get(peer::documented_module_links),
        )
        .route(
            "/federation/exposed/modules/{id}",
            get(peer::documented_module),
        )
        .layer(from_fn_with_state(state.clone(), admit))
        .layer(from_fn_with_state(state.clone(), count_responses))
        .layer(from_fn_with_state(state.clone(), real_client))
        .with_state(state)
}

/// The largest body any federation route reads (handshakes are far smaller
/// and capped again where they are read).
const MAX_REQUEST_BODY: u64 = 64 * 1024;

/// The cap on requests served at once (503 with `Retry-After` past it; the
/// probes are always answered) and on declared body sizes (413 before
/// anything is read).
async fn admit(State(state): State<FederationState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/livez" || path == "/readyz" {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_REQUEST_BODY) {
        return peer::error(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large");
    }
    let Some(_permit) = state.limits.admit() else {
        state.count_limited("busy");
        let mut response = peer::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests at once; try again shortly",
        );
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
        return response;
    };
    next.run(request).await
}

/// Behind a trusted proxy, the client is the right-most address of
/// `X-Forwarded-For` that is not itself a trusted proxy; every handler then
/// sees it as the connection's address (rate limits, audit events). From
/// anyone else, the header is ignored.
async fn real_client(
    State(state): State<FederationState>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(client) = forwarded_client(&request, &state.trusted_proxies) {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, 0)));
    }
    next.run(request).await
}

fn forwarded_client(
    request: &Request,
    trusted: &[crate::domain::net::IpRange],
) -> Option<std::net::IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()?
        .0
        .ip();
    if trusted.is_empty() || !crate::domain::net::in_ranges(peer, trusted) {
        return None;
    }
    let mut chain: Vec<std::net::IpAddr> = Vec::new();
    for value in request.headers().get_all("x-forwarded-for") {
        for part in value.to_str().ok()?.split(',') {
            chain.push(part.trim().parse().ok()?);
        }
    }
    chain
        .into_iter()
        .rev()
        .find(|ip| !crate::domain::net::in_ranges(*ip, trusted))
}

async fn count_responses(
    State(state): State<FederationState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    state
        .metrics
        .http_responses
        .get_or_create(&HttpLabels {
            listener: "federation",
            code: response.status().as_u16(),
        })
        .inc();
    response
}
