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
    /// Set by `sync now`: run at once, whatever the schedule.
    pub triggered_at: Option<Timestamp>,
    /// When the current run of failed attempts began; `None` while the
    /// last attempt succeeded (or none ran).
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl SyncJob {
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
            failing_since: None,
            created_at: now,
            updated_at: now,
        }
    }
}
