//! Live changes between real daemons: a change on A reaches B without
//! `sync now` and without waiting for the schedule (both are an hour away
//! in these tests); a notice is a hint that never carries data, is
//! authenticated, and costs at most one pull per window.

use std::time::{Duration, Instant};

use fedsync::domain::{NodeId, SyncKind};
use serde_json::Value;

use crate::common::relay::{Fault, Relay};
use crate::common::{TestDaemon, cli_json, http, pair, spawn_node_with};
use crate::data::{account_file, by_name, create_account, expected_on_b, records, share_account};

/// A (origin, behind a relay) and B (destination) paired, A's `Account`
/// mapped into B's `Contact`; extra settings for both.
pub(crate) struct Live {
    pub a: TestDaemon,
    pub b: TestDaemon,
    pub relay: Relay,
    pub a_for_b: u64,
    pub b_for_a: u64,
}

pub(crate) async fn live_pair(settings: &[(&str, &str)]) -> Live {
    let relay = Relay::start().await;
    let a = spawn_node_with("A", |o| {
        o.set("federation.public_url", relay.base_url())
            .set("sync.live_changes", true);
        for (key, value) in settings {
            o.set(key, *value);
        }
    })
    .await;
    relay.forward_to(a.running().federation_addr);
    let b = spawn_node_with("B", |o| {
        o.set("sync.live_changes", true);
        for (key, value) in settings {
            o.set(key, *value);
        }
    })
    .await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    share_account(&a, &b, a_for_b, b_for_a).await;
    Live {
        a,
        b,
        relay,
        a_for_b,
        b_for_a,
    }
}

/// Waits (polling B's records) until B holds what A exposes; the time it took.
pub(crate) async fn converged(a: &TestDaemon, b: &TestDaemon, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let want = expected_on_b(&records(a, "Account", false).await);
        let have = by_name(&records(b, "Contact", false).await, "FullName");
        if want == have {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "B never caught up: want {} records, have {}",
            want.len(),
            have.len()
        );
        tokio::task::yield_now().await;
    }
}

/// B's runs of the data job, oldest first.
async fn data_runs(b: &TestDaemon, node: u64) -> Vec<Value> {
    let runs = cli_json(b, &["sync", "runs", &node.to_string(), "--limit", "1000"]).await;
    let mut runs: Vec<Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "data")
        .cloned()
        .collect();
    runs.reverse();
    runs
}

