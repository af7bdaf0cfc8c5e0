//! The benchmark driver behind `bench/run` (a Cargo bench target with no
//! harness). It starts real `fedsync serve` processes (the release binary)
//! on loopback with fresh SQLite storage, drives them over gRPC like an
//! admin would, and reports every figure beside a baseline measured in the
//! same run (`bench/baseline.py`), as a ratio. See bench/README.md.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fedsync::admin::proto::v1;
use serde_json::{Value, json};
use tonic::transport::Channel;

type Nodes = v1::node_service_client::NodeServiceClient<Channel>;
type Modules = v1::module_service_client::ModuleServiceClient<Channel>;
type Exposures = v1::exposure_service_client::ExposureServiceClient<Channel>;
type Mappings = v1::mapping_service_client::MappingServiceClient<Channel>;
type SyncClient = v1::sync_service_client::SyncServiceClient<Channel>;
type Records = v1::record_service_client::RecordServiceClient<Channel>;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

mod live;

struct Args {
    quick: bool,
    /// Only the flood scenario.
    flood_only: bool,
    /// Only the live-changes round (`--live`).
    live_only: bool,
    /// Only the many-peers round (`--many-peers`).
    many_peers_only: bool,
    /// Only the initial sync at N and the incremental one (`--incremental`).
    incremental_only: bool,
    records: u64,
    peers: u64,
    out: Option<PathBuf>,
    /// Extra `FEDSYNC_*` settings for every daemon (`--daemon-env K=V`).
    daemon_env: Vec<(String, String)>,
}

