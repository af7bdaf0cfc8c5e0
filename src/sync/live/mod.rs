//! Live changes: a change on one node reaches its fedsync peers in well
//! under a second, instead of on the next scheduled pull. (Not to be
//! confused with `sync::notices`, which mails admins and calls webhooks.)
//!
//! - **Origin** (`outbox.rs`): every commit of records (through the
//!   `Watched` data plane, `watched.rs`) and every change of what a peer is
//!   exposed names the modules it touched; the peers that take change
//!   notices and have such a module exposed are told, by a POST to their
//!   federation URL with the pair's token, at most once per
//!   `sync.live_window` each (changes meanwhile are gathered into the next
//!   notice), one request in flight per peer. Writers never wait: a full
//!   queue drops the signal and counts it. A record that arrived from a
//!   peer is never the cause of a notice to that peer (no echo).
//! - **Destination** (`inbox.rs`): a notice records a trigger in the row
//!   of the job that pulls the module (so whichever replica holds the job
//!   runs it, once more after a run in progress) and wakes the dispatcher;
//!   at most one trigger per (peer, module) per window.
//! - **A hint, never the truth.** A notice carries no data, only the ids
//!   of the peer's exposed modules; the destination still pulls through
//!   its cursor, so a lost, repeated, forged or replayed notice costs at
//!   most one pull and never a missed or doubled record. The schedule stays
//!   as the safety net.
//! - **Who.** Peers say what they can do (`change-notices`) in the
//!   handshake and in a capability document fetched on each structure sync
//!   (`PeerCapabilities`, kept in the store). Corteza peers keep polling.
//! - **Corteza data plane** (`poll.rs`): Corteza does not say when its
//!   records change; each module exposed to a peer that takes notices is
//!   looked at every `local.corteza_change_poll` (one small request), and
//!   peers are told once the change can be served.

mod inbox;
mod outbox;
mod poll;
mod watched;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::pairing_flow::PairingService;
use super::ports::{LocalRecords, PeerError};
use super::work::Work;
use crate::domain::{Id, Node, NodeId, PeerCapabilities, PeerKind, Timestamp};
use crate::store::Store;
pub use inbox::{MAX_MODULES as MAX_NOTICE_MODULES, Received};
pub use watched::Watched;

/// What the origin tells a peer: which of the modules it exposes to that
/// peer changed, and whether what it exposes did. No data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeNotice {
    /// The origin's exposed module ids (as the peer's structure knows them).
    pub modules: Vec<Id>,
    pub structure: bool,
}

/// Calls to a fedsync peer for live changes.
#[async_trait]
pub trait LivePeer: Send + Sync {
    /// `POST {base}/nodes/{shared}/fedsync/changes`.
    async fn change_notice(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
        notice: &ChangeNotice,
    ) -> Result<(), PeerError>;
    /// `GET {base}/nodes/{shared}/fedsync/capabilities`.
    async fn capabilities(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
    ) -> Result<PeerCapabilities, PeerError>;
}

/// What is counted (`/metrics`: `fedsync_live_notices_total{event}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveEvent {
    /// A notice a peer took.
    Sent,
    /// A notice a peer sent us, authenticated.
    Received,
    /// A change or notice folded into one already on its way.
    Coalesced,
    /// A change signal dropped: the queue was full.
    Dropped,
    /// A notice we sent that the peer refused, or one we refused.
    Refused,
    /// A notice that did not reach the peer.
    Failed,
}

impl LiveEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveEvent::Sent => "sent",
            LiveEvent::Received => "received",
            LiveEvent::Coalesced => "coalesced",
            LiveEvent::Dropped => "dropped",
            LiveEvent::Refused => "refused",
            LiveEvent::Failed => "failed",
        }
    }
}

/// Where counts go (the daemon wires it to its metrics).
pub type Counter = Arc<dyn Fn(LiveEvent, u64) + Send + Sync>;

#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// `sync.live_changes`.
    pub enabled: bool,
    /// `sync.live_window`.
    pub window: Duration,
    /// `sync.reexport`: records that arrived from a peer are served (and
    /// so announced) to the others.
    pub reexport: bool,
    /// `local.corteza_change_poll`.
    pub poll: Duration,
}

