//! Inbound limits of the federation listener (federation-security 3.9, H9,
//! S13): each trips where configured, answers in Corteza's envelope with
//! `Retry-After`, is audited once per episode, spares other clients, and
//! lets the client back in once the `Retry-After` it was given has passed.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestDaemon, cli_json, http, pair, spawn_node_with};
use crate::handshake::invite;

fn handshake_body(ott: &str, node: u64) -> Value {
    json!({ "pairToken": ott, "authToken": "token-of-b", "sharedNodeID": node.to_string() })
}

fn wrong(ott: &str) -> String {
    let mut wrong = ott.to_owned();
    wrong.replace_range(0..1, if ott.starts_with('x') { "y" } else { "x" });
    wrong
}

/// POSTs a handshake, as `from` when given (through the trusted proxy's
/// `X-Forwarded-For`): (status, Retry-After, body).
async fn handshake(
    a: &TestDaemon,
    node: u64,
    ott: &str,
    from: Option<&str>,
) -> (u16, Option<u64>, Value) {
    let mut request = http()
        .post(a.federation_url(&format!("/federation/nodes/{node}/handshake")))
        .json(&handshake_body(ott, node));
    if let Some(from) = from {
        request = request.header("x-forwarded-for", from);
    }
    answer(request.send().await.unwrap()).await
}

async fn answer(response: reqwest::Response) -> (u16, Option<u64>, Value) {
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| {
        v.to_str()
            .unwrap()
            .parse::<u64>()
            .expect("Retry-After is whole seconds")
    });
    let text = response.text().await.unwrap();
    (
        status,
        retry_after,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn limited_events(a: &TestDaemon, reason: &str) -> Vec<fedsync::domain::AuditEvent> {
    a.audit()
        .await
        .into_iter()
        .filter(|e| e.event == "federation.limited" && e.reason == reason)
        .collect()
}

async fn limited_metric(a: &TestDaemon, reason: &str) -> u64 {
    let text = http()
        .get(a.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("fedsync_federation_limited_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn handshakes_past_ten_a_minute_from_one_address_get_429_and_others_pass() {
    // The default limit (10 a minute); the lockout is out of the way here.
    let mut a = spawn_node_with("A", |o| {
        o.set("federation.handshake_limit", 10)
            .set("federation.handshake_window", "1m")
            .set("federation.handshake_lockout_after", 1000)
            .set("federation.trusted_proxies", "127.0.0.1");
    })
    .await;
    let (id, ott) = invite(&a).await;
    let bad = wrong(&ott);
    for n in 1..=10 {
        let (status, retry, _) = handshake(&a, id, &bad, Some("192.0.2.10")).await;
        assert_eq!((status, retry), (401, None), "handshake {n} is judged");
    }
    let (status, retry, body) = handshake(&a, id, &bad, Some("192.0.2.10")).await;
    assert_eq!(status, 429, "the 11th in a minute: {body}");
    let retry = retry.expect("429 says when to come back");
    assert!(
        (5..=7).contains(&retry),
        "one slot frees in 6 s, said {retry}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too many")
    );
    // Even the right token waits: nothing behind the limit is evaluated.
    let (status, _, _) = handshake(&a, id, &ott, Some("192.0.2.10")).await;
    assert_eq!(status, 429);
    // Another address is not slowed by this one.
    let (status, retry, _) = handshake(&a, id, &bad, Some("192.0.2.11")).await;
    assert_eq!((status, retry), (401, None));
    // One audit event for the episode, naming the address; each refusal counted.
    let events = limited_events(&a, "handshake_rate").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].source_addr.starts_with("192.0.2.10"));
    assert_eq!(limited_metric(&a, "handshake_rate").await, 2);
    // The node was never touched by the refused requests.
    assert_eq!(a.node(id).await.status, "pending");
    a.stop().await;
}

#[tokio::test]
async fn the_handshake_limit_recovers_after_the_retry_after_it_gave() {
    let mut a = spawn_node_with("A", |o| {
        o.set("federation.handshake_limit", 2)
            .set("federation.handshake_window", "1s")
            .set("federation.handshake_lockout_after", 1000);
    })
    .await;
    let (id, ott) = invite(&a).await;
    let bad = wrong(&ott);
    assert_eq!(handshake(&a, id, &bad, None).await.0, 401);
    assert_eq!(handshake(&a, id, &bad, None).await.0, 401);
    let (status, retry, _) = handshake(&a, id, &bad, None).await;
    assert_eq!(status, 429);
    let retry = retry.unwrap();
    assert_eq!(retry, 1, "a slot frees every half second");
    // Waiting what the answer said is enough: that is the contract.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let (status, _, _) = handshake(&a, id, &ott, None).await;
    assert_eq!(status, 200, "the right token pairs once the limit lets it");
    assert_eq!(a.node(id).await.status, "pair_requested");
    a.stop().await;
}