fn args() -> Result<Args> {
    let mut args = Args {
        quick: false,
        flood_only: false,
        live_only: false,
        many_peers_only: false,
        incremental_only: false,
        records: 0,
        peers: 0,
        out: None,
        daemon_env: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            // `cargo bench` passes this to every bench binary.
            "--bench" => {}
            "--quick" => args.quick = true,
            "--flood" => args.flood_only = true,
            "--many-peers" => args.many_peers_only = true,
            "--live" => args.live_only = true,
            "--incremental" => args.incremental_only = true,
            "--records" => args.records = it.next().ok_or("--records needs a number")?.parse()?,
            "--peers" => args.peers = it.next().ok_or("--peers needs a number")?.parse()?,
            "--out" => args.out = Some(it.next().ok_or("--out needs a file")?.into()),
            "--daemon-env" => {
                let pair = it.next().ok_or("--daemon-env needs KEY=VALUE")?;
                let (key, value) = pair
                    .split_once('=')
                    .filter(|(k, _)| k.starts_with("FEDSYNC_"))
                    .ok_or("--daemon-env takes FEDSYNC_KEY=VALUE")?;
                args.daemon_env.push((key.to_owned(), value.to_owned()));
            }
            "-h" | "--help" => {
                println!(
                    "bench/run [--quick] [--flood] [--records N] [--peers P] [--out FILE]\n\
                     \n\
                     --quick      N = 20,000 and 50 peers (under two minutes)\n\
                     --flood      only the flood scenario (one pair floods, another's latency is measured)\n\
                     --many-peers only the many-peers round (to profile GetSyncStatus)\n\
                     --live       only the live-changes round (20 destinations, 180 fake peers, 100 changes)\n\
                     --incremental only the initial sync at N and the incremental sync after it\n\
                     --records N  records of the initial sync (default 200,000); growth runs N and 5N\n\
                     --peers P    peers of the many-peers round (default 200)\n\
                     --out FILE   also write the figures as JSON\n\
                     --daemon-env FEDSYNC_KEY=VALUE  a setting for every daemon (repeatable)"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (see --help)").into()),
        }
    }
    if args.records == 0 {
        args.records = if args.quick { 20_000 } else { 200_000 };
    }
    if args.peers == 0 {
        args.peers = if args.quick { 50 } else { 200 };
    }
    Ok(args)
}

/// Settings every daemon gets on top of the bench's own (`--daemon-env`).
static DAEMON_ENV: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// One `fedsync serve` child process with its own data directory.
struct Daemon {
    child: tokio::process::Child,
    pid: u32,
    federation: SocketAddr,
    admin: SocketAddr,
    token: String,
    channel: Channel,
    _dir: tempfile::TempDir,
}

/// A new connection to an admin listener.
async fn admin_channel(admin: SocketAddr) -> Result<Channel> {
    Ok(Channel::from_shared(format!("http://{admin}"))?
        .connect()
        .await?)
}

impl Daemon {
    async fn start(label: &str) -> Result<Daemon> {
        Daemon::start_with(label, &[]).await
    }

    /// `start` with extra `FEDSYNC_*` settings for this daemon.
    async fn start_with(label: &str, env: &[(&str, &str)]) -> Result<Daemon> {
        let mut dir = tempfile::tempdir()?;
        // FEDSYNC_BENCH_KEEP=1 keeps each daemon's directory (its database
        // and daemon.log) for profiling; the path is printed.
        if std::env::var_os("FEDSYNC_BENCH_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("  {label}: {}", dir.path().display());
        }
        let federation = free_port()?;
        let admin = free_port()?;
        let mut command = tokio::process::Command::new(repo().join("target/release/fedsync"));
        command.arg("serve");
        for (key, _) in std::env::vars() {
            if key.starts_with("FEDSYNC_") {
                command.env_remove(key);
            }
        }
        command
            .env("FEDSYNC_DATA_DIR", dir.path())
            .env("FEDSYNC_FEDERATION__LISTEN", federation.to_string())
            .env("FEDSYNC_ADMIN__LISTEN", admin.to_string())
            .env(
                "FEDSYNC_FEDERATION__PUBLIC_URL",
                format!("http://{federation}/federation"),
            )
            .env("FEDSYNC_FEDERATION__LABEL", label)
            .env("FEDSYNC_FEDERATION__ALLOW_INSECURE_PEERS", "true")
            // Only the syncs the bench triggers run.
            .env("FEDSYNC_SYNC__STRUCTURE_EVERY", "24h")
            .env("FEDSYNC_SYNC__DATA_EVERY", "24h")
            .env("FEDSYNC_LOG__LEVEL", "warn")
            .envs(DAEMON_ENV.get().cloned().unwrap_or_default())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("daemon.log"))?)
            .kill_on_drop(true);
        let child = command.spawn()?;
        let pid = child.id().ok_or("the daemon exited at once")?;
        let http = reqwest::Client::builder().no_proxy().build()?;
        let ready = format!("http://{federation}/readyz");
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(&ready).send().await
                && r.status().is_success()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("{label} was not ready within 60 s").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let token = std::fs::read_to_string(dir.path().join("admin.token"))?
            .trim()
            .to_owned();
        let channel = admin_channel(admin).await?;
        Ok(Daemon {
            child,
            pid,
            federation,
            admin,
            token,
            channel,
            _dir: dir,
        })
    }

    /// A new connection to the admin listener.
    fn base_url(&self) -> String {
        format!("http://{}/federation", self.federation)
    }

    fn req<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
    }

    fn nodes(&self) -> Nodes {
        Nodes::new(self.channel.clone())
    }
    fn modules(&self) -> Modules {
        Modules::new(self.channel.clone())
    }
    fn exposures(&self) -> Exposures {
        Exposures::new(self.channel.clone())
    }
    fn mappings(&self) -> Mappings {
        Mappings::new(self.channel.clone())
    }
    fn sync(&self) -> SyncClient {
        SyncClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }
    fn records(&self) -> Records {
        Records::new(self.channel.clone())
    }

    /// Peak resident memory so far (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Runs a sync of `kind` now and returns its runs (the call returns
    /// when they finished).
    async fn sync_now(&self, node: u64, kind: &str) -> Result<Vec<v1::SyncRun>> {
        let response = self
            .sync()
            .sync_now(self.req(v1::SyncNowRequest {
                node_id: node,
                kind: kind.into(),
                no_wait: false,
            }))
            .await?
            .into_inner();
        for run in &response.runs {
            if run.status != "succeeded" {
                return Err(format!("a {kind} run of node {node} failed: {}", run.error).into());
            }
        }
        Ok(response.runs)
    }
}

