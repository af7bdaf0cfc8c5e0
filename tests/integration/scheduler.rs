//! The scheduler on paused tokio time, against a real SQLite store: due jobs
//! run on time, failures back off (growing, capped, jittered) and reset on
//! success, a trigger runs at once, a job never overlaps itself, and an
//! error only an admin can fix stops the job.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fedsync::domain::{
    self, IdGenerator, JobState, Node, NodeId, PairingStatus, Role, SyncJob, SyncKind, Timestamp,
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

#[tokio::test]
async fn due_jobs_run_on_time_and_failures_back_off_capped_with_jitter() {
    let retries: Vec<Verdict> = (0..6)
        .map(|i| Verdict::Retry(format!("HTTP 503 #{i}")))
        .collect();
    let mut rig = rig(retries, Duration::ZERO).await;

    // The structure job of the paired node appears, due one period from now.
    let first = rig.next().await;
    let job = rig.job().await;
    assert_eq!((job.kind, first.job), (SyncKind::Structure, job.id));
    assert_eq!(first.trigger, "schedule");
    let created = job.created_at;
    let late = secs(first.at - (created + chrono::Duration::minutes(1)));
    assert!(
        (0.0..=TICK.as_secs_f64()).contains(&late),
        "due at +60s, ran {late}s after that"
    );

    // Five more failures: waits grow 1, 2, 4, 8, then 10 (the cap), each
    // a random share of its ceiling (full jitter).
    let mut at = first.at;
    let mut waits = Vec::new();
    for _ in 0..5 {
        let next = rig.next().await;
        waits.push(secs(next.at - at));
        at = next.at;
    }
    let failed = rig.settled(JobState::Retrying).await;
    assert_eq!(failed.attempts, 6, "the attempt count is in the table");
    assert_eq!(failed.last_error, "HTTP 503 #5");
    let seventh = rig.next().await;
    waits.push(secs(seventh.at - at));
    let ceilings = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0];
    for (wait, ceiling) in waits.iter().zip(ceilings) {
        assert!(
            *wait >= 0.1 && *wait <= ceiling + 0.01,
            "wait {wait}s, ceiling {ceiling}s: {waits:?}"
        );
    }
    assert!(
        waits.iter().zip(ceilings).any(|(w, c)| *w < c * 0.95),
        "jitter: {waits:?}"
    );

    // The seventh attempt succeeds: the count resets, the next run is a
    // period later.
    let job = rig.settled(JobState::Idle).await;
    assert_eq!(job.attempts, 0);
    assert!(job.last_error.is_empty());
    let success = job.last_success_at.unwrap();
    assert_eq!(job.next_run_at, success + chrono::Duration::minutes(1));
    let next = rig.next().await;
    assert!(secs(next.at - job.next_run_at) <= TICK.as_secs_f64());
    rig.stop.cancel();
}

#[tokio::test]
async fn a_trigger_runs_at_once_and_never_beside_a_running_attempt() {
    // Each attempt takes 20 s (of tokio time). The next scheduled run is
    // an hour away: the manual attempt polls for its claim on the real
    // store, and on a loaded machine the steps below can move tokio time
    // on by more than the 40 s that a 1 min period would leave it.
    let mut rig = rig_every(Vec::new(), Duration::from_secs(20), "1h").await;
    let scheduled = rig.next().await;
    assert_eq!(scheduled.trigger, "schedule");
    // `sync now` while the scheduled attempt runs: it waits for it.
    let scheduler = rig.scheduler.clone();
    let node = rig.node;
    let manual =
        tokio::spawn(async move { scheduler.run_now(node, SyncKind::Structure, None).await });
    let second = loop {
        if let Ok(seen) = rig.seen.try_recv() {
            break seen;
        }
        rig.advance(Duration::from_millis(500)).await;
    };
    assert_eq!(second.trigger, "manual");
    assert!(
        secs(second.at - scheduled.at) >= 20.0,
        "the manual attempt started after the scheduled one ended"
    );
    while !manual.is_finished() {
        rig.advance(Duration::from_millis(500)).await;
    }
    let attempts = manual
        .await
        .unwrap()
        .unwrap()
        .expect("the node has a structure job");
    assert_eq!(attempts.len(), 1);
    assert_eq!(*rig.runner.overlaps.lock().unwrap(), 0);

    // A trigger on an idle job (as `sync now` from another replica leaves
    // it) runs at once, not at the next period.
    let idle = rig.settled(JobState::Idle).await;
    let now = rig.scheduler.now();
    let manual = fedsync::store::TriggerRequest {
        reason: "manual",
        reset: false,
        join: false,
    };
    assert!(
        rig.store
            .trigger_job(idle.id, now, manual)
            .await
            .unwrap()
            .is_some()
    );
    rig.scheduler.wake();
    // Nothing moves paused time here: the attempt must start without it.
    let third = rig.seen.recv().await.unwrap();
    assert_eq!(third.at, now, "no time passed");
    assert!(third.at < idle.next_run_at);
    rig.stop.cancel();
}

