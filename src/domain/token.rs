//! Admin tokens: who may use the admin interface.

use super::{Timestamp, TokenId, UnknownVariant};

/// What an admin token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminTokenKind {
    /// Every admin operation.
    Admin,
    /// Reads only (dashboards).
    ReadOnly,
}

impl AdminTokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminTokenKind::Admin => "admin",
            AdminTokenKind::ReadOnly => "readonly",
        }
    }

    pub fn parse(value: &str) -> Result<AdminTokenKind, UnknownVariant> {
        match value {
            "admin" => Ok(AdminTokenKind::Admin),
            "readonly" => Ok(AdminTokenKind::ReadOnly),
            other => Err(UnknownVariant {
                what: "admin token kind",
                value: other.to_owned(),
                expected: "admin, readonly",
            }),
        }
    }
}

/// The registered part of an admin token (the JWT itself is never stored).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminToken {
    pub id: TokenId,
    /// Who the token is for.
    pub name: String,
    pub kind: AdminTokenKind,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl AdminToken {
    /// Usable at `now`: not revoked and not expired.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| exp > now)
    }

    /// `active`, `expired` or `revoked` at `now`.
    pub fn state(&self, now: Timestamp) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.is_active(now) {
            "active"
        } else {
            "expired"
        }
    }
}
