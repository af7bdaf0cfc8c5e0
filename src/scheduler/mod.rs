//! Scheduled sync jobs: one structure job per paired node, one data job per
//! (node, mapped shared module), kept in the `sync_jobs` table so they
//! survive restarts and are shared by replicas.
//!
//! The dispatcher sleeps (tokio time) until the earliest due job, or until
//! woken (a trigger, a finished job, an admin change), claims due jobs with a
//! lease the running attempt renews, and runs each as a task of the daemon
//! (`sync::work`) under a global and a per-peer limit. A claim is one
//! statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so a job never runs
//! twice at once, in one process or across replicas; a replica that dies
//! loses its leases when they expire and another one takes the jobs over.
//! Failed attempts back off exponentially with full jitter; the attempt
//! count and the next attempt time are in the table, so a restart keeps
//! them. An error only an admin can fix stops the job with a reason instead
//! of retrying it.
//!
//! `sync now` and `sync reset` record a trigger in the job row and wait for
//! the attempt that serves it (`trigger.rs`): the attempt belongs to the
//! daemon, so a caller that goes away changes nothing, and a caller waiting
//! holds no concurrency permit.

mod attempt;
pub mod backoff;
mod controls;
mod outcome;
mod reconcile;
mod runner;
pub mod schedule;
#[cfg(test)]
mod tests;
mod trigger;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::domain::{Id, IdGenerator, NodeId, SyncJob, SyncKind, Timestamp};
use crate::store::Store;
use crate::sync::work::Work;
pub use backoff::Backoff;
pub use controls::ControlError;
pub use runner::{Attempt, JobRunner, MAX_RETRY_AFTER, SyncJobs, Verdict, classify};
pub use schedule::Schedule;
pub use trigger::Tickets;

/// Wall-clock time that moves with tokio's clock, so paused-time tests
/// drive the schedule.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: Timestamp,
    mono: tokio::time::Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            wall: crate::domain::now(),
            mono: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        let elapsed = chrono::Duration::from_std(self.mono.elapsed()).unwrap_or_default();
        let t = self.wall + elapsed;
        chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
    }
}

#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    pub structure_every: String,
    pub data_every: String,
    pub backoff: Backoff,
    pub max_concurrent: u32,
    pub per_peer: u32,
    pub lease: Duration,
    pub history_retention: Duration,
    /// Runs kept per job whatever their age.
    pub history_runs_per_job: u32,
    /// The default data schedule of peers that send change notices;
    /// `None` with live changes off.
    pub live_data_every: Option<String>,
    /// The longest the dispatcher sleeps; also how often it reconciles jobs
    /// with nodes and mappings.
    pub tick: Duration,
}

impl SchedulerSettings {
    pub fn from_config(sync: &crate::config::SyncConfig) -> Result<SchedulerSettings, String> {
        Schedule::parse(&sync.structure_every)
            .map_err(|e| format!("config key `sync.structure_every`: {e}"))?;
        Schedule::parse(&sync.data_every)
            .map_err(|e| format!("config key `sync.data_every`: {e}"))?;
        Schedule::parse(&sync.live_data_every)
            .map_err(|e| format!("config key `sync.live_data_every`: {e}"))?;
        Ok(SchedulerSettings {
            structure_every: sync.structure_every.clone(),
            data_every: sync.data_every.clone(),
            backoff: Backoff {
                base: sync.retry_base,
                factor: f64::from(sync.retry_factor),
                cap: sync.retry_cap,
            },
            max_concurrent: sync.max_concurrent,
            per_peer: sync.per_peer,
            lease: sync.job_lease,
            history_retention: sync.history_retention,
            history_runs_per_job: sync.history_runs_per_job,
            live_data_every: sync.live_changes.then(|| sync.live_data_every.clone()),
            tick: Duration::from_secs(5),
        })
    }
}

/// An attempt of this process that ended: the job, the `claimed_seq` it
/// served, and what it did (sent whether or not its outcome could be
/// written, so a caller here hears of it even when the store failed).
#[derive(Debug, Clone)]
struct Landed {
    job: Id,
    served: i64,
    attempt: Attempt,
}

