//! Pairing as peers drive it: the unauthenticated handshake request (checked
//! only by the OTT), peer token authentication, the authenticated handshake
//! completion, and a fedsync peer's unpair notice.
//!
//! Refusals of the handshake are uniform (one answer for an unknown node, a
//! wrong, used, expired or locked token, a mismatched id and a node in the
//! wrong state), change no state but the failure counter, and are audited
//! with the precise reason.

use zeroize::Zeroizing;

use super::{PairingError, PairingService, merge_kind};
use crate::crypto::{
    TokenRejection, constant_time_eq, fingerprint, parse_bearer, sha256, verify_peer_token,
};
use crate::domain::{
    self, Actor, AuditResult, CredentialKind, Id, IssuedToken, Node, NodeId, OttChange,
    PairingChange, PairingStatus, PeerKind, Revocation, Role,
};
use crate::pairing::{Action, Facts, check_action};

/// A handshake request as received (`POST /nodes/{id}/handshake`), already
/// decoded from either spelling (Corteza's or the documentation's).
pub struct InboundHandshake {
    /// `{id}` from the path, as sent.
    pub path_node_id: String,
    /// The node id the body names (`sharedNodeID`, or the user part of the
    /// documented `nodeURI`).
    pub body_node_id: String,
    pub pair_token: Zeroizing<String>,
    pub auth_token: Zeroizing<String>,
    /// `Fedsync` when the request carried our extension.
    pub peer_kind: PeerKind,
    pub source_addr: String,
}

/// A request that presented a valid token we issued.
#[derive(Debug, Clone)]
pub struct AuthenticatedPeer {
    pub node: Node,
    pub token: IssuedToken,
    pub source_addr: String,
}

/// Why a peer request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAuthError {
    /// No usable token: 401.
    Unauthorized,
    /// A valid token of another pair, or a path that names no pair of it: 404.
    NotFound,
}

/// After this long, a token's use is recorded again (so each request does not write).
const TOUCH_INTERVAL_SECS: i64 = 60;

