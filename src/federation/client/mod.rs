//! The peer client (reqwest): how fedsync calls other nodes.
//!
//! Every request: `Accept: application/json`; no redirects; a connect and a
//! total timeout; a cap on the bytes read; https verified against the system
//! roots plus an optional CA file (plain http only when insecure peers are
//! allowed); the SSRF guard on every address, checked at connect time by the
//! resolver (so DNS rebinding does not get through) and on IP literals before
//! sending. A Corteza error body with HTTP 200 is a refusal (W7). Tokens go
//! only in the `Authorization` header, marked sensitive, and never in logs.

mod data;
mod live;
mod pairing;
mod request;
mod resolver;
mod structure;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use request::endpoint;
use resolver::GuardedResolver;

use crate::pairing::AddressPolicy;

pub use data::parse_records_page;
pub use request::parse_retry_after;
pub use structure::parse_structure_page;

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
