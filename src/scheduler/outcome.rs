//! What an attempt leaves in its job: the next run, backoff or stop
//! (`settle`), and telling the admins of a job that stopped or has been
//! failing for long.

use std::time::Duration;

use super::{MAX_RETRY_AFTER, Schedule, Scheduler, Verdict, backoff, chrono_of};
use crate::domain::{JobState, SyncJob, SyncKind, Timestamp};

impl Scheduler {
    /// Tells the admins of a job that stopped, or that has now been failing
    /// for `failing_for` (once per run of failures: the attempt that crosses
    /// the threshold reports it).
    pub(super) async fn report(&self, before: &SyncJob, after: &SyncJob, verdict: &Verdict) {
        let Some(notices) = &self.notices else {
            return;
        };
        let crossed = |since: Timestamp| {
            let Some(limit) = notices.failing_for().map(chrono_of) else {
                return false;
            };
            let now_past = after.updated_at - since >= limit;
            let was_past = before
                .failing_since
                .zip(before.last_error_at)
                .is_some_and(|(s, last)| s == since && last - since >= limit);
            now_past && !was_past
        };
        let stopped = matches!(verdict, Verdict::Stop(_));
        let failing = matches!(verdict, Verdict::Retry(_) | Verdict::RetryAfter(..))
            && after.failing_since.is_some_and(crossed);
        if !stopped && !failing {
            return;
        }
        let node = match self.store.get_node(after.node_id).await {
            Ok(Some(node)) => node,
            _ => return,
        };
        let module = match after.shared_module_id {
            None => String::new(),
            Some(id) => match self.store.get_shared_module(id).await {
                Ok(Some(shared)) => shared.handle,
                _ => id.to_string(),
            },
        };
        let event = if stopped {
            crate::sync::Event::SyncStopped {
                node,
                kind: after.kind,
                module,
                reason: after.stop_reason.clone(),
            }
        } else {
            crate::sync::Event::SyncFailing {
                node,
                kind: after.kind,
                module,
                since: after.failing_since.unwrap_or(after.updated_at),
                error: after.last_error.clone(),
            }
        };
        notices.post(event).await;
    }

    /// The job after an attempt: its next run, attempts, errors; unleased.
    pub(super) fn settle(&self, job: &mut SyncJob, verdict: &Verdict) {
        let now = self.clock.now();
        job.lease_owner.clear();
        job.lease_expires_at = None;
        job.updated_at = now;
        match verdict {
            Verdict::Succeeded => {
                job.state = JobState::Idle;
                job.attempts = 0;
                job.last_success_at = Some(now);
                job.failing_since = None;
                job.last_error.clear();
                job.stop_reason.clear();
                job.next_run_at = self.schedule_of(job).next_after(now);
            }
            Verdict::Retry(error) | Verdict::RetryAfter(error, _) => {
                job.state = JobState::Retrying;
                job.attempts = job.attempts.saturating_add(1);
                job.failing_since.get_or_insert(now);
                job.last_error = error.clone();
                job.last_error_at = Some(now);
                let mut wait = self
                    .settings
                    .backoff
                    .delay(job.attempts, backoff::random_unit());
                if let Verdict::RetryAfter(_, asked) = verdict {
                    wait = wait.max((*asked).min(MAX_RETRY_AFTER));
                }
                job.next_run_at = now + chrono_of(wait);
            }
            Verdict::Stop(reason) => {
                job.state = JobState::Stopped;
                job.attempts = job.attempts.saturating_add(1);
                job.failing_since.get_or_insert(now);
                job.last_error = reason.clone();
                job.last_error_at = Some(now);
                job.stop_reason = reason.clone();
            }
        }
    }

    pub(super) fn schedule_of(&self, job: &SyncJob) -> Schedule {
        let default = match job.kind {
            SyncKind::Structure => &self.settings.structure_every,
            SyncKind::Data => &self.settings.data_every,
        };
        let text = if job.schedule.is_empty() {
            default
        } else {
            &job.schedule
        };
        Schedule::parse(text)
            .or_else(|_| Schedule::parse(default))
            .unwrap_or(Schedule::Every(Duration::from_secs(60)))
    }
}
