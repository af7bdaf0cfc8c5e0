//! The origin side: change signals become notices, gathered per peer and
//! sent at most once per window each, one request in flight per peer, so a
//! peer that never answers holds up neither the writers nor other peers.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Change, ChangeNotice, LiveChanges, LiveEvent};
use crate::domain::{Id, NodeId};
use crate::sync::ports::PeerError;

/// What waits for one peer.
#[derive(Debug, Default)]
struct Outbox {
    modules: BTreeSet<Id>,
    structure: bool,
    in_flight: bool,
    last_sent: Option<Instant>,
}

impl Outbox {
    fn pending(&self) -> bool {
        self.structure || !self.modules.is_empty()
    }
}

/// Whom a local module's changes concern, cached briefly (a write burst
/// asks once); a change of exposures clears it.
#[derive(Default)]
struct Targets(HashMap<Id, (Instant, Vec<(NodeId, Id)>)>);

const TARGETS_FOR: std::time::Duration = std::time::Duration::from_secs(2);

impl LiveChanges {
    /// Turns change signals into notices until `stop`. The daemon runs it.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let Some(mut queue) = self.queue.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let mut boxes: HashMap<NodeId, Outbox> = HashMap::new();
        let mut targets = Targets::default();
        let mut sending: JoinSet<(NodeId, Result<(), PeerError>)> = JoinSet::new();
        loop {
            let due = next_due(&boxes, self.settings.window);
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                Some(done) = sending.join_next() => {
                    if let Ok((node, result)) = done {
                        self.sent(&mut boxes, node, result);
                    }
                }
                change = queue.recv() => match change {
                    Some(change) => self.route(change, &mut boxes, &mut targets).await,
                    None => break,
                },
                _ = sleep_until(due), if due.is_some() => {}
            }
            self.flush(&mut boxes, &mut sending);
        }
        // Notices in flight are cut: a lost notice costs at most latency.
        sending.abort_all();
    }

    /// Adds a change to the outboxes of the peers it concerns.
    async fn route(
        &self,
        change: Change,
        boxes: &mut HashMap<NodeId, Outbox>,
        targets: &mut Targets,
    ) {
        match change {
            Change::Records { module, from_peer } => {
                // Records that arrived from a peer go to the others only
                // when re-exported, and never back to that peer.
                if from_peer.is_some() && !self.settings.reexport {
                    return;
                }
                for (node, exposed) in self.targets(module, targets).await {
                    if Some(node) == from_peer {
                        continue;
                    }
                    let outbox = boxes.entry(node).or_default();
                    if !outbox.modules.insert(exposed) {
                        (self.count)(LiveEvent::Coalesced, 1);
                    }
                }
            }
            Change::Exposures { node } => {
                targets.0.clear();
                if self.takes_notices(node).await {
                    boxes.entry(node).or_default().structure = true;
                }
            }
            Change::Module { module } => {
                targets.0.clear();
                for (node, _) in self.targets(module, targets).await {
                    boxes.entry(node).or_default().structure = true;
                }
            }
        }
    }

    async fn targets(&self, module: Id, cache: &mut Targets) -> Vec<(NodeId, Id)> {
        if let Some((at, found)) = cache.0.get(&module)
            && at.elapsed() < TARGETS_FOR
        {
            return found.clone();
        }
        match self.store.live_exposures(module).await {
            Ok(found) => {
                cache.0.insert(module, (Instant::now(), found.clone()));
                found
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot find the peers a change concerns");
                Vec::new()
            }
        }
    }

    async fn takes_notices(&self, node: NodeId) -> bool {
        matches!(
            self.store.peer_capabilities(node).await,
            Ok(Some(caps)) if caps.has(crate::domain::PeerCapabilities::CHANGE_NOTICES)
        )
    }

    /// Starts a notice to every peer whose window is over and that has
    /// none in flight.
    fn flush(
        self: &Arc<Self>,
        boxes: &mut HashMap<NodeId, Outbox>,
        sending: &mut JoinSet<(NodeId, Result<(), PeerError>)>,
    ) {
        let now = Instant::now();
        for (node, outbox) in boxes.iter_mut() {
            let open = outbox
                .last_sent
                .is_none_or(|at| now >= at + self.settings.window);
            if !outbox.pending() || outbox.in_flight || !open {
                continue;
            }
            let notice = ChangeNotice {
                modules: std::mem::take(&mut outbox.modules).into_iter().collect(),
                structure: std::mem::take(&mut outbox.structure),
            };
            outbox.in_flight = true;
            outbox.last_sent = Some(now);
            let me = self.clone();
            let node = *node;
            sending.spawn(async move { (node, me.send(node, &notice).await) });
        }
    }

    async fn send(&self, node: NodeId, notice: &ChangeNotice) -> Result<(), PeerError> {
        let peer = match self.store.get_node(node).await {
            Ok(Some(peer)) if peer.deleted_at.is_none() => peer,
            Ok(_) => return Ok(()),
            Err(error) => return Err(PeerError::Unreachable(format!("our store: {error}"))),
        };
        let token = match self.pairing.peer_token(node).await {
            Ok(Some(token)) => token,
            Ok(None) => return Ok(()),
            Err(error) => return Err(PeerError::Unreachable(format!("our token: {error}"))),
        };
        let shared = peer.shared_node_id.unwrap_or(peer.id);
        self.peer
            .change_notice(&peer.base_url, shared, &token, notice)
            .await
    }

    fn sent(
        &self,
        boxes: &mut HashMap<NodeId, Outbox>,
        node: NodeId,
        result: Result<(), PeerError>,
    ) {
        if let Some(outbox) = boxes.get_mut(&node) {
            outbox.in_flight = false;
            if !outbox.pending()
                && outbox
                    .last_sent
                    .is_some_and(|at| at.elapsed() > TARGETS_FOR)
            {
                boxes.remove(&node);
            }
        }
        match result {
            Ok(()) => {
                (self.count)(LiveEvent::Sent, 1);
                self.seen().entry(node).or_default().last_sent = Some(crate::domain::now());
            }
            Err(error) => {
                let event = if error.is_unauthorized()
                    || matches!(error, PeerError::Refused { status: 404, .. })
                {
                    LiveEvent::Refused
                } else {
                    LiveEvent::Failed
                };
                (self.count)(event, 1);
                tracing::debug!(node_id = %node, error = %error, "a change notice did not reach the peer; it pulls on its schedule");
            }
        }
    }
}

/// When the next outbox's window ends (`None`: nothing waits on a window).
fn next_due(boxes: &HashMap<NodeId, Outbox>, window: std::time::Duration) -> Option<Instant> {
    boxes
        .values()
        .filter(|b| b.pending() && !b.in_flight)
        .filter_map(|b| b.last_sent.map(|at| at + window))
        .min()
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
