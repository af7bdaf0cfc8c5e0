//! `fedsync.admin.v1.AuditService`: the audit log.

use tonic::{Request, Response, Status};

use super::proto::{self, v1};
use super::server::AdminState;
use super::status::from_store;
use crate::domain::{AuditFilter, NodeId};

pub struct AuditApi {
    state: AdminState,
}

impl AuditApi {
    pub fn new(state: AdminState) -> AuditApi {
        AuditApi { state }
    }
}

#[tonic::async_trait]
impl v1::audit_service_server::AuditService for AuditApi {
    #[tracing::instrument(skip_all)]
    async fn list_audit_events(
        &self,
        request: Request<v1::ListAuditEventsRequest>,
    ) -> Result<Response<v1::ListAuditEventsResponse>, Status> {
        let r = request.into_inner();
        let filter = AuditFilter {
            node_id: NodeId::from_u64(r.node_id),
            limit: r.limit.min(10_000),
        };
        let events = self
            .state
            .store
            .list_audit(&filter)
            .await
            .map_err(from_store)?;
        Ok(Response::new(v1::ListAuditEventsResponse {
            events: events.iter().map(proto::audit_event).collect(),
        }))
    }
}
