//! The store goes away mid-run: a destination on PostgreSQL pulls 2,000
//! records; PostgreSQL stops (`pg_ctl stop -m immediate`) while a page is on
//! its way. The daemon stays up, says it is not ready, the job fails
//! retriably, and once PostgreSQL is back the sync completes with every
//! record exactly once, and the run the outage cut short is closed.
//!
//! The PostgreSQL is a private cluster this test starts itself (`initdb` on
//! a free port, its socket in a temp dir, run as the `postgres` user since
//! initdb refuses root), never the shared server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::common::relay::{Fault, Relay};
use crate::common::{cli_json, http, pair, run_cli, spawn_node_with, stderr};
use crate::data::{account_file, by_name, expected_on_b, records, share_account};

/// A PostgreSQL cluster of this test's own, stopped when dropped.
struct PrivateCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

/// The directory of `initdb` on PATH, or `None`.
fn postgres_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/lib/postgresql/15/bin")])
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

/// Runs a PostgreSQL tool as the `postgres` user; it must succeed.
fn as_postgres(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join(tool))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("runuser {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        assert!(out.status.success(), "a `postgres` user exists");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

impl PrivateCluster {
    fn start(bin: PathBuf) -> PrivateCluster {
        let dir = tempfile::tempdir().unwrap();
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        let cluster = PrivateCluster {
            bin,
            data,
            port,
            _dir: dir,
        };
        cluster.pg_ctl_start();
        cluster
    }

    fn pg_ctl_start(&self) {
        let socket_dir = self.data.parent().unwrap().to_str().unwrap().to_owned();
        let options = format!(
            "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        let log = self.data.parent().unwrap().join("postgres.log");
        as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// `pg_ctl stop -m immediate`: the server is gone at once, no goodbye
    /// to the clients.
    fn stop_immediate(&self) {
        as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // Stopped even when the test failed; nothing to do if it is down.
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

async fn pg_scalar(url: &str, sql: &'static str) -> i64 {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap();
    conn.close().await.ok();
    n
}

/// (state, attempts, last_error) of the data job.
async fn data_job(url: &str) -> (String, i64, String) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let row: (String, i64, String) =
        sqlx::query_as("SELECT state, attempts, last_error FROM sync_jobs WHERE kind = 'data'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.ok();
    row
}

async fn readyz(url: &str) -> (u16, serde_json::Value) {
    let response = http().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn postgresql_stopped_mid_sync_then_back_loses_and_doubles_nothing() {
    let Some(bin) = postgres_bin() else {
        eprintln!("skipped: initdb is not installed (no private PostgreSQL cluster possible)");
        return;
    };
    let cluster = PrivateCluster::start(bin);
    let mut admin = PgConnection::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE DATABASE fedsync")
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.ok();
    let db_url = cluster.url("fedsync");

    let relay = Relay::start().await;
    let mut a = spawn_node_with("A", |o| {
        o.set("federation.public_url", relay.base_url());
    })
    .await;
    relay.forward_to(a.running().federation_addr);
    let mut b = spawn_node_with("B", |o| {
        o.set("database.url", db_url.as_str())
            .set("sync.data_page_size", 100)
            // Failed attempts come back within seconds, and a job whose
            // outcome could not be written is free again soon.
            .set("sync.retry_base", "1s")
            .set("sync.retry_cap", "2s")
            .set("sync.job_lease", "3s");
    })
    .await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    share_account(&a, &b, a_for_b, b_for_a).await;
    let scratch = tempfile::tempdir().unwrap();
    let file = account_file(scratch.path(), 2_000);
    cli_json(&a, &["record", "import", "Account", file.to_str().unwrap()]).await;

    // B pulls 100 a page; page 8 waits in the relay while PostgreSQL stops.
    relay.fault("/records/", 8, Fault::Hold);
    let b_dir = b.data_dir.display().to_string();
    let node = b_for_a.to_string();
    let sync = tokio::spawn(async move {
        run_cli(&[
            "sync",
            "now",
            &node,
            "--kind",
            "data",
            "--data-dir",
            &b_dir,
            "--json",
        ])
        .await
    });
    tokio::time::timeout(Duration::from_secs(60), relay.wait_held())
        .await
        .expect("the pull reaches page 8");
    let deadline = Instant::now() + Duration::from_secs(60);
    while pg_scalar(&db_url, "SELECT COUNT(*) FROM local_records").await < 700 {
        assert!(Instant::now() < deadline, "page 7 never landed");
        tokio::task::yield_now().await;
    }
    cluster.stop_immediate();
    let stopped_at = Instant::now();
    relay.release();

    // The attempt ends; the daemon stays up and tells it is not ready.
    let out = tokio::time::timeout(Duration::from_secs(60), sync)
        .await
        .expect("the sync ends without its store")
        .unwrap();
    let answered_after = stopped_at.elapsed();
    assert!(!out.status.success(), "the sync did not succeed");
    assert!(
        stderr(&out).contains("database unavailable"),
        "the answer names the store: {}",
        stderr(&out)
    );
    // One pool wait (the default 10 s) for the page that failed, then the
    // writes recording the end (run, audit, node state, job) give up after
    // a short deadline each instead of a pool wait each (40 s before).
    let bound = Duration::from_secs(10)
        + 4 * fedsync::sync::runs::STORE_DOWN_WRITE
        + Duration::from_secs(5);
    assert!(
        answered_after < bound,
        "sync now answered {answered_after:?} after the store stopped (bound {bound:?})"
    );
    let ready_url = b.federation_url("/readyz");
    let (status, body) = readyz(&ready_url).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reasons"][0].as_str().unwrap().starts_with("store:"),
        "{body}"
    );
    let live = http().get(b.federation_url("/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200, "the process is alive");

    // PostgreSQL comes back: ready again, and the job finishes the pull.
    cluster.pg_ctl_start();
    let down_for = stopped_at.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = readyz(&ready_url).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again: {body}");
        tokio::task::yield_now().await;
    }
    let (state, _, last_error) = data_job(&db_url).await;
    assert_ne!(
        state, "stopped",
        "a store outage never needs the admin: {last_error}"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (state, _, _) = data_job(&db_url).await;
        let n = pg_scalar(&db_url, "SELECT COUNT(*) FROM local_records").await;
        if state == "idle" && n >= 2_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pull never finished: {state}, {n} records"
        );
        tokio::task::yield_now().await;
    }
    let resumed_after = stopped_at.elapsed();
    // The job took the pull up again on its own, from page 8.
    let runs = cli_json(&b, &["sync", "runs", &b_for_a.to_string()]).await;
    assert_eq!(
        (&runs[0]["status"], &runs[0]["trigger"], &runs[0]["created"]),
        (&json!("succeeded"), &json!("schedule"), &json!(1_300)),
        "{runs}"
    );
    // The attempt the outage cut short could not record its end: the
    // daemon closes its run itself (it would say `running` until a restart).
    let deadline = Instant::now() + Duration::from_secs(30);
    let cut = loop {
        let runs = cli_json(&b, &["sync", "runs", &b_for_a.to_string()]).await;
        let manual: Vec<_> = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "data" && r["trigger"] == "manual")
            .cloned()
            .collect();
        assert_eq!(manual.len(), 1, "{runs}");
        if manual[0]["status"] != "running" {
            break manual[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the cut run still says running: {runs}"
        );
        tokio::task::yield_now().await;
    };
    assert_eq!(cut["status"], "failed", "{cut}");
    assert!(
        cut["error"]
            .as_str()
            .unwrap()
            .contains("ended without recording its outcome"),
        "{cut}"
    );
    let on_a = records(&a, "Account", false).await;
    assert_eq!(
        by_name(&records(&b, "Contact", false).await, "FullName"),
        expected_on_b(&on_a)
    );
    assert_eq!(
        pg_scalar(&db_url, "SELECT COUNT(*) FROM record_links").await,
        2_000
    );
    eprintln!(
        "sync now answered {answered_after:?} after the stop; PostgreSQL down for {down_for:?}; all 2000 records in {resumed_after:?} after the stop"
    );
    a.stop().await;
    b.stop().await;
}
