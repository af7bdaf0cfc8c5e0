//! The handshake endpoints under attack (federation-security 4.2-4.4):
//! every refusal is uniform, audited, and changes no state; the OTT is
//! single-use, expiring and locked after repeated failures.

use fedsync::admin::proto::v1;
use fedsync::domain::NodeId;
use serde_json::{Value, json};

use crate::common::{TestDaemon, http, pair, spawn_node, with_token};

const TOKEN_B: &str = "eyJhbGciOiJIUzUxMiJ9.peer-token-of-b.signature";

/// An inviter node on `a` with a live node URI: (node id, OTT).
pub(crate) async fn invite(a: &TestDaemon) -> (u64, String) {
    let created = a
        .nodes()
        .await
        .create_node(with_token(
            v1::CreateNodeRequest {
                name: "B".into(),
                base_url: "http://127.0.0.1:9/federation".into(),
                contact: String::new(),
            },
            &a.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let uri = fedsync::pairing::parse_node_uri(&created.node_uri, true).unwrap();
    (created.node.unwrap().id, uri.token.to_string())
}

async fn post_json(a: &TestDaemon, path: &str, body: &Value) -> (u16, Value) {
    let response = http()
        .post(a.federation_url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn corteza_body(ott: &str, node: u64) -> Value {
    json!({ "pairToken": ott, "authToken": TOKEN_B, "sharedNodeID": node.to_string() })
}

async fn refusal_reasons(a: &TestDaemon) -> Vec<String> {
    a.audit()
        .await
        .into_iter()
        .filter(|e| e.event == "handshake.refused")
        .map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn wrong_tokens_unknown_nodes_and_mismatched_ids_get_one_answer() {
    let mut a = spawn_node("A").await;
    let (id, ott) = invite(&a).await;
    let mut wrong = ott.clone();
    wrong.replace_range(0..1, if ott.starts_with('x') { "y" } else { "x" });
    let path = format!("/federation/nodes/{id}/handshake");
    let uniform = json!({ "error": { "message": "pairing token invalid" } });

    // H1 wrong OTT.
    let (status, body) = post_json(&a, &path, &corteza_body(&wrong, id)).await;
    assert_eq!((status, &body), (401, &uniform));
    // H5 unknown node.
    let (status, body) = post_json(
        &a,
        "/federation/nodes/523615093115650149/handshake",
        &corteza_body(&ott, 523615093115650149),
    )
    .await;
    assert_eq!((status, &body), (401, &uniform));
    // H6 path id differs from the body's.
    let (status, body) = post_json(&a, &path, &corteza_body(&ott, id + 1)).await;
    assert_eq!((status, &body), (401, &uniform));
    // S12-style path ids.
    for bad in ["00042", "1%00", "..%2f..%2fadmin"] {
        let (status, _) = post_json(
            &a,
            &format!("/federation/nodes/{bad}/handshake"),
            &corteza_body(&ott, id),
        )
        .await;
        assert!(status == 401 || status == 404, "{bad}: {status}");
    }

    let node = a.node(id).await;
    assert_eq!(node.status, "pending", "no state change");
    assert_eq!(node.peer_token_fingerprint, "");
    let store = a.store().await;
    let token = store
        .get_pairing_token(NodeId::from_u64(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.failed_attempts, 1, "only the wrong token counted");
    store.close().await;
    let reasons = refusal_reasons(&a).await;
    for expected in ["wrong_token", "unknown_node", "id_mismatch", "bad_node_id"] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "{expected} not in {reasons:?}"
        );
    }
    // Audit events never carry the token.
    assert!(!format!("{:?}", a.audit().await).contains(&ott));
    // The right token still works afterwards.
    let (status, body) = post_json(&a, &path, &corteza_body(&ott, id)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"]["message"], "OK");
    a.stop().await;
}

#[tokio::test]
async fn malformed_handshakes_are_refused_before_parsing_and_change_nothing() {
    let mut a = spawn_node("A").await;
    let (id, ott) = invite(&a).await;
    let path = format!("/federation/nodes/{id}/handshake");
    let url = a.federation_url(&path);
    // H2: empty, missing, null, number, array.
    for body in [
        json!({ "pairToken": "", "authToken": TOKEN_B, "sharedNodeID": id.to_string() }),
        json!({ "authToken": TOKEN_B, "sharedNodeID": id.to_string() }),
        json!({ "pairToken": null, "authToken": TOKEN_B, "sharedNodeID": id.to_string() }),
        json!({ "pairToken": 12345, "authToken": TOKEN_B, "sharedNodeID": id.to_string() }),
        json!({ "pairToken": [ott.clone()], "authToken": TOKEN_B, "sharedNodeID": id.to_string() }),
        json!({ "pairToken": ott.clone(), "sharedNodeID": id.to_string() }),
        json!({ "pairToken": ott.clone(), "authToken": "x".repeat(5000), "sharedNodeID": id.to_string() }),
        json!({}),
    ] {
        let (status, answer) = post_json(&a, &path, &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("request invalid"),
            "{answer}"
        );
    }
    let send_raw = |content_type: &'static str, body: Vec<u8>| {
        let url = url.clone();
        async move {
            http()
                .post(url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // H11: a 10 MB body, a 1 MB token, deep nesting, duplicate keys.
    assert_eq!(
        send_raw("application/json", vec![b' '; 10 * 1024 * 1024]).await,
        413
    );
    let big = format!(
        r#"{{"pairToken":"{ott}","authToken":"{}","sharedNodeID":"{id}"}}"#,
        "a".repeat(1024 * 1024)
    );
    assert_eq!(send_raw("application/json", big.into_bytes()).await, 413);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    assert!(matches!(
        send_raw("application/json", deep).await,
        400 | 413
    ));
    let duplicate = format!(
        r#"{{"pairToken":"{ott}","pairToken":"{ott}","authToken":"t","sharedNodeID":"{id}"}}"#
    );
    assert_eq!(
        send_raw("application/json", duplicate.into_bytes()).await,
        400
    );
    // H12: forms and multipart are not parsed.
    let form = format!("pairToken={ott}&authToken=t&sharedNodeID={id}");
    assert_eq!(
        send_raw("application/x-www-form-urlencoded", form.into_bytes()).await,
        415
    );
    assert_eq!(
        send_raw("multipart/form-data; boundary=x", b"--x--".to_vec()).await,
        415
    );

    assert_eq!(a.node(id).await.status, "pending");
    let (status, _) = post_json(&a, &path, &corteza_body(&ott, id)).await;
    assert_eq!(status, 200, "the OTT survived the garbage");
    a.stop().await;
}

#[tokio::test]
async fn an_ott_works_once_and_never_replaces_the_stored_token() {
    let mut a = spawn_node("A").await;
    let (id, ott) = invite(&a).await;
    let path = format!("/federation/nodes/{id}/handshake");
    let (status, _) = post_json(&a, &path, &corteza_body(&ott, id)).await;
    assert_eq!(status, 200);
    let first = a.node(id).await;
    assert_eq!(first.status, "pair_requested");
    // H3: replay with another token for us.
    let replay =
        json!({ "pairToken": ott, "authToken": "attacker-token", "sharedNodeID": id.to_string() });
    let (status, _) = post_json(&a, &path, &replay).await;
    assert_eq!(status, 401);
    let after = a.node(id).await;
    assert_eq!(
        after.peer_token_fingerprint, first.peer_token_fingerprint,
        "stored token not overwritten"
    );
    assert_eq!(a.held_token(id).await.unwrap(), TOKEN_B);
    assert!(refusal_reasons(&a).await.contains(&"used".to_owned()));

    // H13: even a live OTT is refused while the node is not pending.
    use fedsync::domain::{OttChange, PairingChange};
    let store = a.store().await;
    let node = store
        .get_node(NodeId::from_u64(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let fresh = "Fresh0Fresh0Fresh0Fresh0Fresh012";
    let mut change = PairingChange::update(node);
    change.ott = Some(OttChange::Replace {
        token_hash: fedsync::crypto::sha256(fresh.as_bytes()).to_vec(),
        expires_at: fedsync::domain::now() + chrono::Duration::hours(1),
    });
    assert!(store.apply_pairing_change(&change).await.unwrap());
    store.close().await;
    let (status, _) = post_json(&a, &path, &corteza_body(fresh, id)).await;
    assert_eq!(status, 401);
    assert!(
        refusal_reasons(&a)
            .await
            .contains(&"wrong_state".to_owned())
    );
    assert_eq!(a.held_token(id).await.unwrap(), TOKEN_B);
    a.stop().await;
}

#[tokio::test]
async fn an_expired_ott_is_refused_and_voided() {
    let mut a = spawn_node("A").await;
    let (id, ott) = invite(&a).await;
    // The clock of this test: the token's expiry moved into the past.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        a.data_dir.join("fedsync.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE pairing_tokens SET expires_at = expires_at - 25 * 3600 * 1000000 WHERE node_id = $1")
        .bind(id as i64)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (status, _) = post_json(
        &a,
        &format!("/federation/nodes/{id}/handshake"),
        &corteza_body(&ott, id),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(a.node(id).await.status, "pending");
    let events = a.audit().await;
    assert!(events.iter().any(|e| e.event == "ott.expired"));
    let store = a.store().await;
    let token = store
        .get_pairing_token(NodeId::from_u64(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(token.token_hash.is_none(), "an expired token is voided");
    store.close().await;
    a.stop().await;
}

#[tokio::test]
async fn twenty_racing_handshakes_make_one_transition() {
    let mut a = spawn_node("A").await;
    let (id, ott) = invite(&a).await;
    let url = a.federation_url(&format!("/federation/nodes/{id}/handshake"));
    let body = corteza_body(&ott, id);
    let requests = (0..20).map(|_| {
        let url = url.clone();
        let body = body.clone();
        tokio::spawn(async move {
            http()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        19,
        "{statuses:?}"
    );
    let transitions = a
        .audit()
        .await
        .into_iter()
        .filter(|e| e.event == "handshake.requested")
        .count();
    assert_eq!(transitions, 1);
    assert_eq!(a.node(id).await.status, "pair_requested");
    a.stop().await;
}

#[tokio::test]
async fn five_wrong_guesses_lock_the_ott_until_a_new_uri() {
    let mut a = spawn_node("A").await;
    let (id, ott) = invite(&a).await;
    let path = format!("/federation/nodes/{id}/handshake");
    for guess in 0..6 {
        let wrong = format!("{:0>32}", guess);
        let (status, _) = post_json(&a, &path, &corteza_body(&wrong, id)).await;
        assert_eq!(status, 401);
    }
    let (status, _) = post_json(&a, &path, &corteza_body(&ott, id)).await;
    assert_eq!(status, 401, "H8: the right token is refused once locked");
    let events = a.audit().await;
    assert_eq!(events.iter().filter(|e| e.event == "ott.locked").count(), 1);
    assert!(refusal_reasons(&a).await.contains(&"locked".to_owned()));
    assert_eq!(a.node(id).await.status, "pending");
    // The admin generates a new URI; it works.
    let fresh = a
        .nodes()
        .await
        .generate_node_uri(with_token(v1::NodeRef { id }, &a.admin_token()))
        .await
        .unwrap()
        .into_inner();
    let token = fedsync::pairing::parse_node_uri(&fresh.node_uri, true)
        .unwrap()
        .token;
    let (status, _) = post_json(&a, &path, &corteza_body(&token, id)).await;
    assert_eq!(status, 200);
    a.stop().await;
}

#[tokio::test]
async fn the_documented_handshake_spelling_is_served_too() {
    let mut a = spawn_node("A").await;
    let created = a
        .nodes()
        .await
        .create_node(with_token(
            v1::CreateNodeRequest {
                name: "B".into(),
                base_url: "http://127.0.0.1:9/federation".into(),
                contact: String::new(),
            },
            &a.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let id = created.node.unwrap().id;
    // seeds/003: {nodeURI, token, nodeIDB}; the OTT travels inside the node URI.
    let body =
        json!({ "nodeURI": created.node_uri, "token": TOKEN_B, "nodeIDB": "523615104876347593" });
    let (status, answer) = post_json(&a, &format!("/federation/nodes/{id}/handshake"), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(a.node(id).await.status, "pair_requested");
    assert_eq!(a.held_token(id).await.unwrap(), TOKEN_B);
    a.stop().await;
}

#[tokio::test]
async fn handshake_completion_needs_the_pairs_token_once() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let mut c = spawn_node("C").await;
    // B adds A's URI and requests the handshake; A holds B's token.
    let (a_id, _) = invite_between(&a, &b).await;
    let b_id = b
        .nodes()
        .await
        .list_nodes(with_token(
            v1::ListNodesRequest::default(),
            &b.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner()
        .nodes[0]
        .id;
    b.nodes()
        .await
        .pair_node(with_token(v1::NodeRef { id: b_id }, &b.admin_token()))
        .await
        .unwrap();
    let token_b = a.held_token(a_id).await.unwrap();
    // And a second pair on B, with C.
    let (_c_for_b, b_for_c) = pair(&c, &b).await;
    let c_shared = b.node(b_for_c).await.shared_node_id;

    let path = format!("/federation/nodes/{a_id}/handshake-complete");
    let complete = |token: Option<String>, path: String, body: Value| {
        let url = b.federation_url(&path);
        async move {
            let mut request = http().post(url).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send().await.unwrap().status().as_u16()
        }
    };
    let body = json!({ "authToken": "token-of-a-for-b" });
    // C1: no bearer, or a malformed one.
    assert_eq!(complete(None, path.clone(), body.clone()).await, 401);
    let lower = http()
        .post(b.federation_url(&path))
        .header("authorization", format!("bearer {token_b}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 401);
    // C2: the token of pair A-B on pair C-B.
    assert_eq!(
        complete(
            Some(token_b.clone()),
            format!("/federation/nodes/{c_shared}/handshake-complete"),
            body.clone()
        )
        .await,
        404
    );
    assert_eq!(b.node(b_for_c).await.status, "paired", "pair C-B untouched");
    // The real completion, then C3: a second one is refused.
    assert_eq!(
        complete(Some(token_b.clone()), path.clone(), body.clone()).await,
        200
    );
    assert_eq!(b.node(b_id).await.status, "paired");
    assert_eq!(b.held_token(b_id).await.unwrap(), "token-of-a-for-b");
    assert_eq!(
        complete(
            Some(token_b.clone()),
            path.clone(),
            json!({ "token": "again" })
        )
        .await,
        409
    );
    assert_eq!(b.held_token(b_id).await.unwrap(), "token-of-a-for-b");
    for d in [&mut a, &mut b, &mut c] {
        d.stop().await;
    }
}

/// `a` invites `b`: the node on `a` and the URI added on `b`.
async fn invite_between(a: &TestDaemon, b: &TestDaemon) -> (u64, String) {
    let created = a
        .nodes()
        .await
        .create_node(with_token(
            v1::CreateNodeRequest {
                name: "peer".into(),
                base_url: b.base_url(),
                contact: String::new(),
            },
            &a.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    b.nodes()
        .await
        .add_node_from_uri(with_token(
            v1::AddNodeFromUriRequest {
                node_uri: created.node_uri.clone(),
            },
            &b.admin_token(),
        ))
        .await
        .unwrap();
    (created.node.unwrap().id, created.node_uri)
}

#[tokio::test]
async fn only_a_strict_bearer_header_with_our_registered_token_passes() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let (a_id, b_id) = pair(&a, &b).await;
    let token = b.held_token(b_id).await.unwrap();
    let url = a.federation_url(&format!("/federation/nodes/{a_id}/modules/exposed/"));
    let status = |request: reqwest::RequestBuilder| async move {
        request.send().await.unwrap().status().as_u16()
    };
    assert_eq!(status(http().get(&url).bearer_auth(&token)).await, 200);
    // S4: query, cookie and Basic do not count.
    assert_eq!(status(http().get(format!("{url}?jwt={token}"))).await, 401);
    assert_eq!(
        status(http().get(format!("{url}?access_token={token}"))).await,
        401
    );
    assert_eq!(
        status(http().get(&url).header("cookie", format!("jwt={token}"))).await,
        401
    );
    assert_eq!(
        status(http().get(&url).basic_auth(&token, Some("x"))).await,
        401
    );
    // S5: ambiguous headers.
    assert_eq!(
        status(
            http()
                .get(&url)
                .header("authorization", format!("Bearer  {token}"))
        )
        .await,
        401
    );
    // (A trailing space never arrives: HTTP parsers strip it from field values.)
    assert_eq!(
        status(
            http()
                .get(&url)
                .header("authorization", format!("bearer {token}"))
        )
        .await,
        401
    );
    assert_eq!(
        status(
            http()
                .get(&url)
                .header("authorization", format!("Bearer {token}"))
                .header("authorization", format!("Bearer {token}"))
        )
        .await,
        401
    );
    // S6: alg none, another node's signature, an admin token of A.
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let claims = token.split('.').nth(1).unwrap();
    let none = format!("{}.{claims}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    assert_eq!(status(http().get(&url).bearer_auth(&none)).await, 401);
    let a_holds = a.held_token(a_id).await.unwrap();
    assert_eq!(
        status(http().get(&url).bearer_auth(&a_holds)).await,
        401,
        "B signed it, not A"
    );
    assert_eq!(
        status(http().get(&url).bearer_auth(a.admin_token())).await,
        401
    );
    let reasons: Vec<String> = a
        .audit()
        .await
        .into_iter()
        .filter(|e| e.event == "peer.auth_failed")
        .map(|e| e.reason)
        .collect();
    assert!(reasons.contains(&"missing".to_owned()), "{reasons:?}");
    assert!(
        reasons.contains(&"malformed_header".to_owned()),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"unknown_token".to_owned()), "{reasons:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_token_unused_past_the_idle_timeout_is_revoked() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let (a_id, b_id) = pair(&a, &b).await;
    let token = b.held_token(b_id).await.unwrap();
    let url = a.federation_url(&format!("/federation/nodes/{a_id}/modules/exposed/"));
    assert_eq!(
        http()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Thirty-one days pass without a call (the default idle timeout is 30 days).
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        a.data_dir.join("fedsync.db").display()
    ))
    .await
    .unwrap();
    let month: i64 = 31 * 24 * 3600 * 1_000_000;
    sqlx::query(
        "UPDATE issued_tokens SET created_at = created_at - $1, last_used_at = last_used_at - $1",
    )
    .bind(month)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(
        http()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let store = a.store().await;
    let tokens = store
        .list_issued_tokens(NodeId::from_u64(a_id).unwrap())
        .await
        .unwrap();
    assert!(
        tokens
            .iter()
            .any(|t| t.revoked_reason == "idle" && t.revoked_at.is_some()),
        "{tokens:?}"
    );
    store.close().await;
    let events = a.audit().await;
    assert!(
        events
            .iter()
            .any(|e| e.event == "token.revoked" && e.reason == "idle")
    );
    // Revoked stays revoked.
    assert_eq!(
        http()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    a.stop().await;
    b.stop().await;
}
