//! Many peers: one destination paired with P fake Corteza origins
//! (`fake_peers`), every node's structure and data synced at once while a
//! second admin polls `GetSyncStatus`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fedsync::admin::proto::v1;

use crate::Result;
use crate::daemon::{Daemon, SyncClient, admin_channel};
use crate::embedded::totals;
use crate::fake_peers::{fake_corteza, fake_documents, pair_fakes};

pub(crate) struct ManyPeers {
    pub(crate) peers: u64,
    pub(crate) round_secs: f64,
    pub(crate) status_calls: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) idle_p50_ms: f64,
    pub(crate) rss_b: f64,
}

pub(crate) async fn many_peers(p: u64) -> Result<ManyPeers> {
    let (fake, tokens) = fake_corteza().await?;
    let b = Daemon::start("B").await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    b.modules()
        .create_module(
            b.req(v1::CreateModuleRequest {
                handle: "person".into(),
                name: "Person".into(),
                fields: ["name:String", "email:Email", "age:Number", "vip:Bool"]
                    .iter()
                    .map(|f| {
                        let (name, kind) = f.split_once(':').unwrap();
                        v1::Field {
                            name: name.into(),
                            kind: kind.into(),
                            label: String::new(),
                            is_multi: false,
                        }
                    })
                    .chain([v1::Field {
                        name: "tags".into(),
                        kind: "String".into(),
                        label: String::new(),
                        is_multi: true,
                    }])
                    .collect(),
            }),
        )
        .await?;
    let nodes = pair_fakes(&b, &http, fake, &tokens, 600_000_000_000_000_000, p).await?;
    for (id, _) in &nodes {
        b.sync_now(*id, "structure").await?;
        b.mappings()
            .set_mapping(
                b.req(v1::SetMappingRequest {
                    node_id: *id,
                    shared: "contact_fed".into(),
                    module: "person".into(),
                    fields: ["name", "email", "age", "vip", "tags"]
                        .iter()
                        .map(|f| v1::FieldPair {
                            origin: (*f).into(),
                            destination: (*f).into(),
                        })
                        .collect(),
                }),
            )
            .await?;
    }

    // The round: every node's structure and data jobs at once, while an
    // admin polls the status of all nodes.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = {
        let done = done.clone();
        let admin = b.admin;
        let token = b.token.clone();
        // Its own thread, runtime and connection, as a second admin's CLI
        // process has: on the driver's runtime its replies would wait behind
        // the round's 200 calls, on the shared connection behind their frames.
        let (connected, is_connected) = tokio::sync::oneshot::channel();
        let probe = std::thread::spawn(move || -> Result<Vec<f64>> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let channel = admin_channel(admin).await?;
                let _ = connected.send(());
                let sync = SyncClient::new(channel);
                let mut latencies = Vec::new();
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let mut request = tonic::Request::new(v1::GetSyncStatusRequest { node_id: 0 });
                    request
                        .metadata_mut()
                        .insert("authorization", format!("Bearer {token}").parse()?);
                    let started = Instant::now();
                    if sync.clone().get_sync_status(request).await.is_ok() {
                        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(latencies)
            })
        });
        is_connected
            .await
            .map_err(|_| "the status probe could not connect")?;
        probe
    };
    let started = Instant::now();
    let round = futures::future::join_all(nodes.iter().map(|(id, _)| {
        let b = &b;
        async move {
            b.sync_now(*id, "structure").await?;
            b.sync_now(*id, "data").await
        }
    }))
    .await;
    let round_secs = started.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut latencies = probe
        .join()
        .map_err(|_| "the status probe panicked")?
        .map_err(|e| format!("the status probe: {e}"))?;
    let mut created = 0;
    for result in round {
        created += totals(&result?).0;
    }
    // Each peer serves the same recorded records: the first round creates them all.
    let per_peer = fake_documents().1["response"]["set"]
        .as_array()
        .map_or(0, |s| s.len() as u64);
    if created != per_peer * p {
        return Err(format!(
            "the round created {created} records, expected {}",
            per_peer * p
        )
        .into());
    }
    // The same calls with nothing running, for comparison.
    let mut idle = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        b.sync()
            .get_sync_status(b.req(v1::GetSyncStatusRequest { node_id: 0 }))
            .await?;
        idle.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    idle.sort_by(f64::total_cmp);
    let idle_p50_ms = idle[idle.len() / 2];
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        latencies[((latencies.len() - 1) as f64 * q).round() as usize]
    };
    let figures = ManyPeers {
        peers: p,
        round_secs,
        status_calls: latencies.len(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        idle_p50_ms,
        rss_b: b.peak_rss_mib(),
    };
    b.stop().await;
    Ok(figures)
}

pub(crate) fn print_many_peers(many: &ManyPeers) {
    println!(
        "many peers     {} peers, one round {:.2} s; GetSyncStatus p50 {:.2} ms, p99 {:.2} ms ({} calls; idle p50 {:.2} ms); peak RSS {:.1} MiB",
        many.peers,
        many.round_secs,
        many.p50_ms,
        many.p99_ms,
        many.status_calls,
        many.idle_p50_ms,
        many.rss_b
    );
}
