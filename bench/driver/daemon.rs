//! A `fedsync serve` child process (the release binary) with its own data
//! directory, driven over its admin gRPC listener, and pairing two of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fedsync::admin::proto::v1;
use tonic::transport::Channel;

use crate::Result;

pub(crate) type Nodes = v1::node_service_client::NodeServiceClient<Channel>;
pub(crate) type Modules = v1::module_service_client::ModuleServiceClient<Channel>;
pub(crate) type Exposures = v1::exposure_service_client::ExposureServiceClient<Channel>;
pub(crate) type Mappings = v1::mapping_service_client::MappingServiceClient<Channel>;
pub(crate) type SyncClient = v1::sync_service_client::SyncServiceClient<Channel>;
pub(crate) type Records = v1::record_service_client::RecordServiceClient<Channel>;

/// Settings every daemon gets on top of the bench's own (`--daemon-env`).
pub(crate) static DAEMON_ENV: std::sync::OnceLock<Vec<(String, String)>> =
    std::sync::OnceLock::new();

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn free_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// One `fedsync serve` child process with its own data directory.
pub(crate) struct Daemon {
    pub(crate) child: tokio::process::Child,
    pub(crate) pid: u32,
    pub(crate) federation: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) token: String,
    pub(crate) channel: Channel,
    pub(crate) _dir: tempfile::TempDir,
}

/// A new connection to an admin listener.
pub(crate) async fn admin_channel(admin: SocketAddr) -> Result<Channel> {
    Ok(Channel::from_shared(format!("http://{admin}"))?
        .connect()
        .await?)
}

impl Daemon {
    pub(crate) async fn start(label: &str) -> Result<Daemon> {
        Daemon::start_with(label, &[]).await
    }

    /// `start` with extra `FEDSYNC_*` settings for this daemon.
    pub(crate) async fn start_with(label: &str, env: &[(&str, &str)]) -> Result<Daemon> {
        let mut dir = tempfile::tempdir()?;
        // FEDSYNC_BENCH_KEEP=1 keeps each daemon's directory (its database
        // and daemon.log) for profiling; the path is printed.
        if std::env::var_os("FEDSYNC_BENCH_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("  {label}: {}", dir.path().display());
        }
        let federation = free_port()?;
        let admin = free_port()?;
        // FEDSYNC_BENCH_BIN runs another build (an older commit's, to
        // compare two binaries in one session with the same driver).
        let bin = std::env::var_os("FEDSYNC_BENCH_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| repo().join("target/release/fedsync"));
        let mut command = tokio::process::Command::new(bin);
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
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}/federation", self.federation)
    }

    pub(crate) fn req<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
    }

    pub(crate) fn nodes(&self) -> Nodes {
        Nodes::new(self.channel.clone())
    }
    pub(crate) fn modules(&self) -> Modules {
        Modules::new(self.channel.clone())
    }
    pub(crate) fn exposures(&self) -> Exposures {
        Exposures::new(self.channel.clone())
    }
    pub(crate) fn mappings(&self) -> Mappings {
        Mappings::new(self.channel.clone())
    }
    pub(crate) fn sync(&self) -> SyncClient {
        SyncClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }
    pub(crate) fn records(&self) -> Records {
        Records::new(self.channel.clone())
    }

    /// Peak resident memory so far (VmHWM), in MiB.
    pub(crate) fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Runs a sync of `kind` now and returns its runs (the call returns
    /// when they finished).
    pub(crate) async fn sync_now(&self, node: u64, kind: &str) -> Result<Vec<v1::SyncRun>> {
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
pub(crate) async fn pair(a: &Daemon, b: &Daemon) -> Result<(u64, u64)> {
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
