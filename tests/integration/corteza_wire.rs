//! Wire compatibility with real Corteza, checked against exchanges recorded
//! between two real Corteza 2024.9 servers (tests/fixtures/corteza-wire/):
//! fedsync accepts what Corteza sends in each role, and what fedsync sends is
//! what Corteza reads (federation-security 4.8). Broken and hostile answers
//! from a peer leave the node `failed` with a reason, ready to retry.

use fedsync::admin::proto::v1;
use serde_json::{Value, json};

use crate::common::fake_peer::{FakePeer, Reply, fixture};
use crate::common::{
    TestDaemon, add_node_uri, http, run_cli, spawn_node, spawn_node_with, stderr, with_token,
};

const CORTEZA_TOKEN_B: &str =
    "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.corteza-fed-token-issued-by-B.sig";
const CORTEZA_TOKEN_A: &str =
    "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.corteza-fed-token-issued-by-A.sig";
const OTT: &str = "Corteza0Pair0Token0Abcdefghij123";

/// Replays a recorded request against `daemon`, with the path's node id and
/// the body's placeholders replaced.
async fn replay(
    daemon: &TestDaemon,
    exchange: &Value,
    node_id: u64,
    bearer: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let request = &exchange["request"];
    let recorded_path = request["path"].as_str().unwrap();
    let recorded_id = recorded_path.split('/').nth(3).unwrap();
    let path = recorded_path.replace(recorded_id, &node_id.to_string());
    let mut builder = http().request(
        request["method"].as_str().unwrap().parse().unwrap(),
        daemon.federation_url(&path),
    );
    for (name, value) in request["headers"].as_object().unwrap() {
        let name = name.to_ascii_lowercase();
        if matches!(name.as_str(), "host" | "content-length" | "authorization") {
            continue;
        }
        builder = builder.header(name, value.as_str().unwrap());
    }
    if let Some(token) = bearer {
        assert!(
            request["headers"]["Authorization"]
                .as_str()
                .unwrap()
                .starts_with("Bearer ")
        );
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    // Same keys as recorded, real values.
    let recorded_keys: Vec<&String> = request["body"].as_object().unwrap().keys().collect();
    let sent_keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        recorded_keys, sent_keys,
        "the replayed body keeps the recorded keys"
    );
    let response = builder.body(body.to_string()).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create_node(a: &TestDaemon, base_url: &str) -> (u64, String) {
    let created = a
        .nodes()
        .await
        .create_node(with_token(
            v1::CreateNodeRequest {
                name: "corteza".into(),
                base_url: base_url.into(),
                contact: String::new(),
            },
            &a.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    (created.node.unwrap().id, created.node_uri)
}

#[tokio::test]
async fn our_node_uri_has_the_shape_corteza_hands_out() {
    let mut a = spawn_node("nodeA").await;
    let (id, uri) = create_node(&a, "http://127.0.0.1:9/federation").await;
    let recorded = fixture("002-A-generate-uri.json")["response"]["body"]["response"]
        .as_str()
        .unwrap()
        .to_owned();
    // Corteza: https://<id>:<32 chars>@<host>/federation?name=<label>
    let shape = |uri: &str| {
        let (scheme, rest) = uri.split_once("://").unwrap();
        let (user, rest) = rest.split_once(':').unwrap();
        let (_, rest) = rest.split_once('@').unwrap();
        let (_, path_query) = rest.split_once('/').unwrap();
        (
            scheme.to_owned(),
            user.chars().all(|c| c.is_ascii_digit()),
            path_query.to_owned(),
        )
    };
    let (_, recorded_numeric, recorded_tail) = shape(&recorded);
    let (_, ours_numeric, ours_tail) = shape(&uri);
    assert!(recorded_numeric && ours_numeric);
    assert_eq!(recorded_tail, "federation?name=nodeA");
    assert_eq!(ours_tail, "federation?name=nodeA");
    let parsed = fedsync::pairing::parse_node_uri(&uri, true).unwrap();
    assert_eq!(parsed.node_id.get(), id);
    assert!(fedsync::crypto::is_ott_shaped(&parsed.token));
    a.stop().await;
}

#[tokio::test]
async fn cortezas_handshake_request_is_accepted_as_corteza_sends_it() {
    let mut a = spawn_node("A").await;
    let (id, uri) = create_node(&a, "http://127.0.0.1:9/federation").await;
    let ott = fedsync::pairing::parse_node_uri(&uri, true)
        .unwrap()
        .token
        .to_string();
    let exchange = fixture("005-to-A.json");
    let body =
        json!({ "authToken": CORTEZA_TOKEN_B, "pairToken": ott, "sharedNodeID": id.to_string() });
    let (status, answer) = replay(&a, &exchange, id, None, body).await;
    assert_eq!(
        status,
        exchange["response"]["status"].as_u64().unwrap() as u16
    );
    assert_eq!(
        answer["success"], exchange["response"]["body"]["success"],
        "Corteza's success object"
    );
    let node = a.node(id).await;
    assert_eq!(node.status, "pair_requested");
    assert_eq!(
        node.peer_kind, "corteza",
        "no extension: the peer is Corteza"
    );
    assert_eq!(a.held_token(id).await.unwrap(), CORTEZA_TOKEN_B);
    a.stop().await;
}

#[tokio::test]
async fn as_invitee_fedsync_sends_what_corteza_reads_and_takes_its_completion() {
    let corteza_a = FakePeer::start().await;
    let handshake = fixture("005-to-A.json");
    corteza_a.reply(Reply::Json(200, handshake["response"]["body"].clone()));
    let mut b = spawn_node("B").await;
    let a1: u64 = 523615093115650149;
    let uri = format!("http://{a1}:{OTT}@{}/federation?name=nodeA", corteza_a.addr);
    let b_id = add_node_uri(&b, &uri).await;
    let paired = b
        .nodes()
        .await
        .pair_node(with_token(v1::NodeRef { id: b_id }, &b.admin_token()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paired.status, "pair_requested");
    assert_eq!(paired.peer_kind, "corteza");

    let sent = &corteza_a.requests()[0];
    let recorded = &handshake["request"];
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.path,
        format!("/federation/nodes/{a1}/handshake"),
        "Corteza's path, trailing slash exact"
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert!(
        sent.header("authorization").is_none(),
        "the handshake request carries no token header"
    );
    let body = sent.json();
    for key in recorded["body"].as_object().unwrap().keys() {
        assert!(body[key].is_string(), "{key} must be a JSON string: {body}");
    }
    assert_eq!(body["sharedNodeID"], a1.to_string());
    assert_eq!(body["pairToken"], OTT);
    let token_b = body["authToken"].as_str().unwrap().to_owned();

    // Corteza A completes the handshake, exactly as recorded (009).
    let completion = fixture("009-to-B.json");
    let (status, answer) = replay(
        &b,
        &completion,
        a1,
        Some(&token_b),
        json!({ "authToken": CORTEZA_TOKEN_A }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], completion["response"]["body"]["success"]);
    assert_eq!(b.node(b_id).await.status, "paired");
    assert_eq!(b.held_token(b_id).await.unwrap(), CORTEZA_TOKEN_A);
    b.stop().await;
}

#[tokio::test]
async fn as_inviter_fedsync_completes_the_way_corteza_expects() {
    let corteza_b = FakePeer::start().await;
    let completion = fixture("009-to-B.json");
    corteza_b.reply(Reply::Json(200, completion["response"]["body"].clone()));
    let mut a = spawn_node("A").await;
    let (id, uri) = create_node(&a, &corteza_b.base_url()).await;
    let ott = fedsync::pairing::parse_node_uri(&uri, true)
        .unwrap()
        .token
        .to_string();
    let body =
        json!({ "authToken": CORTEZA_TOKEN_B, "pairToken": ott, "sharedNodeID": id.to_string() });
    let (status, _) = replay(&a, &fixture("005-to-A.json"), id, None, body).await;
    assert_eq!(status, 200);
    let confirmed = a
        .nodes()
        .await
        .confirm_node(with_token(v1::NodeRef { id }, &a.admin_token()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(confirmed.status, "paired");

    let sent = &corteza_b.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.path,
        format!("/federation/nodes/{id}/handshake-complete"),
        "path names the shared node id"
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {CORTEZA_TOKEN_B}").as_str()),
        "B's own token"
    );
    let body = sent.json();
    let token_a = body["authToken"].as_str().unwrap();
    assert_ne!(token_a, CORTEZA_TOKEN_B);
    // The token we sent works on our routes, for this pair.
    let own = http()
        .get(a.federation_url(&format!("/federation/nodes/{id}/modules/exposed/")))
        .bearer_auth(token_a)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    a.stop().await;
}

#[tokio::test]
async fn a_corteza_error_with_http_200_fails_the_pairing_and_it_can_be_retried() {
    let corteza_a = FakePeer::start().await;
    let refused = fixture("079-peer-err-handshake-bad-pairtoken.json");
    assert_eq!(
        refused["response"]["status"], 200,
        "Corteza refuses with HTTP 200"
    );
    corteza_a.reply(Reply::Json(200, refused["response"]["body"].clone()));
    let mut b = spawn_node("B").await;
    let uri = format!(
        "http://523615093115650149:{OTT}@{}/federation?name=nodeA",
        corteza_a.addr
    );
    let b_id = add_node_uri(&b, &uri).await;
    let dir = b.data_dir.display().to_string();
    let out = run_cli(&["node", "pair", &b_id.to_string(), "--data-dir", &dir]).await;
    assert!(
        !out.status.success(),
        "W7: a 200 carrying an error is a refusal"
    );
    assert!(
        stderr(&out).contains("pairing token invalid"),
        "{}",
        stderr(&out)
    );
    let node = b.node(b_id).await;
    assert_eq!(node.status, "failed");
    assert!(
        node.status_reason.contains("pairing token invalid"),
        "{}",
        node.status_reason
    );
    // The token minted for the failed attempt does not work.
    let minted = corteza_a.requests()[0].json()["authToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let probe = http()
        .get(b.federation_url("/federation/nodes/523615093115650149/modules/exposed/"))
        .bearer_auth(&minted)
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 401);
    // Retry once the peer accepts.
    let out = run_cli(&[
        "node",
        "pair",
        &b_id.to_string(),
        "--data-dir",
        &dir,
        "--json",
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(b.node(b_id).await.status, "pair_requested");
    b.stop().await;
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let elsewhere = FakePeer::start().await;
    let redirecting = FakePeer::start().await;
    redirecting.reply(Reply::Raw(
        307,
        vec![(
            "location".into(),
            format!("{}/nodes/1/handshake", elsewhere.base_url()),
        )],
        Vec::new(),
    ));
    let mut b = spawn_node("B").await;
    let b_id = add_node_uri(
        &b,
        &format!("http://42:{OTT}@{}/federation", redirecting.addr),
    )
    .await;
    let err = b
        .nodes()
        .await
        .pair_node(with_token(v1::NodeRef { id: b_id }, &b.admin_token()))
        .await
        .unwrap_err();
    assert!(err.message().contains("redirect"), "{}", err.message());
    assert!(
        elsewhere.requests().is_empty(),
        "C5: no request, no token, went to the redirect target"
    );
    assert_eq!(b.node(b_id).await.status, "failed");
    b.stop().await;
}

#[tokio::test]
async fn a_stalled_peer_is_cut_off_by_the_timeout() {
    let stalled = FakePeer::start().await;
    stalled.reply(Reply::Stall);
    let mut b = spawn_node_with("B", |o| {
        o.set("federation.peer_request_timeout", "1s");
    })
    .await;
    let b_id = add_node_uri(&b, &format!("http://42:{OTT}@{}/federation", stalled.addr)).await;
    let err = b
        .nodes()
        .await
        .pair_node(with_token(v1::NodeRef { id: b_id }, &b.admin_token()))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::Unavailable,
        "a timeout is worth retrying: {}",
        err.message()
    );
    assert!(
        err.message().contains("did not answer within 1s"),
        "{}",
        err.message()
    );
    let node = b.node(b_id).await;
    assert_eq!(node.status, "failed");
    assert!(
        node.status_reason.contains("retry with `fedsync node pair"),
        "{}",
        node.status_reason
    );
    b.stop().await;
}

#[tokio::test]
async fn a_huge_answer_is_not_read_past_the_cap() {
    let flooding = FakePeer::start().await;
    flooding.reply(Reply::Raw(
        200,
        vec![("content-type".into(), "application/json".into())],
        vec![b' '; 2 * 1024 * 1024],
    ));
    let mut b = spawn_node_with("B", |o| {
        o.set("federation.peer_max_response_bytes", 65536);
    })
    .await;
    let b_id = add_node_uri(&b, &format!("http://42:{OTT}@{}/federation", flooding.addr)).await;
    let err = b
        .nodes()
        .await
        .pair_node(with_token(v1::NodeRef { id: b_id }, &b.admin_token()))
        .await
        .unwrap_err();
    assert!(
        err.message().contains("larger than 65536 bytes"),
        "{}",
        err.message()
    );
    assert_eq!(b.node(b_id).await.status, "failed");
    b.stop().await;
}

#[tokio::test]
async fn private_addresses_are_never_contacted_without_the_insecure_flag() {
    let target = FakePeer::start().await;
    let mut b = spawn_node_with("B", |o| {
        o.set("federation.allow_insecure_peers", false).set(
            "federation.public_url",
            "https://b.fedsync.invalid/federation",
        );
    })
    .await;
    let token = b.admin_token();
    // http is refused outright.
    let http_uri = format!("http://42:{OTT}@{}/federation", target.addr);
    let refused = b
        .nodes()
        .await
        .add_node_from_uri(with_token(
            v1::AddNodeFromUriRequest { node_uri: http_uri },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    // https to a loopback literal and to a name that resolves to loopback: never contacted.
    for host in [
        target.addr.to_string(),
        format!("localhost:{}", target.addr.port()),
    ] {
        let uri = format!("https://42:{OTT}@{host}/federation");
        let id = b
            .nodes()
            .await
            .add_node_from_uri(with_token(
                v1::AddNodeFromUriRequest { node_uri: uri },
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
            .node
            .unwrap()
            .id;
        let err = b
            .nodes()
            .await
            .pair_node(with_token(v1::NodeRef { id }, &token))
            .await
            .unwrap_err();
        assert!(
            err.message().contains("not contacted"),
            "{host}: {}",
            err.message()
        );
        assert!(
            err.message().contains("loopback"),
            "{host}: {}",
            err.message()
        );
        let node = b.node(id).await;
        assert_eq!(node.status, "failed");
    }
    assert_eq!(target.connections(), 0, "U2: no packet reached the address");
    b.stop().await;
}
