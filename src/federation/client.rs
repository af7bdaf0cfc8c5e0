//! The peer client (reqwest): how fedsync calls other nodes.
//!
//! Every request: `Accept: application/json`; no redirects; a connect and a
//! total timeout; a cap on the bytes read; https verified against the system
//! roots plus an optional CA file (plain http only when insecure peers are
//! allowed); the SSRF guard on every address, checked at connect time by the
//! resolver (so DNS rebinding does not get through) and on IP literals before
//! sending. A Corteza error body with HTTP 200 is a refusal (W7). Tokens go
//! only in the `Authorization` header, marked sensitive, and never in logs.

mod live;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{HeaderValue, Method, StatusCode};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Serialize;

use super::wire::DataDocIn;
use super::wire::{
    AnswerProbe, Envelope, FedsyncExtension, HandshakeCompleteBody, HandshakeInitBody,
    StructureDocIn,
};
use crate::domain::{Id, ModuleField};
use crate::domain::{NodeId, PeerKind};
use crate::pairing::AddressPolicy;
use crate::sync::{
    DataPeer, HandshakeInit, Peer, PeerError, PeerReply, RecordsPage, RecordsRequest, RemoteModule,
    RemoteRecord, RemoteValue, StructurePage, StructurePeer,
};

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct PeerClientConfig {
    pub allow_insecure_peers: bool,
    /// Extra CA certificates (PEM) trusted for https peers.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_response_bytes: u64,
    /// What we tell peers we can do, in our handshakes.
    pub capabilities: Vec<String>,
}

pub struct PeerClient {
    http: reqwest::Client,
    policy: AddressPolicy,
    request_timeout: Duration,
    max_response_bytes: u64,
    capabilities: Vec<String>,
}

/// The SSRF guard's refusal, found again in reqwest's error chain.
#[derive(Debug)]
struct BlockedAddress(String);

impl std::fmt::Display for BlockedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BlockedAddress {}

