//! Scheduled sync jobs: one structure job per paired node, one data job per
//! (node, mapped shared module), kept in the `sync_jobs` table so they
//! survive restarts and are shared by replicas.
//!
//! The dispatcher sleeps (tokio time) until the earliest due job, or until
//! woken (a trigger, a finished job, an admin change), claims due jobs with a
//! lease the running worker renews, and runs them under a global and a
//! per-peer limit. A claim is one statement (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL), so a job never runs twice at once, in one process or across
//! replicas; a replica that dies loses its leases when they expire and
//! another one takes the jobs over. Failed attempts back off exponentially
//! with full jitter; the attempt count and the next attempt time are in the
//! table, so a restart keeps them. An error only an admin can fix stops the
//! job with a reason instead of retrying it.

pub mod backoff;
pub mod schedule;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::domain::{
    Id, IdGenerator, JobState, NodeFilter, NodeId, PairingStatus, SyncJob, SyncKind, SyncRun,
    Timestamp,
};
use crate::store::{Store, StoreError};
use crate::sync::data::DataSync;
use crate::sync::structure::StructureSync;
use crate::sync::structure::SyncError;
pub use backoff::Backoff;
pub use schedule::Schedule;

/// How an attempt ended, for the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Succeeded,
    /// May pass later: back off and try again.
    Retry(String),
    /// May pass later, and the peer said when (`Retry-After`): back off at
    /// least that long (at most `MAX_RETRY_AFTER`).
    RetryAfter(String, Duration),
    /// Only an admin can fix it: the reason says what to do.
    Stop(String),
}

/// What a job attempt did: its run (when one was recorded) and the verdict.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub run: Option<SyncRun>,
    pub verdict: Verdict,
    /// It failed because the store did: its outcome is written with a
    /// short deadline (`sync::runs::STORE_DOWN_WRITE`).
    pub store_down: bool,
}

impl Attempt {
    fn ended(run: Option<SyncRun>, error: Option<SyncError>) -> Attempt {
        match error {
            None => Attempt {
                run,
                verdict: Verdict::Succeeded,
                store_down: false,
            },
            Some(error) => Attempt {
                run,
                verdict: classify(&error),
                store_down: crate::sync::runs::store_failed(&error),
            },
        }
    }
}

/// Runs one attempt of a job.
#[async_trait]
pub trait JobRunner: Send + Sync {
    async fn attempt(&self, job: &SyncJob, trigger: &str) -> Attempt;
}

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
            tick: Duration::from_secs(5),
        })
    }
}

/// The longest `Retry-After` a peer can impose on a job.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

pub struct Scheduler {
    metrics: Option<crate::telemetry::SyncMetrics>,
    notices: Option<Arc<crate::sync::Notices>>,
    store: Arc<dyn Store>,
    runner: Arc<dyn JobRunner>,
    ids: Arc<IdGenerator>,
    settings: SchedulerSettings,
    owner: String,
    clock: Clock,
    wake: Notify,
    permits: Arc<Semaphore>,
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
}

