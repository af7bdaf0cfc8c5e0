//! The only `FromRow` types (those of records and links in `record_rows.rs`),
//! and their conversions to domain types.
//!
//! Invariant: a stored value the code would never write (an unknown status, a
//! timestamp out of range, a zero id) becomes `StoreError::Corrupt` naming the
//! column, never a panic and never a silent default.

use super::{StoreError, from_micros};
use serde::{Deserialize, Serialize};

use crate::domain::{
    FieldKind, FieldMapping, LocalField, LocalModule, MappingStatus, ModuleMapping, RunCounts,
    RunStatus, SharedModule, SyncKind, SyncRun,
};

use crate::domain::{
    AdminToken, AdminTokenKind, AuditEvent, AuditEventId, AuditResult, CredentialKind,
    ExposedModule, Id, InstanceLease, IssuedToken, ModuleField, Node, NodeId, PairingStatus,
    PairingToken, PeerCredential, PeerKind, Role, SyncStatus, Timestamp, TokenId,
};

/// The column list that `NodeRow` reads, in a macro so SQL stays `'static`.
macro_rules! node_columns {
    () => {
        "id, shared_node_id, role, name, base_url, contact, status, status_reason, peer_kind, \
         handshake_requested_at, handshake_source_addr, peer_token_fingerprint, \
         structure_status, structure_synced_at, structure_error, data_status, data_synced_at, \
         data_error, paused, created_at, updated_at, deleted_at"
    };
}
pub(crate) use node_columns;

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct NodeRow {
    pub id: i64,
    pub shared_node_id: Option<i64>,
    pub role: String,
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
    #[serde(deserialize_with = "bool_or_integer")]
    pub paused: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

/// A boolean column in JSON: `true`/`false` from PostgreSQL, `1`/`0`
/// from SQLite (which stores booleans as integers).
fn bool_or_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
    }
    match Flag::deserialize(d)? {
        Flag::Bool(b) => Ok(b),
        Flag::Int(0) => Ok(false),
        Flag::Int(1) => Ok(true),
        Flag::Int(n) => Err(serde::de::Error::custom(format!("{n} is not a boolean"))),
    }
}

/// The two JSON arrays of `status_snapshot` (rows as positional arrays),
/// decoded and in the order of `list_nodes` and `list_jobs`.
pub fn status_snapshot(
    nodes: &str,
    jobs: &str,
) -> Result<crate::store::StatusSnapshot, StoreError> {
    // A node: [[row...], structure schedule, data schedule].
    let mut nodes: Vec<(NodeRow, String, String)> =
        serde_json::from_str(nodes).map_err(|e| corrupt("nodes (status)", e))?;
    let mut jobs: Vec<SyncJobRow> =
        serde_json::from_str(jobs).map_err(|e| corrupt("sync_jobs (status)", e))?;
    nodes.sort_by_key(|(node, _, _)| std::cmp::Reverse(node.id));
    jobs.sort_by(|a, b| {
        (a.node_id, std::cmp::Reverse(&a.kind), a.shared_module_id).cmp(&(
            b.node_id,
            std::cmp::Reverse(&b.kind),
            b.shared_module_id,
        ))
    });
    Ok(crate::store::StatusSnapshot {
        nodes: nodes
            .into_iter()
            .map(|(node, structure, data)| Ok((Node::try_from(node)?, structure, data)))
            .collect::<Result<_, StoreError>>()?,
        jobs: jobs
            .into_iter()
            .map(crate::domain::SyncJob::try_from)
            .collect::<Result<_, _>>()?,
    })
}

pub(super) fn corrupt(column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {detail}"))
}

pub(super) fn opt_time(value: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    value.map(from_micros).transpose()
}

