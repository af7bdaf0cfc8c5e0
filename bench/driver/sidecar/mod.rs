//! Sidecar (issue 27, `bench/run --sidecar`): fedsync moving records into
//! and out of a Corteza, here the fake compose API of `compose` (costs in
//! `model`), against what a plain client gets from the same fake in the
//! same run.
//!
//! 1. A plain client creates records from 1, 4 and 16 connections (its
//!    best rate is what Corteza can take) and lists a module of N records
//!    (limit 200, `pageCursor`).
//! 2. Write: an embedded daemon A with N records of 5 fields exposes them to
//!    a sidecar daemon B on the fake, which maps them onto a Corteza module;
//!    B's data sync is timed.
//! 3. Read: B exposes the fake's module of N records (made as an import
//!    makes them, 383 a second) to A, which maps them onto an embedded
//!    module; A's data sync is timed.
//!
//! Both daemons run on their default settings (the pacing of Corteza's
//! requests included). The fake counts what it serves, so requests per
//! record are Corteza's side of the bill; a user reading one record every
//! 50 ms measures what a sync costs Corteza's users, against the same user
//! with nothing syncing.

mod clients;
mod compose;
mod figures;
mod model;
mod query;
mod routes;
mod world;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use fedsync::admin::proto::v1;
use serde_json::{Value, json};

use crate::Result;
use crate::daemon::{Daemon, pair};
use crate::data::record;
use crate::embedded::totals;
use clients::{User, plain_list, plain_writes};
use compose::FakeCompose;
use figures::{Phase, Plain};

/// The records' fields (name, kind: fedsync's and Corteza's alike).
const FIELDS: [(&str, &str); 5] = [
    ("name", "String"),
    ("email", "Email"),
    ("age", "Number"),
    ("vip", "Bool"),
    ("joined", "DateTime"),
];

/// The Corteza tokens of fedsync, the plain client and the user: the fake
/// counts each one's requests apart.
const TOKEN: &str = "bench-corteza-token";
const PLAIN_TOKEN: &str = "bench-plain-token";
const USER_TOKEN: &str = "bench-user-token";
const NAMESPACE: &str = "bench";

/// Record `i`'s 5 values (`generation` makes them differ).
fn values(i: u64, generation: u64) -> BTreeMap<&'static str, Vec<String>> {
    let mut all = record(i, generation);
    all.retain(|name, _| FIELDS.iter().any(|(f, _)| f == name));
    all
}

/// As Corteza takes and gives them.
fn corteza_values(i: u64, generation: u64) -> Value {
    let values = values(i, generation);
    values
        .iter()
        .flat_map(|(name, vs)| vs.iter().map(move |v| json!({"name": name, "value": v})))
        .collect()
}

fn fields() -> Vec<v1::Field> {
    FIELDS
        .iter()
        .map(|(name, kind)| v1::Field {
            name: (*name).into(),
            kind: (*kind).into(),
            label: String::new(),
            is_multi: false,
        })
        .collect()
}

fn pairs() -> Vec<v1::FieldPair> {
    FIELDS
        .iter()
        .map(|(f, _)| v1::FieldPair {
            origin: (*f).into(),
            destination: (*f).into(),
        })
        .collect()
}

/// `origin` exposes `module` to `node`; the destination pulls the
/// structure and maps it onto a new module `to`.
async fn share(
    origin: &Daemon,
    node: u64,
    module: &str,
    dest: &Daemon,
    dest_node: u64,
    to: &str,
) -> Result<()> {
    origin
        .exposures()
        .expose_module(origin.req(v1::ExposeRequest {
            node_id: node,
            module: module.into(),
            fields: FIELDS.iter().map(|f| f.0.to_owned()).collect(),
        }))
        .await?;
    dest.sync_now(dest_node, "structure").await?;
    dest.modules()
        .create_module(dest.req(v1::CreateModuleRequest {
            handle: to.into(),
            name: to.into(),
            fields: fields(),
        }))
        .await?;
    dest.mappings()
        .set_mapping(dest.req(v1::SetMappingRequest {
            node_id: dest_node,
            shared: module.into(),
            module: to.into(),
            fields: pairs(),
        }))
        .await?;
    Ok(())
}

/// `dest`'s data sync from `node`, timed, with the fake's counts and the
/// user's latency meanwhile.
async fn timed(
    fake: &FakeCompose,
    user_url: &str,
    dest: &Daemon,
    node: u64,
    n: u64,
) -> Result<Phase> {
    let before = fake.counts("fedsync");
    let user = User::start(user_url.to_owned(), USER_TOKEN.to_owned());
    let started = Instant::now();
    let runs = dest.sync_now(node, "data").await;
    let secs = started.elapsed().as_secs_f64();
    let user = user.finish()?;
    let counts = fake.counts("fedsync").since(&before);
    let (created, _, _) = totals(&runs?);
    if created != n {
        return Err(format!("the sync created {created} of {n} records").into());
    }
    Ok(Phase {
        records: n,
        secs,
        counts,
        user,
    })
}

