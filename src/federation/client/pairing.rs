//! The pairing calls to a peer (`Peer`): the handshake and its
//! completion, a check of the token we hold, and the notice that we
//! unpaired.

use async_trait::async_trait;
use http::Method;

use super::PeerClient;
use super::request::endpoint;
use crate::domain::NodeId;
use crate::federation::wire::{FedsyncExtension, HandshakeCompleteBody, HandshakeInitBody};
use crate::sync::{HandshakeInit, Peer, PeerError, PeerReply};

#[async_trait]
impl Peer for PeerClient {
    async fn handshake_init(
        &self,
        base_url: &str,
        request: &HandshakeInit,
    ) -> Result<PeerReply, PeerError> {
        let body = HandshakeInitBody {
            pair_token: Some(request.pair_token.to_string()),
            auth_token: Some(request.auth_token.to_string()),
            shared_node_id: Some(request.shared_node_id.to_string()),
            fedsync: Some(FedsyncExtension::with_capabilities(&self.capabilities)),
            ..HandshakeInitBody::default()
        };
        let url = endpoint(
            base_url,
            &format!("/nodes/{}/handshake", request.shared_node_id),
        );
        let (status, answer) = self.call(Method::POST, &url, None, Some(&body)).await?;
        PeerClient::judge(status, &answer)
    }

    async fn handshake_complete(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
        auth_token: &str,
    ) -> Result<PeerReply, PeerError> {
        let body = HandshakeCompleteBody {
            auth_token: Some(auth_token.to_owned()),
            fedsync: Some(FedsyncExtension::with_capabilities(&self.capabilities)),
            ..HandshakeCompleteBody::default()
        };
        let url = endpoint(
            base_url,
            &format!("/nodes/{shared_node_id}/handshake-complete"),
        );
        let (status, answer) = self
            .call(Method::POST, &url, Some(bearer), Some(&body))
            .await?;
        PeerClient::judge(status, &answer)
    }

    async fn check_token(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
    ) -> Result<(), PeerError> {
        let url = endpoint(
            base_url,
            &format!("/nodes/{shared_node_id}/modules/exposed/?limit=1"),
        );
        let (status, answer) = self
            .call::<()>(Method::GET, &url, Some(bearer), None)
            .await?;
        PeerClient::judge(status, &answer).map(|_| ())
    }

    async fn unpair_notice(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
    ) -> Result<(), PeerError> {
        let url = endpoint(base_url, &format!("/nodes/{shared_node_id}/fedsync/unpair"));
        let (status, answer) = self
            .call(
                Method::POST,
                &url,
                Some(bearer),
                Some(&serde_json::json!({})),
            )
            .await?;
        PeerClient::judge(status, &answer).map(|_| ())
    }
}