/// A change, as writers signal it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Records of a local module committed; `from_peer` when every one of
    /// them arrived from that peer.
    Records {
        module: Id,
        from_peer: Option<NodeId>,
    },
    /// What is exposed to a peer changed.
    Exposures { node: NodeId },
    /// A local module's fields changed: the peers it is exposed to.
    Module { module: Id },
}

/// Live changes to and from one peer, as this process saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerLive {
    /// Notices go to the peer and come from it.
    pub on: bool,
    pub last_received: Option<Timestamp>,
    pub last_sent: Option<Timestamp>,
}

/// Queued change signals at most; beyond, signals are dropped and counted.
const QUEUE: usize = 4096;

/// The live changes of one daemon: built by the daemon, run by its task.
pub struct LiveChanges {
    settings: LiveSettings,
    store: Arc<dyn Store>,
    pairing: Arc<PairingService>,
    peer: Arc<dyn LivePeer>,
    /// Wakes the dispatcher when a notice recorded a trigger.
    wake: Arc<super::wake::Wake>,
    /// Owns the deferred triggers.
    work: Work,
    count: Counter,
    intake: mpsc::Sender<Change>,
    queue: Mutex<Option<mpsc::Receiver<Change>>>,
    seen: Mutex<HashMap<NodeId, PeerLive>>,
    inbox: inbox::Windows,
}

impl LiveChanges {
    pub fn new(
        settings: LiveSettings,
        store: Arc<dyn Store>,
        pairing: Arc<PairingService>,
        peer: Arc<dyn LivePeer>,
        wake: Arc<super::wake::Wake>,
        work: Work,
        count: Counter,
    ) -> LiveChanges {
        let (intake, queue) = mpsc::channel(QUEUE);
        LiveChanges {
            settings,
            store,
            pairing,
            peer,
            wake,
            work,
            count,
            intake,
            queue: Mutex::new(Some(queue)),
            seen: Mutex::new(HashMap::new()),
            inbox: inbox::Windows::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// The data plane, watched: its commits signal changes.
    pub fn watch(self: &Arc<Self>, records: Arc<dyn LocalRecords>) -> Arc<dyn LocalRecords> {
        Arc::new(Watched::new(records, self.clone()))
    }

    /// What is exposed to `node` changed (an exposure added, changed or
    /// removed): tell it to pull its structure.
    pub fn exposures_changed(&self, node: NodeId) {
        self.signal(Change::Exposures { node });
    }

    /// A local module's fields changed: tell the peers it is exposed to.
    pub fn module_changed(&self, module: Id) {
        self.signal(Change::Module { module });
    }

    /// Jobs must follow nodes or mappings that changed: the dispatcher
    /// reconciles at once (whether or not live changes are on).
    pub fn jobs_changed(&self) {
        self.wake.reconcile();
    }

    /// Never waits: a full queue drops the signal (counted).
    pub(crate) fn signal(&self, change: Change) {
        if !self.settings.enabled {
            return;
        }
        if self.intake.try_send(change).is_err() {
            (self.count)(LiveEvent::Dropped, 1);
        }
    }

    /// Live changes with one peer, as this process saw them.
    pub fn peer_status(&self, node: &Node, caps: Option<&PeerCapabilities>) -> PeerLive {
        let seen = self.seen().get(&node.id).copied().unwrap_or_default();
        PeerLive {
            on: self.settings.enabled
                && node.peer_kind == PeerKind::Fedsync
                && caps.is_some_and(|c| c.has(PeerCapabilities::CHANGE_NOTICES)),
            ..seen
        }
    }

    /// Asks a fedsync peer what it can do and keeps the answer (on each
    /// structure sync). A peer that cannot say keeps what it said before.
    pub async fn learn_capabilities(&self, node: &Node) {
        if !self.settings.enabled || node.peer_kind != PeerKind::Fedsync {
            return;
        }
        let Ok(Some(token)) = self.pairing.peer_token(node.id).await else {
            return;
        };
        let shared = node.shared_node_id.unwrap_or(node.id);
        match self.peer.capabilities(&node.base_url, shared, &token).await {
            Ok(caps) => {
                if let Err(error) = self
                    .store
                    .set_peer_capabilities(node.id, &caps, crate::domain::now())
                    .await
                {
                    tracing::warn!(node_id = %node.id, error = %error, "cannot keep a peer's capabilities");
                }
            }
            Err(error) => {
                tracing::debug!(node_id = %node.id, error = %error, "the peer did not say what it can do")
            }
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, PeerLive>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}
