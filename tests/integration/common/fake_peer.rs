//! A fake peer: a real HTTP server on loopback that records every request
//! and answers from a script, then from a handler (per path), then with
//! Corteza's plain success. It stands in for a Corteza node (answers built
//! from recorded documents, `corteza_origin`) or for a broken or hostile one
//! (errors, redirects, stalls, bodies that drip or never end, compressed
//! bombs, truncated or mistyped JSON, cursor loops).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

    /// A query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A structure page request (`GET .../modules/exposed/`).
    pub fn is_structure(&self) -> bool {
        self.method == "GET" && self.path.ends_with("/modules/exposed/")
    }

    /// A records page request (`GET .../modules/{id}/records/`).
    pub fn is_records(&self) -> bool {
        self.method == "GET" && self.path.ends_with("/records/")
    }
}

/// How the fake answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Json(u16, serde_json::Value),
    Raw(u16, Vec<(String, String)>, Vec<u8>),
    /// Accept the request and never answer.
    Stall,
    /// Headers at once (no length), then the body one byte per `every`.
    Drip {
        status: u16,
        body: Vec<u8>,
        every: Duration,
    },
    /// 200 with a body that never ends (JSON whitespace, chunked, no
    /// length); the bytes the client took are counted (`flooded`).
    Flood,
    /// Holds the request until the semaphore has a permit, then answers
    /// with the inner reply (the permit goes back: an opened gate stays
    /// open).
    Gate(Arc<tokio::sync::Semaphore>, Box<Reply>),
}

/// Answers requests the script does not: `None` leaves the request to
/// Corteza's plain success.
pub type Handler = Arc<dyn Fn(&Recorded) -> Option<Reply> + Send + Sync>;

#[derive(Default)]
struct FakeState {
    requests: Vec<Recorded>,
    script: VecDeque<Reply>,
    handler: Option<Handler>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<FakeState>>,
    flooded: Arc<AtomicU64>,
    floods: Arc<AtomicUsize>,
}

/// Counts a flood body while the server still holds it.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(counter: Arc<AtomicUsize>) -> Open {
        counter.fetch_add(1, Ordering::SeqCst);
        Open(counter)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct FakePeer {
    pub addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    connections: Arc<AtomicUsize>,
    flooded: Arc<AtomicU64>,
    floods: Arc<AtomicUsize>,
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
        let flooded = Arc::new(AtomicU64::new(0));
        let floods = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().fallback(answer).with_state(Shared {
            state: state.clone(),
            flooded: flooded.clone(),
            floods: floods.clone(),
        });
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
            flooded,
            floods,
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

    /// Answers what the script does not, per request (path, query, ...).
    pub fn handle(&self, handler: impl Fn(&Recorded) -> Option<Reply> + Send + Sync + 'static) {
        self.state.lock().unwrap().handler = Some(Arc::new(handler));
    }

    /// Bytes of `Reply::Flood` bodies the client has taken so far.
    pub fn flooded(&self) -> u64 {
        self.flooded.load(Ordering::SeqCst)
    }

    /// `Reply::Flood` bodies still being sent (the client has not hung up).
    pub fn floods_open(&self) -> usize {
        self.floods.load(Ordering::SeqCst)
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

async fn answer(State(shared): State<Shared>, request: Request) -> Response {
    let state = shared.state;
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default()
        .to_vec();
    let reply = {
        let mut state = state.lock().unwrap();
        let recorded = Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                .collect(),
            body,
        };
        let reply = state
            .script
            .pop_front()
            .or_else(|| state.handler.as_ref().and_then(|h| h(&recorded)));
        state.requests.push(recorded);
        reply
    };
    let mut reply = reply
        .unwrap_or_else(|| Reply::Json(200, serde_json::json!({ "success": { "message": "OK" } })));
    while let Reply::Gate(gate, inner) = reply {
        // The permit goes back at once.
        let _ = gate.acquire().await;
        reply = *inner;
    }
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
        Reply::Gate(..) => unreachable!("gates are passed above"),
        Reply::Drip {
            status,
            body,
            every,
        } => {
            let bytes = futures::stream::unfold(body.into_iter(), move |mut rest| async move {
                let byte = rest.next()?;
                tokio::time::sleep(every).await;
                Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::from(vec![byte])),
                    rest,
                ))
            });
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from_stream(bytes))
                .unwrap()
        }
        Reply::Flood => {
            let counter = shared.flooded;
            let open = Open::new(shared.floods);
            let chunk = bytes::Bytes::from(vec![b' '; 16 * 1024]);
            let bytes = futures::stream::repeat_with(move || {
                let _open = &open;
                // Counted as the client pulls: a chunk is produced only when
                // the connection can take it.
                counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                Ok::<_, std::io::Error>(chunk.clone())
            });
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from_stream(bytes))
                .unwrap()
        }
    }
}

