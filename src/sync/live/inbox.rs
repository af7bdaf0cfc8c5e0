//! The destination side: a peer's notice records a trigger in the job that
//! pulls each module it names (or the structure job), at most once per
//! (peer, module) per window: a notice within the window of the last
//! trigger defers one trigger to the window's end, and any more are folded
//! into it. A trigger recorded while the job runs makes it run once more
//! after, on whichever replica holds it; so however many notices come, the
//! peer is pulled at most once per window, and no change is left behind.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::time::Instant;

use super::{ChangeNotice, LiveChanges, LiveEvent};
use crate::domain::{Id, JobState, Node, SyncKind};
use crate::store::{StoreError, TriggerRequest};

/// A (peer, module) pair's window: `None` module is the structure job.
type Key = (crate::domain::NodeId, Option<Id>);

#[derive(Debug, Clone, Copy)]
struct Window {
    last: Instant,
    deferred: bool,
}

/// The windows of the (peer, module) pairs notices came for.
#[derive(Default)]
pub(super) struct Windows(Mutex<HashMap<Key, Window>>);

/// What a notice did here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Received {
    /// Triggers recorded now.
    pub triggered: u32,
    /// Triggers deferred to the end of their window.
    pub deferred: u32,
    /// Modules folded into a trigger already recorded or deferred.
    pub coalesced: u32,
    /// Modules we do not pull (not mapped here).
    pub ignored: u32,
}

const NOTICE: TriggerRequest<'static> = TriggerRequest {
    reason: "notice",
    reset: false,
    join: false,
};

/// What to do with a notice for one key, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Trigger,
    Defer(Instant),
    Fold,
}

impl Windows {
    fn step(&self, key: Key, window: std::time::Duration, now: Instant) -> Step {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match all.get_mut(&key) {
            Some(w) if w.deferred => Step::Fold,
            Some(w) if now < w.last + window => {
                w.deferred = true;
                Step::Defer(w.last + window)
            }
            _ => {
                all.insert(
                    key,
                    Window {
                        last: now,
                        deferred: false,
                    },
                );
                Step::Trigger
            }
        }
    }

    /// A deferred trigger is being recorded now.
    fn fired(&self, key: Key, now: Instant) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.insert(
            key,
            Window {
                last: now,
                deferred: false,
            },
        );
    }
}

impl LiveChanges {
    /// A peer's notice (authenticated by the federation listener). With
    /// live changes off it changes nothing.
    pub async fn receive(
        self: &std::sync::Arc<Self>,
        node: &Node,
        notice: &ChangeNotice,
    ) -> Result<Received, StoreError> {
        let mut out = Received::default();
        if !self.settings.enabled {
            return Ok(out);
        }
        (self.count)(LiveEvent::Received, 1);
        self.seen().entry(node.id).or_default().last_received = Some(crate::domain::now());
        let mut jobs: Vec<(Key, Id)> = Vec::new();
        if notice.structure {
            let structure = self
                .store
                .list_jobs(Some(node.id))
                .await?
                .into_iter()
                .find(|j| j.kind == SyncKind::Structure && j.state != JobState::Stopped);
            match structure {
                Some(job) => jobs.push(((node.id, None), job.id)),
                None => out.ignored += 1,
            }
        }
        for module in notice.modules.iter().take(MAX_MODULES) {
            match self.store.data_job_of(node.id, *module).await? {
                Some(job) => jobs.push(((node.id, Some(*module)), job)),
                None => out.ignored += 1,
            }
        }
        for (key, job) in jobs {
            match self.inbox.step(key, self.settings.window, Instant::now()) {
                Step::Trigger => {
                    self.trigger(job).await?;
                    out.triggered += 1;
                }
                Step::Defer(at) => {
                    self.defer(key, job, at);
                    out.deferred += 1;
                }
                Step::Fold => out.coalesced += 1,
            }
        }
        if out.coalesced + out.deferred > 0 {
            (self.count)(
                LiveEvent::Coalesced,
                u64::from(out.coalesced + out.deferred),
            );
        }
        Ok(out)
    }

    async fn trigger(&self, job: Id) -> Result<(), StoreError> {
        self.store
            .trigger_job(job, crate::domain::now(), NOTICE)
            .await?;
        self.wake.claim();
        Ok(())
    }

    /// Records the trigger at `at`, as the daemon's work (it ends with the
    /// daemon; a trigger lost then is made good by the schedule).
    fn defer(self: &std::sync::Arc<Self>, key: Key, job: Id, at: Instant) {
        let me = self.clone();
        drop(self.work.start(async move {
            tokio::time::sleep_until(at).await;
            me.inbox.fired(key, Instant::now());
            if let Err(error) = me.trigger(job).await {
                tracing::warn!(job = %job, error = %error, "cannot record a deferred change notice; the schedule pulls it");
            }
        }));
    }
}

/// Modules one notice may name (a peer exposes no more to one node in
/// practice; more are ignored).
pub const MAX_MODULES: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_trigger_per_window_then_one_deferred_and_the_rest_folded() {
        let windows = Windows::default();
        let key = (
            crate::domain::NodeId::from_u64(7).unwrap(),
            Some(Id::new(9).unwrap()),
        );
        let other = (key.0, None);
        let w = Duration::from_millis(50);
        let t0 = Instant::now();
        assert_eq!(windows.step(key, w, t0), Step::Trigger);
        assert_eq!(windows.step(other, w, t0), Step::Trigger, "keys apart");
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(windows.step(key, w, t1), Step::Defer(t0 + w));
        assert_eq!(windows.step(key, w, t1), Step::Fold);
        assert_eq!(
            windows.step(key, w, t0 + Duration::from_millis(70)),
            Step::Fold
        );
        windows.fired(key, t0 + w);
        assert_eq!(
            windows.step(key, w, t0 + w + Duration::from_millis(1)),
            Step::Defer(t0 + w + w)
        );
        assert_eq!(
            windows.step(key, w, t0 + w * 3),
            Step::Fold,
            "still deferred"
        );
        windows.fired(key, t0 + w * 2);
        assert_eq!(windows.step(key, w, t0 + w * 4), Step::Trigger);
    }
}