/// Resolves names and drops every address the policy refuses.
struct GuardedResolver {
    policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusals = Vec::new();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.check(addr.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        refusals.push(reason);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let reason = refusals
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| format!("{host} has no address"));
                return Err(Box::new(BlockedAddress(format!("{host}: {reason}")))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

pub use crate::crypto::tls::install_crypto_provider;

fn tls_config(ca_file: Option<&PathBuf>) -> Result<rustls::ClientConfig, String> {
    let mut config =
        crate::crypto::tls::client_config(ca_file.map(|p| (p.as_path(), "the peer CA file")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl PeerClient {
    pub fn new(config: &PeerClientConfig) -> Result<PeerClient, String> {
        install_crypto_provider();
        let policy = AddressPolicy {
            allow_insecure: config.allow_insecure_peers,
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(config.ca_file.as_ref())?)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(!config.allow_insecure_peers)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .user_agent(concat!("fedsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the peer HTTP client: {e}"))?;
        Ok(PeerClient {
            http,
            policy,
            request_timeout: config.request_timeout,
            max_response_bytes: config.max_response_bytes,
            capabilities: config.capabilities.clone(),
        })
    }

    /// Sends one request and reads at most `max_response_bytes` of the answer.
    async fn call<B: Serialize>(
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
    fn judge(status: StatusCode, body: &[u8]) -> Result<PeerReply, PeerError> {
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
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn endpoint(base_url: &str, path: &str) -> String {
    format!("{}{path}", base_url.trim_end_matches('/'))
}

#[async_trait]
impl Peer for PeerClient {
    async fn handshake_init(
        &self,
        base_url: &str,
        request: &HandshakeInit,
    ) -> Result<PeerReply, PeerError> {
        let body = HandshakeInitBody {
            pair_token: Some(request.pair_token.to_string()),
            auth_token: Some(request.auth_token.to_string()),
            shared_node_id: Some(request.shared_node_id.to_string()),
            fedsync: Some(FedsyncExtension::with_capabilities(&self.capabilities)),
            ..HandshakeInitBody::default()
        };
        let url = endpoint(
            base_url,
            &format!("/nodes/{}/handshake", request.shared_node_id),
        );
        let (status, answer) = self.call(Method::POST, &url, None, Some(&body)).await?;
        PeerClient::judge(status, &answer)
    }

    async fn handshake_complete(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
        auth_token: &str,
    ) -> Result<PeerReply, PeerError> {
        let body = HandshakeCompleteBody {
            auth_token: Some(auth_token.to_owned()),
            fedsync: Some(FedsyncExtension::with_capabilities(&self.capabilities)),
            ..HandshakeCompleteBody::default()
        };
        let url = endpoint(
            base_url,
            &format!("/nodes/{shared_node_id}/handshake-complete"),
        );
        let (status, answer) = self
            .call(Method::POST, &url, Some(bearer), Some(&body))
            .await?;
        PeerClient::judge(status, &answer)
    }

    async fn check_token(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
    ) -> Result<(), PeerError> {
        let url = endpoint(
            base_url,
            &format!("/nodes/{shared_node_id}/modules/exposed/?limit=1"),
        );
        let (status, answer) = self
            .call::<()>(Method::GET, &url, Some(bearer), None)
            .await?;
        PeerClient::judge(status, &answer).map(|_| ())
    }

    async fn unpair_notice(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
    ) -> Result<(), PeerError> {
        let url = endpoint(base_url, &format!("/nodes/{shared_node_id}/fedsync/unpair"));
        let (status, answer) = self
            .call(
                Method::POST,
                &url,
                Some(bearer),
                Some(&serde_json::json!({})),
            )
            .await?;
        PeerClient::judge(status, &answer).map(|_| ())
    }
}

#[async_trait]
impl StructurePeer for PeerClient {
    async fn structure_page(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<StructurePage, PeerError> {
        let mut url = url::Url::parse(&endpoint(
            base_url,
            &format!("/nodes/{shared_node_id}/modules/exposed/"),
        ))
        .map_err(|e| PeerError::Protocol(format!("bad peer URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &limit.to_string());
            // Escaped properly: Corteza's cursors are standard base64 (W14).
            if let Some(cursor) = cursor {
                query.append_pair("pageCursor", cursor);
            }
        }
        let (status, body) = self
            .call::<()>(Method::GET, url.as_str(), Some(bearer), None)
            .await?;
        PeerClient::judge(status, &body)?;
        parse_structure_page(&body)
    }
}

#[async_trait]
impl DataPeer for PeerClient {
    async fn records_page(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        exposed_module_id: Id,
        bearer: &str,
        request: &RecordsRequest,
    ) -> Result<RecordsPage, PeerError> {
        let path = format!("/nodes/{shared_node_id}/modules/{exposed_module_id}/records/");
        let mut url = url::Url::parse(&endpoint(base_url, &path))
            .map_err(|e| PeerError::Protocol(format!("bad peer URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &request.limit.to_string());
            if let Some(last_sync) = request.last_sync {
                query.append_pair("lastSync", &last_sync.to_string());
            }
            if let Some(cursor) = &request.cursor {
                query.append_pair("pageCursor", cursor);
            }
            if request.include_total {
                query.append_pair("incTotal", "true");
            }
        }
        let (status, body) = self
            .call::<()>(Method::GET, url.as_str(), Some(bearer), None)
            .await?;
        PeerClient::judge(status, &body)?;
        parse_records_page(&body)
    }
}

/// Reads a data document the way a destination must: `response.set` with
/// `recordID`, `values` and the timestamps, and `response.filter.nextPage`.
pub fn parse_records_page(body: &[u8]) -> Result<RecordsPage, PeerError> {
    let doc: Envelope<DataDocIn> = serde_json::from_slice(body)
        .map_err(|e| PeerError::Protocol(format!("the data document does not decode: {e}")))?;
    let time = |what: &str,
                text: &Option<String>|
     -> Result<Option<crate::domain::Timestamp>, PeerError> {
        match text.as_deref() {
            None | Some("") => Ok(None),
            Some(t) => chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| Some(t.with_timezone(&chrono::Utc)))
                .map_err(|_| {
                    PeerError::Protocol(format!("{what} `{}` is not RFC 3339", sanitize(t)))
                }),
        }
    };
    let mut records = Vec::new();
    for r in doc.response.set.unwrap_or_default() {
        records.push(RemoteRecord {
            id: r.record_id.parse::<Id>().map_err(|_| {
                PeerError::Protocol(format!(
                    "recordID `{}` is not an id",
                    sanitize(&r.record_id)
                ))
            })?,
            values: r
                .values
                .unwrap_or_default()
                .into_iter()
                .map(|v| RemoteValue {
                    name: v.name,
                    value: v.value,
                    yours: v.yours,
                })
                .collect(),
            created_at: time("createdAt", &r.created_at)?,
            updated_at: time("updatedAt", &r.updated_at)?,
            deleted_at: time("deletedAt", &r.deleted_at)?,
        });
    }
    let filter = doc.response.filter.unwrap_or_default();
    Ok(RecordsPage {
        records,
        next_cursor: filter.next_page.filter(|c| !c.is_empty()),
        resume_cursor: filter.resume.filter(|c| !c.is_empty()),
        total: filter.total,
    })
}

/// Reads a structure document the way a destination must: `response.set`
/// and `response.filter.nextPage`, ids as decimal strings.
pub fn parse_structure_page(body: &[u8]) -> Result<StructurePage, PeerError> {
    let doc: Envelope<StructureDocIn> = serde_json::from_slice(body)
        .map_err(|e| PeerError::Protocol(format!("the structure document does not decode: {e}")))?;
    let id = |what: &str, text: &str| {
        text.parse::<Id>()
            .map_err(|_| PeerError::Protocol(format!("{what} `{}` is not an id", sanitize(text))))
    };
    let optional_id = |text: &Option<String>| text.as_deref().and_then(|t| t.parse::<Id>().ok());
    let mut modules = Vec::new();
    for m in doc.response.set.unwrap_or_default() {
        modules.push(RemoteModule {
            external_id: id("moduleID", &m.module_id)?,
            compose_module_id: optional_id(&m.compose_module_id),
            compose_namespace_id: optional_id(&m.compose_namespace_id),
            handle: m.handle,
            name: m.name,
            fields: m
                .fields
                .unwrap_or_default()
                .into_iter()
                .map(|f| ModuleField {
                    kind: f.kind,
                    name: f.name,
                    label: f.label,
                    is_multi: f.is_multi,
                })
                .collect(),
            deleted: m.deleted_at.is_some_and(|d| !d.is_empty()),
        });
    }
    let next_cursor = doc
        .response
        .filter
        .and_then(|f| f.next_page)
        .filter(|c| !c.is_empty());
    Ok(StructurePage {
        modules,
        next_cursor,
    })
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

        /// The peer document decoders are total on arbitrary bytes and
        /// arbitrary JSON, wrapped in the envelope or not.
        #[test]
        fn peer_documents_decode_or_are_refused(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            value in crate::federation::wire::arbitrary_json(),
        ) {
            let wrapped = serde_json::json!({ "response": value.clone() });
            for body in [bytes, serde_json::to_vec(&value).unwrap(), serde_json::to_vec(&wrapped).unwrap()] {
                if let Ok(page) = parse_records_page(&body) {
                    proptest::prop_assert!(page.next_cursor.is_none_or(|c| !c.is_empty()));
                }
                if let Ok(page) = parse_structure_page(&body) {
                    proptest::prop_assert!(page.next_cursor.is_none_or(|c| !c.is_empty()));
                }
            }
        }

        /// Delay-seconds are taken as they are; anything else is a date or nothing.
        #[test]
        fn retry_after_is_total(seconds in proptest::prelude::any::<u64>(), text in "\\PC{0,40}") {
            let now = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
            proptest::prop_assert_eq!(parse_retry_after(&seconds.to_string(), now), Some(Duration::from_secs(seconds)));
            let _ = parse_retry_after(&text, now);
        }
    }
}
