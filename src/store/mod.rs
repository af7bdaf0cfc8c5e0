//! Persistence: the `Store` trait and its two engines, SQLite (embedded
//! default) and PostgreSQL (production, several replicas).
//!
//! Invariants:
//! - Both engines run the same SQL text, written once in `common.rs` and
//!   stamped onto each engine by a macro; only what cannot be portable lives
//!   in an engine module.
//! - Migrations are append-only, one folder per engine with the same step
//!   names, embedded in the binary and run at start-up or by `fedsync migrate`.
//! - Every `*_at` column holds microseconds since the Unix epoch (UTC); ids are
//!   BIGINT; all integers decode as i64. `rows.rs` holds the only `FromRow`
//!   types and converts them to domain types.
//! - Errors say whether retrying can help (`StoreError::is_retriable`).

mod catalog;
mod common;
mod jobs;
mod jobs_sql;
mod live;
mod live_sql;
pub use catalog::{
    BrokenMapping, ExposedPageQuery, LocalModuleStore, ModuleStore, SharedStore, StructureChange,
};
pub use jobs::{JobStore, ScheduleStore, StatusSnapshot, TriggerRequest};
pub use jobs_sql::CLAIM_LOCK;
pub use live::LiveStore;
pub use records::{ChangeQuery, CursorWrite, RecordBatch, RecordStore, RunError, SyncStore};
mod modules_sql;
mod notify_sql;
mod page_sql;
pub mod postgres;
pub mod record_rows;
mod records;
mod records_sql;
pub mod rows;
mod schedule_sql;
pub mod sqlite;
pub mod values_json;

use async_trait::async_trait;

use crate::domain::{
    AdminToken, AuditEvent, AuditFilter, CredentialKind, Id, InstanceLease, IssuedToken, Node,
    NodeFilter, NodeId, PairingChange, PairingToken, PeerCredential, Timestamp, TokenId,
};

/// Connections of the pool each store keeps for the admin interface's reads
/// (token lookups, the status of every node), besides its main pool.
pub const ADMIN_CONNECTIONS: u32 = 2;

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// Errors of the store, classified where they happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is busy; retrying later can help.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness or reference constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A row was expected and is not there.
    #[error("not found: {0}")]
    NotFound(String),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Stored data does not decode (a value outside what the code writes).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => StoreError::Unavailable(error.to_string()),
            sqlx::Error::RowNotFound => StoreError::NotFound(error.to_string()),
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if db.is_unique_violation() || db.is_foreign_key_violation() {
                    StoreError::Conflict(db.message().to_owned())
                } else if matches!(code.as_ref(), "5" | "6" | "261" | "517")
                    || code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "53300"
                {
                    // SQLite BUSY/LOCKED (and extended forms); PostgreSQL
                    // connection exceptions, shutdown, too many connections.
                    StoreError::Unavailable(db.message().to_owned())
                } else {
                    StoreError::Database(db.message().to_owned())
                }
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(error.to_string())
            }
            _ => StoreError::Database(error.to_string()),
        }
    }
}

/// One migration step as recorded by the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
}

/// Engine-level operations.
#[async_trait]
pub trait StoreAdmin: Send + Sync {
    fn engine(&self) -> Engine;
    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Applies pending migrations; returns the steps applied now.
    async fn migrate(&self) -> Result<Vec<AppliedMigration>, StoreError>;
    /// The steps recorded as applied, oldest first.
    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>, StoreError>;
    /// The steps embedded in this binary, oldest first.
    fn known_migrations(&self) -> Vec<AppliedMigration>;
    /// Closes the pool, waiting for connections to finish (SQLite then
    /// checkpoints its write-ahead log).
    async fn close(&self);
}

/// Leases on id instance numbers, so replicas never share one.
#[async_trait]
pub trait InstanceStore: Send + Sync {
    /// Takes the lowest free or expired instance number for `owner` until
    /// `expires_at`.
    async fn acquire_instance(
        &self,
        owner: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<InstanceLease, StoreError>;
    /// Extends the lease and records the id high-water mark. `false` when the
    /// lease is no longer ours.
    async fn renew_instance(
        &self,
        lease: &InstanceLease,
        expires_at: Timestamp,
        last_id_ms: u64,
    ) -> Result<bool, StoreError>;
    /// Gives the number back at once, keeping the high-water mark.
    async fn release_instance(
        &self,
        lease: &InstanceLease,
        last_id_ms: u64,
    ) -> Result<(), StoreError>;
}

/// Peers.
#[async_trait]
pub trait NodeStore: Send + Sync {
    async fn insert_node(&self, node: &Node) -> Result<(), StoreError>;
    async fn get_node(&self, id: NodeId) -> Result<Option<Node>, StoreError>;
    /// Newest first.
    async fn list_nodes(&self, filter: &NodeFilter) -> Result<Vec<Node>, StoreError>;
    /// The live (not deleted) node we added from this peer's node URI.
    async fn find_invitee_node(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
    ) -> Result<Option<Node>, StoreError>;
}

/// The outcome of a wrong one-time token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OttFailure {
    pub failed_attempts: u32,
    /// This failure locked the token.
    pub locked: bool,
}

