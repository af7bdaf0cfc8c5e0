//! `fedsync.admin.v1.NodeService`: the peers this node federates with.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::proto::{self, v1};
use super::status::from_store;
use crate::domain::{NodeFilter, NodeId, PairingStatus};
use crate::store::Store;

pub struct NodeApi {
    store: Arc<dyn Store>,
}

impl NodeApi {
    pub fn new(store: Arc<dyn Store>) -> NodeApi {
        NodeApi { store }
    }
}

#[tonic::async_trait]
impl v1::node_service_server::NodeService for NodeApi {
    #[tracing::instrument(skip_all)]
    async fn list_nodes(
        &self,
        request: Request<v1::ListNodesRequest>,
    ) -> Result<Response<v1::ListNodesResponse>, Status> {
        let request = request.into_inner();
        let status = match request.status.as_str() {
            "" => None,
            other => Some(
                PairingStatus::parse(other).map_err(|e| Status::invalid_argument(e.to_string()))?,
            ),
        };
        let filter = NodeFilter {
            status,
            query: Some(request.query).filter(|q| !q.is_empty()),
            include_deleted: request.include_deleted,
        };
        let nodes = self.store.list_nodes(&filter).await.map_err(from_store)?;
        Ok(Response::new(v1::ListNodesResponse {
            nodes: nodes.iter().map(proto::node).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().id))]
    async fn get_node(
        &self,
        request: Request<v1::GetNodeRequest>,
    ) -> Result<Response<v1::Node>, Status> {
        let id = NodeId::from_u64(request.get_ref().id)
            .ok_or_else(|| Status::invalid_argument("id is required (a non-zero node id)"))?;
        match self.store.get_node(id).await.map_err(from_store)? {
            Some(node) => Ok(Response::new(proto::node(&node))),
            None => Err(Status::not_found(format!("node {id} does not exist"))),
        }
    }
}
