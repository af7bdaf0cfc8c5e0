//! Sync runs: what each structure or data pull did.

use super::id::Id;
use super::{NodeId, Timestamp, UnknownVariant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncKind {
    Structure,
    Data,
}

impl SyncKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Structure => "structure",
            SyncKind::Data => "data",
        }
    }

    pub fn parse(value: &str) -> Result<SyncKind, UnknownVariant> {
        match value {
            "structure" => Ok(SyncKind::Structure),
            "data" => Ok(SyncKind::Data),
            other => Err(UnknownVariant {
                what: "sync kind",
                value: other.to_owned(),
                expected: "structure, data",
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Result<RunStatus, UnknownVariant> {
        match value {
            "running" => Ok(RunStatus::Running),
            "succeeded" => Ok(RunStatus::Succeeded),
            "failed" => Ok(RunStatus::Failed),
            other => Err(UnknownVariant {
                what: "run status",
                value: other.to_owned(),
                expected: "running, succeeded, failed",
            }),
        }
    }
}

/// Counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub pages: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Received changes that needed no write here: unchanged values, a
    /// deletion of what is already gone, a record removed on this side.
    pub skipped: u64,
    /// Per-record problems (values the destination cannot hold).
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncRun {
    pub id: Id,
    pub node_id: NodeId,
    pub kind: SyncKind,
    /// The shared module a data run pulled; `None` for structure.
    pub shared_module_id: Option<Id>,
    /// `manual` or `schedule`.
    pub trigger: String,
    pub status: RunStatus,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub counts: RunCounts,
    pub error: String,
    /// The daemon process that runs it (its id-lease owner name), so a run
    /// left `running` by a process that died can be told from a live one.
    pub owner: String,
}
