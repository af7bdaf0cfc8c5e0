//! Configuration: defaults < TOML file < `FEDSYNC_*` environment < flags.
//!
//! Invariant: a `Config` that loaded is valid. Every key is checked at load
//! time, unknown keys are refused with their full path and source, `*_file`
//! secrets are read at load time, and no secret is ever printed (`Secret`
//! redacts itself in `Debug` and when serialized). A `FEDSYNC_*` variable
//! that is no config key is refused when it looks like one and otherwise
//! ignored with a warning (see `environment::read`).

mod environment;
mod secret;
mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use secret::Secret;

/// The documented default configuration file, printed by
/// `fedsync config print-default`.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

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
pub struct LocalConfig {
    pub kind: LocalKind,
    /// Corteza's API base URL (the compose API is `{corteza_url}/compose/`).
    pub corteza_url: String,
    /// A Corteza API token, inline (secret).
    pub corteza_token: Secret,
    /// The same from a file, read at start and again whenever it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corteza_token_file: Option<PathBuf>,
    /// The namespace (slug or id) whose modules fedsync uses.
    pub corteza_namespace: String,
    #[serde(deserialize_with = "values::u32_lenient")]
    pub corteza_requests_per_second: u32,
    #[serde(deserialize_with = "values::u32_lenient")]
    pub corteza_max_concurrent: u32,
    #[serde(deserialize_with = "values::u32_lenient")]
    pub corteza_page_size: u32,
    #[serde(with = "values::duration")]
    pub corteza_timeout: Duration,
}

impl Default for LocalConfig {
    fn default() -> LocalConfig {
        LocalConfig {
            kind: LocalKind::Embedded,
            corteza_url: String::new(),
            corteza_token: Secret::default(),
            corteza_token_file: None,
            corteza_namespace: String::new(),
            corteza_requests_per_second: 20,
            corteza_max_concurrent: 4,
            corteza_page_size: 200,
            corteza_timeout: Duration::from_secs(30),
        }
    }
}

impl LocalConfig {
    fn validate(&self, invalid: &dyn Fn(&str, String) -> ConfigError) -> Result<(), ConfigError> {
        if self.kind != LocalKind::Corteza {
            return Ok(());
        }
        if self.corteza_url.is_empty() {
            return Err(invalid(
                "local.corteza_url",
                "must be set when local.kind is \"corteza\" (Corteza's API base, e.g. http://127.0.0.1:80/api)".into(),
            ));
        }
        let url = url::Url::parse(&self.corteza_url)
            .map_err(|e| invalid("local.corteza_url", format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(invalid(
                "local.corteza_url",
                "must be an http:// or https:// URL with a host and no user, query or fragment"
                    .into(),
            ));
        }
        match (&self.corteza_token_file, self.corteza_token.is_empty()) {
            (Some(_), false) => {
                return Err(invalid(
                    "local.corteza_token_file",
                    "both `local.corteza_token` and `local.corteza_token_file` are set; set only one"
                        .into(),
                ));
            }
            (None, true) => {
                return Err(invalid(
                    "local.corteza_token",
                    "a Corteza API token is needed: set local.corteza_token_file (or local.corteza_token)".into(),
                ));
            }
            (Some(path), true) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid(
                        "local.corteza_token_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                if text.trim().is_empty() {
                    return Err(invalid(
                        "local.corteza_token_file",
                        format!("{} is empty", path.display()),
                    ));
                }
            }
            (None, false) => {}
        }
        if self.corteza_namespace.trim().is_empty() {
            return Err(invalid(
                "local.corteza_namespace",
                "must name the Corteza namespace (its slug or id) when local.kind is \"corteza\""
                    .into(),
            ));
        }
        if self.corteza_requests_per_second == 0 || self.corteza_max_concurrent == 0 {
            return Err(invalid(
                "local.corteza_requests_per_second",
                "corteza_requests_per_second and corteza_max_concurrent must be at least 1".into(),
            ));
        }
        if !(1..=1000).contains(&self.corteza_page_size) {
            return Err(invalid(
                "local.corteza_page_size",
                "must be between 1 and 1000".into(),
            ));
        }
        if self.corteza_timeout.is_zero() {
            return Err(invalid("local.corteza_timeout", "must be positive".into()));
        }
        Ok(())
    }
}

