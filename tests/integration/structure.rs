//! Structure: local modules, exposure to one peer at a time, structure sync
//! with paging and opaque cursors, mapping, and what happens when the origin
//! changes what it exposes. Corteza's documents both ways.

use fedsync::admin::proto::v1;
use serde_json::{Value, json};

use crate::common::fake_peer::{FakePeer, Reply, fixture};
use crate::common::{
    CORTEZA_A_NODE_ID, TestDaemon, cli_json, http, pair, pair_corteza_destination,
    pair_corteza_origin, run_cli, spawn_node, spawn_node_with, stderr, stdout, with_token,
};

type Modules = v1::module_service_client::ModuleServiceClient<tonic::transport::Channel>;
type Exposures = v1::exposure_service_client::ExposureServiceClient<tonic::transport::Channel>;
type Syncs = v1::sync_service_client::SyncServiceClient<tonic::transport::Channel>;
type Shared =
    v1::shared_module_service_client::SharedModuleServiceClient<tonic::transport::Channel>;

fn field(spec: &str) -> v1::Field {
    let f = fedsync::sync::catalog::parse_field_spec(spec).unwrap();
    v1::Field {
        name: f.name,
        kind: f.kind.as_str().into(),
        label: f.label,
        is_multi: f.is_multi,
    }
}

