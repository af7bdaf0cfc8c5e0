//! The scheduler on paused tokio time, against a real SQLite store: due jobs
//! run on time, failures back off (growing, capped, jittered) and reset on
//! success, a trigger runs at once, a job never overlaps itself, and an
//! error only an admin can fix stops the job.
//!
//! This file holds the rig (a scheduler with a scripted runner, stepped
//! through paused time); its tests are in `timing.rs`. `peers.rs` runs
//! daemons against real and fake peers: `Retry-After`, retries, a 401 and
//! a hanging peer.

mod peers;
mod timing;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fedsync::domain::{
    self, IdGenerator, JobState, Node, NodeId, PairingStatus, Role, SyncJob, Timestamp,
};
use fedsync::scheduler::{
    Attempt, Backoff, Clock, JobRunner, Scheduler, SchedulerSettings, Verdict,
};
use fedsync::store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::common;

#[derive(Debug, Clone)]
struct Seen {
    job: fedsync::domain::Id,
    at: Timestamp,
    trigger: String,
}

/// Answers attempts from a script (then succeeds), takes `work` of tokio
/// time per attempt, and counts attempts of one job running at once.
struct Scripted {
    clock: Clock,
    script: Mutex<VecDeque<Verdict>>,
    work: Duration,
    running: Mutex<HashMap<fedsync::domain::Id, u32>>,
    overlaps: Mutex<u32>,
    seen: mpsc::UnboundedSender<Seen>,
}

#[async_trait]
impl JobRunner for Scripted {
    async fn attempt(&self, job: &SyncJob, trigger: &str) -> Attempt {
        {
            let mut running = self.running.lock().unwrap();
            let n = running.entry(job.id).or_default();
            *n += 1;
            if *n > 1 {
                *self.overlaps.lock().unwrap() += 1;
            }
        }
        let _ = self.seen.send(Seen {
            job: job.id,
            at: self.clock.now(),
            trigger: trigger.to_owned(),
        });
        if !self.work.is_zero() {
            tokio::time::sleep(self.work).await;
        }
        *self.running.lock().unwrap().get_mut(&job.id).unwrap() -= 1;
        let verdict = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Verdict::Succeeded);
        Attempt {
            run: None,
            verdict,
            store_down: false,
        }
    }
}

struct Rig {
    store: Arc<dyn Store>,
    scheduler: Arc<Scheduler>,
    runner: Arc<Scripted>,
    seen: mpsc::UnboundedReceiver<Seen>,
    stop: CancellationToken,
    node: NodeId,
    _dir: tempfile::TempDir,
}

const TICK: Duration = Duration::from_secs(5);

async fn rig(script: Vec<Verdict>, work: Duration) -> Rig {
    rig_every(script, work, "1m").await
}

/// `rig` with the jobs' schedule.
async fn rig_every(script: Vec<Verdict>, work: Duration, every: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = fedsync::daemon::open_store(&common::test_config(dir.path(), None))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let ids = Arc::new(IdGenerator::new(1, 0));
    let mut node = Node::new_pending(
        NodeId(ids.next_id()),
        Role::Inviter,
        "peer",
        "https://peer.example.com/federation",
        "",
        domain::now(),
    );
    node.status = PairingStatus::Paired;
    store.insert_node(&node).await.unwrap();
    // Time stops once the store is open and migrated.
    // Paused tokio time moves only when the test steps it: a task that
    // always has work keeps the runtime from auto-advancing while a query
    // runs on SQLite's thread.
    tokio::time::pause();
    let spinning = CancellationToken::new();
    let spin = spinning.clone();
    tokio::spawn(async move {
        while !spin.is_cancelled() {
            tokio::task::yield_now().await;
        }
    });
    let clock = Clock::start();
    let (tx, rx) = mpsc::unbounded_channel();
    let runner = Arc::new(Scripted {
        clock,
        script: Mutex::new(script.into()),
        work,
        running: Mutex::new(HashMap::new()),
        overlaps: Mutex::new(0),
        seen: tx,
    });
    let settings = SchedulerSettings {
        structure_every: every.into(),
        data_every: every.into(),
        backoff: Backoff {
            base: Duration::from_secs(1),
            factor: 2.0,
            cap: Duration::from_secs(10),
        },
        max_concurrent: 4,
        per_peer: 2,
        lease: Duration::from_secs(30),
        history_retention: Duration::from_secs(30 * 24 * 3600),
        history_runs_per_job: 1000,
        live_data_every: None,
        tick: TICK,
    };
    let scheduler = Arc::new(Scheduler::new(
        store.clone(),
        runner.clone(),
        ids,
        settings,
        "test-owner:1:aa".into(),
        clock,
    ));
    let stop = spinning;
    tokio::spawn(scheduler.clone().run(stop.clone()));
    Rig {
        store,
        scheduler,
        runner,
        seen: rx,
        stop,
        node: node.id,
        _dir: dir,
    }
}

impl Rig {
    /// Steps paused time until the next attempt starts, one dispatcher
    /// wake-up at a time (each step waits for the dispatcher to sleep with
    /// no attempt running, then moves time to when it wakes).
    async fn next(&mut self) -> Seen {
        loop {
            if let Ok(seen) = self.seen.try_recv() {
                return seen;
            }
            self.step().await;
        }
    }

    /// Steps paused time until `by` has passed (attempts may start).
    async fn idle_for(&mut self, by: Duration) -> Vec<Seen> {
        let end = self.scheduler.now() + chrono::Duration::from_std(by).unwrap();
        let mut seen = Vec::new();
        while self.scheduler.now() < end {
            while let Ok(s) = self.seen.try_recv() {
                seen.push(s);
            }
            self.step().await;
        }
        while let Ok(s) = self.seen.try_recv() {
            seen.push(s);
        }
        seen
    }

    async fn step(&self) {
        let mut parked = self.scheduler.parked();
        let until = loop {
            if !self.seen.is_empty() {
                return;
            }
            // A deadline not after now is one already reached: the
            // dispatcher has not parked again yet.
            if let Some(until) = *parked.borrow_and_update()
                && until > self.scheduler.now()
                && self.scheduler.running() == 0
            {
                break until;
            }
            tokio::task::yield_now().await;
        };
        let now = self.scheduler.now();
        // Timers round up to the millisecond: one more reaches the deadline.
        let by = (until - now).to_std().unwrap_or_default() + Duration::from_millis(1);
        tokio::time::advance(by).await;
    }

    /// Moves paused time by `by` once the dispatcher sleeps (attempts may run).
    async fn advance(&self, by: Duration) {
        let mut parked = self.scheduler.parked();
        while parked.borrow_and_update().is_none() {
            tokio::task::yield_now().await;
        }
        tokio::time::advance(by).await;
    }

    async fn job(&self) -> SyncJob {
        let jobs = self.store.list_jobs(Some(self.node)).await.unwrap();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        jobs.into_iter().next().unwrap()
    }

    /// Waits until the job's state is written after an attempt.
    async fn settled(&self, state: JobState) -> SyncJob {
        loop {
            let job = self.job().await;
            if job.state == state && job.lease_expires_at.is_none() {
                return job;
            }
            tokio::task::yield_now().await;
        }
    }
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap() as f64 / 1e6
}
