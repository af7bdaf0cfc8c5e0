//! Scheduled jobs and the schedules, pauses and history around them: the
//! traits; their SQL is in `jobs_sql.rs` and `schedule_sql.rs`.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{Id, Node, NodeId, SyncJob, Timestamp};

/// What recorded a trigger, and what it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerRequest<'a> {
    /// Written to `trigger_reason` (`manual`, ...); a pending `manual`
    /// trigger keeps its reason.
    pub reason: &'a str,
    /// Pull everything again (`sync reset`).
    pub reset: bool,
    /// Join a trigger already pending instead of recording one more (a
    /// watcher attaching to work a caller that left started).
    pub join: bool,
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
    /// Rewrites a job's schedule, state, errors and lease; with `leased_by`,
    /// only while that worker holds it. Never touches its triggers (they
    /// are recorded by `trigger_job` at any time, and a read-modify-write
    /// must not lose one).
    async fn update_job(&self, job: &SyncJob, leased_by: Option<&str>) -> Result<bool, StoreError>;
    /// Writes an attempt's outcome as `update_job` does, while `owner`
    /// holds the lease: the triggers up to `served` (the `trigger_seq` it
    /// claimed) are served, a trigger recorded since stays pending, and
    /// `run` is the run it recorded.
    async fn settle_job(
        &self,
        job: &SyncJob,
        owner: &str,
        served: i64,
        run: Option<Id>,
    ) -> Result<bool, StoreError>;
    /// Records a trigger in the job row; the `trigger_seq` an attempt must
    /// serve for it (`None`: no such job).
    async fn trigger_job(
        &self,
        id: Id,
        now: Timestamp,
        trigger: TriggerRequest<'_>,
    ) -> Result<Option<i64>, StoreError>;
    /// Claims the job due first (a triggered one before all): not leased by
    /// a live worker, its node paired, with fewer than `per_peer` jobs of
    /// the node leased, and either triggered (even when stopped or the node
    /// is paused) or due, not stopped and its node not paused.
    async fn claim_due_job(
        &self,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        per_peer: u32,
    ) -> Result<Option<SyncJob>, StoreError>;
    /// `false` when the lease is no longer ours.
    async fn renew_job_lease(
        &self,
        id: Id,
        owner: &str,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Frees a lease `owner` holds until exactly `until` (a renewal since
    /// means its attempt lives): the job is idle and claimable again.
    /// `false` when it was not so.
    async fn release_job_lease(
        &self,
        id: Id,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// When the next job may be claimed (the epoch for a triggered one).
    async fn next_job_due(&self) -> Result<Option<Timestamp>, StoreError>;
}

/// See `ScheduleStore::status_snapshot`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusSnapshot {
    /// (node, structure schedule, data schedule); empty means the default.
    pub nodes: Vec<(Node, String, String)>,
    pub jobs: Vec<SyncJob>,
}

/// Nodes' schedules and pauses, the status of every node, and pruning the
/// history past its retention.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
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
    /// Keeps at most `keep` runs of each job (node, kind, shared module):
    /// older finished runs go with their errors (live changes make many
    /// small runs). Returns how many were removed.
    async fn prune_runs_beyond(&self, keep: u32) -> Result<u64, StoreError>;
}
