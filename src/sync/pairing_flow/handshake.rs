//! The handshake as the admin drives it: the invitee's request (`pair`),
//! the inviter's approval (`confirm`) or refusal (`refuse`).
//!
//! A step that calls the peer runs as the daemon's work (`sync::work`):
//! once its intent is written it always records the peer's answer, even if
//! the admin's request is gone (a closed CLI, a dropped REST call), so a
//! node is never left `pair_requested` by a caller that left.

use std::future::Future;
use std::sync::Arc;

use super::{PairingError, PairingService, merge_kind};
use crate::domain::{
    self, Actor, AuditResult, CredentialKind, Node, NodeId, PairingChange, PairingStatus,
    Revocation,
};
use crate::pairing::{Action, Facts, check_action};
use crate::store::StoreError;
use crate::sync::ports::{HandshakeInit, PeerError};

impl PairingService {
    /// Invitee: sends the handshake request to the inviter and returns once
    /// it answered. On refusal the node is `failed` and the error says why.
    /// Runs as the daemon's work: a caller that leaves changes nothing.
    pub async fn pair(self: &Arc<Self>, actor: &Actor, id: NodeId) -> Result<Node, PairingError> {
        let actor = actor.clone();
        self.owned(move |me| async move { me.pair_step(&actor, id).await })
            .await
    }

    /// Inviter: approves the peer's handshake request and completes the
    /// handshake by sending our token to the base URL the admin configured.
    /// Runs as the daemon's work: a caller that leaves changes nothing.
    pub async fn confirm(
        self: &Arc<Self>,
        actor: &Actor,
        id: NodeId,
    ) -> Result<Node, PairingError> {
        let actor = actor.clone();
        self.owned(move |me| async move { me.confirm_step(&actor, id).await })
            .await
    }

    /// Keeps what a fedsync peer said it can do in its answer (a failure is
    /// only logged: the next structure sync asks again).
    async fn keep_capabilities(
        &self,
        id: NodeId,
        capabilities: Option<crate::domain::PeerCapabilities>,
    ) {
        let Some(capabilities) = capabilities else {
            return;
        };
        if let Err(error) = self
            .store
            .set_peer_capabilities(id, &capabilities, domain::now())
            .await
        {
            tracing::warn!(node_id = %id, error = %error, "cannot keep a peer's capabilities");
        }
    }

