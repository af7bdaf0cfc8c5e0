//! Work belongs to the daemon, not to whoever asked for it: a `sync now`,
//! `sync reset` or pairing step whose caller goes away (Ctrl-C, a timeout,
//! a dropped connection) runs to its end in the daemon, wedges nothing, and
//! holds no concurrency permit while it waits; a slow but honest origin is
//! waited for as long as it takes.

use std::time::{Duration, Instant};

use fedsync::admin::proto::v1;
use fedsync::domain::{NodeId, SyncJob, SyncKind};
use serde_json::Value;

use crate::common::relay::{Fault, Relay};
use crate::common::{
    TestDaemon, add_node_uri, cli_json, pair, run_cli, spawn_node_with, stderr, with_token,
};
use crate::data::{account_file, by_name, expected_on_b, records, share_account};

/// An origin A behind a relay (so its answers can be held) and a
/// destination B that pulls A's `Account` into its `Contact`.
struct Pulled {
    a: TestDaemon,
    b: TestDaemon,
    relay: Relay,
    b_for_a: u64,
}

async fn pulled(records_on_a: usize, b_settings: &[(&str, &str)]) -> Pulled {
    let relay = Relay::start().await;
    let a = spawn_node_with("A", |o| {
        o.set("federation.public_url", relay.base_url());
    })
    .await;
    relay.forward_to(a.running().federation_addr);
    let b = spawn_node_with("B", |o| {
        for (key, value) in b_settings {
            o.set(key, *value);
        }
    })
    .await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    share_account(&a, &b, a_for_b, b_for_a).await;
    if records_on_a > 0 {
        let dir = tempfile::tempdir().unwrap();
        let file = account_file(dir.path(), records_on_a);
        cli_json(&a, &["record", "import", "Account", file.to_str().unwrap()]).await;
    }
    Pulled {
        a,
        b,
        relay,
        b_for_a,
    }
}

/// A `sync now` over gRPC as a task the test can drop (abort) at will.
fn sync_now_task(
    b: &TestDaemon,
    node: u64,
    kind: &str,
) -> tokio::task::JoinHandle<Result<v1::SyncNowResponse, tonic::Status>> {
    let channel = tonic::transport::Channel::from_shared(b.admin_url("")).unwrap();
    let token = b.admin_token();
    let request = v1::SyncNowRequest {
        node_id: node,
        kind: kind.into(),
        no_wait: false,
    };
    tokio::spawn(async move {
        let channel = channel.connect().await.unwrap();
        let mut sync = v1::sync_service_client::SyncServiceClient::new(channel);
        sync.sync_now(with_token(request, &token))
            .await
            .map(|r| r.into_inner())
    })
}

/// B's job of `kind` for the node, read from its store.
async fn job(b: &TestDaemon, node: u64, kind: SyncKind) -> SyncJob {
    let store = b.store().await;
    let jobs = store
        .list_jobs(Some(NodeId::from_u64(node).unwrap()))
        .await
        .unwrap();
    store.close().await;
    jobs.into_iter()
        .find(|j| j.kind == kind)
        .expect("the node has the job")
}

/// Polls (each read is a store round trip) until `ok` holds for the job.
async fn job_until(b: &TestDaemon, node: u64, kind: SyncKind, ok: impl Fn(&SyncJob) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = job(b, node, kind).await;
        if ok(&job) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the job never got there: {job:?}"
        );
        tokio::task::yield_now().await;
    }
}

