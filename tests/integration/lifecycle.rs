//! The daemon as a process: it tells systemd READY over a real NOTIFY_SOCKET,
//! and on SIGTERM it stops accepting, says STOPPING, exits 0 within 10 s and
//! leaves the database consistent.

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{fedsync_bin, http};

/// Receives one notification datagram, waiting at most `timeout`.
fn receive(socket: &UnixDatagram, timeout: Duration) -> String {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("a notification arrives in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn status_field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .and_then(|status| {
            status
                .split(' ')
                .find_map(|part| part.strip_prefix(key).and_then(|p| p.strip_prefix('=')))
        })
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_leaves_the_database_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();

    let mut child = tokio::process::Command::new(fedsync_bin())
        .args([
            "serve",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--federation-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("NOTIFY_SOCKET", &socket_path)
        .env_remove("FEDSYNC_TEST_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let ready = receive(&socket, Duration::from_secs(60));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    let federation =
        status_field(&ready, "federation").expect("status names the federation address");
    let readyz = http()
        .get(format!("http://{federation}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopping = receive(&socket, Duration::from_secs(10));
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the daemon exits within 10 s of SIGTERM")
        .unwrap();
    let mut logs = String::new();
    use tokio::io::AsyncReadExt;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}; logs:\n{logs}");
    assert!(
        logs.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "json logs:\n{logs}"
    );
    assert!(logs.contains("\"stopped\""), "{logs}");

    // The database is whole, the write-ahead log folded back, the lease given back.
    let db = data_dir.join("fedsync.db");
    let wal = data_dir.join("fedsync.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "WAL left behind"
    );
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let (live,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM instances WHERE expires_at > 0")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(live, 0, "the instance lease was released");
    pool.close().await;
}
