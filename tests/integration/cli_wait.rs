//! The CLI waits for work as long as it runs, and Ctrl-C stops the waiting,
//! not the work: a sync goes on in the daemon (exit 130, saying how to
//! watch it); an import, which the CLI streams, stops sending and says how
//! many records were committed and how to go on (`--skip N`). `--no-wait`
//! starts a sync and returns at once with the jobs started.

use std::collections::BTreeSet;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::common::fake_peer::{FakePeer, Reply, corteza_origin};
use crate::common::{
    TestDaemon, cli_json, fedsync_bin, pair_corteza_origin, run_cli, spawn_node, stderr, stdout,
};
use crate::data::{account_file, by_name, records, scalar};

/// Records in the import file: 100 batches (seconds of work), so the
/// import is still sending when the first batch is committed and SIGINT
/// follows.
const IMPORT_RECORDS: usize = 50_000;

/// The CLI as a child process (so it can get a SIGINT), FEDSYNC_* from the
/// test environment left out.
fn spawn_cli(args: &[&str]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(fedsync_bin());
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("FEDSYNC_") {
            command.env_remove(key);
        }
    }
    command.spawn().expect("fedsync binary runs")
}

/// Ctrl-C, as a terminal sends it.
fn sigint(child: &tokio::process::Child) {
    let pid = child.id().expect("the CLI is still running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -INT {pid}");
}

/// Polls `done` (a short pause between polls) until it holds; panics with
/// `what` after a minute.
async fn until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn no_wait_and_follow_together_is_a_usage_error() {
    let out = run_cli(&[
        "sync",
        "now",
        "1",
        "--kind",
        "data",
        "--no-wait",
        "--follow",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--no-wait") && err.contains("--follow"),
        "{err}"
    );
    assert_eq!(stdout(&out), "");
}

/// The `N` of the `--skip N` the CLI told to run.
fn skip_in(err: &str) -> u64 {
    let at = err
        .find("--skip ")
        .unwrap_or_else(|| panic!("no --skip: {err}"));
    err[at + "--skip ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {err}"))
}

/// Every record of the file is in `Account`, each once (`record export`:
/// one line per live record).
async fn all_accounts_once(a: &TestDaemon) {
    let dir = a.data_dir.display().to_string();
    let out = run_cli(&["record", "export", "Account", "--data-dir", &dir]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let mut names = BTreeSet::new();
    for line in stdout(&out).lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let name = record["Name"].as_str().unwrap().to_owned();
        assert!(names.insert(name), "{line} twice");
    }
    let expected: BTreeSet<String> = (0..IMPORT_RECORDS).map(|i| format!("n{i:05}")).collect();
    assert_eq!(names.len(), IMPORT_RECORDS);
    assert!(names == expected, "every line of the file");
}

#[tokio::test]
async fn sigint_during_record_import_keeps_whole_batches_and_skip_imports_the_rest() {
    let mut a = spawn_node("A").await;
    cli_json(
        &a,
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
            "--field",
            "Secret:String",
        ],
    )
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let file = account_file(scratch.path(), IMPORT_RECORDS);
    let file_text = file.display().to_string();
    let dir = a.data_dir.display().to_string();
    let db = a.data_dir.join("fedsync.db");
    let import = [
        "record",
        "import",
        "Account",
        &file_text,
        "--data-dir",
        &dir,
    ];
    let mut child = spawn_cli(&import);
    let committed = || scalar(&db, "SELECT COUNT(*) FROM local_records");
    let deadline = Instant::now() + Duration::from_secs(60);
    let finished = loop {
        if child.try_wait().unwrap().is_some() {
            break true;
        }
        if committed().await >= 500 {
            break false;
        }
        assert!(Instant::now() < deadline, "no batch was committed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    if !finished {
        sigint(&child);
    }
    let out: Output = child.wait_with_output().await.unwrap();
    let err = stderr(&out);
    if out.status.code() == Some(0) {
        // The whole file went before the signal: a plain success.
        all_accounts_once(&a).await;
        a.stop().await;
        return;
    }
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(!err.contains("error:"), "not a failure: {err}");
    let n = skip_in(&err);
    assert!(
        n > 0 && n.is_multiple_of(500) && n < IMPORT_RECORDS as u64,
        "whole batches: {n}"
    );
    assert!(
        err.contains(&format!(
            "import stopped by Ctrl-C: {n} of {IMPORT_RECORDS} records were committed (lines 1-{n} of {file_text}); \
             to go on, run `fedsync record import Account {file_text} --skip {n}`"
        )),
        "{err}"
    );
    assert_eq!(
        committed().await,
        n as i64,
        "the module holds exactly N records"
    );

    // The command it printed imports the rest, none twice.
    let skip = n.to_string();
    let mut rest = import.to_vec();
    rest.extend(["--skip", &skip, "--json"]);
    let out = run_cli(&rest).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let imported: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        imported["imported"],
        IMPORT_RECORDS as u64 - n,
        "{imported}"
    );
    all_accounts_once(&a).await;
    a.stop().await;
}