#[tokio::test]
async fn an_error_only_an_admin_can_fix_stops_the_job_without_a_hot_loop() {
    let mut rig = rig(
        vec![Verdict::Stop(
            "the peer refused (HTTP 401): re-pair the node".into(),
        )],
        Duration::ZERO,
    )
    .await;
    rig.next().await;
    let job = rig.settled(JobState::Stopped).await;
    assert!(job.stop_reason.contains("re-pair"), "{job:?}");
    // An hour later, nothing else has run.
    let later = rig.idle_for(Duration::from_secs(3600)).await;
    assert!(later.is_empty(), "a stopped job is not retried: {later:?}");
    // `sync now` starts it again.
    let attempts = rig
        .scheduler
        .run_now(rig.node, SyncKind::Structure, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempts[0].verdict, Verdict::Succeeded);
    rig.seen.try_recv().unwrap();
    assert_eq!(rig.job().await.state, JobState::Idle);
    // Pausing the node keeps its jobs from running; resuming runs what is due.
    assert!(rig.store.set_node_paused(rig.node, true).await.unwrap());
    let later = rig.idle_for(Duration::from_secs(3600)).await;
    assert!(
        later.is_empty(),
        "a paused node's job does not run: {later:?}"
    );
    assert!(rig.store.set_node_paused(rig.node, false).await.unwrap());
    rig.scheduler.wake();
    let resumed = rig.next().await;
    assert_eq!(resumed.trigger, "schedule");
    rig.stop.cancel();
}

/// Polls a daemon's `sync status NODE --json` until `done` holds (at most a
/// minute): waiting on a condition, not a guessed sleep.
async fn status_until(
    d: &common::TestDaemon,
    node: u64,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = common::cli_json(d, &["sync", "status", &node.to_string()]).await;
        if done(&status[0]) {
            return status[0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting: {status}"
        );
        tokio::task::yield_now().await;
    }
}

