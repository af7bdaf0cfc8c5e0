//! Flood (issue 11): one pair floods a daemon, another pair's latency is
//! measured, with the per-pair limit at its default and lifted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fedsync::admin::proto::v1;
use serde_json::{Value, json};

use crate::Result;
use crate::daemon::Daemon;
use crate::data::{FIELDS, fields, record, wire_values};
use crate::fake_peers::{fake_corteza, pair_fakes};
use crate::report::{Latency, latency};

/// One daemon serving the same exposed module to two Corteza-style peers:
/// the victim's and the flooder's record-page URLs and tokens.
pub(crate) struct FloodRig {
    pub(crate) b: Daemon,
    pub(crate) victim: (String, String),
    pub(crate) flooder: (String, String),
}

pub(crate) const FLOOD_RECORDS: u64 = 2_000;
pub(crate) const FLOOD_TASKS: usize = 32;

pub(crate) async fn flood_rig(limited: bool) -> Result<FloodRig> {
    let (fake, tokens) = fake_corteza().await?;
    let unlimited = [
        ("FEDSYNC_FEDERATION__PEER_REQUESTS_PER_SECOND", "1000000"),
        ("FEDSYNC_FEDERATION__PEER_BURST", "1000000"),
    ];
    let b = Daemon::start_with("B", if limited { &[] } else { &unlimited }).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    b.modules()
        .create_module(b.req(v1::CreateModuleRequest {
            handle: "people".into(),
            name: "People".into(),
            fields: fields(),
        }))
        .await?;
    let rows = (0..FLOOD_RECORDS)
        .map(|i| v1::ImportRow {
            values: wire_values(&record(i, 0)),
        })
        .collect();
    b.records()
        .import_records(b.req(futures::stream::iter(vec![v1::ImportRecordsRequest {
            module: "people".into(),
            rows,
        }])))
        .await?;
    let nodes = pair_fakes(&b, &http, fake, &tokens, 700_000_000_000_000_000, 2).await?;
    let mut urls = Vec::new();
    for (id, corteza_id) in &nodes {
        b.exposures()
            .expose_module(b.req(v1::ExposeRequest {
                node_id: *id,
                module: "people".into(),
                fields: FIELDS.iter().map(|f| f.0.to_owned()).collect(),
            }))
            .await?;
        let token = tokens
            .lock()
            .unwrap()
            .get(corteza_id)
            .cloned()
            .ok_or("no token")?;
        let exposed: Value = http
            .get(format!(
                "http://{}/federation/nodes/{corteza_id}/modules/exposed/",
                b.federation
            ))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        let module = exposed["response"]["set"][0]["moduleID"]
            .as_str()
            .ok_or("no exposed module")?
            .to_owned();
        urls.push((
            format!(
                "http://{}/federation/nodes/{corteza_id}/modules/{module}/records/?limit=100",
                b.federation
            ),
            token,
        ));
    }
    let flooder = urls.pop().ok_or("no flooder")?;
    let victim = urls.pop().ok_or("no victim")?;
    Ok(FloodRig { b, victim, flooder })
}

/// The victim's latency over `secs`, asking a page every 20 ms (its normal
/// pace, under its own limit), while `FLOOD_TASKS` tasks of the flooder ask as fast as they can
/// when `flood` is set. Returns the victim's latency and the flooder's
/// answers by status.
pub(crate) async fn flood_phase(
    rig: &FloodRig,
    secs: f64,
    flood: bool,
) -> Result<(Latency, BTreeMap<u16, u64>)> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let mut flooders = Vec::new();
    if flood {
        for _ in 0..FLOOD_TASKS {
            let http = reqwest::Client::builder().no_proxy().build()?;
            let (url, token) = rig.flooder.clone();
            let statuses = statuses.clone();
            flooders.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let status = match http.get(&url).bearer_auth(&token).send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let _ = r.bytes().await;
                            status
                        }
                        Err(_) => 0,
                    };
                    *statuses.lock().unwrap().entry(status).or_default() += 1;
                }
            }));
        }
    }
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ms = Vec::new();
    while Instant::now() < deadline {
        ticker.tick().await;
        let started = Instant::now();
        let response = http
            .get(&rig.victim.0)
            .bearer_auth(&rig.victim.1)
            .send()
            .await?;
        let status = response.status();
        response.bytes().await?;
        if !status.is_success() {
            return Err(format!("the victim was refused: {status}").into());
        }
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    for f in flooders {
        f.await?;
    }
    let counts = statuses.lock().unwrap().clone();
    Ok((latency(ms), counts))
}