#[tokio::test]
async fn refused_handshakes_lock_an_address_out_even_for_the_right_token() {
    let mut a = spawn_node_with("A", |o| {
        o.set("federation.handshake_lockout_after", 3)
            .set("federation.handshake_lockout", "2s")
            .set("pairing.max_failed_attempts", 100)
            .set("federation.trusted_proxies", "127.0.0.1");
    })
    .await;
    let (id, ott) = invite(&a).await;
    let bad = wrong(&ott);
    for _ in 0..3 {
        assert_eq!(handshake(&a, id, &bad, Some("198.51.100.7")).await.0, 401);
    }
    // Locked: the right OTT from that address is not even looked at.
    let (status, retry, body) = handshake(&a, id, &ott, Some("198.51.100.7")).await;
    assert_eq!(status, 429, "{body}");
    let retry = retry.unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused handshakes")
    );
    assert_eq!(a.node(id).await.status, "pending");
    // Malformed bodies count as refusals too, from another address.
    for _ in 0..3 {
        let response = http()
            .post(a.federation_url(&format!("/federation/nodes/{id}/handshake")))
            .header("x-forwarded-for", "198.51.100.8")
            .header("content-type", "application/json")
            .body("{\"pairToken\": 42}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    }
    assert_eq!(
        handshake(&a, id, &ott, Some("198.51.100.8")).await.0,
        429,
        "locked after three bad bodies"
    );
    // A third address is untouched by both lockouts.
    assert_eq!(handshake(&a, id, &bad, Some("198.51.100.9")).await.0, 401);
    let events = limited_events(&a, "handshake_lockout").await;
    assert_eq!(events.len(), 2, "one event per locked address: {events:?}");
    // The lockout ends when it said; the OTT (never voided) then pairs.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let (status, _, body) = handshake(&a, id, &ott, Some("198.51.100.7")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(a.node(id).await.status, "pair_requested");
    a.stop().await;
}

#[tokio::test]
async fn a_pair_past_its_rate_gets_429_and_other_pairs_are_still_served() {
    let limited = |o: &mut fedsync::config::Overrides| {
        o.set("federation.peer_requests_per_second", 1)
            .set("federation.peer_burst", 4);
    };
    let mut a = spawn_node_with("A", limited).await;
    let mut b = spawn_node_with("B", |_| {}).await;
    let mut c = spawn_node_with("C", |_| {}).await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    let (a_for_c, c_for_a) = pair(&a, &c).await;
    let b_token = b.held_token(b_for_a).await.unwrap();
    let c_token = c.held_token(c_for_a).await.unwrap();
    let get = |node: u64, token: &str| {
        http()
            .get(a.federation_url(&format!("/federation/nodes/{node}/modules/exposed/")))
            .bearer_auth(token)
            .send()
    };
    // B floods: the burst passes, then 429 with a Retry-After.
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..12 {
        let (status, after, _) = answer(get(a_for_b, &b_token).await.unwrap()).await;
        statuses.push(status);
        if status == 429 {
            retry = after;
        }
    }
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        (4..=6).contains(&served),
        "a burst of 4 plus what refilled meanwhile: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert_eq!(retry, Some(1), "a token frees every second");
    // C, another pair on the same node, is served at once.
    for _ in 0..3 {
        let (status, _, _) = answer(get(a_for_c, &c_token).await.unwrap()).await;
        assert_eq!(status, 200);
    }
    // A stranger's requests never spend B's quota: they fail authentication.
    let (status, _, _) = answer(get(a_for_b, "not-a-token").await.unwrap()).await;
    assert_eq!(status, 401);
    let events = limited_events(&a, "peer_rate").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].node_id.map(|n| n.get()),
        Some(a_for_b),
        "the event names the pair"
    );
    // Back after the wait it was told.
    tokio::time::sleep(Duration::from_secs(retry.unwrap())).await;
    let (status, _, _) = answer(get(a_for_b, &b_token).await.unwrap()).await;
    assert_eq!(status, 200);
    for d in [&mut a, &mut b, &mut c] {
        d.stop().await;
    }
}

