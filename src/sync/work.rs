//! Work the daemon owns: a sync attempt or a pairing step that calls a peer
//! runs as a task of the daemon, not inside the request that asked for it.
//! The request waits for the task's result; if the request goes away (a
//! closed CLI, a timeout, a dropped connection), the task goes on to its
//! end: success, failure, its own timeouts, or the daemon's shutdown, which
//! gives running work `daemon.shutdown_grace` and then cancels it.
//!
//! Every task started here is tracked, so shutdown waits for each one to
//! end before the store closes: none outlives the daemon.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why a task of the daemon gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkError {
    /// The daemon is stopping: the work was not started, or was cancelled
    /// when the shutdown grace ran out.
    #[error("the daemon is stopping")]
    Stopping,
    /// The task panicked (a bug); its panic was logged.
    #[error("the work failed unexpectedly (a bug; see the daemon's log)")]
    Panicked,
}

/// The daemon's tasks. Cheap to clone; every clone is the same set.
#[derive(Clone, Default)]
pub struct Work {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

/// A started task: await `result` for its output. Dropping it leaves the
/// task running.
#[must_use = "dropping a Started leaves the task running; await result() for its output"]
pub struct Started<T>(Option<tokio::task::JoinHandle<Option<T>>>);

impl<T> Started<T> {
    /// The task's output once it ends.
    pub async fn result(self) -> Result<T, WorkError> {
        let Some(handle) = self.0 else {
            return Err(WorkError::Stopping);
        };
        match handle.await {
            Ok(Some(output)) => Ok(output),
            Ok(None) => Err(WorkError::Stopping),
            Err(error) if error.is_panic() => {
                tracing::error!(error = %error, "a task of the daemon panicked");
                Err(WorkError::Panicked)
            }
            Err(_) => Err(WorkError::Stopping),
        }
    }
}

impl Work {
    pub fn new() -> Work {
        Work::default()
    }

    /// Starts `task` as the daemon's. Once shutdown has begun nothing new
    /// starts (the result is `Stopping`).
    pub fn start<T, F>(&self, task: F) -> Started<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        if self.tracker.is_closed() {
            return Started(None);
        }
        let cancel = self.cancel.clone();
        Started(Some(self.tracker.spawn(async move {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                output = task => Some(output),
            }
        })))
    }

    /// Tasks running now.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Shutdown: nothing new starts; running tasks get `grace` to end, then
    /// are cancelled (each stops at its next await); returns once every one
    /// has ended, with how many were cancelled.
    pub async fn shut_down(&self, grace: Duration) -> usize {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let cut = self.tracker.len();
        self.cancel.cancel();
        self.tracker.wait().await;
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_whose_caller_left_runs_to_its_end() {
        let work = Work::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let started = work.start(async move {
            let _ = rx.await;
            let _ = done_tx.send("finished");
        });
        // The caller waits, then gives up.
        let waited = tokio::time::timeout(Duration::from_millis(10), started.result()).await;
        assert!(waited.is_err(), "the task cannot be done yet");
        tx.send(()).unwrap();
        assert_eq!(done_rx.await.unwrap(), "finished");
        assert_eq!(work.shut_down(Duration::from_secs(1)).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_the_grace_then_cancels_and_refuses_new_work() {
        let work = Work::new();
        let quick = work.start(tokio::time::sleep(Duration::from_secs(1)));
        let stuck = work.start(std::future::pending::<()>());
        assert_eq!(work.running(), 2);
        let cut = work.shut_down(Duration::from_secs(5)).await;
        assert_eq!(cut, 1, "the stuck task is cancelled, the quick one ended");
        assert_eq!(quick.result().await, Ok(()));
        assert_eq!(stuck.result().await, Err(WorkError::Stopping));
        assert_eq!(work.running(), 0);
        let late = work.start(async { 1 });
        assert_eq!(late.result().await, Err(WorkError::Stopping));
    }
}
