//! Pairing, as the admin drives it and as peers take part in it.
//!
//! Every step that writes, writes through one `PairingChange` (one
//! transaction): a node is never half-paired. A step that needs the peer
//! first records its intent, calls the peer, then records the outcome; a
//! failed call leaves the node `failed` with a reason that says what failed
//! and what to run, and the step can be retried. Secrets (OTTs, tokens) are
//! stored only as hashes or ciphertext and never logged.

mod inbound;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;
use zeroize::Zeroizing;

pub use inbound::{AuthenticatedPeer, InboundHandshake, PeerAuthError};

use super::ports::{HandshakeInit, Peer, PeerError};
use crate::crypto::{
    self, CryptoError, EncryptionKey, PeerTokenClaims, SigningKey, fingerprint, generate_ott,
    mint_peer_token, sha256,
};
use crate::domain::{
    self, Actor, AuditEvent, AuditResult, CredentialKind, IdGenerator, IssuedToken, Node, NodeId,
    OttChange, PairingChange, PairingStatus, PeerCredential, PeerKind, Revocation, Role, Timestamp,
    TokenId,
};
use crate::pairing::{
    Action, Facts, check_action, format_node_uri, parse_base_url, parse_node_uri,
};
use crate::store::{Store, StoreError};

/// Settings of the pairing flow (from config).
#[derive(Debug, Clone)]
pub struct PairingSettings {
    /// Our federation base URL as peers reach it; needed to hand out URIs.
    pub public_url: Option<url::Url>,
    /// Our name, sent in node URIs.
    pub label: String,
    pub allow_insecure_peers: bool,
    /// How long a node URI's OTT stays valid.
    pub ott_ttl: Duration,
    /// Wrong OTTs after which the OTT is voided.
    pub max_failed_attempts: u32,
    /// Tokens we issued that go unused this long are revoked (`None`: never).
    pub token_idle_timeout: Option<Duration>,
}

/// Why a pairing action did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error("node {0} does not exist")]
    NotFound(NodeId),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    WrongState(String),
    #[error("{0}")]
    NotConfigured(String),
    /// The peer call failed; the node is now `failed` with this reason.
    #[error("{step} failed: {error}")]
    Peer {
        step: &'static str,
        error: PeerError,
    },
    #[error("node {0} changed while this action ran; try again")]
    Conflict(NodeId),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A freshly generated node URI. The URI is a secret for the admin to pass on.
pub struct IssuedUri {
    pub uri: Zeroizing<String>,
    pub expires_at: Timestamp,
}

/// Changes to a node's descriptive fields.
#[derive(Debug, Clone, Default)]
pub struct NodeUpdate {
    pub name: Option<String>,
    pub contact: Option<String>,
    pub base_url: Option<String>,
}

/// The outcome of calling the peer with the token it gave us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCheck {
    pub ok: bool,
    pub message: String,
}

/// The pairing service: one per daemon.
pub struct PairingService {
    store: Arc<dyn Store>,
    peer: Arc<dyn Peer>,
    signing_key: SigningKey,
    encryption_key: EncryptionKey,
    ids: Arc<IdGenerator>,
    settings: PairingSettings,
    /// Serialises admin actions on one node within this process.
    node_locks: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<()>>>>,
    /// Who hears of handshake requests; `None`: nobody.
    notices: Option<Arc<super::Notices>>,
}

const MAX_NAME_CHARS: usize = 64;
const MAX_CONTACT_CHARS: usize = 254;

impl PairingService {
    pub fn new(
        store: Arc<dyn Store>,
        peer: Arc<dyn Peer>,
        signing_key: SigningKey,
        encryption_key: EncryptionKey,
        ids: Arc<IdGenerator>,
        settings: PairingSettings,
    ) -> PairingService {
        PairingService {
            store,
            peer,
            signing_key,
            encryption_key,
            ids,
            settings,
            node_locks: Mutex::new(HashMap::new()),
            notices: None,
        }
    }

    /// Admins are told of handshake requests through `notices`.
    pub fn with_notices(mut self, notices: Arc<super::Notices>) -> PairingService {
        self.notices = Some(notices);
        self
    }

    pub fn settings(&self) -> &PairingSettings {
        &self.settings
    }

