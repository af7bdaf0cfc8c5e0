//! Corteza's federation admin REST API on the admin listener: the pairing
//! walkthrough of Corteza's documentation with plain HTTP requests shaped as
//! it shows them, the calls Corteza's JS API client makes (request shapes of
//! `lib/js/src/api-clients/federation.ts`), and admin authentication on every
//! route (and none of them on the federation listener).

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{self, TestDaemon, cli_json, http, spawn_node};

/// An admin REST call with the daemon's admin token; (status, body).
async fn call(d: &TestDaemon, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    call_as(d, method, path, body, Some(&d.admin_token())).await
}

async fn call_as(
    d: &TestDaemon,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut request = http()
        .request(method, d.admin_url(&format!("/federation{path}")))
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The `response` of a call that must succeed.
async fn ok(d: &TestDaemon, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, answer) = call(d, method.clone(), path, body).await;
    assert_eq!(status, 200, "{method} {path}: {answer}");
    assert!(answer.get("error").is_none(), "{method} {path}: {answer}");
    answer.get("response").cloned().unwrap_or(answer)
}

fn acknowledged(answer: &Value) {
    assert_eq!(answer, &json!({"success": {"message": "OK"}}));
}

fn host_port(d: &TestDaemon) -> String {
    d.running().federation_addr.to_string()
}