/// The daemon's /metrics text.
async fn scrape(d: &common::TestDaemon) -> String {
    common::http()
        .get(d.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one series (`name{labels}`) in a metrics text.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

#[tokio::test]
async fn a_peer_asking_to_slow_down_is_left_alone_as_long_as_it_says() {
    use crate::common::fake_peer::{FakePeer, Reply};
    let corteza = FakePeer::start().await;
    let mut b = common::spawn_node_with("B", |o| {
        o.set("sync.retry_base", "50ms")
            .set("sync.retry_cap", "200ms");
    })
    .await;
    let node = common::pair_corteza_origin(&b, &corteza).await;
    let before = corteza.requests().len();
    corteza.reply(Reply::Raw(
        429,
        vec![
            ("content-type".into(), "application/json".into()),
            ("retry-after".into(), "120".into()),
        ],
        br#"{"error":{"message":"slow down"}}"#.to_vec(),
    ));
    common::cli_json(
        &b,
        &["node", "schedule", &node.to_string(), "--structure", "1s"],
    )
    .await;
    let waiting = status_until(&b, node, |s| s["jobs"][0]["state"] == "retrying").await;
    let job = &waiting["jobs"][0];
    let error = job["lastError"].as_str().unwrap();
    assert!(
        error.contains("HTTP 429") && error.contains("retry after 120s"),
        "{error}"
    );
    let at = |key: &str| chrono::DateTime::parse_from_rfc3339(job[key].as_str().unwrap()).unwrap();
    let wait = at("nextRunAt") - at("lastErrorAt");
    // The backoff alone would be at most 200 ms: the peer's 120 s rule.
    assert!(
        wait >= chrono::Duration::seconds(120) && wait < chrono::Duration::seconds(121),
        "{job}"
    );
    assert_eq!(
        corteza.requests().len() - before,
        1,
        "a 429 is not retried within the attempt"
    );
    let metrics = scrape(&b).await;
    let backoff = metric(
        &metrics,
        &format!("fedsync_sync_job_backoff_seconds{{kind=\"structure\",peer=\"{node}\"}}"),
    )
    .unwrap();
    assert!((119.0..=120.0).contains(&backoff), "{metrics}");
    b.stop().await;
}

#[tokio::test]
async fn a_real_peer_that_fails_three_times_is_synced_by_retries_and_a_401_stops_the_job() {
    use crate::common::fake_peer::{FakePeer, Reply, fixture};
    let corteza = FakePeer::start().await;
    let mut b = common::spawn_node_with("B", |o| {
        o.set("sync.retry_base", "50ms")
            .set("sync.retry_cap", "200ms");
    })
    .await;
    let node = common::pair_corteza_origin(&b, &corteza).await;
    let before = corteza.requests().len();
    // Three attempts of three tries each (a page is retried twice within an
    // attempt) answer 500.
    for _ in 0..9 {
        corteza.reply(Reply::Json(
            500,
            serde_json::json!({"error": {"message": "busy"}}),
        ));
    }
    corteza.reply(Reply::Json(
        200,
        fixture("051-peer-structure-nolimit.json")["response"]["body"].clone(),
    ));
    // Bad schedules are refused with the flag named.
    let out = common::run_cli(&[
        "node",
        "schedule",
        &node.to_string(),
        "--structure",
        "every so often",
        "--data-dir",
        &b.data_dir.display().to_string(),
    ])
    .await;
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("--structure"),
        "{}",
        common::stderr(&out)
    );
    let set = common::cli_json(
        &b,
        &["node", "schedule", &node.to_string(), "--structure", "1s"],
    )
    .await;
    assert_eq!(set["scheduleStructure"], "1s", "{set}");
    assert_eq!(set["jobs"][0]["kind"], "structure");

    let synced = status_until(&b, node, |s| s["structureStatus"] == "synced").await;
    let job = &synced["jobs"][0];
    assert_eq!(job["attempts"], 0, "reset on success: {job}");
    assert!(job["lastSuccessAt"].is_string());
    let runs = common::cli_json(&b, &["sync", "runs", &node.to_string()]).await;
    let statuses: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(4)
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["failed", "failed", "failed", "succeeded"],
        "{runs}"
    );
    assert_eq!(
        corteza.requests().len() - before,
        10,
        "three failed attempts of three tries, one success"
    );
    // The attempts are on /metrics, per kind and peer.
    let metrics = scrape(&b).await;
    let series = |name: &str, outcome: Option<&str>| {
        let labels = match outcome {
            Some(o) => format!("{{kind=\"structure\",peer=\"{node}\",outcome=\"{o}\"}}"),
            None => format!("{{kind=\"structure\",peer=\"{node}\"}}"),
        };
        metric(&metrics, &format!("{name}{labels}"))
    };
    assert_eq!(
        series("fedsync_sync_job_runs_total", Some("retry")),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        series("fedsync_sync_job_runs_total", Some("succeeded")),
        Some(1.0)
    );
    assert_eq!(series("fedsync_sync_job_failures_total", None), Some(3.0));
    assert_eq!(
        series("fedsync_sync_job_duration_seconds_count", None),
        Some(4.0)
    );
    assert_eq!(
        series("fedsync_sync_job_backoff_seconds", None),
        Some(0.0),
        "no backoff after a success"
    );

    // A 401: the job stops and says to re-pair; no retry follows.
    corteza.reply(Reply::Json(
        401,
        serde_json::json!({"error": {"message": "unauthorized"}}),
    ));
    let stopped = status_until(&b, node, |s| s["jobs"][0]["state"] == "stopped").await;
    let reason = stopped["jobs"][0]["stopReason"].as_str().unwrap();
    assert!(reason.contains("re-pair"), "{reason}");
    let requests = corteza.requests().len();
    // Pausing and resuming: resume restarts the stopped job.
    let paused = common::cli_json(&b, &["node", "pause", &node.to_string()]).await;
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["jobs"][0]["state"], "stopped");
    assert_eq!(corteza.requests().len(), requests, "nothing was retried");
    corteza.reply(Reply::Json(
        200,
        fixture("051-peer-structure-nolimit.json")["response"]["body"].clone(),
    ));
    let resumed = common::cli_json(&b, &["node", "resume", &node.to_string()]).await;
    assert_eq!(resumed["paused"], false);
    assert_ne!(resumed["jobs"][0]["state"], "stopped");
    status_until(&b, node, |s| {
        s["jobs"][0]["state"] != "stopped"
            && s["jobs"][0]["attempts"] == 0
            && s["structureStatus"] == "synced"
    })
    .await;
    b.stop().await;
}

