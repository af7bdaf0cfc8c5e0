//! Wakes the dispatcher from outside the scheduler: a change notice that
//! recorded a trigger, or a mapping that was set (its job must exist before
//! a notice can wake it, so the dispatcher reconciles first).

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Wake {
    notify: Notify,
    reconcile: AtomicBool,
}

impl Wake {
    pub fn new() -> Wake {
        Wake::default()
    }

    /// A trigger was recorded: claim now.
    pub fn claim(&self) {
        self.notify.notify_one();
    }

    /// Nodes or mappings changed: reconcile the jobs, then claim.
    pub fn reconcile(&self) {
        self.reconcile.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// Waits to be woken.
    pub async fn woken(&self) {
        self.notify.notified().await;
    }

    /// Whether a reconcile was asked for since the last call.
    pub fn take_reconcile(&self) -> bool {
        self.reconcile.swap(false, Ordering::SeqCst)
    }
}
