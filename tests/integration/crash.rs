//! Crashes: kill -9 of either side in the middle of the pairing handshake
//! (before the peer saw the step, and after the peer acted on it but before
//! the killed side heard), and of the origin in the middle of a data sync.
//! Every node is a real process on a real SQLite file; a relay in front of
//! each federation listener freezes the step exactly where the kill lands
//! and keeps the peer's address stable across restarts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::Child;

use crate::common::relay::{Fault, Relay};
use crate::common::{TestDaemon, cli_json, fedsync_bin, run_cli, spawn_child_daemon, stderr};
use crate::data::{account_file, by_name, expected_on_b, records, scalar, share_account};

/// One node: a child daemon on its own data dir, behind its own relay
/// (its public URL), restartable on the same data dir.
struct Side {
    dir: PathBuf,
    scratch: PathBuf,
    label: &'static str,
    relay: Relay,
    child: Option<Child>,
    handle: TestDaemon,
}

impl Side {
    async fn start(scratch: &Path, label: &'static str) -> Side {
        let dir = scratch.join(label);
        let mut side = Side {
            handle: TestDaemon::detached(dir.clone()),
            dir,
            scratch: scratch.to_owned(),
            label,
            relay: Relay::start().await,
            child: None,
        };
        side.restart().await;
        side
    }

    /// Starts the daemon (again) on its data dir; the relay follows it.
    async fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.label);
        let public_url = self.relay.base_url();
        let (child, federation) = spawn_child_daemon(
            &self.dir,
            &self.scratch,
            &[
                ("FEDSYNC_FEDERATION__PUBLIC_URL", public_url.as_str()),
                ("FEDSYNC_FEDERATION__LABEL", self.label),
                ("FEDSYNC_SYNC__DATA_PAGE_SIZE", "100"),
            ],
        )
        .await;
        self.relay.forward_to(federation.parse().unwrap());
        self.child = Some(child);
    }

    /// kill -9, and waits for the process to be gone.
    async fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &child.id().unwrap().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().await.unwrap();
        assert!(!status.success(), "{} died of the signal", self.label);
    }

    async fn cli(&self, args: &[&str]) -> Value {
        cli_json(&self.handle, args).await
    }

    async fn node(&self, id: u64) -> Value {
        self.cli(&["node", "show", &id.to_string()]).await
    }

    /// A CLI command on this node, running in the background.
    fn cli_in_background(&self, args: &[&str]) -> Child {
        tokio::process::Command::new(fedsync_bin())
            .args(args)
            .arg("--data-dir")
            .arg(&self.dir)
            .env_remove("FEDSYNC_TEST_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    fn db(&self) -> PathBuf {
        self.dir.join("fedsync.db")
    }
}

/// SHA-256 of the live tokens `side` issued for `node`.
async fn live_tokens(side: &Side, node: u64) -> Vec<Vec<u8>> {
    let url = format!("sqlite://{}?mode=ro", side.db().display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT token_hash FROM issued_tokens WHERE node_id = ? AND revoked_at IS NULL",
    )
    .bind(node as i64)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter().map(|(h,)| h).collect()
}

