//! Loading: the layers merged (defaults, file, environment, flags), each
//! key's origin kept for errors, every value checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

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
        if !self.admin.public_url.is_empty() {
            check_console_url(&self.admin.public_url)
                .map_err(|m| invalid("admin.public_url", m))?;
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
        if self.sync.live_window < Duration::from_millis(1)
            || self.sync.live_window > Duration::from_secs(10)
        {
            return Err(invalid(
                "sync.live_window",
                "must be between 1ms and 10s".into(),
            ));
        }
        if self.sync.history_runs_per_job == 0 {
            return Err(invalid(
                "sync.history_runs_per_job",
                "must be at least 1".into(),
            ));
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

/// The console's public URL: http(s), a host, no path beyond `/`, no query.
fn check_console_url(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme `{}` is not http(s)", url.scheme()));
    }
    if url.host_str().is_none() {
        return Err("has no host".into());
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(
            "must be an origin such as https://fedsync-admin.example.com (the console is under /ui/), with no path, query or user info".into(),
        );
    }
    Ok(())
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

pub(super) fn resolve_data_dir(configured: &Path, state_directory: Option<&str>) -> PathBuf {
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
