//! Secret hygiene (federation-security 4.7 L1/L2): two real daemons pair,
//! then sync structure and data, at trace-level logging; afterwards no OTT,
//! no issued token, no held token, no admin token, no key and no database
//! password (a canary in A's PostgreSQL URL when PostgreSQL tests run)
//! appears in any log line, CLI error, audit event, admin answer or
//! database (B's SQLite file bytes, a `pg_dump` of A's database); and the
//! canary values of a field A does not expose never reach B.

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
    async fn start(
        data_dir: &Path,
        label: &str,
        database_url: Option<&str>,
    ) -> (ChildDaemon, String) {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}/federation");
        let socket_dir = tempfile::tempdir().unwrap();
        let socket_path = socket_dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        let mut command = Command::new(fedsync_bin());
        if let Some(url) = database_url {
            command.env("FEDSYNC_DATABASE__URL", url);
        }
        let mut child = command
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

/// The token this daemon holds for node `id`, decrypted from its store.
async fn held_token(dir: &Path, id: &str, database_url: Option<&str>) -> String {
    use fedsync::domain::{CredentialKind, NodeId};
    let store = fedsync::daemon::open_store(&crate::common::test_config(dir, database_url))
        .await
        .unwrap();
    let node_id = NodeId::from_u64(id.parse().unwrap()).unwrap();
    let credential = store
        .get_peer_credential(node_id, CredentialKind::AuthToken)
        .await
        .unwrap()
        .expect("a held token");
    store.close().await;
    let key_text = std::fs::read_to_string(dir.join("keys/encryption.key")).unwrap();
    let key =
        fedsync::crypto::EncryptionKey(fedsync::crypto::KeyMaterial::from_text(&key_text).unwrap());
    let context =
        fedsync::sync::pairing_flow::credential_context(node_id, CredentialKind::AuthToken);
    let plain = fedsync::crypto::secretbox::open(&key, &context, &credential.ciphertext).unwrap();
    String::from_utf8(plain.to_vec()).unwrap()
}

fn canary(what: &str) -> String {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).unwrap();
    format!("Canary{what}{}", hex::encode(nonce))
}

/// `pg_dump` of a database, or `None` when pg_dump is not installed.
fn pg_dump(url: &str) -> Option<Vec<u8>> {
    let out = match std::process::Command::new("pg_dump")
        .args(["--no-owner", "--dbname", url])
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("pg_dump: {e}"),
    };
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

