//! Secret hygiene (federation-security 4.7 L1/L2): two real daemons pair at
//! trace-level logging; afterwards no OTT, no issued token, no held token, no
//! admin token and no key appears in any log line, CLI error, audit event,
//! admin answer or database file.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::common::{fedsync_bin, run_cli, stderr, stdout};

struct ChildDaemon {
    child: Child,
    logs: Arc<Mutex<Vec<u8>>>,
    reader: tokio::task::JoinHandle<()>,
    _socket_dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ChildDaemon {
    async fn start(data_dir: &Path, label: &str) -> (ChildDaemon, String) {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}/federation");
        let socket_dir = tempfile::tempdir().unwrap();
        let socket_path = socket_dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        let mut child = Command::new(fedsync_bin())
            .args([
                "serve",
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--federation-listen",
                &format!("127.0.0.1:{port}"),
                "--admin-listen",
                "127.0.0.1:0",
                "--public-url",
                &base,
                "--label",
                label,
                "--allow-insecure-peers",
                "--log-format",
                "json",
            ])
            .env("RUST_LOG", "trace")
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("FEDSYNC_TEST_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Drain stderr as it comes, so trace output never blocks the daemon.
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = logs.clone();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 65536];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let ready = tokio::task::spawn_blocking(move || {
            socket
                .set_read_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            let mut buf = [0u8; 4096];
            let n = socket.recv(&mut buf).expect("READY in time");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
        .await
        .unwrap();
        assert!(ready.contains("READY=1"), "{ready}");
        let daemon = ChildDaemon {
            child,
            logs,
            reader,
            _socket_dir: socket_dir,
        };
        (daemon, base)
    }

    async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success());
        self.reader.await.unwrap();
        let logs = self.logs.lock().unwrap().clone();
        String::from_utf8_lossy(&logs).into_owned()
    }
}

async fn cli(args: &[&str], dir: &Path, transcript: &mut String) -> serde_json::Value {
    let mut all = args.to_vec();
    let dir = dir.display().to_string();
    all.extend(["--data-dir", &dir, "--json"]);
    let out = run_cli(&all).await;
    assert!(out.status.success(), "{all:?}: {}", stderr(&out));
    transcript.push_str(&stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[tokio::test]
async fn no_secret_reaches_logs_errors_audit_or_the_database() {
    let root = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (root.path().join("a"), root.path().join("b"));
    let (a, a_base) = ChildDaemon::start(&a_dir, "nodeA").await;
    let (b, b_base) = ChildDaemon::start(&b_dir, "nodeB").await;
    let mut cli_errors = String::new();
    let mut answers = String::new();

    let created = cli(
        &["node", "create", "--base-url", &b_base, "--name", "B"],
        &a_dir,
        &mut cli_errors,
    )
    .await;
    let a_id = created["id"].as_str().unwrap().to_owned();
    let uri = created["nodeUri"].as_str().unwrap().to_owned();
    let ott = fedsync::pairing::parse_node_uri(&uri, true)
        .unwrap()
        .token
        .to_string();
    let added = cli(&["node", "add-uri", &uri], &b_dir, &mut cli_errors).await;
    let b_id = added["id"].as_str().unwrap().to_owned();
    answers.push_str(&added.to_string());
    answers.push_str(
        &cli(&["node", "pair", &b_id], &b_dir, &mut cli_errors)
            .await
            .to_string(),
    );
    // A wrong OTT and a forged bearer too, so refusals are logged and audited.
    let refused = crate::common::http()
        .post(format!("{a_base}/nodes/{a_id}/handshake"))
        .json(&serde_json::json!({ "pairToken": "W".repeat(32), "authToken": "x", "sharedNodeID": a_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    answers.push_str(
        &cli(&["node", "confirm", &a_id], &a_dir, &mut cli_errors)
            .await
            .to_string(),
    );
    for (dir, id) in [(&a_dir, &a_id), (&b_dir, &b_id)] {
        answers.push_str(
            &cli(&["node", "check", id], dir, &mut cli_errors)
                .await
                .to_string(),
        );
        answers.push_str(
            &cli(&["node", "show", id], dir, &mut cli_errors)
                .await
                .to_string(),
        );
        answers.push_str(&cli(&["audit"], dir, &mut cli_errors).await.to_string());
    }

    let a_logs = a.stop().await;
    let b_logs = b.stop().await;
    assert!(
        a_logs.contains("\"level\":\"TRACE\""),
        "the daemons really logged at trace level"
    );
    assert!(
        a_logs.contains("handshake request accepted"),
        "A logged the handshake"
    );

    // Every secret of the run.
    let read = |path: PathBuf| std::fs::read_to_string(path).unwrap().trim().to_owned();
    let mut secrets = vec![("OTT", ott)];
    for dir in [&a_dir, &b_dir] {
        secrets.push(("admin token", read(dir.join("admin.token"))));
        secrets.push(("signing key", read(dir.join("keys/signing.key"))));
        secrets.push(("encryption key", read(dir.join("keys/encryption.key"))));
    }
    let held = |dir: &Path, id: &str| {
        let dir = dir.to_owned();
        let id: u64 = id.parse().unwrap();
        async move {
            let daemon = crate::common::TestDaemon::detached(dir);
            daemon.held_token(id).await.unwrap()
        }
    };
    let token_of_b = held(&a_dir, &a_id).await;
    let token_of_a = held(&b_dir, &b_id).await;
    secrets.push(("token B issued", token_of_b));
    secrets.push(("token A issued", token_of_a));

    let mut databases = Vec::new();
    for dir in [&a_dir, &b_dir] {
        for file in ["fedsync.db", "fedsync.db-wal"] {
            if let Ok(bytes) = std::fs::read(dir.join(file)) {
                databases.push(bytes);
            }
        }
    }
    assert!(!databases.is_empty());
    for (what, secret) in &secrets {
        assert!(secret.len() >= 20, "{what} is a real secret");
        for (place, text) in [
            ("A's logs", &a_logs),
            ("B's logs", &b_logs),
            ("CLI errors", &cli_errors),
            ("admin answers", &answers),
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "the {what} leaked into {place}"
            );
        }
        for bytes in &databases {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the {what} is in a database file in plaintext"
            );
        }
    }
}
