//! Live changes where two nodes sync one module both ways (they converge,
//! then fall silent: no echo), and across replicas (a notice that lands on
//! a replica not running the job still wakes it, through the job row).

use std::time::{Duration, Instant};

use fedsync::domain::{NodeId, SyncKind};

use crate::common::pg::TestDatabase;
use crate::common::relay::{Fault, Relay};
use crate::common::{self, TestDaemon, cli_json, pair, spawn_node_with};
use crate::data::{create_account, records};
use crate::live::converged;

/// An `Account` module on `d`, the fields A and B share.
async fn account_module(d: &TestDaemon) {
    cli_json(
        d,
        &[
            "module",
            "create",
            "--handle",
            "Account",
            "--field",
            "Name:String",
            "--field",
            "Tags:String:multi",
            "--field",
            "Score:Number",
        ],
    )
    .await;
}

/// `from` exposes its Account to `to`, which maps it onto its own Account.
async fn share_both(from: &TestDaemon, to: &TestDaemon, from_for_to: u64, to_for_from: u64) {
    cli_json(
        from,
        &[
            "expose",
            "add",
            &from_for_to.to_string(),
            "Account",
            "--field",
            "Name",
            "--field",
            "Tags",
            "--field",
            "Score",
        ],
    )
    .await;
    cli_json(
        to,
        &[
            "sync",
            "now",
            &to_for_from.to_string(),
            "--kind",
            "structure",
        ],
    )
    .await;
    cli_json(
        to,
        &[
            "map",
            "set",
            &to_for_from.to_string(),
            "Account",
            "--to",
            "Account",
            "--field",
            "Name=Name",
            "--field",
            "Tags=Tags",
            "--field",
            "Score=Score",
        ],
    )
    .await;
}

fn names(records: &[serde_json::Value]) -> std::collections::BTreeSet<String> {
    records
        .iter()
        .map(|r| r["values"]["Name"].as_str().unwrap().to_owned())
        .collect()
}

/// (notices sent, data runs) of a daemon, from its metrics and runs.
async fn activity(d: &TestDaemon, node: u64) -> (String, usize) {
    let metrics = common::http()
        .get(d.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sent = metrics
        .lines()
        .find(|l| l.starts_with("fedsync_live_notices_total{event=\"sent\"}"))
        .unwrap_or_default()
        .to_owned();
    let runs = cli_json(d, &["sync", "runs", &node.to_string(), "--limit", "1000"]).await;
    (sent, runs.as_array().unwrap().len())
}

#[tokio::test]
async fn two_nodes_syncing_one_module_both_ways_converge_then_fall_silent() {
    let on = |o: &mut fedsync::config::Overrides| {
        o.set("sync.live_changes", true);
    };
    let a = spawn_node_with("A", on).await;
    let b = spawn_node_with("B", on).await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    account_module(&a).await;
    account_module(&b).await;
    share_both(&a, &b, a_for_b, b_for_a).await;
    share_both(&b, &a, b_for_a, a_for_b).await;
    create_account(&a, "from-a").await;
    create_account(&b, "from-b").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (on_a, on_b) = (
            records(&a, "Account", false).await,
            records(&b, "Account", false).await,
        );
        if names(&on_a) == names(&on_b) && on_a.len() == 2 && on_b.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never converged: {on_a:?} / {on_b:?}"
        );
        tokio::task::yield_now().await;
    }
    // Quiet: what either node does now, it would do for ever (ping-pong).
    let before = (activity(&a, a_for_b).await, activity(&b, b_for_a).await);
    let quiet = Instant::now() + Duration::from_secs(2);
    while Instant::now() < quiet {
        tokio::task::yield_now().await;
    }
    let after = (activity(&a, a_for_b).await, activity(&b, b_for_a).await);
    assert_eq!(before, after, "the nodes kept telling each other");
    assert_eq!(
        records(&a, "Account", false).await.len(),
        2,
        "no echo came back as a copy"
    );
}

