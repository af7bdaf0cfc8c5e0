//! Records of the embedded data plane, the links and cursors of received
//! ones, and the history of sync runs.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{Id, NodeId, Record, RecordLink, SyncKind, SyncRun, SyncStatus, Timestamp};

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
    /// strictly increasing per module in commit order. A record of revision
    /// 0 is new (a fresh id, never stored): its revision is not looked up
    /// and becomes 1.
    pub records: Vec<Record>,
    /// Inserted or updated by (node, exposed module, origin record).
    pub links: Vec<RecordLink>,
    /// Links the page's lookup did not find: inserted without the upsert's
    /// conflict check, and marked seen as `links` are. One that exists
    /// after all fails the batch, whose retry then finds it.
    pub new_links: Vec<RecordLink>,
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
    async fn apply_record_batch(&self, batch: RecordBatch) -> Result<Vec<Record>, StoreError>;
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
    async fn get_sync_run(&self, id: Id) -> Result<Option<SyncRun>, StoreError>;
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