#[tokio::test]
async fn the_documentation_pairing_walkthrough_pairs_two_daemons() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;

    // Node A registers node B from its domain and gets a node URI.
    let created = ok(
        &a,
        Method::POST,
        "/nodes",
        Some(json!({
            "myDomain": host_port(&a),
            "domain": host_port(&b),
            "name": "Node B"
        })),
    )
    .await;
    let a_node = created["nodeID"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "pending");
    assert_eq!(created["name"], "Node B");
    assert_eq!(created["domain"], host_port(&b));
    let node_uri = created["nodeURI"].as_str().unwrap().to_owned();
    // A bare domain means http://DOMAIN/federation here (insecure peers are
    // allowed on loopback test nodes).
    let shown = ok(&a, Method::GET, &format!("/nodes/{a_node}"), None).await;
    assert_eq!(shown["baseURL"], b.base_url());

    // Node B registers node A from the node URI.
    let added = ok(
        &b,
        Method::POST,
        "/nodes",
        Some(json!({ "myDomain": host_port(&b), "nodeURI": node_uri })),
    )
    .await;
    let b_node = added["nodeID"].as_str().unwrap().to_owned();
    assert_eq!(added["sharedNodeID"], a_node.as_str());
    assert_eq!(added["status"], "pending");

    // B starts the handshake (no body), A's admin confirms.
    let (status, answer) = call(&b, Method::POST, &format!("/nodes/{b_node}/pair"), None).await;
    assert_eq!(status, 200, "{answer}");
    acknowledged(&answer);
    let requested = ok(&a, Method::GET, &format!("/nodes/{a_node}"), None).await;
    assert_eq!(requested["status"], "pair_requested", "{requested}");
    // Corteza's web app shows "confirm" when nodeID == sharedNodeID here.
    assert_eq!(requested["sharedNodeID"], requested["nodeID"]);
    let (status, answer) = call(
        &a,
        Method::POST,
        &format!("/nodes/{a_node}/handshake-confirm"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    acknowledged(&answer);
    for (d, id) in [(&a, &a_node), (&b, &b_node)] {
        let node = ok(d, Method::GET, &format!("/nodes/{id}"), None).await;
        assert_eq!(node["status"], "paired", "{node}");
    }
    // Both can call each other with the tokens they exchanged.
    let checked = cli_json(&b, &["node", "check", &b_node]).await;
    assert_eq!(checked["ok"], true, "{checked}");

    // The documented module calls: expose with a field list, change the
    // fields, read what is shared, map with a bare list, stop exposing.
    let module = cli_json(
        &a,
        &[
            "module",
            "create",
            "--handle",
            "Account",
            "--field",
            "LinkedIn:Url",
            "--field",
            "Phone:String",
        ],
    )
    .await;
    let module_id = module["id"].as_str().unwrap();
    let exposed = ok(
        &a,
        Method::PUT,
        &format!("/nodes/{a_node}/modules/{module_id}"),
        Some(json!([{"name": "LinkedIn", "label": "LinkedIn Url", "kind": "Url", "is_multi": 0}])),
    )
    .await;
    assert_eq!(exposed["handle"], "Account");
    assert_eq!(exposed["fields"][0]["name"], "LinkedIn");
    let exposed_id = exposed["moduleID"].as_str().unwrap().to_owned();
    let changed = ok(
        &a,
        Method::PUT,
        &format!("/nodes/{a_node}/modules/{exposed_id}/exposed"),
        Some(json!([
            {"name": "LinkedIn", "label": "LinkedIn", "kind": "Url", "is_multi": 1},
            {"name": "Phone", "label": "Phone", "kind": "String", "is_multi": 0}
        ])),
    )
    .await;
    assert_eq!(changed["fields"].as_array().unwrap().len(), 2, "{changed}");
    let read = ok(
        &a,
        Method::GET,
        &format!("/nodes/{a_node}/modules/{exposed_id}/exposed"),
        None,
    )
    .await;
    assert_eq!(read["fields"], changed["fields"]);
    let run = cli_json(&b, &["sync", "now", &b_node, "--kind", "structure"]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let shared = ok(
        &b,
        Method::GET,
        &format!("/nodes/{b_node}/modules/?shared=1"),
        None,
    )
    .await;
    let shared_id = shared[0]["moduleID"].as_str().unwrap().to_owned();
    let one = ok(
        &b,
        Method::GET,
        &format!("/nodes/{b_node}/modules/{shared_id}/shared"),
        None,
    )
    .await;
    assert_eq!(one["fields"][1]["name"], "Phone", "{one}");
    // The documented mapping names no local module: the one with the shared
    // module's handle takes it.
    cli_json(
        &b,
        &[
            "module",
            "create",
            "--handle",
            "Account",
            "--field",
            "Social:String",
        ],
    )
    .await;
    let mapped = ok(
        &b,
        Method::PUT,
        &format!("/nodes/{b_node}/modules/{shared_id}/mapped"),
        Some(json!([{
            "origin": {"name": "LinkedIn", "kind": "Url", "is_multi": 0},
            "destination": {"name": "Social", "kind": "String", "is_multi": 0}
        }])),
    )
    .await;
    assert_eq!(
        mapped["mapping"][0]["destination"]["name"], "Social",
        "{mapped}"
    );
    let read = ok(
        &b,
        Method::GET,
        &format!("/nodes/{b_node}/modules/{shared_id}/mapped"),
        None,
    )
    .await;
    assert_eq!(read["mapping"], mapped["mapping"]);
    let (status, _) = call(
        &a,
        Method::DELETE,
        &format!("/nodes/{a_node}/modules/{module_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let listed = ok(
        &a,
        Method::GET,
        &format!("/nodes/{a_node}/modules/?exposed=1"),
        None,
    )
    .await;
    assert_eq!(listed, json!([]), "no longer exposed");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_calls_of_cortezas_js_client_pair_expose_and_map() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;

    // nodeCreate({baseURL, name, contact}) -> NodePayload
    let created = ok(
        &a,
        Method::POST,
        "/nodes/",
        Some(json!({ "baseURL": b.base_url(), "name": "B", "contact": "b@example.org" })),
    )
    .await;
    let a_node = created["nodeID"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "pending");
    assert_eq!(created["canManageNode"], true);
    assert_eq!(created["canCreateModule"], true);
    assert_eq!(created["contact"], "b@example.org");
    // nodeGenerateUri -> the URI as a JSON string
    let uri = ok(&a, Method::POST, &format!("/nodes/{a_node}/uri"), None).await;
    let uri = uri.as_str().expect("a string").to_owned();
    assert!(uri.contains(&a_node), "{uri}");
    // nodeCreate({pairingURI}) on B -> a bare Node
    let added = ok(
        &b,
        Method::POST,
        "/nodes/",
        Some(json!({ "baseURL": "", "name": "", "contact": "", "pairingURI": uri })),
    )
    .await;
    let b_node = added["nodeID"].as_str().unwrap().to_owned();
    assert_eq!(added["sharedNodeID"], a_node.as_str());
    assert!(added.get("canManageNode").is_none(), "{added}");
    // nodePair, nodeHandshakeConfirm (JSON bodies of `{}`)
    acknowledged(
        &call(
            &b,
            Method::POST,
            &format!("/nodes/{b_node}/pair"),
            Some(json!({})),
        )
        .await
        .1,
    );
    acknowledged(
        &call(
            &a,
            Method::POST,
            &format!("/nodes/{a_node}/handshake-confirm"),
            Some(json!({})),
        )
        .await
        .1,
    );
    // nodeSearch({status: 'paired'}) -> {filter, set}
    let found = ok(&a, Method::GET, "/nodes/?status=paired&limit=20", None).await;
    let set = found["set"].as_array().unwrap();
    assert_eq!(set.len(), 1, "{found}");
    assert_eq!(set[0]["nodeID"], a_node.as_str());
    assert_eq!(set[0]["canManageNode"], true);
    assert_eq!(found["filter"]["status"], "paired");

    // manageStructureCreateExposed: a compose module with chosen fields.
    let module = cli_json(
        &a,
        &[
            "module",
            "create",
            "--handle",
            "Account",
            "--field",
            "Name:String",
            "--field",
            "Secret:String",
        ],
    )
    .await;
    let (module_id, namespace_id) = (
        module["id"].as_str().unwrap(),
        module["namespaceId"].as_str().unwrap(),
    );
    let exposed = ok(
        &a,
        Method::PUT,
        &format!("/nodes/{a_node}/modules/"),
        Some(json!({
            "composeModuleID": module_id,
            "composeNamespaceID": namespace_id,
            "name": "Account",
            "handle": "Account",
            "fields": [{"kind": "String", "name": "Name", "label": "Name", "isMulti": false}]
        })),
    )
    .await;
    let exposed_id = exposed["moduleID"].as_str().unwrap().to_owned();
    assert_eq!(exposed["composeModuleID"], module_id);
    assert_eq!(exposed["nodeID"], a_node.as_str());
    assert_eq!(exposed["canManageModule"], true);
    assert_eq!(
        exposed["fields"],
        json!([{"kind": "String", "name": "Name", "label": "Name", "isMulti": false}])
    );
    // manageStructureReadExposed, manageStructureListAll({exposed: 1})
    let read = ok(
        &a,
        Method::GET,
        &format!("/nodes/{a_node}/modules/{exposed_id}/exposed"),
        None,
    )
    .await;
    assert_eq!(read["moduleID"], exposed_id.as_str());
    let listed = ok(
        &a,
        Method::GET,
        &format!("/nodes/{a_node}/modules/?exposed=1"),
        None,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // manageStructureUpdateExposed: Secret too.
    let updated = ok(
        &a,
        Method::POST,
        &format!("/nodes/{a_node}/modules/{exposed_id}/exposed"),
        Some(json!({
            "composeModuleID": module_id,
            "composeNamespaceID": namespace_id,
            "name": "Account",
            "handle": "Account",
            "fields": [{"kind": "String", "name": "Name"}, {"kind": "String", "name": "Secret"}]
        })),
    )
    .await;
    assert_eq!(updated["fields"].as_array().unwrap().len(), 2, "{updated}");

    // B pulls the structure, then reads and maps what is shared.
    let run = cli_json(&b, &["sync", "now", &b_node, "--kind", "structure"]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let shared = ok(
        &b,
        Method::GET,
        &format!("/nodes/{b_node}/modules/?shared=1"),
        None,
    )
    .await;
    let shared_id = shared[0]["moduleID"].as_str().unwrap().to_owned();
    assert_eq!(shared[0]["externalFederationModuleID"], exposed_id.as_str());
    assert_eq!(shared[0]["canMapModule"], true);
    let one = ok(
        &b,
        Method::GET,
        &format!("/nodes/{b_node}/modules/{shared_id}/shared"),
        None,
    )
    .await;
    assert_eq!(one["handle"], "Account");
    let local = cli_json(
        &b,
        &[
            "module",
            "create",
            "--handle",
            "Contact",
            "--field",
            "FullName:String",
        ],
    )
    .await;
    let mapping = ok(
        &b,
        Method::PUT,
        &format!("/nodes/{b_node}/modules/{shared_id}/mapped"),
        Some(json!({
            "composeModuleID": local["id"],
            "composeNamespaceID": local["namespaceId"],
            "fields": [{
                "origin": {"kind": "String", "name": "Name", "label": "Name", "isMulti": false},
                "destination": {"kind": "String", "name": "FullName", "label": "Name", "isMulti": false}
            }]
        })),
    )
    .await;
    assert_eq!(mapping["federationModuleID"], shared_id.as_str());
    assert_eq!(mapping["composeModuleID"], local["id"]);
    assert_eq!(mapping["fields"][0]["destination"]["name"], "FullName");
    let read = ok(
        &b,
        Method::GET,
        &format!(
            "/nodes/{b_node}/modules/{shared_id}/mapped?composeModuleID={}",
            local["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(read["fields"], mapping["fields"]);
    let mapped = ok(
        &b,
        Method::GET,
        &format!("/nodes/{b_node}/modules/?mapped=1"),
        None,
    )
    .await;
    assert_eq!(mapped.as_array().unwrap().len(), 1, "{mapped}");

    // Bad input names what is wrong and changes nothing.
    let (status, answer) = call(
        &b,
        Method::PUT,
        &format!("/nodes/{b_node}/modules/{shared_id}/mapped"),
        Some(json!({"composeModuleID": local["id"], "fields": [{"origin": {"name": "Name"}}]})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("destination.name"),
        "{answer}"
    );
    let (status, answer) = call(&b, Method::GET, &format!("/nodes/{b_node}/modules/"), None).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = call(&a, Method::GET, "/nodes/42", None).await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["error"]["message"].is_string());

    // manageStructureRemoveExposed -> {"response": null}
    let (status, answer) = call(
        &a,
        Method::DELETE,
        &format!("/nodes/{a_node}/modules/{exposed_id}/exposed"),
        None,
    )
    .await;
    assert_eq!((status, answer), (200, json!({"response": null})));

    // nodeDelete revokes the pair; nodeUndelete shows it again, to pair anew.
    acknowledged(
        &call(&a, Method::DELETE, &format!("/nodes/{a_node}"), None)
            .await
            .1,
    );
    let (_, hidden) = call(&a, Method::GET, "/nodes/", None).await;
    assert_eq!(hidden["response"]["set"], json!([]), "{hidden}");
    acknowledged(
        &call(&a, Method::POST, &format!("/nodes/{a_node}/undelete"), None)
            .await
            .1,
    );
    let back = ok(&a, Method::GET, &format!("/nodes/{a_node}"), None).await;
    assert_eq!(back["status"], "pending", "{back}");
    assert!(back.get("deletedAt").is_none(), "{back}");
    let checked = common::run_cli(&[
        "node",
        "check",
        &b_node,
        "--data-dir",
        &b.data_dir.display().to_string(),
    ])
    .await;
    assert!(
        !checked.status.success(),
        "the token B held for A was revoked with the delete"
    );
    a.stop().await;
    b.stop().await;
}

/// Every admin route, with a node id filled in.
fn admin_routes(node: &str) -> Vec<(Method, String)> {
    let m = "1234";
    [
        (Method::GET, "/nodes/".to_owned()),
        (Method::POST, "/nodes/".to_owned()),
        (Method::POST, "/nodes".to_owned()),
        (Method::GET, format!("/nodes/{node}")),
        (Method::POST, format!("/nodes/{node}")),
        (Method::DELETE, format!("/nodes/{node}")),
        (Method::POST, format!("/nodes/{node}/undelete")),
        (Method::POST, format!("/nodes/{node}/uri")),
        (Method::POST, format!("/nodes/{node}/pair")),
        (Method::POST, format!("/nodes/{node}/handshake-confirm")),
        (Method::GET, format!("/nodes/{node}/modules/?exposed=1")),
        (Method::PUT, format!("/nodes/{node}/modules/")),
        (Method::PUT, format!("/nodes/{node}/modules/{m}")),
        (Method::DELETE, format!("/nodes/{node}/modules/{m}")),
        (Method::GET, format!("/nodes/{node}/modules/{m}/exposed")),
        (Method::POST, format!("/nodes/{node}/modules/{m}/exposed")),
        (Method::PUT, format!("/nodes/{node}/modules/{m}/exposed")),
        (Method::DELETE, format!("/nodes/{node}/modules/{m}/exposed")),
        (Method::GET, format!("/nodes/{node}/modules/{m}/shared")),
        (Method::PUT, format!("/nodes/{node}/modules/{m}/mapped")),
        (Method::GET, format!("/nodes/{node}/modules/{m}/mapped")),
    ]
    .into_iter()
    .collect()
}

#[tokio::test]
async fn admin_routes_refuse_peer_tokens_and_strangers_and_are_absent_from_the_federation_listener()
{
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let (a_node, b_node) = common::pair(&a, &b).await;
    // The token A issued to B: a real peer credential, valid on A's
    // federation routes.
    let peer_token = b.held_token(b_node).await.expect("B holds A's token");
    let before = a.audit().await.len();
    for (method, path) in admin_routes(&a_node.to_string()) {
        for token in [None, Some(peer_token.as_str()), Some("not.a.jwt")] {
            let (status, answer) = call_as(&a, method.clone(), &path, Some(json!({})), token).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {answer}");
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("admin token rejected")),
                "{answer}"
            );
        }
        // The federation listener knows none of them, whatever the token.
        let response = http()
            .request(
                method.clone(),
                a.federation_url(&format!("/federation{path}")),
            )
            .bearer_auth(a.admin_token())
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            404,
            "{method} {path} on the federation listener"
        );
    }
    // Each refusal is audited, and nothing changed.
    let refused = a.audit().await.len() - before;
    assert_eq!(refused, admin_routes("1").len() * 3);
    let node = ok(&a, Method::GET, &format!("/nodes/{a_node}"), None).await;
    assert_eq!(node["status"], "paired");
    // A read-only admin token reads but does not write.
    let out = common::run_cli(&[
        "token",
        "admin",
        "--readonly",
        "--name",
        "viewer",
        "--data-dir",
        &a.data_dir.display().to_string(),
    ])
    .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let viewer = common::stdout(&out).trim().to_owned();
    let (status, _) = call_as(&a, Method::GET, "/nodes/", None, Some(&viewer)).await;
    assert_eq!(status, 200);
    let (status, answer) = call_as(
        &a,
        Method::POST,
        &format!("/nodes/{a_node}/uri"),
        None,
        Some(&viewer),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    a.stop().await;
    b.stop().await;
}
