//! The rig's tests: due jobs run on time, failures back off (growing,
//! capped, jittered), a trigger runs at once and never beside a running
//! attempt, an error only an admin can fix stops the job, and the watchdog
//! sees the dispatcher turn.

use std::time::Duration;

use fedsync::domain::{JobState, SyncKind};
use fedsync::scheduler::Verdict;

use super::{TICK, rig, rig_every, secs};

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
    // Paused time moves on by itself whenever every task waits, as they all
    // may while SQLite works on its own thread: on a loaded machine it ran
    // past the scheduled attempt and the next one, an hour on, before the
    // trigger was written (CI, 2026-12-08). A task that is always ready to
    // run holds the clock still until the trigger is in the store.
    let hold = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async {
        loop {
            tokio::task::yield_now().await;
        }
    }));
    let manual =
        tokio::spawn(async move { scheduler.run_now(node, SyncKind::Structure, None).await });
    let before = rig.job().await.claimed_seq;
    while rig.job().await.trigger_seq <= before {
        tokio::task::yield_now().await;
    }
    drop(hold);
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
