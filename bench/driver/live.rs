//! Live changes (`bench/run --live`): one origin daemon whose `Account` is
//! exposed to 20 real destination daemons and to 180 light fake fedsync
//! peers served by the driver (each takes change notices and pulls the
//! origin's pages like a destination: load on the origin). 100 single
//! changes are made on the origin; the latency of each on the real
//! destinations is the destination's commit time minus the origin's. Then
//! 30 s with nothing changing count what peers still ask for.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fedsync::admin::proto::v1;
use serde_json::{Value, json};

use super::{Daemon, Latency, Result, latency, pair};

/// One fake peer, as the driver's server and puller know it.
#[derive(Default)]
struct Fake {
    /// The origin's node id for this fake (the pair's id).
    node: u64,
    /// The exposed module the fake pulls.
    exposed: u64,
    /// The origin's token for the fake (from its handshake-complete).
    token: Option<String>,
    cursor: Option<String>,
    pulling: bool,
    again: bool,
}

#[derive(Default)]
struct Fakes {
    peers: std::sync::Mutex<Vec<Fake>>,
    notices: AtomicU64,
    pulls: AtomicU64,
    origin: std::sync::OnceLock<SocketAddr>,
}

const CAPABLE: &str = r#"{"success":{"message":"OK"},"fedsync":{"version":"bench","capabilities":["change-notices"]}}"#;