/// The data runs of B's node, oldest first.
async fn data_runs(b: &TestDaemon, node: u64) -> Vec<Value> {
    let runs = cli_json(b, &["sync", "runs", &node.to_string(), "--limit", "100"]).await;
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

async fn all_arrived_once(p: &Pulled) {
    let on_a = records(&p.a, "Account", false).await;
    assert_eq!(
        by_name(&records(&p.b, "Contact", false).await, "FullName"),
        expected_on_b(&on_a)
    );
}

#[tokio::test]
async fn a_sync_now_whose_caller_left_while_the_peer_stalled_wedges_nothing() {
    let p = pulled(5, &[("federation.peer_request_timeout", "3s")]).await;
    let node = p.b_for_a.to_string();
    // The origin stalls: the first records request and the attempt's two
    // retries of it.
    for nth in 1..=3 {
        p.relay.fault("/records/", nth, Fault::Hold);
    }
    let caller = sync_now_task(&p.b, p.b_for_a, "data");
    p.relay.wait_held().await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    // The attempt ends on its own timeout, in the daemon.
    job_until(&p.b, p.b_for_a, SyncKind::Data, |j| {
        j.state == fedsync::domain::JobState::Retrying
    })
    .await;
    // The origin is healthy again.
    p.relay.release();
    p.relay.clear();
    let started = Instant::now();
    let runs = cli_json(&p.b, &["sync", "now", &node, "--kind", "data"]).await;
    let took = started.elapsed();
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
    assert!(
        took < Duration::from_secs(3 + 5),
        "the next sync now took {took:?}: its job was wedged"
    );
    all_arrived_once(&p).await;
    // The job is not wedged for the scheduler either: its next scheduled
    // run happens.
    cli_json(&p.b, &["node", "schedule", &node, "--data", "1s"]).await;
    job_until(&p.b, p.b_for_a, SyncKind::Data, |j| {
        j.claimed_trigger == "schedule" && j.state == fedsync::domain::JobState::Idle
    })
    .await;
    let runs = data_runs(&p.b, p.b_for_a).await;
    let last = runs.last().unwrap();
    assert_eq!(
        (&last["trigger"], &last["status"]),
        (&Value::from("schedule"), &Value::from("succeeded")),
        "{runs:?}"
    );
    // The first attempt ended on its own timeout; nothing is left running.
    assert!(runs.iter().all(|r| r["status"] != "running"), "{runs:?}");
}

#[tokio::test]
async fn eight_dropped_callers_do_not_stop_another_nodes_jobs() {
    // max_concurrent is 8: eight callers each holding a permit while they
    // wait stopped every job of every node.
    let p = pulled(5, &[("sync.max_concurrent", "8")]).await;
    let other = spawn_node_with("C", |_| {}).await;
    let (_, b_for_c) = pair(&other, &p.b).await;
    p.relay.fault("/records/", 1, Fault::Hold);
    let callers: Vec<_> = (0..8)
        .map(|_| sync_now_task(&p.b, p.b_for_a, "data"))
        .collect();
    p.relay.wait_held().await;
    // Every caller's trigger is in the job row before they all leave.
    job_until(&p.b, p.b_for_a, SyncKind::Data, |j| j.trigger_seq >= 8).await;
    for caller in &callers {
        caller.abort();
    }
    let started = Instant::now();
    let run = cli_json(
        &p.b,
        &["sync", "now", &b_for_c.to_string(), "--kind", "structure"],
    )
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "another node's sync waited {:?}",
        started.elapsed()
    );
    // The stalled node's work goes on once its origin answers: one more
    // run after the first serves the triggers recorded meanwhile.
    p.relay.release();
    job_until(&p.b, p.b_for_a, SyncKind::Data, |j| {
        !j.trigger_unserved() && j.state == fedsync::domain::JobState::Idle
    })
    .await;
    all_arrived_once(&p).await;
    // However many triggers came in while it ran, at most one more run.
    let runs = data_runs(&p.b, p.b_for_a).await;
    assert!((1..=2).contains(&runs.len()), "{runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
}

#[tokio::test]
async fn a_caller_dropped_at_each_page_of_a_ten_page_pull_leaves_it_complete_and_exact() {
    let p = pulled(1_000, &[("sync.data_page_size", "100")]).await;
    for page in 1..=10 {
        p.relay.fault("/records/", page, Fault::Hold);
    }
    for page in 1..=10i64 {
        let caller = sync_now_task(&p.b, p.b_for_a, "data");
        job_until(&p.b, p.b_for_a, SyncKind::Data, |j| j.trigger_seq >= page).await;
        p.relay.wait_held().await;
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled(), "page {page}");
        p.relay.release();
    }
    job_until(&p.b, p.b_for_a, SyncKind::Data, |j| {
        !j.trigger_unserved() && j.state == fedsync::domain::JobState::Idle
    })
    .await;
    all_arrived_once(&p).await;
    let store = p.b.store().await;
    let links = store
        .list_jobs(None)
        .await
        .unwrap()
        .iter()
        .filter(|j| j.kind == SyncKind::Data)
        .count();
    store.close().await;
    assert_eq!(links, 1);
    // The first attempt pulled the ten pages; the nine triggers recorded
    // while it ran made exactly one more run, which found nothing new.
    let runs = data_runs(&p.b, p.b_for_a).await;
    let counts: Vec<_> = runs
        .iter()
        .map(|r| (r["status"].clone(), r["created"].clone()))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("succeeded".into(), 1_000.into()),
            ("succeeded".into(), 0.into()),
        ],
        "{runs:?}"
    );
}

/// Holds each records page of the origin for `each` before it is served.
fn slow_origin(relay: &Relay, pages: usize, each: Duration) -> tokio::task::JoinHandle<()> {
    for page in 1..=pages {
        relay.fault("/records/", page, Fault::Hold);
    }
    let relay = relay.clone();
    tokio::spawn(async move {
        for _ in 0..pages {
            relay.wait_held().await;
            // The origin takes this long for a page: the behaviour under
            // test, not a wait for something to happen.
            tokio::time::sleep(each).await;
            relay.release();
        }
    })
}