impl PairingService {
    /// Handles a handshake request. `Err(None)` is the uniform refusal;
    /// `Err(Some(_))` a store or crypto failure.
    pub async fn accept_handshake(
        &self,
        request: InboundHandshake,
    ) -> Result<(), Option<PairingError>> {
        let actor = Actor::peer(&request.source_addr);
        let presented = sha256(request.pair_token.as_bytes());
        let Ok(node_id) = request.path_node_id.parse::<Id>().map(NodeId) else {
            return self
                .refuse_handshake(&actor, &request, None, "bad_node_id")
                .await;
        };
        if request.body_node_id != request.path_node_id {
            return self
                .refuse_handshake(&actor, &request, Some(node_id), "id_mismatch")
                .await;
        }
        let node = match self
            .store
            .get_node(node_id)
            .await
            .map_err(|e| Some(e.into()))?
        {
            Some(node) if node.deleted_at.is_none() && node.role == Role::Inviter => node,
            _ => {
                // Same work as a known node, so timing does not tell them apart.
                let _ = constant_time_eq(&presented, &[0u8; 32]);
                return self
                    .refuse_handshake(&actor, &request, None, "unknown_node")
                    .await;
            }
        };
        let token_row = self
            .store
            .get_pairing_token(node_id)
            .await
            .map_err(|e| Some(e.into()))?;
        let Some(row) = token_row else {
            let _ = constant_time_eq(&presented, &[0u8; 32]);
            return self
                .refuse_handshake(&actor, &request, Some(node_id), "no_token")
                .await;
        };
        let stored = row.token_hash.clone().unwrap_or_else(|| vec![0u8; 32]);
        let matches = constant_time_eq(&presented, &stored) && row.token_hash.is_some();
        if !matches {
            let reason = if row.locked_at.is_some() {
                "locked"
            } else if row.consumed_at.is_some() {
                "used"
            } else {
                "wrong_token"
            };
            if reason == "wrong_token" {
                let now = domain::now();
                let failure = self
                    .store
                    .record_ott_failure(node_id, self.settings.max_failed_attempts, now)
                    .await
                    .map_err(|e| Some(e.into()))?;
                if failure.is_some_and(|f| f.locked) {
                    let event = self.audit(
                        &actor,
                        "ott.locked",
                        AuditResult::Refused,
                        Some(node_id),
                        "too_many_failures",
                        serde_json::json!({ "attempts": self.settings.max_failed_attempts }),
                    );
                    self.store
                        .append_audit(&event)
                        .await
                        .map_err(|e| Some(e.into()))?;
                }
            }
            return self
                .refuse_handshake(&actor, &request, Some(node_id), reason)
                .await;
        }
        let now = domain::now();
        if row.expires_at <= now {
            self.store
                .void_ott(node_id)
                .await
                .map_err(|e| Some(e.into()))?;
            let event = self.audit(
                &actor,
                "ott.expired",
                AuditResult::Refused,
                Some(node_id),
                "expired",
                serde_json::json!({}),
            );
            self.store
                .append_audit(&event)
                .await
                .map_err(|e| Some(e.into()))?;
            return self
                .refuse_handshake(&actor, &request, Some(node_id), "expired")
                .await;
        }
        if check_action(&node, Action::AcceptHandshake, Facts::default()).is_err() {
            return self
                .refuse_handshake(&actor, &request, Some(node_id), "wrong_state")
                .await;
        }
        if request.auth_token.is_empty() {
            return self
                .refuse_handshake(&actor, &request, Some(node_id), "no_auth_token")
                .await;
        }

        let mut requested = node.clone();
        requested.status = PairingStatus::PairRequested;
        requested.status_reason = format!(
            "handshake request from {} at {}; approve it with `fedsync node confirm {node_id}`",
            request.source_addr,
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        requested.shared_node_id = Some(node_id);
        requested.handshake_requested_at = Some(now);
        requested.handshake_source_addr = request.source_addr.clone();
        requested.peer_token_fingerprint = fingerprint(&request.auth_token);
        requested.peer_kind = request.peer_kind;
        requested.updated_at = now;
        let mut change = PairingChange::update(requested);
        change.expect_status = vec![PairingStatus::Pending];
        change.ott = Some(OttChange::Consume {
            token_hash: presented.to_vec(),
            now,
        });
        change.put_credentials = vec![
            self.seal(node_id, CredentialKind::AuthToken, &request.auth_token, now)
                .map_err(Some)?,
        ];
        change.audit = vec![
            self.audit(
                &actor,
                "ott.consumed",
                AuditResult::Ok,
                Some(node_id),
                "",
                serde_json::json!({}),
            ),
            self.audit(
                &actor,
                "handshake.requested",
                AuditResult::Ok,
                Some(node_id),
                "",
                serde_json::json!({
                    "peerTokenFingerprint": fingerprint(&request.auth_token),
                    "peerKind": request.peer_kind.as_str(),
                }),
            ),
        ];
        if let Some(notices) = &self.notices {
            change.notifications = notices.render(
                &crate::sync::Event::HandshakeRequested {
                    node: change.node.clone(),
                    source_addr: request.source_addr.clone(),
                    at: now,
                },
                now,
            );
        }
        if self
            .store
            .apply_pairing_change(&change)
            .await
            .map_err(|e| Some(e.into()))?
        {
            if let Some(notices) = &self.notices {
                notices.wake();
            }
            tracing::info!(node_id = %node_id, source_addr = %request.source_addr, "handshake request accepted; waiting for the admin to confirm");
            Ok(())
        } else {
            // Another request with the same token won the race.
            self.refuse_handshake(&actor, &request, Some(node_id), "race_lost")
                .await
        }
    }

    /// Audits a request refused by an inbound limit of the federation
    /// listener: once when an address or a pair starts being limited, not for
    /// each request of a flood. `reason`: `handshake_rate`,
    /// `handshake_lockout`, `peer_rate`.
    pub async fn limited(&self, source_addr: &str, node_id: Option<NodeId>, reason: &'static str) {
        let event = self.audit(
            &Actor::peer(source_addr),
            "federation.limited",
            AuditResult::Refused,
            node_id,
            reason,
            serde_json::json!({}),
        );
        tracing::warn!(reason, source_addr, node_id = ?node_id.map(|n| n.to_string()), "peer requests refused by a limit");
        if let Err(e) = self.store.append_audit(&event).await {
            tracing::warn!(error = %e, "cannot record the audit event of a limit");
        }
    }

    /// The uniform refusal of a handshake request, audited with its reason.
    async fn refuse_handshake(
        &self,
        actor: &Actor,
        request: &InboundHandshake,
        node_id: Option<NodeId>,
        reason: &'static str,
    ) -> Result<(), Option<PairingError>> {
        let event = self.audit(
            actor,
            "handshake.refused",
            AuditResult::Refused,
            node_id,
            reason,
            serde_json::json!({ "pathNodeId": truncate(&request.path_node_id) }),
        );
        tracing::info!(reason, source_addr = %request.source_addr, "handshake request refused");
        self.store
            .append_audit(&event)
            .await
            .map_err(|e| Some(e.into()))?;
        Err(None)
    }

    /// Authenticates a peer request: `authorization` header values and the
    /// `{id}` of the path. Every failure is audited.
    pub async fn authenticate_peer(
        &self,
        authorization: &[&[u8]],
        path_node_id: Option<&str>,
        source_addr: &str,
    ) -> Result<AuthenticatedPeer, PeerAuthError> {
        let actor = Actor::peer(source_addr);
        let fail = |node_id: Option<NodeId>, token_id, reason: &str, outcome: PeerAuthError| {
            let mut event = self.audit(
                &actor,
                if outcome == PeerAuthError::NotFound {
                    "peer.cross_pair"
                } else {
                    "peer.auth_failed"
                },
                AuditResult::Refused,
                node_id,
                reason,
                serde_json::json!({ "pathNodeId": truncate(path_node_id.unwrap_or_default()) }),
            );
            event.token_id = token_id;
            let store = self.store.clone();
            async move {
                tracing::info!(reason = %event.reason, source_addr = %event.source_addr, "peer request refused");
                if let Err(error) = store.append_audit(&event).await {
                    tracing::error!(error = %error, "cannot write audit event");
                }
                Err(outcome)
            }
        };
        let token = match parse_bearer(authorization) {
            Ok(token) => token,
            Err(rejection) => {
                let reason = if rejection == TokenRejection::Missing {
                    "missing"
                } else {
                    "malformed_header"
                };
                return fail(None, None, reason, PeerAuthError::Unauthorized).await;
            }
        };
        let Some(claims) = verify_peer_token(&self.signing_key, token) else {
            return fail(None, None, "unknown_token", PeerAuthError::Unauthorized).await;
        };
        let issued = match self.store.get_issued_token(claims.id).await {
            Ok(Some(issued)) => issued,
            Ok(None) => {
                return fail(
                    None,
                    Some(claims.id),
                    "unregistered",
                    PeerAuthError::Unauthorized,
                )
                .await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot look up a peer token");
                return Err(PeerAuthError::Unauthorized);
            }
        };
        if issued.node_id != claims.node_id
            || !constant_time_eq(&sha256(token.as_bytes()), &issued.token_hash)
        {
            return fail(
                None,
                Some(claims.id),
                "unregistered",
                PeerAuthError::Unauthorized,
            )
            .await;
        }
        if issued.revoked_at.is_some() {
            return fail(
                Some(issued.node_id),
                Some(issued.id),
                "revoked",
                PeerAuthError::Unauthorized,
            )
            .await;
        }
        let now = domain::now();
        if let Some(idle) = self
            .settings
            .token_idle_timeout
            .and_then(|d| chrono::Duration::from_std(d).ok())
            && issued.last_used_at.unwrap_or(issued.created_at) + idle < now
        {
            let _ = self.store.revoke_issued_token(issued.id, now, "idle").await;
            let event = self.audit(
                &Actor::system(),
                "token.revoked",
                AuditResult::Ok,
                Some(issued.node_id),
                "idle",
                serde_json::json!({ "tokenId": issued.id.to_string() }),
            );
            let _ = self.store.append_audit(&event).await;
            return fail(
                Some(issued.node_id),
                Some(issued.id),
                "idle",
                PeerAuthError::Unauthorized,
            )
            .await;
        }
        let node = match self.store.get_node(issued.node_id).await {
            Ok(Some(node)) if node.deleted_at.is_none() => node,
            _ => {
                return fail(
                    Some(issued.node_id),
                    Some(issued.id),
                    "node_removed",
                    PeerAuthError::Unauthorized,
                )
                .await;
            }
        };
        // Routes without a node in the path (the documented ones) name the
        // pair by the token alone.
        if let Some(path_node_id) = path_node_id {
            let path_id = path_node_id.parse::<Id>().ok().map(NodeId);
            if path_id.is_none() || (path_id != node.shared_node_id && path_id != Some(node.id)) {
                return fail(
                    Some(node.id),
                    Some(issued.id),
                    "cross_pair",
                    PeerAuthError::NotFound,
                )
                .await;
            }
        }
        let stale = issued
            .last_used_at
            .is_none_or(|at| (now - at).num_seconds() >= TOUCH_INTERVAL_SECS)
            || issued.last_used_addr != source_addr;
        if stale
            && let Err(error) = self
                .store
                .touch_issued_token(issued.id, now, source_addr)
                .await
        {
            tracing::warn!(error = %error, "cannot record a peer token's use");
        }
        Ok(AuthenticatedPeer {
            node,
            token: issued,
            source_addr: source_addr.to_owned(),
        })
    }

    /// Invitee: the inviter completes the handshake with its token for us.
    pub async fn complete_handshake(
        &self,
        peer: &AuthenticatedPeer,
        auth_token: &str,
        peer_kind: PeerKind,
    ) -> Result<(), PairingError> {
        let actor = Actor {
            name: "peer".into(),
            token_id: Some(peer.token.id),
            source_addr: peer.source_addr.clone(),
        };
        let _guard = self.lock(peer.node.id).await;
        let node = self.load(peer.node.id).await?;
        if let Err(message) = check_action(&node, Action::CompleteHandshake, Facts::default()) {
            let event = self.audit(
                &actor,
                "handshake.refused",
                AuditResult::Refused,
                Some(node.id),
                "wrong_state",
                serde_json::json!({}),
            );
            self.store.append_audit(&event).await?;
            return Err(PairingError::WrongState(message));
        }
        if auth_token.is_empty() {
            return Err(PairingError::Invalid("authToken is empty".into()));
        }
        let now = domain::now();
        let mut paired = node.clone();
        paired.status = PairingStatus::Paired;
        paired.status_reason = String::new();
        paired.peer_token_fingerprint = fingerprint(auth_token);
        paired.peer_kind = merge_kind(node.peer_kind, peer_kind);
        paired.updated_at = now;
        let mut change = PairingChange::update(paired);
        change.expect_status = vec![PairingStatus::PairRequested];
        change.put_credentials =
            vec![self.seal(node.id, CredentialKind::AuthToken, auth_token, now)?];
        change.delete_credentials = vec![CredentialKind::PairToken];
        change.revoke_tokens = Some(Revocation::AllExcept(
            vec![peer.token.id],
            "superseded by the completed pairing".into(),
        ));
        change.audit = vec![self.audit(
            &actor,
            "pairing.finished",
            AuditResult::Ok,
            Some(node.id),
            "",
            serde_json::json!({ "peerTokenFingerprint": fingerprint(auth_token) }),
        )];
        self.apply(&change).await?;
        tracing::info!(node_id = %node.id, "paired");
        Ok(())
    }

    /// A fedsync peer removed the pair: our tokens for it stop working and
    /// the node says so; its exposures, mappings and links stay.
    pub async fn unpaired_by_peer(&self, peer: &AuthenticatedPeer) -> Result<(), PairingError> {
        let actor = Actor {
            name: "peer".into(),
            token_id: Some(peer.token.id),
            source_addr: peer.source_addr.clone(),
        };
        let _guard = self.lock(peer.node.id).await;
        let node = self.load(peer.node.id).await?;
        let mut failed = node.clone();
        failed.status = PairingStatus::Failed;
        failed.status_reason =
            "the peer removed this pair; ask its admin for a new node URI to pair again".into();
        failed.updated_at = domain::now();
        let mut change = PairingChange::update(failed);
        change.expect_status = vec![node.status];
        change.delete_credentials = vec![CredentialKind::AuthToken];
        change.revoke_tokens = Some(Revocation::AllExcept(
            Vec::new(),
            "the peer removed the pair".into(),
        ));
        change.audit = vec![self.audit(
            &actor,
            "pairing.removed_by_peer",
            AuditResult::Ok,
            Some(node.id),
            "",
            serde_json::json!({}),
        )];
        self.apply(&change).await
    }
}

/// At most 40 characters of untrusted text, for audit details.
fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}
