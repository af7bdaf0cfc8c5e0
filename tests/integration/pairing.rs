//! Pairing two fedsync daemons: through the CLI, token scoping, re-pairing,
//! removal, and the state machine as an admin meets it.

use fedsync::admin::proto::v1;
use serde_json::Value;

use crate::common::{self, http, pair, run_cli, spawn_node, stderr, stdout, with_token};

async fn cli_json(args: &[&str]) -> Value {
    let out = run_cli(args).await;
    assert!(out.status.success(), "{args:?} failed: {}", stderr(&out));
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)))
}

#[tokio::test]
async fn two_daemons_pair_through_the_cli() {
    let mut a = spawn_node("nodeA").await;
    let mut b = spawn_node("nodeB").await;
    let a_dir = a.data_dir.display().to_string();
    let b_dir = b.data_dir.display().to_string();

    let created = cli_json(&[
        "node",
        "create",
        "--base-url",
        &b.base_url(),
        "--name",
        "node B",
        "--contact",
        "ops@b.example",
        "--data-dir",
        &a_dir,
        "--json",
    ])
    .await;
    assert_eq!(created["status"], "pending");
    assert_eq!(created["role"], "inviter");
    let a_id = created["id"].as_str().unwrap().to_owned();
    // A fresh URI replaces the first one.
    let uri_json = cli_json(&["node", "uri", &a_id, "--data-dir", &a_dir, "--json"]).await;
    let uri = uri_json["nodeUri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with(&format!("http://{a_id}:")), "{uri}");
    assert!(uri.ends_with("/federation?name=nodeA"), "{uri}");
    let stale = created["nodeUri"].as_str().unwrap();
    assert_ne!(stale, uri);

    let added = cli_json(&["node", "add-uri", &uri, "--data-dir", &b_dir, "--json"]).await;
    assert_eq!(added["sharedNodeId"], a_id.as_str());
    assert_eq!(added["role"], "invitee");
    assert_eq!(added["baseUrl"], a.base_url());
    let b_id = added["id"].as_str().unwrap().to_owned();

    // In words: what the other side's admin runs next, with its node id.
    let paired = common::run_cli(&["node", "pair", &b_id, "--data-dir", &b_dir]).await;
    assert!(paired.status.success(), "{}", common::stderr(&paired));
    let said = common::stdout(&paired);
    assert!(
        said.contains("is pair_requested")
            && said.contains(&format!("runs `fedsync node confirm {a_id}`")),
        "{said}"
    );
    let waiting = cli_json(&["node", "show", &a_id, "--data-dir", &a_dir, "--json"]).await;
    assert_eq!(waiting["status"], "pair_requested");
    assert!(
        waiting["handshakeSourceAddr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(waiting["handshakeRequestedAt"].is_string());
    assert!(
        waiting["peerTokenFingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(waiting["peerKind"], "fedsync");

    let confirmed = cli_json(&["node", "confirm", &a_id, "--data-dir", &a_dir, "--json"]).await;
    assert_eq!(confirmed["status"], "paired");
    for (dir, id) in [(&a_dir, &a_id), (&b_dir, &b_id)] {
        let list = cli_json(&["node", "list", "--data-dir", dir, "--json"]).await;
        assert_eq!(list[0]["status"], "paired", "{list}");
        assert_eq!(list[0]["id"], id.as_str());
        // Each calls the other with the token it was given.
        let check = cli_json(&["node", "check", id, "--data-dir", dir, "--json"]).await;
        assert_eq!(check["ok"], true, "{check}");
    }
    // Tokens differ per direction.
    let a_holds = a.held_token(a_id.parse().unwrap()).await.unwrap();
    let b_holds = b.held_token(b_id.parse().unwrap()).await.unwrap();
    assert_ne!(a_holds, b_holds);

    // The audit log tells the story.
    let events: Vec<String> = a.audit().await.into_iter().map(|e| e.event).collect();
    for expected in [
        "node.created",
        "ott.generated",
        "handshake.requested",
        "pairing.confirmed",
        "pairing.finished",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected} missing from {events:?}"
        );
    }
    let b_events: Vec<String> = b.audit().await.into_iter().map(|e| e.event).collect();
    for expected in [
        "node.created",
        "pairing.started",
        "handshake.sent",
        "pairing.finished",
    ] {
        assert!(
            b_events.iter().any(|e| e == expected),
            "{expected} missing from {b_events:?}"
        );
    }
    let audit_out = run_cli(&["audit", "--node", &a_id, "--data-dir", &a_dir, "--json"]).await;
    let audit: Value = serde_json::from_str(&stdout(&audit_out)).unwrap();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["nodeId"] == a_id.as_str())
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_token_works_only_on_its_own_pair() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let mut c = spawn_node("C").await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    let (a_for_c, _c_for_a) = pair(&a, &c).await;
    // B's token for A, used on A's routes for B and for C.
    let b_token = b.held_token(b_for_a).await.unwrap();
    let shared_ab = b.node(b_for_a).await.shared_node_id;
    assert_eq!(
        shared_ab, a_for_b,
        "both sides name the pair by the inviter's node id"
    );
    let a_base = a.federation_url("");
    let get = |path: String, token: String| {
        let url = format!("{a_base}{path}");
        async move { http().get(url).bearer_auth(token).send().await.unwrap() }
    };
    let own = get(
        format!("/federation/nodes/{a_for_b}/modules/exposed/"),
        b_token.clone(),
    )
    .await;
    assert_eq!(own.status(), 200);
    let body: Value = own.json().await.unwrap();
    assert_eq!(body["response"]["filter"]["nodeID"], a_for_b.to_string());
    assert!(body["response"]["set"].is_null());
    let other = get(
        format!("/federation/nodes/{a_for_c}/modules/exposed/"),
        b_token.clone(),
    )
    .await;
    assert_eq!(other.status(), 404, "a token of pair A-B on pair A-C");
    let events = a.audit().await;
    assert!(
        events
            .iter()
            .any(|e| e.event == "peer.cross_pair" && e.reason == "cross_pair")
    );
    for d in [&mut a, &mut b, &mut c] {
        d.stop().await;
    }
}

#[tokio::test]
async fn repairing_keeps_the_node_and_rotates_tokens() {
    use fedsync::domain::{ExposedModule, Id, ModuleField, NodeId};
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let (a_id, b_id) = pair(&a, &b).await;
    let old_b_token = b.held_token(b_id).await.unwrap();
    let old_a_token = a.held_token(a_id).await.unwrap();

    // An exposure on A for this pair must survive re-pairing.
    let store = a.store().await;
    let now = fedsync::domain::now();
    store
        .insert_exposed_module(&ExposedModule {
            id: Id::new(99).unwrap(),
            node_id: NodeId::from_u64(a_id).unwrap(),
            module_id: Id::new(7).unwrap(),
            namespace_id: Id::new(8).unwrap(),
            handle: "account".into(),
            name: "Account".into(),
            fields: vec![ModuleField {
                kind: "String".into(),
                name: "Phone".into(),
                label: "Phone".into(),
                is_multi: false,
            }],
            created_at: now,
            updated_at: now,
            deleted_at: None,
        })
        .await
        .unwrap();
    store.close().await;

    let token = a.admin_token();
    let fresh = a
        .nodes()
        .await
        .generate_node_uri(with_token(v1::NodeRef { id: a_id }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        fresh.node.as_ref().unwrap().status,
        "pending",
        "a new URI on a paired node starts re-pairing"
    );
    let readded = b
        .nodes()
        .await
        .add_node_from_uri(with_token(
            v1::AddNodeFromUriRequest {
                node_uri: fresh.node_uri,
            },
            &b.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(readded.readded);
    assert_eq!(
        readded.node.unwrap().id,
        b_id,
        "the same peer is the same node"
    );
    b.nodes()
        .await
        .pair_node(with_token(v1::NodeRef { id: b_id }, &b.admin_token()))
        .await
        .unwrap();
    a.nodes()
        .await
        .confirm_node(with_token(v1::NodeRef { id: a_id }, &token))
        .await
        .unwrap();
    assert_eq!(a.node(a_id).await.status, "paired");
    assert_eq!(b.node(b_id).await.status, "paired");

    // New tokens; the old ones are refused at once.
    let new_b_token = b.held_token(b_id).await.unwrap();
    assert_ne!(new_b_token, old_b_token);
    let path = format!("/federation/nodes/{a_id}/modules/exposed/");
    let old = http()
        .get(a.federation_url(&path))
        .bearer_auth(&old_b_token)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
    let new = http()
        .get(a.federation_url(&path))
        .bearer_auth(&new_b_token)
        .send()
        .await
        .unwrap();
    assert_eq!(new.status(), 200);
    let body: Value = new.json().await.unwrap();
    assert_eq!(
        body["response"]["set"][0]["handle"], "account",
        "the exposure stayed: {body}"
    );
    assert_eq!(body["response"]["set"][0]["fields"][0]["name"], "Phone");
    let old_a = http()
        .get(b.federation_url(&format!("/federation/nodes/{a_id}/modules/exposed/")))
        .bearer_auth(&old_a_token)
        .send()
        .await
        .unwrap();
    assert_eq!(old_a.status(), 401);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn removing_a_node_revokes_its_tokens_and_tells_a_fedsync_peer() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let (a_id, b_id) = pair(&a, &b).await;
    let b_token = b.held_token(b_id).await.unwrap();
    let path = format!("/federation/nodes/{a_id}/modules/exposed/");

    let removed = run_cli(&[
        "node",
        "rm",
        &a_id.to_string(),
        "--data-dir",
        &a.data_dir.display().to_string(),
        "--json",
    ])
    .await;
    assert!(removed.status.success(), "{}", stderr(&removed));
    let gone = http()
        .get(a.federation_url(&path))
        .bearer_auth(&b_token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 401, "revoked at once");
    // B heard about it: its node says what happened and its token for A is gone.
    let b_node = b.node(b_id).await;
    assert_eq!(b_node.status, "failed");
    assert!(
        b_node.status_reason.contains("the peer removed this pair"),
        "{}",
        b_node.status_reason
    );
    assert!(b.held_token(b_id).await.is_none());
    // A's list no longer shows it; --deleted does.
    let list = run_cli(&[
        "node",
        "list",
        "--json",
        "--data-dir",
        &a.data_dir.display().to_string(),
    ])
    .await;
    assert_eq!(stdout(&list), "[]\n");
    let all = run_cli(&[
        "node",
        "list",
        "--deleted",
        "--json",
        "--data-dir",
        &a.data_dir.display().to_string(),
    ])
    .await;
    let all: Value = serde_json::from_str(&stdout(&all)).unwrap();
    assert!(all[0]["deletedAt"].is_string());
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn actions_out_of_order_are_refused_with_what_to_do() {
    let mut a = spawn_node("A").await;
    let dir = a.data_dir.display().to_string();
    let created = cli_json(&[
        "node",
        "create",
        "--base-url",
        "http://127.0.0.1:9/federation",
        "--name",
        "B",
        "--data-dir",
        &dir,
        "--json",
    ])
    .await;
    let id = created["id"].as_str().unwrap();
    let early = run_cli(&["node", "confirm", id, "--data-dir", &dir]).await;
    assert_eq!(early.status.code(), Some(1));
    assert!(
        stderr(&early).contains("no handshake request has arrived yet"),
        "{}",
        stderr(&early)
    );
    let wrong_side = run_cli(&["node", "pair", id, "--data-dir", &dir]).await;
    assert!(!wrong_side.status.success());
    assert!(
        stderr(&wrong_side).contains("this node invited the peer"),
        "{}",
        stderr(&wrong_side)
    );
    let bad_url = run_cli(&[
        "node",
        "create",
        "--base-url",
        "ftp://x/federation",
        "--name",
        "B",
        "--data-dir",
        &dir,
    ])
    .await;
    assert_eq!(bad_url.status.code(), Some(1));
    assert!(
        stderr(&bad_url).contains("--base-url"),
        "{}",
        stderr(&bad_url)
    );
    let bad_uri = run_cli(&[
        "node",
        "add-uri",
        "https://42:short@example.com/federation",
        "--data-dir",
        &dir,
    ])
    .await;
    assert!(
        stderr(&bad_uri).contains("invalid pairing token"),
        "{}",
        stderr(&bad_uri)
    );
    assert!(
        !stderr(&bad_uri).contains("short"),
        "the token is never echoed"
    );
    let own = run_cli(&[
        "node",
        "add-uri",
        created["nodeUri"].as_str().unwrap(),
        "--data-dir",
        &dir,
    ])
    .await;
    assert!(
        stderr(&own).contains("generated by this node"),
        "{}",
        stderr(&own)
    );
    a.stop().await;
}

#[tokio::test]
async fn a_readonly_token_cannot_pair() {
    let mut a = spawn_node("A").await;
    let dir = a.data_dir.display().to_string();
    let minted = run_cli(&[
        "token",
        "admin",
        "--readonly",
        "--name",
        "dashboard",
        "--data-dir",
        &dir,
    ])
    .await;
    let token = stdout(&minted).trim().to_owned();
    let listed = run_cli(&[
        "node",
        "list",
        "--json",
        "--token",
        &token,
        "--data-dir",
        &dir,
    ])
    .await;
    assert!(listed.status.success());
    let refused = run_cli(&[
        "node",
        "create",
        "--base-url",
        "http://127.0.0.1:9/federation",
        "--name",
        "B",
        "--token",
        &token,
        "--data-dir",
        &dir,
    ])
    .await;
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        stderr(&refused).contains("read-only"),
        "{}",
        stderr(&refused)
    );
    let _ = common::stdout(&refused);
    a.stop().await;
}