/// A Corteza origin whose record pages wait for `gate`, paired with a
/// fedsync destination `b` that maps its `contact_fed` onto `person`.
/// Returns (the fake, the gate, b, b's node for the fake).
async fn gated_origin() -> (FakePeer, Arc<Semaphore>, TestDaemon, u64) {
    let fake = FakePeer::start().await;
    let b = spawn_node("B").await;
    let node = pair_corteza_origin(&b, &fake).await;
    let gate = Arc::new(Semaphore::new(0));
    let held = gate.clone();
    fake.handle(move |request| {
        let reply = corteza_origin(request)?;
        Some(if request.is_records() {
            Reply::Gate(held.clone(), Box::new(reply))
        } else {
            reply
        })
    });
    let id = node.to_string();
    let run = cli_json(&b, &["sync", "now", &id, "--kind", "structure"]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    cli_json(
        &b,
        &[
            "module",
            "create",
            "--handle",
            "person",
            "--field",
            "name:String",
            "--field",
            "email:Email",
        ],
    )
    .await;
    cli_json(
        &b,
        &[
            "map",
            "set",
            &id,
            "contact_fed",
            "--to",
            "person",
            "--field",
            "name=name",
            "--field",
            "email=email",
        ],
    )
    .await;
    (fake, gate, b, node)
}

/// Waits until the origin is asked for records, i.e. the data sync runs.
async fn records_asked(fake: &FakePeer) {
    until("the records request", || {
        let asked = fake.requests().iter().any(|r| r.is_records());
        async move { asked }
    })
    .await;
}

/// Waits until the node has a succeeded data run; the people then on `b`.
async fn data_synced(b: &TestDaemon, node: u64) -> Vec<String> {
    let id = node.to_string();
    until("a succeeded data run", || async {
        let runs = cli_json(b, &["sync", "runs", &id]).await;
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "data" && r["status"] == "succeeded")
    })
    .await;
    by_name(&records(b, "person", false).await, "name")
        .into_keys()
        .collect()
}

#[tokio::test]
async fn sigint_during_sync_now_exits_130_and_the_sync_finishes() {
    let (fake, gate, mut b, node) = gated_origin().await;
    let id = node.to_string();
    let dir = b.data_dir.display().to_string();
    let child = spawn_cli(&["sync", "now", &id, "--kind", "data", "--data-dir", &dir]);
    records_asked(&fake).await;
    sigint(&child);
    let out = child.wait_with_output().await.unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(!err.contains("error:"), "not a failure: {err}");
    assert_eq!(
        err.lines().last(),
        Some(
            format!(
                "stopped waiting for the data sync of node {id}: the sync goes on in the daemon; \
                 watch it with `fedsync sync status {id}`, `fedsync sync runs {id}`, \
                 or attach with `fedsync sync now {id} --kind data --follow`"
            )
            .as_str()
        )
    );
    assert_eq!(stdout(&out), "");

    // The origin answers now: the run the CLI stopped waiting for finishes.
    gate.add_permits(1);
    assert_eq!(data_synced(&b, node).await, ["Alice", "Bob", "Carol"]);
    b.stop().await;
}

#[tokio::test]
async fn sync_now_no_wait_returns_at_once_with_the_jobs_started() {
    let (fake, gate, mut b, node) = gated_origin().await;
    let id = node.to_string();
    let dir = b.data_dir.display().to_string();
    // Human output: one line per job, naming it and how to watch it.
    let out = run_cli(&[
        "sync",
        "now",
        &id,
        "--kind",
        "structure",
        "--no-wait",
        "--data-dir",
        &dir,
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("started the structure job ")
            && text.ends_with(&format!(
                " of node {id}; watch it with `fedsync sync status {id}`\n"
            ))
            && text.lines().count() == 1,
        "{text}"
    );

    // The origin holds every records page, yet the CLI returns: with
    // --json, the jobs as `sync status` shows them.
    let started = cli_json(&b, &["sync", "now", &id, "--kind", "data", "--no-wait"]).await;
    let jobs = started.as_array().expect("a bare array of jobs");
    assert_eq!(jobs.len(), 1, "{started}");
    assert_eq!(jobs[0]["kind"], "data", "{started}");
    assert!(jobs[0]["id"].is_string(), "{started}");
    assert!(jobs[0]["sharedModuleId"].is_string(), "{started}");
    assert!(jobs[0]["triggered"].is_boolean(), "{started}");
    records_asked(&fake).await;
    gate.add_permits(1);
    assert_eq!(data_synced(&b, node).await, ["Alice", "Bob", "Carol"]);
    settled(&b, &id).await;
    b.stop().await;
}

/// Waits until no job of the node runs or has a trigger left to serve.
async fn settled(b: &TestDaemon, id: &str) {
    until("the jobs settled", || async {
        let status = cli_json(b, &["sync", "status", id]).await;
        status[0]["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["triggered"] == false && j["state"] != "running")
    })
    .await;
}
