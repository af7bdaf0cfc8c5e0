//! Test harness: real daemons on loopback, scratch databases, the CLI binary.

#![allow(dead_code)]

pub mod pg;

use std::path::{Path, PathBuf};
use std::process::Output;

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
        .set("daemon.shutdown_grace", "5s");
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
    reqwest::Client::builder().no_proxy().build().unwrap()
}