pub(crate) struct Flood {
    pub(crate) secs: f64,
    pub(crate) limited_quiet: Latency,
    pub(crate) limited_flooded: Latency,
    pub(crate) limited_answers: BTreeMap<u16, u64>,
    pub(crate) unlimited_quiet: Latency,
    pub(crate) unlimited_flooded: Latency,
    pub(crate) unlimited_answers: BTreeMap<u16, u64>,
}

/// A flood from one pair against another pair's latency, with the per-pair
/// limit at its default and then lifted (the same-run comparison).
pub(crate) async fn flood(secs: f64) -> Result<Flood> {
    let rig = flood_rig(true).await?;
    let (limited_quiet, _) = flood_phase(&rig, secs, false).await?;
    let (limited_flooded, limited_answers) = flood_phase(&rig, secs, true).await?;
    rig.b.stop().await;
    let rig = flood_rig(false).await?;
    let (unlimited_quiet, _) = flood_phase(&rig, secs, false).await?;
    let (unlimited_flooded, unlimited_answers) = flood_phase(&rig, secs, true).await?;
    rig.b.stop().await;
    Ok(Flood {
        secs,
        limited_quiet,
        limited_flooded,
        limited_answers,
        unlimited_quiet,
        unlimited_flooded,
        unlimited_answers,
    })
}

/// The most a flood from one pair may raise another pair's median latency
/// (on this 2-core machine the flooder's own client shares the CPU).
pub(crate) const FLOOD_MARGIN: f64 = 5.0;

pub(crate) fn print_flood(f: &Flood) -> Value {
    let ratio = |flooded: Latency, quiet: Latency| flooded.p99_ms / quiet.p99_ms;
    let median = |flooded: Latency, quiet: Latency| flooded.p50_ms / quiet.p50_ms;
    let answers = |a: &BTreeMap<u16, u64>| {
        a.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (label, quiet, flooded, counts) in [
        (
            "limited  ",
            f.limited_quiet,
            f.limited_flooded,
            &f.limited_answers,
        ),
        (
            "unlimited",
            f.unlimited_quiet,
            f.unlimited_flooded,
            &f.unlimited_answers,
        ),
    ] {
        println!(
            "flood {label}  victim p50 {:.2} -> {:.2} ms (x{:.2}), p99 {:.2} -> {:.2} ms (x{:.2}, {} calls); flooder answers {{{}}} in {:.0} s",
            quiet.p50_ms,
            flooded.p50_ms,
            median(flooded, quiet),
            quiet.p99_ms,
            flooded.p99_ms,
            ratio(flooded, quiet),
            flooded.calls,
            answers(counts),
            f.secs
        );
    }
    let series = |l: Latency| json!({ "calls": l.calls, "p50_ms": l.p50_ms, "p99_ms": l.p99_ms });
    json!({
        "seconds_per_phase": f.secs,
        "flood_tasks": FLOOD_TASKS,
        "margin": FLOOD_MARGIN,
        "limited": {
            "quiet": series(f.limited_quiet), "flooded": series(f.limited_flooded),
            "p50_ratio": median(f.limited_flooded, f.limited_quiet),
            "p99_ratio": ratio(f.limited_flooded, f.limited_quiet),
            "flooder_answers": f.limited_answers,
        },
        "unlimited": {
            "quiet": series(f.unlimited_quiet), "flooded": series(f.unlimited_flooded),
            "p50_ratio": median(f.unlimited_flooded, f.unlimited_quiet),
            "p99_ratio": ratio(f.unlimited_flooded, f.unlimited_quiet),
            "flooder_answers": f.unlimited_answers,
        },
        "within_margin": median(f.limited_flooded, f.limited_quiet) <= FLOOD_MARGIN,
    })
}
