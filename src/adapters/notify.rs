//! The `NoticeSender` port: mail through an SMTP server (lettre, STARTTLS or
//! TLS with rustls, authentication) and webhooks over HTTP (reqwest),
//! signed with HMAC-SHA256.
//!
//! Invariants: every exchange (a whole SMTP session, a webhook request) is
//! bounded by the configured timeout; no redirects are followed; a webhook
//! URL (which may carry a key) never reaches an error message or a log line;
//! the SMTP password is only handed to lettre.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use zeroize::Zeroizing;

use crate::crypto::mac::webhook_signature;
use crate::sync::{NoticeSender, SendError};

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    None,
}

/// The SMTP server to send through.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// User name and password, when the server wants them.
    pub credentials: Option<(String, Zeroizing<String>)>,
    pub from: String,
    /// Extra CA certificates (PEM) trusted for the server.
    pub ca_file: Option<PathBuf>,
}

/// What the sender needs from config.
#[derive(Clone)]
pub struct SenderSettings {
    /// `None`: no email.
    pub smtp: Option<SmtpSettings>,
    pub webhook_secret: Zeroizing<String>,
    pub timeout: Duration,
}

/// Sends mail and webhooks.
pub struct Sender {
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
    http: reqwest::Client,
    webhook_secret: Zeroizing<String>,
    timeout: Duration,
}

impl Sender {
    pub fn new(settings: SenderSettings) -> Result<Sender, String> {
        crate::crypto::tls::install_crypto_provider();
        let smtp = match &settings.smtp {
            None => None,
            Some(smtp) => Some(smtp_transport(smtp, settings.timeout)?),
        };
        let tls = crate::crypto::tls::client_config(None)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .user_agent(concat!("fedsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(Sender {
            smtp,
            http,
            webhook_secret: settings.webhook_secret,
            timeout: settings.timeout,
        })
    }
}

fn smtp_transport(
    smtp: &SmtpSettings,
    timeout: Duration,
) -> Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox), String> {
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("config key `notify.smtp.from`: {e}"))?;
    let tls = || -> Result<TlsParameters, String> {
        let mut builder = TlsParameters::builder(smtp.host.clone());
        if let Some(path) = &smtp.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read notify.smtp.ca_file {}: {e}", path.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| format!("notify.smtp.ca_file {}: {e}", path.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| format!("SMTP TLS set-up failed: {e}"))
    };
    let tls = match smtp.security {
        SmtpSecurity::Starttls => Tls::Required(tls()?),
        SmtpSecurity::Tls => Tls::Wrapper(tls()?),
        SmtpSecurity::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let Some((user, password)) = &smtp.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.to_string()));
    }
    Ok((builder.build(), from))
}

/// The text of a reqwest error without the URL (a webhook URL may carry a key).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        message = format!("{message}: {e}");
        source = e.source();
    }
    message
}

#[async_trait]
impl NoticeSender for Sender {
    fn email_enabled(&self) -> bool {
        self.smtp.is_some()
    }

    async fn send_email(&self, to: &str, subject: &str, body: &str) -> Result<(), SendError> {
        let Some((transport, from)) = &self.smtp else {
            return Err(SendError::permanent(
                "email is not configured: set notify.smtp.host",
            ));
        };
        let to: Mailbox = to
            .parse()
            .map_err(|e| SendError::permanent(format!("`{to}` is not an email address: {e}")))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| SendError::permanent(format!("cannot build the message: {e}")))?;
        // lettre bounds only the TCP connect: a server that accepts and then
        // stalls (no greeting, a slow DATA) is cut off here.
        let sent = tokio::time::timeout(self.timeout, transport.send(message)).await;
        let Ok(sent) = sent else {
            return Err(SendError::retriable(format!(
                "SMTP: the server did not finish within {}",
                humantime::format_duration(self.timeout)
            )));
        };
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::permanent(format!(
                "the SMTP server refused the message: {e}"
            ))),
            Err(e) => Err(SendError::retriable(format!("SMTP: {e}"))),
        }
    }

    async fn post_webhook(
        &self,
        url: &str,
        event: &str,
        delivery: &str,
        body: &str,
    ) -> Result<(), SendError> {
        let timestamp = chrono::Utc::now().timestamp();
        let signature =
            webhook_signature(self.webhook_secret.as_bytes(), timestamp, body.as_bytes());
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Fedsync-Event", event)
            .header("X-Fedsync-Delivery", delivery)
            .header("X-Fedsync-Timestamp", timestamp.to_string())
            .header("X-Fedsync-Signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| SendError::retriable(format!("webhook: {}", describe(e))))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let message = format!("webhook: the receiver answered HTTP {}", status.as_u16());
        // A receiver that refuses the request as such will refuse it again;
        // one that is busy or broken may not.
        if status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            Err(SendError::permanent(message))
        } else {
            Err(SendError::retriable(message))
        }
    }
}
