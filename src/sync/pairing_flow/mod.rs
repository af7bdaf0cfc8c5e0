//! Pairing, as the admin drives it and as peers take part in it.
//!
//! Every step that writes, writes through one `PairingChange` (one
//! transaction): a node is never half-paired. A step that needs the peer
//! first records its intent, calls the peer, then records the outcome; a
//! failed call leaves the node `failed` with a reason that says what failed
//! and what to run, and the step can be retried. Secrets (OTTs, tokens) are
//! stored only as hashes or ciphertext and never logged.

mod handshake;
mod inbound;
mod invite;
mod nodes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;
use zeroize::Zeroizing;

pub use inbound::{AuthenticatedPeer, InboundHandshake, PeerAuthError};
pub use invite::IssuedUri;

use super::ports::{Peer, PeerError};
use crate::crypto::{
    self, CryptoError, EncryptionKey, PeerTokenClaims, SigningKey, fingerprint, generate_ott,
    mint_peer_token, sha256,
};
use crate::domain::{
    self, Actor, AuditEvent, AuditResult, CredentialKind, IdGenerator, IssuedToken, Node, NodeId,
    OttChange, PairingChange, PairingStatus, PeerCredential, PeerKind, Revocation, Timestamp,
    TokenId,
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
    /// Where steps that call a peer run: the daemon's tasks.
    work: super::work::Work,
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
            work: super::work::Work::new(),
        }
    }

    /// Steps that call a peer run as tasks of `work` (the daemon's).
    pub fn with_work(mut self, work: super::work::Work) -> PairingService {
        self.work = work;
        self
    }

    /// Admins are told of handshake requests through `notices`.
    pub fn with_notices(mut self, notices: Arc<super::Notices>) -> PairingService {
        self.notices = Some(notices);
        self
    }

    pub fn settings(&self) -> &PairingSettings {
        &self.settings
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
