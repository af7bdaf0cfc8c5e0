//! The scheduler in daemons against peers: a peer asking to slow down is
//! left alone as long as it says, a real peer that fails is synced by
//! retries and a 401 stops the job, and a hanging peer is cut off without
//! delaying a healthy one.

use std::time::Duration;

use crate::common;

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
