//! One request to a peer and what its answer means: IP literals checked
//! against the address policy, the token in a sensitive header, no
//! redirects, a cap on the bytes read, `Retry-After`, errors classified,
//! an answer judged (a Corteza error body with HTTP 200 is a refusal), and
//! untrusted text from a peer sanitized.

use std::net::IpAddr;
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{HeaderValue, Method, StatusCode};
use serde::Serialize;

use super::PeerClient;
use super::resolver::BlockedAddress;
use crate::domain::PeerKind;
use crate::federation::wire::AnswerProbe;
use crate::sync::{PeerError, PeerReply};

impl PeerClient {
    /// Sends one request and reads at most `max_response_bytes` of the answer.
    pub(super) async fn call<B: Serialize>(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&str>,
        body: Option<&B>,
    ) -> Result<(StatusCode, Vec<u8>), PeerError> {
        let parsed =
            url::Url::parse(url).map_err(|e| PeerError::Protocol(format!("bad peer URL: {e}")))?;
        // IP literals never reach the resolver: check them here.
        if let Some(host) = parsed.host_str() {
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = literal.parse::<IpAddr>() {
                self.policy.check(ip).map_err(PeerError::Blocked)?;
            }
        }
        let mut request = self
            .http
            .request(method, parsed)
            .header(ACCEPT, "application/json");
        if let Some(token) = bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| PeerError::Protocol("the token cannot be sent in a header".into()))?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        if let Some(body) = body {
            let json = serde_json::to_vec(body).map_err(|e| PeerError::Protocol(e.to_string()))?;
            request = request.header(CONTENT_TYPE, "application/json").body(json);
        }
        let mut response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(sanitize)
                .unwrap_or_default();
            return Err(PeerError::Redirect(location));
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes)
        {
            return Err(PeerError::TooLarge(self.max_response_bytes));
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            if body.len() as u64 + chunk.len() as u64 > self.max_response_bytes {
                return Err(PeerError::TooLarge(self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let probe: Option<AnswerProbe> = serde_json::from_slice(&body).ok();
            let message = probe
                .and_then(|p| p.error)
                .map(|e| sanitize(&e.message))
                .unwrap_or_else(|| sanitize(&String::from_utf8_lossy(&body)));
            return Err(PeerError::Throttled {
                retry_after,
                message,
            });
        }
        Ok((status, body))
    }

    fn classify(&self, error: reqwest::Error) -> PeerError {
        let mut source: Option<&dyn std::error::Error> = Some(&error);
        while let Some(e) = source {
            if let Some(blocked) = e.downcast_ref::<BlockedAddress>() {
                return PeerError::Blocked(blocked.0.clone());
            }
            source = e.source();
        }
        if error.is_timeout() {
            PeerError::Timeout(self.request_timeout)
        } else {
            // The chain carries the useful part (refused, TLS, DNS).
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(e) = source {
                message = format!("{message}: {e}");
                source = e.source();
            }
            PeerError::Unreachable(sanitize(&message))
        }
    }

    /// Interprets an answer: 200 without an `error` key is success.
    pub(super) fn judge(status: StatusCode, body: &[u8]) -> Result<PeerReply, PeerError> {
        let probe: Option<AnswerProbe> = serde_json::from_slice(body).ok();
        let error_message = probe
            .as_ref()
            .and_then(|p| p.error.as_ref())
            .map(|e| sanitize(&e.message));
        if status != StatusCode::OK || error_message.is_some() {
            let message = error_message.unwrap_or_else(|| sanitize(&String::from_utf8_lossy(body)));
            return Err(PeerError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        let Some(probe) = probe else {
            return Err(PeerError::Protocol("the answer is not JSON".into()));
        };
        Ok(PeerReply {
            peer_kind: if probe.fedsync.is_some() {
                PeerKind::Fedsync
            } else {
                PeerKind::Corteza
            },
            capabilities: probe.capabilities(),
        })
    }
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 10.2.3); a date
/// in the past is no wait.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or_default(),
    )
}

/// Untrusted text from a peer: at most 200 characters, no control characters.
pub(super) fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}

pub(super) fn endpoint(base_url: &str, path: &str) -> String {
    format!("{}{path}", base_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 10:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past is no wait"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn answers_are_judged_like_corteza_should_have() {
        let ok = PeerClient::judge(StatusCode::OK, br#"{"success":{"message":"OK"}}"#).unwrap();
        assert_eq!(ok.peer_kind, PeerKind::Corteza);
        let ours = PeerClient::judge(
            StatusCode::OK,
            br#"{"success":{"message":"OK"},"fedsync":{"version":"1"}}"#,
        )
        .unwrap();
        assert_eq!(ours.peer_kind, PeerKind::Fedsync);
        // W7: Corteza's errors come with HTTP 200.
        let refused = PeerClient::judge(
            StatusCode::OK,
            br#"{"error":{"message":"pairing token invalid"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            refused,
            PeerError::Refused {
                status: 200,
                message: "pairing token invalid".into()
            }
        );
        let unauthorized = PeerClient::judge(StatusCode::UNAUTHORIZED, b"nope\x07").unwrap_err();
        assert_eq!(
            unauthorized,
            PeerError::Refused {
                status: 401,
                message: "nope".into()
            }
        );
        assert!(unauthorized.is_unauthorized());
        let server = PeerClient::judge(
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"error":{"message":"token is unauthorized"}}"#,
        )
        .unwrap_err();
        assert!(server.is_retriable());
        assert!(matches!(
            PeerClient::judge(StatusCode::OK, b"Error: plain text"),
            Err(PeerError::Protocol(_))
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Delay-seconds are taken as they are; anything else is a date or nothing.
        #[test]
        fn retry_after_is_total(seconds in proptest::prelude::any::<u64>(), text in "\\PC{0,40}") {
            let now = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
            proptest::prop_assert_eq!(parse_retry_after(&seconds.to_string(), now), Some(Duration::from_secs(seconds)));
            let _ = parse_retry_after(&text, now);
        }
    }
}
