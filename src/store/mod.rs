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

mod common;
mod jobs_sql;
pub use jobs_sql::CLAIM_LOCK;
mod modules_sql;
mod notify_sql;
pub mod postgres;
mod records_sql;
pub mod rows;
pub mod sqlite;

use async_trait::async_trait;

use crate::domain::{
    AdminToken, AuditEvent, AuditFilter, CredentialKind, ExposedModule, Id, InstanceLease,
    IssuedToken, LocalModule, MappingStatus, ModuleMapping, Node, NodeFilter, NodeId,
    PairingChange, PairingToken, PeerCredential, SharedModule, SyncKind, SyncRun, SyncStatus,
    Timestamp, TokenId,
};
use crate::domain::{Record, RecordLink, SyncJob};

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

/// Exposed modules (origin side).
#[async_trait]
pub trait ModuleStore: Send + Sync {
    async fn insert_exposed_module(&self, module: &ExposedModule) -> Result<(), StoreError>;
    /// Rewrites an exposed module (by id), tombstones included.
    async fn update_exposed_module(&self, module: &ExposedModule) -> Result<(), StoreError>;
    async fn get_exposed_module(&self, id: Id) -> Result<Option<ExposedModule>, StoreError>;
    /// The live exposure of a local module to a node.
    async fn find_exposed_module(
        &self,
        node_id: NodeId,
        module_id: Id,
    ) -> Result<Option<ExposedModule>, StoreError>;
    /// The live exposed modules of a node, oldest first.
    async fn list_exposed_modules(&self, node_id: NodeId)
    -> Result<Vec<ExposedModule>, StoreError>;
    /// The live exposures of a local module, to any node.
    async fn list_exposures_of_module(
        &self,
        module_id: Id,
    ) -> Result<Vec<ExposedModule>, StoreError>;
    /// A page of a node's exposed modules in id order: changed at or after
    /// `since`, with an id above `after`, tombstones only when asked.
    async fn page_exposed_modules(
        &self,
        query: &ExposedPageQuery,
    ) -> Result<Vec<ExposedModule>, StoreError>;
}

/// Which exposed modules a page holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ExposedPageQuery {
    pub node_id: NodeId,
    pub since: Option<Timestamp>,
    pub after: Option<Id>,
    pub include_deleted: bool,
    pub limit: u32,
}

/// Modules of the embedded data plane.
#[async_trait]
pub trait LocalModuleStore: Send + Sync {
    /// The embedded namespace's id, recorded on first use as `candidate`.
    async fn embedded_namespace_id(&self, candidate: Id) -> Result<Id, StoreError>;
    /// Inserts a module with its fields; `Conflict` when the handle is taken.
    async fn insert_local_module(&self, module: &LocalModule) -> Result<(), StoreError>;
    /// Rewrites a module and replaces its fields.
    async fn update_local_module(&self, module: &LocalModule) -> Result<(), StoreError>;
    /// A module by id, removed ones included.
    async fn get_local_module(&self, id: Id) -> Result<Option<LocalModule>, StoreError>;
    /// A live module by handle.
    async fn find_local_module(&self, handle: &str) -> Result<Option<LocalModule>, StoreError>;
    /// The live modules, by handle.
    async fn list_local_modules(&self) -> Result<Vec<LocalModule>, StoreError>;
}

/// What one structure sync writes, in one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StructureChange {
    /// Inserted or updated by (node, external module id).
    pub upsert_shared: Vec<SharedModule>,
    /// Mapping status changes: (mapping id, status, reason, at).
    pub mapping_status: Vec<(Id, MappingStatus, String, Timestamp)>,
}

/// Shared modules (destination side) and their mappings.
#[async_trait]
pub trait SharedStore: Send + Sync {
    async fn apply_structure_change(&self, change: &StructureChange) -> Result<(), StoreError>;
    async fn get_shared_module(&self, id: Id) -> Result<Option<SharedModule>, StoreError>;
    async fn find_shared_module(
        &self,
        node_id: NodeId,
        external_module_id: Id,
    ) -> Result<Option<SharedModule>, StoreError>;
    /// A node's shared modules, oldest first; removed ones when asked.
    async fn list_shared_modules(
        &self,
        node_id: NodeId,
        include_deleted: bool,
    ) -> Result<Vec<SharedModule>, StoreError>;
    /// Inserts or replaces the mapping of a shared module.
    async fn put_mapping(&self, mapping: &ModuleMapping) -> Result<(), StoreError>;
    async fn get_mapping(&self, shared_module_id: Id) -> Result<Option<ModuleMapping>, StoreError>;
    async fn delete_mapping(&self, shared_module_id: Id) -> Result<bool, StoreError>;
    async fn list_mappings(&self, node_id: NodeId) -> Result<Vec<ModuleMapping>, StoreError>;
    /// The mappings of every node (one query, for status pages).
    async fn list_all_mappings(&self) -> Result<Vec<ModuleMapping>, StoreError>;
    /// The broken mappings of every node, with their shared module's handle
    /// (one query, for the all-nodes status).
    async fn list_broken_mappings(&self) -> Result<Vec<BrokenMapping>, StoreError>;
    /// Mappings that write into a local module.
    async fn list_mappings_to(&self, local_module_id: Id)
    -> Result<Vec<ModuleMapping>, StoreError>;
}