/// (OTT hash present, consumed) of an inviter node's OTT row.
async fn ott_row(side: &Side, node: u64) -> (bool, bool) {
    let url = format!("sqlite://{}?mode=ro", side.db().display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (hash, consumed): (Option<Vec<u8>>, Option<i64>) =
        sqlx::query_as("SELECT token_hash, consumed_at FROM pairing_tokens WHERE node_id = ?")
            .bind(node as i64)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    (hash.is_some(), consumed.is_some())
}

/// Both sides `paired`, each with exactly one live token issued for the
/// other, and that token is the one the other side holds.
async fn assert_consistently_paired(a: &Side, a_id: u64, b: &Side, b_id: u64) {
    for (side, id) in [(a, a_id), (b, b_id)] {
        let node = side.node(id).await;
        assert_eq!(node["status"], "paired", "{}: {node}", side.label);
        assert_eq!(node["statusReason"], "", "{}: {node}", side.label);
    }
    for (issuer, issuer_id, holder, holder_id) in [(a, a_id, b, b_id), (b, b_id, a, a_id)] {
        let live = live_tokens(issuer, issuer_id).await;
        assert_eq!(
            live.len(),
            1,
            "{} has exactly one live token for its peer",
            issuer.label
        );
        let held = holder
            .handle
            .held_token(holder_id)
            .await
            .unwrap_or_else(|| panic!("{} holds a token", holder.label));
        assert_eq!(
            fedsync::crypto::sha256(held.as_bytes()).to_vec(),
            live[0],
            "{} holds the token {} has live",
            holder.label,
            issuer.label
        );
    }
    for (side, id) in [(a, a_id), (b, b_id)] {
        let check = side.cli(&["node", "check", &id.to_string()]).await;
        assert_eq!(check["ok"], true, "{}: {check}", side.label);
    }
}

/// After the pairing: structure sync, then 250 records pulled by B, each once.
async fn a_sync_works(a: &Side, a_id: u64, b: &Side, b_id: u64) {
    share_account(&a.handle, &b.handle, a_id, b_id).await;
    let file = account_file(&a.scratch, 250);
    a.cli(&["record", "import", "Account", file.to_str().unwrap()])
        .await;
    let runs = b
        .cli(&["sync", "now", &b_id.to_string(), "--kind", "data"])
        .await;
    assert_eq!(
        (&runs[0]["status"], &runs[0]["created"]),
        (&json!("succeeded"), &json!(250)),
        "{runs}"
    );
    assert_eq!(
        by_name(&records(&b.handle, "Contact", false).await, "FullName"),
        expected_on_b(&records(&a.handle, "Account", false).await)
    );
}

/// A (inviter) and B (invitee), both running; A created the node for B
/// (B's base URL is B's relay) and B added it from A's node URI.
/// Returns (A's node for B, B's node for A).
async fn invited(scratch: &Path) -> (Side, Side, u64, u64) {
    let a = Side::start(scratch, "a").await;
    let b = Side::start(scratch, "b").await;
    let created = a
        .cli(&[
            "node",
            "create",
            "--base-url",
            &b.relay.base_url(),
            "--name",
            "B",
        ])
        .await;
    let a_id: u64 = created["id"].as_str().unwrap().parse().unwrap();
    let uri = created["nodeUri"].as_str().unwrap().to_owned();
    let added = b.cli(&["node", "add-uri", &uri]).await;
    let b_id: u64 = added["id"].as_str().unwrap().parse().unwrap();
    (a, b, a_id, b_id)
}

async fn held_in_time(relay: &Relay, what: &str) {
    tokio::time::timeout(Duration::from_secs(60), relay.wait_held())
        .await
        .unwrap_or_else(|_| panic!("{what} reaches the relay"));
}

/// `actor` runs the CLI `args` in the background until `relay` holds the
/// first exchange on `path` (a request held with `Fault::Hold`, an answer
/// with `Fault::HoldReply`); returns the running command.
async fn held(actor: &Side, args: &[&str], relay: &Relay, path: &str, fault: Fault) -> Child {
    relay.fault(path, 1, fault);
    let command = actor.cli_in_background(args);
    held_in_time(relay, &format!("{}'s exchange on {path}", actor.label)).await;
    command
}

/// `actor` is killed -9 under its running `command`, which fails; the
/// relay lets exchanges through again and `actor` restarts.
async fn killed_and_restarted(actor: &mut Side, command: Child, relay: &Relay) {
    actor.kill9().await;
    failed(command).await;
    relay.clear();
    actor.restart().await;
}

/// The background CLI command failed (its daemon died under it).
async fn failed(mut command: Child) -> String {
    let status = tokio::time::timeout(Duration::from_secs(60), command.wait())
        .await
        .expect("the CLI returns once its daemon is gone")
        .unwrap();
    assert!(!status.success(), "the CLI saw its daemon die");
    let mut text = String::new();
    if let Some(mut pipe) = command.stderr.take() {
        use tokio::io::AsyncReadExt;
        pipe.read_to_string(&mut text).await.unwrap();
    }
    text
}

#[tokio::test]
async fn an_invitee_killed_before_its_handshake_arrives_pairs_on_retry() {
    let scratch = tempfile::tempdir().unwrap();
    let (a, mut b, a_id, b_id) = invited(scratch.path()).await;
    // B's handshake request never reaches A: B dies while it is in flight.
    let pair_b = ["node", "pair", &b_id.to_string()];
    let pairing = held(&b, &pair_b, &a.relay, "/handshake", Fault::Hold).await;
    killed_and_restarted(&mut b, pairing, &a.relay).await;

    // B's step is recorded as sent, A never saw it: A still waits with an
    // unused OTT, B still holds it, so B's admin can send it again.
    let node_b = b.node(b_id).await;
    assert_eq!(node_b["status"], "pair_requested", "{node_b}");
    let node_a = a.node(a_id).await;
    assert_eq!(node_a["status"], "pending", "{node_a}");
    assert_eq!(ott_row(&a, a_id).await, (true, false), "A's OTT is unused");
    assert_eq!(
        live_tokens(&b, b_id).await.len(),
        1,
        "B's token of the lost request"
    );
    // A's admin cannot confirm what never arrived, and is told so.
    let dir = a.dir.display().to_string();
    let early = run_cli(&["node", "confirm", &a_id.to_string(), "--data-dir", &dir]).await;
    assert!(!early.status.success());
    assert!(
        stderr(&early).contains("no handshake request has arrived"),
        "{}",
        stderr(&early)
    );

    // The retry: B's admin pairs again, A's admin confirms.
    let paired = b.cli(&["node", "pair", &b_id.to_string()]).await;
    assert_eq!(paired["status"], "pair_requested", "{paired}");
    let confirmed = a.cli(&["node", "confirm", &a_id.to_string()]).await;
    assert_eq!(confirmed["status"], "paired", "{confirmed}");
    assert_consistently_paired(&a, a_id, &b, b_id).await;
    a_sync_works(&a, a_id, &b, b_id).await;
}

#[tokio::test]
async fn an_invitee_killed_after_the_inviter_accepted_its_handshake_is_confirmed_after_restart() {
    let scratch = tempfile::tempdir().unwrap();
    let (a, mut b, a_id, b_id) = invited(scratch.path()).await;
    // A accepts B's handshake request; B dies before it hears so.
    let pair_b = ["node", "pair", &b_id.to_string()];
    let pairing = held(&b, &pair_b, &a.relay, "/handshake", Fault::HoldReply).await;
    let node_a = a.node(a_id).await;
    assert_eq!(node_a["status"], "pair_requested", "{node_a}");
    killed_and_restarted(&mut b, pairing, &a.relay).await;

    // Both wait for A's admin, which is where the pairing stands.
    let node_b = b.node(b_id).await;
    assert_eq!(node_b["status"], "pair_requested", "{node_b}");
    assert_eq!(ott_row(&a, a_id).await, (false, true), "A's OTT is used");
    let confirmed = a.cli(&["node", "confirm", &a_id.to_string()]).await;
    assert_eq!(confirmed["status"], "paired", "{confirmed}");
    assert_consistently_paired(&a, a_id, &b, b_id).await;
    a_sync_works(&a, a_id, &b, b_id).await;
}

/// B sent its handshake request and A accepted it: both `pair_requested`.
async fn requested(scratch: &Path) -> (Side, Side, u64, u64) {
    let (a, b, a_id, b_id) = invited(scratch).await;
    let paired = b.cli(&["node", "pair", &b_id.to_string()]).await;
    assert_eq!(paired["status"], "pair_requested", "{paired}");
    (a, b, a_id, b_id)
}

#[tokio::test]
async fn an_inviter_killed_before_its_completion_arrives_confirms_again_after_restart() {
    let scratch = tempfile::tempdir().unwrap();
    let (mut a, b, a_id, b_id) = requested(scratch.path()).await;
    let confirm_a = ["node", "confirm", &a_id.to_string()];
    let confirming = held(&a, &confirm_a, &b.relay, "/handshake-complete", Fault::Hold).await;
    killed_and_restarted(&mut a, confirming, &b.relay).await;

    let node_a = a.node(a_id).await;
    assert_eq!(node_a["status"], "pair_requested", "{node_a}");
    let node_b = b.node(b_id).await;
    assert_eq!(node_b["status"], "pair_requested", "{node_b}");
    assert_eq!(
        live_tokens(&a, a_id).await.len(),
        1,
        "A's token of the lost completion"
    );
    let confirmed = a.cli(&["node", "confirm", &a_id.to_string()]).await;
    assert_eq!(confirmed["status"], "paired", "{confirmed}");
    assert_consistently_paired(&a, a_id, &b, b_id).await;
    a_sync_works(&a, a_id, &b, b_id).await;
}

#[tokio::test]
async fn an_inviter_killed_after_the_invitee_completed_is_told_to_re_pair_and_can() {
    let scratch = tempfile::tempdir().unwrap();
    let (mut a, b, a_id, b_id) = requested(scratch.path()).await;
    // B completes the pairing with A's token; A dies before it hears so.
    let confirm_a = ["node", "confirm", &a_id.to_string()];
    let confirming = held(
        &a,
        &confirm_a,
        &b.relay,
        "/handshake-complete",
        Fault::HoldReply,
    )
    .await;
    let node_b = b.node(b_id).await;
    assert_eq!(node_b["status"], "paired", "{node_b}");
    killed_and_restarted(&mut a, confirming, &b.relay).await;

    // A still waits for its completion to be answered; its admin retries.
    // A completion is single use (federation-security C3), so B refuses
    // the second one and A says how to get out: a new node URI.
    let node_a = a.node(a_id).await;
    assert_eq!(node_a["status"], "pair_requested", "{node_a}");
    let dir = a.dir.display().to_string();
    let again = run_cli(&["node", "confirm", &a_id.to_string(), "--data-dir", &dir]).await;
    assert!(!again.status.success());
    assert!(stderr(&again).contains("409"), "{}", stderr(&again));
    let node_a = a.node(a_id).await;
    assert_eq!(node_a["status"], "failed", "{node_a}");
    let reason = node_a["statusReason"].as_str().unwrap();
    assert!(
        reason.contains("not waiting for a handshake completion")
            && reason.contains(&format!("fedsync node uri {a_id}")),
        "{reason}"
    );
    assert_eq!(b.node(b_id).await["status"], "paired");

    // The way the reason names, through the CLI on both sides.
    let fresh = a.cli(&["node", "uri", &a_id.to_string()]).await;
    assert_eq!(fresh["status"], "pending", "{fresh}");
    let readded = b
        .cli(&["node", "add-uri", fresh["nodeUri"].as_str().unwrap()])
        .await;
    assert_eq!(readded["id"], b_id.to_string(), "the same node, re-paired");
    let paired = b.cli(&["node", "pair", &b_id.to_string()]).await;
    assert_eq!(paired["status"], "pair_requested", "{paired}");
    let confirmed = a.cli(&["node", "confirm", &a_id.to_string()]).await;
    assert_eq!(confirmed["status"], "paired", "{confirmed}");
    assert_consistently_paired(&a, a_id, &b, b_id).await;
    a_sync_works(&a, a_id, &b, b_id).await;
}

#[tokio::test]
async fn an_origin_killed_mid_sync_fails_the_run_and_the_next_one_completes_it() {
    let scratch = tempfile::tempdir().unwrap();
    let (mut a, b, a_id, b_id) = requested(scratch.path()).await;
    a.cli(&["node", "confirm", &a_id.to_string()]).await;
    share_account(&a.handle, &b.handle, a_id, b_id).await;
    let file = account_file(scratch.path(), 2_000);
    a.cli(&["record", "import", "Account", file.to_str().unwrap()])
        .await;

    // B pulls 100 a page; A dies while B waits for page 8.
    a.relay.fault("/records/", 8, Fault::Hold);
    let syncing = b.cli_in_background(&["sync", "now", &b_id.to_string(), "--kind", "data"]);
    held_in_time(&a.relay, "page 8").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(&b.db(), "SELECT COUNT(*) FROM local_records").await < 700 {
        assert!(Instant::now() < deadline, "page 7 never landed");
        tokio::task::yield_now().await;
    }
    let started = Instant::now();
    a.kill9().await;
    // The held request now goes on to a dead origin.
    a.relay.release();
    let status = tokio::time::timeout(Duration::from_secs(60), {
        let mut syncing = syncing;
        async move { syncing.wait().await }
    })
    .await
    .expect("the sync ends once its origin is gone")
    .unwrap();
    assert!(!status.success(), "the CLI reports the failed run");
    let failed_after = started.elapsed();

    // B stays up, keeps what it received, and says what happened.
    let runs = b.cli(&["sync", "runs", &b_id.to_string()]).await;
    let run = &runs[0];
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(
        (&run["created"], &run["pages"]),
        (&json!(700), &json!(7)),
        "{run}"
    );
    assert!(!run["error"].as_str().unwrap().is_empty(), "{run}");
    assert_eq!(
        scalar(&b.db(), "SELECT COUNT(*) FROM local_records").await,
        700
    );
    let node_b = b.node(b_id).await;
    assert_eq!(node_b["dataStatus"], "failed", "{node_b}");

    // A comes back on the same data dir; the next pull goes on from page 8.
    a.restart().await;
    let runs = b
        .cli(&["sync", "now", &b_id.to_string(), "--kind", "data"])
        .await;
    assert_eq!(
        (&runs[0]["status"], &runs[0]["created"], &runs[0]["skipped"]),
        (&json!("succeeded"), &json!(1_300), &json!(0)),
        "{runs}"
    );
    assert_eq!(
        by_name(&records(&b.handle, "Contact", false).await, "FullName"),
        expected_on_b(&records(&a.handle, "Account", false).await)
    );
    assert_eq!(
        scalar(&b.db(), "SELECT COUNT(*) FROM record_links").await,
        2_000
    );
    eprintln!(
        "origin killed at 700/2000 records; the run failed {failed_after:?} after the kill: {}",
        run["error"]
    );
}
