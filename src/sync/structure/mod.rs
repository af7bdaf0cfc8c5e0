//! Structure: serving our exposed modules to a peer page by page (origin),
//! and pulling a peer's exposed modules into shared modules (destination).
//!
//! Serving pages by a keyset on the exposed module id, with opaque,
//! tamper-evident, pair-bound cursors that carry the `lastSync` filter (a
//! Corteza destination drops `lastSync` on the next page). Pulling reads
//! every page, then writes all changes in one transaction: created, changed
//! and removed shared modules, and the status of every mapping they touch.
//! A changed structure freezes nothing (Corteza W18): new fields arrive
//! unmapped, mappings of removed fields are marked broken with the reason.
//!
//! `serve.rs` is the origin side; the destination is `StructureSync`, its
//! pulls in `pull.rs`.

mod pull;
mod serve;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::pairing_flow::PairingService;
use super::ports::{PeerError, StructurePeer};
use crate::domain::{IdGenerator, NodeId, SyncRun};
use crate::store::{Store, StoreError};

pub use serve::{
    CursorPayload, PageRequest, ServeError, ServedPage, open_cursor, seal_cursor, serve_page,
};

/// Rows per page when the peer asks for none or for too many.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 500;
/// A pull that needs more pages than this is cut off (a looping origin).
pub const MAX_PAGES: u64 = 10_000;

/// Why a structure sync did not run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("node {0} does not exist")]
    NotFound(NodeId),
    #[error("{0}")]
    WrongState(String),
    #[error("the origin failed: {0}")]
    Peer(#[from] PeerError),
    #[error("{0}")]
    Protocol(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The local data plane (a Corteza beside us) cannot be reached now.
    #[error("{0}")]
    LocalUnavailable(String),
}

impl From<super::ports::LocalError> for SyncError {
    /// An unreachable data plane is retried; a refusal is an admin's to fix.
    fn from(error: super::ports::LocalError) -> SyncError {
        use super::ports::LocalError;
        match error {
            LocalError::Unavailable(_) => SyncError::LocalUnavailable(error.to_string()),
            LocalError::Store(e) => SyncError::Store(e),
            other => SyncError::WrongState(other.to_string()),
        }
    }
}

/// The destination side of structure sync.
pub struct StructureSync {
    store: Arc<dyn Store>,
    pairing: Arc<PairingService>,
    peer: Arc<dyn StructurePeer>,
    ids: Arc<IdGenerator>,
    /// This process, as written into its runs.
    owner: String,
    page_size: u32,
    running: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<()>>>>,
    /// Who hears of mappings a structure change broke.
    notices: Option<Arc<super::Notices>>,
    /// Asked to learn what the peer can do after each pull.
    live: Option<Arc<super::live::LiveChanges>>,
}

impl StructureSync {
    pub fn new(
        store: Arc<dyn Store>,
        pairing: Arc<PairingService>,
        peer: Arc<dyn StructurePeer>,
        ids: Arc<IdGenerator>,
        page_size: u32,
        owner: String,
    ) -> StructureSync {
        StructureSync {
            store,
            pairing,
            peer,
            ids,
            owner,
            page_size: page_size.clamp(1, MAX_PAGE_SIZE),
            running: Mutex::new(HashMap::new()),
            notices: None,
            live: None,
        }
    }

    /// After each successful pull, the peer's capabilities are fetched
    /// again through `live` (a fedsync peer that was upgraded says so).
    pub fn with_live(mut self, live: Arc<super::live::LiveChanges>) -> StructureSync {
        self.live = Some(live);
        self
    }

    /// Mappings a structure change breaks are reported through `notices`.
    pub fn with_notices(mut self, notices: Arc<super::Notices>) -> StructureSync {
        self.notices = Some(notices);
        self
    }

    /// Pulls the node's exposed modules now and returns the finished run.
    /// Two pulls of one node never overlap: a second waits for the first.
    pub async fn run(&self, node_id: NodeId, trigger: &str) -> Result<SyncRun, SyncError> {
        match self.run_attempt(node_id, trigger).await {
            (Some(run), None) => Ok(run),
            (_, Some(error)) => Err(error),
            (None, None) => Err(SyncError::NotFound(node_id)),
        }
    }

    /// One pull: the run it recorded (none when it could not start), and
    /// why it failed when it did.
    pub async fn run_attempt(
        &self,
        node_id: NodeId,
        trigger: &str,
    ) -> (Option<SyncRun>, Option<SyncError>) {
        match self.run_inner(node_id, trigger).await {
            Ok((run, error)) => (Some(run), error),
            Err(error) => (None, Some(error)),
        }
    }
}
