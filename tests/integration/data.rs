//! Data sync: records flow from an origin to a destination through the
//! mapping, exactly once, in both directions, across failures between pages
//! and a kill -9 of the destination; Corteza's data documents both ways.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fedsync::admin::proto::v1;

use serde_json::{Value, json};

use crate::common::fake_peer::{FakePeer, Reply, fixture};
use crate::common::relay::{Fault, Relay};
use crate::common::{
    CORTEZA_A_NODE_ID, TestDaemon, cli_json, fedsync_bin, http, pair, pair_corteza_destination,
    pair_corteza_origin, run_cli, spawn_child_daemon, spawn_node, spawn_node_with, stderr, stdout,
    with_token,
};

/// A's `Account` exposed to B (Name, Tags, Score; Secret stays home), B's
/// `Contact` mapped from it (Notes is B's own). Returns (A's node for B,
/// B's node for A).
async fn account_to_contact(a: &TestDaemon, b: &TestDaemon) -> (u64, u64) {
    let (a_for_b, b_for_a) = pair(a, b).await;
    share_account(a, b, a_for_b, b_for_a).await;
    (a_for_b, b_for_a)
}

/// The modules, exposure and mapping of `account_to_contact` on a pair.
pub(crate) async fn share_account(a: &TestDaemon, b: &TestDaemon, a_for_b: u64, b_for_a: u64) {
    cli_json(
        a,
        &[
            "module",
            "create",
            "--handle",
            "Account",
            "--field",
            "Name:String",
            "--field",
            "Tags:String:multi",
            "--field",
            "Score:Number",
            "--field",
            "Secret:String",
        ],
    )
    .await;
    cli_json(
        a,
        &[
            "expose",
            "add",
            &a_for_b.to_string(),
            "Account",
            "--field",
            "Name",
            "--field",
            "Tags",
            "--field",
            "Score",
        ],
    )
    .await;
    let run = cli_json(
        b,
        &["sync", "now", &b_for_a.to_string(), "--kind", "structure"],
    )
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    cli_json(
        b,
        &[
            "module",
            "create",
            "--handle",
            "Contact",
            "--field",
            "FullName:String",
            "--field",
            "Labels:String:multi",
            "--field",
            "Points:Number",
            "--field",
            "Notes:String",
        ],
    )
    .await;
    let mapping = cli_json(
        b,
        &[
            "map",
            "set",
            &b_for_a.to_string(),
            "Account",
            "--to",
            "Contact",
            "--field",
            "Name=FullName",
            "--field",
            "Tags=Labels",
            "--field",
            "Score=Points",
        ],
    )
    .await;
    assert_eq!(mapping["status"], "ok", "{mapping}");
}

/// Writes `count` Account lines (Name `n<i>`, two Tags, a Score, a Secret).
/// Creates an `Account` record on `d` with only its `Name`, by the CLI.
pub(crate) async fn create_account(d: &TestDaemon, name: &str) {
    cli_json(
        d,
        &[
            "record",
            "create",
            "Account",
            "--value",
            &format!("Name={name}"),
        ],
    )
    .await;
}

pub(crate) fn account_file(dir: &Path, count: usize) -> PathBuf {
    let path = dir.join("accounts.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..count {
        let line = json!({
            "Name": format!("n{i:05}"),
            "Tags": [format!("t{}", i % 7), "all"],
            "Score": (i % 1000).to_string(),
            "Secret": format!("s{i}"),
        });
        writeln!(file, "{line}").unwrap();
    }
    file.flush().unwrap();
    path
}

async fn data_sync(d: &TestDaemon, node: u64) -> Vec<Value> {
    let runs = cli_json(d, &["sync", "now", &node.to_string(), "--kind", "data"]).await;
    runs.as_array()
        .expect("a data sync prints its runs")
        .clone()
}

pub(crate) async fn records(d: &TestDaemon, module: &str, deleted: bool) -> Vec<Value> {
    let mut args = vec!["record", "list", module];
    if deleted {
        args.push("--deleted");
    }
    cli_json(d, &args).await.as_array().unwrap().clone()
}

/// Live records as (name field value) -> values object; panics on a duplicate name.
pub(crate) fn by_name(records: &[Value], name_field: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in records {
        assert!(r["deletedAt"].is_null(), "{r}");
        let name = r["values"][name_field].as_str().unwrap().to_owned();
        assert!(
            out.insert(name.clone(), r["values"].clone()).is_none(),
            "duplicate record {name}"
        );
    }
    out
}

/// A's exposed set, in B's terms: FullName -> {FullName, Labels, Points}.
pub(crate) fn expected_on_b(a_records: &[Value]) -> BTreeMap<String, Value> {
    a_records
        .iter()
        .filter(|r| r["deletedAt"].is_null())
        .map(|r| {
            let v = &r["values"];
            let mut mapped = serde_json::Map::new();
            mapped.insert("FullName".into(), v["Name"].clone());
            if !v["Tags"].is_null() {
                mapped.insert("Labels".into(), v["Tags"].clone());
            }
            if !v["Score"].is_null() {
                mapped.insert("Points".into(), v["Score"].clone());
            }
            (
                v["Name"].as_str().unwrap().to_owned(),
                Value::Object(mapped),
            )
        })
        .collect()
}

