//! The benchmark driver behind `bench/run` (a Cargo bench target with no
//! harness). It starts real `fedsync serve` processes (the release binary)
//! on loopback with fresh SQLite storage (fresh PostgreSQL databases in the
//! PostgreSQL round), drives them over gRPC like an admin would, and reports
//! every figure beside a baseline measured in the same run
//! (`bench/baseline.py`), as a ratio. See bench/README.md.

use std::time::Duration;

use serde_json::{Value, json};

mod args;
mod daemon;
mod data;
mod embedded;
mod fake_peers;
mod flood;
mod live;
mod many_peers;
mod postgres;
mod report;
mod sidecar;

use args::{Args, args};
use daemon::{DAEMON_ENV, Daemon, pair};
use data::write_jsonl;
use embedded::{Initial, baseline, incremental, initial, sqlite_floor};
use flood::{flood, print_flood};
use many_peers::{many_peers, print_many_peers};
use report::{Latency, latency};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> Result<()> {
    let args = args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

/// The live-changes round: 20 destinations and 180 fake peers, 100
/// changes, 30 s idle (`--quick`: 5, 45, 30 and 10 s).
async fn live_round(quick: bool) -> Result<Value> {
    let (dests, fakes, changes, idle) = if quick {
        (5, 45, 30, 10)
    } else {
        (20, 180, 100, 30)
    };
    let live = live::live(dests, fakes, changes, Duration::from_secs(idle)).await?;
    let mut figures = live.print();
    figures["targets"] = json!({
        "p50_under_250_ms": live.latency.p50_ms < 250.0,
        "p99_under_1_s": live.latency.p99_ms < 1000.0,
        "idle_silent": live.idle_requests == 0,
    });
    Ok(figures)
}

async fn run(args: Args) -> Result<()> {
    let _ = DAEMON_ENV.set(args.daemon_env.clone());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n = args.records;
    let scratch = tempfile::tempdir()?;
    let mut report = serde_json::Map::new();
    let flood_secs = if args.quick { 5.0 } else { 10.0 };
    if args.flood_only {
        println!("fedsync bench: flood only, {flood_secs} s a phase");
        let figures = print_flood(&flood(flood_secs).await?);
        report.insert("flood".into(), figures);
        if let Some(out) = &args.out {
            std::fs::write(out, serde_json::to_string_pretty(&Value::Object(report))?)?;
            println!("written to {}", out.display());
        }
        return Ok(());
    }
    if args.many_peers_only {
        println!("fedsync bench: many peers only, {} peers", args.peers);
        print_many_peers(&many_peers(args.peers).await?);
        return Ok(());
    }
    if args.sidecar_only {
        println!(
            "fedsync bench: sidecar only, {} records each way",
            args.sidecar_records
        );
        let figures = sidecar::sidecar(args.quick, args.sidecar_records).await?;
        println!("targets        {}", figures["targets"]);
        report.insert("targets".into(), figures["targets"].clone());
        report.insert("sidecar".into(), figures);
        if let Some(out) = &args.out {
            std::fs::write(out, serde_json::to_string_pretty(&Value::Object(report))?)?;
            println!("written to {}", out.display());
        }
        return Ok(());
    }
    if args.postgres_only {
        let server = &args.postgres_url;
        println!(
            "fedsync bench: PostgreSQL only, N = {n} ({}), server {}",
            if args.quick { "quick" } else { "full" },
            postgres::shown(server)
        );
        postgres::answers(server)
            .await
            .map_err(|e| format!("no PostgreSQL server at {}: {e}", postgres::shown(server)))?;
        let jsonl = scratch.path().join("records.jsonl");
        write_jsonl(&jsonl, n)?;
        let figures = postgres::postgres(server, n, &jsonl).await?;
        println!("targets        {}", figures["targets"]);
        report.insert("targets".into(), figures["targets"].clone());
        report.insert("postgres".into(), figures);
        if let Some(out) = &args.out {
            std::fs::write(out, serde_json::to_string_pretty(&Value::Object(report))?)?;
            println!("written to {}", out.display());
        }
        return Ok(());
    }
    if args.live_only {
        println!("fedsync bench: live changes only");
        let figures = live_round(args.quick).await?;
        report.insert("live".into(), figures);
        if let Some(out) = &args.out {
            std::fs::write(out, serde_json::to_string_pretty(&Value::Object(report))?)?;
            println!("written to {}", out.display());
        }
        return Ok(());
    }
    println!(
        "fedsync bench: N = {n}, 5N = {}, peers = {} ({})",
        5 * n,
        args.peers,
        if args.quick { "quick" } else { "full" }
    );

    // Baseline and initial sync at N.
    let jsonl = scratch.path().join("records.jsonl");
    let bytes_per_record = write_jsonl(&jsonl, n)?;
    let base = baseline(&jsonl).await?;
    let base_rate = base["records_per_sec"].as_f64().ok_or("baseline output")?;
    let (first, pair) = initial(n).await?;
    let ratio = first.rate() / base_rate;
    println!(
        "initial sync   {:>9} records  {:>8.2} s  {:>9.0} rec/s   baseline {:>9.0} rec/s   ratio {:.3}",
        n,
        first.secs,
        first.rate(),
        base_rate,
        ratio
    );
    let inc = incremental(&pair, n).await?;
    println!(
        "incremental    {} updated, {} deleted  {:.3} s ({:.1}% of the initial)   single change {:.1} ms",
        inc.updated,
        inc.deleted,
        inc.secs,
        100.0 * inc.secs / first.secs,
        inc.single_secs * 1000.0
    );
    let rss_after_inc = (pair.a.peak_rss_mib(), pair.b.peak_rss_mib());
    pair.a.stop().await;
    pair.b.stop().await;
    let floor = sqlite_floor(n).await?;
    println!(
        "incremental floor  SQLite alone {:.3} s ({:.1}% of the initial; bench/sqlite_floor.py, median of 3)",
        floor,
        100.0 * floor / first.secs
    );
    if args.incremental_only {
        println!(
            "rss            peak after the initial sync A {:.1} MiB, B {:.1} MiB",
            first.rss_a, first.rss_b
        );
        return Ok(());
    }

    // Growth: 5N with fresh daemons.
    let (big, big_pair) = initial(5 * n).await?;
    big_pair.a.stop().await;
    big_pair.b.stop().await;
    let per = |i: &Initial| i.secs / i.records as f64 * 1e6;
    println!(
        "growth         N: {:.1} us/record, peak RSS A {:.1} MiB, B {:.1} MiB   5N: {:.1} us/record, peak RSS A {:.1} MiB, B {:.1} MiB",
        per(&first),
        first.rss_a,
        first.rss_b,
        per(&big),
        big.rss_a,
        big.rss_b
    );

    // PostgreSQL at N when a server answers at the URL (issue 30).
    let server = &args.postgres_url;
    let postgres_figures = match postgres::answers(server).await {
        Ok(()) => postgres::postgres(server, n, &jsonl).await?,
        Err(e) => {
            let why = format!("no server at {}: {e}", postgres::shown(server));
            println!("postgres: skipped, {why}");
            json!({ "skipped": why, "targets": { "postgres_initial_at_least_0_5_of_baseline": null } })
        }
    };
    let postgres_target =
        postgres_figures["targets"]["postgres_initial_at_least_0_5_of_baseline"].clone();
    report.insert("postgres".into(), postgres_figures);

    let many = many_peers(args.peers).await?;
    print_many_peers(&many);

    let flood_figures = print_flood(&flood(flood_secs).await?);
    let flood_ok = flood_figures["within_margin"] == json!(true);
    let live_figures = live_round(args.quick).await?;
    let live_targets = live_figures["targets"].clone();
    let sidecar_figures = sidecar::sidecar(args.quick, args.sidecar_records).await?;
    let sidecar_targets = sidecar_figures["targets"].clone();
    report.insert("sidecar".into(), sidecar_figures);
    report.insert("live".into(), live_figures);
    report.insert("flood".into(), flood_figures);
    report.insert("records".into(), json!(n));
    report.insert("bytes_per_record".into(), json!(bytes_per_record));
    report.insert("baseline".into(), base.clone());
    report.insert("ratio".into(), json!(ratio));
    report.insert(
        "initial".into(),
        json!({
            "records": n, "seconds": first.secs, "records_per_sec": first.rate(),
            "import_seconds": first.import_secs,
        }),
    );
    report.insert(
        "growth".into(),
        json!([
            { "records": n, "us_per_record": per(&first), "rss_a_mib": first.rss_a, "rss_b_mib": first.rss_b },
            { "records": 5 * n, "us_per_record": per(&big), "rss_a_mib": big.rss_a, "rss_b_mib": big.rss_b },
        ]),
    );
    report.insert(
        "rss".into(),
        json!({
            "destination_n_mib": first.rss_b, "destination_5n_mib": big.rss_b,
            "origin_n_mib": first.rss_a, "origin_5n_mib": big.rss_a,
            "destination_growth": big.rss_b / first.rss_b,
            "after_incremental_mib": { "a": rss_after_inc.0, "b": rss_after_inc.1 },
            "many_peers_mib": many.rss_b,
        }),
    );
    report.insert(
        "incremental".into(),
        json!({
            "updated": inc.updated, "deleted": inc.deleted, "seconds": inc.secs,
            "fraction_of_initial": inc.secs / first.secs,
            "single_change_ms": inc.single_secs * 1000.0,
            "sqlite_floor_seconds": floor,
            "sqlite_floor_fraction_of_initial": floor / first.secs,
        }),
    );
    report.insert(
        "many_peers".into(),
        json!({
            "peers": many.peers, "round_seconds": many.round_secs,
            "status_calls": many.status_calls,
            "status_p50_ms": many.p50_ms, "status_p99_ms": many.p99_ms,
            "status_idle_p50_ms": many.idle_p50_ms,
        }),
    );
    let targets = json!({
        "initial_at_least_third_of_baseline": ratio >= 1.0 / 3.0,
        "initial_at_least_0_7_of_baseline": ratio >= 0.7,
        "destination_rss_below_150_mib": first.rss_b < 150.0 && big.rss_b < 150.0,
        "destination_rss_within_20_percent": (big.rss_b / first.rss_b - 1.0).abs() <= 0.2,
        "incremental_under_5_percent": inc.secs < 0.05 * first.secs,
        "incremental_under_2_percent": inc.secs < 0.02 * first.secs,
        "status_p99_under_20_ms": many.p99_ms < 20.0,
        "flood_p50_within_margin": flood_ok,
        "live_p50_under_250_ms": live_targets["p50_under_250_ms"],
        "live_p99_under_1_s": live_targets["p99_under_1_s"],
        "live_idle_silent": live_targets["idle_silent"],
        "sidecar_write_at_least_0_8_of_plain": sidecar_targets["write_at_least_0_8_of_plain"],
        "sidecar_read_at_least_0_8_of_plain": sidecar_targets["read_at_least_0_8_of_plain"],
        "sidecar_user_p50_within_3x_idle": sidecar_targets["user_p50_within_3x_idle"],
        "postgres_initial_at_least_0_5_of_baseline": postgres_target,
    });
    println!("targets        {targets}");
    report.insert("targets".into(), targets);
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&Value::Object(report))?)?;
        println!("written to {}", out.display());
    }
    Ok(())
}
