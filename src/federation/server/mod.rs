//! The federation listener's router: probes now, `/federation/...` peer
//! routes as the protocol lands.

mod health;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::get;

use crate::store::Store;
use crate::telemetry::{HttpLabels, Metrics};

/// What the federation routes share.
#[derive(Clone)]
pub struct FederationState {
    pub store: Arc<dyn Store>,
    pub metrics: Metrics,
    /// Set once both listeners are bound; `/readyz` is 503 before.
    pub listeners_bound: Arc<AtomicBool>,
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
        .layer(from_fn_with_state(state.clone(), count_responses))
        .with_state(state)
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
