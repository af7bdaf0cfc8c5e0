//! Form bodies: `application/x-www-form-urlencoded`, read once by the
//! session check (which needs the CSRF token in it) and handed to the
//! handler. Repeated names (ticked checkboxes) are kept in order.

use axum::extract::FromRequestParts;
use http::request::Parts;

/// The most bytes a console form may send.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// `(suffix, value)` of every field named `prefix<suffix>` with a value.
    pub fn prefixed(&self, prefix: &str) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let suffix = k.strip_prefix(prefix)?;
                let value = v.trim();
                (!value.is_empty()).then(|| (suffix.to_owned(), value.to_owned()))
            })
            .collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FormData {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<FormData, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<FormData>()
            .cloned()
            .unwrap_or_default())
    }
}
