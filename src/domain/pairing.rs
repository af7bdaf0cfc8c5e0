//! Pairing vocabulary: roles, one-time tokens, issued and held tokens, and
//! the atomic change a pairing step writes.

use super::{AuditEvent, Node, NodeId, PairingStatus, Timestamp, TokenId, UnknownVariant};

/// Which side of the pair this node record is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We created the node and handed out the node URI (Corteza's node A).
    Inviter,
    /// We added the node from the peer's node URI (Corteza's node B).
    Invitee,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Inviter => "inviter",
            Role::Invitee => "invitee",
        }
    }

    pub fn parse(value: &str) -> Result<Role, UnknownVariant> {
        match value {
            "inviter" => Ok(Role::Inviter),
            "invitee" => Ok(Role::Invitee),
            other => Err(UnknownVariant {
                what: "node role",
                value: other.to_owned(),
                expected: "inviter, invitee",
            }),
        }
    }
}

/// The one-time pairing token of an inviter node, as stored: only its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct PairingToken {
    pub node_id: NodeId,
    /// SHA-256 of the token; `None` once consumed, expired-and-voided or locked.
    pub token_hash: Option<Vec<u8>>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub failed_attempts: u32,
    pub consumed_at: Option<Timestamp>,
    pub locked_at: Option<Timestamp>,
}

/// A token we issued to a peer (the JWT itself is never stored).
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedToken {
    pub id: TokenId,
    pub node_id: NodeId,
    /// SHA-256 of the whole token string.
    pub token_hash: Vec<u8>,
    pub scope: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub last_used_addr: String,
    pub revoked_at: Option<Timestamp>,
    pub revoked_reason: String,
}

/// What a held secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// The token the peer issued to us; we present it when calling the peer.
    AuthToken,
    /// The OTT from the peer's node URI, until the handshake consumes it.
    PairToken,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::AuthToken => "auth_token",
            CredentialKind::PairToken => "pair_token",
        }
    }

    pub fn parse(value: &str) -> Result<CredentialKind, UnknownVariant> {
        match value {
            "auth_token" => Ok(CredentialKind::AuthToken),
            "pair_token" => Ok(CredentialKind::PairToken),
            other => Err(UnknownVariant {
                what: "credential kind",
                value: other.to_owned(),
                expected: "auth_token, pair_token",
            }),
        }
    }
}

/// A secret we hold for a peer, encrypted at rest.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerCredential {
    pub node_id: NodeId,
    pub kind: CredentialKind,
    pub ciphertext: Vec<u8>,
    pub fingerprint: String,
    pub created_at: Timestamp,
}

/// What a pairing step does to the OTT.
#[derive(Debug, Clone, PartialEq)]
pub enum OttChange {
    /// Store a new OTT (hash), resetting attempts, lock and consumption.
    Replace {
        token_hash: Vec<u8>,
        expires_at: Timestamp,
    },
    /// Consume the OTT with this hash; the whole change fails unless it is
    /// live (not consumed, not locked, not expired at `now`).
    Consume { token_hash: Vec<u8>, now: Timestamp },
}

/// Which of a node's live issued tokens a change revokes.
#[derive(Debug, Clone, PartialEq)]
pub enum Revocation {
    /// Every live token of the node except these.
    AllExcept(Vec<TokenId>, String),
    /// Just these.
    Only(Vec<TokenId>, String),
}

/// Every write of one pairing step, applied in one transaction or not at all.
#[derive(Debug, Clone, PartialEq)]
pub struct PairingChange {
    /// The node's new state.
    pub node: Node,
    /// Insert the node instead of updating it.
    pub insert: bool,
    /// Update only when the stored status is one of these (empty: any).
    pub expect_status: Vec<PairingStatus>,
    pub ott: Option<OttChange>,
    /// Delete the node's OTT row.
    pub delete_ott: bool,
    pub put_credentials: Vec<PeerCredential>,
    pub delete_credentials: Vec<CredentialKind>,
    pub issue_tokens: Vec<IssuedToken>,
    pub revoke_tokens: Option<Revocation>,
    pub audit: Vec<AuditEvent>,
    /// Notifications about this step, queued in the same transaction.
    pub notifications: Vec<super::Notification>,
}

impl PairingChange {
    /// A change that writes `node` (update) and nothing else yet.
    pub fn update(node: Node) -> PairingChange {
        PairingChange {
            node,
            insert: false,
            expect_status: Vec::new(),
            ott: None,
            delete_ott: false,
            put_credentials: Vec::new(),
            delete_credentials: Vec::new(),
            issue_tokens: Vec::new(),
            revoke_tokens: None,
            audit: Vec::new(),
            notifications: Vec::new(),
        }
    }
}