/// The fake peers' server: `/f{i}/federation/...`.
async fn fake_server(fakes: Arc<Fakes>) -> Result<SocketAddr> {
    use axum::extract::Request;
    let app = axum::Router::new().fallback(move |request: Request| {
        let fakes = fakes.clone();
        async move {
            let path = request.uri().path().to_owned();
            let index = path
                .strip_prefix("/f")
                .and_then(|rest| rest.split('/').next())
                .and_then(|i| i.parse::<usize>().ok());
            let body = match index {
                Some(i) if path.ends_with("/handshake-complete") => {
                    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
                        .await
                        .unwrap_or_default();
                    let token = serde_json::from_slice::<Value>(&bytes)
                        .ok()
                        .and_then(|b| b["authToken"].as_str().map(str::to_owned));
                    if let Some(fake) = fakes.peers.lock().unwrap().get_mut(i) {
                        fake.token = token;
                    }
                    CAPABLE.to_owned()
                }
                Some(i) if path.ends_with("/fedsync/changes") => {
                    fakes.notices.fetch_add(1, Ordering::Relaxed);
                    pull_soon(fakes.clone(), i);
                    CAPABLE.to_owned()
                }
                _ if path.ends_with("/fedsync/capabilities") => {
                    r#"{"response":{"version":"bench","capabilities":["change-notices"]}}"#
                        .to_owned()
                }
                _ if path.ends_with("/modules/exposed/") => {
                    r#"{"response":{"filter":{},"set":[]}}"#.to_owned()
                }
                _ => CAPABLE.to_owned(),
            };
            ([("content-type", "application/json")], body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// Pulls fake `i` (once more after a pull in progress, like a job).
fn pull_soon(fakes: Arc<Fakes>, i: usize) {
    {
        let mut peers = fakes.peers.lock().unwrap();
        let Some(fake) = peers.get_mut(i) else { return };
        if fake.pulling {
            fake.again = true;
            return;
        }
        fake.pulling = true;
    }
    tokio::spawn(async move {
        loop {
            let _ = pull(&fakes, i).await;
            let mut peers = fakes.peers.lock().unwrap();
            let fake = &mut peers[i];
            if !std::mem::take(&mut fake.again) {
                fake.pulling = false;
                return;
            }
        }
    });
}

/// Every page from the fake's cursor on, as a destination reads them.
async fn pull(fakes: &Fakes, i: usize) -> Result<()> {
    let origin = *fakes.origin.get().ok_or("no origin")?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    loop {
        let (node, exposed, token, cursor) = {
            let peers = fakes.peers.lock().unwrap();
            let f = &peers[i];
            (f.node, f.exposed, f.token.clone(), f.cursor.clone())
        };
        let token = token.ok_or("not paired")?;
        let mut url =
            format!("http://{origin}/federation/nodes/{node}/modules/{exposed}/records/?limit=500");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&pageCursor={}", urlencode(cursor)));
        }
        let page: Value = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        fakes.pulls.fetch_add(1, Ordering::Relaxed);
        let filter = &page["response"]["filter"];
        let next = filter["nextPage"].as_str().map(str::to_owned);
        let resume = filter["resume"].as_str().map(str::to_owned);
        let mut peers = fakes.peers.lock().unwrap();
        peers[i].cursor = next.clone().or(resume).or(cursor);
        if next.is_none() {
            return Ok(());
        }
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the live round measured.
pub struct Live {
    pub destinations: usize,
    pub fakes: usize,
    pub changes: usize,
    pub latency: Latency,
    pub idle_secs: f64,
    /// Peer requests during the idle time (the schedules are far away: 0).
    pub idle_requests: u64,
    pub notices_to_fakes: u64,
    pub fake_pulls: u64,
    pub origin_rss_mib: f64,
    pub setup_secs: f64,
}

const FIELDS: [&str; 2] = ["Name", "Score"];

fn account_fields() -> Vec<v1::Field> {
    [("Name", "String"), ("Score", "Number")]
        .iter()
        .map(|(name, kind)| v1::Field {
            name: (*name).into(),
            kind: (*kind).into(),
            label: String::new(),
            is_multi: false,
        })
        .collect()
}

fn values(name: &str, score: usize) -> Vec<v1::RecordValue> {
    vec![
        v1::RecordValue {
            name: "Name".into(),
            values: vec![name.into()],
            multi: false,
        },
        v1::RecordValue {
            name: "Score".into(),
            values: vec![score.to_string()],
            multi: false,
        },
    ]
}

async fn expose(o: &Daemon, node: u64) -> Result<u64> {
    Ok(o.exposures()
        .expose_module(o.req(v1::ExposeRequest {
            node_id: node,
            module: "Account".into(),
            fields: FIELDS.iter().map(|f| (*f).into()).collect(),
        }))
        .await?
        .into_inner()
        .id)
}

/// A real destination: paired with the origin, `Account` mapped into its
/// `Contact`.
async fn destination(o: &Daemon, label: &str) -> Result<Daemon> {
    let d = Daemon::start(label).await?;
    let (o_node, d_node) = pair(o, &d).await?;
    expose(o, o_node).await?;
    d.sync_now(d_node, "structure").await?;
    d.modules()
        .create_module(d.req(v1::CreateModuleRequest {
            handle: "Contact".into(),
            name: "Contact".into(),
            fields: account_fields(),
        }))
        .await?;
    d.mappings()
        .set_mapping(
            d.req(v1::SetMappingRequest {
                node_id: d_node,
                shared: "Account".into(),
                module: "Contact".into(),
                fields: FIELDS
                    .iter()
                    .map(|f| v1::FieldPair {
                        origin: (*f).into(),
                        destination: (*f).into(),
                    })
                    .collect(),
            }),
        )
        .await?;
    Ok(d)
}

/// A fake peer paired with the origin as a fedsync invitee that takes
/// change notices: its handshake request, the origin's approval (the
/// origin completes to the fake's server), then `Account` exposed to it.
async fn pair_fake(o: &Daemon, fakes: &Fakes, server: SocketAddr, i: usize) -> Result<()> {
    let created = o
        .nodes()
        .create_node(o.req(v1::CreateNodeRequest {
            name: format!("f{i}"),
            base_url: format!("http://{server}/f{i}/federation"),
            contact: String::new(),
        }))
        .await?
        .into_inner();
    let node = created.node.ok_or("no node")?.id;
    let uri = url::Url::parse(&created.node_uri)?;
    let ott = uri.password().ok_or("no one-time token")?.to_owned();
    let http = reqwest::Client::builder().no_proxy().build()?;
    let asked = http
        .post(format!(
            "http://{}/federation/nodes/{node}/handshake",
            o.federation
        ))
        .json(&json!({
            "pairToken": ott,
            "authToken": format!("fake-peer-token-{i:04}-0123456789abcdef"),
            "sharedNodeID": node.to_string(),
            "fedsync": { "version": "bench", "capabilities": ["change-notices"] },
        }))
        .send()
        .await?;
    if !asked.status().is_success() {
        return Err(format!("fake {i}: handshake {}", asked.status()).into());
    }
    o.nodes()
        .confirm_node(o.req(v1::NodeRef { id: node }))
        .await?;
    let exposed = expose(o, node).await?;
    let mut peers = fakes.peers.lock().unwrap();
    peers[i].node = node;
    peers[i].exposed = exposed;
    Ok(())
}

/// Each destination's `Contact` records: name -> creation time (us).
async fn arrived(d: &Daemon) -> Result<BTreeMap<String, i64>> {
    let mut stream = d
        .records()
        .list_records(d.req(v1::ListRecordsRequest {
            module: "Contact".into(),
            include_deleted: false,
            ..Default::default()
        }))
        .await?
        .into_inner();
    let mut out = BTreeMap::new();
    while let Some(record) = stream.message().await? {
        let name = record
            .values
            .iter()
            .find(|v| v.name == "Name")
            .and_then(|v| v.values.first().cloned())
            .unwrap_or_default();
        out.insert(name, micros(&record.created_at));
    }
    Ok(out)
}

fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref()
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
        .unwrap_or_default()
}

/// The federation responses a daemon has served, from its metrics.
async fn served(d: &Daemon) -> Result<u64> {
    let text = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("http://{}/metrics", d.admin))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("fedsync_http_responses_total{") && l.contains("listener=\"federation\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

pub async fn live(
    destinations: usize,
    fakes_n: usize,
    changes: usize,
    idle: Duration,
) -> Result<Live> {
    let setup = Instant::now();
    let o = Daemon::start_with(
        "O",
        &[
            ("FEDSYNC_FEDERATION__HANDSHAKE_LIMIT", "100000"),
            ("FEDSYNC_FEDERATION__HANDSHAKE_LOCKOUT_AFTER", "100000"),
        ],
    )
    .await?;
    o.modules()
        .create_module(o.req(v1::CreateModuleRequest {
            handle: "Account".into(),
            name: "Account".into(),
            fields: account_fields(),
        }))
        .await?;
    let fakes = Arc::new(Fakes::default());
    let _ = fakes.origin.set(o.federation);
    fakes
        .peers
        .lock()
        .unwrap()
        .resize_with(fakes_n, Fake::default);
    let server = fake_server(fakes.clone()).await?;
    for i in 0..fakes_n {
        pair_fake(&o, &fakes, server, i).await?;
    }
    let mut dests = Vec::new();
    for i in 0..destinations {
        dests.push(destination(&o, &format!("D{i}")).await?);
    }
    let setup_secs = setup.elapsed().as_secs_f64();

    // Single changes, one every 250 ms: the pace of a busy user, not a bulk load.
    let mut made = BTreeMap::new();
    for k in 0..changes {
        let name = format!("live-{k:04}");
        let record = o
            .records()
            .create_record(o.req(v1::WriteRecordRequest {
                module: "Account".into(),
                id: 0,
                values: values(&name, k),
            }))
            .await?
            .into_inner();
        made.insert(name, micros(&record.created_at));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut ms = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for d in &dests {
        let got = loop {
            let got = arrived(d).await?;
            if got.len() >= changes || Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        for (name, at) in &made {
            let arrived = got.get(name).ok_or(format!("{name} never arrived"))?;
            ms.push((arrived - at) as f64 / 1000.0);
        }
    }

    // Idle: nothing changes; count what peers still ask for.
    let origin_before = served(&o).await?;
    let mut dest_before = 0;
    for d in &dests {
        dest_before += served(d).await?;
    }
    let notices_before = fakes.notices.load(Ordering::Relaxed);
    tokio::time::sleep(idle).await;
    let mut dest_after = 0;
    for d in &dests {
        dest_after += served(d).await?;
    }
    let idle_requests = (served(&o).await? - origin_before)
        + (dest_after - dest_before)
        + (fakes.notices.load(Ordering::Relaxed) - notices_before);
    let live = Live {
        destinations,
        fakes: fakes_n,
        changes,
        latency: latency(ms),
        idle_secs: idle.as_secs_f64(),
        idle_requests,
        notices_to_fakes: fakes.notices.load(Ordering::Relaxed),
        fake_pulls: fakes.pulls.load(Ordering::Relaxed),
        origin_rss_mib: o.peak_rss_mib(),
        setup_secs,
    };
    for d in dests {
        d.stop().await;
    }
    o.stop().await;
    Ok(live)
}

impl Live {
    pub fn print(&self) -> Value {
        println!(
            "live changes   {} destinations + {} fake peers, {} single changes: arrival p50 {:.1} ms, p99 {:.1} ms ({} samples); idle {:.0} s: {} peer requests; origin peak RSS {:.1} MiB (setup {:.1} s; {} notices to fakes, {} fake pulls)",
            self.destinations,
            self.fakes,
            self.changes,
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.latency.calls,
            self.idle_secs,
            self.idle_requests,
            self.origin_rss_mib,
            self.setup_secs,
            self.notices_to_fakes,
            self.fake_pulls
        );
        json!({
            "destinations": self.destinations, "fake_peers": self.fakes, "changes": self.changes,
            "arrival_p50_ms": self.latency.p50_ms, "arrival_p99_ms": self.latency.p99_ms,
            "samples": self.latency.calls, "idle_seconds": self.idle_secs,
            "idle_peer_requests": self.idle_requests, "origin_rss_mib": self.origin_rss_mib,
            "notices_to_fakes": self.notices_to_fakes, "fake_pulls": self.fake_pulls,
        })
    }
}
