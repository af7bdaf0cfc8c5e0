//! The `notify` section: who is told about events that need a person
//! (admin mail, webhooks) and how (the SMTP server, timeouts, retries);
//! checked at load time.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::config::secret::Secret;
use crate::config::values;

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

    pub(in crate::config) fn validate(
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