#[tokio::test]
async fn a_notice_at_a_replica_not_running_the_job_still_wakes_it() {
    let Some(db) = TestDatabase::create().await else {
        eprintln!("skipped: {} is not set", common::pg::ENV);
        return;
    };
    let relay = Relay::start().await;
    let a = spawn_node_with("A", |o| {
        o.set("federation.public_url", relay.base_url())
            .set("sync.live_changes", true);
    })
    .await;
    relay.forward_to(a.running().federation_addr);
    let scratch = tempfile::tempdir().unwrap();
    let key = |name: &str| {
        let path = scratch.path().join(name);
        let key = fedsync::crypto::KeyMaterial::generate().unwrap();
        std::fs::write(&path, key.to_text()).unwrap();
        path.display().to_string()
    };
    let (signing, encryption) = (key("signing.key"), key("encryption.key"));
    let replica = |label: &'static str| {
        let (db, signing, encryption) = (db.url.clone(), signing.clone(), encryption.clone());
        spawn_node_with(label, move |o| {
            o.set("database.url", db.as_str())
                .set("keys.signing_key_file", signing.as_str())
                .set("keys.encryption_key_file", encryption.as_str())
                .set("sync.live_changes", true)
                // The held pull outlasts a loaded machine.
                .set("federation.peer_request_timeout", "300s");
        })
    };
    let b1 = replica("B").await;
    let (a_for_b, b_for_a) = pair(&a, &b1).await;
    crate::data::share_account(&a, &b1, a_for_b, b_for_a).await;
    // B2: a process of its own, as replicas are (in-process replicas share
    // a pid, and a daemon starting takes a live pid of its own for a
    // restarted container's).
    let env = [
        ("FEDSYNC_DATABASE__URL", db.url.as_str()),
        ("FEDSYNC_KEYS__SIGNING_KEY_FILE", signing.as_str()),
        ("FEDSYNC_KEYS__ENCRYPTION_KEY_FILE", encryption.as_str()),
        ("FEDSYNC_SYNC__LIVE_CHANGES", "true"),
        ("FEDSYNC_FEDERATION__PEER_REQUEST_TIMEOUT", "300s"),
    ];
    let (b2, b2_federation) =
        common::spawn_child_daemon(&scratch.path().join("b2"), scratch.path(), &env).await;
    let b2_pid = b2.id().unwrap();
    // One replica runs the data job; its pull waits at A.
    relay.fault("/records/", 1, Fault::Hold);
    let node = b_for_a.to_string();
    cli_json(&b1, &["sync", "now", &node, "--kind", "data", "--no-wait"]).await;
    relay.wait_held().await;
    let store = fedsync::daemon::open_store(&common::test_config(&b1.data_dir, Some(&db.url)))
        .await
        .unwrap();
    let job_of = || async {
        let jobs = store.list_jobs(NodeId::from_u64(b_for_a)).await.unwrap();
        jobs.into_iter().find(|j| j.kind == SyncKind::Data).unwrap()
    };
    // A's notices go to the replica that does not hold the job.
    let holder = job_of().await.lease_owner;
    let other = if holder.contains(&format!(":{b2_pid}:")) {
        b1.base_url()
    } else {
        format!("http://{b2_federation}/federation")
    };
    cli_json(
        &a,
        &["node", "update", &a_for_b.to_string(), "--base-url", &other],
    )
    .await;
    create_account(&a, "told-b2").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let job = job_of().await;
        if job.trigger_pending() {
            break job;
        }
        if Instant::now() > deadline {
            let metrics = common::http()
                .get(a.admin_url("/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let notices: Vec<&str> = metrics
                .lines()
                .filter(|l| l.starts_with("fedsync_live_notices"))
                .collect();
            panic!("the notice never reached the job row: {job:?}; A's notices: {notices:?}");
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(
        job.lease_owner, holder,
        "recorded while the other replica holds the job"
    );
    relay.release();
    converged(&a, &b1, Duration::from_secs(20)).await;
    // The job ran once more for the notice, after the run it waited for.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = cli_json(&b1, &["sync", "runs", &node]).await;
        let runs = runs.as_array().unwrap();
        if runs
            .iter()
            .any(|r| r["trigger"] == "notice" && r["status"] == "succeeded")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no run served the notice: {runs:?}"
        );
        tokio::task::yield_now().await;
    }
    store.close().await;
    drop(b2);
    db.drop_database().await;
}

#[tokio::test]
async fn a_change_made_in_corteza_beside_a_sidecar_reaches_its_peer_in_seconds() {
    use crate::common::fake_corteza::FakeCorteza;
    use crate::sidecar::{
        TOKEN, body, live, recorded_source, share_names, sidecar_with, token_file,
    };
    let fake = FakeCorteza::start(TOKEN).await;
    let (module, _) = recorded_source(&fake);
    let dir = tempfile::tempdir().unwrap();
    let a = sidecar_with(
        "a",
        &fake.api_url(),
        &token_file(dir.path(), TOKEN),
        "fedsrc",
        |o| {
            o.set("sync.live_changes", true)
                .set("local.corteza_change_poll", "1s");
        },
    )
    .await;
    let b = spawn_node_with("b", |o| {
        o.set("sync.live_changes", true);
    })
    .await;
    let b_for_a = share_names(&a, &b, "contact").await;
    let node = b_for_a.to_string();
    cli_json(&b, &["sync", "now", &node, "--kind", "data"]).await;
    assert_eq!(live(&b, "Person", "Name").await.len(), 3);
    // The sidecar has looked at the module once (what it finds first is
    // where the module stands, not a change).
    let looks = || {
        fake.seen()
            .iter()
            .filter(|s| s.query.starts_with("query=%28updated_at") && s.query.ends_with("limit=1"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while looks() == 0 {
        assert!(
            Instant::now() < deadline,
            "the sidecar never looked for changes"
        );
        tokio::task::yield_now().await;
    }
    // A Corteza user adds a record, now: nobody tells fedsync.
    fake.wall_clock();
    let mut dave = body("109-A-compose-create-record-dave.json");
    dave["values"][0]["value"] = serde_json::json!("Dave Live");
    fake.add_record(&module, &dave);
    let started = Instant::now();
    loop {
        let names = live(&b, "Person", "Name").await;
        if names.len() == 4 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the change never reached B: {names:?}"
        );
        tokio::task::yield_now().await;
    }
    let took = started.elapsed();
    let runs = cli_json(&b, &["sync", "runs", &node]).await;
    assert_eq!(runs[0]["trigger"], "notice", "{runs}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
