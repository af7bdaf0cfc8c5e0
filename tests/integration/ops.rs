//! What an operator runs into on day one: the systemd unit verifies, the
//! daemon talks to systemd over a real notify socket (READY, WATCHDOG,
//! STOPPING).

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

use crate::common::fedsync_bin;

#[test]
fn systemd_analyze_verify_accepts_the_unit_without_a_warning() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/fedsync.service"
    ))
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/fedsync serve"));
    // The credentials drop-in, applied as systemd would (its [Service] lines
    // join the unit's).
    let dropin = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/credentials.conf"
    ))
    .unwrap();
    let service_lines = dropin.split("[Service]").nth(1).unwrap();
    assert!(service_lines.contains("LoadCredential=signing.key:"));
    let with_dropin = unit.replace("[Install]", &format!("{service_lines}\n[Install]"));
    // Verified as installed, with the binary where the unit expects it.
    for text in [&unit, &with_dropin] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fedsync.service");
        std::fs::write(&path, text.replace("/usr/bin/fedsync", fedsync_bin())).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze is installed (it comes with systemd)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.trim().is_empty(),
            "systemd-analyze has remarks: {stderr}"
        );
    }
}

#[tokio::test]
async fn the_daemon_tells_systemd_ready_pings_the_watchdog_and_says_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut command = tokio::process::Command::new(fedsync_bin());
    command
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--federation-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("NOTIFY_SOCKET", &socket_path)
        // A 400 ms watchdog: pings every 200 ms.
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("FEDSYNC_") {
            command.env_remove(key);
        }
    }
    let mut child = command.spawn().unwrap();
    let pid = child.id().unwrap();
    let messages = tokio::task::spawn_blocking(move || {
        let mut seen: Vec<String> = Vec::new();
        let mut buf = [0u8; 4096];
        // READY, then two watchdog pings.
        while seen
            .iter()
            .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
            .count()
            < 2
        {
            let n = socket.recv(&mut buf).expect("the daemon keeps talking");
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let stop = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(stop.success());
        loop {
            let n = socket.recv(&mut buf).expect("the daemon says it stops");
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let stopping = message.lines().any(|l| l == "STOPPING=1");
            seen.push(message);
            if stopping {
                return seen;
            }
        }
    })
    .await
    .unwrap();
    let ready = messages
        .iter()
        .position(|m| m.lines().any(|l| l == "READY=1"))
        .expect("READY was sent");
    let first_ping = messages
        .iter()
        .position(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .unwrap();
    assert!(ready < first_ping, "READY comes first: {messages:?}");
    assert!(
        messages[ready].contains("STATUS=") && messages[ready].contains("federation="),
        "{messages:?}"
    );
    let status = child.wait().await.unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
}

#[tokio::test]
async fn version_names_the_git_revision_and_completions_are_valid_bash() {
    let out = crate::common::run_cli(&["--version"]).await;
    assert!(out.status.success());
    let version = crate::common::stdout(&out);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert!(
        version.starts_with(&format!("fedsync {} ({head}", env!("CARGO_PKG_VERSION"))),
        "{version} vs HEAD {head}"
    );

    let out = crate::common::run_cli(&["completions", "bash"]).await;
    assert!(out.status.success());
    let script = crate::common::stdout(&out);
    for word in ["_fedsync", "serve", "node", "pair", "--follow"] {
        assert!(script.contains(word), "no `{word}` in the script");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fedsync.bash");
    std::fs::write(&path, &script).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[tokio::test]
async fn admin_tokens_are_listed_revoked_at_once_and_named_in_the_audit_log() {
    use crate::common::{cli_json, http, run_cli, spawn_node, stdout};
    let mut a = spawn_node("A").await;
    let dir = a.data_dir.display().to_string();
    let minted = run_cli(&["token", "admin", "--name", "ops-bot", "--data-dir", &dir]).await;
    assert!(minted.status.success());
    let bot = stdout(&minted).trim().to_owned();
    let minted = run_cli(&[
        "token",
        "admin",
        "--name",
        "dashboard",
        "--readonly",
        "--ttl",
        "never",
        "--data-dir",
        &dir,
    ])
    .await;
    let dashboard = stdout(&minted).trim().to_owned();
    let listed = cli_json(&a, &["token", "list"]).await;
    let by_name = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no token {name}: {listed}"))
            .clone()
    };
    assert_eq!(by_name("ops-bot")["kind"], "admin");
    assert_eq!(by_name("ops-bot")["state"], "active");
    assert_eq!(by_name("dashboard")["kind"], "readonly");
    assert_eq!(by_name("dashboard")["expiresAt"], serde_json::Value::Null);
    assert!(
        !listed.to_string().contains(&bot),
        "a list never shows a token"
    );

    // What ops-bot does is audited under its name.
    let created = http()
        .post(a.admin_url("/federation/nodes/"))
        .bearer_auth(&bot)
        .json(&serde_json::json!({"baseURL": "https://b.example.com/federation", "name": "B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let audit = a.audit().await;
    let event = audit.iter().find(|e| e.event == "node.created").unwrap();
    assert_eq!(event.actor, "ops-bot");
    assert_eq!(
        event.token_id.map(|t| t.0.to_string()),
        by_name("ops-bot")["id"].as_str().map(str::to_owned)
    );

    // Revoked: refused from the next request, in the list as revoked.
    let id = by_name("dashboard")["id"].as_str().unwrap().to_owned();
    let revoked = cli_json(&a, &["token", "revoke", &id]).await;
    assert_eq!(revoked["state"], "revoked");
    let refused = http()
        .get(a.admin_url("/federation/nodes/"))
        .bearer_auth(&dashboard)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(
        a.audit()
            .await
            .iter()
            .any(|e| e.event == "admin_token.revoked" && e.detail.contains("dashboard"))
    );
    let unknown = run_cli(&["token", "revoke", "12345", "--data-dir", &dir]).await;
    assert!(!unknown.status.success());
    assert!(
        crate::common::stderr(&unknown).contains("no admin token has the id 12345"),
        "{}",
        crate::common::stderr(&unknown)
    );
    a.stop().await;
}

#[tokio::test]
async fn the_demo_pairs_shares_and_syncs_then_leaves_nothing_behind() {
    let out = crate::common::run_cli(&["demo", "--records", "300"]).await;
    let text = crate::common::stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        crate::common::stderr(&out)
    );
    for line in [
        "the nodes are paired",
        "A imports 300 sample contacts",
        "B pulls the records: 1 page, 300 created",
        "A has 300 contacts, B has 300 people",
        "now lives in Maribor",
        "is gone",
        "A has 299 contacts, B has 299 people",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    let dir = text
        .lines()
        .find_map(|l| l.split("; ").nth(1)?.strip_suffix(" is removed."))
        .expect("the demo names its directory");
    assert!(dir.contains("fedsync-demo-"), "{dir}");
    assert!(!std::path::Path::new(dir).exists(), "{dir} is left behind");
}

#[tokio::test]
async fn doctor_is_all_green_on_a_healthy_pair_and_names_a_stopped_peer() {
    use crate::common::{pair, run_cli, spawn_node, stdout};
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let (a_for_b, _) = pair(&a, &b).await;
    let dir = a.data_dir.display().to_string();
    // The doctor reads the config the daemon runs with (here: its public URL).
    let config = a.data_dir.join("fedsync.toml");
    std::fs::write(
        &config,
        format!(
            "[federation]\npublic_url = \"{}\"\nallow_insecure_peers = true\n",
            a.base_url()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let args = ["doctor", "--config", &config, "--data-dir", &dir, "--json"];
    let out = run_cli(&args).await;
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(out.status.success(), "{report:#}");
    let checks: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    for check in [
        "config",
        "store",
        "migrations",
        "daemon",
        "public URL",
        "peer",
        "clock",
    ] {
        assert!(checks.contains(&check), "no `{check}` check: {report:#}");
    }
    assert!(
        report
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["status"] == "ok"),
        "{report:#}"
    );

    b.stop().await;
    let out = run_cli(&args).await;
    assert!(!out.status.success(), "a failed check is a non-zero exit");
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let peer = report
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "peer")
        .unwrap();
    assert_eq!(peer["status"], "fail", "{report:#}");
    let message = peer["message"].as_str().unwrap();
    assert!(message.contains(&format!("node {a_for_b}")), "{message}");
    assert!(
        message.contains("reach") || message.contains("refused"),
        "{message}"
    );
    assert!(!peer["hint"].as_str().unwrap().is_empty());
    // The plain report says the same in words.
    let out = run_cli(&["doctor", "--config", &config, "--data-dir", &dir]).await;
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains(&format!("node {a_for_b}"))),
        "{text}"
    );
    a.stop().await;
}

/// The JSON log lines of a child daemon with this message.
fn log_lines(log: &std::path::Path, message: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == message)
        .collect()
}

#[tokio::test]
async fn each_sync_run_is_one_log_line_with_counts_and_duration_and_failures_say_why() {
    use crate::common::{
        TestDaemon, child_log, cli_json, spawn_child_daemon, spawn_node, with_token,
    };
    use fedsync::admin::proto::v1;
    let mut a = spawn_node("A").await;
    let scratch = tempfile::tempdir().unwrap();
    let b_dir = scratch.path().join("b");
    let (mut child, b_federation) = spawn_child_daemon(&b_dir, scratch.path(), &[]).await;
    let b = TestDaemon::detached(b_dir.clone());
    let created = a
        .nodes()
        .await
        .create_node(with_token(
            v1::CreateNodeRequest {
                name: "b".into(),
                base_url: format!("http://{b_federation}/federation"),
                contact: String::new(),
            },
            &a.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let a_for_b = created.node.unwrap().id;
    let added = cli_json(&b, &["node", "add-uri", &created.node_uri]).await;
    let b_for_a = added["id"].as_str().unwrap().to_owned();
    cli_json(&b, &["node", "pair", &b_for_a]).await;
    a.nodes()
        .await
        .confirm_node(with_token(v1::NodeRef { id: a_for_b }, &a.admin_token()))
        .await
        .unwrap();
    crate::data::share_account(&a, &b, a_for_b, b_for_a.parse().unwrap()).await;
    let file = crate::data::account_file(scratch.path(), 300);
    cli_json(&a, &["record", "import", "Account", file.to_str().unwrap()]).await;
    cli_json(&b, &["sync", "now", &b_for_a, "--kind", "data"]).await;

    let log = child_log(&b_dir, scratch.path());
    let finished = log_lines(&log, "sync run finished");
    let data = finished
        .iter()
        .find(|l| l["kind"] == "data")
        .expect("the data run is logged");
    assert_eq!(data["node_id"], b_for_a.as_str());
    assert_eq!(data["created"], 300);
    assert!(data["duration_ms"].as_i64().is_some(), "{data}");
    assert!(data["pages"].as_u64() >= Some(1), "{data}");
    assert_eq!(data["level"], "INFO");
    assert!(
        finished.iter().any(|l| l["kind"] == "structure"),
        "the structure run too"
    );

    // The origin stops: the failed run is logged with why.
    a.stop().await;
    let out = crate::common::run_cli(&[
        "sync",
        "now",
        &b_for_a,
        "--kind",
        "data",
        "--data-dir",
        b_dir.to_str().unwrap(),
    ])
    .await;
    assert!(!out.status.success());
    let failed = log_lines(&log, "sync run failed");
    let line = failed.last().expect("the failed run is logged");
    assert_eq!(line["level"], "WARN");
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the peer"),
        "{line}"
    );
    child.kill().await.unwrap();
}