/// What Corteza gives a plain client: creates from 1, 4 and 16
/// connections into `plain`, and `source` (N records) listed.
async fn plain_client(
    fake: &FakeCompose,
    ns: u64,
    plain: u64,
    source: u64,
    n: u64,
    quick: bool,
) -> Result<Plain> {
    let per_level = if quick { 300 } else { 1_000 };
    let mut writes = BTreeMap::new();
    for (level, connections) in [1usize, 4, 16].into_iter().enumerate() {
        let generation = 10 + level as u64;
        let rate = plain_writes(
            &fake.records_url(ns, plain),
            PLAIN_TOKEN,
            connections,
            per_level,
            Arc::new(move |i| corteza_values(i, generation)),
        )
        .await?;
        writes.insert(connections.to_string(), rate);
    }
    let (listed, list_secs, list_requests) =
        plain_list(&fake.records_url(ns, source), PLAIN_TOKEN, 200).await?;
    if listed != n {
        return Err(format!("the plain list read {listed} of {n} records").into());
    }
    let plain = Plain {
        per_level,
        best: writes.values().copied().fold(0.0, f64::max),
        writes,
        list_rate: listed as f64 / list_secs,
        list_requests,
    };
    println!(
        "sidecar plain  creates from 1 / 4 / 16 connections {:.0} / {:.0} / {:.0} rec/s (best {:.0}); list (limit 200, pageCursor) {:.0} rec/s ({} GETs for {listed})",
        plain.writes["1"],
        plain.writes["4"],
        plain.writes["16"],
        plain.best,
        plain.list_rate,
        plain.list_requests
    );
    Ok(plain)
}

/// The round; `n` records each way (2,000 in the full run, 500 quick).
pub(crate) async fn sidecar(quick: bool, n: u64) -> Result<Value> {
    let scratch = tempfile::tempdir()?;
    let fake = FakeCompose::start(&[
        (TOKEN, "fedsync"),
        (PLAIN_TOKEN, "plain"),
        (USER_TOKEN, "user"),
    ])?;
    let ns = fake.add_namespace("Bench", NAMESPACE);
    let plain = fake.add_module(ns, "plain", &FIELDS);
    let source = fake.add_module(ns, "source", &FIELDS);
    let last = fake.seed(source, (0..n).map(|i| corteza_values(i, 0)), 383, 10);
    let user_url = format!("{}{last}", fake.records_url(ns, source));

    let plain = plain_client(&fake, ns, plain, source, n, quick).await?;

    // fedsync: A embedded, B beside the fake.
    let token_file = scratch.path().join("corteza-token");
    std::fs::write(&token_file, format!("{TOKEN}\n"))?;
    let (url, token_file) = (fake.api_url(), token_file.display().to_string());
    let sidecar_env = [
        ("FEDSYNC_LOCAL__KIND", "corteza"),
        ("FEDSYNC_LOCAL__CORTEZA_URL", url.as_str()),
        ("FEDSYNC_LOCAL__CORTEZA_TOKEN_FILE", token_file.as_str()),
        ("FEDSYNC_LOCAL__CORTEZA_NAMESPACE", NAMESPACE),
    ];
    let a = Daemon::start("A").await?;
    let b = Daemon::start_with("B", &sidecar_env).await?;
    let (a_node, b_node) = pair(&a, &b).await?;
    a.modules()
        .create_module(a.req(v1::CreateModuleRequest {
            handle: "people".into(),
            name: "People".into(),
            fields: fields(),
        }))
        .await?;
    let rows: Vec<v1::ImportRow> = (0..n)
        .map(|i| v1::ImportRow {
            values: values(i, 0)
                .into_iter()
                .map(|(name, values)| v1::RecordValue {
                    name: name.into(),
                    values,
                    multi: false,
                })
                .collect(),
        })
        .collect();
    let batches: Vec<v1::ImportRecordsRequest> = rows
        .chunks(1_000)
        .map(|rows| v1::ImportRecordsRequest {
            module: "people".into(),
            rows: rows.to_vec(),
        })
        .collect();
    a.records()
        .import_records(a.req(futures::stream::iter(batches)))
        .await?;
    share(&a, a_node, "people", &b, b_node, "people_copy").await?;
    let idle = User::idle(
        user_url.clone(),
        USER_TOKEN.to_owned(),
        if quick { 3.0 } else { 5.0 },
    )
    .await?;
    eprintln!(
        "  sidecar write of {n} records: A {} -> B {} (sidecar)",
        a.pid, b.pid
    );
    let write = timed(&fake, &user_url, &b, b_node, n).await?;
    let copy = fake
        .module_id("people_copy")
        .ok_or("no people_copy in Corteza")?;
    if fake.records(copy) != (n as usize, 0) {
        return Err(format!(
            "Corteza holds {:?} records of people_copy, not {n}",
            fake.records(copy)
        )
        .into());
    }
    share(&b, b_node, "source", &a, a_node, "source_copy").await?;
    eprintln!(
        "  sidecar read of {n} records: B {} (sidecar) -> A {}",
        b.pid, a.pid
    );
    let read = timed(&fake, &user_url, &a, a_node, n).await?;
    a.stop().await;
    b.stop().await;

    Ok(figures::report(n, &plain, &write, &read, idle))
}