/// Opens a handshake request that declares a body and sends only part of
/// it: the server holds it (and its place) while it waits for the rest.
async fn half_sent(a: &TestDaemon, node: u64) -> (TcpStream, String) {
    let body = handshake_body("x".repeat(32).as_str(), node).to_string();
    let addr = a
        .federation_url("")
        .trim_start_matches("http://")
        .to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /federation/nodes/{node}/handshake HTTP/1.1\r\nhost: {addr}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    (stream, body[10..].to_owned())
}

#[tokio::test]
async fn past_the_cap_on_requests_at_once_the_answer_is_503_and_probes_still_answer() {
    let mut a = spawn_node_with("A", |o| {
        o.set("federation.max_concurrent_requests", 2);
    })
    .await;
    let (id, _) = invite(&a).await;
    let (mut first, rest) = half_sent(&a, id).await;
    let (_second, _) = half_sent(&a, id).await;
    let probe = || {
        http()
            .get(a.federation_url(&format!("/federation/nodes/{id}/modules/exposed/")))
            .send()
    };
    // The two held requests take both places once the server has read their
    // heads; from then on every further request is turned away.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (status, retry, body) = loop {
        let (status, retry, body) = answer(probe().await.unwrap()).await;
        if status == 503 || tokio::time::Instant::now() > deadline {
            break (status, retry, body);
        }
        assert_eq!(status, 401, "admitted while a place was free");
    };
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry, Some(1));
    assert!(body["error"]["message"].as_str().is_some());
    assert_eq!(answer(probe().await.unwrap()).await.0, 503);
    // Probes are always answered: an orchestrator must not kill a busy node.
    for path in ["/livez", "/readyz"] {
        let response = http().get(a.federation_url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    // The first held request completes; its place is free again.
    first.write_all(rest.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&reply).contains("pairing token invalid") {
        let n = first.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "the server answered: {}",
            String::from_utf8_lossy(&reply)
        );
        reply.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 401"));
    assert_eq!(answer(probe().await.unwrap()).await.0, 401);
    assert!(limited_metric(&a, "busy").await >= 2);
    a.stop().await;
}

#[tokio::test]
async fn a_body_declared_past_the_cap_is_refused_before_it_is_read() {
    let mut a = spawn_node_with("A", |_| {}).await;
    let (id, _) = invite(&a).await;
    let addr = a
        .federation_url("")
        .trim_start_matches("http://")
        .to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    // Ten megabytes declared, none sent: the answer comes without waiting.
    let head = format!(
        "POST /federation/nodes/{id}/handshake HTTP/1.1\r\nhost: {addr}\r\n\
         content-type: application/json\r\ncontent-length: 10485760\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("answered without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("the body is too large"), "{text}");
    assert_eq!(a.node(id).await.status, "pending");
    a.stop().await;
}

#[tokio::test]
async fn a_sync_slowed_by_the_peers_rate_limit_waits_it_out_within_one_run() {
    // A serves 4 requests a second per pair; B asks for pages of 10 records.
    let mut a = spawn_node_with("A", |o| {
        o.set("federation.peer_requests_per_second", 4)
            .set("federation.peer_burst", 2);
    })
    .await;
    let mut b = spawn_node_with("B", |o| {
        o.set("sync.data_page_size", 10);
    })
    .await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    crate::data::share_account(&a, &b, a_for_b, b_for_a).await;
    let dir = tempfile::tempdir().unwrap();
    let file = crate::data::account_file(dir.path(), 60);
    cli_json(&a, &["record", "import", "Account", file.to_str().unwrap()]).await;
    let runs = cli_json(&b, &["sync", "now", &b_for_a.to_string(), "--kind", "data"]).await;
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    assert_eq!(runs[0]["created"], 60, "{runs:?}");
    let on_b = cli_json(&b, &["record", "list", "Contact"]).await;
    assert_eq!(on_b.as_array().unwrap().len(), 60);
    assert!(
        limited_metric(&a, "peer_rate").await > 0,
        "A refused some of B's pages, and B waited them out"
    );
    for d in [&mut a, &mut b] {
        d.stop().await;
    }
}