pub(super) fn node_id(column: &str, value: i64) -> Result<NodeId, StoreError> {
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
            role: Role::parse(&row.role).map_err(|e| corrupt("nodes.role", e))?,
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

#[derive(Debug, sqlx::FromRow)]
pub struct PairingTokenRow {
    pub node_id: i64,
    pub token_hash: Option<Vec<u8>>,
    pub created_at: i64,
    pub expires_at: i64,
    pub failed_attempts: i64,
    pub consumed_at: Option<i64>,
    pub locked_at: Option<i64>,
}

impl TryFrom<PairingTokenRow> for PairingToken {
    type Error = StoreError;

    fn try_from(row: PairingTokenRow) -> Result<PairingToken, StoreError> {
        Ok(PairingToken {
            node_id: node_id("pairing_tokens.node_id", row.node_id)?,
            token_hash: row.token_hash,
            created_at: from_micros(row.created_at)?,
            expires_at: from_micros(row.expires_at)?,
            failed_attempts: u32::try_from(row.failed_attempts).unwrap_or(u32::MAX),
            consumed_at: opt_time(row.consumed_at)?,
            locked_at: opt_time(row.locked_at)?,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct IssuedTokenRow {
    pub id: i64,
    pub node_id: i64,
    pub token_hash: Vec<u8>,
    pub scope: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_addr: String,
    pub revoked_at: Option<i64>,
    pub revoked_reason: String,
}

impl TryFrom<IssuedTokenRow> for IssuedToken {
    type Error = StoreError;

    fn try_from(row: IssuedTokenRow) -> Result<IssuedToken, StoreError> {
        Ok(IssuedToken {
            id: TokenId::from_i64(row.id)
                .ok_or_else(|| corrupt("issued_tokens.id", format!("invalid id {}", row.id)))?,
            node_id: node_id("issued_tokens.node_id", row.node_id)?,
            token_hash: row.token_hash,
            scope: row.scope,
            created_at: from_micros(row.created_at)?,
            last_used_at: opt_time(row.last_used_at)?,
            last_used_addr: row.last_used_addr,
            revoked_at: opt_time(row.revoked_at)?,
            revoked_reason: row.revoked_reason,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct PeerCredentialRow {
    pub node_id: i64,
    pub kind: String,
    pub ciphertext: Vec<u8>,
    pub fingerprint: String,
    pub created_at: i64,
}

impl TryFrom<PeerCredentialRow> for PeerCredential {
    type Error = StoreError;

    fn try_from(row: PeerCredentialRow) -> Result<PeerCredential, StoreError> {
        Ok(PeerCredential {
            node_id: node_id("peer_credentials.node_id", row.node_id)?,
            kind: CredentialKind::parse(&row.kind)
                .map_err(|e| corrupt("peer_credentials.kind", e))?,
            ciphertext: row.ciphertext,
            fingerprint: row.fingerprint,
            created_at: from_micros(row.created_at)?,
        })
    }
}

/// A module field in a JSON column: Corteza's `{kind, name, label, isMulti}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldJson {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub is_multi: bool,
}

/// Fields to the JSON stored in `fields` columns.
pub fn fields_to_json(fields: &[ModuleField]) -> String {
    let rows: Vec<FieldJson> = fields
        .iter()
        .map(|f| FieldJson {
            kind: f.kind.clone(),
            name: f.name.clone(),
            label: f.label.clone(),
            is_multi: f.is_multi,
        })
        .collect();
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_owned())
}

fn fields_from_json(column: &str, text: &str) -> Result<Vec<ModuleField>, StoreError> {
    let rows: Vec<FieldJson> = serde_json::from_str(text).map_err(|e| corrupt(column, e))?;
    Ok(rows
        .into_iter()
        .map(|f| ModuleField {
            kind: f.kind,
            name: f.name,
            label: f.label,
            is_multi: f.is_multi,
        })
        .collect())
}

pub(super) fn id(column: &str, value: i64) -> Result<Id, StoreError> {
    Id::from_i64(value).ok_or_else(|| corrupt(column, format!("invalid id {value}")))
}

#[derive(Debug, sqlx::FromRow)]
pub struct ExposedModuleRow {
    pub id: i64,
    pub node_id: i64,
    pub module_id: i64,
    pub namespace_id: i64,
    pub handle: String,
    pub name: String,
    pub fields: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

impl TryFrom<ExposedModuleRow> for ExposedModule {
    type Error = StoreError;

    fn try_from(row: ExposedModuleRow) -> Result<ExposedModule, StoreError> {
        Ok(ExposedModule {
            id: id("exposed_modules.id", row.id)?,
            node_id: node_id("exposed_modules.node_id", row.node_id)?,
            module_id: id("exposed_modules.module_id", row.module_id)?,
            namespace_id: id("exposed_modules.namespace_id", row.namespace_id)?,
            handle: row.handle,
            name: row.name,
            fields: fields_from_json("exposed_modules.fields", &row.fields)?,
            created_at: from_micros(row.created_at)?,
            updated_at: from_micros(row.updated_at)?,
            deleted_at: opt_time(row.deleted_at)?,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct LocalModuleRow {
    pub id: i64,
    pub namespace_id: i64,
    pub handle: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct LocalFieldRow {
    pub module_id: i64,
    pub name: String,
    pub kind: String,
    pub label: String,
    pub is_multi: bool,
}

impl LocalModuleRow {
    /// The module with its fields (rows already in position order).
    pub fn into_module(self, fields: Vec<LocalFieldRow>) -> Result<LocalModule, StoreError> {
        Ok(LocalModule {
            id: id("local_modules.id", self.id)?,
            namespace_id: id("local_modules.namespace_id", self.namespace_id)?,
            handle: self.handle,
            name: self.name,
            fields: fields
                .into_iter()
                .map(|f| {
                    Ok(LocalField {
                        kind: FieldKind::parse(&f.kind)
                            .map_err(|e| corrupt("local_module_fields.kind", e))?,
                        name: f.name,
                        label: f.label,
                        is_multi: f.is_multi,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
            deleted_at: opt_time(self.deleted_at)?,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct SharedModuleRow {
    pub id: i64,
    pub node_id: i64,
    pub external_module_id: i64,
    pub origin_module_id: i64,
    pub origin_namespace_id: i64,
    pub handle: String,
    pub name: String,
    pub fields: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

impl TryFrom<SharedModuleRow> for SharedModule {
    type Error = StoreError;

    fn try_from(row: SharedModuleRow) -> Result<SharedModule, StoreError> {
        Ok(SharedModule {
            id: id("shared_modules.id", row.id)?,
            node_id: node_id("shared_modules.node_id", row.node_id)?,
            external_module_id: id("shared_modules.external_module_id", row.external_module_id)?,
            origin_module_id: Id::from_i64(row.origin_module_id),
            origin_namespace_id: Id::from_i64(row.origin_namespace_id),
            handle: row.handle,
            name: row.name,
            fields: fields_from_json("shared_modules.fields", &row.fields)?,
            created_at: from_micros(row.created_at)?,
            updated_at: from_micros(row.updated_at)?,
            deleted_at: opt_time(row.deleted_at)?,
        })
    }
}

/// A field mapping in the `fields` column: Corteza's `{origin, destination}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct FieldMappingJson {
    pub origin: FieldJson,
    pub destination: FieldJson,
}

fn to_json_field(f: &ModuleField) -> FieldJson {
    FieldJson {
        kind: f.kind.clone(),
        name: f.name.clone(),
        label: f.label.clone(),
        is_multi: f.is_multi,
    }
}

fn from_json_field(f: FieldJson) -> ModuleField {
    ModuleField {
        kind: f.kind,
        name: f.name,
        label: f.label,
        is_multi: f.is_multi,
    }
}

pub fn mappings_to_json(fields: &[FieldMapping]) -> String {
    let rows: Vec<FieldMappingJson> = fields
        .iter()
        .map(|m| FieldMappingJson {
            origin: to_json_field(&m.origin),
            destination: to_json_field(&m.destination),
        })
        .collect();
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_owned())
}

#[derive(Debug, sqlx::FromRow)]
pub struct MappingRow {
    pub id: i64,
    pub node_id: i64,
    pub shared_module_id: i64,
    pub local_module_id: i64,
    pub namespace_id: i64,
    pub fields: String,
    pub status: String,
    pub status_reason: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<MappingRow> for ModuleMapping {
    type Error = StoreError;

    fn try_from(row: MappingRow) -> Result<ModuleMapping, StoreError> {
        let fields: Vec<FieldMappingJson> =
            serde_json::from_str(&row.fields).map_err(|e| corrupt("module_mappings.fields", e))?;
        Ok(ModuleMapping {
            id: id("module_mappings.id", row.id)?,
            node_id: node_id("module_mappings.node_id", row.node_id)?,
            shared_module_id: id("module_mappings.shared_module_id", row.shared_module_id)?,
            local_module_id: id("module_mappings.local_module_id", row.local_module_id)?,
            namespace_id: id("module_mappings.namespace_id", row.namespace_id)?,
            fields: fields
                .into_iter()
                .map(|m| FieldMapping {
                    origin: from_json_field(m.origin),
                    destination: from_json_field(m.destination),
                })
                .collect(),
            status: MappingStatus::parse(&row.status)
                .map_err(|e| corrupt("module_mappings.status", e))?,
            status_reason: row.status_reason,
            created_at: from_micros(row.created_at)?,
            updated_at: from_micros(row.updated_at)?,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct SyncRunRow {
    pub id: i64,
    pub node_id: i64,
    pub kind: String,
    pub shared_module_id: i64,
    pub trigger: String,
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub pages: i64,
    pub created: i64,
    pub updated: i64,
    pub deleted: i64,
    pub skipped: i64,
    pub errors: i64,
    pub error: String,
    pub owner: String,
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl TryFrom<SyncRunRow> for SyncRun {
    type Error = StoreError;

    fn try_from(row: SyncRunRow) -> Result<SyncRun, StoreError> {
        Ok(SyncRun {
            id: id("sync_runs.id", row.id)?,
            node_id: node_id("sync_runs.node_id", row.node_id)?,
            kind: SyncKind::parse(&row.kind).map_err(|e| corrupt("sync_runs.kind", e))?,
            shared_module_id: Id::from_i64(row.shared_module_id),
            trigger: row.trigger,
            status: RunStatus::parse(&row.status).map_err(|e| corrupt("sync_runs.status", e))?,
            started_at: from_micros(row.started_at)?,
            finished_at: opt_time(row.finished_at)?,
            counts: RunCounts {
                pages: count(row.pages),
                created: count(row.created),
                updated: count(row.updated),
                deleted: count(row.deleted),
                skipped: count(row.skipped),
                errors: count(row.errors),
            },
            error: row.error,
            owner: row.owner,
        })
    }
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct SyncJobRow {
    pub id: i64,
    pub node_id: i64,
    pub kind: String,
    pub shared_module_id: i64,
    pub schedule: String,
    pub state: String,
    pub next_run_at: i64,
    pub attempts: i64,
    pub last_error: String,
    pub last_error_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub stop_reason: String,
    pub lease_owner: String,
    pub lease_expires_at: Option<i64>,
    pub triggered_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub failing_since: Option<i64>,
    pub trigger_seq: i64,
    pub claimed_seq: i64,
    pub served_seq: i64,
    pub reset_seq: i64,
    pub trigger_reason: String,
    pub claimed_trigger: String,
    pub last_run_id: i64,
}

impl TryFrom<SyncJobRow> for crate::domain::SyncJob {
    type Error = StoreError;

    fn try_from(row: SyncJobRow) -> Result<crate::domain::SyncJob, StoreError> {
        Ok(crate::domain::SyncJob {
            id: id("sync_jobs.id", row.id)?,
            node_id: node_id("sync_jobs.node_id", row.node_id)?,
            kind: SyncKind::parse(&row.kind).map_err(|e| corrupt("sync_jobs.kind", e))?,
            shared_module_id: Id::from_i64(row.shared_module_id),
            schedule: row.schedule,
            state: crate::domain::JobState::parse(&row.state)
                .map_err(|e| corrupt("sync_jobs.state", e))?,
            next_run_at: from_micros(row.next_run_at)?,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            last_error: row.last_error,
            last_error_at: opt_time(row.last_error_at)?,
            last_success_at: opt_time(row.last_success_at)?,
            stop_reason: row.stop_reason,
            lease_owner: row.lease_owner,
            lease_expires_at: opt_time(row.lease_expires_at)?,
            triggered_at: opt_time(row.triggered_at)?,
            trigger_seq: row.trigger_seq,
            claimed_seq: row.claimed_seq,
            served_seq: row.served_seq,
            reset_seq: row.reset_seq,
            trigger_reason: row.trigger_reason,
            claimed_trigger: row.claimed_trigger,
            last_run_id: Id::from_i64(row.last_run_id),
            failing_since: opt_time(row.failing_since)?,
            created_at: from_micros(row.created_at)?,
            updated_at: from_micros(row.updated_at)?,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub channel: String,
    pub target: String,
    pub event: String,
    pub node_id: Option<i64>,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: String,
    pub sent_at: Option<i64>,
    pub given_up_at: Option<i64>,
}

impl TryFrom<NotificationRow> for crate::domain::Notification {
    type Error = StoreError;

    fn try_from(row: NotificationRow) -> Result<crate::domain::Notification, StoreError> {
        Ok(crate::domain::Notification {
            id: id("notifications.id", row.id)?,
            channel: crate::domain::Channel::parse(&row.channel)
                .map_err(|e| corrupt("notifications.channel", e))?,
            target: row.target,
            event: row.event,
            node_id: row
                .node_id
                .map(|n| node_id("notifications.node_id", n))
                .transpose()?,
            subject: row.subject,
            body: row.body,
            created_at: from_micros(row.created_at)?,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            next_attempt_at: from_micros(row.next_attempt_at)?,
            last_error: row.last_error,
            sent_at: opt_time(row.sent_at)?,
            given_up_at: opt_time(row.given_up_at)?,
        })
    }
}
