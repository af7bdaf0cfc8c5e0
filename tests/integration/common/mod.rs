//! Test harness: real daemons on loopback, scratch databases, the CLI binary.

#![allow(dead_code)]

pub mod browser;
pub mod fake_corteza;
pub mod fake_peer;
pub mod pg;
pub mod relay;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use fedsync::config::{Config, Overrides};
use fedsync::daemon::RunningDaemon;

/// The `fedsync` binary Cargo built for these tests.
pub fn fedsync_bin() -> &'static str {
    env!("CARGO_BIN_EXE_fedsync")
}

/// A daemon running in this process, with its own data directory.
pub struct TestDaemon {
    pub daemon: Option<RunningDaemon>,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl TestDaemon {
    /// A handle on a data directory whose daemon runs elsewhere (or not at
    /// all), for reading its store and keys.
    pub fn detached(data_dir: PathBuf) -> TestDaemon {
        TestDaemon {
            daemon: None,
            data_dir,
            _dir: None,
        }
    }

    pub fn federation_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().federation_addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().admin_addr)
    }

    pub fn admin_addr(&self) -> String {
        self.running().admin_addr.to_string()
    }

    pub fn running(&self) -> &RunningDaemon {
        self.daemon.as_ref().expect("daemon is running")
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Stops the daemon gracefully and checks it stopped cleanly.
    pub async fn stop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.stop().await.expect("daemon stops cleanly");
        }
    }
}

/// The config a test daemon uses: loopback, port 0, the given data dir.
pub fn test_config(data_dir: &Path, database_url: Option<&str>) -> Config {
    let mut overrides = Overrides::default();
    overrides
        .set("data_dir", data_dir.display().to_string())
        .set("federation.listen", "127.0.0.1:0")
        .set("admin.listen", "127.0.0.1:0")
        .set("daemon.shutdown_grace", "5s")
        // Tests send many handshakes from 127.0.0.1; the limits' own tests
        // (limits.rs) set theirs.
        .set("federation.handshake_limit", 100_000)
        .set("federation.handshake_lockout_after", 100_000);
    if let Some(url) = database_url {
        overrides.set("database.url", url);
    }
    Config::load(None, Vec::new(), &overrides).expect("test config is valid")
}

/// Starts a daemon on SQLite in a fresh temporary directory.
pub async fn spawn_daemon() -> TestDaemon {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_owned();
    let daemon = fedsync::daemon::start(test_config(&data_dir, None))
        .await
        .unwrap();
    TestDaemon {
        daemon: Some(daemon),
        data_dir,
        _dir: Some(dir),
    }
}

/// Starts a daemon with a given config (data dir owned by the caller).
pub async fn spawn_daemon_with(config: Config) -> TestDaemon {
    let data_dir = config.data_dir();
    let daemon = fedsync::daemon::start(config).await.unwrap();
    TestDaemon {
        daemon: Some(daemon),
        data_dir,
        _dir: None,
    }
}

