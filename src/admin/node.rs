//! `fedsync.admin.v1.NodeService`: the peers this node federates with, and
//! pairing with them. Thin: decode, check the caller may write, call the
//! pairing service or the store, encode.

use tonic::{Request, Response, Status};

use super::auth::AdminIdentity;
use super::proto::{self, v1};
use super::server::AdminState;
use super::status::{from_invite, from_pairing, from_store};
use crate::domain::{Actor, NodeFilter, NodeId, PairingStatus};
use crate::sync::{IssuedUri, NodeUpdate};

pub struct NodeApi {
    state: AdminState,
}

impl NodeApi {
    pub fn new(state: AdminState) -> NodeApi {
        NodeApi { state }
    }
}

fn node_id(id: u64) -> Result<NodeId, Status> {
    NodeId::from_u64(id)
        .ok_or_else(|| Status::invalid_argument("id is required (a non-zero node id)"))
}

/// The caller, who must hold a token that may change state.
pub(crate) fn writer<T>(request: &Request<T>) -> Result<Actor, Status> {
    let identity = request
        .extensions()
        .get::<AdminIdentity>()
        .ok_or_else(|| Status::unauthenticated("no admin identity"))?;
    identity.require_write()?;
    Ok(Actor {
        name: identity.name.clone(),
        token_id: Some(identity.token_id),
        source_addr: identity.source_addr.clone(),
    })
}

fn with_uri(node: &crate::domain::Node, uri: IssuedUri) -> v1::NodeWithUri {
    v1::NodeWithUri {
        node: Some(proto::node(node)),
        node_uri: uri.uri.to_string(),
        node_uri_expires_at: Some(proto::timestamp(uri.expires_at)),
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
        let nodes = self
            .state
            .store
            .list_nodes(&filter)
            .await
            .map_err(from_store)?;
        Ok(Response::new(v1::ListNodesResponse {
            nodes: nodes.iter().map(proto::node).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().id))]
    async fn get_node(
        &self,
        request: Request<v1::GetNodeRequest>,
    ) -> Result<Response<v1::Node>, Status> {
        let id = node_id(request.get_ref().id)?;
        match self.state.store.get_node(id).await.map_err(from_store)? {
            Some(node) => {
                let mut shown = proto::node(&node);
                shown.live = Some(self.state.live_status(&node).await.map_err(from_store)?);
                Ok(Response::new(shown))
            }
            None => Err(Status::not_found(format!("node {id} does not exist"))),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn create_node(
        &self,
        request: Request<v1::CreateNodeRequest>,
    ) -> Result<Response<v1::NodeWithUri>, Status> {
        let actor = writer(&request)?;
        let r = request.into_inner();
        let (node, uri) = self
            .state
            .pairing
            .create_node(&actor, &r.name, &r.base_url, &r.contact)
            .await
            .map_err(from_pairing)?;
        Ok(Response::new(with_uri(&node, uri)))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().id))]
    async fn generate_node_uri(
        &self,
        request: Request<v1::NodeRef>,
    ) -> Result<Response<v1::NodeWithUri>, Status> {
        let actor = writer(&request)?;
        let id = node_id(request.get_ref().id)?;
        let (node, uri) = self
            .state
            .pairing
            .generate_uri(&actor, id)
            .await
            .map_err(from_pairing)?;
        Ok(Response::new(with_uri(&node, uri)))
    }

    #[tracing::instrument(skip_all)]
    async fn add_node_from_uri(
        &self,
        request: Request<v1::AddNodeFromUriRequest>,
    ) -> Result<Response<v1::AddNodeFromUriResponse>, Status> {
        let actor = writer(&request)?;
        let (node, readded) = self
            .state
            .pairing
            .add_from_uri(&actor, &request.get_ref().node_uri)
            .await
            .map_err(from_pairing)?;
        Ok(Response::new(v1::AddNodeFromUriResponse {
            node: Some(proto::node(&node)),
            readded,
        }))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().id))]
    async fn pair_node(&self, request: Request<v1::NodeRef>) -> Result<Response<v1::Node>, Status> {
        let actor = writer(&request)?;
        let id = node_id(request.get_ref().id)?;
        let node = self
            .state
            .pairing
            .pair(&actor, id)
            .await
            .map_err(from_pairing)?;
        Ok(Response::new(proto::node(&node)))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().id))]
    async fn confirm_node(
        &self,
        request: Request<v1::NodeRef>,
    ) -> Result<Response<v1::Node>, Status> {
        let actor = writer(&request)?;
        let id = node_id(request.get_ref().id)?;
        let node = self
            .state
            .pairing
            .confirm(&actor, id)
            .await
            .map_err(from_pairing)?;
        Ok(Response::new(proto::node(&node)))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().id))]
    async fn invite_node(
        &self,
        request: Request<v1::InviteNodeRequest>,
    ) -> Result<Response<v1::InviteNodeResponse>, Status> {
        let actor = writer(&request)?;
        let id = node_id(request.get_ref().id)?;
        let to = request.get_ref().email.trim().to_owned();
        let state = &self.state;
        let (node, uri) = crate::sync::invite::invite(
            &state.pairing,
            &state.notices,
            &*state.store,
            &state.ids,
            &actor,
            id,
            &to,
        )
        .await
        .map_err(from_invite)?;
        Ok(Response::new(v1::InviteNodeResponse {
            node: Some(proto::node(&node)),
            sent_to: to,
            node_uri_expires_at: Some(proto::timestamp(uri.expires_at)),
        }))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().id))]
    async fn refuse_node(
        &self,
        request: Request<v1::NodeRef>,
    ) -> Result<Response<v1::Node>, Status> {
        let actor = writer(&request)?;
        let id = node_id(request.get_ref().id)?;
        let node = self
            .state
            .pairing
            .refuse(&actor, id)
            .await
            .map_err(from_pairing)?;
        Ok(Response::new(proto::node(&node)))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().id))]
    async fn update_node(
        &self,
        request: Request<v1::UpdateNodeRequest>,
    ) -> Result<Response<v1::Node>, Status> {
        let actor = writer(&request)?;
        let r = request.into_inner();
        let id = node_id(r.id)?;
        let update = NodeUpdate {
            name: r.name,
            contact: r.contact,
            base_url: r.base_url,
        };
        let node = self
            .state
            .pairing
            .update_node(&actor, id, &update)
            .await
            .map_err(from_pairing)?;
        Ok(Response::new(proto::node(&node)))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().id))]
    async fn delete_node(
        &self,
        request: Request<v1::NodeRef>,
    ) -> Result<Response<v1::Node>, Status> {
        let actor = writer(&request)?;
        let id = node_id(request.get_ref().id)?;
        let node = self
            .state
            .pairing
            .delete_node(&actor, id)
            .await
            .map_err(from_pairing)?;
        Ok(Response::new(proto::node(&node)))
    }

    #[tracing::instrument(skip_all, fields(node_id = request.get_ref().id))]
    async fn check_node(
        &self,
        request: Request<v1::NodeRef>,
    ) -> Result<Response<v1::CheckNodeResponse>, Status> {
        let id = node_id(request.get_ref().id)?;
        let check = self
            .state
            .pairing
            .check_node(id)
            .await
            .map_err(from_pairing)?;
        Ok(Response::new(v1::CheckNodeResponse {
            ok: check.ok,
            message: check.message,
        }))
    }
}
