//! The federation listener's router: probes now, `/federation/...` peer
//! routes as the protocol lands.

mod data;
mod health;
mod peer;

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
use crate::telemetry::{HttpLabels, Metrics};

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
    /// Set once both listeners are bound; `/readyz` is 503 before.
    pub listeners_bound: Arc<AtomicBool>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<Vec<crate::domain::net::IpRange>>,
}

impl FederationState {
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
        .layer(from_fn_with_state(state.clone(), count_responses))
        .layer(from_fn_with_state(state.clone(), real_client))
        .with_state(state)
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
