//! The initial and incremental syncs between two embedded daemons, and the
//! baseline they are compared with (`bench/baseline.py`).

use std::path::Path;
use std::time::Instant;

use fedsync::admin::proto::v1;
use serde_json::Value;

use crate::Result;
use crate::daemon::{Daemon, pair, repo};
use crate::data::{FIELDS, fields, record, wire_values};

/// A paired A and B, A exposing `people` with N records, B mapping it.
pub(crate) struct Pair {
    pub(crate) a: Daemon,
    pub(crate) b: Daemon,
    pub(crate) b_node: u64,
    pub(crate) import_secs: f64,
}

/// `env` holds extra settings for A and for B (their databases).
pub(crate) async fn prepared_pair(n: u64, env: [&[(&str, &str)]; 2]) -> Result<Pair> {
    // Live changes off: with them, B pulls A's changes as soon as A tells
    // it of them, and the timed syncs below find nothing left to do.
    let quiet = ("FEDSYNC_SYNC__LIVE_CHANGES", "false");
    let [a_env, b_env] = env.map(|e| [&[quiet], e].concat());
    let a = Daemon::start_with("A", &a_env).await?;
    let b = Daemon::start_with("B", &b_env).await?;
    let (a_node, b_node) = pair(&a, &b).await?;
    a.modules()
        .create_module(a.req(v1::CreateModuleRequest {
            handle: "people".into(),
            name: "People".into(),
            fields: fields(),
        }))
        .await?;
    let started = Instant::now();
    const BATCH: u64 = 1000;
    let batches = (0..n.div_ceil(BATCH)).map(|b| v1::ImportRecordsRequest {
        module: "people".into(),
        rows: (b * BATCH..((b + 1) * BATCH).min(n))
            .map(|i| v1::ImportRow {
                values: wire_values(&record(i, 0)),
            })
            .collect(),
    });
    let imported = a
        .records()
        .import_records(a.req(futures::stream::iter(batches.collect::<Vec<_>>())))
        .await?
        .into_inner();
    if imported.imported != n {
        return Err(format!("imported {} of {n}", imported.imported).into());
    }
    let import_secs = started.elapsed().as_secs_f64();
    a.exposures()
        .expose_module(a.req(v1::ExposeRequest {
            node_id: a_node,
            module: "people".into(),
            fields: FIELDS.iter().map(|f| f.0.to_owned()).collect(),
        }))
        .await?;
    b.sync_now(b_node, "structure").await?;
    b.modules()
        .create_module(b.req(v1::CreateModuleRequest {
            handle: "people_copy".into(),
            name: "People (copy)".into(),
            fields: fields(),
        }))
        .await?;
    b.mappings()
        .set_mapping(
            b.req(v1::SetMappingRequest {
                node_id: b_node,
                shared: "people".into(),
                module: "people_copy".into(),
                fields: FIELDS
                    .iter()
                    .map(|f| v1::FieldPair {
                        origin: f.0.into(),
                        destination: f.0.into(),
                    })
                    .collect(),
            }),
        )
        .await?;
    Ok(Pair {
        a,
        b,
        b_node,
        import_secs,
    })
}

pub(crate) fn totals(runs: &[v1::SyncRun]) -> (u64, u64, u64) {
    runs.iter().fold((0, 0, 0), |(c, u, d), r| {
        (c + r.created, u + r.updated, d + r.deleted)
    })
}

pub(crate) struct Initial {
    pub(crate) records: u64,
    pub(crate) secs: f64,
    pub(crate) import_secs: f64,
    pub(crate) rss_a: f64,
    pub(crate) rss_b: f64,
}

impl Initial {
    pub(crate) fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }
}

/// The initial sync of N records; returns the pair for more scenarios.
pub(crate) async fn initial(n: u64) -> Result<(Initial, Pair)> {
    initial_with(n, [&[], &[]]).await
}

/// `initial` with extra settings for A and for B.
pub(crate) async fn initial_with(n: u64, env: [&[(&str, &str)]; 2]) -> Result<(Initial, Pair)> {
    let pair = prepared_pair(n, env).await?;
    eprintln!(
        "  initial sync of {n} records: pairs {} and {}",
        pair.a.pid, pair.b.pid
    );
    let started = Instant::now();
    let runs = pair.b.sync_now(pair.b_node, "data").await?;
    let secs = started.elapsed().as_secs_f64();
    let (created, _, _) = totals(&runs);
    if created != n {
        return Err(format!("the initial sync created {created} of {n} records").into());
    }
    Ok((
        Initial {
            records: n,
            secs,
            import_secs: pair.import_secs,
            rss_a: pair.a.peak_rss_mib(),
            rss_b: pair.b.peak_rss_mib(),
        },
        pair,
    ))
}