pub struct Scheduler {
    metrics: Option<crate::telemetry::SyncMetrics>,
    notices: Option<Arc<crate::sync::Notices>>,
    store: Arc<dyn Store>,
    runner: Arc<dyn JobRunner>,
    ids: Arc<IdGenerator>,
    settings: SchedulerSettings,
    owner: String,
    clock: Clock,
    wake: Arc<crate::sync::wake::Wake>,
    permits: Arc<Semaphore>,
    /// Where attempts run: tasks of the daemon.
    work: Work,
    /// Each attempt of this process as it ends.
    landed: broadcast::Sender<Landed>,
    /// Cancelled when the dispatcher stops: callers waiting for attempts
    /// stop waiting.
    halted: CancellationToken,
    /// When the dispatcher sleeps: until when; `None` while it works.
    parked: tokio::sync::watch::Sender<Option<Timestamp>>,
    /// When the dispatcher loop last turned (for the watchdog).
    beat: std::sync::Mutex<tokio::time::Instant>,
    /// Reconciles one at a time; the number of the last one finished.
    reconciled: tokio::sync::Mutex<u64>,
    /// The number of reconciles started.
    reconciles: std::sync::atomic::AtomicU64,
    /// The attempts running in this process, by job (node, kind, shared
    /// module): when each started (its run starts after that).
    in_flight: std::sync::Mutex<HashMap<JobKey, Timestamp>>,
    /// See `free_orphaned_leases`.
    unreleased: std::sync::Mutex<std::collections::HashSet<Id>>,
}

/// What a job and its runs have in common.
type JobKey = (NodeId, SyncKind, Option<Id>);

fn key_of(job: &SyncJob) -> JobKey {
    (job.node_id, job.kind, job.shared_module_id)
}