/// Where local modules and records live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalKind {
    /// In fedsync's own store.
    #[default]
    Embedded,
    /// In a Corteza instance beside fedsync, through its compose REST API.
    Corteza,
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

/// Who is told about events that need a person, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Admins emailed about handshake requests and syncs that need them
    /// (comma-separated addresses).
    pub admin_emails: String,
    /// Webhook URLs (comma-separated) that receive every event as signed
    /// JSON. Secret: such URLs often carry a key.
    pub webhook_urls: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_urls_file: Option<PathBuf>,
    /// The HMAC-SHA256 key webhooks are signed with.
    pub webhook_secret: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_file: Option<PathBuf>,
    /// How long connecting to and each exchange with the SMTP server, and
    /// each webhook request, may take.
    #[serde(with = "values::duration")]
    pub timeout: Duration,
    /// A job failing this long is reported once; zero: never.
    #[serde(with = "values::duration")]
    pub failing_for: Duration,
    /// Failed deliveries wait retry_base * 2^(attempts - 1), at most retry_cap.
    #[serde(with = "values::duration")]
    pub retry_base: Duration,
    #[serde(with = "values::duration")]
    pub retry_cap: Duration,
    /// A notification not delivered after this long is given up.
    #[serde(with = "values::duration")]
    pub give_up_after: Duration,
    pub smtp: SmtpConfig,
}

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        NotifyConfig {
            admin_emails: String::new(),
            webhook_urls: Secret::default(),
            webhook_urls_file: None,
            webhook_secret: Secret::default(),
            webhook_secret_file: None,
            timeout: Duration::from_secs(10),
            failing_for: Duration::from_secs(3600),
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(600),
            give_up_after: Duration::from_secs(24 * 3600),
            smtp: SmtpConfig::default(),
        }
    }
}

/// The SMTP server mail goes through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// Empty: no email.
    pub host: String,
    /// 0: the usual port of `security` (587, 465 or 25).
    #[serde(deserialize_with = "values::u32_lenient")]
    pub port: u32,
    pub security: SmtpSecurity,
    pub username: String,
    pub password: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The sender, `Name <address>` or an address.
    pub from: String,
    /// Extra CA certificates (PEM) trusted for the server; empty: system roots.
    pub ca_file: PathBuf,
}

impl Default for SmtpConfig {
    fn default() -> SmtpConfig {
        SmtpConfig {
            host: String::new(),
            port: 0,
            security: SmtpSecurity::Starttls,
            username: String::new(),
            password: Secret::default(),
            password_file: None,
            from: "fedsync <fedsync@localhost>".to_owned(),
            ca_file: PathBuf::new(),
        }
    }
}

