//! The configuration's sections: every key with its type and default
//! (`default.toml` documents the same keys; a test keeps them in step).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::secret::Secret;
use super::values;

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
    /// How often each module exposed to a peer that takes change notices
    /// is looked at for changes (one small request each).
    #[serde(with = "values::duration")]
    pub corteza_change_poll: Duration,
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
            corteza_change_poll: Duration::from_secs(5),
        }
    }
}

impl LocalConfig {
    pub(super) fn validate(
        &self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
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
        if self.corteza_change_poll < Duration::from_secs(1) {
            return Err(invalid(
                "local.corteza_change_poll",
                "must be at least 1s".into(),
            ));
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

    pub(super) fn validate(
        &self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
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