/// A gzip member (RFC 1952) that inflates to `len` zero bytes while being
/// about 160 times smaller: one literal, then length-258 distance-1 copies
/// in a fixed-Huffman deflate block (RFC 1951 3.2.6), with the right CRC-32
/// and size in its trailer. Sent with `Content-Encoding: gzip`, it is a
/// decompression bomb for a client that inflates.
pub fn gzip_bomb(len: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u32,
        n: u32,
    }
    impl Bits {
        /// Appends `count` bits of `value`, least significant first.
        fn put(&mut self, value: u32, count: u32) {
            for i in 0..count {
                self.acc |= ((value >> i) & 1) << self.n;
                self.n += 1;
                if self.n == 8 {
                    self.out.push(self.acc as u8);
                    self.acc = 0;
                    self.n = 0;
                }
            }
        }
        /// Appends a Huffman code, most significant bit first.
        fn code(&mut self, code: u32, count: u32) {
            for i in (0..count).rev() {
                self.put((code >> i) & 1, 1);
            }
        }
    }
    assert!(
        len > 0 && (len - 1).is_multiple_of(258),
        "1 + a multiple of 258"
    );
    let mut bits = Bits {
        out: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255],
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // the last block
    bits.put(1, 2); // fixed Huffman codes
    bits.code(0x30, 8); // literal 0
    for _ in 0..(len - 1) / 258 {
        bits.code(0xc5, 8); // length 258 (code 285)
        bits.code(0, 5); // distance 1
    }
    bits.code(0, 7); // end of block (256)
    if bits.n > 0 {
        bits.out.push(bits.acc as u8);
    }
    let mut out = bits.out;
    out.extend_from_slice(&crc32_of_zeros(len).to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

fn crc32_of_zeros(len: usize) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for _ in 0..len {
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A well-behaved Corteza origin, from the recorded documents: the
/// structure in two pages (049, then 050 for its cursor) and the records of
/// `contact_fed` in two pages (098: Alice, Bob; then 099: Carol). Any other
/// request is left to the default.
pub fn corteza_origin(request: &Recorded) -> Option<Reply> {
    let body = |name: &str| Reply::Json(200, fixture(name)["response"]["body"].clone());
    if request.is_structure() {
        return Some(match request.param("pageCursor") {
            None => body("049-peer-structure-limit1.json"),
            Some(c) if c == next_page("049-peer-structure-limit1.json") => {
                body("050-peer-structure-limit1-page2.json")
            }
            Some(_) => Reply::Json(
                200,
                serde_json::json!({"error": {"message": "invalid page cursor"}}),
            ),
        });
    }
    if request.is_records() {
        return Some(match request.param("pageCursor") {
            None => body("098-fx-peer-records-limit2.json"),
            Some(c) if c == next_page("098-fx-peer-records-limit2.json") => {
                body("099-fx-peer-records-limit2-page2.json")
            }
            Some(_) => Reply::Json(
                200,
                serde_json::json!({"error": {"message": "invalid page cursor"}}),
            ),
        });
    }
    None
}

/// The `nextPage` cursor of a recorded page.
pub fn next_page(name: &str) -> String {
    fixture(name)["response"]["body"]["response"]["filter"]["nextPage"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A recorded exchange from `tests/fixtures/corteza-wire/`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corteza-wire")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}