/// Runs the CLI binary with arguments; never inherits FEDSYNC_* from the
/// test environment so the command line alone decides.
pub async fn run_cli(args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(fedsync_bin());
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("FEDSYNC_") {
            command.env_remove(key);
        }
    }
    command.output().await.expect("fedsync binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A plain HTTP client for probes and metrics.
pub fn http() -> reqwest::Client {
    fedsync::federation::client::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Starts a node on loopback whose public URL names its own federation
/// port (bound first), with insecure peers allowed (plain http, loopback).
pub async fn spawn_node(label: &str) -> TestDaemon {
    spawn_node_with(label, |_| {}).await
}

/// `spawn_node` with extra config overrides.
pub async fn spawn_node_with(label: &str, extra: impl FnOnce(&mut Overrides)) -> TestDaemon {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_owned();
    let daemon = start_node(&data_dir, label, extra).await;
    TestDaemon {
        daemon: Some(daemon),
        data_dir,
        _dir: Some(dir),
    }
}

impl TestDaemon {
    /// Starts a stopped node of `spawn_node_with` again on its data
    /// directory, on new ports, with `extra` over the test settings.
    pub async fn restart_node_with(&mut self, label: &str, extra: impl FnOnce(&mut Overrides)) {
        assert!(self.daemon.is_none(), "stop the daemon first");
        self.daemon = Some(start_node(&self.data_dir, label, extra).await);
    }
}

/// A daemon of `spawn_node_with` on `data_dir`.
async fn start_node(
    data_dir: &Path,
    label: &str,
    extra: impl FnOnce(&mut Overrides),
) -> RunningDaemon {
    let federation = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let federation_addr = federation.local_addr().unwrap();
    let mut overrides = Overrides::default();
    overrides
        .set("data_dir", data_dir.display().to_string())
        .set("federation.listen", federation_addr.to_string())
        .set("admin.listen", admin.local_addr().unwrap().to_string())
        .set(
            "federation.public_url",
            format!("http://{federation_addr}/federation"),
        )
        .set("federation.label", label)
        .set("federation.allow_insecure_peers", true)
        .set("daemon.shutdown_grace", "5s")
        .set("federation.handshake_limit", 100_000)
        .set("federation.handshake_lockout_after", 100_000)
        // Scheduled syncs and automatic retries stay out of tests that run
        // syncs by hand; tests of the scheduler set their own.
        .set("sync.structure_every", "1h")
        .set("sync.data_every", "1h")
        .set("sync.retry_base", "1h")
        .set("sync.retry_cap", "1h")
        // Polling only: the runs tests count are the ones they start.
        // Tests of live changes turn them on.
        .set("sync.live_changes", false);
    extra(&mut overrides);
    let config = Config::load(None, Vec::new(), &overrides).expect("test config is valid");
    fedsync::daemon::start_with_listeners(config, federation, admin)
        .await
        .unwrap()
}

/// A request carrying an admin token.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub type Nodes =
    fedsync::admin::proto::v1::node_service_client::NodeServiceClient<tonic::transport::Channel>;

impl TestDaemon {
    /// The federation base URL peers use.
    pub fn base_url(&self) -> String {
        self.federation_url("/federation")
    }

    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(self.admin_url(""))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn nodes(&self) -> Nodes {
        Nodes::new(self.channel().await)
    }

    /// Opens this daemon's store beside it (SQLite WAL allows it).
    pub async fn store(&self) -> std::sync::Arc<dyn fedsync::store::Store> {
        fedsync::daemon::open_store(&test_config(&self.data_dir, None))
            .await
            .unwrap()
    }

    /// A node as the admin API shows it.
    pub async fn node(&self, id: u64) -> fedsync::admin::proto::v1::Node {
        self.nodes()
            .await
            .get_node(with_token(
                fedsync::admin::proto::v1::GetNodeRequest { id },
                &self.admin_token(),
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// The token this daemon holds for node `id` (issued by the peer), decrypted.
    pub async fn held_token(&self, id: u64) -> Option<String> {
        use fedsync::domain::{CredentialKind, NodeId};
        let store = self.store().await;
        let node_id = NodeId::from_u64(id).unwrap();
        let credential = store
            .get_peer_credential(node_id, CredentialKind::AuthToken)
            .await
            .unwrap();
        store.close().await;
        let credential = credential?;
        let key_text = std::fs::read_to_string(self.data_dir.join("keys/encryption.key")).unwrap();
        let key = fedsync::crypto::EncryptionKey(
            fedsync::crypto::KeyMaterial::from_text(&key_text).unwrap(),
        );
        let context =
            fedsync::sync::pairing_flow::credential_context(node_id, CredentialKind::AuthToken);
        let plain =
            fedsync::crypto::secretbox::open(&key, &context, &credential.ciphertext).unwrap();
        Some(String::from_utf8(plain.to_vec()).unwrap())
    }

    /// The audit events of this daemon, newest first.
    pub async fn audit(&self) -> Vec<fedsync::domain::AuditEvent> {
        let store = self.store().await;
        let events = store.list_audit(&Default::default()).await.unwrap();
        store.close().await;
        events
    }
}

/// The ids of a pair made through the admin API: (node on `a`, node on `b`),
/// `a` inviting `b`. Returns also the node URI used.
pub async fn pair(a: &TestDaemon, b: &TestDaemon) -> (u64, u64) {
    use fedsync::admin::proto::v1;
    let created = a
        .nodes()
        .await
        .create_node(with_token(
            v1::CreateNodeRequest {
                name: "peer".into(),
                base_url: b.base_url(),
                contact: String::new(),
            },
            &a.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let a_id = created.node.unwrap().id;
    let added = b
        .nodes()
        .await
        .add_node_from_uri(with_token(
            v1::AddNodeFromUriRequest {
                node_uri: created.node_uri,
            },
            &b.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let b_id = added.node.unwrap().id;
    b.nodes()
        .await
        .pair_node(with_token(v1::NodeRef { id: b_id }, &b.admin_token()))
        .await
        .unwrap();
    a.nodes()
        .await
        .confirm_node(with_token(v1::NodeRef { id: a_id }, &a.admin_token()))
        .await
        .unwrap();
    (a_id, b_id)
}

/// Runs a CLI command against a daemon with `--json` and parses its output;
/// the command must succeed.
pub async fn cli_json(d: &TestDaemon, args: &[&str]) -> serde_json::Value {
    let dir = d.data_dir.display().to_string();
    let mut all = args.to_vec();
    all.extend(["--data-dir", &dir, "--json"]);
    let out = run_cli(&all).await;
    assert!(out.status.success(), "{all:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// The node ID recorded Corteza A has on itself (`../corteza-wire`).
pub const CORTEZA_A_NODE_ID: u64 = 523615093115650149;

/// A Corteza destination (`fake`) pairs with `a` the way Corteza does: its
/// handshake request as recorded, `a`'s admin confirms, `a` completes to the
/// fake. Returns (the node on `a`, the token `a` gave the fake).
pub async fn pair_corteza_destination(a: &TestDaemon, fake: &fake_peer::FakePeer) -> (u64, String) {
    use fedsync::admin::proto::v1;
    let created = a
        .nodes()
        .await
        .create_node(with_token(
            v1::CreateNodeRequest {
                name: "corteza".into(),
                base_url: fake.base_url(),
                contact: String::new(),
            },
            &a.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let a_id = created.node.unwrap().id;
    let ott = fedsync::pairing::parse_node_uri(&created.node_uri, true)
        .unwrap()
        .token
        .to_string();
    let init = http()
        .post(a.federation_url(&format!("/federation/nodes/{a_id}/handshake")))
        .json(&serde_json::json!({
            "authToken": "corteza-token-for-a",
            "pairToken": ott,
            "sharedNodeID": a_id.to_string()
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    a.nodes()
        .await
        .confirm_node(with_token(v1::NodeRef { id: a_id }, &a.admin_token()))
        .await
        .unwrap();
    let token_a = fake.requests()[0].json()["authToken"]
        .as_str()
        .unwrap()
        .to_owned();
    (a_id, token_a)
}

/// `b` pairs with a Corteza origin (`fake`, node ID `CORTEZA_A_NODE_ID`):
/// `b` sends its handshake request to the fake, then the fake completes as
/// Corteza does. Returns the node on `b`; its token for the fake is
/// `corteza-token-for-b`.
pub async fn pair_corteza_origin(b: &TestDaemon, fake: &fake_peer::FakePeer) -> u64 {
    pair_corteza_origin_as(b, fake, CORTEZA_A_NODE_ID).await
}

/// Adds a peer to `d` from its node URI (gRPC `AddNodeFromUri`); its id.
pub async fn add_node_uri(d: &TestDaemon, uri: impl Into<String>) -> u64 {
    use fedsync::admin::proto::v1;
    d.nodes()
        .await
        .add_node_from_uri(with_token(
            v1::AddNodeFromUriRequest {
                node_uri: uri.into(),
            },
            &d.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner()
        .node
        .unwrap()
        .id
}

/// `pair_corteza_origin` with the Corteza node's own ID (to pair `b` with
/// several fakes).
pub async fn pair_corteza_origin_as(b: &TestDaemon, fake: &fake_peer::FakePeer, a1: u64) -> u64 {
    use fedsync::admin::proto::v1;
    let uri = format!(
        "http://{a1}:Corteza0Pair0Token0Abcdefghij123@{}/federation?name=nodeA",
        fake.addr
    );
    let b_id = add_node_uri(b, uri).await;
    b.nodes()
        .await
        .pair_node(with_token(v1::NodeRef { id: b_id }, &b.admin_token()))
        .await
        .unwrap();
    let token_b = fake.requests()[0].json()["authToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let complete = http()
        .post(b.federation_url(&format!("/federation/nodes/{a1}/handshake-complete")))
        .bearer_auth(&token_b)
        .json(&serde_json::json!({ "authToken": "corteza-token-for-b" }))
        .send()
        .await
        .unwrap();
    assert_eq!(complete.status(), 200);
    b_id
}

/// Where `spawn_child_daemon` writes the child's log (JSON lines).
pub fn child_log(data_dir: &Path, socket_dir: &Path) -> PathBuf {
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    socket_dir.join(format!("{name}-{}.log", std::process::id()))
}

/// A daemon as a child process (so it can be killed -9), with insecure
/// peers allowed, scheduled syncs and retries an hour apart unless `env`
/// says otherwise (`FEDSYNC_*` settings). Returns it once it told READY,
/// with its federation address. Its log goes to `child_log`.
pub async fn spawn_child_daemon(
    data_dir: &Path,
    socket_dir: &Path,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    let socket_path = socket_dir.join(format!("notify-{}.sock", rand_suffix()));
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let mut command = tokio::process::Command::new(fedsync_bin());
    command
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
        .env("FEDSYNC_FEDERATION__ALLOW_INSECURE_PEERS", "true")
        .env("FEDSYNC_SYNC__DATA_EVERY", "1h")
        .env("FEDSYNC_SYNC__STRUCTURE_EVERY", "1h")
        .env("FEDSYNC_SYNC__RETRY_BASE", "1h")
        .env("FEDSYNC_SYNC__RETRY_CAP", "1h")
        .env("FEDSYNC_SYNC__LIVE_CHANGES", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(child_log(data_dir, socket_dir)).unwrap(),
        ))
        .kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("FEDSYNC_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let child = command.spawn().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        socket
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket
                .recv(&mut buf)
                .expect("the daemon tells READY in time");
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            if message.lines().any(|l| l == "READY=1") {
                return message;
            }
        }
    })
    .await
    .unwrap();
    let federation = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .and_then(|status| {
            status
                .split(' ')
                .find_map(|p| p.strip_prefix("federation="))
        })
        .expect("READY names the federation address")
        .to_owned();
    (child, federation)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}