fn id_of(records: &[Value], field: &str, value: &str) -> String {
    records
        .iter()
        .find(|r| r["values"][field] == value)
        .unwrap_or_else(|| panic!("no record with {field}={value}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn ten_thousand_records_arrive_then_updates_deletes_and_multi_values_follow() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let (_, b_for_a) = account_to_contact(&a, &b).await;
    let scratch = tempfile::tempdir().unwrap();
    let file = account_file(scratch.path(), 10_000);
    let imported = cli_json(&a, &["record", "import", "Account", file.to_str().unwrap()]).await;
    assert_eq!(imported["imported"], 10_000, "{imported}");

    let runs = data_sync(&b, b_for_a).await;
    assert_eq!(runs.len(), 1);
    let first = &runs[0];
    assert_eq!(
        (
            &first["status"],
            &first["created"],
            &first["updated"],
            &first["deleted"],
            &first["errors"]
        ),
        (
            &json!("succeeded"),
            &json!(10_000),
            &json!(0),
            &json!(0),
            &json!(0)
        ),
        "{first}"
    );
    assert_eq!(first["pages"], 20, "500 a page by default");
    let on_a = records(&a, "Account", false).await;
    assert_eq!(on_a.len(), 10_000, "record list returns every record");
    let on_b = records(&b, "Contact", false).await;
    assert_eq!(by_name(&on_b, "FullName"), expected_on_b(&on_a));
    assert!(
        on_b.iter().all(|r| r["values"].get("Secret").is_none()),
        "unexposed fields never leave A"
    );

    // B's own field on a synced record survives A's updates.
    let bob_on_b = id_of(&on_b, "FullName", "n00002");
    cli_json(
        &b,
        &[
            "record",
            "update",
            "Contact",
            &bob_on_b,
            "--value",
            "Notes=called twice",
        ],
    )
    .await;
    // Changes on A: a multi-value field rewritten, a value cleared, a delete.
    let one = id_of(&on_a, "Name", "n00001");
    let two = id_of(&on_a, "Name", "n00002");
    let three = id_of(&on_a, "Name", "n00003");
    cli_json(
        &a,
        &[
            "record", "update", "Account", &one, "--value", "Tags=x", "--value", "Tags=y",
            "--value", "Tags=z",
        ],
    )
    .await;
    cli_json(
        &a,
        &[
            "record", "update", "Account", &two, "--value", "Name=Bob", "--clear", "Score",
        ],
    )
    .await;
    cli_json(&a, &["record", "rm", "Account", &three]).await;

    let runs = data_sync(&b, b_for_a).await;
    let second = &runs[0];
    assert_eq!(
        (
            &second["status"],
            &second["created"],
            &second["updated"],
            &second["deleted"]
        ),
        (&json!("succeeded"), &json!(0), &json!(2), &json!(1)),
        "{second}"
    );
    let on_a = records(&a, "Account", false).await;
    let on_b = records(&b, "Contact", false).await;
    let mut expected = expected_on_b(&on_a);
    expected.get_mut("Bob").unwrap()["Notes"] = json!("called twice");
    assert_eq!(by_name(&on_b, "FullName"), expected);
    assert_eq!(
        expected["n00001"]["Labels"],
        json!(["x", "y", "z"]),
        "order kept"
    );
    assert!(expected["Bob"].get("Points").is_none());
    let gone = records(&b, "Contact", true).await;
    assert!(
        gone.iter()
            .any(|r| r["values"]["FullName"] == "n00003" && !r["deletedAt"].is_null()),
        "the delete arrived as a soft delete"
    );

    // `sync runs` tells the same counts, and the node says when it synced.
    let listed = cli_json(&b, &["sync", "runs", &b_for_a.to_string()]).await;
    let data_runs: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "data")
        .collect();
    assert_eq!(data_runs.len(), 2);
    for (listed, ran) in data_runs.iter().rev().zip([first, second]) {
        for key in [
            "id", "status", "pages", "created", "updated", "deleted", "skipped", "errors",
        ] {
            assert_eq!(listed[key], ran[key], "{key}");
        }
    }
    let node = cli_json(&b, &["node", "show", &b_for_a.to_string()]).await;
    assert_eq!(node["dataStatus"], "synced", "{node}");
    assert!(node["dataSyncedAt"].is_string(), "{node}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_failure_between_page_3_and_page_4_loses_nothing_and_repeats_nothing() {
    let relay = Relay::start().await;
    let mut a = spawn_node_with("A", |o| {
        o.set("federation.public_url", relay.base_url());
    })
    .await;
    relay.forward_to(a.running().federation_addr);
    let mut b = spawn_node_with("B", |o| {
        o.set("sync.data_page_size", 100);
    })
    .await;
    let (_, b_for_a) = account_to_contact(&a, &b).await;
    let scratch = tempfile::tempdir().unwrap();
    let file = account_file(scratch.path(), 1_000);
    cli_json(&a, &["record", "import", "Account", file.to_str().unwrap()]).await;

    relay.fault("/records/", 4, Fault::Fail(502));
    let out = run_cli(&[
        "sync",
        "now",
        &b_for_a.to_string(),
        "--kind",
        "data",
        "--data-dir",
        &b.data_dir.display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "a failed run exits non-zero");
    assert!(stderr(&out).contains("502"), "{}", stderr(&out));
    let runs = cli_json(&b, &["sync", "runs", &b_for_a.to_string()]).await;
    let failed = &runs[0];
    assert_eq!(
        (&failed["status"], &failed["created"], &failed["pages"]),
        (&json!("failed"), &json!(300), &json!(3)),
        "three pages landed: {failed}"
    );
    let node = cli_json(&b, &["node", "show", &b_for_a.to_string()]).await;
    assert_eq!(node["dataStatus"], "failed");
    assert_eq!(records(&b, "Contact", false).await.len(), 300);
    assert_eq!(
        relay.requests("/records/").len(),
        6,
        "page 4 was asked three times (two quick retries) before the run failed"
    );
    relay.clear();

    let pulls_before = relay.requests("/records/").len();
    let runs = data_sync(&b, b_for_a).await;
    assert_eq!(
        (&runs[0]["status"], &runs[0]["created"], &runs[0]["skipped"]),
        (&json!("succeeded"), &json!(700), &json!(0)),
        "the next run starts after page 3: {}",
        runs[0]
    );
    let resumed = &relay.requests("/records/")[pulls_before];
    assert!(resumed.1.contains("pageCursor="), "{resumed:?}");
    let on_a = records(&a, "Account", false).await;
    assert_eq!(
        by_name(&records(&b, "Contact", false).await, "FullName"),
        expected_on_b(&on_a)
    );

    // Changes made right after a sync, within the same second, all arrive:
    // the cursor is a keyset on the origin's own change order, not a time.
    for round in 0..3 {
        let id = id_of(&on_a, "Name", &format!("n{round:05}"));
        cli_json(
            &a,
            &[
                "record",
                "update",
                "Account",
                &id,
                "--value",
                &format!("Score={}", 5000 + round),
            ],
        )
        .await;
        create_account(&a, &format!("late{round}")).await;
        let runs = data_sync(&b, b_for_a).await;
        assert_eq!(
            (&runs[0]["created"], &runs[0]["updated"]),
            (&json!(1), &json!(1)),
            "round {round}: {}",
            runs[0]
        );
        let started = runs[0]["startedAt"].as_str().unwrap().to_owned();
        // One more change in the same instant the run ended, then sync again.
        cli_json(
            &a,
            &[
                "record",
                "update",
                "Account",
                &id,
                "--value",
                &format!("Score={}", 6000 + round),
            ],
        )
        .await;
        let runs = data_sync(&b, b_for_a).await;
        assert_eq!(
            runs[0]["updated"], 1,
            "round {round} after {started}: {}",
            runs[0]
        );
    }
    let on_a = records(&a, "Account", false).await;
    assert_eq!(
        by_name(&records(&b, "Contact", false).await, "FullName"),
        expected_on_b(&on_a)
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn both_directions_at_once_with_no_echo_and_references_translated() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let (a_for_b, b_for_a) = account_to_contact(&a, &b).await;
    // The other way: B's Deal (with a Record field pointing at Contact) goes to A.
    cli_json(
        &b,
        &[
            "module",
            "create",
            "--handle",
            "Deal",
            "--field",
            "Title:String",
            "--field",
            "Customer:Record",
        ],
    )
    .await;
    cli_json(
        &b,
        &[
            "expose",
            "add",
            &b_for_a.to_string(),
            "Deal",
            "--field",
            "Title",
            "--field",
            "Customer",
        ],
    )
    .await;
    // B also exposes Contact, whose records came from A: A must not get them back.
    cli_json(
        &b,
        &[
            "expose",
            "add",
            &b_for_a.to_string(),
            "Contact",
            "--field",
            "FullName",
            "--field",
            "Notes",
        ],
    )
    .await;
    let run = cli_json(
        &a,
        &["sync", "now", &a_for_b.to_string(), "--kind", "structure"],
    )
    .await;
    assert_eq!(run["created"], 2, "{run}");
    cli_json(
        &a,
        &[
            "module",
            "create",
            "--handle",
            "Opportunity",
            "--field",
            "Name:String",
            "--field",
            "Account:Record",
        ],
    )
    .await;
    cli_json(
        &a,
        &[
            "map",
            "set",
            &a_for_b.to_string(),
            "Deal",
            "--to",
            "Opportunity",
            "--field",
            "Title=Name",
            "--field",
            "Customer=Account",
        ],
    )
    .await;
    cli_json(
        &a,
        &[
            "module",
            "create",
            "--handle",
            "Mirror",
            "--field",
            "Name:String",
        ],
    )
    .await;
    cli_json(
        &a,
        &[
            "map",
            "set",
            &a_for_b.to_string(),
            "Contact",
            "--to",
            "Mirror",
            "--field",
            "FullName=Name",
        ],
    )
    .await;

    let acme = cli_json(&a, &["record", "create", "Account", "--value", "Name=Acme"]).await;
    let runs = data_sync(&b, b_for_a).await;
    assert_eq!(runs[0]["created"], 1);
    let contact = id_of(&records(&b, "Contact", false).await, "FullName", "Acme");
    let local_contact = cli_json(
        &b,
        &["record", "create", "Contact", "--value", "FullName=Walk-in"],
    )
    .await;
    cli_json(
        &b,
        &[
            "record",
            "create",
            "Deal",
            "--value",
            "Title=Big deal",
            "--value",
            &format!("Customer={contact}"),
        ],
    )
    .await;

    let runs = data_sync(&a, a_for_b).await;
    assert_eq!(runs.len(), 2, "one run per mapped shared module: {runs:?}");
    let mirror = records(&a, "Mirror", false).await;
    assert_eq!(
        mirror
            .iter()
            .map(|r| r["values"]["Name"].clone())
            .collect::<Vec<_>>(),
        [json!("Walk-in")],
        "B's own Contact arrives; the one that came from A does not come back"
    );
    let deals = records(&a, "Opportunity", false).await;
    assert_eq!(deals.len(), 1);
    assert_eq!(deals[0]["values"]["Name"], "Big deal");
    assert_eq!(
        deals[0]["values"]["Account"], acme["id"],
        "B's reference to its copy of Acme lands on A's own Acme"
    );
    let _ = local_contact;

    // Nothing bounces: another round each way moves nothing.
    for run in data_sync(&b, b_for_a)
        .await
        .iter()
        .chain(data_sync(&a, a_for_b).await.iter())
    {
        assert_eq!(
            (&run["created"], &run["updated"], &run["deleted"]),
            (&json!(0), &json!(0), &json!(0)),
            "{run}"
        );
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn received_records_stay_and_a_reset_reconciles() {
    let mut a = spawn_node("A").await;
    let mut b = spawn_node("B").await;
    let (a_for_b, b_for_a) = account_to_contact(&a, &b).await;
    for name in ["keep", "lost", "other"] {
        create_account(&a, name).await;
    }
    assert_eq!(data_sync(&b, b_for_a).await[0]["created"], 3);
    // A deletes one while B is not looking, then B forgets the change: only a
    // full pull can tell B's copy is stale.
    let on_a = records(&a, "Account", false).await;
    cli_json(
        &a,
        &["record", "rm", "Account", &id_of(&on_a, "Name", "lost")],
    )
    .await;
    let reset = cli_json(&b, &["sync", "reset", &b_for_a.to_string()]).await;
    let run = &reset.as_array().unwrap()[0];
    assert_eq!(
        (
            &run["status"],
            &run["created"],
            &run["deleted"],
            &run["skipped"]
        ),
        (&json!("succeeded"), &json!(0), &json!(1), &json!(2)),
        "{run}"
    );
    let names: BTreeSet<String> = records(&b, "Contact", false)
        .await
        .iter()
        .map(|r| r["values"]["FullName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["keep".to_owned(), "other".to_owned()])
    );

    // Unexposing keeps what arrived; so does removing the node.
    cli_json(&a, &["expose", "rm", &a_for_b.to_string(), "Account"]).await;
    cli_json(
        &b,
        &["sync", "now", &b_for_a.to_string(), "--kind", "structure"],
    )
    .await;
    assert_eq!(records(&b, "Contact", false).await.len(), 2);
    cli_json(&b, &["node", "rm", &b_for_a.to_string()]).await;
    assert_eq!(records(&b, "Contact", false).await.len(), 2);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_bad_import_writes_nothing_and_names_the_lines() {
    let mut a = spawn_node("A").await;
    cli_json(
        &a,
        &[
            "module",
            "create",
            "--handle",
            "Account",
            "--field",
            "Name:String",
            "--field",
            "Score:Number",
        ],
    )
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"Name\":\"ok\",\"Score\":\"1\"}\n{\"Name\":\"x\",\"Score\":\"many\"}\n\n{\"Nope\":\"y\"}\nnot json\n",
    )
    .unwrap();
    let out = run_cli(&[
        "record",
        "import",
        "Account",
        file.to_str().unwrap(),
        "--data-dir",
        &a.data_dir.display().to_string(),
    ])
    .await;
    assert!(!out.status.success());
    let err = stderr(&out);
    for needle in ["line 2", "Score", "line 4", "Nope", "line 5"] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(
        records(&a, "Account", false).await.is_empty(),
        "nothing was written"
    );
    assert!(stdout(&out).is_empty());
    a.stop().await;
}

#[tokio::test]
async fn recorded_corteza_data_documents_become_local_records() {
    let corteza_a = FakePeer::start().await;
    let mut b = spawn_node("B").await;
    let b_id = pair_corteza_origin(&b, &corteza_a).await;
    corteza_a.reply(Reply::Json(
        200,
        fixture("049-peer-structure-limit1.json")["response"]["body"].clone(),
    ));
    corteza_a.reply(Reply::Json(
        200,
        fixture("050-peer-structure-limit1-page2.json")["response"]["body"].clone(),
    ));
    cli_json(
        &b,
        &["sync", "now", &b_id.to_string(), "--kind", "structure"],
    )
    .await;
    cli_json(
        &b,
        &[
            "module",
            "create",
            "--handle",
            "person",
            "--field",
            "name:String",
            "--field",
            "email:Email",
            "--field",
            "age:Number",
            "--field",
            "vip:Bool",
            "--field",
            "tags:String:multi",
        ],
    )
    .await;
    cli_json(
        &b,
        &[
            "map",
            "set",
            &b_id.to_string(),
            "contact_fed",
            "--to",
            "person",
            "--field",
            "name=name",
            "--field",
            "email=email",
            "--field",
            "age=age",
            "--field",
            "vip=vip",
            "--field",
            "tags=tags",
        ],
    )
    .await;

    // Corteza's two pages (limit 2) exactly as recorded.
    let page1 = fixture("098-fx-peer-records-limit2.json");
    let page2 = fixture("099-fx-peer-records-limit2-page2.json");
    corteza_a.reply(Reply::Json(200, page1["response"]["body"].clone()));
    corteza_a.reply(Reply::Json(200, page2["response"]["body"].clone()));
    let before = corteza_a.requests().len();
    let runs = data_sync(&b, b_id).await;
    assert_eq!(
        (&runs[0]["status"], &runs[0]["created"], &runs[0]["pages"]),
        (&json!("succeeded"), &json!(3), &json!(2)),
        "{}",
        runs[0]
    );
    let requests = corteza_a.requests();
    let (first, second) = (&requests[before], &requests[before + 1]);
    assert_eq!(
        first.path,
        format!("/federation/nodes/{CORTEZA_A_NODE_ID}/modules/523615093121024101/records/")
    );
    assert_eq!(
        first.header("authorization"),
        Some("Bearer corteza-token-for-b")
    );
    assert!(
        !first.query.contains("lastSync"),
        "a first pull is a full one"
    );
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
    let people = by_name(&records(&b, "person", false).await, "name");
    assert_eq!(
        people["Alice"],
        json!({"name": "Alice", "email": "alice@example.org", "age": "31", "vip": "1", "tags": ["red", "blue"]})
    );
    assert_eq!(
        people["Bob"]["vip"], "0",
        "Corteza sends a false Bool as a bare name"
    );
    assert_eq!(people["Carol"]["age"], "27");

    // The changes since then, as recorded: Bob updated, Carol deleted, Dave new.
    // lastSync is the newest origin time seen (its clock, not ours), and `>=`
    // re-delivers the boundary; the links make that harmless.
    let changes = fixture("110-fx-peer-records-lastSync-after-changes.json");
    corteza_a.reply(Reply::Json(200, changes["response"]["body"].clone()));
    let runs = data_sync(&b, b_id).await;
    assert_eq!(
        (
            &runs[0]["created"],
            &runs[0]["updated"],
            &runs[0]["deleted"]
        ),
        (&json!(1), &json!(1), &json!(1)),
        "{}",
        runs[0]
    );
    let asked = corteza_a.requests().last().unwrap().query.clone();
    let created_at = chrono::DateTime::parse_from_rfc3339("2026-11-22T06:09:24Z").unwrap();
    assert!(
        asked.contains(&format!("lastSync={}", created_at.timestamp())),
        "{asked}"
    );
    // The same document again (the boundary re-delivered): nothing doubles.
    corteza_a.reply(Reply::Json(200, changes["response"]["body"].clone()));
    let runs = data_sync(&b, b_id).await;
    assert_eq!(
        (
            &runs[0]["created"],
            &runs[0]["updated"],
            &runs[0]["deleted"],
            &runs[0]["skipped"]
        ),
        (&json!(0), &json!(0), &json!(0), &json!(3)),
        "{}",
        runs[0]
    );
    let updated_at = chrono::DateTime::parse_from_rfc3339("2026-11-22T06:17:18Z").unwrap();
    let asked = corteza_a.requests().last().unwrap().query.clone();
    assert!(
        asked.contains(&format!("lastSync={}", updated_at.timestamp())),
        "{asked}"
    );
    let people = by_name(&records(&b, "person", false).await, "name");
    assert_eq!(
        people.keys().cloned().collect::<Vec<_>>(),
        ["Alice", "Bob Updated", "Dave"]
    );
    assert_eq!(people["Bob Updated"]["tags"], json!(["green", "yellow"]));
    assert_eq!(people["Bob Updated"]["age"], "43");
    b.stop().await;
}

/// (recordID, values as (name, value), deleted) as Corteza reads them.
type ReadRecord = (String, Vec<(String, Option<String>)>, bool);

/// What Corteza's destination reads from a data document: `response.set` of
/// `{recordID, values[{name, value}], createdAt, updatedAt?, deletedAt?}`,
/// the next page from `response.filter.nextPage`.
fn corteza_reads(doc: &Value) -> (Vec<ReadRecord>, Option<String>) {
    let set = doc["response"]["set"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let records = set
        .iter()
        .map(|r| {
            let values = r["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    (
                        v["name"].as_str().unwrap().to_owned(),
                        v["value"].as_str().map(str::to_owned),
                    )
                })
                .collect();
            assert!(r["createdAt"].is_string(), "{r}");
            (
                r["recordID"].as_str().unwrap().to_owned(),
                values,
                r["deletedAt"].is_string(),
            )
        })
        .collect();
    let next = doc["response"]["filter"]["nextPage"]
        .as_str()
        .map(str::to_owned);
    (records, next)
}

#[tokio::test]
async fn our_data_documents_read_like_cortezas() {
    let mut a = spawn_node("A").await;
    let corteza_b = FakePeer::start().await;
    let (a_id, token) = pair_corteza_destination(&a, &corteza_b).await;
    cli_json(
        &a,
        &[
            "module",
            "create",
            "--handle",
            "contact_fed",
            "--field",
            "name:String",
            "--field",
            "tags:String:multi",
            "--field",
            "secret:String",
        ],
    )
    .await;
    let exposed = cli_json(
        &a,
        &[
            "expose",
            "add",
            &a_id.to_string(),
            "contact_fed",
            "--field",
            "name",
            "--field",
            "tags",
        ],
    )
    .await;
    let module = exposed["id"].as_str().unwrap().to_owned();
    for name in ["Alice", "Bob", "Carol"] {
        cli_json(
            &a,
            &[
                "record",
                "create",
                "contact_fed",
                "--value",
                &format!("name={name}"),
                "--value",
                "tags=red",
                "--value",
                "tags=blue",
                "--value",
                "secret=s",
            ],
        )
        .await;
    }
    let get = |path: String| {
        let url = a.federation_url(&path);
        let token = token.clone();
        async move {
            let reply = http().get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(reply.status(), 200);
            reply.json::<Value>().await.unwrap()
        }
    };
    let base = format!("/federation/nodes/{a_id}/modules/{module}/records/");
    let page1 = get(format!("{base}?limit=2")).await;
    let (first, next) = corteza_reads(&page1);
    let next = next.expect("two of three: a next page");
    let page2 = get(format!("{base}?limit=2&pageCursor={}", urlencode(&next))).await;
    let (second, last) = corteza_reads(&page2);
    assert!(last.is_none());
    let all: Vec<_> = first.into_iter().chain(second).collect();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[0].1,
        [
            ("name".to_owned(), Some("Alice".to_owned())),
            ("tags".to_owned(), Some("red".to_owned())),
            ("tags".to_owned(), Some("blue".to_owned())),
        ],
        "exposed fields only, a multi-value field as repeated entries"
    );
    // Same keys as Corteza's recorded document, in the same places.
    let recorded = fixture("098-fx-peer-records-limit2.json")["response"]["body"].clone();
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&page1["response"]), keys(&recorded["response"]));
    assert!(keys(&page1["response"]["filter"]).is_superset(&keys(&recorded["response"]["filter"])));
    assert_eq!(
        keys(&page1["response"]["set"][0]),
        keys(&recorded["response"]["set"][0])
    );

    // lastSync as Corteza sends it (unix seconds): what changed at or after it.
    let seconds = |doc: &Value, key: &str| -> Vec<(String, i64)> {
        doc["response"]["set"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|r| {
                let t = chrono::DateTime::parse_from_rfc3339(r[key].as_str()?).ok()?;
                Some((r["recordID"].as_str().unwrap().to_owned(), t.timestamp()))
            })
            .collect()
    };
    let newest = seconds(&get(base.clone()).await, "createdAt")
        .into_iter()
        .map(|(_, t)| t)
        .max()
        .unwrap();
    let nothing = get(format!("{base}?lastSync={}", newest + 1)).await;
    assert!(corteza_reads(&nothing).0.is_empty(), "{nothing}");
    let bob = all[1].0.clone();
    cli_json(&a, &["record", "rm", "contact_fed", &bob]).await;
    let everything = get(base.clone()).await;
    let deleted = seconds(&everything, "deletedAt");
    assert_eq!(deleted.len(), 1, "deleted records are served: {everything}");
    let (deleted_id, t) = deleted[0].clone();
    assert_eq!(deleted_id, bob);
    let changed = get(format!("{base}?lastSync={t}")).await;
    let created = seconds(&changed, "createdAt");
    let (changed, _) = corteza_reads(&changed);
    assert!(
        changed.iter().any(|r| r.0 == bob && r.2),
        "the delete is served"
    );
    for (id, created_at) in created {
        assert!(id == bob || created_at >= t, "{id} changed before {t}");
    }
    let untouched = seconds(&everything, "createdAt")
        .into_iter()
        .filter(|(id, c)| *id != bob && *c < t)
        .count();
    assert_eq!(changed.len(), 3 - untouched);

    // The index lists the module, as Corteza's does.
    let index = get(format!("/federation/nodes/{a_id}/modules/exposed/records/")).await;
    let recorded_index = fixture("105-fx-peer-records-all.json")["response"]["body"].clone();
    assert_eq!(
        keys(&index["response"]["set"][0]),
        keys(&recorded_index["response"]["set"][0])
    );
    assert_eq!(
        index["response"]["set"][0]["href"],
        format!("/nodes/{a_id}/modules/{module}/records/")
    );

    // Activity Streams: a next link that works, unlike Corteza's (W24).
    let page = get(format!("{base}activity-stream/?limit=2")).await;
    let recorded_as =
        fixture("103-fx-peer-records-activity-stream.json")["response"]["body"].clone();
    assert_eq!(page["@context"], recorded_as["@context"]);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["items"][0]["values"],
        json!([
            {"name": "name", "value": "Alice"}, {"name": "tags", "value": "red"}, {"name": "tags", "value": "blue"}
        ])
    );
    let next_href = page["next"]["href"].as_str().unwrap().to_owned();
    let next_path = next_href
        .split_once(&a.running().federation_addr.to_string())
        .map(|(_, p)| p.to_owned())
        .unwrap_or(next_href.clone());
    let page2 = get(next_path).await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1, "{page2}");

    // The documented variants.
    let documented = get(format!(
        "/federation/exposed/modules/{module}/records?after=0"
    ))
    .await;
    assert_eq!(corteza_reads(&documented).0.len(), 3);
    let links = get("/federation/exposed/records?after=0".to_owned()).await;
    assert!(
        links["response"]["set"][0]["href"]
            .as_str()
            .unwrap()
            .contains(&module),
        "{links}"
    );
    a.stop().await;
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A destination daemon as a child process (so it can be killed -9), with
/// 100 records a page. Returns it once it told READY, with its federation
/// address.
async fn spawn_child(data_dir: &Path, socket_dir: &Path) -> (tokio::process::Child, String) {
    spawn_child_daemon(
        data_dir,
        socket_dir,
        &[("FEDSYNC_SYNC__DATA_PAGE_SIZE", "100")],
    )
    .await
}

pub(crate) async fn scalar(db: &Path, sql: &'static str) -> i64 {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

#[tokio::test]
async fn a_destination_killed_mid_sync_resumes_with_nothing_lost_or_doubled() {
    let relay = Relay::start().await;
    let mut a = spawn_node_with("A", |o| {
        o.set("federation.public_url", relay.base_url());
    })
    .await;
    relay.forward_to(a.running().federation_addr);
    let scratch = tempfile::tempdir().unwrap();
    let b_dir = scratch.path().join("b");
    let (mut child, b_federation) = spawn_child(&b_dir, scratch.path()).await;
    let b = TestDaemon::detached(b_dir.clone());

    // Pairing: A invites B (the child), B's admin uses the CLI.
    let created = a
        .nodes()
        .await
        .create_node(with_token(
            v1::CreateNodeRequest {
                name: "b".into(),
                base_url: format!("http://{b_federation}/federation"),
                contact: String::new(),
            },
            &a.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    let a_for_b = created.node.unwrap().id;
    let added = cli_json(&b, &["node", "add-uri", &created.node_uri]).await;
    let b_for_a: u64 = added["id"].as_str().unwrap().parse().unwrap();
    cli_json(&b, &["node", "pair", &b_for_a.to_string()]).await;
    a.nodes()
        .await
        .confirm_node(with_token(v1::NodeRef { id: a_for_b }, &a.admin_token()))
        .await
        .unwrap();
    share_account(&a, &b, a_for_b, b_for_a).await;
    let file = account_file(scratch.path(), 2_000);
    cli_json(&a, &["record", "import", "Account", file.to_str().unwrap()]).await;

    // The pull stops at page 8: pages 1-7 are in, B waits for page 8.
    relay.fault("/records/", 8, Fault::Hold);
    let mut sync = tokio::process::Command::new(fedsync_bin())
        .args([
            "sync",
            "now",
            &b_for_a.to_string(),
            "--kind",
            "data",
            "--data-dir",
        ])
        .arg(&b_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), relay.wait_held())
        .await
        .expect("the pull reaches page 8");
    let db = b_dir.join("fedsync.db");
    // Page 8 is asked for while page 7 is written: wait for page 7 to land
    // (nothing more can, page 8 is held).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while scalar(&db, "SELECT COUNT(*) FROM local_records").await < 700 {
        assert!(std::time::Instant::now() < deadline, "page 7 never landed");
        tokio::task::yield_now().await;
    }
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM local_records").await, 700);
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM sync_runs WHERE kind = 'data' AND status = 'running'"
        )
        .await,
        1
    );
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait().await.unwrap();
    let waited = sync.wait().await.unwrap();
    assert!(!waited.success(), "the CLI saw its daemon die");
    relay.release();

    // Restarted: the run the dead process left is closed, and the next pull
    // goes on from page 8.
    let (mut child, _) = spawn_child(&b_dir, scratch.path()).await;
    let runs = cli_json(&b, &["sync", "runs", &b_for_a.to_string()]).await;
    let interrupted = &runs[0];
    assert_eq!(interrupted["status"], "failed", "{interrupted}");
    assert!(
        interrupted["error"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{interrupted}"
    );
    assert_eq!(
        (&interrupted["created"], &interrupted["pages"]),
        (&json!(700), &json!(7)),
        "it tells what it did before the kill"
    );
    let node = cli_json(&b, &["node", "show", &b_for_a.to_string()]).await;
    assert_eq!(node["dataStatus"], "failed", "{node}");
    let runs = data_sync(&b, b_for_a).await;
    assert_eq!(
        (&runs[0]["status"], &runs[0]["created"], &runs[0]["skipped"]),
        (&json!("succeeded"), &json!(1_300), &json!(0)),
        "{}",
        runs[0]
    );
    let on_a = records(&a, "Account", false).await;
    assert_eq!(
        by_name(&records(&b, "Contact", false).await, "FullName"),
        expected_on_b(&on_a)
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM record_links").await,
        2_000
    );
    child.kill().await.unwrap();
    a.stop().await;
}

/// The progress lines of `sync now --follow` (non-terminal: one per update).
fn progress_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("data sync of node") && l.contains(" records"))
        .collect()
}

