//! Live progress of sync runs, for whoever watches (`sync now --follow`).
//!
//! A broadcast of run snapshots: the run with the counts it has reached,
//! and how many records the origin said the run would see, when it said.
//! Publishing never waits; a watcher that falls behind skips snapshots,
//! which only ever carry totals so far.

use tokio::sync::broadcast;

use crate::domain::SyncRun;

/// A run as it stands.
#[derive(Debug, Clone)]
pub struct RunProgress {
    pub run: SyncRun,
    /// Records the run will see in all, when the origin said.
    pub total: Option<u64>,
}

/// Where runs report progress. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProgressBus {
    sender: broadcast::Sender<RunProgress>,
}

impl ProgressBus {
    pub fn new() -> ProgressBus {
        ProgressBus {
            sender: broadcast::Sender::new(256),
        }
    }

    pub fn publish(&self, run: &SyncRun, total: Option<u64>) {
        // No watcher: nothing to do.
        let _ = self.sender.send(RunProgress {
            run: run.clone(),
            total,
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunProgress> {
        self.sender.subscribe()
    }
}

impl Default for ProgressBus {
    fn default() -> ProgressBus {
        ProgressBus::new()
    }
}
