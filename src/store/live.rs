//! What live changes need from the store: the peers' capabilities, the
//! peers a local module's changes concern, and the job a notice wakes.
//! The SQL is in `live_sql.rs`.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{Id, NodeId, PeerCapabilities, Timestamp};

#[async_trait]
pub trait LiveStore: Send + Sync {
    /// Records what a peer told us it can do (replacing what it said before).
    async fn set_peer_capabilities(
        &self,
        node_id: NodeId,
        capabilities: &PeerCapabilities,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    async fn peer_capabilities(
        &self,
        node_id: NodeId,
    ) -> Result<Option<PeerCapabilities>, StoreError>;
    /// Every peer's capabilities, one query.
    async fn all_peer_capabilities(&self) -> Result<Vec<(NodeId, PeerCapabilities)>, StoreError>;
    /// Whom a change of local module `module_id` concerns: (peer, exposed
    /// module) of every paired, not removed peer that has it exposed and
    /// takes change notices.
    async fn live_exposures(&self, module_id: Id) -> Result<Vec<(NodeId, Id)>, StoreError>;
    /// The local modules some such peer has exposed.
    async fn live_modules(&self) -> Result<Vec<Id>, StoreError>;
    /// The data job pulling the module a peer exposes as `external_module_id`
    /// (there is one while it is mapped).
    async fn data_job_of(
        &self,
        node_id: NodeId,
        external_module_id: Id,
    ) -> Result<Option<Id>, StoreError>;
}