/// The records count of a progress line (`..., 300 records of 2000, ...`).
fn records_in(line: &str) -> u64 {
    let before = line.split(" records").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn sync_now_follow_shows_live_progress_and_exits_non_zero_when_the_sync_fails() {
    let relay = Relay::start().await;
    let mut a = spawn_node_with("A", |o| {
        o.set("federation.public_url", relay.base_url());
    })
    .await;
    relay.forward_to(a.running().federation_addr);
    let mut b = spawn_node_with("B", |o| {
        o.set("sync.data_page_size", 100);
    })
    .await;
    let (_, b_for_a) = account_to_contact(&a, &b).await;
    let scratch = tempfile::tempdir().unwrap();
    let file = account_file(scratch.path(), 2_000);
    cli_json(&a, &["record", "import", "Account", file.to_str().unwrap()]).await;

    let b_dir = b.data_dir.display().to_string();
    let node = b_for_a.to_string();
    let follow = ["sync", "now", &node, "--kind", "data", "--follow"];
    let mut args = follow.to_vec();
    args.extend(["--data-dir", &b_dir]);
    let out = run_cli(&args).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines = progress_lines(&text);
    // The run starting, then one line per page of 100.
    assert!(lines.len() >= 21, "{text}");
    let counts: Vec<u64> = lines.iter().map(|l| records_in(l)).collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "records only grow: {counts:?}"
    );
    assert_eq!(*counts.last().unwrap(), 2_000, "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("running") && l.contains("of 2000") && l.contains("ETA")),
        "the origin's total gives an ETA: {text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("succeeded: 20 pages, 2000 created"),
        "{text}"
    );

    // 500 more; the origin fails from the third page on: the CLI shows the
    // two pages that landed, then exits non-zero naming the failure.
    let more = scratch.path().join("more.jsonl");
    std::fs::write(
        &more,
        (0..500)
            .map(|i| format!("{}\n", json!({"Name": format!("m{i:04}"), "Score": "1"})))
            .collect::<String>(),
    )
    .unwrap();
    cli_json(&a, &["record", "import", "Account", more.to_str().unwrap()]).await;
    relay.fault("/records/", 3, Fault::Fail(502));
    let mut args = follow.to_vec();
    args.extend(["--data-dir", &b_dir, "--json"]);
    let out = run_cli(&args).await;
    assert!(!out.status.success(), "a failed sync exits non-zero");
    let text = stdout(&out);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let progress: Vec<&Value> = lines.iter().filter(|l| l.is_object()).collect();
    assert!(
        progress
            .iter()
            .any(|p| p["records"] == json!(200) && p["total"] == json!(500)),
        "{text}"
    );
    let done = lines.last().unwrap();
    assert_eq!(done[0]["status"], "failed", "{text}");
    assert_eq!(done[0]["created"], 200, "{text}");
    assert!(
        stderr(&out).contains("failed") && stderr(&out).contains("502"),
        "{}",
        stderr(&out)
    );
    a.stop().await;
    b.stop().await;
}