impl Scheduler {
    pub fn new(
        store: Arc<dyn Store>,
        runner: Arc<dyn JobRunner>,
        ids: Arc<IdGenerator>,
        settings: SchedulerSettings,
        owner: String,
        clock: Clock,
    ) -> Scheduler {
        let permits = Arc::new(Semaphore::new(settings.max_concurrent.max(1) as usize));
        Scheduler {
            metrics: None,
            notices: None,
            store,
            runner,
            ids,
            settings,
            owner,
            clock,
            wake: Arc::new(crate::sync::wake::Wake::new()),
            permits,
            work: Work::new(),
            landed: broadcast::Sender::new(256),
            halted: CancellationToken::new(),
            parked: tokio::sync::watch::Sender::new(None),
            beat: std::sync::Mutex::new(tokio::time::Instant::now()),
            reconciled: tokio::sync::Mutex::new(0),
            reconciles: std::sync::atomic::AtomicU64::new(0),
            in_flight: std::sync::Mutex::new(HashMap::new()),
            unreleased: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Counts attempts, records, durations and backoff on these metrics.
    pub fn with_metrics(mut self, metrics: crate::telemetry::SyncMetrics) -> Scheduler {
        self.metrics = Some(metrics);
        self
    }

    /// Reports stopped jobs, and jobs failing for long, through `notices`.
    pub fn with_notices(mut self, notices: Arc<crate::sync::Notices>) -> Scheduler {
        self.notices = Some(notices);
        self
    }

    /// Wakes when `wake` is notified too (live change notices record
    /// triggers from outside the scheduler).
    pub fn with_wake(mut self, wake: Arc<crate::sync::wake::Wake>) -> Scheduler {
        self.wake = wake;
        self
    }

    /// Runs attempts as tasks of `work` (the daemon's, which its shutdown
    /// waits for); by default the scheduler has a set of its own.
    pub fn with_work(mut self, work: Work) -> Scheduler {
        self.work = work;
        self
    }

    /// Watches the dispatcher: `Some(until)` while it sleeps (tests step
    /// paused time from one wake-up to the next with it).
    pub fn parked(&self) -> tokio::sync::watch::Receiver<Option<Timestamp>> {
        self.parked.subscribe()
    }

    /// Attempts running now, in this process.
    pub fn running(&self) -> usize {
        (self.settings.max_concurrent.max(1) as usize)
            .saturating_sub(self.permits.available_permits())
    }

    /// Whether the dispatcher loop turned recently (it turns at least every
    /// tick, plus the time one reconcile pass may take).
    pub fn is_turning(&self) -> bool {
        let beat = *self.beat.lock().unwrap_or_else(|e| e.into_inner());
        beat.elapsed() < self.settings.tick * 3 + Duration::from_secs(15)
    }

    /// Wakes the dispatcher: something changed (a trigger, a mapping, a pause).
    pub fn wake(&self) {
        self.wake.claim();
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The dispatcher loop, until `stop`. Callers waiting for attempts stop
    /// waiting when it ends; the attempts themselves are the daemon's work,
    /// which its shutdown gives a grace period.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let _halt = self.halted.clone().drop_guard();
        let mut last_reconcile: Option<Timestamp> = None;
        let mut last_prune: Option<Timestamp> = None;
        loop {
            *self.beat.lock().unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
            let now = self.clock.now();
            if self.wake.take_reconcile()
                && let Err(error) = self.reconcile().await
            {
                tracing::warn!(error = %error, "cannot reconcile sync jobs; retrying");
            }
            if last_reconcile.is_none_or(|t| now - t >= chrono_of(self.settings.tick)) {
                self.housekeeping().await;
                last_reconcile = Some(now);
            }
            if last_prune.is_none_or(|t| now - t >= chrono::Duration::hours(1)) {
                self.prune(now).await;
                last_prune = Some(now);
            }
            self.claim_and_start().await;
            let wait = self.wait_time().await;
            self.parked
                .send_replace(Some(self.clock.now() + chrono_of(wait)));
            tokio::select! {
                // A stop wins over a wake-up that is due at the same time.
                biased;
                _ = stop.cancelled() => break,
                _ = self.wake.woken() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            self.parked.send_replace(None);
        }
    }

    async fn wait_time(&self) -> Duration {
        let tick = self.settings.tick;
        if self.permits.available_permits() == 0 {
            return tick;
        }
        match self.store.next_job_due().await {
            Ok(Some(due)) => {
                let now = self.clock.now();
                if due <= now {
                    // Due but not claimable now (leased, or the peer is at
                    // its limit): a finished job wakes us.
                    tick
                } else {
                    (due - now).to_std().unwrap_or(tick).min(tick)
                }
            }
            Ok(None) => tick,
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the next due job");
                tick
            }
        }
    }

    /// Claims due jobs while permits last and starts each as the daemon's
    /// work. The job is in flight here from its claim on, before its task
    /// first runs, so `free_orphaned_leases` never takes it for an orphan.
    async fn claim_and_start(self: &Arc<Self>) {
        loop {
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                return;
            };
            let now = self.clock.now();
            let claimed = self
                .store
                .claim_due_job(
                    now,
                    &self.owner,
                    now + chrono_of(self.settings.lease),
                    self.settings.per_peer,
                )
                .await;
            match claimed {
                Ok(Some(job)) => {
                    let Some(flight) = InFlight::enter(self, &job) else {
                        // Claimed again while this process still runs it
                        // (its lease had lapsed): the running attempt goes
                        // on under the new lease.
                        tracing::warn!(job = %job.id, "a sync job claimed while it runs here; not run twice");
                        continue;
                    };
                    let me = self.clone();
                    // Nobody awaits it: callers hear of it through `landed`.
                    drop(self.work.start(async move {
                        let _flight = flight;
                        me.execute(job, permit).await;
                        me.wake();
                    }));
                }
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot claim a due sync job");
                    return;
                }
            }
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<JobKey, Timestamp>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A job in flight in this process, from its claim until its task ends or
/// is dropped (whether or not it ever ran).
struct InFlight {
    scheduler: Arc<Scheduler>,
    key: JobKey,
}

impl InFlight {
    /// `None` when an attempt of the job is in flight here already.
    fn enter(scheduler: &Arc<Scheduler>, job: &SyncJob) -> Option<InFlight> {
        let key = key_of(job);
        match scheduler.in_flight().entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => return None,
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(crate::domain::now());
            }
        }
        Some(InFlight {
            scheduler: scheduler.clone(),
            key,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.scheduler.in_flight().remove(&self.key);
    }
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