/// The CLI, waiting for a sync of three 25 s pages (longer than any unary
/// deadline the CLI had), polled meanwhile: no run of the node is failed
/// and its data status never says failed while it runs.
async fn waits_through_a_slow_origin(args: &[&str]) {
    let p = pulled(300, &[("sync.data_page_size", "100")]).await;
    let node = p.b_for_a.to_string();
    if args[1] == "reset" {
        // Something to reset: a first pull at full speed.
        cli_json(&p.b, &["sync", "now", &node, "--kind", "data"]).await;
    }
    let origin = slow_origin(&p.relay, 3, Duration::from_secs(25));
    let dir = p.b.data_dir.display().to_string();
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend([node.clone(), "--data-dir".into(), dir, "--json".into()]);
    if args[1] == "now" {
        all.extend(["--kind".into(), "data".into()]);
    }
    let cli = tokio::spawn(async move {
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run_cli(&all).await
    });
    let started = Instant::now();
    while !cli.is_finished() {
        for run in data_runs(&p.b, p.b_for_a).await {
            assert_ne!(run["status"], "failed", "a run was marked failed: {run}");
        }
        let status = cli_json(&p.b, &["sync", "status", &node]).await;
        assert_ne!(status[0]["dataStatus"], "failed", "{status}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let out = cli.await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() > Duration::from_secs(70),
        "the origin took 75 s, the CLI answered after {:?}",
        started.elapsed()
    );
    origin.await.unwrap();
    all_arrived_once(&p).await;
    let runs = data_runs(&p.b, p.b_for_a).await;
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
}

#[tokio::test]
async fn sync_now_waits_for_a_slow_origin_and_succeeds() {
    waits_through_a_slow_origin(&["sync", "now"]).await;
}

#[tokio::test]
async fn sync_reset_waits_for_a_slow_origin_and_nothing_marks_it_failed() {
    waits_through_a_slow_origin(&["sync", "reset"]).await;
}

#[tokio::test]
async fn a_rest_pair_whose_client_hung_up_records_the_peers_answer() {
    let relay = Relay::start().await;
    let a = spawn_node_with("A", |o| {
        o.set("federation.public_url", relay.base_url());
    })
    .await;
    relay.forward_to(a.running().federation_addr);
    let b = spawn_node_with("B", |_| {}).await;
    // A node URI whose one-time token is wrong: A refuses the handshake.
    let created = a
        .nodes()
        .await
        .create_node(with_token(
            v1::CreateNodeRequest {
                name: "B".into(),
                base_url: b.base_url(),
                contact: String::new(),
            },
            &a.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let uri = created.node_uri;
    let (head, tail) = uri.split_once('@').unwrap();
    let (id, token) = head.rsplit_once(':').unwrap();
    let wrong = format!("{id}:{}@{tail}", "x".repeat(token.len()));
    let on_b = add_node_uri(&b, wrong).await;

    // A answers; its answer waits in the relay while the client hangs up.
    relay.fault("/federation/nodes/", 1, Fault::HoldReply);
    let url = b.admin_url(&format!("/federation/nodes/{on_b}/pair"));
    let token = b.admin_token();
    let client = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .send()
            .await
    });
    relay.wait_held().await;
    client.abort();
    assert!(client.await.unwrap_err().is_cancelled());
    relay.release();

    // B records A's refusal: the node fails with a reason, the token B
    // issued for the attempt is revoked, the attempt is audited.
    let deadline = Instant::now() + Duration::from_secs(30);
    let node = loop {
        let node = b.node(on_b).await;
        if node.status != "pair_requested" {
            break node;
        }
        assert!(Instant::now() < deadline, "the answer was never recorded");
        tokio::task::yield_now().await;
    };
    assert_eq!(node.status, "failed", "{node:?}");
    assert!(
        node.status_reason.contains("refused the handshake"),
        "{node:?}"
    );
    assert!(
        b.audit()
            .await
            .iter()
            .any(|e| e.event == "pairing.failed" && e.node_id == NodeId::from_u64(on_b)),
        "the refusal is audited"
    );
}

#[tokio::test]
async fn a_sync_now_on_a_node_that_cannot_sync_says_why() {
    let b = spawn_node_with("B", |_| {}).await;
    let a = spawn_node_with("A", |_| {}).await;
    let (_, b_for_a) = pair(&a, &b).await;
    let node = b_for_a.to_string();
    let dir = b.data_dir.display().to_string();
    let out = run_cli(&["sync", "now", &node, "--kind", "data", "--data-dir", &dir]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has no mapped shared module to pull"),
        "{}",
        stderr(&out)
    );
    let out = run_cli(&["sync", "now", "12345", "--data-dir", &dir]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}