impl SmtpConfig {
    /// The port to connect to.
    pub fn port(&self) -> u16 {
        match (self.port, self.security) {
            (0, SmtpSecurity::Starttls) => 587,
            (0, SmtpSecurity::Tls) => 465,
            (0, SmtpSecurity::None) => 25,
            (port, _) => u16::try_from(port).unwrap_or(u16::MAX),
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No TLS: only for a server on loopback.
    None,
}

impl NotifyConfig {
    /// The admins' addresses.
    pub fn admin_emails(&self) -> Vec<String> {
        split_list(&self.admin_emails)
    }

    pub fn webhook_urls(&self) -> Vec<String> {
        split_list(self.webhook_urls.expose())
    }

    fn validate(&self, invalid: &dyn Fn(&str, String) -> ConfigError) -> Result<(), ConfigError> {
        let smtp = &self.smtp;
        let emails = self.admin_emails();
        for address in &emails {
            address
                .parse::<lettre::Address>()
                .map_err(|e| invalid("notify.admin_emails", format!("`{address}`: {e}")))?;
        }
        if !emails.is_empty() && smtp.host.is_empty() {
            return Err(invalid(
                "notify.admin_emails",
                "needs notify.smtp.host (the server mail goes through)".into(),
            ));
        }
        for (n, url) in self.webhook_urls().iter().enumerate() {
            // The URL is a secret: name it by position, not text.
            let parsed = url::Url::parse(url).map_err(|e| {
                invalid("notify.webhook_urls", format!("URL number {}: {e}", n + 1))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(invalid(
                    "notify.webhook_urls",
                    format!("URL number {} is not an http(s) URL with a host", n + 1),
                ));
            }
        }
        if self.timeout.is_zero() {
            return Err(invalid("notify.timeout", "must be above zero".into()));
        }
        if !self.webhook_urls().is_empty() && self.webhook_secret.expose().len() < 16 {
            return Err(invalid(
                "notify.webhook_secret",
                "must be at least 16 characters when notify.webhook_urls is set (receivers verify the signature with it)".into(),
            ));
        }
        if self.retry_base.is_zero() || self.retry_cap < self.retry_base {
            return Err(invalid(
                "notify.retry_cap",
                "must be at least notify.retry_base, which must be above zero".into(),
            ));
        }
        if self.give_up_after.is_zero() {
            return Err(invalid("notify.give_up_after", "must be above zero".into()));
        }
        if smtp.host.is_empty() {
            return Ok(());
        }
        if smtp.port > u32::from(u16::MAX) {
            return Err(invalid("notify.smtp.port", "must be at most 65535".into()));
        }
        smtp.from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| invalid("notify.smtp.from", format!("`{}`: {e}", smtp.from)))?;
        let loopback = smtp.host == "localhost"
            || smtp
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if smtp.security == SmtpSecurity::None && !loopback {
            return Err(invalid(
                "notify.smtp.security",
                "`none` sends mail (and a password) in clear: allowed only for a server on loopback".into(),
            ));
        }
        if smtp.username.is_empty() != smtp.password.is_empty() {
            return Err(invalid(
                "notify.smtp.username",
                "notify.smtp.username and notify.smtp.password go together".into(),
            ));
        }
        if !smtp.ca_file.as_os_str().is_empty() {
            std::fs::metadata(&smtp.ca_file).map_err(|e| {
                invalid(
                    "notify.smtp.ca_file",
                    format!("cannot read {}: {e}", smtp.ca_file.display()),
                )
            })?;
        }
        Ok(())
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
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

/// A config that cannot be used, with the key and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}` ({origin}): {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
    /// A `FEDSYNC_*` variable that is no config key but looks like one.
    #[error("environment variable `{name}`: {message}")]
    Environment { name: String, message: String },
}

/// Values from flags, applied last. Keys are dotted paths (`federation.listen`).
#[derive(Debug, Clone, Default)]
pub struct Overrides(Vec<(String, toml::Value)>);

impl Overrides {
    pub fn set(&mut self, key: &str, value: impl Into<toml::Value>) -> &mut Self {
        self.0.push((key.to_owned(), value.into()));
        self
    }

    /// Appends `other`; its values win over earlier ones.
    pub fn extend(&mut self, other: Overrides) {
        self.0.extend(other.0);
    }
}

/// Where each key came from, for error messages.
#[derive(Default)]
struct Origins(BTreeMap<String, String>);

impl Origins {
    fn of(&self, key: &str) -> String {
        // The longest recorded prefix of the key names its source.
        let mut probe = key.to_owned();
        loop {
            if let Some(origin) = self.0.get(&probe) {
                return origin.clone();
            }
            match probe.rfind('.') {
                Some(dot) => probe.truncate(dot),
                None => break,
            }
        }
        // An unknown section is named by the keys under it.
        let section = format!("{key}.");
        self.0
            .iter()
            .find(|(k, _)| k.starts_with(&section))
            .map(|(_, origin)| origin.clone())
            .unwrap_or_else(|| "default".to_owned())
    }
}

impl Config {
    /// Loads and validates the configuration. `env` is the process
    /// environment (passed in so tests control it).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut table = toml::Table::new();
        let mut origins = Origins::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                path: path.to_owned(),
                source,
            })?;
            let parsed: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Parse {
                        path: path.to_owned(),
                        message: e.message().to_owned() + &line_hint(&text, e.span()),
                    })?;
            let origin = format!("from {}", path.display());
            record_origins(&parsed, "", &origin, &mut origins);
            merge(&mut table, parsed);
        }
        let env: Vec<(String, String)> = env.into_iter().collect();
        let credentials = env
            .iter()
            .find(|(k, _)| k == "CREDENTIALS_DIRECTORY")
            .map(|(_, v)| PathBuf::from(v));
        let env = environment::read(env)?;
        for (name, key, value) in env.keys {
            origins
                .0
                .insert(key.clone(), format!("from environment variable {name}"));
            set_path(&mut table, &key, toml::Value::String(value));
        }
        for (key, value) in &overrides.0 {
            origins
                .0
                .insert(key.clone(), format!("from flag --{}", flag_name(key)));
            set_path(&mut table, key, value.clone());
        }

        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                ConfigError::Invalid {
                    origin: origins.of(&key),
                    key,
                    message: e.into_inner().message().to_owned(),
                }
            })?;
        if let Some(dir) = credentials {
            config.use_credentials(&dir, &mut origins);
        }
        config.resolve_secret_files(&origins)?;
        config.validate(&origins)?;
        config.warnings = env.warnings;
        Ok(config)
    }

    /// The data directory: the configured one, else `$STATE_DIRECTORY` (the
    /// first one when systemd lists several), else `./fedsync-data`.
    pub fn data_dir(&self) -> PathBuf {
        resolve_data_dir(
            &self.data_dir,
            std::env::var("STATE_DIRECTORY").ok().as_deref(),
        )
    }

    /// The database URL, defaulting to the embedded SQLite file.
    pub fn database_url(&self) -> Secret {
        if self.database.url.is_empty() {
            let path = self.data_dir().join("fedsync.db");
            Secret::new(format!("sqlite://{}", path.display()))
        } else {
            self.database.url.clone()
        }
    }

    /// systemd credentials (`LoadCredential=`): `signing.key`,
    /// `encryption.key`, `database-url` and `corteza-token` in
    /// `$CREDENTIALS_DIRECTORY` fill the secrets that config leaves unset.
    fn use_credentials(&mut self, dir: &Path, origins: &mut Origins) {
        let slots: [(&str, &str, &Secret, &mut Option<PathBuf>); 3] = [
            (
                "database.url",
                "database-url",
                &self.database.url,
                &mut self.database.url_file,
            ),
            (
                "keys.signing_key",
                "signing.key",
                &self.keys.signing_key,
                &mut self.keys.signing_key_file,
            ),
            (
                "keys.encryption_key",
                "encryption.key",
                &self.keys.encryption_key,
                &mut self.keys.encryption_key_file,
            ),
        ];
        // The Corteza token stays a path: the data plane reads it itself.
        let corteza = dir.join("corteza-token");
        if self.local.corteza_token.is_empty()
            && self.local.corteza_token_file.is_none()
            && corteza.is_file()
        {
            origins.0.insert(
                "local.corteza_token_file".into(),
                "from systemd credential corteza-token".into(),
            );
            self.local.corteza_token_file = Some(corteza);
        }
        for (key, name, secret, file) in slots {
            let path = dir.join(name);
            if secret.is_empty() && file.is_none() && path.is_file() {
                origins.0.insert(
                    format!("{key}_file"),
                    format!("from systemd credential {name}"),
                );
                *file = Some(path);
            }
        }
    }

    fn resolve_secret_files(&mut self, origins: &Origins) -> Result<(), ConfigError> {
        let slots: [(&str, &mut Secret, &Option<PathBuf>); 6] = [
            (
                "database.url",
                &mut self.database.url,
                &self.database.url_file,
            ),
            (
                "keys.signing_key",
                &mut self.keys.signing_key,
                &self.keys.signing_key_file,
            ),
            (
                "keys.encryption_key",
                &mut self.keys.encryption_key,
                &self.keys.encryption_key_file,
            ),
            (
                "notify.webhook_urls",
                &mut self.notify.webhook_urls,
                &self.notify.webhook_urls_file,
            ),
            (
                "notify.webhook_secret",
                &mut self.notify.webhook_secret,
                &self.notify.webhook_secret_file,
            ),
            (
                "notify.smtp.password",
                &mut self.notify.smtp.password,
                &self.notify.smtp.password_file,
            ),
        ];
        for (key, secret, file) in slots {
            let Some(path) = file else { continue };
            let file_key = format!("{key}_file");
            if !secret.is_empty() {
                return Err(ConfigError::Invalid {
                    origin: origins.of(&file_key),
                    key: file_key,
                    message: format!("both `{key}` and `{key}_file` are set; set only one"),
                });
            }
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
                origin: origins.of(&file_key),
                key: file_key.clone(),
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            *secret = Secret::new(text.trim().to_owned());
        }
        Ok(())
    }

    fn validate(&self, origins: &Origins) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_owned(),
            origin: origins.of(key),
            message,
        };
        if !self.database.url.is_empty() {
            let url = self.database.url.expose();
            let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
            if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
                return Err(invalid(
                    "database.url",
                    "must start with sqlite://, postgres:// or postgresql://".into(),
                ));
            }
            if scheme != "sqlite" {
                url::Url::parse(url)
                    .map_err(|e| invalid("database.url", format!("not a valid URL: {e}")))?;
            }
        }
        if self.database.max_connections == 0 {
            return Err(invalid(
                "database.max_connections",
                "must be at least 1".into(),
            ));
        }
        if !self.federation.public_url.is_empty() {
            check_public_url(
                &self.federation.public_url,
                self.federation.allow_insecure_peers,
            )
            .map_err(|m| invalid("federation.public_url", m))?;
        }
        if self.federation.label.chars().count() > 64
            || self.federation.label.chars().any(char::is_control)
        {
            return Err(invalid(
                "federation.label",
                "must be at most 64 printable characters".into(),
            ));
        }
        if self.federation.listen == self.admin.listen && self.admin.listen.port() != 0 {
            return Err(invalid(
                "admin.listen",
                "must differ from federation.listen: the admin interface never shares the public listener".into(),
            ));
        }
        if self.pairing.ott_ttl.is_zero()
            || self.pairing.ott_ttl > Duration::from_secs(7 * 24 * 3600)
        {
            return Err(invalid(
                "pairing.ott_ttl",
                "must be between 1s and 7 days".into(),
            ));
        }
        if !(1..=1000).contains(&self.sync.data_page_size) {
            return Err(invalid(
                "sync.data_page_size",
                "must be between 1 and 1000".into(),
            ));
        }
        if self.sync.retry_base.is_zero() || self.sync.retry_cap < self.sync.retry_base {
            return Err(invalid(
                "sync.retry_cap",
                "must be at least sync.retry_base, which must be above zero".into(),
            ));
        }
        if self.sync.retry_factor == 0 {
            return Err(invalid("sync.retry_factor", "must be at least 1".into()));
        }
        if self.sync.max_concurrent == 0 || self.sync.per_peer == 0 {
            return Err(invalid(
                "sync.max_concurrent",
                "sync.max_concurrent and sync.per_peer must be at least 1".into(),
            ));
        }
        if self.sync.job_lease < Duration::from_secs(3) {
            return Err(invalid("sync.job_lease", "must be at least 3s".into()));
        }
        if !(1..=500).contains(&self.sync.structure_page_size) {
            return Err(invalid(
                "sync.structure_page_size",
                "must be between 1 and 500".into(),
            ));
        }
        self.local.validate(&invalid)?;
        if self.pairing.max_failed_attempts == 0 {
            return Err(invalid(
                "pairing.max_failed_attempts",
                "must be at least 1".into(),
            ));
        }
        if self.federation.peer_max_response_bytes < 64 * 1024 {
            return Err(invalid(
                "federation.peer_max_response_bytes",
                "must be at least 65536".into(),
            ));
        }
        for (key, value) in [
            (
                "federation.handshake_limit",
                self.federation.handshake_limit,
            ),
            (
                "federation.handshake_lockout_after",
                self.federation.handshake_lockout_after,
            ),
            (
                "federation.peer_requests_per_second",
                self.federation.peer_requests_per_second,
            ),
            ("federation.peer_burst", self.federation.peer_burst),
            (
                "federation.max_concurrent_requests",
                self.federation.max_concurrent_requests,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        if self.federation.handshake_window.is_zero() || self.federation.handshake_lockout.is_zero()
        {
            return Err(invalid(
                "federation.handshake_window",
                "handshake_window and handshake_lockout must be positive".into(),
            ));
        }
        if self.federation.peer_connect_timeout.is_zero()
            || self.federation.peer_request_timeout.is_zero()
        {
            return Err(invalid(
                "federation.peer_request_timeout",
                "timeouts must be positive".into(),
            ));
        }
        if !self.federation.peer_ca_file.as_os_str().is_empty() {
            std::fs::metadata(&self.federation.peer_ca_file).map_err(|e| {
                invalid(
                    "federation.peer_ca_file",
                    format!(
                        "cannot read {}: {e}",
                        self.federation.peer_ca_file.display()
                    ),
                )
            })?;
        }
        let (cert, key) = (&self.federation.tls_cert, &self.federation.tls_key);
        if cert.as_os_str().is_empty() != key.as_os_str().is_empty() {
            return Err(invalid(
                "federation.tls_cert",
                "federation.tls_cert and federation.tls_key go together".into(),
            ));
        }
        for (name, path) in [("federation.tls_cert", cert), ("federation.tls_key", key)] {
            if !path.as_os_str().is_empty() {
                std::fs::metadata(path)
                    .map_err(|e| invalid(name, format!("cannot read {}: {e}", path.display())))?;
            }
        }
        crate::domain::net::parse_ip_ranges(&self.federation.trusted_proxies)
            .map_err(|e| invalid("federation.trusted_proxies", e))?;
        self.notify.validate(&invalid)?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", format!("not a valid filter: {e}")))?;
        Ok(())
    }

    /// The config as TOML with every secret redacted, for `config check`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

fn check_public_url(value: &str, allow_insecure: bool) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a valid URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => {
            return Err("must be https:// (http:// needs federation.allow_insecure_peers)".into());
        }
        other => return Err(format!("scheme `{other}` is not http(s)")),
    }
    if url.host_str().is_none() {
        return Err("has no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must not carry a query, fragment or user info".into());
    }
    Ok(())
}