/// A mapping a structure change broke, as status pages show it.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokenMapping {
    pub node_id: NodeId,
    pub shared_module_id: Id,
    pub shared_handle: String,
    pub reason: String,
}

/// Where a pull stands, written with the records of a page.
#[derive(Debug, Clone, PartialEq)]
pub struct CursorWrite {
    pub node_id: NodeId,
    pub shared_module_id: Id,
    /// The origin's cursor to resume from (fedsync origins).
    pub cursor: String,
    /// The `lastSync` to send next (Corteza origins), unix seconds.
    pub last_sync: i64,
}

/// A per-record problem of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunError {
    pub run_id: Id,
    pub seq: u64,
    pub origin_record_id: Option<Id>,
    pub message: String,
}

/// Everything one page of records writes, in one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordBatch {
    /// Inserted or updated by id; `changed_at` is assigned by the store,
    /// strictly increasing per module in commit order.
    pub records: Vec<Record>,
    /// Inserted or updated by (node, exposed module, origin record).
    pub links: Vec<RecordLink>,
    /// Links that exist already with these local module and record ids:
    /// only their `origin_changed_at` and `updated_at` are written, by a
    /// statement that leaves the link's indexes alone (an update of a
    /// synced record, not a move). Never marked seen: a full re-pull puts
    /// its links in `links`.
    pub touched: Vec<RecordLink>,
    /// Marks the links written as seen by this run (a full re-pull); 0: keep.
    pub seen_run: i64,
    pub cursor: Option<CursorWrite>,
    pub errors: Vec<RunError>,
    /// The counts the run has reached with this batch, written with it, so
    /// a run cut off by a crash still tells what it did.
    pub progress: Option<(Id, crate::domain::RunCounts)>,
}

/// See `JobStore::status_snapshot`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusSnapshot {
    /// (node, structure schedule, data schedule); empty means the default.
    pub nodes: Vec<(Node, String, String)>,
    pub jobs: Vec<SyncJob>,
}

/// Which changes of a module a page holds, in change order.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeQuery {
    pub module_id: Id,
    /// After this (changed_at, id).
    pub after: Option<(i64, Id)>,
    /// Changed at or after this (micros).
    pub since: Option<i64>,
    /// Leave out records that arrived from this peer (no echo).
    pub exclude_origin: Option<NodeId>,
    /// Leave out every record that arrived from any peer (no re-export).
    pub exclude_received: bool,
    pub limit: u32,
}

impl ChangeQuery {
    /// The (changed_at, id) the page starts after: `after` and `since` as
    /// one lower bound, so the query is one index range.
    pub fn lower_bound(&self) -> (i64, i64) {
        let after = self
            .after
            .map_or((i64::MIN, i64::MIN), |(changed, id)| (changed, id.as_i64()));
        // `changed_at >= since` is `(changed_at, id) > (since, MIN)`.
        let since = self.since.map_or((i64::MIN, i64::MIN), |s| (s, i64::MIN));
        after.max(since)
    }
}

/// Records of the embedded data plane and the identity of received ones.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Writes a batch; returns its records with `changed_at` assigned.
    async fn apply_record_batch(&self, batch: &RecordBatch) -> Result<Vec<Record>, StoreError>;
    async fn get_record(&self, id: Id) -> Result<Option<Record>, StoreError>;
    /// The records among `ids` that exist, in one query.
    async fn get_records(&self, ids: &[Id]) -> Result<Vec<Record>, StoreError>;
    /// A module's records by id, after `after`; removed ones when asked.
    async fn list_records(
        &self,
        module_id: Id,
        include_deleted: bool,
        after: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError>;
    async fn page_record_changes(&self, query: &ChangeQuery) -> Result<Vec<Record>, StoreError>;
    /// How many changed records `page_record_changes` would page through
    /// (its `limit` ignored).
    async fn count_record_changes(&self, query: &ChangeQuery) -> Result<u64, StoreError>;
    /// Links of these origin records of one exposed module.
    async fn find_links(
        &self,
        node_id: NodeId,
        exposed_module_id: Id,
        origin_ids: &[Id],
    ) -> Result<Vec<RecordLink>, StoreError>;
    /// Links of these origin records, whatever module of the peer they came from.
    async fn find_links_any_module(
        &self,
        node_id: NodeId,
        origin_ids: &[Id],
    ) -> Result<Vec<RecordLink>, StoreError>;
    /// Links from this peer's records to these local records (a local
    /// record that is a copy of one of the peer's).
    async fn find_links_by_local(
        &self,
        node_id: NodeId,
        local_ids: &[Id],
    ) -> Result<Vec<RecordLink>, StoreError>;
    /// How many of this peer's records were received into `local_module_id`
    /// (links never go away but with their node).
    async fn count_links_into(
        &self,
        node_id: NodeId,
        local_module_id: Id,
    ) -> Result<u64, StoreError>;
    /// Links of an exposed module not seen by `run_id`, after `after` (paging).
    async fn links_not_seen(
        &self,
        node_id: NodeId,
        exposed_module_id: Id,
        run_id: i64,
        after: Option<Id>,
        limit: u32,
    ) -> Result<Vec<RecordLink>, StoreError>;
    async fn get_sync_cursor(
        &self,
        node_id: NodeId,
        shared_module_id: Id,
    ) -> Result<Option<CursorWrite>, StoreError>;
    /// Forgets where pulls stand: one shared module, or all of a node.
    async fn delete_sync_cursors(
        &self,
        node_id: NodeId,
        shared_module_id: Option<Id>,
    ) -> Result<(), StoreError>;
    async fn list_run_errors(&self, run_id: Id) -> Result<Vec<RunError>, StoreError>;
    /// Live records of a module.
    async fn count_records(&self, module_id: Id) -> Result<u64, StoreError>;
}

