//! The PostgreSQL round (issue 30): the initial and the incremental sync of
//! `embedded.rs` with each daemon on a database of its own, beside a
//! same-run PostgreSQL baseline (`bench/baseline.py --postgres`: the same
//! HTTP server and JSON lines, streamed into `COPY ... FROM STDIN` through
//! `psql`). The bench creates every database (`fedsync_bench_<pid>_<n>`)
//! and drops it when the round ends, fails or is interrupted, unless
//! `FEDSYNC_BENCH_KEEP` is set (then their names are printed).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::Result;
use crate::embedded::{baseline_with, incremental, initial_with};

/// The databases this process created and has not dropped yet, with the
/// server each is on.
static CREATED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// `psql` on the server's own database (as the URL says), one statement.
async fn psql(server: &str, sql: &str) -> Result<String> {
    let out = tokio::process::Command::new("psql")
        .args([server, "-XqAt", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "5")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.split_whitespace().collect::<Vec<_>>().join(" ").into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether a PostgreSQL server answers at `server` (the error if not).
pub(crate) async fn answers(server: &str) -> Result<()> {
    psql(server, "SELECT 1").await.map(drop)
}

/// `server` without its password, to print.
pub(crate) fn shown(server: &str) -> String {
    match url::Url::parse(server) {
        Ok(mut url) => {
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// A fresh database on `server`; returns its name and URL.
async fn create(server: &str) -> Result<(String, String)> {
    let name = format!(
        "fedsync_bench_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    if std::env::var_os("FEDSYNC_BENCH_KEEP").is_some() {
        eprintln!("  database {name} (kept)");
    } else {
        CREATED
            .lock()
            .unwrap()
            .push((server.to_owned(), name.clone()));
    }
    psql(server, &format!("CREATE DATABASE {name}")).await?;
    let mut url = url::Url::parse(server)?;
    url.set_path(&format!("/{name}"));
    Ok((name, url.to_string()))
}

/// Drops every database not dropped yet (`WITH (FORCE)`: a daemon killed
/// on an error may not have closed its connections yet). Synchronous, so
/// that it can run in `Drop`.
fn drop_all() {
    let created = std::mem::take(&mut *CREATED.lock().unwrap_or_else(|e| e.into_inner()));
    for (server, name) in created {
        let dropped = std::process::Command::new("psql")
            .args([&server, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .env("PGCONNECT_TIMEOUT", "5")
            .status();
        if !matches!(dropped, Ok(s) if s.success()) {
            eprintln!(
                "postgres: could not drop database {name} on {}",
                shown(&server)
            );
        }
    }
}

/// Drops the databases when the round ends, however it ends.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        drop_all();
    }
}

/// The round: baseline, initial sync and incremental sync at N. Ctrl-C
/// ends it (its daemons killed, its databases dropped) with an error.
pub(crate) async fn postgres(server: &str, n: u64, jsonl: &Path) -> Result<Value> {
    let _cleanup = Cleanup;
    let result = tokio::select! {
        result = round(server, n, jsonl) => result,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    };
    // Listening for Ctrl-C took SIGINT's default away: give it back.
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
    result
}

async fn round(server: &str, n: u64, jsonl: &Path) -> Result<Value> {
    let (_, base_db) = create(server).await?;
    let base = baseline_with(&["--postgres", &base_db], jsonl).await?;
    drop_all();
    let base_rate = base["records_per_sec"].as_f64().ok_or("baseline output")?;

    let ((_, a_db), (b_name, b_db)) = (create(server).await?, create(server).await?);
    let env = |db| [("FEDSYNC_DATABASE__URL", db)];
    let (a_env, b_env) = (env(a_db.as_str()), env(b_db.as_str()));
    let (first, pair) = initial_with(n, [&a_env, &b_env]).await?;
    let ratio = first.rate() / base_rate;
    println!(
        "postgres       {:>9} records  {:>8.2} s  {:>9.0} rec/s   baseline {:>9.0} rec/s   ratio {:.3}",
        n,
        first.secs,
        first.rate(),
        base_rate,
        ratio
    );
    let size = psql(server, &format!("SELECT pg_database_size('{b_name}')")).await?;
    let b_database_mib = size.parse::<f64>()? / (1 << 20) as f64;
    let inc = incremental(&pair, n).await?;
    println!(
        "postgres inc   {} updated, {} deleted  {:.3} s ({:.1}% of the initial)   single change {:.1} ms",
        inc.updated,
        inc.deleted,
        inc.secs,
        100.0 * inc.secs / first.secs,
        inc.single_secs * 1000.0
    );
    let rss_after_inc = (pair.a.peak_rss_mib(), pair.b.peak_rss_mib());
    println!(
        "postgres rss   after the initial A {:.1} MiB, B {:.1} MiB; after the incremental A {:.1} MiB, B {:.1} MiB; B's database {:.0} MiB",
        first.rss_a, first.rss_b, rss_after_inc.0, rss_after_inc.1, b_database_mib
    );
    pair.a.stop().await;
    pair.b.stop().await;
    // Let the daemons' connections close before their databases go.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(json!({
        "server": shown(server),
        "records": n,
        "baseline": base,
        "ratio": ratio,
        "initial": {
            "records": n, "seconds": first.secs, "records_per_sec": first.rate(),
            "import_seconds": first.import_secs,
        },
        "incremental": {
            "updated": inc.updated, "deleted": inc.deleted, "seconds": inc.secs,
            "fraction_of_initial": inc.secs / first.secs,
            "single_change_ms": inc.single_secs * 1000.0,
        },
        "rss": {
            "origin_mib": first.rss_a, "destination_mib": first.rss_b,
            "after_incremental_mib": { "a": rss_after_inc.0, "b": rss_after_inc.1 },
        },
        "destination_database_mib": b_database_mib,
        "targets": { "postgres_initial_at_least_0_5_of_baseline": ratio >= 0.5 },
    }))
}