#[tokio::test]
async fn no_secret_reaches_logs_errors_audit_or_the_database() {
    let root = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (root.path().join("a"), root.path().join("b"));
    // A on PostgreSQL when the tests have one, its URL carrying a canary
    // password (the server trusts loopback, so any password connects).
    let pg = crate::common::pg::TestDatabase::create().await;
    let db_password = canary("DbPassword");
    let a_db_url = pg.as_ref().map(|db| {
        let mut url = url::Url::parse(&db.url).unwrap();
        url.set_password(Some(&db_password)).unwrap();
        url.to_string()
    });
    let (a, a_base) = ChildDaemon::start(&a_dir, "nodeA", a_db_url.as_deref()).await;
    let (b, b_base) = ChildDaemon::start(&b_dir, "nodeB", None).await;
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

    // Structure and data sync: A exposes Account (Name, Score; Secret
    // stays home), B maps it to Contact and pulls records whose Secret
    // values are canaries.
    let mut steps: Vec<(&Path, Vec<String>)> = Vec::new();
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    steps.push((
        &a_dir,
        args(&[
            "module",
            "create",
            "--handle",
            "Account",
            "--field",
            "Name:String",
            "--field",
            "Score:Number",
            "--field",
            "Secret:String",
        ]),
    ));
    steps.push((
        &a_dir,
        args(&[
            "expose", "add", &a_id, "Account", "--field", "Name", "--field", "Score",
        ]),
    ));
    steps.push((&b_dir, args(&["sync", "now", &b_id, "--kind", "structure"])));
    steps.push((
        &b_dir,
        args(&[
            "module",
            "create",
            "--handle",
            "Contact",
            "--field",
            "FullName:String",
            "--field",
            "Points:Number",
        ]),
    ));
    steps.push((
        &b_dir,
        args(&[
            "map",
            "set",
            &b_id,
            "Account",
            "--to",
            "Contact",
            "--field",
            "Name=FullName",
            "--field",
            "Score=Points",
        ]),
    ));
    for (dir, step) in &steps {
        let step: Vec<&str> = step.iter().map(String::as_str).collect();
        answers.push_str(&cli(&step, dir, &mut cli_errors).await.to_string());
    }
    let field_canaries: Vec<String> = (0..50).map(|_| canary("FieldValue")).collect();
    let lines: String = field_canaries
        .iter()
        .enumerate()
        .map(|(i, secret)| {
            format!(
                "{}\n",
                serde_json::json!({ "Name": format!("n{i}"), "Score": "1", "Secret": secret })
            )
        })
        .collect();
    let import = root.path().join("accounts.jsonl");
    std::fs::write(&import, lines).unwrap();
    cli(
        &["record", "import", "Account", import.to_str().unwrap()],
        &a_dir,
        &mut cli_errors,
    )
    .await;
    let runs = cli(
        &["sync", "now", &b_id, "--kind", "data"],
        &b_dir,
        &mut cli_errors,
    )
    .await;
    // Live changes (on by default here: their notices are traced too)
    // may have brought the records before this pull did.
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
    answers.push_str(&runs.to_string());
    let on_b = cli(&["record", "list", "Contact"], &b_dir, &mut cli_errors).await;
    assert_eq!(on_b.as_array().map(Vec::len), Some(50), "{on_b}");
    answers.push_str(&on_b.to_string());
    for (dir, id) in [(&a_dir, &a_id), (&b_dir, &b_id)] {
        for command in [
            vec!["node", "check", id],
            vec!["node", "show", id],
            vec!["sync", "runs", id],
            vec!["sync", "status"],
            vec!["audit"],
        ] {
            answers.push_str(&cli(&command, dir, &mut cli_errors).await.to_string());
        }
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
    secrets.push((
        "token B issued",
        held_token(&a_dir, &a_id, a_db_url.as_deref()).await,
    ));
    secrets.push(("token A issued", held_token(&b_dir, &b_id, None).await));
    if a_db_url.is_some() {
        secrets.push(("database password", db_password.clone()));
    }

    // The databases: B's SQLite files, A's SQLite files or a dump of its
    // PostgreSQL database.
    let mut databases: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, dir) in [("A", &a_dir), ("B", &b_dir)] {
        for file in ["fedsync.db", "fedsync.db-wal"] {
            if let Ok(bytes) = std::fs::read(dir.join(file)) {
                databases.push((format!("{name}'s {file}"), bytes));
            }
        }
    }
    if let Some(db) = &pg {
        match pg_dump(&db.url) {
            Some(dump) => {
                assert!(
                    String::from_utf8_lossy(&dump).contains("issued_tokens"),
                    "the dump is of A's database"
                );
                databases.push(("a pg_dump of A's database".into(), dump));
            }
            None => eprintln!("pg_dump is not installed: A's PostgreSQL database not dumped"),
        }
    }
    assert!(databases.iter().any(|(name, _)| name.starts_with("B's")));
    let contains =
        |bytes: &[u8], secret: &str| bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
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
        for (name, bytes) in &databases {
            assert!(
                !contains(bytes, secret),
                "the {what} is in {name} in plaintext"
            );
        }
    }
    // A's unexposed field never left A: not in B's logs, B's database, or
    // what B's admin sees (A's own store holds it, as it should).
    for secret in &field_canaries {
        assert!(
            !b_logs.contains(secret.as_str()),
            "an unexposed value in B's logs"
        );
        assert!(
            !answers.contains(secret.as_str()),
            "an unexposed value in an answer"
        );
        for (name, bytes) in databases.iter().filter(|(n, _)| n.starts_with("B's")) {
            assert!(!contains(bytes, secret), "an unexposed value in {name}");
        }
    }
    if let Some(db) = pg {
        db.drop_database().await;
    }
}
