//! The CLI binary against a live daemon: the `--json` convention, global
//! flags in any position, credentials, and exit codes.

use crate::common::{run_cli, spawn_daemon, stderr, stdout};

#[tokio::test]
async fn node_list_json_is_an_empty_array_with_flags_anywhere() {
    let mut daemon = spawn_daemon().await;
    let addr = daemon.admin_addr();
    let dir = daemon.data_dir.display().to_string();
    for args in [
        vec![
            "node",
            "list",
            "--admin-addr",
            &addr,
            "--data-dir",
            &dir,
            "--json",
        ],
        vec![
            "--json",
            "--admin-addr",
            &addr,
            "node",
            "list",
            "--data-dir",
            &dir,
        ],
        // The address alone comes from the data dir.
        vec!["--data-dir", &dir, "node", "list", "--json"],
    ] {
        let out = run_cli(&args).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "[]\n", "{args:?}");
        assert_eq!(stderr(&out), "", "{args:?}");
    }
    let human = run_cli(&["node", "list", "--data-dir", &dir]).await;
    assert!(human.status.success());
    assert!(stdout(&human).contains("no nodes"), "{}", stdout(&human));
    daemon.stop().await;
}

#[tokio::test]
async fn a_wrong_token_fails_clearly_with_a_non_zero_exit() {
    let mut daemon = spawn_daemon().await;
    let addr = daemon.admin_addr();
    let dir = daemon.data_dir.display().to_string();
    let out = run_cli(&[
        "node",
        "list",
        "--admin-addr",
        &addr,
        "--data-dir",
        &dir,
        "--json",
        "--token",
        "wrong",
    ])
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.starts_with("error: unauthenticated: admin token rejected"),
        "{err}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn minted_admin_tokens_work_and_print_alone() {
    let mut daemon = spawn_daemon().await;
    let addr = daemon.admin_addr();
    let dir = daemon.data_dir.display().to_string();
    let minted = run_cli(&[
        "token",
        "admin",
        "--data-dir",
        &dir,
        "--name",
        "ops@example.com",
        "--ttl",
        "1h",
    ])
    .await;
    assert!(minted.status.success(), "{}", stderr(&minted));
    let token = stdout(&minted);
    let token = token.strip_suffix('\n').expect("one line");
    assert_eq!(token.split('.').count(), 3, "a bare JWT: {token:?}");
    assert!(!token.contains(char::is_whitespace));

    let other_dir = tempfile::tempdir().unwrap();
    let other_dir = other_dir.path().display().to_string();
    // The minted token alone is enough (no local admin.token in that data dir).
    let out = run_cli(&[
        "node",
        "list",
        "--json",
        "--admin-addr",
        &addr,
        "--token",
        token,
        "--data-dir",
        &other_dir,
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "[]\n");
    daemon.stop().await;
}

#[tokio::test]
async fn exit_codes_say_what_went_wrong() {
    let mut daemon = spawn_daemon().await;
    let dir = daemon.data_dir.display().to_string();
    let missing = run_cli(&["node", "show", "523615093115650149", "--data-dir", &dir]).await;
    assert_eq!(missing.status.code(), Some(4));
    assert!(
        stderr(&missing).contains("node 523615093115650149 does not exist"),
        "{}",
        stderr(&missing)
    );

    let bad_id = run_cli(&["node", "show", "+42", "--data-dir", &dir]).await;
    assert_eq!(bad_id.status.code(), Some(1));
    assert!(
        stderr(&bad_id).contains("`+42` is not an id"),
        "{}",
        stderr(&bad_id)
    );

    let usage = run_cli(&["node", "frobnicate"]).await;
    assert_eq!(usage.status.code(), Some(2));
    daemon.stop().await;

    // Nobody listens any more.
    let down = run_cli(&["node", "list", "--data-dir", &dir]).await;
    assert_eq!(down.status.code(), Some(5), "{}", stderr(&down));
    assert!(
        stderr(&down).contains("cannot reach the admin interface"),
        "{}",
        stderr(&down)
    );

    let empty = tempfile::tempdir().unwrap();
    let no_token = run_cli(&[
        "node",
        "list",
        "--admin-addr",
        "127.0.0.1:9",
        "--data-dir",
        &empty.path().display().to_string(),
    ])
    .await;
    assert_eq!(no_token.status.code(), Some(1));
    assert!(
        stderr(&no_token).contains("no admin token"),
        "{}",
        stderr(&no_token)
    );
}

#[tokio::test]
async fn migrate_reports_steps_once() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().display().to_string();
    let first = run_cli(&["migrate", "--data-dir", &dir, "--json"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let steps: serde_json::Value = serde_json::from_str(&stdout(&first)).unwrap();
    assert_eq!(steps[0]["version"], 1);
    assert_eq!(steps[0]["description"], "initial");
    let again = run_cli(&["migrate", "--data-dir", &dir, "--json"]).await;
    assert_eq!(stdout(&again), "[]\n");
}

/// `fedsync ... | head`: a reader that went away before the output was
/// written ends the command quietly (no panic, no backtrace, status 0).
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(crate::common::fedsync_bin())
        .args(["config", "print-default"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.is_empty(), "nothing on stderr: {err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