/// The ids of A's records, in creation order.
pub(crate) async fn record_ids(d: &Daemon, module: &str) -> Result<Vec<u64>> {
    let mut stream = d
        .records()
        .list_records(d.req(v1::ListRecordsRequest {
            module: module.into(),
            include_deleted: false,
            ..Default::default()
        }))
        .await?
        .into_inner();
    let mut ids = Vec::new();
    while let Some(record) = stream.message().await? {
        ids.push(record.id);
    }
    Ok(ids)
}

pub(crate) struct Incremental {
    pub(crate) updated: u64,
    pub(crate) deleted: u64,
    pub(crate) secs: f64,
    pub(crate) single_secs: f64,
}

pub(crate) async fn incremental(pair: &Pair, n: u64) -> Result<Incremental> {
    let ids = record_ids(&pair.a, "people").await?;
    let updates = (n / 100).max(1) as usize;
    let deletes = (n / 1000).max(1) as usize;
    // Spread over the module: every k-th record.
    let step = ids.len() / (updates + deletes);
    let chosen: Vec<u64> = ids.iter().step_by(step.max(1)).copied().collect();
    let (to_update, rest) = chosen.split_at(updates.min(chosen.len()));
    let to_delete = &rest[..deletes.min(rest.len())];
    let records = pair.a.records();
    let writes = futures::stream::iter(to_update.iter().enumerate().map(|(k, id)| {
        let mut records = records.clone();
        let request = pair.a.req(v1::WriteRecordRequest {
            module: "people".into(),
            id: *id,
            values: wire_values(&record(k as u64, 1)),
        });
        async move { records.update_record(request).await.map(|_| ()) }
    }))
    .buffer_unordered(16);
    use futures::StreamExt;
    let results: Vec<_> = writes.collect().await;
    results
        .into_iter()
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for id in to_delete {
        records
            .clone()
            .delete_record(pair.a.req(v1::RecordRef {
                module: "people".into(),
                id: *id,
            }))
            .await?;
    }
    let started = Instant::now();
    let runs = pair.b.sync_now(pair.b_node, "data").await?;
    let secs = started.elapsed().as_secs_f64();
    let (_, updated, deleted) = totals(&runs);
    if updated != to_update.len() as u64 || deleted != to_delete.len() as u64 {
        return Err(format!(
            "the incremental sync updated {updated} (expected {}) and deleted {deleted} (expected {})",
            to_update.len(),
            to_delete.len()
        )
        .into());
    }
    // One change, then a triggered sync: the latency until it is on B.
    records
        .clone()
        .update_record(pair.a.req(v1::WriteRecordRequest {
            module: "people".into(),
            id: ids[ids.len() / 2],
            values: wire_values(&record(0, 2)),
        }))
        .await?;
    let started = Instant::now();
    let runs = pair.b.sync_now(pair.b_node, "data").await?;
    let single_secs = started.elapsed().as_secs_f64();
    if totals(&runs).1 != 1 {
        return Err("the single change did not arrive".into());
    }
    Ok(Incremental {
        updated,
        deleted,
        secs,
        single_secs,
    })
}

/// What bench/baseline.py measured: the plainest copy of the same records.
pub(crate) async fn baseline(jsonl: &Path) -> Result<Value> {
    baseline_with(&[], jsonl).await
}

/// What SQLite alone takes for the incremental scenario's statements
/// (`bench/sqlite_floor.py`, median of its three rounds, in seconds): the
/// floor under the incremental sync on the embedded store.
pub(crate) async fn sqlite_floor(n: u64) -> Result<f64> {
    let scratch = tempfile::tempdir()?;
    let records = n.to_string();
    let scratch_dir = scratch.path().to_string_lossy();
    let stdout = python(
        "bench/sqlite_floor.py",
        &["--records", &records, "--json", &scratch_dir],
    )
    .await?;
    let last: Value = match String::from_utf8_lossy(&stdout).lines().last() {
        Some(line) => serde_json::from_str(line)?,
        None => return Err("bench/sqlite_floor.py printed nothing".into()),
    };
    let ms = last["median_ms"]
        .as_f64()
        .ok_or("bench/sqlite_floor.py printed no median_ms")?;
    Ok(ms / 1000.0)
}

/// bench/baseline.py with options before the records file (`--postgres URL`).
pub(crate) async fn baseline_with(options: &[&str], jsonl: &Path) -> Result<Value> {
    let jsonl = jsonl.to_string_lossy();
    let args: Vec<&str> = options.iter().copied().chain([jsonl.as_ref()]).collect();
    Ok(serde_json::from_slice(
        &python("bench/baseline.py", &args).await?,
    )?)
}

/// The standard output of one of the bench's Python scripts (`script`
/// relative to the repository); its standard error when it fails.
async fn python(script: &str, args: &[&str]) -> Result<Vec<u8>> {
    let out = tokio::process::Command::new("python3")
        .arg(repo().join(script))
        .args(args)
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!("{script} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(out.stdout)
}
