//! Liveness and readiness probes.
//!
//! `/livez` answers 200 while the process serves requests. `/readyz` answers
//! 200 only when both listeners are bound, the store answers within a
//! second and the local data plane (a Corteza beside us) within two;
//! otherwise 503 with the reasons, so an orchestrator holds traffic.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use super::FederationState;

const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
const LOCAL_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn livez() -> (StatusCode, Json<serde_json::Value>) {
    (StatusCode::OK, Json(json!({ "status": "alive" })))
}

pub async fn readyz(State(state): State<FederationState>) -> (StatusCode, Json<serde_json::Value>) {
    let mut reasons = Vec::new();
    if !state.listeners_bound.load(Ordering::SeqCst) {
        reasons.push("listeners are not bound yet".to_owned());
    }
    match tokio::time::timeout(STORE_CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {
            state.metrics.store_up.set(1);
        }
        Ok(Err(error)) => {
            state.metrics.store_up.set(0);
            reasons.push(format!("store: {error}"));
        }
        Err(_) => {
            state.metrics.store_up.set(0);
            reasons.push(format!(
                "store: no answer within {}s",
                STORE_CHECK_TIMEOUT.as_secs()
            ));
        }
    }
    match tokio::time::timeout(LOCAL_CHECK_TIMEOUT, state.records.ready()).await {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => reasons.push(format!("local data plane: {reason}")),
        Err(_) => reasons.push(format!(
            "local data plane: no answer within {}s",
            LOCAL_CHECK_TIMEOUT.as_secs()
        )),
    }
    if reasons.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reasons": reasons })),
        )
    }
}
