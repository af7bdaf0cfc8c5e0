//! Sync jobs: what the scheduler runs, when, and how it went.

use super::id::Id;
use super::sync::SyncKind;
use super::{NodeId, Timestamp, UnknownVariant};

/// Where a job stands between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waits for `next_run_at`.
    Idle,
    /// Claimed by a worker (`lease_owner`) until `lease_expires_at`.
    Running,
    /// The last attempt failed and may pass later: the next attempt is at
    /// `next_run_at`, after a backoff that grows with `attempts`.
    Retrying,
    /// Failed in a way only an admin can fix; `stop_reason` says what to do.
    /// `sync now`, `node resume` or the fix itself (re-pairing, mapping
    /// again) starts it again.
    Stopped,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Idle => "idle",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Stopped => "stopped",
        }
    }

    pub fn parse(value: &str) -> Result<JobState, UnknownVariant> {
        match value {
            "idle" => Ok(JobState::Idle),
            "running" => Ok(JobState::Running),
            "retrying" => Ok(JobState::Retrying),
            "stopped" => Ok(JobState::Stopped),
            other => Err(UnknownVariant {
                what: "job state",
                value: other.to_owned(),
                expected: "idle, running, retrying, stopped",
            }),
        }
    }
}

/// One scheduled job: the structure pull of a node, or the data pull of one
/// (node, shared module).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncJob {
    pub id: Id,
    pub node_id: NodeId,
    pub kind: SyncKind,
    /// The shared module a data job pulls; `None` for structure.
    pub shared_module_id: Option<Id>,
    /// An interval (`1m`) or a cron expression; empty: the configured default.
    pub schedule: String,
    pub state: JobState,
    pub next_run_at: Timestamp,
    /// Failed attempts since the last success.
    pub attempts: u32,
    pub last_error: String,
    pub last_error_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub stop_reason: String,
    pub lease_owner: String,
    pub lease_expires_at: Option<Timestamp>,
    /// When the pending trigger was recorded (`None` when none is).
    pub triggered_at: Option<Timestamp>,
    /// Triggers recorded (`sync now`, `sync reset`), counted.
    pub trigger_seq: i64,
    /// The `trigger_seq` the last claim took: a trigger is pending (the job
    /// is due at once) while `trigger_seq > claimed_seq`.
    pub claimed_seq: i64,
    /// The `claimed_seq` of the last attempt that wrote its outcome: a
    /// trigger is served once `served_seq` reaches it.
    pub served_seq: i64,
    /// The `trigger_seq` of the last reset asked for.
    pub reset_seq: i64,
    /// What recorded the pending trigger (`manual`, ...).
    pub trigger_reason: String,
    /// What the last claim serves, its run's `trigger`: `reset`, the
    /// trigger's reason, or `schedule`.
    pub claimed_trigger: String,
    /// The run the last attempt recorded.
    pub last_run_id: Option<Id>,
    /// When the current run of failed attempts began; `None` while the
    /// last attempt succeeded (or none ran).
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl SyncJob {
    /// A trigger is recorded that no claim has taken yet: the job is due
    /// at once (or once more after the attempt in progress).
    pub fn trigger_pending(&self) -> bool {
        self.trigger_seq > self.claimed_seq
    }

    /// A trigger is recorded that no attempt has finished serving yet
    /// (pending, or taken by the attempt running now).
    pub fn trigger_unserved(&self) -> bool {
        self.trigger_seq > self.served_seq
    }

    /// The claimed attempt pulls everything again (`sync reset`).
    pub fn full_pull(&self) -> bool {
        self.claimed_trigger == "reset"
    }

    pub fn new(
        id: Id,
        node_id: NodeId,
        kind: SyncKind,
        shared_module_id: Option<Id>,
        schedule: &str,
        now: Timestamp,
    ) -> SyncJob {
        SyncJob {
            id,
            node_id,
            kind,
            shared_module_id,
            schedule: schedule.to_owned(),
            state: JobState::Idle,
            next_run_at: now,
            attempts: 0,
            last_error: String::new(),
            last_error_at: None,
            last_success_at: None,
            stop_reason: String::new(),
            lease_owner: String::new(),
            lease_expires_at: None,
            triggered_at: None,
            trigger_seq: 0,
            claimed_seq: 0,
            served_seq: 0,
            reset_seq: 0,
            trigger_reason: String::new(),
            claimed_trigger: String::new(),
            last_run_id: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        }
    }
}