/// Sync history and the nodes' sync state.
#[async_trait]
pub trait SyncStore: Send + Sync {
    async fn insert_sync_run(&self, run: &SyncRun) -> Result<(), StoreError>;
    /// Records a run's end: status, counts, error, finish time.
    async fn finish_sync_run(&self, run: &SyncRun) -> Result<(), StoreError>;
    /// Runs still marked running, oldest first (live ones, and those of a
    /// process that died).
    async fn list_running_sync_runs(&self) -> Result<Vec<SyncRun>, StoreError>;
    /// Owners of id-instance leases that have not expired.
    async fn live_instance_owners(&self, now: Timestamp) -> Result<Vec<String>, StoreError>;
    /// How many runs of `run_id`'s job (its node, kind and shared module),
    /// from `since` on and other than `run_id`, did not succeed (failed,
    /// or still running).
    async fn unsucceeded_runs_since(&self, run_id: Id, since: Id) -> Result<u64, StoreError>;
    /// Newest first.
    async fn list_sync_runs(&self, node_id: NodeId, limit: u32)
    -> Result<Vec<SyncRun>, StoreError>;
    /// Sets a node's structure or data status; `synced_at` only when given.
    async fn set_sync_state(
        &self,
        node_id: NodeId,
        kind: SyncKind,
        status: SyncStatus,
        synced_at: Option<Timestamp>,
        error: &str,
    ) -> Result<(), StoreError>;
}

/// Scheduled jobs, claimed with a lease so that each due job runs once
/// across every replica sharing the database.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Jobs of one node, or all; structure first, then data by shared module.
    async fn list_jobs(&self, node_id: Option<NodeId>) -> Result<Vec<SyncJob>, StoreError>;
    async fn get_job(&self, id: Id) -> Result<Option<SyncJob>, StoreError>;
    /// `false` when the node already has that job (the same kind and shared module).
    async fn insert_job(&self, job: &SyncJob) -> Result<bool, StoreError>;
    async fn delete_job(&self, id: Id) -> Result<(), StoreError>;
    /// Rewrites a job; with `leased_by`, only while that worker holds it.
    async fn update_job(&self, job: &SyncJob, leased_by: Option<&str>) -> Result<bool, StoreError>;
    /// Claims the job due first (a triggered one before all): not stopped,
    /// not leased by a live worker, its node paired, not paused, with fewer
    /// than `per_peer` jobs of the node leased.
    async fn claim_due_job(
        &self,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        per_peer: u32,
    ) -> Result<Option<SyncJob>, StoreError>;
    /// Claims one job whatever its schedule, unless a live worker holds it.
    async fn claim_job(
        &self,
        id: Id,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
    ) -> Result<Option<SyncJob>, StoreError>;
    /// `false` when the lease is no longer ours.
    async fn renew_job_lease(
        &self,
        id: Id,
        owner: &str,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// When the next job may be claimed (the epoch for a triggered one).
    async fn next_job_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// A node's schedules: (structure, data); empty means the default.
    async fn node_schedule(&self, node_id: NodeId) -> Result<(String, String), StoreError>;
    /// Every node's schedules: (node, structure, data), one query.
    async fn node_schedules(&self) -> Result<Vec<(NodeId, String, String)>, StoreError>;
    /// What the all-nodes sync status shows: every node not removed (newest
    /// first) with its schedules, and every job (by node, structure before
    /// data, by module). One statement answering one row of two JSON arrays:
    /// sqlx hands a SQLite row from its worker thread to the caller as a
    /// message of its own, and for 200 nodes and 400 jobs those hand-offs
    /// (futex wake-ups, lock contention) were most of the call.
    async fn status_snapshot(&self) -> Result<StatusSnapshot, StoreError>;
    async fn set_node_schedule(
        &self,
        node_id: NodeId,
        structure: &str,
        data: &str,
    ) -> Result<bool, StoreError>;
    async fn set_node_paused(&self, node_id: NodeId, paused: bool) -> Result<bool, StoreError>;
    /// Removes finished runs (with their errors) and audit events older than
    /// `before`; returns (runs, audit events) removed.
    async fn prune_history(&self, before: Timestamp) -> Result<(u64, u64), StoreError>;
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
