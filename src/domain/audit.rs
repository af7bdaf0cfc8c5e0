//! Audit events: an append-only record of who did what, separate from logs.
//!
//! Invariant: no event carries a secret. Tokens appear only by id or
//! fingerprint.

use super::{AuditEventId, NodeId, Timestamp, TokenId};

/// How the audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditResult {
    Ok,
    Refused,
    Failed,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Ok => "ok",
            AuditResult::Refused => "refused",
            AuditResult::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Result<AuditResult, super::UnknownVariant> {
        [AuditResult::Ok, AuditResult::Refused, AuditResult::Failed]
            .into_iter()
            .find(|r| r.as_str() == value)
            .ok_or_else(|| super::UnknownVariant {
                what: "audit result",
                value: value.to_owned(),
                expected: "ok, refused, failed",
            })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub at: Timestamp,
    /// Dotted name, e.g. `admin.auth_failed`, `pairing.started`.
    pub event: String,
    pub result: AuditResult,
    pub node_id: Option<NodeId>,
    /// Who acted: an admin token's name, `peer`, or `system`.
    pub actor: String,
    pub token_id: Option<TokenId>,
    pub source_addr: String,
    /// A short machine-readable reason code for refusals and failures.
    pub reason: String,
    /// Extra properties as a JSON object text (never secrets).
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub node_id: Option<NodeId>,
    /// Newest first; at most this many (0 means the store's default).
    pub limit: u32,
}

/// Who acts, for audit events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Actor {
    /// An admin token's name, `peer`, or `system`.
    pub name: String,
    pub token_id: Option<TokenId>,
    pub source_addr: String,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            name: "system".into(),
            ..Actor::default()
        }
    }

    pub fn peer(source_addr: &str) -> Actor {
        Actor {
            name: "peer".into(),
            token_id: None,
            source_addr: source_addr.to_owned(),
        }
    }
}