async fn create_module(d: &TestDaemon, handle: &str, fields: &[&str]) -> v1::Module {
    Modules::new(d.channel().await)
        .create_module(with_token(
            v1::CreateModuleRequest {
                handle: handle.into(),
                name: String::new(),
                fields: fields.iter().map(|f| field(f)).collect(),
            },
            &d.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn expose(d: &TestDaemon, node: u64, module: &str, fields: &[&str]) -> v1::ExposedModule {
    Exposures::new(d.channel().await)
        .expose_module(with_token(
            v1::ExposeRequest {
                node_id: node,
                module: module.into(),
                fields: fields.iter().map(|f| f.to_string()).collect(),
            },
            &d.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn sync_structure(d: &TestDaemon, node: u64) -> v1::SyncRun {
    Syncs::new(d.channel().await)
        .sync_now(with_token(
            v1::SyncNowRequest {
                node_id: node,
                kind: "structure".into(),
                no_wait: false,
            },
            &d.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner()
        .runs
        .remove(0)
}

async fn shared(d: &TestDaemon, node: u64, removed: bool) -> Vec<v1::SharedModule> {
    Shared::new(d.channel().await)
        .list_shared_modules(with_token(
            v1::ListSharedModulesRequest {
                node_id: node,
                include_removed: removed,
            },
            &d.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner()
        .modules
}

fn names(fields: &[v1::Field]) -> Vec<&str> {
    fields.iter().map(|f| f.name.as_str()).collect()
}

#[tokio::test]
async fn a_peer_gets_exactly_the_fields_exposed_to_it_and_others_nothing() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let mut c = spawn_node("C").await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    let (_a_for_c, c_for_a) = pair(&a, &c).await;

    let account = cli_json(
        &a,
        &[
            "module",
            "create",
            "--handle",
            "Account",
            "--field",
            "Phone:String",
            "--field",
            "LinkedIn:Url",
            "--field",
            "Secret:String",
        ],
    )
    .await;
    assert_eq!(account["fields"].as_array().unwrap().len(), 3);
    let exposed = cli_json(
        &a,
        &[
            "expose",
            "add",
            &a_for_b.to_string(),
            "Account",
            "--field",
            "LinkedIn",
            "--field",
            "Phone",
        ],
    )
    .await;
    assert_eq!(
        exposed["fields"][0]["name"], "Phone",
        "in the module's order"
    );
    assert_eq!(exposed["fields"][1]["name"], "LinkedIn");

    let run = cli_json(
        &b,
        &["sync", "now", &b_for_a.to_string(), "--kind", "structure"],
    )
    .await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["created"], 1);
    let list = shared(&b, b_for_a, false).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].handle, "Account");
    assert_eq!(
        names(&list[0].fields),
        ["Phone", "LinkedIn"],
        "Secret never leaves A"
    );
    assert_eq!(list[0].fields[1].kind, "Url");

    // B maps onto its own module: LinkedIn (Url) -> Social (String).
    cli_json(
        &b,
        &[
            "module",
            "create",
            "--handle",
            "Contact",
            "--field",
            "Tel:String",
            "--field",
            "Social:String",
        ],
    )
    .await;
    let mapping = cli_json(
        &b,
        &[
            "map",
            "set",
            &b_for_a.to_string(),
            "Account",
            "--to",
            "Contact",
            "--field",
            "Phone=Tel",
            "--field",
            "LinkedIn=Social",
        ],
    )
    .await;
    assert_eq!(mapping["status"], "ok");
    assert_eq!(mapping["fields"][1]["origin"]["kind"], "Url");
    assert_eq!(mapping["fields"][1]["destination"]["name"], "Social");
    let shown = cli_json(&b, &["shared", "show", &b_for_a.to_string(), "Account"]).await;
    assert_eq!(shown["mappingStatus"], "ok");

    // C is paired with A too, and sees nothing.
    let run = sync_structure(&c, c_for_a).await;
    assert_eq!((run.status.as_str(), run.created), ("succeeded", 0));
    assert!(shared(&c, c_for_a, true).await.is_empty());
    for d in [&mut a, &mut b, &mut c] {
        d.stop().await;
    }
}

#[tokio::test]
async fn many_modules_page_through_small_pages_with_cursors_only_we_can_make() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node_with("B", |o| {
        o.set("sync.structure_page_size", 3);
    })
    .await;
    let mut c = spawn_node("C").await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    let (a_for_c, c_for_a) = pair(&a, &c).await;
    for i in 0..25 {
        let handle = format!("m{i:02}");
        create_module(&a, &handle, &["Name:String"]).await;
        expose(&a, a_for_b, &handle, &["Name"]).await;
    }
    expose(&a, a_for_c, "m00", &["Name"]).await;
    let run = sync_structure(&b, b_for_a).await;
    assert_eq!(
        (run.status.as_str(), run.created, run.pages),
        ("succeeded", 25, 9),
        "{run:?}"
    );
    assert_eq!(shared(&b, b_for_a, false).await.len(), 25);
    // Again: nothing changed.
    let again = sync_structure(&b, b_for_a).await;
    assert_eq!((again.created, again.updated, again.deleted), (0, 0, 0));

    let token = b.held_token(b_for_a).await.unwrap();
    let get = |query: String, token: String, node: u64| {
        let url = a.federation_url(&format!(
            "/federation/nodes/{node}/modules/exposed/?{query}"
        ));
        async move {
            let response = http().get(url).bearer_auth(token).send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, page) = get("limit=10".into(), token.clone(), a_for_b).await;
    assert_eq!(status, 200);
    assert_eq!(page["response"]["set"].as_array().unwrap().len(), 10);
    assert_eq!(page["response"]["filter"]["limit"], 10);
    let cursor = page["response"]["filter"]["nextPage"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "URL-safe: {cursor}"
    );
    // Sent back unescaped, as Corteza does.
    let (status, second) = get(
        format!("limit=10&pageCursor={cursor}"),
        token.clone(),
        a_for_b,
    )
    .await;
    assert_eq!(status, 200);
    let first_id = second["response"]["set"][0]["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(first_id, "m10");
    // Tampered: refused.
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let (status, body) = get(
        format!(
            "limit=10&pageCursor={}",
            String::from_utf8(tampered).unwrap()
        ),
        token.clone(),
        a_for_b,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // Another pair's cursor: C borrows B's cursor on its own route.
    let c_token = c.held_token(c_for_a).await.unwrap();
    let (status, body) = get(format!("pageCursor={cursor}"), c_token.clone(), a_for_c).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another pair")
    );
    // Another pair's token on this pair's route.
    let (status, _) = get("limit=10".into(), c_token, a_for_b).await;
    assert_eq!(status, 404);
    // lastSync in the future: nothing; a bad limit: refused; a huge one: clamped.
    let (_, future) = get(
        "limit=10&lastSync=4000000000".into(),
        token.clone(),
        a_for_b,
    )
    .await;
    assert!(future["response"]["set"].is_null());
    let (status, _) = get("limit=abc".into(), token.clone(), a_for_b).await;
    assert_eq!(status, 400);
    let (status, _) = get("lastSync=-5".into(), token.clone(), a_for_b).await;
    assert_eq!(status, 400);
    let (_, all) = get("limit=1000000000000".into(), token.clone(), a_for_b).await;
    assert_eq!(all["response"]["filter"]["limit"], 500);
    for d in [&mut a, &mut b, &mut c] {
        d.stop().await;
    }
}

#[tokio::test]
async fn a_changed_structure_is_followed_and_broken_mappings_are_reported() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    let node_a = a_for_b.to_string();
    let node_b = b_for_a.to_string();
    cli_json(
        &a,
        &[
            "module",
            "create",
            "--handle",
            "Account",
            "--field",
            "Phone:String",
            "--field",
            "LinkedIn:Url",
            "--field",
            "Email:Email",
        ],
    )
    .await;
    cli_json(
        &a,
        &[
            "expose", "add", &node_a, "Account", "--field", "Phone", "--field", "LinkedIn",
        ],
    )
    .await;
    sync_structure(&b, b_for_a).await;
    cli_json(
        &b,
        &[
            "module",
            "create",
            "--handle",
            "Contact",
            "--field",
            "Tel:String",
            "--field",
            "Social:String",
            "--field",
            "Mail:String",
        ],
    )
    .await;
    cli_json(
        &b,
        &[
            "map",
            "set",
            &node_b,
            "Account",
            "--to",
            "Contact",
            "--field",
            "Phone=Tel",
            "--field",
            "LinkedIn=Social",
        ],
    )
    .await;

    // A adds Email and removes LinkedIn.
    cli_json(
        &a,
        &[
            "expose", "update", &node_a, "Account", "--field", "Phone", "--field", "Email",
        ],
    )
    .await;
    let run = cli_json(&b, &["sync", "now", &node_b, "--kind", "structure"]).await;
    assert_eq!(run["updated"], 1);
    let module = cli_json(&b, &["shared", "show", &node_b, "Account"]).await;
    let fields: Vec<&str> = module["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["Phone", "Email"],
        "the new field arrives, unmapped"
    );
    assert_eq!(module["mappingStatus"], "broken");
    let mapping = cli_json(&b, &["map", "show", &node_b, "Account"]).await;
    assert_eq!(mapping["status"], "broken");
    assert_eq!(
        mapping["statusReason"],
        "origin field `LinkedIn` was removed"
    );
    let status = cli_json(&b, &["sync", "status", &node_b]).await;
    assert_eq!(status[0]["structureStatus"], "synced");
    assert_eq!(status[0]["problems"][0]["sharedHandle"], "Account");
    // The all-nodes view (its own queries) says the same.
    let all = cli_json(&b, &["sync", "status"]).await;
    assert_eq!(all[0]["problems"], status[0]["problems"], "{all}");
    assert_eq!(
        status[0]["problems"][0]["reason"],
        "origin field `LinkedIn` was removed"
    );
    let human = run_cli(&[
        "sync",
        "status",
        "--data-dir",
        &b.data_dir.display().to_string(),
    ])
    .await;
    assert!(
        stdout(&human)
            .contains("mapping of `Account` is broken: origin field `LinkedIn` was removed"),
        "{}",
        stdout(&human)
    );

    // Re-mapping with the fields that exist repairs it.
    let fixed = cli_json(
        &b,
        &[
            "map",
            "set",
            &node_b,
            "Account",
            "--to",
            "Contact",
            "--field",
            "Phone=Tel",
            "--field",
            "Email=Mail",
        ],
    )
    .await;
    assert_eq!(fixed["status"], "ok");
    // Unexposing reaches B too (Corteza never propagates it, W10).
    cli_json(&a, &["expose", "rm", &node_a, "Account"]).await;
    let run = cli_json(&b, &["sync", "now", &node_b]).await;
    assert_eq!(run["deleted"], 1);
    assert!(shared(&b, b_for_a, false).await.is_empty());
    let removed = shared(&b, b_for_a, true).await;
    assert!(removed[0].deleted_at.is_some());
    assert_eq!(removed[0].mapping_status, "broken");
    let runs = cli_json(&b, &["sync", "runs", &node_b]).await;
    assert_eq!(runs.as_array().unwrap().len(), 3);
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["kind"] == "structure" && r["status"] == "succeeded")
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn what_is_exposed_or_mapped_cannot_be_pulled_away() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    let dir_a = a.data_dir.display().to_string();
    let dir_b = b.data_dir.display().to_string();
    cli_json(
        &a,
        &[
            "module",
            "create",
            "--handle",
            "Account",
            "--field",
            "Phone:String",
            "--field",
            "Fax:String",
        ],
    )
    .await;
    let bad_field = run_cli(&[
        "expose",
        "add",
        &a_for_b.to_string(),
        "Account",
        "--field",
        "Pager",
        "--data-dir",
        &dir_a,
    ])
    .await;
    assert!(
        stderr(&bad_field).contains("has no field `Pager` (it has: Phone, Fax)"),
        "{}",
        stderr(&bad_field)
    );
    cli_json(
        &a,
        &[
            "expose",
            "add",
            &a_for_b.to_string(),
            "Account",
            "--field",
            "Phone",
        ],
    )
    .await;
    let twice = run_cli(&[
        "expose",
        "add",
        &a_for_b.to_string(),
        "Account",
        "--field",
        "Phone",
        "--data-dir",
        &dir_a,
    ])
    .await;
    assert!(
        stderr(&twice).contains("already exposed"),
        "{}",
        stderr(&twice)
    );
    let drop_exposed = run_cli(&[
        "module",
        "update",
        "Account",
        "--field",
        "Fax:String",
        "--data-dir",
        &dir_a,
    ])
    .await;
    assert!(!drop_exposed.status.success());
    assert!(
        stderr(&drop_exposed).contains("field `Phone` is exposed to node"),
        "{}",
        stderr(&drop_exposed)
    );
    let retype = run_cli(&[
        "module",
        "update",
        "Account",
        "--field",
        "Phone:Number",
        "--field",
        "Fax:String",
        "--data-dir",
        &dir_a,
    ])
    .await;
    assert!(
        stderr(&retype).contains("field `Phone` is exposed"),
        "{}",
        stderr(&retype)
    );
    let rm = run_cli(&["module", "rm", "Account", "--data-dir", &dir_a]).await;
    assert!(stderr(&rm).contains("is in use"), "{}", stderr(&rm));
    // Unexposed fields can change freely.
    cli_json(
        &a,
        &[
            "module",
            "update",
            "Account",
            "--field",
            "Phone:String",
            "--name",
            "Accounts",
        ],
    )
    .await;

    sync_structure(&b, b_for_a).await;
    cli_json(
        &b,
        &[
            "module",
            "create",
            "--handle",
            "Contact",
            "--field",
            "Tel:String",
            "--field",
            "Tags:String:multi",
        ],
    )
    .await;
    for (pairs, expected) in [
        (
            vec!["Phone=Nope"],
            "local module `Contact` has no field `Nope`",
        ),
        (
            vec!["Nope=Tel"],
            "shared module `Account` has no field `Nope`",
        ),
        (vec!["Phone"], "is not ORIGIN=DEST"),
    ] {
        let mut args = vec![
            "map",
            "set",
            &b_for_a.to_string(),
            "Account",
            "--to",
            "Contact",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        for p in pairs {
            args.push("--field".into());
            args.push(p.into());
        }
        args.extend(["--data-dir".into(), dir_b.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_cli(&args).await;
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains(expected),
            "{expected}: {}",
            stderr(&out)
        );
    }
    cli_json(
        &b,
        &[
            "map",
            "set",
            &b_for_a.to_string(),
            "Account",
            "--to",
            "Contact",
            "--field",
            "Phone=Tel",
        ],
    )
    .await;
    let drop_mapped = run_cli(&[
        "module",
        "update",
        "Contact",
        "--field",
        "Tags:String:multi",
        "--data-dir",
        &dir_b,
    ])
    .await;
    assert!(
        stderr(&drop_mapped).contains("field `Tel` is written by a mapping"),
        "{}",
        stderr(&drop_mapped)
    );
    let unknown_kind = run_cli(&[
        "module",
        "create",
        "--handle",
        "X",
        "--field",
        "A:Text",
        "--data-dir",
        &dir_b,
    ])
    .await;
    assert!(
        stderr(&unknown_kind).contains("unknown field kind `Text`"),
        "{}",
        stderr(&unknown_kind)
    );
    let removed = cli_json(&b, &["map", "rm", &b_for_a.to_string(), "Account"]).await;
    assert_eq!(removed["sharedHandle"], "Account");
    cli_json(&b, &["module", "rm", "Contact"]).await;
    a.stop().await;
    b.stop().await;
}

/// Corteza's destination (reference 4.12): it reads `response.set[].{moduleID,
/// handle, name, fields}` and `response.filter.nextPage`, and a type
/// mismatch in the filter fails the whole page.
fn corteza_reads(doc: &Value) -> Vec<(String, String, Vec<String>)> {
    let response = &doc["response"];
    let filter = &response["filter"];
    assert!(
        filter["nodeID"].is_string() && filter["composeModuleID"].is_string(),
        "{filter}"
    );
    assert!(filter["query"].is_string());
    assert!(filter.get("limit").is_none_or(|l| l.is_number()));
    assert!(filter.get("nextPage").is_none_or(|n| n.is_string()));
    assert!(filter.get("prevPage").is_none_or(|n| n.is_string()));
    match &response["set"] {
        Value::Null => Vec::new(),
        Value::Array(set) => set
            .iter()
            .map(|m| {
                let fields = m["fields"].as_array().unwrap();
                for f in fields {
                    assert!(
                        f["kind"].is_string()
                            && f["name"].is_string()
                            && f["label"].is_string()
                            && f["isMulti"].is_boolean()
                    );
                }
                (
                    m["moduleID"].as_str().unwrap().to_owned(),
                    m["handle"].as_str().unwrap().to_owned(),
                    fields
                        .iter()
                        .map(|f| f["name"].as_str().unwrap().to_owned())
                        .collect(),
                )
            })
            .collect(),
        other => panic!("set is {other}"),
    }
}

#[tokio::test]
async fn our_structure_documents_read_like_cortezas() {
    let mut a = spawn_node("A").await;
    let corteza_b = FakePeer::start().await;
    let (a_id, token_a) = pair_corteza_destination(&a, &corteza_b).await;

    create_module(
        &a,
        "contact_fed",
        &[
            "name:String",
            "email:Email",
            "age:Number",
            "vip:Bool",
            "tags:String:multi",
        ],
    )
    .await;
    create_module(&a, "note_fed", &["title:String", "body:String"]).await;
    expose(
        &a,
        a_id,
        "contact_fed",
        &["name", "email", "age", "vip", "tags"],
    )
    .await;
    expose(&a, a_id, "note_fed", &["title"]).await;
    // An unexposed module is never listed for a Corteza peer (it would not understand a tombstone).
    create_module(&a, "gone", &["x:String"]).await;
    expose(&a, a_id, "gone", &["x"]).await;
    Exposures::new(a.channel().await)
        .unexpose(with_token(
            v1::ExposureRef {
                node_id: a_id,
                module: "gone".into(),
            },
            &a.admin_token(),
        ))
        .await
        .unwrap();

    // As Corteza's syncer asks: limit=1, then the cursor verbatim.
    let get = |query: String| {
        let url = a.federation_url(&format!(
            "/federation/nodes/{a_id}/modules/exposed/?{query}"
        ));
        let token = token_a.clone();
        async move {
            http()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let page1 = get("limit=1".into()).await;
    let page2 = get(format!(
        "limit=1&pageCursor={}",
        page1["response"]["filter"]["nextPage"].as_str().unwrap()
    ))
    .await;
    let read: Vec<_> = [corteza_reads(&page1), corteza_reads(&page2)].concat();
    assert_eq!(
        read.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["contact_fed", "note_fed"]
    );
    assert_eq!(read[0].2, ["name", "email", "age", "vip", "tags"]);
    assert!(
        page2["response"]["filter"].get("nextPage").is_none(),
        "the last page has no nextPage"
    );
    // Same keys as the recorded Corteza document, in the same places.
    let recorded = fixture("049-peer-structure-limit1.json")["response"]["body"].clone();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&page1["response"]["filter"]),
        keys(&recorded["response"]["filter"])
    );
    assert_eq!(
        keys(&page1["response"]["set"][0]),
        keys(&recorded["response"]["set"][0])
    );
    a.stop().await;
}

#[tokio::test]
async fn recorded_corteza_structure_documents_become_shared_modules() {
    let corteza_a = FakePeer::start().await;
    let mut b = spawn_node("B").await;
    let b_id = pair_corteza_origin(&b, &corteza_a).await;
    let a1 = CORTEZA_A_NODE_ID;

    // Corteza answers pages 1 and 2 exactly as recorded.
    let page1 = fixture("049-peer-structure-limit1.json");
    let page2 = fixture("050-peer-structure-limit1-page2.json");
    corteza_a.reply(Reply::Json(200, page1["response"]["body"].clone()));
    corteza_a.reply(Reply::Json(200, page2["response"]["body"].clone()));
    let run = sync_structure(&b, b_id).await;
    assert_eq!(
        (run.status.as_str(), run.created, run.pages),
        ("succeeded", 2, 2),
        "{run:?}"
    );
    let requests = corteza_a.requests();
    let (first, second) = (&requests[1], &requests[2]);
    assert_eq!(
        first.path,
        format!("/federation/nodes/{a1}/modules/exposed/")
    );
    assert_eq!(
        first.header("authorization"),
        Some("Bearer corteza-token-for-b")
    );
    assert_eq!(first.header("accept"), Some("application/json"));
    // The cursor goes back escaped (Corteza's own client does not, W14).
    let sent_cursor: String = url::form_urlencoded::parse(second.query.as_bytes())
        .find(|(k, _)| k == "pageCursor")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(
        sent_cursor,
        page1["response"]["body"]["response"]["filter"]["nextPage"]
            .as_str()
            .unwrap()
    );
    assert!(!second.query.contains("lastSync"));

    let modules = shared(&b, b_id, false).await;
    assert_eq!(modules.len(), 2);
    assert_eq!(modules[0].handle, "contact_fed");
    assert_eq!(modules[0].external_module_id, 523615093121024101);
    assert_eq!(modules[0].origin_module_id, 523615093117091941);
    assert_eq!(
        names(&modules[0].fields),
        ["name", "email", "age", "vip", "tags"]
    );
    assert!(modules[0].fields[4].is_multi);
    assert_eq!(
        modules[1].fields[1].kind, "Text",
        "a kind Corteza sent is kept as spelled"
    );

    // Corteza lists only what it exposes; what vanished from a full listing is gone.
    let mut only_first = page1["response"]["body"].clone();
    only_first["response"]["filter"]
        .as_object_mut()
        .unwrap()
        .remove("nextPage");
    corteza_a.reply(Reply::Json(200, only_first));
    let run = sync_structure(&b, b_id).await;
    assert_eq!(
        (run.status.as_str(), run.deleted),
        ("succeeded", 1),
        "{run:?}"
    );
    assert_eq!(shared(&b, b_id, false).await.len(), 1);
    // An empty listing (recorded `set: null`) removes the rest.
    corteza_a.reply(Reply::Json(
        200,
        fixture("053-peer-structure-lastSync-future.json")["response"]["body"].clone(),
    ));
    let run = sync_structure(&b, b_id).await;
    assert_eq!(
        (run.status.as_str(), run.deleted),
        ("succeeded", 1),
        "{run:?}"
    );
    assert!(shared(&b, b_id, false).await.is_empty());
    // A peer that answers garbage fails the run and says so.
    corteza_a.reply(Reply::Raw(200, vec![], b"Error: not allowed".to_vec()));
    let run = sync_structure(&b, b_id).await;
    assert_eq!(run.status, "failed");
    assert!(run.error.contains("not JSON"), "{}", run.error);
    let node = b.node(b_id).await;
    assert_eq!(node.structure_status, "failed");
    assert!(node.structure_error.contains("not JSON"));
    // A 5xx is retried twice within the attempt: every try gets it.
    for _ in 0..3 {
        corteza_a.reply(Reply::Json(
            500,
            json!({ "error": { "message": "token is unauthorized" } }),
        ));
    }
    let out = run_cli(&[
        "sync",
        "now",
        &b_id.to_string(),
        "--data-dir",
        &b.data_dir.display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "a failed sync exits non-zero");
    assert!(
        stderr(&out).contains("token is unauthorized"),
        "{}",
        stderr(&out)
    );
    b.stop().await;
}

#[tokio::test]
async fn the_documented_structure_routes_are_served() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let mut c = spawn_node("C").await;
    let (a_for_b, b_for_a) = pair(&a, &b).await;
    let (a_for_c, _) = pair(&a, &c).await;
    create_module(&a, "Account", &["LinkedIn:Url", "Phone:String"]).await;
    let exposed = expose(&a, a_for_b, "Account", &["LinkedIn", "Phone"]).await;
    create_module(&a, "Other", &["x:String"]).await;
    let other = expose(&a, a_for_c, "Other", &["x"]).await;
    let token = b.held_token(b_for_a).await.unwrap();
    let links: Value = http()
        .get(a.federation_url("/federation/exposed/modules?after=0"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(links["response"]["filter"]["count"], 1);
    assert_eq!(links["response"]["filter"]["query"], "after=0");
    assert_eq!(links["response"]["set"][0]["rel"], "Account");
    let href = links["response"]["set"][0]["href"].as_str().unwrap();
    assert_eq!(
        href,
        format!("{}/exposed/modules/{}?after=0", a.base_url(), exposed.id)
    );
    let module: Value = http()
        .get(href)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(module["response"]["handle"], "Account");
    assert_eq!(module["response"]["fields"][0]["name"], "LinkedIn");
    let foreign = http()
        .get(a.federation_url(&format!("/federation/exposed/modules/{}", other.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404, "C's module is not B's to read");
    let _ = a_for_c;
    for d in [&mut a, &mut b, &mut c] {
        d.stop().await;
    }
}