/// `a` invites `b`; returns (node on a, node on b).
async fn pair(a: &Daemon, b: &Daemon) -> Result<(u64, u64)> {
    let created = a
        .nodes()
        .create_node(a.req(v1::CreateNodeRequest {
            name: "B".into(),
            base_url: b.base_url(),
            contact: String::new(),
        }))
        .await?
        .into_inner();
    let a_id = created.node.ok_or("no node")?.id;
    let added = b
        .nodes()
        .add_node_from_uri(b.req(v1::AddNodeFromUriRequest {
            node_uri: created.node_uri,
        }))
        .await?
        .into_inner();
    let b_id = added.node.ok_or("no node")?.id;
    b.nodes().pair_node(b.req(v1::NodeRef { id: b_id })).await?;
    a.nodes()
        .confirm_node(a.req(v1::NodeRef { id: a_id }))
        .await?;
    Ok((a_id, b_id))
}

/// The module of the benchmark: 10 fields of mixed kinds.
const FIELDS: [(&str, &str, bool); 10] = [
    ("name", "String", false),
    ("email", "Email", false),
    ("phone", "String", false),
    ("website", "Url", false),
    ("age", "Number", false),
    ("score", "Number", false),
    ("vip", "Bool", false),
    ("joined", "DateTime", false),
    ("tags", "String", true),
    ("notes", "String", false),
];

/// Record `i`: about 400 bytes as JSON.
fn record(i: u64, generation: u64) -> BTreeMap<&'static str, Vec<String>> {
    let tags = ["red", "green", "blue", "amber", "violet"];
    let mut values = BTreeMap::new();
    values.insert("name", vec![format!("Person {i:07} v{generation}")]);
    values.insert("email", vec![format!("person{i}@example.org")]);
    values.insert("phone", vec![format!("+386 1 555 {:04}", i % 10_000)]);
    values.insert("website", vec![format!("https://example.org/people/{i}")]);
    values.insert("age", vec![(18 + i % 70).to_string()]);
    values.insert("score", vec![format!("{}.{}", i % 100, i % 10)]);
    values.insert(
        "vip",
        vec![if i.is_multiple_of(7) { "1" } else { "0" }.to_owned()],
    );
    values.insert(
        "joined",
        vec![format!(
            "20{:02}-{:02}-{:02}T{:02}:{:02}:00Z",
            10 + i % 15,
            1 + i % 12,
            1 + i % 28,
            i % 24,
            i % 60
        )],
    );
    values.insert(
        "tags",
        vec![
            tags[(i % 5) as usize].to_owned(),
            tags[((i / 5) % 5) as usize].to_owned(),
        ],
    );
    values.insert(
        "notes",
        vec![format!(
            "Generated for the fedsync benchmark, record {i}, generation {generation}. \
             Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."
        )],
    );
    values
}

fn wire_values(values: &BTreeMap<&'static str, Vec<String>>) -> Vec<v1::RecordValue> {
    values
        .iter()
        .map(|(name, v)| v1::RecordValue {
            name: (*name).into(),
            values: v.clone(),
            multi: *name == "tags",
        })
        .collect()
}

/// Writes the records as JSON lines (`{"id":..,"values":{..}}`) for the baseline.
fn write_jsonl(path: &Path, n: u64) -> Result<u64> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut bytes = 0;
    for i in 0..n {
        let values: serde_json::Map<String, Value> = record(i, 0)
            .into_iter()
            .map(|(k, v)| {
                let value = if k == "tags" { json!(v) } else { json!(v[0]) };
                (k.to_owned(), value)
            })
            .collect();
        let line = json!({ "id": i.to_string(), "values": values }).to_string();
        bytes += line.len() as u64;
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(bytes / n.max(1))
}

fn fields() -> Vec<v1::Field> {
    FIELDS
        .iter()
        .map(|(name, kind, multi)| v1::Field {
            name: (*name).into(),
            kind: (*kind).into(),
            label: String::new(),
            is_multi: *multi,
        })
        .collect()
}

/// A paired A and B, A exposing `people` with N records, B mapping it.
struct Pair {
    a: Daemon,
    b: Daemon,
    b_node: u64,
    import_secs: f64,
}