    /// Registers a peer to invite and returns its node URI.
    pub async fn create_node(
        &self,
        actor: &Actor,
        name: &str,
        base_url: &str,
        contact: &str,
    ) -> Result<(Node, IssuedUri), PairingError> {
        let public_url = self.public_url()?;
        let name = check_text("name", name, MAX_NAME_CHARS, false)?;
        let contact = check_text("contact", contact, MAX_CONTACT_CHARS, true)?;
        let base_url = parse_base_url(base_url, self.settings.allow_insecure_peers)
            .map_err(|e| PairingError::Invalid(format!("--base-url: {e}")))?;
        let now = domain::now();
        let node = Node::new_pending(
            NodeId(self.ids.next_id()),
            Role::Inviter,
            &name,
            &base_url,
            &contact,
            now,
        );
        let (ott, ott_change, expires_at) = self.new_ott(now)?;
        let mut change = PairingChange::update(node.clone());
        change.insert = true;
        change.ott = Some(ott_change);
        change.audit = vec![
            self.audit(
                actor,
                "node.created",
                AuditResult::Ok,
                Some(node.id),
                "",
                serde_json::json!({ "baseUrl": base_url, "role": "inviter" }),
            ),
            self.audit(
                actor,
                "ott.generated",
                AuditResult::Ok,
                Some(node.id),
                "",
                serde_json::json!({ "expiresAt": expires_at.to_rfc3339() }),
            ),
        ];
        self.store.apply_pairing_change(&change).await?;
        let uri = format_node_uri(
            &public_url,
            node.id,
            &ott,
            &self.settings.label,
            self.settings.allow_insecure_peers,
        );
        Ok((node, IssuedUri { uri, expires_at }))
    }

    /// A new OTT and node URI for an inviter node. On a node that is already
    /// paired (or failed), this starts a re-pairing: the node waits for a
    /// new handshake; its exposures, mappings and links stay.
    pub async fn generate_uri(
        &self,
        actor: &Actor,
        id: NodeId,
    ) -> Result<(Node, IssuedUri), PairingError> {
        let public_url = self.public_url()?;
        let _guard = self.lock(id).await;
        let before = self.load(id).await?;
        check_action(&before, Action::GenerateUri, Facts::default())
            .map_err(PairingError::WrongState)?;
        let now = domain::now();
        let (ott, ott_change, expires_at) = self.new_ott(now)?;
        let mut node = before.clone();
        node.updated_at = now;
        let repairing = before.status != PairingStatus::Pending;
        if repairing {
            node.status = PairingStatus::Pending;
            node.status_reason =
                "re-pairing: waiting for the peer's handshake with the new node URI".into();
        }
        let mut change = PairingChange::update(node.clone());
        change.expect_status = vec![before.status];
        change.ott = Some(ott_change);
        change.audit = vec![self.audit(
            actor,
            "ott.generated",
            AuditResult::Ok,
            Some(id),
            "",
            serde_json::json!({ "expiresAt": expires_at.to_rfc3339(), "repairing": repairing }),
        )];
        self.apply(&change).await?;
        let uri = format_node_uri(
            &public_url,
            node.id,
            &ott,
            &self.settings.label,
            self.settings.allow_insecure_peers,
        );
        Ok((node, IssuedUri { uri, expires_at }))
    }

    /// Registers the inviter from its node URI (pending). The same peer
    /// added again (same base URL and shared node id) is the same node,
    /// reset for re-pairing, so its exposures, mappings and links stay.
    pub async fn add_from_uri(
        &self,
        actor: &Actor,
        uri: &str,
    ) -> Result<(Node, bool), PairingError> {
        let parsed = parse_node_uri(uri, self.settings.allow_insecure_peers)
            .map_err(|e| PairingError::Invalid(e.to_string()))?;
        if let Some(ours) = self.store.get_node(parsed.node_id).await?
            && ours.role == Role::Inviter
            && self.settings.public_url.as_ref().is_some_and(|u| {
                parse_base_url(u.as_str(), true).is_ok_and(|b| b == parsed.base_url)
            })
        {
            return Err(PairingError::Invalid(
                "this node URI was generated by this node; give it to the peer's admin instead"
                    .into(),
            ));
        }
        let now = domain::now();
        let existing = self
            .store
            .find_invitee_node(&parsed.base_url, parsed.node_id)
            .await?;
        let name = if parsed.name.is_empty() {
            parsed.host.clone()
        } else {
            parsed.name.clone()
        };
        let (node, expect, readded) = match existing {
            Some(before) => {
                let mut node = before.clone();
                node.status = PairingStatus::Pending;
                node.status_reason =
                    "added again from a new node URI; run `fedsync node pair` to re-pair".into();
                node.name = name;
                node.updated_at = now;
                (node, vec![before.status], true)
            }
            None => {
                let mut node = Node::new_pending(
                    NodeId(self.ids.next_id()),
                    Role::Invitee,
                    &name,
                    &parsed.base_url,
                    "",
                    now,
                );
                node.shared_node_id = Some(parsed.node_id);
                (node, Vec::new(), false)
            }
        };
        let mut change = PairingChange::update(node.clone());
        change.insert = !readded;
        change.expect_status = expect;
        change.put_credentials =
            vec![self.seal(node.id, CredentialKind::PairToken, &parsed.token, now)?];
        if readded {
            change.delete_credentials = vec![CredentialKind::AuthToken];
            change.revoke_tokens = Some(Revocation::AllExcept(
                Vec::new(),
                "re-pairing from a new node URI".into(),
            ));
        }
        change.audit = vec![self.audit(
            actor,
            if readded { "node.readded" } else { "node.created" },
            AuditResult::Ok,
            Some(node.id),
            "",
            serde_json::json!({ "baseUrl": node.base_url, "sharedNodeId": parsed.node_id.to_string(), "role": "invitee" }),
        )];
        let _guard = self.lock(node.id).await;
        self.apply(&change).await?;
        Ok((node, readded))
    }

