//! Live changes to a fedsync peer: change notices and its capability
//! document.

use async_trait::async_trait;
use http::Method;

use super::{PeerClient, endpoint};
use crate::domain::{NodeId, PeerCapabilities};
use crate::federation::wire::Envelope;
use crate::federation::wire::live::{CapabilitiesDoc, ChangeNoticeBody};
use crate::sync::PeerError;
use crate::sync::live::{ChangeNotice, LivePeer};

#[async_trait]
impl LivePeer for PeerClient {
    async fn change_notice(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
        notice: &ChangeNotice,
    ) -> Result<(), PeerError> {
        let url = endpoint(
            base_url,
            &format!("/nodes/{shared_node_id}/fedsync/changes"),
        );
        let body = ChangeNoticeBody::of(notice);
        let (status, answer) = self
            .call(Method::POST, &url, Some(bearer), Some(&body))
            .await?;
        PeerClient::judge(status, &answer).map(|_| ())
    }

    async fn capabilities(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
    ) -> Result<PeerCapabilities, PeerError> {
        let url = endpoint(
            base_url,
            &format!("/nodes/{shared_node_id}/fedsync/capabilities"),
        );
        let (status, answer) = self
            .call::<()>(Method::GET, &url, Some(bearer), None)
            .await?;
        PeerClient::judge(status, &answer)?;
        let doc: Envelope<CapabilitiesDoc> = serde_json::from_slice(&answer)
            .map_err(|e| PeerError::Protocol(format!("capability document: {e}")))?;
        Ok(doc.response.capabilities())
    }
}