async fn prepared_pair(n: u64) -> Result<Pair> {
    let a = Daemon::start("A").await?;
    let b = Daemon::start("B").await?;
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

fn totals(runs: &[v1::SyncRun]) -> (u64, u64, u64) {
    runs.iter().fold((0, 0, 0), |(c, u, d), r| {
        (c + r.created, u + r.updated, d + r.deleted)
    })
}

struct Initial {
    records: u64,
    secs: f64,
    import_secs: f64,
    rss_a: f64,
    rss_b: f64,
}

impl Initial {
    fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }
}

/// The initial sync of N records; returns the pair for more scenarios.
async fn initial(n: u64) -> Result<(Initial, Pair)> {
    let pair = prepared_pair(n).await?;
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
async fn record_ids(d: &Daemon, module: &str) -> Result<Vec<u64>> {
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

struct Incremental {
    updated: u64,
    deleted: u64,
    secs: f64,
    single_secs: f64,
}

async fn incremental(pair: &Pair, n: u64) -> Result<Incremental> {
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
async fn baseline(jsonl: &Path) -> Result<Value> {
    let out = tokio::process::Command::new("python3")
        .arg(repo().join("bench/baseline.py"))
        .arg(jsonl)
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!(
            "bench/baseline.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

// ---------------------------------------------------------------------------
// Many peers: one destination paired with P fake Corteza origins, all served
// by one in-process HTTP server (the node id in the path says which).

const FAKE_TOKEN: &str = "Corteza0Pair0Token0Abcdefghij123";

fn fake_documents() -> (Value, Value) {
    let fixtures = repo().join("tests/fixtures/corteza-wire");
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(fixtures.join(name)).expect("fixture");
        serde_json::from_str::<Value>(&text).expect("fixture JSON")["response"]["body"].clone()
    };
    (
        read("051-peer-structure-nolimit.json"),
        read("100-fx-peer-records-nolimit.json"),
    )
}

/// B's tokens for the fake peers, by the peer's node id (taken from B's
/// handshake requests, as a Corteza inviter keeps them).
type Tokens = Arc<Mutex<BTreeMap<u64, String>>>;

async fn fake_corteza() -> Result<(SocketAddr, Tokens)> {
    use axum::extract::Request;
    let (structure, records) = fake_documents();
    let structure = Arc::new(structure.to_string());
    let records = Arc::new(records.to_string());
    let tokens: Tokens = Arc::default();
    let kept = tokens.clone();
    let app = axum::Router::new().fallback(move |request: Request| {
        let (structure, records, kept) = (structure.clone(), records.clone(), kept.clone());
        async move {
            let path = request.uri().path().to_owned();
            let body = if path.ends_with("/modules/exposed/") {
                structure.to_string()
            } else if path.ends_with("/records/") {
                records.to_string()
            } else {
                if path.ends_with("/handshake")
                    && let Some(id) = path
                        .trim_end_matches("/handshake")
                        .rsplit('/')
                        .next()
                        .and_then(|id| id.parse::<u64>().ok())
                    && let Ok(bytes) = axum::body::to_bytes(request.into_body(), 1 << 20).await
                    && let Ok(body) = serde_json::from_slice::<Value>(&bytes)
                    && let Some(token) = body["authToken"].as_str()
                {
                    kept.lock().unwrap().insert(id, token.to_owned());
                }
                json!({ "success": { "message": "OK" } }).to_string()
            };
            ([("content-type", "application/json")], body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, tokens))
}

struct ManyPeers {
    peers: u64,
    round_secs: f64,
    status_calls: usize,
    p50_ms: f64,
    p99_ms: f64,
    idle_p50_ms: f64,
    rss_b: f64,
}

async fn many_peers(p: u64) -> Result<ManyPeers> {
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

/// Pairs B with `count` Corteza nodes answered by the fake at `fake`, with
/// Corteza ids from `first_id` on: B sends its handshakes, then each
/// "Corteza" completes. Returns (B's node id, Corteza id) of each.
async fn pair_fakes(
    b: &Daemon,
    http: &reqwest::Client,
    fake: impl std::fmt::Display,
    tokens: &Tokens,
    first_id: u64,
    count: u64,
) -> Result<Vec<(u64, u64)>> {
    let mut nodes = Vec::new();
    for i in 0..count {
        let corteza_id = first_id + i;
        let added = b
            .nodes()
            .add_node_from_uri(b.req(v1::AddNodeFromUriRequest {
                node_uri: format!("http://{corteza_id}:{FAKE_TOKEN}@{fake}/federation?name=c{i}"),
            }))
            .await?
            .into_inner();
        let id = added.node.ok_or("no node")?.id;
        b.nodes().pair_node(b.req(v1::NodeRef { id })).await?;
        nodes.push((id, corteza_id));
    }
    complete_pairing(b, http, &nodes, tokens).await?;
    Ok(nodes)
}

/// The second half of the handshake as a Corteza inviter does it: POST
/// `handshake-complete` to B with B's token for the peer (read from B's
/// handshake request, which the fake answered) and a token for B.
async fn complete_pairing(
    b: &Daemon,
    http: &reqwest::Client,
    nodes: &[(u64, u64)],
    tokens: &Tokens,
) -> Result<()> {
    for (id, corteza_id) in nodes {
        let token = tokens
            .lock()
            .unwrap()
            .get(corteza_id)
            .cloned()
            .ok_or("the fake got no handshake")?;
        let complete = http
            .post(format!(
                "http://{}/federation/nodes/{corteza_id}/handshake-complete",
                b.federation
            ))
            .bearer_auth(&token)
            .json(&json!({ "authToken": format!("corteza-token-for-b-{id}") }))
            .send()
            .await?;
        if !complete.status().is_success() {
            return Err(format!("handshake-complete for node {id}: {}", complete.status()).into());
        }
    }
    Ok(())
}

/// Latency percentiles of one series of requests, in milliseconds.
#[derive(Clone, Copy)]
struct Latency {
    calls: usize,
    p50_ms: f64,
    p99_ms: f64,
}

fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        if ms.is_empty() {
            return f64::NAN;
        }
        ms[((ms.len() - 1) as f64 * q).round() as usize]
    };
    Latency {
        calls: ms.len(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

/// One daemon serving the same exposed module to two Corteza-style peers:
/// the victim's and the flooder's record-page URLs and tokens.
struct FloodRig {
    b: Daemon,
    victim: (String, String),
    flooder: (String, String),
}

const FLOOD_RECORDS: u64 = 2_000;
const FLOOD_TASKS: usize = 32;

async fn flood_rig(limited: bool) -> Result<FloodRig> {
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
async fn flood_phase(
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

struct Flood {
    secs: f64,
    limited_quiet: Latency,
    limited_flooded: Latency,
    limited_answers: BTreeMap<u16, u64>,
    unlimited_quiet: Latency,
    unlimited_flooded: Latency,
    unlimited_answers: BTreeMap<u16, u64>,
}

/// A flood from one pair against another pair's latency, with the per-pair
/// limit at its default and then lifted (the same-run comparison).
async fn flood(secs: f64) -> Result<Flood> {
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
const FLOOD_MARGIN: f64 = 5.0;

fn print_flood(f: &Flood) -> Value {
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

fn print_many_peers(many: &ManyPeers) {
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
    if args.incremental_only {
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

    let many = many_peers(args.peers).await?;
    print_many_peers(&many);

    let flood_figures = print_flood(&flood(flood_secs).await?);
    let flood_ok = flood_figures["within_margin"] == json!(true);
    let live_figures = live_round(args.quick).await?;
    let live_targets = live_figures["targets"].clone();
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
        "destination_rss_below_150_mib": first.rss_b < 150.0 && big.rss_b < 150.0,
        "destination_rss_within_20_percent": (big.rss_b / first.rss_b - 1.0).abs() <= 0.2,
        "incremental_under_5_percent": inc.secs < 0.05 * first.secs,
        "status_p99_under_20_ms": many.p99_ms < 20.0,
        "flood_p50_within_margin": flood_ok,
        "live_p50_under_250_ms": live_targets["p50_under_250_ms"],
        "live_p99_under_1_s": live_targets["p99_under_1_s"],
        "live_idle_silent": live_targets["idle_silent"],
    });
    println!("targets        {targets}");
    report.insert("targets".into(), targets);
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&Value::Object(report))?)?;
        println!("written to {}", out.display());
    }
    Ok(())
}