    /// Invitee: sends the handshake request to the inviter and returns once
    /// it answered. On refusal the node is `failed` and the error says why.
    pub async fn pair(&self, actor: &Actor, id: NodeId) -> Result<Node, PairingError> {
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
                &super::Event::HandshakeRefused {
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

    /// Inviter: approves the peer's handshake request and completes the
    /// handshake by sending our token to the base URL the admin configured.
    pub async fn confirm(&self, actor: &Actor, id: NodeId) -> Result<Node, PairingError> {
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

    pub async fn update_node(
        &self,
        actor: &Actor,
        id: NodeId,
        update: &NodeUpdate,
    ) -> Result<Node, PairingError> {
        let _guard = self.lock(id).await;
        let before = self.load(id).await?;
        let mut node = before.clone();
        if let Some(name) = &update.name {
            node.name = check_text("name", name, MAX_NAME_CHARS, false)?;
        }
        if let Some(contact) = &update.contact {
            node.contact = check_text("contact", contact, MAX_CONTACT_CHARS, true)?;
        }
        if let Some(base_url) = &update.base_url {
            node.base_url = parse_base_url(base_url, self.settings.allow_insecure_peers)
                .map_err(|e| PairingError::Invalid(format!("--base-url: {e}")))?;
        }
        node.updated_at = domain::now();
        let mut change = PairingChange::update(node.clone());
        change.expect_status = vec![before.status];
        change.audit = vec![self.audit(
            actor,
            "node.updated",
            AuditResult::Ok,
            Some(id),
            "",
            serde_json::json!({ "name": node.name, "contact": node.contact, "baseUrl": node.base_url }),
        )];
        self.apply(&change).await?;
        Ok(node)
    }

    /// Removes a node: its tokens are revoked at once, held secrets and the
    /// OTT deleted; a fedsync peer gets a best-effort unpair notice. Its
    /// exposures, mappings and record links stay in the store.
    pub async fn delete_node(&self, actor: &Actor, id: NodeId) -> Result<Node, PairingError> {
        let _guard = self.lock(id).await;
        let before = self.load(id).await?;
        let mut notified = false;
        if before.status == PairingStatus::Paired
            && before.peer_kind == PeerKind::Fedsync
            && let Some(token) = self.open(id, CredentialKind::AuthToken).await?
        {
            let shared = before.shared_node_id.unwrap_or(before.id);
            match self
                .peer
                .unpair_notice(&before.base_url, shared, &token)
                .await
            {
                Ok(()) => notified = true,
                Err(error) => {
                    tracing::warn!(node_id = %id, error = %error, "the unpair notice did not reach the peer")
                }
            }
        }
        let now = domain::now();
        let mut node = before.clone();
        node.deleted_at = Some(now);
        node.updated_at = now;
        let mut change = PairingChange::update(node.clone());
        change.expect_status = vec![before.status];
        change.delete_ott = true;
        change.delete_credentials = vec![CredentialKind::AuthToken, CredentialKind::PairToken];
        change.revoke_tokens = Some(Revocation::AllExcept(Vec::new(), "node removed".into()));
        change.audit = vec![
            self.audit(
                actor,
                "node.deleted",
                AuditResult::Ok,
                Some(id),
                "",
                serde_json::json!({ "peerNotified": notified }),
            ),
            self.audit(
                actor,
                "token.revoked",
                AuditResult::Ok,
                Some(id),
                "node_removed",
                serde_json::json!({ "all": true }),
            ),
        ];
        self.apply(&change).await?;
        Ok(node)
    }

    /// Calls the peer with the token it gave us.
    pub async fn check_node(&self, id: NodeId) -> Result<NodeCheck, PairingError> {
        let node = self.load(id).await?;
        if node.status != PairingStatus::Paired {
            return Ok(NodeCheck {
                ok: false,
                message: format!("node {id} is {}, not paired", node.status.as_str()),
            });
        }
        let Some(token) = self.open(id, CredentialKind::AuthToken).await? else {
            return Ok(NodeCheck {
                ok: false,
                message: format!("node {id} holds no token from the peer"),
            });
        };
        let shared = node.shared_node_id.unwrap_or(node.id);
        Ok(
            match self.peer.check_token(&node.base_url, shared, &token).await {
                Ok(()) => NodeCheck {
                    ok: true,
                    message: format!("{} answers and accepts our token", node.base_url),
                },
                Err(error) => NodeCheck {
                    ok: false,
                    message: error.to_string(),
                },
            },
        )
    }

    // ---- helpers ----

    fn public_url(&self) -> Result<url::Url, PairingError> {
        self.settings.public_url.clone().ok_or_else(|| {
            PairingError::NotConfigured(
                "this node has no public URL: set federation.public_url (serve --public-url https://<host>/federation) so peers know where to reach it".into(),
            )
        })
    }

    async fn lock(&self, id: NodeId) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.node_locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            locks.entry(id).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Shows a removed node again (Corteza's undelete). Its tokens were
    /// revoked when it was removed, so it comes back `pending` and must be
    /// paired again.
    pub async fn undelete_node(&self, actor: &Actor, id: NodeId) -> Result<Node, PairingError> {
        let _guard = self.lock(id).await;
        let before = match self.store.get_node(id).await? {
            Some(node) => node,
            None => return Err(PairingError::NotFound(id)),
        };
        if before.deleted_at.is_none() {
            return Ok(before);
        }
        let mut node = before.clone();
        node.deleted_at = None;
        node.status = PairingStatus::Pending;
        node.status_reason = "restored after removal: pair again (its tokens were revoked)".into();
        node.updated_at = domain::now();
        let mut change = PairingChange::update(node.clone());
        change.expect_status = vec![before.status];
        change.audit = vec![self.audit(
            actor,
            "node.undeleted",
            AuditResult::Ok,
            Some(id),
            "",
            serde_json::json!({}),
        )];
        self.apply(&change).await?;
        Ok(node)
    }

    /// The federation base URL for a bare domain (Corteza's documented
    /// `domain`): `https://DOMAIN/federation`, or `http://` when insecure
    /// peers are allowed. A value with a scheme is taken as a base URL.
    pub fn base_url_for_domain(&self, domain: &str) -> String {
        let domain = domain.trim();
        if domain.contains("://") {
            return domain.to_owned();
        }
        let scheme = if self.settings.allow_insecure_peers {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/federation", domain.trim_end_matches('/'))
    }

    async fn load(&self, id: NodeId) -> Result<Node, PairingError> {
        match self.store.get_node(id).await? {
            Some(node) if node.deleted_at.is_none() => Ok(node),
            _ => Err(PairingError::NotFound(id)),
        }
    }

    async fn apply(&self, change: &PairingChange) -> Result<(), PairingError> {
        if self.store.apply_pairing_change(change).await? {
            Ok(())
        } else {
            Err(PairingError::Conflict(change.node.id))
        }
    }

    /// Records a failed step: status `failed` with the reason, the token
    /// minted for the step revoked.
    async fn fail(
        &self,
        actor: &Actor,
        node: &Node,
        expect: &[PairingStatus],
        reason: &str,
        event: &str,
        revoke: Option<TokenId>,
    ) -> Result<(), PairingError> {
        let mut failed = node.clone();
        failed.status = PairingStatus::Failed;
        failed.status_reason = reason.to_owned();
        failed.updated_at = domain::now();
        let mut change = PairingChange::update(failed);
        change.expect_status = expect.to_vec();
        change.audit = vec![self.audit(
            actor,
            event,
            AuditResult::Failed,
            Some(node.id),
            reason,
            serde_json::json!({}),
        )];
        if let Some(token) = revoke {
            change.revoke_tokens = Some(Revocation::Only(
                vec![token],
                "the pairing step it was issued for failed".into(),
            ));
        }
        if !self.store.apply_pairing_change(&change).await? {
            tracing::warn!(node_id = %node.id, "the node changed before the failure could be recorded");
        }
        Ok(())
    }

    fn new_ott(
        &self,
        now: Timestamp,
    ) -> Result<(Zeroizing<String>, OttChange, Timestamp), PairingError> {
        let ott = generate_ott()?;
        let ttl =
            chrono::Duration::from_std(self.settings.ott_ttl).unwrap_or(chrono::Duration::days(1));
        let expires_at = now + ttl;
        let change = OttChange::Replace {
            token_hash: sha256(ott.as_bytes()).to_vec(),
            expires_at,
        };
        Ok((ott, change, expires_at))
    }

    fn mint(
        &self,
        node_id: NodeId,
        now: Timestamp,
    ) -> Result<(IssuedToken, Zeroizing<String>), PairingError> {
        let id = TokenId(self.ids.next_id());
        let token = Zeroizing::new(mint_peer_token(
            &self.signing_key,
            &PeerTokenClaims {
                id,
                node_id,
                issued_at: now,
            },
        )?);
        let issued = IssuedToken {
            id,
            node_id,
            token_hash: sha256(token.as_bytes()).to_vec(),
            scope: "peer".into(),
            created_at: now,
            last_used_at: None,
            last_used_addr: String::new(),
            revoked_at: None,
            revoked_reason: String::new(),
        };
        Ok((issued, token))
    }

    fn seal(
        &self,
        node_id: NodeId,
        kind: CredentialKind,
        secret: &str,
        now: Timestamp,
    ) -> Result<PeerCredential, PairingError> {
        Ok(PeerCredential {
            node_id,
            kind,
            ciphertext: crypto::secretbox::seal(
                &self.encryption_key,
                &credential_context(node_id, kind),
                secret.as_bytes(),
            )?,
            fingerprint: fingerprint(secret),
            created_at: now,
        })
    }

    async fn open(
        &self,
        node_id: NodeId,
        kind: CredentialKind,
    ) -> Result<Option<Zeroizing<String>>, PairingError> {
        let Some(credential) = self.store.get_peer_credential(node_id, kind).await? else {
            return Ok(None);
        };
        let plain = crypto::secretbox::open(
            &self.encryption_key,
            &credential_context(node_id, kind),
            &credential.ciphertext,
        )?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Open)?;
        Ok(Some(Zeroizing::new(text)))
    }

    fn audit(
        &self,
        actor: &Actor,
        event: &str,
        result: AuditResult,
        node_id: Option<NodeId>,
        reason: &str,
        detail: serde_json::Value,
    ) -> AuditEvent {
        super::audit::event(&self.ids, actor, event, result, node_id, reason, detail)
    }

    /// The token the peer gave us, decrypted, for calling it.
    pub async fn peer_token(
        &self,
        node_id: NodeId,
    ) -> Result<Option<Zeroizing<String>>, PairingError> {
        self.open(node_id, CredentialKind::AuthToken).await
    }
}

pub fn credential_context(node_id: NodeId, kind: CredentialKind) -> String {
    format!("node:{node_id}:{}", kind.as_str())
}

/// A known kind is not forgotten because a later answer lacked the extension.
fn merge_kind(known: PeerKind, seen: PeerKind) -> PeerKind {
    match (known, seen) {
        (PeerKind::Fedsync, _) | (_, PeerKind::Fedsync) => PeerKind::Fedsync,
        _ => seen,
    }
}

/// Trims and checks a free-text field: printable, bounded, non-empty unless
/// `may_be_empty`.
fn check_text(
    field: &str,
    value: &str,
    max_chars: usize,
    may_be_empty: bool,
) -> Result<String, PairingError> {
    let value = value.trim();
    if value.is_empty() && !may_be_empty {
        return Err(PairingError::Invalid(format!(
            "--{field} must not be empty"
        )));
    }
    if value.chars().count() > max_chars || value.chars().any(char::is_control) {
        return Err(PairingError::Invalid(format!(
            "--{field} must be at most {max_chars} printable characters"
        )));
    }
    Ok(value.to_owned())
}