/// Pairing state: one-time tokens, issued tokens, held credentials, and the
/// atomic pairing step.
#[async_trait]
pub trait PairingStore: Send + Sync {
    /// Applies every write of a pairing step in one transaction. `false`
    /// (and nothing written) when a precondition does not hold: the node's
    /// status is not one expected, or the OTT to consume is not live.
    async fn apply_pairing_change(&self, change: &PairingChange) -> Result<bool, StoreError>;
    async fn get_pairing_token(&self, node_id: NodeId) -> Result<Option<PairingToken>, StoreError>;
    /// Counts a failed attempt on a live OTT; voids it at `max_attempts`.
    async fn record_ott_failure(
        &self,
        node_id: NodeId,
        max_attempts: u32,
        now: Timestamp,
    ) -> Result<Option<OttFailure>, StoreError>;
    /// Voids a live OTT (e.g. found expired).
    async fn void_ott(&self, node_id: NodeId) -> Result<bool, StoreError>;
    async fn get_issued_token(&self, id: TokenId) -> Result<Option<IssuedToken>, StoreError>;
    /// Newest first.
    async fn list_issued_tokens(&self, node_id: NodeId) -> Result<Vec<IssuedToken>, StoreError>;
    async fn touch_issued_token(
        &self,
        id: TokenId,
        at: Timestamp,
        addr: &str,
    ) -> Result<(), StoreError>;
    /// Revokes one live token; `false` when it was not live.
    async fn revoke_issued_token(
        &self,
        id: TokenId,
        at: Timestamp,
        reason: &str,
    ) -> Result<bool, StoreError>;
    async fn get_peer_credential(
        &self,
        node_id: NodeId,
        kind: CredentialKind,
    ) -> Result<Option<PeerCredential>, StoreError>;
}

/// The notification outbox: messages waiting for delivery, each claimed
/// with a lease so one replica delivers it.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    async fn enqueue_notifications(
        &self,
        notifications: &[crate::domain::Notification],
    ) -> Result<(), StoreError>;
    /// Up to `limit` due, undelivered notifications no live worker holds,
    /// leased to `owner` until `lease_until`; the due first.
    async fn claim_notifications(
        &self,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<crate::domain::Notification>, StoreError>;
    /// Records a delivery attempt; `false` when the lease is no longer ours.
    async fn finish_notification(
        &self,
        id: Id,
        owner: &str,
        outcome: &crate::domain::Delivery,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Newest first.
    async fn list_notifications(
        &self,
        limit: u32,
    ) -> Result<Vec<crate::domain::Notification>, StoreError>;
    /// When the next undelivered notification is due.
    async fn next_notification_due(&self) -> Result<Option<Timestamp>, StoreError>;
}

/// Admin tokens (their registered `jti`s).
#[async_trait]
pub trait AdminTokenStore: Send + Sync {
    async fn insert_admin_token(&self, token: &AdminToken) -> Result<(), StoreError>;
    async fn get_admin_token(&self, id: TokenId) -> Result<Option<AdminToken>, StoreError>;
    /// Newest first.
    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError>;
    /// `false` when there is no such token or it was already revoked.
    async fn revoke_admin_token(&self, id: TokenId, at: Timestamp) -> Result<bool, StoreError>;
}

/// The append-only audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError>;
}

/// Everything the daemon persists.
pub trait Store:
    StoreAdmin
    + InstanceStore
    + NodeStore
    + PairingStore
    + ModuleStore
    + LocalModuleStore
    + SharedStore
    + SyncStore
    + RecordStore
    + JobStore
    + ScheduleStore
    + LiveStore
    + NotificationStore
    + AdminTokenStore
    + AuditStore
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: StoreAdmin
        + InstanceStore
        + NodeStore
        + PairingStore
        + ModuleStore
        + LocalModuleStore
        + SharedStore
        + SyncStore
        + RecordStore
        + JobStore
        + ScheduleStore
        + LiveStore
        + NotificationStore
        + AdminTokenStore
        + AuditStore
        + Send
        + Sync
{
}

/// `a,b,c` for matching a set in portable SQL with
/// `(',' || $n || ',') LIKE ('%,' || column || ',%')`.
pub(crate) fn sql_set<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Converts a timestamp to the stored form (microseconds since the epoch).
pub fn to_micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// Converts the stored form back; out-of-range values are corrupt data.
pub fn from_micros(micros: i64) -> Result<Timestamp, StoreError> {
    chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {micros} out of range")))
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}
