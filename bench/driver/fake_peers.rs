//! Fake Corteza federation peers: one light in-process HTTP server answers
//! for any number of them (the node id in the path says which) with the
//! recorded structure and records, and pairing a daemon with them as a
//! Corteza inviter does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use fedsync::admin::proto::v1;
use serde_json::{Value, json};

use crate::Result;
use crate::daemon::{Daemon, repo};

// ---------------------------------------------------------------------------
// Many peers: one destination paired with P fake Corteza origins, all served
// by one in-process HTTP server (the node id in the path says which).

pub(crate) const FAKE_TOKEN: &str = "Corteza0Pair0Token0Abcdefghij123";

pub(crate) fn fake_documents() -> (Value, Value) {
    let fixtures = repo().join("tests/fixtures/corteza-wire");
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(fixtures.join(name)).expect("fixture");
        serde_json::from_str::<Value>(&text).expect("fixture JSON")["response"]["body"].clone()
    };
    (
        read("051-peer-structure-nolimit.json"),
        read("100-fx-peer-records-nolimit.json"),
    )
}

/// B's tokens for the fake peers, by the peer's node id (taken from B's
/// handshake requests, as a Corteza inviter keeps them).
pub(crate) type Tokens = Arc<Mutex<BTreeMap<u64, String>>>;

pub(crate) async fn fake_corteza() -> Result<(SocketAddr, Tokens)> {
    use axum::extract::Request;
    let (structure, records) = fake_documents();
    let structure = Arc::new(structure.to_string());
    let records = Arc::new(records.to_string());
    let tokens: Tokens = Arc::default();
    let kept = tokens.clone();
    let app = axum::Router::new().fallback(move |request: Request| {
        let (structure, records, kept) = (structure.clone(), records.clone(), kept.clone());
        async move {
            let path = request.uri().path().to_owned();
            let body = if path.ends_with("/modules/exposed/") {
                structure.to_string()
            } else if path.ends_with("/records/") {
                records.to_string()
            } else {
                if path.ends_with("/handshake")
                    && let Some(id) = path
                        .trim_end_matches("/handshake")
                        .rsplit('/')
                        .next()
                        .and_then(|id| id.parse::<u64>().ok())
                    && let Ok(bytes) = axum::body::to_bytes(request.into_body(), 1 << 20).await
                    && let Ok(body) = serde_json::from_slice::<Value>(&bytes)
                    && let Some(token) = body["authToken"].as_str()
                {
                    kept.lock().unwrap().insert(id, token.to_owned());
                }
                json!({ "success": { "message": "OK" } }).to_string()
            };
            ([("content-type", "application/json")], body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, tokens))
}

/// Pairs B with `count` Corteza nodes answered by the fake at `fake`, with
/// Corteza ids from `first_id` on: B sends its handshakes, then each
/// "Corteza" completes. Returns (B's node id, Corteza id) of each.
pub(crate) async fn pair_fakes(
    b: &Daemon,
    http: &reqwest::Client,
    fake: impl std::fmt::Display,
    tokens: &Tokens,
    first_id: u64,
    count: u64,
) -> Result<Vec<(u64, u64)>> {
    let mut nodes = Vec::new();
    for i in 0..count {
        let corteza_id = first_id + i;
        let added = b
            .nodes()
            .add_node_from_uri(b.req(v1::AddNodeFromUriRequest {
                node_uri: format!("http://{corteza_id}:{FAKE_TOKEN}@{fake}/federation?name=c{i}"),
            }))
            .await?
            .into_inner();
        let id = added.node.ok_or("no node")?.id;
        b.nodes().pair_node(b.req(v1::NodeRef { id })).await?;
        nodes.push((id, corteza_id));
    }
    complete_pairing(b, http, &nodes, tokens).await?;
    Ok(nodes)
}

/// The second half of the handshake as a Corteza inviter does it: POST
/// `handshake-complete` to B with B's token for the peer (read from B's
/// handshake request, which the fake answered) and a token for B.
pub(crate) async fn complete_pairing(
    b: &Daemon,
    http: &reqwest::Client,
    nodes: &[(u64, u64)],
    tokens: &Tokens,
) -> Result<()> {
    for (id, corteza_id) in nodes {
        let token = tokens
            .lock()
            .unwrap()
            .get(corteza_id)
            .cloned()
            .ok_or("the fake got no handshake")?;
        let complete = http
            .post(format!(
                "http://{}/federation/nodes/{corteza_id}/handshake-complete",
                b.federation
            ))
            .bearer_auth(&token)
            .json(&json!({ "authToken": format!("corteza-token-for-b-{id}") }))
            .send()
            .await?;
        if !complete.status().is_success() {
            return Err(format!("handshake-complete for node {id}: {}", complete.status()).into());
        }
    }
    Ok(())
}
