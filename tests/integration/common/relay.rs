//! A relay: a real HTTP server on loopback that forwards every request to a
//! real node and can be told to fail or hold the n-th request whose path
//! contains some text. It puts a network fault exactly between two pages.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use tokio::sync::{Notify, oneshot};

/// What happens to the matching request.
pub enum Fault {
    /// Answer this status without forwarding.
    Fail(u16),
    /// Keep the request waiting until `Relay::release` (or forever).
    Hold,
    /// Forward the request, then keep the peer's answer from the caller
    /// until `Relay::release` (or forever): the peer has acted, the caller
    /// has not heard.
    HoldReply,
}

struct Rule {
    path_contains: String,
    nth: usize,
    fault: Fault,
    seen: usize,
}

#[derive(Default)]
struct RelayState {
    target: Option<SocketAddr>,
    rules: Vec<Rule>,
    /// (path, query) of every request, in order.
    log: Vec<(String, String)>,
    held: Vec<oneshot::Sender<()>>,
}

#[derive(Clone)]
pub struct Relay {
    pub addr: SocketAddr,
    state: Arc<Mutex<RelayState>>,
    holding: Arc<Notify>,
}

impl Relay {
    /// Binds the relay; it forwards once `forward_to` names the target.
    pub async fn start() -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let relay = Relay {
            addr,
            state: Arc::new(Mutex::new(RelayState::default())),
            holding: Arc::new(Notify::new()),
        };
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(relay.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        relay
    }

    pub fn forward_to(&self, target: SocketAddr) {
        self.state.lock().unwrap().target = Some(target);
    }

    /// `http://<relay>/federation`.
    pub fn base_url(&self) -> String {
        format!("http://{}/federation", self.addr)
    }

    /// Applies `fault` to the `nth` (1-based) request from now on whose
    /// path contains `path_contains`; a `Fail` also to every later one,
    /// until `clear`.
    pub fn fault(&self, path_contains: &str, nth: usize, fault: Fault) {
        self.state.lock().unwrap().rules.push(Rule {
            path_contains: path_contains.to_owned(),
            nth,
            fault,
            seen: 0,
        });
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Waits until a request is being held.
    pub async fn wait_held(&self) {
        loop {
            let notified = self.holding.notified();
            if !self.state.lock().unwrap().held.is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// Lets held requests go on (they are forwarded).
    pub fn release(&self) {
        for sender in self.state.lock().unwrap().held.drain(..) {
            let _ = sender.send(());
        }
    }

    /// (path, query) of the requests whose path contains `text`, in order.
    pub fn requests(&self, text: &str) -> Vec<(String, String)> {
        self.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(p, _)| p.contains(text))
            .cloned()
            .collect()
    }
}

async fn forward(State(relay): State<Relay>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let (target, fault, held) = {
        let mut state = relay.state.lock().unwrap();
        state.log.push((path.clone(), query.clone()));
        let mut fault = None;
        for rule in state.rules.iter_mut() {
            if path.contains(&rule.path_contains) {
                rule.seen += 1;
                // A failure lasts (retries see it too); a hold is one request.
                let hit = match rule.fault {
                    Fault::Fail(_) => rule.seen >= rule.nth,
                    Fault::Hold | Fault::HoldReply => rule.seen == rule.nth,
                };
                if hit {
                    fault = Some(match rule.fault {
                        Fault::Fail(status) => Fault::Fail(status),
                        Fault::Hold => Fault::Hold,
                        Fault::HoldReply => Fault::HoldReply,
                    });
                }
            }
        }
        let held = match fault {
            Some(Fault::Hold) => {
                let (tx, rx) = oneshot::channel();
                state.held.push(tx);
                Some(rx)
            }
            _ => None,
        };
        (state.target, fault, held)
    };
    let hold_reply = matches!(fault, Some(Fault::HoldReply));
    if let Some(Fault::Fail(status)) = fault {
        return Response::builder()
            .status(status)
            .body(Body::from("relay: injected failure"))
            .unwrap();
    }
    if let Some(rx) = held {
        relay.holding.notify_waiters();
        if rx.await.is_err() {
            return Response::builder().status(503).body(Body::empty()).unwrap();
        }
    }
    let Some(target) = target else {
        return Response::builder().status(502).body(Body::empty()).unwrap();
    };
    let body = to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let url = format!(
        "http://{target}{path}{}",
        if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        }
    );
    let mut outgoing = super::http().request(parts.method.clone(), url).body(body);
    for (name, value) in parts.headers.iter() {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.send().await {
        Ok(reply) => {
            let mut builder = Response::builder().status(reply.status());
            for (name, value) in reply.headers() {
                if name != "transfer-encoding" && name != "content-length" {
                    builder = builder.header(name, value);
                }
            }
            let bytes = reply.bytes().await.unwrap_or_default();
            if hold_reply {
                let (tx, rx) = oneshot::channel();
                relay.state.lock().unwrap().held.push(tx);
                relay.holding.notify_waiters();
                if rx.await.is_err() {
                    return Response::builder().status(503).body(Body::empty()).unwrap();
                }
            }
            builder.body(Body::from(bytes)).unwrap()
        }
        Err(_) => Response::builder().status(502).body(Body::empty()).unwrap(),
    }
}
