//! The `local` section: where local modules and records live (our store
//! or a Corteza instance beside fedsync), and how Corteza is reached and
//! how hard it is used; checked at load time.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::config::secret::Secret;
use crate::config::values;

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
    /// A hard cap on requests a second to Corteza; unset: none (the
    /// adaptive limit alone).
    #[serde(
        default,
        deserialize_with = "values::u32_opt_lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub corteza_requests_per_second: Option<u32>,
    /// The bound of the adaptive limit on requests in flight to Corteza.
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
            corteza_requests_per_second: None,
            corteza_max_concurrent: 16,
            corteza_page_size: 200,
            corteza_timeout: Duration::from_secs(30),
            corteza_change_poll: Duration::from_secs(5),
        }
    }
}

impl LocalConfig {
    pub(in crate::config) fn validate(
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
        if self.corteza_requests_per_second == Some(0) {
            return Err(invalid(
                "local.corteza_requests_per_second",
                "must be at least 1 (leave it unset for no cap)".into(),
            ));
        }
        if !(1..=256).contains(&self.corteza_max_concurrent) {
            return Err(invalid(
                "local.corteza_max_concurrent",
                "must be between 1 and 256".into(),
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
