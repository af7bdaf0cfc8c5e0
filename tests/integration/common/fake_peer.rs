//! A fake peer: a real HTTP server on loopback that records every request
//! and answers from a script. It stands in for a Corteza node (answers built
//! from recorded documents) or for a broken one (errors, redirects, stalls,
//! huge bodies).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }
}

/// How the fake answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Json(u16, serde_json::Value),
    Raw(u16, Vec<(String, String)>, Vec<u8>),
    /// Accept the request and never answer.
    Stall,
}

#[derive(Default)]
struct FakeState {
    requests: Vec<Recorded>,
    script: VecDeque<Reply>,
}

pub struct FakePeer {
    pub addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    connections: Arc<AtomicUsize>,
}

impl FakePeer {
    /// Starts a fake that answers Corteza's success to everything unless scripted.
    pub async fn start() -> FakePeer {
        FakePeer::start_with(None).await
    }

    /// The same over https with this certificate chain and key.
    pub async fn start_tls(
        chain: Vec<rustls_pki_types::CertificateDer<'static>>,
        key: rustls_pki_types::PrivateKeyDer<'static>,
    ) -> FakePeer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        FakePeer::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> FakePeer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(FakeState::default()));
        let connections = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(state.clone());
        let counter = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let app = app.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let builder = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    );
                    match tls {
                        None => {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = builder.serve_connection(io, service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = builder.serve_connection(io, service).await;
                            }
                        }
                    }
                });
            }
        });
        FakePeer {
            addr,
            state,
            connections,
        }
    }

    /// The fake's federation base URL (plain http).
    pub fn base_url(&self) -> String {
        format!("http://{}/federation", self.addr)
    }

    /// Queues the answer to the next request.
    pub fn reply(&self, reply: Reply) {
        self.state.lock().unwrap().script.push_back(reply);
    }

    /// Drops the answers still queued.
    pub fn clear_replies(&self) {
        self.state.lock().unwrap().script.clear();
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn answer(State(state): State<Arc<Mutex<FakeState>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default()
        .to_vec();
    let reply = {
        let mut state = state.lock().unwrap();
        state.requests.push(Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                .collect(),
            body,
        });
        state.script.pop_front()
    };
    let reply = reply
        .unwrap_or_else(|| Reply::Json(200, serde_json::json!({ "success": { "message": "OK" } })));
    match reply {
        Reply::Json(status, value) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(value.to_string()))
            .unwrap(),
        Reply::Raw(status, headers, body) => {
            let mut builder = Response::builder().status(status);
            for (k, v) in headers {
                builder = builder.header(k, v);
            }
            builder.body(Body::from(body)).unwrap()
        }
        Reply::Stall => std::future::pending().await,
    }
}

/// A recorded exchange from `tests/fixtures/corteza-wire/`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corteza-wire")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}
