//! `fedsync.admin.v1.AdminTokenService`: the registered admin credentials,
//! listed and revoked over the admin token service (`sync::admin_tokens`).

use tonic::{Request, Response, Status};

use super::node::writer;
use super::proto::{self, v1};
use super::server::AdminState;
use super::status::from_tokens;
use crate::domain::{self, TokenId};

pub struct AdminTokenApi {
    state: AdminState,
}

impl AdminTokenApi {
    pub fn new(state: AdminState) -> AdminTokenApi {
        AdminTokenApi { state }
    }
}

#[tonic::async_trait]
impl v1::admin_token_service_server::AdminTokenService for AdminTokenApi {
    #[tracing::instrument(skip_all)]
    async fn list_admin_tokens(
        &self,
        _request: Request<v1::ListAdminTokensRequest>,
    ) -> Result<Response<v1::ListAdminTokensResponse>, Status> {
        let tokens = self.state.tokens.list().await.map_err(from_tokens)?;
        let now = domain::now();
        Ok(Response::new(v1::ListAdminTokensResponse {
            tokens: tokens.iter().map(|t| proto::admin_token(t, now)).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(token_id = request.get_ref().id))]
    async fn revoke_admin_token(
        &self,
        request: Request<v1::AdminTokenRef>,
    ) -> Result<Response<v1::AdminToken>, Status> {
        let actor = writer(&request)?;
        let id = TokenId::from_u64(request.get_ref().id)
            .ok_or_else(|| Status::invalid_argument("id is required (a non-zero token id)"))?;
        let token = self
            .state
            .tokens
            .revoke(&actor, id)
            .await
            .map_err(from_tokens)?;
        Ok(Response::new(proto::admin_token(&token, domain::now())))
    }
}
