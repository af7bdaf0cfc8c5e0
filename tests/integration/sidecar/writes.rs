//! Writing a page's records to Corteza concurrently: each record made once
//! when the page's store commit is lost, when Corteza made a record but its
//! answer was lost, when Corteza throttles for a while (the limit drops and
//! grows back) and when it refuses one record in the middle of a page.

use std::time::Duration;

use serde_json::Value;

use crate::common::fake_corteza::FakeCorteza;
use crate::common::{TestDaemon, cli_json, pair, run_cli, spawn_node, stderr};
use crate::data::{account_file, share_account};

use super::{TOKEN, in_corteza, sidecar_settings, sidecar_with, sync_data, token_file};

/// Embedded A shares `Account` with sidecar B beside `fake` (pages of
/// `page` records, Corteza paced by its limit alone), which maps it onto
/// the `Contact` fedsync made in Corteza; A holds `records` accounts.
struct Setup {
    fake: FakeCorteza,
    a: TestDaemon,
    b: TestDaemon,
    b_for_a: u64,
    contact: String,
    token: std::path::PathBuf,
    ns: String,
    _dir: tempfile::TempDir,
}

fn b_settings(o: &mut fedsync::config::Overrides, page: usize) {
    o.set("sync.data_page_size", page as i64)
        .set("local.corteza_requests_per_second", 1_000_000)
        .set("local.corteza_page_size", 200)
        .set("daemon.shutdown_grace", "1s");
}

async fn setup(records: usize, page: usize) -> Setup {
    let fake = FakeCorteza::start(TOKEN).await;
    let ns = fake.add_namespace("Fed Destination", "feddst");
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), TOKEN);
    let a = spawn_node("a").await;
    let b = sidecar_with("b", &fake.api_url(), &token, &ns, |o| b_settings(o, page)).await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    share_account(&a, &b, a_for_b, b_for_a).await;
    let contact = fake
        .modules()
        .into_iter()
        .find(|m| m["handle"] == "Contact")
        .expect("fedsync made the module in Corteza")["moduleID"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = account_file(dir.path(), records);
    cli_json(&a, &["record", "import", "Account", file.to_str().unwrap()]).await;
    Setup {
        fake,
        a,
        b,
        b_for_a,
        contact,
        token,
        ns,
        _dir: dir,
    }
}

impl Setup {
    /// Corteza's records of `Contact` by name; two of one name fail.
    fn held(&self) -> std::collections::BTreeMap<String, Value> {
        in_corteza(&self.fake, &self.contact, "FullName")
    }

    async fn pacing(&self) -> Value {
        let status = cli_json(&self.b, &["sync", "status"]).await;
        status[0]["cortezaPacing"].clone()
    }
}

#[tokio::test]
async fn a_page_written_concurrently_whose_store_commit_is_lost_is_resumed_without_doubles() {
    let mut s = setup(100, 40).await;
    s.fake.create_delay(Duration::from_millis(20));
    // The first page (40) lands and commits; of the second, 10 records
    // land, then Corteza holds the rest and B stops: the second page's
    // store commit never happens.
    s.fake.hold_creates_after(50);
    let node = s.b_for_a.to_string();
    let dir = s.b.data_dir.display().to_string();
    let started = run_cli(&[
        "sync",
        "now",
        &node,
        "--kind",
        "data",
        "--no-wait",
        "--data-dir",
        &dir,
    ])
    .await;
    assert!(started.status.success(), "{}", stderr(&started));
    s.fake.created_at_least(50).await;
    assert!(
        s.fake.most_creates_at_once() > 1,
        "the page's creates overlap: {}",
        s.fake.most_creates_at_once()
    );
    s.b.stop().await;
    s.fake.release_creates();
    let landed = s.held().len();
    assert!((50..100).contains(&landed), "{landed} records in Corteza");

    let (url, token, ns) = (s.fake.api_url(), s.token.clone(), s.ns.clone());
    s.b.restart_node_with("b", |o| {
        sidecar_settings(o, &url, &token, &ns);
        b_settings(o, 40);
    })
    .await;
    let run = sync_data(&s.b, s.b_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let held = s.held();
    assert_eq!(held.len(), 100, "every record once");
    assert!(held.values().all(|r| r["deleted"] == false));
    s.a.stop().await;
}

#[tokio::test]
async fn a_create_corteza_made_but_whose_answer_was_lost_is_not_made_again() {
    let s = setup(30, 30).await;
    s.fake.create_delay(Duration::from_millis(5));
    // Corteza makes the first three records, then answers 502.
    s.fake.make_then_fail(3);
    let lookups = |fake: &FakeCorteza| {
        fake.seen()
            .iter()
            .filter(|x| x.query.contains("meta=federation_extrecord%3D"))
            .count()
    };
    let run = sync_data(&s.b, s.b_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["created"], 30, "{run}");
    let held = s.held();
    assert_eq!(held.len(), 30, "none made twice");
    // Each of the three was looked up by its origin before it was made
    // again, found, and updated.
    assert_eq!(lookups(&s.fake), 3);
    assert_eq!(
        held.values()
            .filter(|r| r["revision"].as_u64() == Some(2))
            .count(),
        3
    );
    let pacing = s.pacing().await;
    assert_eq!(pacing["serverErrors"], 3, "{pacing}");
    assert_eq!(pacing["throttled"], 0, "{pacing}");
}

#[tokio::test]
async fn corteza_throttling_for_a_while_cuts_the_limit_which_grows_back_and_the_sync_finishes() {
    let s = setup(300, 100).await;
    // Long enough that a debug build's own noise is small beside it.
    s.fake.create_delay(Duration::from_millis(20));
    s.fake.throttle(8);
    let run = sync_data(&s.b, s.b_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(s.fake.throttles_left(), 0);
    assert_eq!(s.held().len(), 300, "every record once");
    let pacing = s.pacing().await;
    assert_eq!(pacing["throttled"], 8, "{pacing}");
    assert!(pacing["limitCuts"].as_u64().unwrap() >= 1, "{pacing}");
    // The first cut takes the limit from 4 to 2 at most; it grew back.
    assert!(pacing["limit"].as_u64().unwrap() >= 3, "{pacing}");
    assert!(pacing["p50LatencyMs"].as_f64().unwrap() > 0.0, "{pacing}");
    let metrics = crate::common::http()
        .get(s.b.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "fedsync_corteza_throttled_total 8",
        "fedsync_corteza_concurrency_limit ",
        "fedsync_corteza_latency_p50_seconds ",
        "fedsync_corteza_requests_total ",
    ] {
        assert!(metrics.contains(line), "no {line} in:\n{metrics}");
    }
}

#[tokio::test]
async fn a_refusal_in_the_middle_of_a_concurrent_page_stops_the_job_and_nothing_is_made_twice() {
    let s = setup(60, 60).await;
    s.fake.create_delay(Duration::from_millis(10));
    s.fake.refuse_value("n00025");
    let run = sync_data(&s.b, s.b_for_a).await;
    assert_eq!(run["status"], "failed", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Corteza refused to create a record")
            && error.contains("invalid record values input"),
        "{run}"
    );
    let landed = s.held().len();
    assert!(landed < 60, "{landed}");
    assert!(!s.held().contains_key("n00025"));
    // Fixed in Corteza: the next run makes the rest, the landed ones
    // found by their meta, none twice.
    s.fake.accept_all_values();
    let run = sync_data(&s.b, s.b_for_a).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(s.held().len(), 60);
}