#[tokio::test]
async fn a_hanging_peer_is_cut_off_and_does_not_delay_a_healthy_one() {
    use crate::common::fake_peer::{FakePeer, Reply, fixture};
    let hanging = FakePeer::start().await;
    let healthy = FakePeer::start().await;
    let mut b = common::spawn_node_with("B", |o| {
        o.set("federation.peer_request_timeout", "2s");
    })
    .await;
    let stuck = common::pair_corteza_origin(&b, &hanging).await;
    let fine = common::pair_corteza_origin_as(&b, &healthy, 523615093115650150).await;
    for _ in 0..3 {
        hanging.reply(Reply::Stall);
    }
    healthy.reply(Reply::Json(
        200,
        fixture("051-peer-structure-nolimit.json")["response"]["body"].clone(),
    ));
    for node in [stuck, fine] {
        common::cli_json(
            &b,
            &["node", "schedule", &node.to_string(), "--structure", "1s"],
        )
        .await;
    }
    // The healthy peer is synced while the other one hangs.
    let synced = status_until(&b, fine, |s| s["structureStatus"] == "synced").await;
    assert_eq!(synced["jobs"][0]["attempts"], 0);
    let other = common::cli_json(&b, &["sync", "status", &stuck.to_string()]).await;
    assert_ne!(other[0]["structureStatus"], "synced", "{other}");
    // The hanging one fails on the timeout and backs off.
    let failed = status_until(&b, stuck, |s| {
        s["jobs"][0]["state"] == "retrying" && s["jobs"][0]["attempts"].as_u64() >= Some(1)
    })
    .await;
    let error = failed["jobs"][0]["lastError"].as_str().unwrap();
    assert!(error.contains("did not answer within 2s"), "{error}");
    b.stop().await;
}

#[tokio::test]
async fn the_watchdog_sees_the_dispatcher_turn_and_notices_when_it_stops() {
    let mut rig = rig(Vec::new(), Duration::ZERO).await;
    // An hour of scheduling: the loop keeps turning.
    rig.idle_for(Duration::from_secs(3600)).await;
    assert!(rig.scheduler.is_turning());
    // A dispatcher that stops turning is noticed once three ticks and a
    // margin have passed, not before. Stopped while it sleeps (not halfway
    // through a wake-up), its last turn is now.
    let mut parked = rig.scheduler.parked();
    loop {
        if let Some(until) = *parked.borrow_and_update()
            && until > rig.scheduler.now()
            && rig.scheduler.running() == 0
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    rig.stop.cancel();
    tokio::time::advance(TICK * 3).await;
    assert!(rig.scheduler.is_turning());
    tokio::time::advance(Duration::from_secs(16)).await;
    assert!(!rig.scheduler.is_turning());
}
