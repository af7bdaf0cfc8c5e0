//! The only `FromRow` types, and their conversions to domain types.
//!
//! Invariant: a stored value the code would never write (an unknown status, a
//! timestamp out of range, a zero id) becomes `StoreError::Corrupt` naming the
//! column, never a panic and never a silent default.

use super::{StoreError, from_micros};
use crate::domain::{
    AdminToken, AdminTokenKind, AuditEvent, AuditEventId, AuditResult, InstanceLease, Node, NodeId,
    PairingStatus, PeerKind, SyncStatus, Timestamp, TokenId,
};

/// The column list that `NodeRow` reads, in a macro so SQL stays `'static`.
macro_rules! node_columns {
    () => {
        "id, shared_node_id, name, base_url, contact, status, status_reason, peer_kind, \
         handshake_requested_at, handshake_source_addr, peer_token_fingerprint, \
         structure_status, structure_synced_at, structure_error, data_status, data_synced_at, \
         data_error, paused, created_at, updated_at, deleted_at"
    };
}
pub(crate) use node_columns;

#[derive(Debug, sqlx::FromRow)]
pub struct NodeRow {
    pub id: i64,
    pub shared_node_id: Option<i64>,
    pub name: String,
    pub base_url: String,
    pub contact: String,
    pub status: String,
    pub status_reason: String,
    pub peer_kind: String,
    pub handshake_requested_at: Option<i64>,
    pub handshake_source_addr: String,
    pub peer_token_fingerprint: String,
    pub structure_status: String,
    pub structure_synced_at: Option<i64>,
    pub structure_error: String,
    pub data_status: String,
    pub data_synced_at: Option<i64>,
    pub data_error: String,
    pub paused: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

fn corrupt(column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {detail}"))
}

fn opt_time(value: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    value.map(from_micros).transpose()
}

fn node_id(column: &str, value: i64) -> Result<NodeId, StoreError> {
    NodeId::from_i64(value).ok_or_else(|| corrupt(column, format!("invalid id {value}")))
}

impl TryFrom<NodeRow> for Node {
    type Error = StoreError;

    fn try_from(row: NodeRow) -> Result<Node, StoreError> {
        Ok(Node {
            id: node_id("nodes.id", row.id)?,
            shared_node_id: row
                .shared_node_id
                .map(|v| node_id("nodes.shared_node_id", v))
                .transpose()?,
            name: row.name,
            base_url: row.base_url,
            contact: row.contact,
            status: PairingStatus::parse(&row.status).map_err(|e| corrupt("nodes.status", e))?,
            status_reason: row.status_reason,
            peer_kind: PeerKind::parse(&row.peer_kind)
                .map_err(|e| corrupt("nodes.peer_kind", e))?,
            handshake_requested_at: opt_time(row.handshake_requested_at)?,
            handshake_source_addr: row.handshake_source_addr,
            peer_token_fingerprint: row.peer_token_fingerprint,
            structure_status: SyncStatus::parse(&row.structure_status)
                .map_err(|e| corrupt("nodes.structure_status", e))?,
            structure_synced_at: opt_time(row.structure_synced_at)?,
            structure_error: row.structure_error,
            data_status: SyncStatus::parse(&row.data_status)
                .map_err(|e| corrupt("nodes.data_status", e))?,
            data_synced_at: opt_time(row.data_synced_at)?,
            data_error: row.data_error,
            paused: row.paused,
            created_at: from_micros(row.created_at)?,
            updated_at: from_micros(row.updated_at)?,
            deleted_at: opt_time(row.deleted_at)?,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct AdminTokenRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl TryFrom<AdminTokenRow> for AdminToken {
    type Error = StoreError;

    fn try_from(row: AdminTokenRow) -> Result<AdminToken, StoreError> {
        Ok(AdminToken {
            id: TokenId::from_i64(row.id)
                .ok_or_else(|| corrupt("admin_tokens.id", format!("invalid id {}", row.id)))?,
            name: row.name,
            kind: AdminTokenKind::parse(&row.kind).map_err(|e| corrupt("admin_tokens.kind", e))?,
            created_at: from_micros(row.created_at)?,
            expires_at: opt_time(row.expires_at)?,
            revoked_at: opt_time(row.revoked_at)?,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub result: String,
    pub node_id: Option<i64>,
    pub actor: String,
    pub token_id: Option<i64>,
    pub source_addr: String,
    pub reason: String,
    pub detail: String,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<AuditEvent, StoreError> {
        Ok(AuditEvent {
            id: AuditEventId::from_i64(row.id)
                .ok_or_else(|| corrupt("audit_events.id", format!("invalid id {}", row.id)))?,
            at: from_micros(row.at)?,
            event: row.event,
            result: AuditResult::parse(&row.result)
                .map_err(|e| corrupt("audit_events.result", e))?,
            node_id: row
                .node_id
                .map(|v| node_id("audit_events.node_id", v))
                .transpose()?,
            actor: row.actor,
            token_id: row.token_id.and_then(TokenId::from_i64),
            source_addr: row.source_addr,
            reason: row.reason,
            detail: row.detail,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct InstanceRow {
    pub instance_no: i64,
    pub last_id_ms: i64,
}

impl InstanceRow {
    pub fn into_lease(
        self,
        owner: &str,
        expires_at: Timestamp,
    ) -> Result<InstanceLease, StoreError> {
        Ok(InstanceLease {
            instance_no: u16::try_from(self.instance_no)
                .map_err(|_| corrupt("instances.instance_no", self.instance_no))?,
            owner: owner.to_owned(),
            expires_at,
            last_id_ms: u64::try_from(self.last_id_ms).unwrap_or(0),
        })
    }
}