    /// Runs `step` as a task of the daemon and waits for its result.
    pub(super) async fn owned<T, F, Fut>(self: &Arc<Self>, step: F) -> Result<T, PairingError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Self>) -> Fut,
        Fut: Future<Output = Result<T, PairingError>> + Send + 'static,
    {
        self.work
            .start(step(self.clone()))
            .result()
            .await
            .map_err(|e| PairingError::Store(StoreError::Unavailable(e.to_string())))?
    }

    async fn pair_step(&self, actor: &Actor, id: NodeId) -> Result<Node, PairingError> {
        let _guard = self.lock(id).await;
        let before = self.load(id).await?;
        let ott = self.open(id, CredentialKind::PairToken).await?;
        let facts = Facts {
            holds_pair_token: ott.is_some(),
            holds_peer_token: false,
        };
        check_action(&before, Action::Pair, facts).map_err(PairingError::WrongState)?;
        let (Some(ott), Some(shared)) = (ott, before.shared_node_id) else {
            return Err(PairingError::WrongState(format!(
                "node {id} has no node URI to pair with"
            )));
        };
        let now = domain::now();
        let (issued, token) = self.mint(id, now)?;

        // Intent first: our token is live before the peer can use it, and
        // a handshake-complete that arrives at once finds the node waiting.
        let mut requested = before.clone();
        requested.status = PairingStatus::PairRequested;
        requested.status_reason =
            "handshake request sent; waiting for the peer's admin to confirm".into();
        requested.updated_at = now;
        let mut change = PairingChange::update(requested.clone());
        change.expect_status = vec![before.status];
        change.issue_tokens = vec![issued.clone()];
        change.revoke_tokens = Some(Revocation::AllExcept(
            vec![issued.id],
            "superseded by a new pairing attempt".into(),
        ));
        change.audit = vec![
            self.audit(
                actor,
                "pairing.started",
                AuditResult::Ok,
                Some(id),
                "",
                serde_json::json!({ "baseUrl": before.base_url }),
            ),
            self.audit(
                actor,
                "token.issued",
                AuditResult::Ok,
                Some(id),
                "",
                serde_json::json!({ "tokenId": issued.id.to_string() }),
            ),
        ];
        self.apply(&change).await?;

        let request = HandshakeInit {
            shared_node_id: shared,
            pair_token: ott,
            auth_token: token,
        };
        match self.peer.handshake_init(&before.base_url, &request).await {
            Ok(reply) => {
                let mut node = self.load(id).await?;
                let expect = vec![PairingStatus::PairRequested, PairingStatus::Paired];
                node.peer_kind = merge_kind(node.peer_kind, reply.peer_kind);
                node.updated_at = domain::now();
                let mut change = PairingChange::update(node.clone());
                change.expect_status = expect;
                change.delete_credentials = vec![CredentialKind::PairToken];
                change.audit = vec![self.audit(
                    actor,
                    "handshake.sent",
                    AuditResult::Ok,
                    Some(id),
                    "",
                    serde_json::json!({ "peerKind": reply.peer_kind.as_str() }),
                )];
                self.apply(&change).await?;
                self.keep_capabilities(id, reply.capabilities).await;
                Ok(node)
            }
            Err(error) => {
                let reason = match &error {
                    e if e.is_unauthorized() => format!(
                        "the peer refused the handshake ({e}); the node URI may be used, expired or wrong: ask the peer's admin for a new one and run `fedsync node add-uri`"
                    ),
                    e if e.is_retriable() => format!(
                        "the handshake request failed ({e}); retry with `fedsync node pair {id}`"
                    ),
                    e => format!("the handshake request failed ({e})"),
                };
                self.fail(
                    actor,
                    &requested,
                    &[PairingStatus::PairRequested],
                    &reason,
                    "pairing.failed",
                    Some(issued.id),
                )
                .await?;
                Err(PairingError::Peer {
                    step: "handshake request",
                    error,
                })
            }
        }
    }

    /// Inviter: declines the peer's handshake request. The token the peer
    /// sent is dropped and the node fails with a reason that says how to
    /// invite again; nothing is sent to the peer (the protocol has no
    /// refusal), whose later calls are refused.
    pub async fn refuse(&self, actor: &Actor, id: NodeId) -> Result<Node, PairingError> {
        let _guard = self.lock(id).await;
        let before = self.load(id).await?;
        let holds = self.open(id, CredentialKind::AuthToken).await?.is_some();
        let facts = Facts {
            holds_peer_token: holds,
            holds_pair_token: false,
        };
        check_action(&before, Action::Refuse, facts).map_err(PairingError::WrongState)?;
        let now = domain::now();
        let mut refused = before.clone();
        refused.status = PairingStatus::Failed;
        refused.status_reason = format!(
            "{} refused the handshake request from {} at {}; to invite the peer again, generate a new node URI with `fedsync node uri {id}`",
            actor.name,
            if before.handshake_source_addr.is_empty() {
                "the peer"
            } else {
                before.handshake_source_addr.as_str()
            },
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        refused.handshake_requested_at = None;
        refused.peer_token_fingerprint = String::new();
        refused.updated_at = now;
        let mut change = PairingChange::update(refused.clone());
        change.expect_status = vec![before.status];
        change.delete_credentials = vec![CredentialKind::AuthToken];
        change.revoke_tokens = Some(Revocation::AllExcept(
            Vec::new(),
            "the handshake request was refused".into(),
        ));
        change.audit = vec![self.audit(
            actor,
            "handshake.declined",
            AuditResult::Ok,
            Some(id),
            "refused_by_admin",
            serde_json::json!({ "sourceAddr": before.handshake_source_addr }),
        )];
        if let Some(notices) = &self.notices {
            change.notifications = notices.render(
                &crate::sync::Event::HandshakeRefused {
                    node: refused.clone(),
                    by: actor.name.clone(),
                },
                now,
            );
        }
        self.apply(&change).await?;
        if let Some(notices) = &self.notices {
            notices.wake();
        }
        tracing::info!(node_id = %id, "handshake request refused by the admin");
        Ok(refused)
    }

    async fn confirm_step(&self, actor: &Actor, id: NodeId) -> Result<Node, PairingError> {
        let _guard = self.lock(id).await;
        let before = self.load(id).await?;
        let peer_token = self.open(id, CredentialKind::AuthToken).await?;
        let facts = Facts {
            holds_peer_token: peer_token.is_some(),
            holds_pair_token: false,
        };
        check_action(&before, Action::Confirm, facts).map_err(PairingError::WrongState)?;
        let Some(peer_token) = peer_token else {
            return Err(PairingError::WrongState(format!(
                "node {id} holds no token from the peer"
            )));
        };
        let shared = before.shared_node_id.unwrap_or(before.id);
        let now = domain::now();
        let (issued, token) = self.mint(id, now)?;
        let mut confirming = before.clone();
        confirming.status = PairingStatus::PairRequested;
        confirming.status_reason = "confirmed; completing the handshake with the peer".into();
        confirming.updated_at = now;
        let mut change = PairingChange::update(confirming.clone());
        change.expect_status = vec![before.status];
        change.issue_tokens = vec![issued.clone()];
        change.audit = vec![
            self.audit(
                actor,
                "pairing.confirmed",
                AuditResult::Ok,
                Some(id),
                "",
                serde_json::json!({}),
            ),
            self.audit(
                actor,
                "token.issued",
                AuditResult::Ok,
                Some(id),
                "",
                serde_json::json!({ "tokenId": issued.id.to_string() }),
            ),
        ];
        self.apply(&change).await?;

        match self
            .peer
            .handshake_complete(&before.base_url, shared, &peer_token, &token)
            .await
        {
            Ok(reply) => {
                let mut node = confirming.clone();
                node.status = PairingStatus::Paired;
                node.status_reason = String::new();
                node.peer_kind = merge_kind(node.peer_kind, reply.peer_kind);
                node.updated_at = domain::now();
                let mut change = PairingChange::update(node.clone());
                change.expect_status = vec![PairingStatus::PairRequested];
                change.revoke_tokens = Some(Revocation::AllExcept(
                    vec![issued.id],
                    "superseded by the completed pairing".into(),
                ));
                change.audit = vec![self.audit(
                    actor,
                    "pairing.finished",
                    AuditResult::Ok,
                    Some(id),
                    "",
                    serde_json::json!({ "peerKind": node.peer_kind.as_str() }),
                )];
                self.apply(&change).await?;
                self.keep_capabilities(id, reply.capabilities).await;
                Ok(node)
            }
            Err(error) => {
                let reason = match &error {
                    e if e.is_unauthorized() => format!(
                        "the peer refused to complete the handshake ({e}); generate a new node URI with `fedsync node uri {id}` and pair again"
                    ),
                    // A completion is single use: the peer is past waiting
                    // for one (it may have taken an earlier one whose answer
                    // never came back), so confirming again cannot help.
                    e @ PeerError::Refused { status: 409, .. } => format!(
                        "the peer is not waiting for a handshake completion ({e}); it may have completed an earlier attempt whose answer was lost. To pair again, generate a new node URI with `fedsync node uri {id}` for the peer's admin to add"
                    ),
                    e => format!(
                        "completing the handshake failed ({e}); retry with `fedsync node confirm {id}`"
                    ),
                };
                self.fail(
                    actor,
                    &confirming,
                    &[PairingStatus::PairRequested],
                    &reason,
                    "pairing.failed",
                    Some(issued.id),
                )
                .await?;
                Err(PairingError::Peer {
                    step: "handshake completion",
                    error,
                })
            }
        }
    }
}
