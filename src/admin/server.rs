//! Assembles the admin listener: gRPC services behind admin auth, open health
//! and reflection, Corteza's REST API, the web console under `/ui/`,
//! `/metrics`, and a fallback that answers gRPC callers with
//! UNIMPLEMENTED and everyone else with 404.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use tonic::Status;
use tonic_health::server::HealthReporter;

use super::admin_token::AdminTokenApi;
use super::audit::AuditApi;
use super::auth::require_admin;
use super::catalog::{ExposureApi, MappingApi, ModuleApi, SharedApi};
use super::node::NodeApi;
use super::proto::{FILE_DESCRIPTOR_SET, v1};
use super::record::RecordApi;
use super::sync::SyncApi;
use crate::crypto::SigningKey;
use crate::domain::IdGenerator;
use crate::store::Store;
use crate::sync::PairingService;
use crate::sync::catalog::Catalog;
use crate::sync::data::DataSync;
use crate::sync::records::RecordService;
use crate::sync::structure::StructureSync;
use crate::telemetry::Metrics;

/// What the admin services share.
#[derive(Clone)]
pub struct AdminState {
    pub store: Arc<dyn Store>,
    pub pairing: Arc<PairingService>,
    pub catalog: Arc<Catalog>,
    pub structure: Arc<StructureSync>,
    pub data: Arc<DataSync>,
    pub scheduler: Arc<crate::scheduler::Scheduler>,
    pub records: Arc<RecordService>,
    pub signing_key: SigningKey,
    pub metrics: Metrics,
    pub ids: Arc<IdGenerator>,
    pub notices: Arc<crate::sync::Notices>,
    /// The daemon's tasks: work a request starts runs here, not in the
    /// request.
    pub work: crate::sync::work::Work,
    /// Live changes with peers (their status on node and sync pages).
    pub live: Arc<crate::sync::live::LiveChanges>,
    /// Admin credentials: tokens, console sessions and login links.
    pub tokens: Arc<crate::sync::admin_tokens::AdminTokens>,
    /// The web console's settings.
    pub console: super::ui::ConsoleSettings,
}

impl AdminState {
    /// Live changes with a node, its peer's capabilities read from the store.
    pub async fn live_status(
        &self,
        node: &crate::domain::Node,
    ) -> Result<super::proto::v1::LiveStatus, crate::store::StoreError> {
        let caps = self.store.peer_capabilities(node.id).await?;
        let seen = self.live.peer_status(node, caps.as_ref());
        Ok(super::proto::live(&seen, caps.as_ref()))
    }
}

/// The admin router and the health reporter that flips it to NOT_SERVING on
/// shutdown.
pub async fn router(state: AdminState) -> Result<(Router, HealthReporter), String> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<v1::node_service_server::NodeServiceServer<NodeApi>>()
        .await;
    health_reporter
        .set_serving::<v1::audit_service_server::AuditServiceServer<AuditApi>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| format!("cannot build reflection service: {e}"))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| format!("cannot build reflection service: {e}"))?;

    let grpc = tonic::service::Routes::new(v1::node_service_server::NodeServiceServer::new(
        NodeApi::new(state.clone()),
    ))
    .add_service(v1::audit_service_server::AuditServiceServer::new(
        AuditApi::new(state.clone()),
    ))
    .add_service(v1::module_service_server::ModuleServiceServer::new(
        ModuleApi::new(state.clone()),
    ))
    .add_service(v1::exposure_service_server::ExposureServiceServer::new(
        ExposureApi::new(state.clone()),
    ))
    .add_service(
        v1::shared_module_service_server::SharedModuleServiceServer::new(SharedApi::new(
            state.clone(),
        )),
    )
    .add_service(v1::mapping_service_server::MappingServiceServer::new(
        MappingApi::new(state.clone()),
    ))
    .add_service(v1::sync_service_server::SyncServiceServer::new(
        SyncApi::new(state.clone()),
    ))
    .add_service(v1::record_service_server::RecordServiceServer::new(
        RecordApi::new(state.clone()),
    ))
    .add_service(
        v1::admin_token_service_server::AdminTokenServiceServer::new(AdminTokenApi::new(
            state.clone(),
        )),
    )
    .add_service(health_service)
    .add_service(reflection_v1)
    .add_service(reflection_v1alpha)
    .into_axum_router()
    .layer(from_fn_with_state(state.clone(), require_admin));

    let rest = super::rest::router(state.clone());
    let console = super::ui::router(state.clone());
    let http = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state);
    let router = grpc
        .merge(rest)
        .merge(console)
        .merge(http)
        .fallback(fallback);
    Ok((router, health_reporter))
}

async fn metrics(State(state): State<AdminState>) -> Response {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn fallback(request: Request) -> Response {
    let is_grpc = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if is_grpc {
        Status::unimplemented(format!("no such method: {}", request.uri().path())).into_http()
    } else {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }
}