fn first_id(records: &[Value]) -> String {
    records[0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn creates_updates_and_removals_on_a_reach_b_without_sync_now() {
    let p = live_pair(&[]).await;
    create_account(&p.a, "live-1").await;
    converged(&p.a, &p.b, Duration::from_secs(10)).await;
    let on_a = records(&p.a, "Account", false).await;
    let id = first_id(&on_a);
    cli_json(
        &p.a,
        &[
            "record",
            "update",
            "Account",
            &id,
            "--value",
            "Name=live-1b",
        ],
    )
    .await;
    converged(&p.a, &p.b, Duration::from_secs(10)).await;
    create_account(&p.a, "live-2").await;
    cli_json(&p.a, &["record", "rm", "Account", &id]).await;
    converged(&p.a, &p.b, Duration::from_secs(10)).await;
    let runs = data_runs(&p.b, p.b_for_a).await;
    assert!(
        runs.iter().all(|r| r["trigger"] == "notice"),
        "every pull was woken by a notice: {runs:?}"
    );
    // A 10,000-record import arrives whole, in few pulls.
    let dir = tempfile::tempdir().unwrap();
    let file = account_file(dir.path(), 10_000);
    cli_json(
        &p.a,
        &["record", "import", "Account", file.to_str().unwrap()],
    )
    .await;
    converged(&p.a, &p.b, Duration::from_secs(60)).await;
    let pulls = data_runs(&p.b, p.b_for_a).await.len() - runs.len();
    assert!(pulls <= 20, "the import's 20 batches made {pulls} pulls");
}

#[tokio::test]
async fn a_structure_change_reaches_b_without_sync_now() {
    let p = live_pair(&[]).await;
    // A exposes one more field of Account to B.
    cli_json(
        &p.a,
        &[
            "expose",
            "update",
            &p.a_for_b.to_string(),
            "Account",
            "--field",
            "Name",
            "--field",
            "Tags",
            "--field",
            "Score",
            "--field",
            "Secret",
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shared = cli_json(&p.b, &["shared", "show", &p.b_for_a.to_string(), "Account"]).await;
        let fields = shared["fields"].as_array().unwrap();
        if fields.iter().any(|f| f["name"] == "Secret") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never saw the new field: {shared}"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_peer_that_drops_notices_still_converges_on_the_schedule() {
    // B's notices to A are lost; A's to B are what matter: put the relay in
    // front of B instead, failing every notice.
    let relay = Relay::start().await;
    let a = spawn_node_with("A", |o| {
        o.set("sync.live_changes", true);
    })
    .await;
    let b = spawn_node_with("B", |o| {
        o.set("federation.public_url", relay.base_url())
            .set("sync.live_changes", true);
    })
    .await;
    relay.forward_to(b.running().federation_addr);
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    // A calls B through the relay.
    cli_json(
        &a,
        &[
            "node",
            "update",
            &a_for_b.to_string(),
            "--base-url",
            &relay.base_url(),
        ],
    )
    .await;
    share_account(&a, &b, a_for_b, b_for_a).await;
    relay.fault("/fedsync/changes", 1, Fault::Fail(503));
    cli_json(
        &b,
        &["node", "schedule", &b_for_a.to_string(), "--data", "2s"],
    )
    .await;
    create_account(&a, "lost-notice").await;
    converged(&a, &b, Duration::from_secs(30)).await;
    assert!(
        !relay.requests("/fedsync/changes").is_empty(),
        "A tried to tell B"
    );
    let runs = data_runs(&b, b_for_a).await;
    assert!(
        runs.iter()
            .any(|r| r["trigger"] == "schedule" && r["created"] == 1),
        "the schedule brought the record: {runs:?}"
    );
}

#[tokio::test]
async fn with_live_changes_off_nothing_is_sent_and_b_waits_for_its_schedule() {
    let p = live_pair(&[("sync.live_changes", "false")]).await;
    create_account(&p.a, "polled").await;
    // Nothing tells B: it holds nothing until it pulls.
    let b_node = p.b_for_a.to_string();
    let runs = cli_json(&p.b, &["sync", "now", &b_node, "--kind", "data"]).await;
    assert_eq!(runs[0]["created"], 1, "{runs}");
    assert_eq!(runs[0]["trigger"], "manual");
    assert!(
        p.relay.requests("/fedsync/").is_empty(),
        "no live request at all"
    );
    let status = cli_json(&p.b, &["sync", "status", &b_node]).await;
    assert_eq!(status[0]["liveChanges"], false, "{status}");
}

#[tokio::test]
async fn a_forged_notice_is_refused_and_a_flood_pulls_at_most_once_per_window() {
    let p = live_pair(&[("sync.live_window", "200ms")]).await;
    let url = |node: u64| {
        p.b.federation_url(&format!("/federation/nodes/{node}/fedsync/changes"))
    };
    let shared = cli_json(&p.b, &["shared", "show", &p.b_for_a.to_string(), "Account"]).await;
    let module = shared["externalModuleId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let body = serde_json::json!({ "modules": [module], "structure": false });
    // No token, a made-up token: 401; nothing recorded.
    let forged = http()
        .post(url(p.a_for_b))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let forged = http()
        .post(url(p.a_for_b))
        .bearer_auth("eyJhbGciOiJIUzI1NiJ9.e30.forged")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    // The real token of the pair (what A holds for B): a flood.
    let token = p.a.held_token(p.a_for_b).await.expect("A holds B's token");
    let before = data_runs(&p.b, p.b_for_a).await.len();
    let started = Instant::now();
    let mut limited = 0;
    for _ in 0..100 {
        let answer = http()
            .post(url(p.a_for_b))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        match answer.status().as_u16() {
            200 => {}
            429 => limited += 1,
            other => panic!("a notice answered {other}"),
        }
    }
    let flood = started.elapsed();
    // Let the last deferred trigger run, then count the pulls.
    let store = p.b.store().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let jobs = store
            .list_jobs(Some(NodeId::from_u64(p.b_for_a).unwrap()))
            .await
            .unwrap();
        let data = jobs.iter().find(|j| j.kind == SyncKind::Data).unwrap();
        if !data.trigger_unserved() && started.elapsed() > flood + Duration::from_millis(400) {
            break;
        }
        assert!(Instant::now() < deadline, "the notices never settled");
        tokio::task::yield_now().await;
    }
    store.close().await;
    let pulls = data_runs(&p.b, p.b_for_a).await.len() - before;
    let windows = (flood.as_millis() / 200) as usize + 2;
    assert!(
        (1..=windows).contains(&pulls),
        "{pulls} pulls for a flood of {flood:?} ({limited} limited)"
    );
}