fn resolve_data_dir(configured: &Path, state_directory: Option<&str>) -> PathBuf {
    if !configured.as_os_str().is_empty() {
        return configured.to_owned();
    }
    match state_directory.and_then(|dirs| dirs.split(':').find(|d| !d.is_empty())) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from("./fedsync-data"),
    }
}

fn flag_name(key: &str) -> String {
    let leaf = match key {
        "database.url" => "database-url",
        "federation.listen" => "federation-listen",
        "admin.listen" => "admin-listen",
        "federation.public_url" => "public-url",
        "federation.label" => "label",
        "federation.allow_insecure_peers" => "allow-insecure-peers",
        "federation.peer_ca_file" => "peer-ca-file",
        "federation.tls_cert" => "tls-cert",
        "federation.tls_key" => "tls-key",
        "federation.trusted_proxies" => "trusted-proxy",
        "log.format" => "log-format",
        "local.kind" => "local-kind",
        "local.corteza_url" => "corteza-url",
        "local.corteza_token_file" => "corteza-token-file",
        "local.corteza_namespace" => "corteza-namespace",
        other => return other.replace(['.', '_'], "-"),
    };
    leaf.to_owned()
}

fn line_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

fn record_origins(table: &toml::Table, prefix: &str, origin: &str, origins: &mut Origins) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let toml::Value::Table(inner) = value {
            record_origins(inner, &path, origin, origins);
        } else {
            origins.0.insert(path, origin.to_owned());
        }
    }
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(inner)) => {
                merge(existing, inner)
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, dotted: &str, value: toml::Value) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let leaf = parts.pop().unwrap_or_default();
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(inner) = entry else {
            unreachable!("just made a table")
        };
        current = inner;
    }
    current.insert(leaf.to_owned(), value);
}

#[cfg(test)]
mod tests;