/// What a job and its runs have in common.
type JobKey = (NodeId, SyncKind, Option<Id>);

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
            wake: Notify::new(),
            permits,
            parked: tokio::sync::watch::Sender::new(None),
            beat: std::sync::Mutex::new(tokio::time::Instant::now()),
            reconciled: tokio::sync::Mutex::new(0),
            reconciles: std::sync::atomic::AtomicU64::new(0),
            in_flight: std::sync::Mutex::new(HashMap::new()),
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
        self.wake.notify_one();
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The dispatcher loop, until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut last_reconcile: Option<Timestamp> = None;
        let mut last_prune: Option<Timestamp> = None;
        loop {
            *self.beat.lock().unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
            let now = self.clock.now();
            if last_reconcile.is_none_or(|t| now - t >= chrono_of(self.settings.tick)) {
                if let Err(error) = self.reconcile().await {
                    tracing::warn!(error = %error, "cannot reconcile sync jobs; retrying");
                }
                // A replica that died (on any host) loses its job leases when
                // they expire; its runs are closed once its instance lease
                // has expired too.
                match crate::sync::runs::reclaim_interrupted(&*self.store, &self.owner, |_, _| {
                    false
                })
                .await
                {
                    Ok(0) => {}
                    Ok(runs) => {
                        tracing::warn!(runs, "closed sync runs of a daemon process that stopped")
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "cannot close interrupted sync runs")
                    }
                }
                self.close_unrecorded_runs().await;
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
                _ = self.wake.notified() => {}
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
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.execute(job, permit).await;
                        me.wake();
                    });
                }
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot claim a due sync job");
                    return;
                }
            }
        }
    }

    /// Closes the runs of this process whose attempt ended without
    /// recording its outcome (the store failed as it ended, or the lease was
    /// lost and the attempt dropped); without this they would say `running`
    /// until the process stops.
    async fn close_unrecorded_runs(&self) {
        let in_flight = self.in_flight().clone();
        let since = crate::domain::now();
        let key = |run: &SyncRun| (run.node_id, run.kind, run.shared_module_id);
        match crate::sync::runs::close_unrecorded(
            &*self.store,
            &self.owner,
            since,
            |run| {
                in_flight
                    .get(&key(run))
                    .is_some_and(|started| run.started_at >= *started)
            },
            |run| !self.in_flight().contains_key(&key(run)),
        )
        .await
        {
            Ok(0) => {}
            Ok(runs) => tracing::warn!(runs, "closed sync runs whose outcome was not recorded"),
            Err(error) => tracing::warn!(error = %error, "cannot close unrecorded sync runs"),
        }
    }

    /// Whether a claimed job's lease still has most of its time: a claim
    /// statement that waited (for a connection, during an outage) set a
    /// lease counted from when it was issued, which may have run out before
    /// it returned, and another worker may claim the job again at once.
    /// Such a lease is renewed first; if the job is no longer ours, or
    /// cannot be renewed, it is not run.
    async fn lease_is_fresh(&self, job: &SyncJob) -> bool {
        let lease = chrono_of(self.settings.lease);
        let now = self.clock.now();
        if job
            .lease_expires_at
            .is_some_and(|until| until - now >= lease * 2 / 3)
        {
            return true;
        }
        match self
            .store
            .renew_job_lease(job.id, &self.owner, now + lease)
            .await
        {
            Ok(true) => {
                tracing::debug!(job = %job.id, "renewed the lease of a sync job claimed late");
                true
            }
            Ok(false) => {
                tracing::warn!(job = %job.id, "a sync job's claim came late and another worker has it now; not run");
                false
            }
            Err(error) => {
                tracing::warn!(job = %job.id, error = %error, "a sync job's claim came late and cannot be renewed; not run");
                false
            }
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<JobKey, Timestamp>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one claimed attempt: renews the lease while it runs, writes the
    /// outcome (schedule, backoff or stop) while still holding it.
    async fn execute(&self, job: SyncJob, _permit: OwnedSemaphorePermit) -> Option<Attempt> {
        let key = (job.node_id, job.kind, job.shared_module_id);
        match self.in_flight().entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => {
                // Claimed again while this process still runs it (its lease
                // had lapsed): the running attempt goes on under the new lease.
                tracing::warn!(job = %job.id, "a sync job claimed while it runs here; not run twice");
                return None;
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(crate::domain::now());
            }
        }
        // Out of flight however the attempt ends (even dropped).
        let _landed = scopeguard(|| {
            self.in_flight().remove(&key);
        });
        if !self.lease_is_fresh(&job).await {
            return None;
        }
        let lost = CancellationToken::new();
        let renewer = {
            let store = self.store.clone();
            let owner = self.owner.clone();
            let lease = self.settings.lease;
            let clock = self.clock;
            let lost = lost.clone();
            let id = job.id;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match store
                        .renew_job_lease(id, &owner, clock.now() + chrono_of(lease))
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job = %id, "lost the lease of a running sync job; stopping it");
                            lost.cancel();
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(job = %id, error = %error, "cannot renew a sync job lease")
                        }
                    }
                }
            })
        };
        let trigger = if job.triggered_at.is_some() {
            "manual"
        } else {
            "schedule"
        };
        let started = tokio::time::Instant::now();
        let attempt = tokio::select! {
            attempt = self.runner.attempt(&job, trigger) => Some(attempt),
            _ = lost.cancelled() => None,
        };
        renewer.abort();
        let attempt = attempt?;
        let mut done = job.clone();
        self.settle(&mut done, &attempt.verdict);
        if let Some(metrics) = &self.metrics {
            let (outcome, backoff) = match &attempt.verdict {
                Verdict::Succeeded => ("succeeded", 0.0),
                Verdict::Retry(_) | Verdict::RetryAfter(..) => (
                    "retry",
                    (done.next_run_at - self.clock.now())
                        .to_std()
                        .unwrap_or_default()
                        .as_secs_f64(),
                ),
                Verdict::Stop(_) => ("stopped", 0.0),
            };
            metrics.attempt(
                job.kind.as_str(),
                job.node_id.to_string(),
                outcome,
                &attempt
                    .run
                    .as_ref()
                    .map(|r| {
                        [
                            ("created", r.counts.created),
                            ("updated", r.counts.updated),
                            ("deleted", r.counts.deleted),
                            ("skipped", r.counts.skipped),
                            ("errors", r.counts.errors),
                        ]
                    })
                    .unwrap_or_default(),
                started.elapsed().as_secs_f64(),
                backoff,
            );
        }
        let recorded = crate::sync::runs::bounded_if_down(
            attempt.store_down,
            self.store.update_job(&done, Some(&self.owner)),
        )
        .await;
        match recorded {
            Ok(true) => self.report(&job, &done, &attempt.verdict).await,
            Ok(false) => {
                tracing::warn!(job = %job.id, "a sync job changed hands before it finished")
            }
            Err(error) => {
                tracing::warn!(job = %job.id, error = %error, "cannot record a sync job's outcome")
            }
        }
        Some(attempt)
    }

    /// Tells the admins of a job that stopped, or that has now been failing
    /// for `failing_for` (once per run of failures: the attempt that crosses
    /// the threshold reports it).
    async fn report(&self, before: &SyncJob, after: &SyncJob, verdict: &Verdict) {
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
    fn settle(&self, job: &mut SyncJob, verdict: &Verdict) {
        let now = self.clock.now();
        job.lease_owner.clear();
        job.lease_expires_at = None;
        job.triggered_at = None;
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

    fn schedule_of(&self, job: &SyncJob) -> Schedule {
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

    /// Makes the jobs match the paired nodes and their mappings: missing
    /// ones are created (due at once), extra ones removed, schedules
    /// updated; a job stopped before the admin changed the node or the
    /// mapping gets another chance.
    ///
    /// Callers that arrive together share one pass: a pass that started
    /// after a caller arrived sees whatever that caller changed before, so
    /// the caller need not run another (200 simultaneous `sync now` calls
    /// made 200 passes and queued the admin's reads behind them).
    pub async fn reconcile(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        // Any pass numbered above this one starts after we arrived.
        let arrived = self.reconciles.load(Ordering::SeqCst);
        let mut finished = self.reconciled.lock().await;
        if *finished > arrived {
            return Ok(());
        }
        let number = self.reconciles.fetch_add(1, Ordering::SeqCst) + 1;
        self.reconcile_pass().await?;
        *finished = number;
        Ok(())
    }

    async fn reconcile_pass(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let nodes = self
            .store
            .list_nodes(&NodeFilter {
                status: Some(PairingStatus::Paired),
                ..NodeFilter::default()
            })
            .await?;
        let mut wanted: HashMap<(NodeId, SyncKind, Option<Id>), (String, Timestamp)> =
            HashMap::new();
        // Three queries whatever the number of nodes (this runs before every
        // `sync now` and on every change of nodes or mappings).
        let mut schedules: HashMap<NodeId, (String, String)> = self
            .store
            .node_schedules()
            .await?
            .into_iter()
            .map(|(id, s, d)| (id, (s, d)))
            .collect();
        let mut mappings: HashMap<NodeId, Vec<_>> = HashMap::new();
        for mapping in self.store.list_all_mappings().await? {
            mappings.entry(mapping.node_id).or_default().push(mapping);
        }
        for node in &nodes {
            let (structure, data) = schedules.remove(&node.id).unwrap_or_default();
            wanted.insert(
                (node.id, SyncKind::Structure, None),
                (structure, node.updated_at),
            );
            for mapping in mappings.remove(&node.id).unwrap_or_default() {
                wanted.insert(
                    (node.id, SyncKind::Data, Some(mapping.shared_module_id)),
                    (data.clone(), mapping.updated_at.max(node.updated_at)),
                );
            }
        }
        let mut present = HashSet::new();
        for mut job in self.store.list_jobs(None).await? {
            let key = (job.node_id, job.kind, job.shared_module_id);
            let Some((schedule, changed_at)) = wanted.get(&key) else {
                self.store.delete_job(job.id).await?;
                continue;
            };
            present.insert(key);
            let mut dirty = false;
            if job.schedule != *schedule {
                job.schedule = schedule.clone();
                if job.state == JobState::Idle {
                    job.next_run_at = self
                        .schedule_of(&job)
                        .next_after(now)
                        .min(job.next_run_at.max(now));
                }
                dirty = true;
            }
            if job.state == JobState::Stopped && job.last_error_at.is_some_and(|t| *changed_at > t)
            {
                job.state = JobState::Idle;
                job.stop_reason.clear();
                job.next_run_at = now;
                dirty = true;
            }
            if dirty {
                job.updated_at = now;
                self.store.update_job(&job, None).await?;
            }
        }
        for (key, (schedule, _)) in wanted {
            if !present.contains(&key) {
                // The first run comes one period from now; `sync now` runs at once.
                let mut job = SyncJob::new(self.ids.next_id(), key.0, key.1, key.2, &schedule, now);
                job.next_run_at = self.schedule_of(&job).next_after(now);
                self.store.insert_job(&job).await?;
            }
        }
        Ok(())
    }

    async fn prune(&self, now: Timestamp) {
        let before = now - chrono_of(self.settings.history_retention);
        match self.store.prune_history(before).await {
            Ok((0, 0)) => {}
            Ok((runs, audit)) => {
                tracing::info!(
                    runs,
                    audit_events = audit,
                    "removed history past its retention"
                )
            }
            Err(error) => tracing::warn!(error = %error, "cannot remove old history"),
        }
    }

    /// `sync now`: runs the node's jobs of `kind` at once, one after the
    /// other, each under its lease; a job another worker holds is waited
    /// for. Returns each attempt. `None` when the node has no such job.
    pub async fn run_now(
        &self,
        node_id: NodeId,
        kind: SyncKind,
        only: Option<Id>,
    ) -> Result<Option<Vec<Attempt>>, StoreError> {
        self.reconcile().await?;
        let jobs: Vec<SyncJob> = self
            .store
            .list_jobs(Some(node_id))
            .await?
            .into_iter()
            .filter(|j| j.kind == kind && only.is_none_or(|id| j.shared_module_id == Some(id)))
            .collect();
        if jobs.is_empty() {
            return Ok(None);
        }
        let mut attempts = Vec::new();
        for job in jobs {
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| StoreError::Unavailable("the scheduler stopped".into()))?;
            let claimed = loop {
                let now = self.clock.now();
                if let Some(claimed) = self
                    .store
                    .claim_job(
                        job.id,
                        now,
                        &self.owner,
                        now + chrono_of(self.settings.lease),
                    )
                    .await?
                {
                    break Some(SyncJob {
                        triggered_at: Some(now),
                        ..claimed
                    });
                }
                if self.store.get_job(job.id).await?.is_none() {
                    break None;
                }
                // Another worker runs it: wait for it to finish.
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            if let Some(claimed) = claimed
                && let Some(attempt) = self.execute(claimed, permit).await
            {
                attempts.push(attempt);
            }
        }
        self.wake();
        Ok(Some(attempts))
    }
}

/// Calls `f` when dropped.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Whether trying again later can help, and if not, what the admin must do.
pub fn classify(error: &SyncError) -> Verdict {
    match error {
        SyncError::Peer(e) if e.is_unauthorized() => Verdict::Stop(format!(
            "{e}; the peer no longer accepts our token: re-pair the node (`fedsync node uri ID` on the inviter)"
        )),
        SyncError::Peer(crate::sync::PeerError::Blocked(why)) => Verdict::Stop(format!(
            "not contacted: {why}; fix the node's base URL or the address policy"
        )),
        SyncError::Peer(
            e @ crate::sync::PeerError::Throttled {
                retry_after: Some(after),
                ..
            },
        ) => Verdict::RetryAfter(e.to_string(), *after),
        SyncError::Peer(e) => Verdict::Retry(e.to_string()),
        SyncError::Store(e) => Verdict::Retry(e.to_string()),
        SyncError::LocalUnavailable(e) => Verdict::Retry(e.clone()),
        SyncError::Protocol(e) => Verdict::Retry(e.clone()),
        SyncError::WrongState(e) => Verdict::Stop(e.clone()),
        SyncError::NotFound(id) => Verdict::Stop(format!("node {id} does not exist")),
    }
}

/// The real job runner: structure and data pulls.
pub struct SyncJobs {
    pub structure: Arc<StructureSync>,
    pub data: Arc<DataSync>,
}

#[async_trait]
impl JobRunner for SyncJobs {
    async fn attempt(&self, job: &SyncJob, trigger: &str) -> Attempt {
        match (job.kind, job.shared_module_id) {
            (SyncKind::Structure, _) => {
                let (run, error) = self.structure.run_attempt(job.node_id, trigger).await;
                Attempt::ended(run, error)
            }
            (SyncKind::Data, Some(shared)) => {
                match self.data.run_shared(job.node_id, shared, trigger).await {
                    Ok((run, error)) => Attempt::ended(Some(run), error),
                    Err(error) => Attempt::ended(None, Some(error)),
                }
            }
            (SyncKind::Data, None) => Attempt {
                run: None,
                verdict: Verdict::Stop("a data job names no shared module".into()),
                store_down: false,
            },
        }
    }
}
