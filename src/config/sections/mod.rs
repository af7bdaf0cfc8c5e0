//! The configuration's sections: every key with its type and default
//! (`default.toml` documents the same keys; a test keeps them in step).
//!
//! The `local` section (the data plane, Corteza's included) is in
//! `local.rs`, the `notify` section and its SMTP server in `notify.rs`.

mod local;
mod notify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::Secret;
use super::values;

pub use local::{LocalConfig, LocalKind};
pub use notify::{NotifyConfig, SmtpConfig, SmtpSecurity};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub federation: FederationConfig,
    pub pairing: PairingConfig,
    pub sync: SyncConfig,
    pub admin: AdminConfig,
    pub keys: KeysConfig,
    pub local: LocalConfig,
    pub log: LogConfig,
    pub daemon: DaemonConfig,
    pub notify: NotifyConfig,
    /// What loading noticed but did not refuse (an ignored `FEDSYNC_*`
    /// variable), for the caller to report once logging is set up. Not a key.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    #[serde(deserialize_with = "values::u32_lenient")]
    pub max_connections: u32,
    #[serde(with = "values::duration")]
    pub busy_timeout: Duration,
    #[serde(with = "values::duration")]
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    pub listen: SocketAddr,
    pub public_url: String,
    pub label: String,
    #[serde(deserialize_with = "values::bool_lenient")]
    pub allow_insecure_peers: bool,
    /// Extra CA certificates (PEM) trusted for https peers; empty: none.
    pub peer_ca_file: PathBuf,
    #[serde(with = "values::duration")]
    pub peer_connect_timeout: Duration,
    #[serde(with = "values::duration")]
    pub peer_request_timeout: Duration,
    #[serde(deserialize_with = "values::u64_lenient")]
    pub peer_max_response_bytes: u64,
    /// TLS on the federation listener: a PEM certificate chain and its key
    /// (both or neither), reloaded when the files change.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Proxies (comma-separated addresses or CIDR ranges) whose
    /// `X-Forwarded-For` names the client; empty: none is trusted.
    pub trusted_proxies: String,
    /// Handshakes accepted per client address per `handshake_window`.
    #[serde(deserialize_with = "values::u32_lenient")]
    pub handshake_limit: u32,
    #[serde(with = "values::duration")]
    pub handshake_window: Duration,
    /// Refused handshakes after which an address is locked out of the
    /// handshake route, and for how long.
    #[serde(deserialize_with = "values::u32_lenient")]
    pub handshake_lockout_after: u32,
    #[serde(with = "values::duration")]
    pub handshake_lockout: Duration,
    /// Requests per second one paired peer may make, and the burst above.
    #[serde(deserialize_with = "values::u32_lenient")]
    pub peer_requests_per_second: u32,
    #[serde(deserialize_with = "values::u32_lenient")]
    pub peer_burst: u32,
    /// Requests the federation listener serves at once; past it, 503.
    #[serde(deserialize_with = "values::u32_lenient")]
    pub max_concurrent_requests: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PairingConfig {
    #[serde(with = "values::duration")]
    pub ott_ttl: Duration,
    #[serde(deserialize_with = "values::u32_lenient")]
    pub max_failed_attempts: u32,
    #[serde(with = "values::duration")]
    pub token_idle_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    #[serde(deserialize_with = "values::u32_lenient")]
    pub structure_page_size: u32,
    #[serde(deserialize_with = "values::u32_lenient")]
    pub data_page_size: u32,
    #[serde(deserialize_with = "values::bool_lenient")]
    pub reexport: bool,
    /// Default schedules: an interval (`5m`) or a cron expression.
    pub structure_every: String,
    pub data_every: String,
    #[serde(with = "values::duration")]
    pub retry_base: Duration,
    #[serde(deserialize_with = "values::u32_lenient")]
    pub retry_factor: u32,
    #[serde(with = "values::duration")]
    pub retry_cap: Duration,
    #[serde(deserialize_with = "values::u32_lenient")]
    pub max_concurrent: u32,
    #[serde(deserialize_with = "values::u32_lenient")]
    pub per_peer: u32,
    #[serde(with = "values::duration")]
    pub job_lease: Duration,
    #[serde(with = "values::duration")]
    pub history_retention: Duration,
    /// Runs kept per job, whatever their age (live changes make many).
    #[serde(deserialize_with = "values::u32_lenient")]
    pub history_runs_per_job: u32,
    /// Change notices to and from fedsync peers that take them.
    #[serde(deserialize_with = "values::bool_lenient")]
    pub live_changes: bool,
    /// Notices to one peer go at most once per window (changes meanwhile
    /// are gathered into the next).
    #[serde(with = "values::duration")]
    pub live_window: Duration,
    /// The default data schedule of peers that send change notices.
    pub live_data_every: String,
}

impl Default for SyncConfig {
    fn default() -> SyncConfig {
        SyncConfig {
            structure_page_size: 100,
            data_page_size: 500,
            reexport: false,
            structure_every: "5m".into(),
            data_every: "1m".into(),
            retry_base: Duration::from_secs(1),
            retry_factor: 2,
            retry_cap: Duration::from_secs(300),
            max_concurrent: 8,
            per_peer: 2,
            job_lease: Duration::from_secs(30),
            history_retention: Duration::from_secs(30 * 24 * 3600),
            history_runs_per_job: 1000,
            live_changes: true,
            live_window: Duration::from_millis(50),
            live_data_every: "5m".into(),
        }
    }
}

impl Default for PairingConfig {
    fn default() -> PairingConfig {
        PairingConfig {
            ott_ttl: Duration::from_secs(24 * 3600),
            max_failed_attempts: 5,
            token_idle_timeout: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// The web console's address as browsers reach it (an SSH tunnel, a
    /// TLS reverse proxy); empty: the listener's own address.
    pub public_url: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub signing_key: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key_file: Option<PathBuf>,
    pub encryption_key: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    #[serde(with = "values::duration")]
    pub shutdown_grace: Duration,
    #[serde(with = "values::duration")]
    pub instance_lease: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::new(),
            database: DatabaseConfig::default(),
            federation: FederationConfig::default(),
            pairing: PairingConfig::default(),
            sync: SyncConfig::default(),
            admin: AdminConfig::default(),
            keys: KeysConfig::default(),
            local: LocalConfig::default(),
            log: LogConfig::default(),
            daemon: DaemonConfig::default(),
            notify: NotifyConfig::default(),
            warnings: Vec::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> DatabaseConfig {
        DatabaseConfig {
            url: Secret::default(),
            url_file: None,
            max_connections: 8,
            busy_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for FederationConfig {
    fn default() -> FederationConfig {
        FederationConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8090)),
            public_url: String::new(),
            label: "fedsync".to_owned(),
            allow_insecure_peers: false,
            peer_ca_file: PathBuf::new(),
            peer_connect_timeout: Duration::from_secs(5),
            peer_request_timeout: Duration::from_secs(30),
            peer_max_response_bytes: 32 * 1024 * 1024,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            trusted_proxies: String::new(),
            handshake_limit: 10,
            handshake_window: Duration::from_secs(60),
            handshake_lockout_after: 5,
            handshake_lockout: Duration::from_secs(15 * 60),
            peer_requests_per_second: 100,
            peer_burst: 200,
            max_concurrent_requests: 64,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8091)),
            public_url: String::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
        }
    }
}

impl Default for DaemonConfig {
    fn default() -> DaemonConfig {
        DaemonConfig {
            shutdown_grace: Duration::from_secs(8),
            instance_lease: Duration::from_secs(300),
        }
    }
}
